package storecopy_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/nats-io/nats.go"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/storecopy"
)

var folders = []store.FolderID{
	{Relay: "11111111-1111-4111-8111-111111111111", Folder: "22222222-2222-4222-8222-222222222222"},
	{Relay: "11111111-1111-4111-8111-111111111111", Folder: "33333333-3333-4333-8333-333333333333"},
}

func openMem(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fill records a history in st: edits, renames and deletes over two
// folders, a 5 MiB attachment (streamed), a restore and a push origin, a
// push state, the history config and a queued event.
func fill(t *testing.T, st store.Backend) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.SetHistoryConfig([]byte(`{"author":"x"}`)))
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	bigID, _, err := st.PutBlobFrom(bytes.NewReader(big), int64(len(big)), store.BlobID{})
	must(err)
	pack, err := st.PutBlob([]byte("PACK pretend"), store.BlobID{})
	must(err)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	for fi, f := range folders {
		files := map[string]store.File{}
		content := map[string][]byte{}
		for i := 1; i <= 40; i++ {
			var changes []store.Change
			for range 1 + r.IntN(3) {
				p := fmt.Sprintf("notes/n%d.md", r.IntN(12))
				old, had := files[p]
				data := append(bytes.Clone(content[p]), fmt.Sprintf("line %d of %s\n", i, p)...)
				base := store.BlobID{}
				if had {
					base = old.Blob
				}
				id, err := st.PutBlob(data, base)
				must(err)
				doc := fmt.Sprintf("doc-%s", p)
				files[p] = store.File{Path: p, Blob: id, Size: int64(len(data)), DocID: doc, Kind: "markdown"}
				content[p] = data
				kind := store.ChangeAdded
				if had {
					kind = store.ChangeModified
				}
				changes = append(changes, store.Change{Kind: kind, Path: p, DocID: doc})
			}
			if i%7 == 0 && len(files) > 2 {
				for p, fl := range files {
					delete(files, p)
					changes = append(changes, store.Change{Kind: store.ChangeDeleted, Path: p, DocID: fl.DocID})
					break
				}
			}
			var origin store.Origin
			switch {
			case i == 10 && fi == 0:
				files["att/big.bin"] = store.File{Path: "att/big.bin", Blob: bigID, Size: int64(len(big)), DocID: "doc-big", Kind: "file"}
				changes = append(changes, store.Change{Kind: store.ChangeAdded, Path: "att/big.bin", DocID: "doc-big"})
			case i == 20:
				origin.Restored = 3
			case i == 30:
				origin.Pushed = &store.Pushed{Commit: [20]byte{1, 2, 3}, Parent: [20]byte{4, 5}, Pack: pack}
			}
			snap := &store.Snapshot{Folder: f, Time: t0.Add(time.Duration(i) * time.Minute), Users: []string{"u1"}, Changes: changes, Origin: origin}
			for _, fl := range files {
				snap.Files = append(snap.Files, fl)
			}
			sortFiles(snap.Files)
			docs := map[string]store.DocState{}
			for p, fl := range files {
				docs[fl.DocID] = store.DocState{Blob: fl.Blob, Path: p}
			}
			_, err := st.AddSnapshot(snap, docs, nil)
			must(err)
		}
	}
	must(st.SetPushState(folders[0], "conn1", &store.PushState{URL: "git@example.com:a/b.git", Branch: "main", Commit: [20]byte{9}, Seq: 12, PushedAt: t0, Linear: true}, []string{"notes/n1.md"}))
	_, _, err = st.Enqueue(store.QueuedEvent{ID: "ev-1", Relay: folders[0].Relay, Doc: "doc-x", Time: t0, Received: t0})
	must(err)
}

