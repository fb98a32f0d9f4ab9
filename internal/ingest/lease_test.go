package ingest

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Two schedulers share one queue, as serve instances on one store do.
// Only the owner of the folder syncs it; an event the owner never took
// (it was told of it while another owned the folder, then died) comes
// back through Rescan to the next owner, which snapshots it at its
// webhook's time; a write on a folder owned elsewhere is refused.
func TestLeaseModeHandsOverEvents(t *testing.T) {
	e := newEnv(t)
	ids := e.addNotes(3)
	var owner atomic.Value
	owner.Store("a")
	owns := func(name string) func(context.Context, store.FolderID) bool {
		return func(context.Context, store.FolderID) bool { return owner.Load() == name }
	}
	a := e.startScheduler(SchedulerConfig{Quiet: 20 * time.Millisecond, Owns: owns("a"), Rescan: 50 * time.Millisecond})
	b := e.startScheduler(SchedulerConfig{Quiet: 20 * time.Millisecond, Owns: owns("b"), Rescan: 50 * time.Millisecond})
	enqueue := func(doc string, at time.Time, tell ...*schedEnv) {
		ev, _, err := e.st.Enqueue(store.QueuedEvent{Relay: e.id.Relay, Doc: doc, Time: at, Received: at})
		e.must(err)
		for _, se := range tell {
			se.sched.Notify(ev)
		}
	}
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	// The reconcile at start (a's: b leaves the folder to a) ends first,
	// so the edits below reach a snapshot through their events only.
	a.waitStarted()

	// a owns the folder: both are told, a alone snapshots.
	e.must(e.folder.EditMarkdown("/notes/00/note-1.md", "# one, edited\n"))
	enqueue(ids[1], t0, a, b)
	s, ok := a.waitSnapshot("notes/00/note-1.md", 10*time.Second)
	if !ok || !s.Time.Equal(t0) {
		t.Fatalf("the owner's snapshot: %+v, %v", s, ok)
	}
	// Nobody owns it for a while (a died): a, told of the next edit,
	// leaves it queued; then b owns the folder and finds it there.
	owner.Store("")
	e.must(e.folder.EditMarkdown("/notes/00/note-2.md", "# two, edited\n"))
	t1 := t0.Add(time.Minute)
	enqueue(ids[2], t1, a)
	time.Sleep(200 * time.Millisecond) // several ticks and rescans without an owner
	if _, ok := a.waitSnapshot("notes/00/note-2.md", 0); ok {
		t.Fatal("a snapshotted a folder it does not own")
	}
	owner.Store("b")
	s, ok = b.waitSnapshot("notes/00/note-2.md", 10*time.Second)
	if !ok || !s.Time.Equal(t1) {
		t.Fatalf("the next owner's snapshot: %+v, %v; want one at %v", s, ok, t1)
	}
	if _, ok := b.waitSnapshot("notes/00/note-1.md", 0); ok {
		t.Error("b snapshotted note 1 again, which a had recorded")
	}
	if _, err := a.sched.Write(context.Background(), e.id, func(context.Context) (*Request, error) {
		t.Error("a wrote into a folder b owns")
		return nil, nil
	}); !errors.Is(err, ErrNotOwner) {
		t.Errorf("a's write on b's folder: %v, want ErrNotOwner", err)
	}
	e.waitQueueEmpty()
}

// waitQueueEmpty waits until every event in the queue is acknowledged.
func (e *env) waitQueueEmpty() {
	e.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left, err := e.st.PendingEvents()
		e.must(err)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("events left in the queue: %+v", left)
		}
	}
}

// conflicting is a shared store whose next conflicts snapshots are refused
// as another instance's write would make them.
type conflicting struct {
	*store.Store
	conflicts atomic.Int32
	// owner is whether this instance holds the lease; a conflict can
	// take it away.
	owner, moves atomic.Bool
}

func (c *conflicting) owns(context.Context, store.FolderID) bool { return c.owner.Load() }

