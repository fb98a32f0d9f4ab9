package fusefs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

var testFolder = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}

// snapWriter writes snapshots of one folder to a store, with change lists
// computed from the trees (by path).
type snapWriter struct {
	t    testing.TB
	st   *store.Store
	prev []store.File
}

func newWriter(t testing.TB) *snapWriter {
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &snapWriter{t: t, st: st}
}

func (h *snapWriter) add(at time.Time, files map[string][]byte) *store.Snapshot {
	h.t.Helper()
	var fl []store.File
	for p, data := range files {
		id, err := h.st.PutBlob(data, store.BlobID{})
		if err != nil {
			h.t.Fatal(err)
		}
		kind := "file"
		if strings.HasSuffix(p, ".md") {
			kind = "markdown"
		}
		fl = append(fl, store.File{Path: p, Blob: id, Size: int64(len(data)), DocID: "doc-" + p, Kind: kind})
	}
	sort.Slice(fl, func(i, j int) bool { return fl[i].Path < fl[j].Path })
	before := map[string]store.BlobID{}
	for _, f := range h.prev {
		before[f.Path] = f.Blob
	}
	var changes []store.Change
	for _, f := range fl {
		if b, ok := before[f.Path]; !ok {
			changes = append(changes, store.Change{Kind: store.ChangeAdded, Path: f.Path, DocID: f.DocID})
		} else if b != f.Blob {
			changes = append(changes, store.Change{Kind: store.ChangeModified, Path: f.Path, DocID: f.DocID})
		}
		delete(before, f.Path)
	}
	for p := range before {
		changes = append(changes, store.Change{Kind: store.ChangeDeleted, Path: p, DocID: "doc-" + p})
	}
	snap := &store.Snapshot{Folder: testFolder, Time: at, Changes: changes, Files: fl}
	if _, err := h.st.AddSnapshot(snap, nil, nil); err != nil {
		h.t.Fatal(err)
	}
	h.prev = fl
	return snap
}

// mount mounts testFolder of src in a new temporary directory. A machine
// without FUSE skips the test (fails it under CI); a mount that fails is a
// failure, permission refused included.
func mount(t testing.TB, src source.Source, o Options) (*FS, string) {
	t.Helper()
	testreq.FUSE(t)
	dir := t.TempDir()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	fsys, err := Mount(context.Background(), dir, src, testFolder, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fsys.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	})
	return fsys, dir
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// syncBuffer collects log output for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// flaky wraps a Source and fails every call while down is set.
type flaky struct {
	source.Source
	mu   sync.Mutex
	down bool
}

var errDown = errors.New("connection refused (test)")

func (f *flaky) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }
func (f *flaky) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.Join(source.ErrUnreachable, errDown)
	}
	return nil
}

func (f *flaky) Snapshots(ctx context.Context, id store.FolderID, after uint64) ([]store.SnapshotInfo, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Source.Snapshots(ctx, id, after)
}

func (f *flaky) Snapshot(ctx context.Context, id store.FolderID, seq uint64) (*store.Snapshot, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Source.Snapshot(ctx, id, seq)
}

func (f *flaky) Blob(ctx context.Context, id store.BlobID) ([]byte, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Source.Blob(ctx, id)
}
