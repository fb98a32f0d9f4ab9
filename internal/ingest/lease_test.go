package ingest

import (
	"context"
	"errors"
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
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		a.mu.Lock()
		n := len(a.syncs)
		a.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reconcile at start did not run")
		}
	}

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
	deadline := time.Now().Add(5 * time.Second)
	for {
		left, err := e.st.PendingEvents()
		e.must(err)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events left in the queue: %+v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