func (c *conflicting) AddSnapshotAfter(base uint64, snap *store.Snapshot, docs map[string]store.DocState, drop []string) (uint64, error) {
	if c.conflicts.Add(-1) >= 0 {
		if c.moves.Load() {
			c.owner.Store(false)
		}
		return 0, store.ErrConflict
	}
	if head, _, err := c.Head(snap.Folder); err == nil && head != base {
		return 0, store.ErrConflict
	}
	return c.AddSnapshot(snap, docs, drop)
}

// conflictOnce starts a scheduler that holds the folder, on a store whose
// next snapshot is refused with ErrConflict (taking the lease away when
// moves), edits a note and hands the scheduler alice's event of it.
func conflictOnce(t *testing.T, moves bool) (*env, *schedEnv, *conflicting, store.QueuedEvent) {
	t.Helper()
	e := newEnv(t)
	ids := e.addNotes(2)
	cs := &conflicting{Store: e.st}
	cs.owner.Store(true)
	cs.moves.Store(moves)
	e.syncer = New(Config{Store: cs, Relay: e.client, Concurrency: 4})
	se := e.startScheduler(SchedulerConfig{Quiet: 20 * time.Millisecond, Owns: cs.owns})
	se.waitStarted()
	cs.conflicts.Store(1)
	e.must(e.folder.EditMarkdown("/notes/00/note-1.md", "# one, edited\n"))
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	ev, _, err := e.st.Enqueue(store.QueuedEvent{Relay: e.id.Relay, Doc: ids[1], Time: t0, User: "alice", Received: t0})
	e.must(err)
	se.sched.Notify(ev)
	return e, se, cs, ev
}

// A sync refused because the folder's lease moved is dropped, not
// retried: its events stay queued, unacknowledged, for the new holder, and
// when they come back here (the lease came back) they are recorded once.
func TestConflictDropsTheWindow(t *testing.T) {
	e, se, cs, ev := conflictOnce(t, true)
	t0 := ev.Time
	// A retry would come after a second's backoff.
	if s, ok := se.waitSnapshot("notes/00/note-1.md", 2500*time.Millisecond); ok {
		t.Fatalf("the refused sync was retried: %+v", s)
	}
	if n := cs.conflicts.Load(); n != 0 {
		t.Fatalf("conflicts left %d: the sync ran %d times, want once", n, 1-n)
	}
	left, err := e.st.PendingEvents()
	e.must(err)
	if len(left) != 1 || left[0].Key != ev.Key {
		t.Fatalf("queue after the refused sync: %+v, want the event left for the new holder", left)
	}
	cs.owner.Store(true)
	se.sched.Notify(ev) // a rescan once the lease is back
	s, ok := se.waitSnapshot("notes/00/note-1.md", 10*time.Second)
	if !ok || !s.Time.Equal(t0) || len(s.Users) != 1 || s.Users[0] != "alice" {
		t.Fatalf("snapshot once the event came back: %+v, %v; want one at %v by alice", s, ok, t0)
	}
}

// gatedQueue holds a rescan's read of the queue once armed: it returns
// the events as they were when the read began, after the gate opens.
type gatedQueue struct {
	*store.Store
	armed   atomic.Bool
	reading chan struct{}
	gate    chan struct{}
}

func (q *gatedQueue) PendingEvents() ([]store.QueuedEvent, error) {
	evs, err := q.Store.PendingEvents()
	if q.armed.CompareAndSwap(true, false) {
		close(q.reading)
		<-q.gate
	}
	return evs, err
}

