package ingest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// schedEnv runs a Scheduler over an env until the test ends.
type schedEnv struct {
	*env
	sched *Scheduler

	mu    sync.Mutex
	snaps []*store.Snapshot
	syncs []*Result // every successful sync, slices included
}

func (e *env) startScheduler(cfg SchedulerConfig) *schedEnv {
	e.t.Helper()
	se := &schedEnv{env: e}
	cfg.Syncer, cfg.Store = e.syncer, e.st
	if cfg.Queue == nil {
		cfg.Queue = e.st
	}
	cfg.OnSnapshot = func(_ context.Context, snap *store.Snapshot) {
		se.mu.Lock()
		se.snaps = append(se.snaps, snap)
		se.mu.Unlock()
	}
	cfg.OnSync = func(_ store.FolderID, _ time.Duration, res *Result, err error) {
		if err == nil {
			se.mu.Lock()
			se.syncs = append(se.syncs, res)
			se.mu.Unlock()
		}
	}
	se.sched = NewScheduler(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- se.sched.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("scheduler: %v", err)
		}
	})
	return se
}

// webhook queues an event for doc the way the webhook handler does.
// waitStarted waits for the first successful sync: the reconcile at start.
func (se *schedEnv) waitStarted() {
	se.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if se.syncCount() > 0 {
			return
		}
		if time.Now().After(deadline) {
			se.t.Fatal("the reconcile at start did not run")
		}
	}
}

// syncCount is the number of successful syncs so far.
func (se *schedEnv) syncCount() int {
	se.mu.Lock()
	defer se.mu.Unlock()
	return len(se.syncs)
}

func (se *schedEnv) webhook(doc string, ts, received time.Time) {
	se.t.Helper()
	ev, _, err := se.st.Enqueue(store.QueuedEvent{Relay: se.id.Relay, Doc: doc, Time: ts, Received: received})
	se.must(err)
	se.sched.Notify(ev)
}

// waitSnapshot waits up to d for a snapshot whose changes include path.
func (se *schedEnv) waitSnapshot(path string, d time.Duration) (*store.Snapshot, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		se.mu.Lock()
		for _, s := range se.snaps {
			for _, c := range s.Changes {
				if c.Path == path {
					se.mu.Unlock()
					return s, true
				}
			}
		}
		se.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	return nil, false
}

// addNotes fills the folder with n notes and records them (at full
// speed), returning their ids in order.
func (e *env) addNotes(n int) []string {
	e.t.Helper()
	ids := make([]string, n)
	for i := range n {
		id, err := e.folder.AddMarkdown(fmt.Sprintf("/notes/%02d/note-%d.md", i/100, i), fmt.Sprintf("# Note %d\n", i))
		e.must(err)
		ids[i] = id
	}
	e.sync(Request{})
	return ids
}

// docsFetched counts the as-update requests for the given documents.
func (e *env) docsFetched(ids []string) int {
	n := 0
	for _, id := range ids {
		n += e.srv.RequestsFor(relaytest.RouteAsUpdate, id)
	}
	return n
}

// A folder of 1,500 notes behind a Relay Server answering 150 requests a
// second: re-fetching every note takes 20 s. An edit made while that
// reconcile runs lands within the quiet period plus a few seconds, and the
// reconcile is still under way when it does.
func TestEditLandsWhileReconcileRuns(t *testing.T) {
	const notes = 1500
	e := newEnv(t)
	ids := e.addNotes(notes)
	e.srv.SetRequestsPerSecond(150)
	e.srv.ResetRequests()

	quiet := 300 * time.Millisecond
	se := e.startScheduler(SchedulerConfig{Quiet: quiet, MaxDelay: 2 * time.Second})
	// The startup reconcile is under way once it has re-fetched notes.
	deadline := time.Now().Add(10 * time.Second)
	for e.docsFetched(ids[:50]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the startup reconcile did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)

	e.must(e.folder.EditMarkdown("/notes/07/note-777.md", "edited during the reconcile"))
	edited := time.Now()
	se.webhook(ids[777], edited, edited)
	limit := quiet + 3*time.Second
	snap, ok := se.waitSnapshot("notes/07/note-777.md", limit)
	if !ok {
		t.Fatalf("the edit made during a reconcile had no snapshot after %v (reconcile re-fetched %d of %d notes meanwhile)",
			limit, e.docsFetched(ids), notes)
	}
	took := time.Since(edited)
	if got := changes(snap); got != "modified notes/07/note-777.md" {
		t.Errorf("changes: %s", got)
	}
	if n := e.docsFetched(ids); n >= notes {
		t.Errorf("the reconcile had already re-fetched %d notes: the test did not edit during it", n)
	}
	t.Logf("edit landed after %v", took)
}

