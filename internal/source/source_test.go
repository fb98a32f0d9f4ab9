package source

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
)

var testFolder = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}

const testToken = "s3cret-token"

// fixture is a store with two snapshots of testFolder and an empty followed
// folder.
type fixture struct {
	st    *store.Store
	snaps []*store.Snapshot
	blobs map[string][]byte // path in the latest snapshot -> content
	empty store.FolderID
}

func putFile(t testing.TB, st *store.Store, path string, data []byte, kind string) store.File {
	t.Helper()
	id, err := st.PutBlob(data, store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	return store.File{Path: path, Blob: id, Size: int64(len(data)), DocID: "doc-" + path, Kind: kind}
}

func newFixture(t testing.TB, dir string) *fixture {
	t.Helper()
	var st *store.Store
	var err error
	if dir == "" {
		st, err = store.Open("", store.Options{InMemory: true})
	} else {
		st, err = store.Open(dir, store.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{st: st, blobs: map[string][]byte{}}
	t0 := time.Date(2026, 1, 31, 18, 0, 0, 123456789, time.UTC)
	bin := []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}
	s1 := &store.Snapshot{Folder: testFolder, Time: t0, Users: []string{"u1"},
		Changes: []store.Change{{Kind: store.ChangeAdded, Path: "a.md", DocID: "doc-a.md"}, {Kind: store.ChangeAdded, Path: "img/x.png", DocID: "doc-img/x.png"}},
		Files:   []store.File{putFile(t, st, "a.md", []byte("# A\n"), "markdown"), putFile(t, st, "img/x.png", bin, "file")}}
	s2 := &store.Snapshot{Folder: testFolder, Time: t0.Add(time.Minute),
		Changes: []store.Change{{Kind: store.ChangeModified, Path: "a.md", DocID: "doc-a.md"}, {Kind: store.ChangeRenamed, Path: "img/y.png", OldPath: "img/x.png", DocID: "doc-img/x.png"}},
		Files:   []store.File{putFile(t, st, "a.md", []byte("# A\nmore\n"), "markdown"), putFile(t, st, "img/y.png", bin, "file")}}
	s2.Files[1].DocID = "doc-img/x.png"
	for _, s := range []*store.Snapshot{s1, s2} {
		if _, err := st.AddSnapshot(s, nil, nil); err != nil {
			t.Fatal(err)
		}
		fx.snaps = append(fx.snaps, s)
	}
	fx.blobs["a.md"] = []byte("# A\nmore\n")
	fx.blobs["img/y.png"] = bin
	fx.empty = store.FolderID{Relay: testFolder.Relay, Folder: "00000000-0000-4000-8000-000000000001"}
	if err := st.AddFolder(fx.empty); err != nil {
		t.Fatal(err)
	}
	return fx
}

// reader adapts the store to server.Reader, as cmd/relay-git-sync's
// serve_reader.go does (package main cannot be imported), for the endpoints a
// Source uses; the embedded nil Reader stands for the others.
type reader struct {
	server.Reader
	src Source
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errors.Join(server.ErrNotFound, err)
	}
	return err
}

func (r reader) Folders() ([]server.FolderSummary, error) {
	list, err := r.src.Folders(context.Background())
	var out []server.FolderSummary
	for _, f := range list {
		out = append(out, server.FolderSummary(f))
	}
	return out, err
}

func (r reader) Snapshots(relay, folder string, after uint64) ([]server.SnapshotInfo, error) {
	infos, err := r.src.Snapshots(context.Background(), store.FolderID{Relay: relay, Folder: folder}, after)
	if err != nil {
		return nil, notFound(err)
	}
	out := make([]server.SnapshotInfo, len(infos))
	for i, in := range infos {
		out[i] = toServer(in)
	}
	return out, nil
}

func toServer(in store.SnapshotInfo) server.SnapshotInfo {
	out := server.SnapshotInfo{Seq: in.Seq, Time: in.Time, Users: in.Users, NumFiles: in.NumFiles}
	for _, c := range in.Changes {
		out.Changes = append(out.Changes, server.Change{Kind: c.Kind.String(), Path: c.Path, OldPath: c.OldPath, DocID: c.DocID})
	}
	return out
}

func (r reader) Snapshot(relay, folder string, seq uint64) (*server.Snapshot, error) {
	s, err := r.src.Snapshot(context.Background(), store.FolderID{Relay: relay, Folder: folder}, seq)
	if err != nil {
		return nil, notFound(err)
	}
	out := &server.Snapshot{SnapshotInfo: toServer(store.SnapshotInfo{Seq: s.Seq, Time: s.Time, Users: s.Users, Changes: s.Changes, NumFiles: len(s.Files)})}
	for _, f := range s.Files {
		out.Files = append(out.Files, server.File{Path: f.Path, Blob: f.Blob.String(), Kind: f.Kind, DocID: f.DocID, Size: f.Size})
	}
	return out, nil
}

func (r reader) Blob(id string) ([]byte, error) {
	b, err := store.ParseBlobID(id)
	if err != nil {
		return nil, errors.Join(server.ErrNotFound, err)
	}
	data, err := r.src.Blob(context.Background(), b)
	return data, notFound(err)
}

type nopSink struct{}

func (nopSink) Enqueue(context.Context, server.Event) (bool, error) { return false, nil }

// serveAPI runs the real read API over st and returns its URL.
func serveAPI(t testing.TB, st *store.Store) string {
	t.Helper()
	h, err := server.New(server.Config{InsecureNoAuth: true, APIToken: testToken, Events: nopSink{}, Reader: reader{src: FromStore(st)}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func norm(s store.SnapshotInfo) store.SnapshotInfo {
	if len(s.Users) == 0 {
		s.Users = nil
	}
	if len(s.Changes) == 0 {
		s.Changes = nil
	}
	return s
}

func infoOf(s *store.Snapshot) store.SnapshotInfo {
	return norm(store.SnapshotInfo{Seq: s.Seq, Time: s.Time, Users: s.Users, Changes: s.Changes, NumFiles: len(s.Files)})
}

// contract checks what every Source must do against fx's content.
func contract(t *testing.T, src Source, fx *fixture) {
	ctx := context.Background()
	folders, err := src.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	latest := fx.snaps[len(fx.snaps)-1]
	want := []Folder{
		{Relay: testFolder.Relay, Folder: fx.empty.Folder},
		{Relay: testFolder.Relay, Folder: testFolder.Folder, LatestSeq: latest.Seq, LatestTime: latest.Time},
	}
	if len(folders) != 2 {
		t.Fatalf("Folders: %+v", folders)
	}
	for i := range want {
		if folders[i].ID() != want[i].ID() || folders[i].LatestSeq != want[i].LatestSeq || !folders[i].LatestTime.Equal(want[i].LatestTime) {
			t.Fatalf("Folders[%d] = %+v, want %+v", i, folders[i], want[i])
		}
	}

	infos, err := src.Snapshots(ctx, testFolder, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(fx.snaps) {
		t.Fatalf("Snapshots: %d, want %d", len(infos), len(fx.snaps))
	}
	for i, in := range infos {
		if got, w := norm(in), infoOf(fx.snaps[i]); !reflect.DeepEqual(got, w) || in.Time.Location() != time.UTC {
			t.Fatalf("Snapshots[%d]:\n got %+v\nwant %+v", i, got, w)
		}
	}
	after, err := src.Snapshots(ctx, testFolder, 1)
	if err != nil || len(after) != 1 || after[0].Seq != 2 {
		t.Fatalf("Snapshots(after 1) = %+v, %v", after, err)
	}
	none, err := src.Snapshots(ctx, testFolder, 2)
	if err != nil || len(none) != 0 {
		t.Fatalf("Snapshots(after 2) = %+v, %v", none, err)
	}
	if e, err := src.Snapshots(ctx, fx.empty, 0); err != nil || len(e) != 0 {
		t.Fatalf("Snapshots(empty folder) = %+v, %v", e, err)
	}

	for _, seq := range []uint64{0, 1, 2} {
		s, err := src.Snapshot(ctx, testFolder, seq)
		if err != nil {
			t.Fatalf("Snapshot(%d): %v", seq, err)
		}
		w := latest
		if seq != 0 {
			w = fx.snaps[seq-1]
		}
		if s.Folder != testFolder || !reflect.DeepEqual(infoOf(s), infoOf(w)) || !reflect.DeepEqual(s.Files, w.Files) {
			t.Fatalf("Snapshot(%d):\n got %+v\nwant %+v", seq, s, w)
		}
	}
	for path, data := range fx.blobs {
		got, err := src.Blob(ctx, store.BlobIDOf(data))
		if err != nil || string(got) != string(data) {
			t.Fatalf("Blob(%s) = %q, %v", path, got, err)
		}
	}

	unknown := store.FolderID{Relay: testFolder.Relay, Folder: "00000000-0000-4000-8000-00000000dead"}
	for name, call := range map[string]func() error{
		"unknown seq":            func() error { _, err := src.Snapshot(ctx, testFolder, 99); return err },
		"unknown folder list":    func() error { _, err := src.Snapshots(ctx, unknown, 0); return err },
		"unknown folder latest":  func() error { _, err := src.Snapshot(ctx, unknown, 0); return err },
		"empty folder latest":    func() error { _, err := src.Snapshot(ctx, fx.empty, 0); return err },
		"unknown blob":           func() error { _, err := src.Blob(ctx, store.BlobIDOf([]byte("nope"))); return err },
		"unknown folder snap #1": func() error { _, err := src.Snapshot(ctx, unknown, 1); return err },
	} {
		if err := call(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
}

func TestStoreSource(t *testing.T) {
	fx := newFixture(t, "")
	defer fx.st.Close()
	contract(t, FromStore(fx.st), fx)
}

func TestHTTPSource(t *testing.T) {
	fx := newFixture(t, "")
	defer fx.st.Close()
	url := serveAPI(t, fx.st)
	for _, base := range []string{url, url + "/"} {
		src, err := NewHTTP(base, testToken)
		if err != nil {
			t.Fatal(err)
		}
		contract(t, src, fx)
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDataDirSource(t *testing.T) {
	dir := t.TempDir()
	fx := newFixture(t, filepath.Join(dir, StoreDirName))

	// While another Store (a running serve) holds the directory.
	_, err := OpenDataDir(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "use --server URL") {
		t.Fatalf("OpenDataDir of a held data dir: %v", err)
	}
	mem := newFixture(t, "") // the same content, to compare against
	defer mem.st.Close()
	if err := fx.st.Close(); err != nil {
		t.Fatal(err)
	}
	src, err := OpenDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	contract(t, src, fx)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := OpenDataDir(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing data dir: %v", err)
	}
	if _, err := OpenDataDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "has no snapshot store") {
		t.Fatalf("data dir without a store: %v", err)
	}
}

func TestHTTPErrors(t *testing.T) {
	fx := newFixture(t, "")
	defer fx.st.Close()
	url := serveAPI(t, fx.st)
	ctx := context.Background()

	for _, tok := range []string{"", "wrong"} {
		src, _ := NewHTTP(url, tok)
		_, err := src.Snapshots(ctx, testFolder, 0)
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "RELAY_GIT_TOKEN") {
			t.Errorf("token %q: %v", tok, err)
		}
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	src, _ := NewHTTP(deadURL, testToken)
	_, err := src.Folders(ctx)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "is `relay-git-sync serve` running at "+deadURL) {
		t.Errorf("dead server: %v", err)
	}

	// Something else listening there (a web page, not the API).
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>hello</html>"))
	}))
	defer other.Close()
	src, _ = NewHTTP(other.URL, testToken)
	if _, err := src.Folders(ctx); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("not the API: %v", err)
	}

	// A blob whose bytes do not match its id is refused.
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not what you asked for"))
	}))
	defer liar.Close()
	src, _ = NewHTTP(liar.URL, testToken)
	if _, err := src.Blob(ctx, store.BlobIDOf([]byte("x"))); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("corrupt blob: %v", err)
	}

	// Cancellation is reported as such, not as an unreachable server.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	src, _ = NewHTTP(slow.URL, testToken)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := src.Folders(cctx); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnreachable) {
		t.Errorf("cancelled: %v", err)
	}

	for _, bad := range []string{"", "localhost:8000", "ftp://x", "http://", "http://user:pw@host"} {
		if _, err := NewHTTP(bad, ""); err == nil {
			t.Errorf("NewHTTP(%q) accepted", bad)
		}
	}
}