// An event acknowledged while a rescan reads the queue is in what the
// rescan read, but is not taken (and synced) again.
func TestRescanSkipsEventsAckedMeanwhile(t *testing.T) {
	e := newEnv(t)
	ids := e.addNotes(2)
	q := &gatedQueue{Store: e.st, reading: make(chan struct{}), gate: make(chan struct{})}
	se := e.startScheduler(SchedulerConfig{Queue: q, Quiet: 20 * time.Millisecond, Rescan: 20 * time.Millisecond,
		Owns: func(context.Context, store.FolderID) bool { return true }})
	se.waitStarted()

	e.must(e.folder.EditMarkdown("/notes/00/note-1.md", "# one, edited\n"))
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	ev, _, err := e.st.Enqueue(store.QueuedEvent{Relay: e.id.Relay, Doc: ids[1], Time: t0, Received: t0})
	e.must(err)
	q.armed.Store(true)
	<-q.reading // a rescan has read the queue with the event in it
	se.sched.Notify(ev)
	if _, ok := se.waitSnapshot("notes/00/note-1.md", 10*time.Second); !ok {
		t.Fatal("no snapshot of the edit")
	}
	e.waitQueueEmpty()
	before := se.syncCount()
	close(q.gate)
	time.Sleep(300 * time.Millisecond) // many ticks: a re-taken event would be synced
	if n := se.syncCount() - before; n != 0 {
		t.Fatalf("%d syncs after the rescan returned: it took an acknowledged event again", n)
	}
}

// A sync refused while this instance still holds the lease (its replica
// was behind another write) is retried, and records its event once.
func TestConflictStillOwnerRetries(t *testing.T) {
	e, se, _, ev := conflictOnce(t, false)
	t0 := ev.Time
	s, ok := se.waitSnapshot("notes/00/note-1.md", 10*time.Second)
	if !ok || !s.Time.Equal(t0) || len(s.Users) != 1 || s.Users[0] != "alice" {
		t.Fatalf("snapshot after the retry: %+v, %v; want one at %v by alice", s, ok, t0)
	}
	e.waitQueueEmpty()
}

// recordingQueue is a shared queue that knows some events are recorded
// by a snapshot already.
type recordingQueue struct {
	*store.Store
	recorded map[uint64]bool
}

func (q *recordingQueue) Recorded(k uint64, _ string) bool { return q.recorded[k] }

// An event a snapshot records already (its instance died before
// acknowledging it) that shares a window with a new one is acknowledged,
// and its user is not credited again.
func TestRecordedEventNotRecordedAgain(t *testing.T) {
	e := newEnv(t)
	ids := e.addNotes(2)
	q := &recordingQueue{Store: e.st, recorded: map[uint64]bool{}}
	se := e.startScheduler(SchedulerConfig{Queue: q, Quiet: 100 * time.Millisecond})
	se.waitStarted()
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	old, _, err := e.st.Enqueue(store.QueuedEvent{Relay: e.id.Relay, Doc: ids[0], Time: t0, User: "alice", Received: t0})
	e.must(err)
	q.recorded[old.Key] = true // before the scheduler sees the event: no race on the map
	e.must(e.folder.EditMarkdown("/notes/00/note-1.md", "# one, edited\n"))
	ev, _, err := e.st.Enqueue(store.QueuedEvent{Relay: e.id.Relay, Doc: ids[1], Time: t0.Add(time.Second), User: "bob", Received: t0})
	e.must(err)
	se.sched.Notify(old)
	se.sched.Notify(ev)
	s, ok := se.waitSnapshot("notes/00/note-1.md", 10*time.Second)
	if !ok || len(s.Users) != 1 || s.Users[0] != "bob" || !slices.Equal(s.Events, []uint64{ev.Key}) {
		t.Fatalf("snapshot: %+v, %v; want bob's alone, with his event", s, ok)
	}
	e.waitQueueEmpty()
}

// A snapshot records the events of its folder's documents that synced:
// not those of a document that failed (retried, so still to record), nor
// of another folder's document (an unknown document's event joins every
// folder whose documents are not listed yet).
func TestRecordedEvents(t *testing.T) {
	f := store.FolderID{Relay: "r", Folder: "folder-doc"}
	events := map[uint64]EventRef{1: {"a", "e1"}, 2: {"b", "e2"}, 3: {"elsewhere", "e3"}, 4: {"folder-doc", "e4"}, 5: {"a", ""}}
	seen := map[string]bool{"a": true, "b": true}
	keys, ids := recordedEvents(f, events, seen, []Problem{{DocID: "b"}})
	if !slices.Equal(keys, []uint64{1, 4, 5}) || !slices.Equal(ids, []string{"e1", "e4"}) {
		t.Fatalf("recorded events %v %v, want [1 4 5] [e1 e4]", keys, ids)
	}
}