func sortFiles(fs []store.File) {
	slices.SortFunc(fs, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
}

// commits synthesizes every folder's history from st.
func commits(t *testing.T, st store.Backend) map[store.FolderID][]plumbing.Hash {
	t.Helper()
	out := map[store.FolderID][]plumbing.Hash{}
	for _, f := range folders {
		var snaps []*store.Snapshot
		if err := st.Walk(f, 0, func(s *store.Snapshot) error { snaps = append(snaps, s); return nil }); err != nil {
			t.Fatal(err)
		}
		ids, err := history.New(history.Config{}, memory.NewStorage()).Linear(snaps, plumbing.ZeroHash)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = ids
	}
	return out
}

// same fails unless a and b hold the same snapshots, doc states, push
// states, settings, queue and commit ids.
func same(t *testing.T, a, b store.Backend) {
	t.Helper()
	for _, f := range folders {
		sa, err := a.Snapshots(f, 0)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := b.Snapshots(f, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sa, sb) {
			t.Errorf("folder %s: the snapshot lists differ (%d and %d)", f, len(sa), len(sb))
		}
		la, _ := a.Latest(f)
		lb, _ := b.Latest(f)
		if la == nil || lb == nil || !reflect.DeepEqual(la.Files, lb.Files) {
			t.Errorf("folder %s: the latest trees differ", f)
		}
		da, _ := a.DocStates(f)
		db, _ := b.DocStates(f)
		if !reflect.DeepEqual(da, db) {
			t.Errorf("folder %s: doc states differ", f)
		}
	}
	ca, cb := commits(t, a), commits(t, b)
	if !reflect.DeepEqual(ca, cb) {
		t.Errorf("commit ids differ:\n%v\n%v", ca, cb)
	}
	pa, _ := a.PushStates()
	pb, _ := b.PushStates()
	if !reflect.DeepEqual(pa, pb) {
		t.Errorf("push states differ:\n%+v\n%+v", pa, pb)
	}
	ha, _ := a.HistoryConfig()
	hb, _ := b.HistoryConfig()
	if !bytes.Equal(ha, hb) {
		t.Errorf("history configs differ: %q %q", ha, hb)
	}
	qa, _ := a.PendingEvents()
	qb, _ := b.PendingEvents()
	if len(qa) != len(qb) || len(qa) == 0 || qa[0].ID != qb[0].ID || !qa[0].Time.Equal(qb[0].Time) {
		t.Errorf("queues differ: %+v %+v", qa, qb)
	}
	for _, f := range folders {
		l, _ := b.Latest(f)
		for _, fl := range l.Files {
			data, err := b.Blob(fl.Blob)
			if err != nil || store.BlobIDOf(data) != fl.Blob {
				t.Errorf("blob of %s in the copy: %v", fl.Path, err)
			}
		}
	}
}

func TestCopyBadger(t *testing.T) {
	src, dst := openMem(t), openMem(t)
	fill(t, src)
	st, err := storecopy.Copy(context.Background(), src, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Folders != 2 || st.Snapshots != 80 || st.PushStates != 1 || st.Events != 1 {
		t.Errorf("stats %+v", st)
	}
	same(t, src, dst)
	if _, err := storecopy.Copy(context.Background(), src, dst, nil); err == nil {
		t.Error("a copy into a store that holds folders was accepted")
	}
}

// A store copied to a JetStream cluster and back holds the same history,
// with the same commit ids, at every step: and so does a replica that
// replays the cluster's log from scratch.
func TestCopyThroughNATS(t *testing.T) {
	url := natstest.Start(t).URL()
	openNATS := func() store.Backend {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := natsstore.Open(context.Background(), nc, natsstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close(); nc.Close() })
		return ns
	}
	src := openMem(t)
	fill(t, src)
	there := openNATS()
	if _, err := storecopy.Copy(context.Background(), src, there, nil); err != nil {
		t.Fatal(err)
	}
	same(t, src, there)
	same(t, src, openNATS()) // replayed from the log
	back := openMem(t)
	if _, err := storecopy.Copy(context.Background(), openNATS(), back, nil); err != nil {
		t.Fatal(err)
	}
	same(t, src, back)
}