// A reconcile that yields to webhook work resumes where it stopped: over
// the whole sweep each unedited note is fetched exactly once, although
// edits interrupted it several times.
func TestReconcileResumesAfterYield(t *testing.T) {
	const notes = 400
	e := newEnv(t)
	ids := e.addNotes(notes)
	e.srv.SetRequestsPerSecond(400)
	e.srv.ResetRequests()

	// The rate makes one slice big enough for the whole folder, so a slice
	// that ends early ended because it yielded.
	se := e.startScheduler(SchedulerConfig{Quiet: 50 * time.Millisecond, MaxDelay: time.Second, ReconcileRate: 250})
	edited := map[string]bool{}
	for i := range 6 {
		time.Sleep(250 * time.Millisecond)
		n := 13 + 61*i
		path := fmt.Sprintf("/notes/%02d/note-%d.md", n/100, n)
		e.must(e.folder.EditMarkdown(path, fmt.Sprintf("edit %d", i)))
		edited[ids[n]] = true
		se.webhook(ids[n], time.Now(), time.Now())
		if _, ok := se.waitSnapshot(path[1:], 3*time.Second); !ok {
			t.Fatalf("edit %d did not land", i)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var missing int
		for _, id := range ids {
			if e.srv.RequestsFor(relaytest.RouteAsUpdate, id) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reconcile did not reach %d notes", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // nothing more may be fetched

	se.mu.Lock()
	defer se.mu.Unlock()
	yielded := 0
	for _, r := range se.syncs {
		if r.Unchecked > 0 {
			yielded++
		}
	}
	// A yield abandons the checks in flight (at most 2): those notes are
	// fetched again by the next slice, nothing else is.
	again := 0
	for _, id := range ids {
		if edited[id] {
			continue
		}
		if n := e.srv.RequestsFor(relaytest.RouteAsUpdate, id); n > 2 {
			t.Errorf("note %s fetched %d times in one reconcile", id, n)
		} else if n == 2 {
			again++
		}
	}
	if again > 2*yielded {
		t.Errorf("%d notes fetched twice after %d yields: the reconcile restarted", again, yielded)
	}
	if yielded < 2 {
		t.Errorf("%d slices yielded, want several: the test did not interrupt the reconcile", yielded)
	}
	t.Logf("%d syncs, %d slices yielded", len(se.syncs), yielded)
}

// A sweep slice checks stored documents in id order up to Max, skips
// those in Done, always fetches documents it has no content for, and
// stops at Yield without losing anything.
func TestSweepSlices(t *testing.T) {
	e := newEnv(t)
	ids := e.addNotes(10)
	sorted := slices.Sorted(slices.Values(ids))

	e.srv.ResetRequests()
	res := e.sync(Request{Sweep: &Sweep{Max: 4}})
	slices.Sort(res.Checked)
	if fmt.Sprint(res.Checked) != fmt.Sprint(sorted[:4]) || res.Unchecked != 6 {
		t.Fatalf("first slice checked %v, left %d; want %v and 6", res.Checked, res.Unchecked, sorted[:4])
	}
	done := map[string]bool{}
	for _, id := range res.Checked {
		done[id] = true
	}
	res = e.sync(Request{Sweep: &Sweep{Max: 4, Done: done}})
	slices.Sort(res.Checked)
	if fmt.Sprint(res.Checked) != fmt.Sprint(sorted[4:8]) || res.Unchecked != 2 {
		t.Fatalf("second slice checked %v, left %d; want %v and 2", res.Checked, res.Unchecked, sorted[4:8])
	}
	if n := e.docsFetched(ids); n != 8 {
		t.Errorf("%d notes fetched by two slices of 4", n)
	}

	// A yielded slice still fetches what it has no content for, and
	// records the changes it found.
	newID, err := e.folder.AddMarkdown("/new.md", "new")
	e.must(err)
	e.must(e.folder.EditMarkdown("/notes/00/note-3.md", "changed"))
	yield := make(chan struct{})
	close(yield)
	res = e.sync(Request{Sweep: &Sweep{Yield: yield}})
	if fmt.Sprint(res.Checked) != fmt.Sprint([]string{newID}) || res.Unchecked != 10 {
		t.Fatalf("yielded slice checked %v, left %d", res.Checked, res.Unchecked)
	}
	if got := changes(res.Snapshot); got != "added new.md" {
		t.Errorf("yielded slice: %s", got)
	}
	if got := e.tree()["notes/00/note-3.md"]; got != "# Note 3\n" {
		t.Errorf("an unchecked note changed: %q", got)
	}
	res = e.sync(Request{Sweep: &Sweep{}})
	if res.Unchecked != 0 || len(res.Checked) != 11 {
		t.Errorf("whole slice checked %d, left %d", len(res.Checked), res.Unchecked)
	}
	if got := changes(res.Snapshot); got != "modified notes/00/note-3.md" {
		t.Errorf("whole slice: %s", got)
	}

	// The rate limit is asked before each check; its error stops the
	// slice like Yield.
	calls := 0
	res = e.sync(Request{Sweep: &Sweep{Wait: func(context.Context) error {
		calls++
		if calls > 3 {
			return context.Canceled
		}
		return nil
	}}})
	if len(res.Checked) != 3 || res.Unchecked != 8 {
		t.Errorf("paced slice checked %d, left %d; want 3 and 8", len(res.Checked), res.Unchecked)
	}
}

// A webhook timestamp more than FutureTolerance after its receipt is a
// wrong clock or a hostile sender: the event takes its receive time.
func TestEventTimeCappedAtReceipt(t *testing.T) {
	received := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	now := received.Add(time.Minute)
	s := NewScheduler(SchedulerConfig{})
	for _, tc := range []struct {
		ts, received, want time.Time
	}{
		{time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC), received, received},
		{received.Add(FutureTolerance + time.Second), received, received},
		{received.Add(FutureTolerance), received, received.Add(FutureTolerance)}, // clock skew kept
		{received.Add(-time.Hour), received, received.Add(-time.Hour)},           // late delivery kept
		{time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, now},          // no receive time: now
	} {
		if got := s.eventTime(store.QueuedEvent{Time: tc.ts, Received: tc.received}, now); !got.Equal(tc.want) {
			t.Errorf("timestamp %v received %v: %v, want %v", tc.ts, tc.received, got, tc.want)
		}
	}
}

// Through the queue and the scheduler, a webhook dated 2999 gives a
// snapshot dated when it was received.
func TestFutureWebhookDatesSnapshotAtReceipt(t *testing.T) {
	e := newEnv(t)
	ids := e.addNotes(3)
	se := e.startScheduler(SchedulerConfig{Quiet: 20 * time.Millisecond})
	time.Sleep(300 * time.Millisecond) // the startup reconcile of 3 notes is over
	e.must(e.folder.EditMarkdown("/notes/00/note-1.md", "from the future"))
	received := time.Now().UTC().Truncate(time.Second)
	se.webhook(ids[1], time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC), received)
	snap, ok := se.waitSnapshot("notes/00/note-1.md", 5*time.Second)
	if !ok {
		t.Fatal("no snapshot")
	}
	if !snap.Time.Equal(received) {
		t.Errorf("snapshot time %v, want the receive time %v", snap.Time, received)
	}
}
