package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

type env struct {
	t      testing.TB
	srv    *relaytest.Server
	st     *store.Store
	client *relay.Client
	syncer *Syncer
	folder *relaytest.Folder
	id     store.FolderID
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv := relaytest.NewServer(relaytest.Options{APIKey: "server-token"})
	t.Cleanup(srv.Close)
	client, err := relay.NewClient(relay.ClientOptions{
		BaseURL: srv.URL(), APIKey: "server-token",
		Timeout: 2 * time.Second, MaxRetries: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := srv.NewFolder(srv.NewRelay())
	return &env{
		t: t, srv: srv, st: st, client: client, folder: f,
		id:     store.FolderID{Relay: f.RelayID(), Folder: f.ID()},
		syncer: New(Config{Store: st, Relay: client, Concurrency: 4}),
	}
}

func (e *env) sync(req Request) *Result {
	e.t.Helper()
	req.Folder = e.id
	res, err := e.syncer.SyncFolder(context.Background(), req)
	if err != nil {
		e.t.Fatalf("sync: %v", err)
	}
	return res
}

// tree returns the latest snapshot's files as path -> content.
func (e *env) tree() map[string]string {
	e.t.Helper()
	snap, err := e.st.Latest(e.id)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range snap.Files {
		b, err := e.st.Blob(f.Blob)
		if err != nil {
			e.t.Fatal(err)
		}
		if int64(len(b)) != f.Size {
			e.t.Errorf("%s: size %d, content has %d bytes", f.Path, f.Size, len(b))
		}
		out[f.Path] = string(b)
	}
	return out
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func changes(snap *store.Snapshot) string {
	var parts []string
	for _, c := range snap.Changes {
		if c.Kind == store.ChangeRenamed {
			parts = append(parts, fmt.Sprintf("%s %s->%s", c.Kind, c.OldPath, c.Path))
		} else {
			parts = append(parts, fmt.Sprintf("%s %s", c.Kind, c.Path))
		}
	}
	return strings.Join(parts, "; ")
}

func wantTree(t *testing.T, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("missing %s", p)
		} else if g != w {
			t.Errorf("%s = %q, want %q", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected %s", p)
		}
	}
}

var png = []byte("\x89PNG\r\n\x1a\n fake image bytes \x00\x01\x02")

func TestSyncLifecycle(t *testing.T) {
	e := newEnv(t)
	f := e.folder
	_, err := f.AddFolderEntry("/notes")
	e.must(err)
	_, err = f.AddMarkdown("/notes/plan.md", "# Plan\n\nÜber naïve 😀 漢字\n")
	e.must(err)
	_, err = f.AddMarkdown("/readme.md", "hello")
	e.must(err)
	_, err = f.AddCanvas("/board.canvas",
		[]map[string]any{{"id": "n1", "type": "text", "text": "", "x": 0.0, "y": 10.5, "width": 250.0, "height": 60.0}},
		[]map[string]any{}, map[string]string{"n1": "live text"})
	e.must(err)
	_, err = f.AddFile("/img/a.png", "image", "image/png", png)
	e.must(err)

	res := e.sync(Request{Time: time.Date(2026, 3, 3, 21, 58, 48, 123456789, time.UTC), Users: []string{"bob", "alice", "bob"}})
	if res.Snapshot == nil || res.Snapshot.Seq != 1 {
		t.Fatalf("first sync: snapshot %+v", res.Snapshot)
	}
	if got := res.Snapshot.Time; !got.Equal(time.Date(2026, 3, 3, 21, 58, 48, 123456789, time.UTC)) {
		t.Errorf("snapshot time %v", got)
	}
	if got := strings.Join(res.Snapshot.Users, ","); got != "alice,bob" {
		t.Errorf("users %q", got)
	}
	tree := e.tree()
	if !strings.Contains(tree["board.canvas"], `"text": "live text"`) {
		t.Errorf("canvas export lacks the live text:\n%s", tree["board.canvas"])
	}
	wantTree(t, tree, map[string]string{
		"notes/plan.md": "# Plan\n\nÜber naïve 😀 漢字\n",
		"readme.md":     "hello",
		"board.canvas":  tree["board.canvas"],
		"img/a.png":     string(png),
	})

	// Nothing changed: no snapshot, and the attachment is not downloaded again.
	downloads := e.srv.Requests(relaytest.RouteDownload)
	if res := e.sync(Request{}); res.Snapshot != nil {
		t.Fatalf("unchanged folder made snapshot %d: %s", res.Snapshot.Seq, changes(res.Snapshot))
	}
	if n := e.srv.Requests(relaytest.RouteDownload); n != downloads {
		t.Errorf("unchanged attachment downloaded again (%d -> %d)", downloads, n)
	}

	// Edit, rename, move a folder, delete, replace an attachment.
	e.must(f.EditMarkdown("/readme.md", "hello, world"))
	res = e.sync(Request{})
	if got := changes(res.Snapshot); got != "modified readme.md" {
		t.Errorf("after edit: %s", got)
	}
	e.must(f.Rename("/readme.md", "/README.md"))
	e.must(f.Rename("/notes", "/archive/notes"))
	res = e.sync(Request{})
	if got := changes(res.Snapshot); got != "renamed readme.md->README.md; renamed notes/plan.md->archive/notes/plan.md" {
		t.Errorf("after renames: %s", got)
	}
	e.must(f.Delete("/board.canvas"))
	e.must(f.UpdateFile("/img/a.png", append(png, "v2"...)))
	res = e.sync(Request{})
	if got := changes(res.Snapshot); got != "deleted board.canvas; modified img/a.png" {
		t.Errorf("after delete and file update: %s", got)
	}
	wantTree(t, e.tree(), map[string]string{
		"archive/notes/plan.md": "# Plan\n\nÜber naïve 😀 漢字\n",
		"README.md":             "hello, world",
		"img/a.png":             string(png) + "v2",
	})
	infos, err := e.st.Snapshots(e.id, 0)
	e.must(err)
	if len(infos) != 4 {
		t.Errorf("%d snapshots, want 4", len(infos))
	}
}

func TestHostileEntriesAreSkipped(t *testing.T) {
	e := newEnv(t)
	f := e.folder
	_, err := f.AddMarkdown("/ok.md", "fine")
	e.must(err)
	id := "0b4a6c3e-1111-4222-8333-944455556666"
	for _, key := range []string{"/../escape.md", "/a/.git/config", "/nul\x00.md", "/.GIT/hooks/pre-commit", "C:\\evil.md"} {
		e.must(f.SetRawEntry(key, map[string]any{"id": id, "type": "markdown", "version": 0.0}))
	}
	e.must(f.SetRawEntry("/noid.md", map[string]any{"type": "markdown"}))
	e.must(f.SetRawEntry("/nohash.png", map[string]any{"id": id, "type": "image"}))
	res := e.sync(Request{})
	if res.Snapshot == nil {
		t.Fatal("no snapshot")
	}
	wantTree(t, e.tree(), map[string]string{"ok.md": "fine"})
	if len(res.Skipped) != 7 {
		t.Errorf("skipped %d entries, want 7: %v", len(res.Skipped), res.Skipped)
	}
}

func TestFaultsLoseNothing(t *testing.T) {
	e := newEnv(t)
	f := e.folder
	a, err := f.AddMarkdown("/a.md", "alpha")
	e.must(err)
	_, err = f.AddMarkdown("/b.md", "beta")
	e.must(err)
	fileID, err := f.AddFile("/f.pdf", "pdf", "application/pdf", []byte("%PDF-1.7 one"))
	e.must(err)
	e.sync(Request{})

	t.Run("transient 5xx is retried", func(t *testing.T) {
		e.must(f.EditMarkdown("/a.md", "alpha 2"))
		e.srv.InjectFault(relaytest.RouteAsUpdate, a, relaytest.Fault{Status: 502, Times: 1})
		defer e.srv.ClearFaults()
		res := e.sync(Request{})
		if len(res.Failed) != 0 || res.Snapshot == nil {
			t.Fatalf("failed %v", res.Failed)
		}
	})
	t.Run("document down: previous content kept, rest synced", func(t *testing.T) {
		e.must(f.EditMarkdown("/a.md", "alpha 3"))
		e.must(f.EditMarkdown("/b.md", "beta 2"))
		e.must(f.Rename("/a.md", "/renamed-a.md"))
		e.srv.InjectFault(relaytest.RouteAsUpdate, a, relaytest.Fault{Status: 500})
		res := e.sync(Request{})
		e.srv.ClearFaults()
		if len(res.Failed) != 1 || res.Failed[0].DocID != a {
			t.Fatalf("failed = %v", res.Failed)
		}
		wantTree(t, e.tree(), map[string]string{"renamed-a.md": "alpha 2", "b.md": "beta 2", "f.pdf": "%PDF-1.7 one"})
		// Once the server recovers, the edit arrives.
		e.sync(Request{})
		wantTree(t, e.tree(), map[string]string{"renamed-a.md": "alpha 3", "b.md": "beta 2", "f.pdf": "%PDF-1.7 one"})
	})
	t.Run("garbage yjs and truncated bodies", func(t *testing.T) {
		e.must(f.EditMarkdown("/b.md", "beta 3"))
		b := f.EntryID("/b.md")
		e.srv.InjectFault(relaytest.RouteAsUpdate, b, relaytest.Fault{Garbage: true})
		res := e.sync(Request{})
		e.srv.ClearFaults()
		if len(res.Failed) != 1 {
			t.Fatalf("failed = %v", res.Failed)
		}
		if e.tree()["b.md"] != "beta 2" {
			t.Errorf("garbage replaced content: %q", e.tree()["b.md"])
		}
		e.srv.InjectFault(relaytest.RouteAsUpdate, b, relaytest.Fault{Truncate: true, Times: 1})
		res = e.sync(Request{})
		e.srv.ClearFaults()
		if len(res.Failed) != 0 || e.tree()["b.md"] != "beta 3" {
			t.Errorf("truncated body not retried: failed %v, content %q", res.Failed, e.tree()["b.md"])
		}
	})
	t.Run("attachment with wrong bytes is not stored", func(t *testing.T) {
		e.must(f.UpdateFile("/f.pdf", []byte("%PDF-1.7 two")))
		e.srv.InjectFault(relaytest.RouteDownload, fileID, relaytest.Fault{WrongBytes: true})
		res := e.sync(Request{})
		e.srv.ClearFaults()
		if len(res.Failed) != 1 || !errors.Is(res.Failed[0].Err, relay.ErrHashMismatch) {
			t.Fatalf("failed = %v", res.Failed)
		}
		if e.tree()["f.pdf"] != "%PDF-1.7 one" {
			t.Errorf("content %q", e.tree()["f.pdf"])
		}
	})
	t.Run("slow server times out", func(t *testing.T) {
		e.must(f.EditMarkdown("/b.md", "beta 4"))
		b := f.EntryID("/b.md")
		e.srv.InjectFault(relaytest.RouteAsUpdate, b, relaytest.Fault{Delay: 10 * time.Second})
		res := e.sync(Request{})
		e.srv.ClearFaults()
		if len(res.Failed) != 1 || e.tree()["b.md"] != "beta 3" {
			t.Fatalf("failed = %v, content %q", res.Failed, e.tree()["b.md"])
		}
	})
	t.Run("folder document down: no snapshot, clear error", func(t *testing.T) {
		e.srv.InjectFault(relaytest.RouteAsUpdate, f.ID(), relaytest.Fault{Status: 503})
		defer e.srv.ClearFaults()
		before, _ := e.st.Latest(e.id)
		_, err := e.syncer.SyncFolder(context.Background(), Request{Folder: e.id})
		if err == nil || !strings.Contains(err.Error(), "folder document") {
			t.Fatalf("err = %v", err)
		}
		after, _ := e.st.Latest(e.id)
		if after.Seq != before.Seq {
			t.Errorf("snapshot recorded despite failure")
		}
	})
}

func TestUnknownFolder(t *testing.T) {
	e := newEnv(t)
	_, err := e.syncer.SyncFolder(context.Background(), Request{Folder: store.FolderID{Relay: e.id.Relay, Folder: "99999999-9999-4999-8999-999999999999"}})
	if !errors.Is(err, ErrFolderNotFound) {
		t.Fatalf("err = %v", err)
	}
}

// With a dirty set, documents not in it are not fetched.
func TestDirtyFetchesOnlyWhatChanged(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 20 {
		id, err := e.folder.AddMarkdown(fmt.Sprintf("/n%02d.md", i), fmt.Sprintf("note %d", i))
		e.must(err)
		ids = append(ids, id)
	}
	e.sync(Request{})
	e.must(e.folder.EditMarkdown("/n05.md", "note five"))
	before := e.srv.Requests(relaytest.RouteAsUpdate)
	res := e.sync(Request{Dirty: map[string]bool{ids[5]: true}})
	if n := e.srv.Requests(relaytest.RouteAsUpdate) - before; n != 2 {
		t.Errorf("%d documents fetched, want 2 (folder and the dirty one)", n)
	}
	if got := changes(res.Snapshot); got != "modified n05.md" {
		t.Errorf("changes: %s", got)
	}
}

func TestDiff(t *testing.T) {
	b1, b2 := store.BlobIDOf([]byte("1")), store.BlobIDOf([]byte("2"))
	prev := []store.File{{Path: "a", DocID: "x", Blob: b1}, {Path: "b", DocID: "y", Blob: b1}, {Path: "c", DocID: "z", Blob: b1}}
	next := []store.File{{Path: "a", DocID: "x", Blob: b2}, {Path: "b2", DocID: "y", Blob: b1}, {Path: "d", DocID: "w", Blob: b1}, {Path: "e", DocID: "x", Blob: b2}}
	var got bytes.Buffer
	for _, c := range Diff(prev, next) {
		fmt.Fprintf(&got, "%s %s %s|", c.Kind, c.OldPath, c.Path)
	}
	want := "modified  a|renamed b b2|deleted  c|added  d|added  e|"
	if got.String() != want {
		t.Errorf("Diff = %s\nwant   %s", got.String(), want)
	}
}

// A write of relay-git-sync itself holds off the folder's other syncs and
// is recorded with its origin before they run; a write that failed half way
// is recorded too, with its error returned.
func TestWriteIsRecordedBeforeOtherSyncs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.folder.AddMarkdown("/a.md", "alpha\n")
	e.must(err)
	e.sync(Request{})

	inWrite, release := make(chan struct{}), make(chan struct{})
	other := make(chan *Result)
	var res *Result
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, werr = e.syncer.Write(ctx, e.id, func(ctx context.Context) (*Request, error) {
			if err := e.folder.EditMarkdown("/a.md", "alpha, restored\n"); err != nil {
				return nil, err
			}
			close(inWrite)
			<-release // a webhook's sync, started meanwhile, must wait
			return &Request{Folder: e.id, Origin: store.Origin{Restored: 1}}, nil
		})
	}()
	<-inWrite
	go func() {
		r, err := e.syncer.SyncFolder(ctx, Request{Folder: e.id})
		if err != nil {
			r = nil
		}
		other <- r
	}()
	// Give the sync time to reach the folder's lock (if it is slow, the
	// test only proves less).
	time.Sleep(100 * time.Millisecond)
	close(release)
	<-done
	if werr != nil || res == nil || res.Snapshot == nil || res.Snapshot.Seq != 2 || res.Snapshot.Origin.Restored != 1 {
		t.Fatalf("write: %+v %v", res, werr)
	}
	if r := <-other; r == nil || r.Snapshot != nil {
		t.Fatalf("the sync held off by the write recorded %+v, want nothing left to record", r)
	}

	// Failed half way: what was written is recorded, the error returned.
	boom := errors.New("the folder document failed")
	res, err = e.syncer.Write(ctx, e.id, func(ctx context.Context) (*Request, error) {
		e.must(e.folder.EditMarkdown("/a.md", "alpha, half\n"))
		return &Request{Folder: e.id, Origin: store.Origin{Restored: 1}}, boom
	})
	if !errors.Is(err, boom) || res == nil || res.Snapshot == nil || res.Snapshot.Origin.Restored != 1 {
		t.Fatalf("failed write: %+v %v", res, err)
	}
	// No request: nothing recorded.
	if res, err := e.syncer.Write(ctx, e.id, func(context.Context) (*Request, error) { return nil, nil }); res != nil || err != nil {
		t.Fatalf("write without a request: %+v %v", res, err)
	}
	wantTree(t, e.tree(), map[string]string{"a.md": "alpha, half\n"})
}
