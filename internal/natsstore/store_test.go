package natsstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

var testFolder = store.FolderID{Relay: "11111111-1111-4111-8111-111111111111", Folder: "22222222-2222-4222-8222-222222222222"}

// open opens a backend on url with a connection of its own; Close is
// registered.
func open(t *testing.T, url string, o Options) *Store {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, nc, o)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); nc.Close() })
	return s
}

// snap records a snapshot of testFolder on s whose tree is files
// (path -> content), storing the contents first.
func snap(t *testing.T, s store.Backend, at time.Time, files map[string]string) uint64 {
	t.Helper()
	sn := &store.Snapshot{Folder: testFolder, Time: at, Users: []string{"u"}}
	for p, c := range files {
		id, err := s.PutBlob([]byte(c), store.BlobID{})
		if err != nil {
			t.Fatal(err)
		}
		sn.Files = append(sn.Files, store.File{Path: p, Blob: id, Size: int64(len(c)), DocID: "doc-" + p, Kind: "markdown"})
		sn.Changes = append(sn.Changes, store.Change{Kind: store.ChangeModified, Path: p, DocID: "doc-" + p})
	}
	sortFiles(sn.Files)
	seq, err := s.AddSnapshot(sn, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func sortFiles(fs []store.File) {
	slices.SortFunc(fs, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
}

// Two instances on one server: what one writes, the other's replica
// applies (blobs fetched, trees rebuilt from deltas), and the other can
// then write on; a third opened later replays the whole log.
func TestReplicasFollow(t *testing.T) {
	url := natstest.Start(t).URL()
	a := open(t, url, Options{})
	b := open(t, url, Options{Dir: t.TempDir() + "/replica"})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	if err := a.AddFolder(testFolder); err != nil {
		t.Fatal(err)
	}
	snap(t, a, t0, map[string]string{"a.md": "one", "b.md": "two"})
	snap(t, a, t0.Add(time.Second), map[string]string{"a.md": "one", "c.md": strings.Repeat("three ", 1000)})
	ctx := context.Background()
	if err := b.CatchUp(ctx, testFolder); err != nil {
		t.Fatal(err)
	}
	if seq := snap(t, b, t0.Add(2*time.Second), map[string]string{"c.md": "changed by b"}); seq != 3 {
		t.Fatalf("b's snapshot is %d, want 3", seq)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c := open(t, url, Options{})
	for _, s := range []*Store{a, b, c} {
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want, err := a.Snapshots(testFolder, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 {
		t.Fatalf("a has %d snapshots, want 3", len(want))
	}
	for name, s := range map[string]*Store{"b": b, "c (replayed)": c} {
		got, err := s.Snapshots(testFolder, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s's snapshots differ:\n%+v\n%+v", name, got, want)
		}
		for seq := uint64(1); seq <= 3; seq++ {
			sa, _ := a.Snapshot(testFolder, seq)
			sb, err := s.Snapshot(testFolder, seq)
			if err != nil || !reflect.DeepEqual(sa.Files, sb.Files) {
				t.Errorf("%s: snapshot %d: %v", name, seq, err)
			}
			for _, f := range sb.Files {
				if data, err := s.Blob(f.Blob); err != nil || store.BlobIDOf(data) != f.Blob {
					t.Errorf("%s: blob of %s: %v", name, f.Path, err)
				}
			}
		}
	}
}

// A writer whose replica missed another's write of the folder is refused
// (the log's expected last sequence), and writes nothing.
func TestStaleWriterRefused(t *testing.T) {
	url := natstest.Start(t).URL()
	a := open(t, url, Options{})
	b := open(t, url, Options{})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	snap(t, a, t0, map[string]string{"a.md": "one"})
	if err := b.CatchUp(context.Background(), testFolder); err != nil {
		t.Fatal(err)
	}
	// b stops seeing the folder: as if it had stalled before a's write.
	b.mu.Lock()
	b.applied[subject(testFolder)] = 0
	b.mu.Unlock()
	id, _ := b.PutBlob([]byte("late"), store.BlobID{})
	_, err := b.AddSnapshot(&store.Snapshot{Folder: testFolder, Time: t0.Add(time.Second),
		Files: []store.File{{Path: "x.md", Blob: id, Size: 4, DocID: "x", Kind: "markdown"}}}, nil, nil)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale write: %v, want ErrConflict", err)
	}
	if err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if head, _, _ := a.Head(testFolder); head != 1 {
		t.Fatalf("head after a refused write = %d, want 1", head)
	}
}

// A first snapshot of a big folder is over NATS's message size: it goes
// through the object store, and replicas read it from there.
func TestLargeWrite(t *testing.T) {
	url := natstest.Start(t).URL()
	a := open(t, url, Options{})
	a.maxInline = 4 << 10
	files := map[string]string{}
	for i := range 2000 {
		files[fmt.Sprintf("dir%03d/note-%05d-with-a-longer-name.md", i%100, i)] = fmt.Sprintf("note %d", i)
	}
	snap(t, a, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), files)
	if objs, err := a.blobs.List(context.Background()); err != nil || len(objs) != 1 || !strings.HasPrefix(objs[0].Name, "op.") {
		t.Fatalf("the write did not go through the object store: %v %v", objs, err)
	}
	b := open(t, url, Options{})
	l, err := b.Latest(testFolder)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Files) != len(files) {
		t.Fatalf("replayed snapshot has %d files, want %d", len(l.Files), len(files))
	}
}

// Readers refuse a cluster that holds no store rather than making one.
func TestExistingRefusesEmpty(t *testing.T) {
	url := natstest.Start(t).URL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := Open(context.Background(), nc, Options{Existing: true}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("Open(Existing) on an empty cluster: %v", err)
	}
}

// A mass deletion held by the writer's policy is held in every replica,
// whatever policy the replica's instance was given.
func TestHoldTravelsWithTheWrite(t *testing.T) {
	url := natstest.Start(t).URL()
	a := open(t, url, Options{HoldDeletions: store.DefaultHoldPolicy})
	b := open(t, url, Options{})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	many := map[string]string{}
	for i := range 12 {
		many[fmt.Sprintf("n%02d.md", i)] = fmt.Sprintf("note %d", i)
	}
	snap(t, a, t0, many)
	snap(t, a, t0.Add(time.Second), map[string]string{"n00.md": "note 0"})
	if err := b.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Store{"writer": a, "replica without a policy": b} {
		if h, err := s.Held(testFolder); err != nil || h == nil || h.From != 2 {
			t.Errorf("%s: held = %+v, %v; want snapshot 2 held", name, h, err)
		}
	}
}

// On a three-node cluster with replicas 3, a replica keeps following when
// the node it is connected to is killed: writes made meanwhile by an
// instance on another node reach it, and it writes on after a CatchUp.
func TestFollowerSurvivesNodeKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster (skipped with -short)")
	}
	c := natstest.StartCluster(t, 3)
	a := open(t, c.Nodes[1].URL(), Options{})
	b := open(t, c.Nodes[0].URL(), Options{})
	if a.Replicas() != 3 {
		t.Fatalf("replicas = %d on a three-node cluster, want 3", a.Replicas())
	}
	// Both name the queue alike in the events their snapshots record.
	if a.queueMade.IsZero() || !a.queueMade.Equal(b.queueMade) {
		t.Fatalf("the queue's creation time as two nodes give it: %v, %v", a.queueMade, b.queueMade)
	}
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for i := range 3 {
		snap(t, a, t0.Add(time.Duration(i)*time.Second), map[string]string{"a.md": fmt.Sprint("v", i)})
	}
	c.Nodes[0].Kill()
	for i := 3; i < 6; i++ {
		snap(t, a, t0.Add(time.Duration(i)*time.Second), map[string]string{"a.md": fmt.Sprint("v", i), "b.md": "new"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := b.CatchUp(ctx, testFolder); err != nil {
		t.Fatal(err)
	}
	if head, _, _ := b.Head(testFolder); head != 6 {
		t.Fatalf("b's replica after the kill: head %d, want 6", head)
	}
	if seq := snap(t, b, t0.Add(time.Minute), map[string]string{"c.md": "from b"}); seq != 7 {
		t.Fatalf("b's write after the kill got %d, want 7", seq)
	}
	c.Nodes[0].Restart(t)
	if err := a.CatchUp(ctx, testFolder); err != nil {
		t.Fatal(err)
	}
	if l, err := a.Latest(testFolder); err != nil || l.Seq != 7 || len(l.Files) != 1 {
		t.Fatalf("a after b's write: %+v, %v", l, err)
	}
}

// An ingest that read the folder before another instance wrote it is
// refused: its tree would undo that write.
func TestAddSnapshotAfterMovedHead(t *testing.T) {
	url := natstest.Start(t).URL()
	a := open(t, url, Options{})
	b := open(t, url, Options{})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	snap(t, a, t0, map[string]string{"a.md": "one"})
	snap(t, a, t0.Add(time.Second), map[string]string{"a.md": "two"})
	if err := b.CatchUp(context.Background(), testFolder); err != nil {
		t.Fatal(err)
	}
	id, err := b.PutBlob([]byte("b"), store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	mk := func() *store.Snapshot {
		return &store.Snapshot{Folder: testFolder, Time: t0.Add(time.Minute),
			Files: []store.File{{Path: "b.md", Blob: id, Size: 1, DocID: "b", Kind: "markdown"}}}
	}
	if _, err := b.AddSnapshotAfter(1, mk(), nil, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("a snapshot computed from 1 when the head is 2: %v, want ErrConflict", err)
	}
	if seq, err := b.AddSnapshotAfter(2, mk(), nil, nil); err != nil || seq != 3 {
		t.Fatalf("a snapshot computed from the head: %d, %v; want 3", seq, err)
	}
}

// Should a server ever let two writers append a folder's next snapshot
// (nats-server 2.9 on a cluster did), every replica keeps the first and
// refuses the second alike, instead of retrying it for ever.
func TestDoubleAppendRefusedAlike(t *testing.T) {
	url := natstest.Start(t).URL()
	a := open(t, url, Options{})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	snap(t, a, t0, map[string]string{"a.md": "one"})
	l, err := a.Latest(testFolder)
	if err != nil {
		t.Fatal(err)
	}
	blob := l.Files[0].Blob
	ctx := context.Background()
	for _, p := range []string{"first.md", "second.md"} {
		data, err := encodeOp(&op{Kind: opSnapshot, Folder: testFolder, Seq: 2, Time: t0.Add(time.Second),
			Put: []store.File{{Path: p, Blob: blob, Size: 3, DocID: p, Kind: "markdown"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.js.Publish(ctx, subject(testFolder), data); err != nil { // no expected sequence
			t.Fatal(err)
		}
	}
	b := open(t, url, Options{})
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Store{"follower": a, "replayed": b} {
		infos, err := s.Snapshots(testFolder, 0)
		if err != nil || len(infos) != 2 {
			t.Fatalf("%s: %d snapshots (%v), want 2", name, len(infos), err)
		}
		l, err := s.Latest(testFolder)
		if err != nil || len(l.Files) != 2 || l.Files[1].Path != "first.md" {
			t.Fatalf("%s: latest %+v, %v; want a.md and first.md", name, l, err)
		}
	}
	if seq := snap(t, a, t0.Add(time.Minute), map[string]string{"c.md": "on"}); seq != 3 {
		t.Fatalf("the next write got %d, want 3", seq)
	}
}

func TestClusterSafe(t *testing.T) {
	for _, c := range []struct {
		version  string
		replicas int
		ok       bool
	}{
		{"2.9.10", 1, true},
		{"2.9.10", 3, false},
		{"2.10.18", 3, false},
		{"2.11.0", 3, true},
		{"2.15.2", 3, true},
		{"v2.11.0-beta.1", 3, true},
		{"1.4.0", 3, false},
		{"", 3, false},
	} {
		if err := clusterSafe(c.version, c.replicas); (err == nil) != c.ok {
			t.Errorf("clusterSafe(%q, %d) = %v, want ok=%v", c.version, c.replicas, err, c.ok)
		}
	}
}

// The events a snapshot records are not pending for another instance,
// even when the writer died before acknowledging them: that instance
// acknowledges them, and forgets them once they are gone.
func TestPendingLeavesOutRecordedEvents(t *testing.T) {
	url := natstest.Start(t).URL()
	a := open(t, url, Options{})
	b := open(t, url, Options{})
	t0 := time.Now().UTC().Truncate(time.Second) // ids of events recorded long ago are forgotten
	var keys []uint64
	for i := range 3 {
		ev, _, err := a.Enqueue(store.QueuedEvent{ID: fmt.Sprint("evt-", i), Relay: testFolder.Relay, Doc: fmt.Sprint("doc-", i), Time: t0, Received: t0})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, ev.Key)
	}
	id, err := a.PutBlob([]byte("x"), store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	// A second copy of the first event under a key of its own, as a
	// leader change while it was being queued can leave.
	ev0, err := encodeEvent(store.QueuedEvent{ID: "evt-0", Relay: testFolder.Relay, Doc: "doc-0", Time: t0, Received: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.js.Publish(context.Background(), queueSubject, ev0); err != nil {
		t.Fatal(err)
	}
	// a records the first two events' snapshot, and dies unacknowledged.
	if _, err := a.AddSnapshot(&store.Snapshot{Folder: testFolder, Time: t0, Users: []string{"u"}, Events: keys[:2], EventIDs: []string{"evt-0"},
		Files: []store.File{{Path: "x.md", Blob: id, Size: 1, DocID: "x", Kind: "markdown"}}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, err := b.PendingEvents()
	if err != nil || len(evs) != 1 || evs[0].Key != keys[2] {
		t.Fatalf("b's pending events: %+v, %v; want only the one no snapshot records (%d)", evs, err, keys[2])
	}
	if !b.Recorded(keys[2]+1, "evt-0") || b.Recorded(keys[2], "evt-2") {
		t.Fatal("Recorded does not know the recorded event by its id alone, or knows one not recorded")
	}
	left, err := b.queue.PendingEvents()
	if err != nil || len(left) != 1 {
		t.Fatalf("the queue after b read it: %+v, %v; want the recorded events acknowledged", left, err)
	}
	if _, err := b.PendingEvents(); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	n := len(b.handled)
	b.mu.Unlock()
	if n != 0 {
		t.Fatalf("b still remembers %d acknowledged events", n)
	}
}

// The keys a snapshot records name events of the queue they were taken
// from: once the queue is deleted and made again, its events of the same
// keys are other events, and pending.
func TestRecordedEventsOfARecreatedQueue(t *testing.T) {
	url := natstest.Start(t).URL()
	a := open(t, url, Options{})
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ev, _, err := a.Enqueue(store.QueuedEvent{Relay: testFolder.Relay, Doc: "doc", Time: t0, Received: t0})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.PutBlob([]byte("x"), store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddSnapshot(&store.Snapshot{Folder: testFolder, Time: t0, Events: []uint64{ev.Key},
		Files: []store.File{{Path: "x.md", Blob: id, Size: 1, DocID: "x", Kind: "markdown"}}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.js.DeleteStream(context.Background(), queueStream); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a creation time of its own
	b := open(t, url, Options{})
	again, _, err := b.Enqueue(store.QueuedEvent{Relay: testFolder.Relay, Doc: "other", Time: t0, Received: t0})
	if err != nil || again.Key != ev.Key {
		t.Fatalf("the new queue's first event: key %d, %v; want %d", again.Key, err, ev.Key)
	}
	if evs, err := b.PendingEvents(); err != nil || len(evs) != 1 || evs[0].Doc != "other" {
		t.Fatalf("pending in the new queue: %+v, %v; want its event", evs, err)
	}
}
