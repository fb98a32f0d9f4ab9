package writeback

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
	"github.com/relay-git-sync/relay-git-sync/internal/yjsoracle"
)

const (
	relayID  = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	folderID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
	noteID   = "11111111-1111-4111-8111-111111111111"
	otherID  = "22222222-2222-4222-8222-222222222222"
	canvasID = "33333333-3333-4333-8333-333333333333"
	imageID  = "44444444-4444-4444-8444-444444444444"
)

var folder = store.FolderID{Relay: relayID, Folder: folderID}

// oracle runs steps.mjs jobs with the real yjs; dir holds the files its
// save steps write.
type oracle struct {
	t   *testing.T
	dir string
	n   int
}

func newOracle(t *testing.T) *oracle { return &oracle{t: t, dir: t.TempDir()} }

func (o *oracle) file(b []byte) string { return yjsoracle.File(o.t, b) }

func (o *oracle) run(steps ...map[string]any) map[string]any {
	o.t.Helper()
	return yjsoracle.Run(o.t, steps...)
}

// fakeRelay keeps each document as the list of updates it was given (the
// first one made by the real yjs), so the test can replay them in yjs.
type fakeRelay struct {
	mu      sync.Mutex
	docs    map[string][][]byte
	files   map[string][]byte // fileID/hash
	pushes  int
	uploads int
}

func (r *fakeRelay) FetchDoc(_ context.Context, _, docID string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ups, ok := r.docs[docID]
	if !ok {
		return nil, fmt.Errorf("document %s: %w", docID, relay.ErrNotFound)
	}
	d := yjs.NewDoc()
	for _, u := range ups {
		if err := d.ApplyUpdate(u); err != nil {
			return nil, err
		}
	}
	return d.EncodeStateAsUpdate()
}

func (r *fakeRelay) PushUpdate(_ context.Context, _, docID string, u []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.docs[docID] = append(r.docs[docID], u)
	r.pushes++
	return nil
}

func (r *fakeRelay) HasFile(_ context.Context, _, fileID, hash string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.files[fileID+"/"+hash]
	return ok, nil
}

func (r *fakeRelay) UploadFile(_ context.Context, _, fileID, hash string, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hash {
		return fmt.Errorf("upload %s: bytes do not match hash", fileID)
	}
	r.files[fileID+"/"+hash] = data
	r.uploads++
	return nil
}

// replay applies a document's updates in the real yjs and returns the
// values of what steps ask for.
func (r *fakeRelay) replay(o *oracle, docID string, read ...map[string]any) map[string]any {
	steps := []map[string]any{{"op": "new", "doc": "d"}}
	for _, u := range r.docs[docID] {
		steps = append(steps, map[string]any{"op": "apply", "doc": "d", "file": o.file(u)})
	}
	return o.run(append(steps, read...)...)
}

func entry(id, typ string) map[string]any { return map[string]any{"id": id, "type": typ, "version": 0} }

// setup makes, with the real yjs, a folder holding notes/a.md (noteID)
// and b.md (otherID) whose contents are given, plus a canvas document the
// folder no longer lists.
func setup(t *testing.T, o *oracle, noteText string) *fakeRelay {
	t.Helper()
	state := func(steps ...map[string]any) []byte {
		p := filepath.Join(o.dir, fmt.Sprintf("s%d", o.n+1000))
		o.n++
		o.run(append(steps, map[string]any{"op": "saveState", "doc": "d", "file": p})...)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r := &fakeRelay{docs: map[string][][]byte{}, files: map[string][]byte{}}
	r.docs[folderID] = [][]byte{state(
		map[string]any{"op": "new", "doc": "d", "client": 7},
		map[string]any{"op": "mapSet", "doc": "d", "root": "filemeta_v0", "key": "/notes", "value": entry("55555555-5555-4555-8555-555555555555", "folder")},
		map[string]any{"op": "mapSet", "doc": "d", "root": "filemeta_v0", "key": "/notes/a.md", "value": entry(noteID, "markdown")},
		map[string]any{"op": "mapSet", "doc": "d", "root": "filemeta_v0", "key": "/b.md", "value": entry(otherID, "markdown")},
	)}
	r.docs[noteID] = [][]byte{state(
		map[string]any{"op": "new", "doc": "d", "client": 8},
		map[string]any{"op": "history", "doc": "d", "root": "contents", "text": noteText, "seed": 3, "clients": 2, "chunk": 5},
	)}
	r.docs[otherID] = [][]byte{state(
		map[string]any{"op": "new", "doc": "d", "client": 9},
		map[string]any{"op": "insert", "doc": "d", "root": "contents", "index": 0, "text": "other"},
	)}
	r.docs[canvasID] = [][]byte{state(
		map[string]any{"op": "new", "doc": "d", "client": 10},
		map[string]any{"op": "mapSet", "doc": "d", "root": "nodes", "key": "n1", "value": map[string]any{"id": "n1", "type": "text", "x": 0, "y": 0}},
		map[string]any{"op": "insert", "doc": "d", "root": "n1", "index": 0, "text": "old"},
	)}
	return r
}

func filemeta(t *testing.T, r *fakeRelay, o *oracle) map[string]any {
	t.Helper()
	m, _ := r.replay(o, folderID, map[string]any{"op": "map", "doc": "d", "root": "filemeta_v0", "name": "m"})["m"].(map[string]any)
	return m
}

func prepare(t *testing.T, r Relay, changes ...Change) *Plan {
	t.Helper()
	p, err := Prepare(context.Background(), r, folder, changes)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func apply(t *testing.T, p *Plan) {
	t.Helper()
	if _, err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// An edited note gets a diff, not the whole text, and yjs reads the result;
// a note typed in concurrently keeps every character.
func TestEditNoteMergesConcurrentEdit(t *testing.T) {
	o := newOracle(t)
	old := strings.Repeat("Lorem ipsum 😀 dolor 日本語 sit amet. ", 200)
	r := setup(t, o, old)
	want := strings.Replace(old, "dolor 日本語", "dolor 日本 語 🎉", 1)

	p := prepare(t, r, Change{Path: "notes/a.md", Kind: "markdown", DocID: noteID, Data: []byte(want)})
	if len(p.Actions) != 1 || p.Actions[0].Op != OpEdit || p.Actions[0].Detail == "" {
		t.Fatalf("plan %v", p.Actions)
	}
	if n := len(p.Actions[0].update); n > 200 {
		t.Errorf("update of %d bytes for a few characters of a %d-byte note", n, len(old))
	}
	// Between the read and the write, a yjs client types at the end.
	sv := filepath.Join(o.dir, "sv")
	conc := filepath.Join(o.dir, "conc")
	steps := []map[string]any{{"op": "new", "doc": "d", "client": 99}}
	for _, u := range r.docs[noteID] {
		steps = append(steps, map[string]any{"op": "apply", "doc": "d", "file": o.file(u)})
	}
	o.run(append(steps,
		map[string]any{"op": "saveSV", "doc": "d", "file": sv},
		map[string]any{"op": "insert", "doc": "d", "root": "contents", "index": 0, "text": "TYPED "},
		map[string]any{"op": "saveDiff", "doc": "d", "sv": sv, "file": conc})...)
	c, err := os.ReadFile(conc)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PushUpdate(context.Background(), relayID, noteID, c); err != nil {
		t.Fatal(err)
	}
	apply(t, p)
	got := r.replay(o, noteID, map[string]any{"op": "text", "doc": "d", "root": "contents", "name": "t"})["t"]
	if got != "TYPED "+want {
		t.Errorf("yjs reads %.120q…, want the concurrent edit and the restore", got)
	}
	// Applying again changes nothing.
	if p2 := prepare(t, r, Change{Path: "notes/a.md", Kind: "markdown", DocID: noteID, Data: []byte("TYPED " + want)}); !p2.Empty() {
		t.Errorf("second plan %v", p2.Actions)
	}
}

// A deleted note comes back with its old document, a renamed one moves
// back, a deleted canvas and attachment come back, and Prepare alone
// writes nothing.
func TestRestoreDeletedRenamedCanvasAttachment(t *testing.T) {
	o := newOracle(t)
	r := setup(t, o, "note text")
	// a.md was deleted in Relay (its document stays); b.md is where
	// c.md's document (otherID) now lives.
	fd := yjs.NewDoc()
	for _, u := range r.docs[folderID] {
		if err := fd.ApplyUpdate(u); err != nil {
			t.Fatal(err)
		}
	}
	sv := fd.EncodeStateVector()
	fd.SetRandomClientID()
	fd.GetMap("filemeta_v0").DeleteKey("/notes/a.md")
	fd.GetMap("filemeta_v0").DeleteKey("/notes")
	u, err := fd.EncodeLocalChanges(sv)
	if err != nil {
		t.Fatal(err)
	}
	r.docs[folderID] = append(r.docs[folderID], u)

	canvas := []byte(`{"edges": [{"fromNode": "n1", "id": "e1", "toNode": "n2"}], "nodes": [{"id": "n1", "text": "new text", "type": "text", "x": 0, "y": 0}, {"id": "n2", "text": "", "type": "text", "x": 100, "y": 0}]}`)
	img := []byte("\x89PNG\r\n\x1a\nnot really")
	changes := []Change{
		{Path: "notes/a.md", Kind: "markdown", DocID: noteID, Data: []byte("note text, restored")},
		{Path: "c.md", Kind: "markdown", DocID: otherID, Data: []byte("other")},
		{Path: "board.canvas", Kind: "canvas", DocID: canvasID, Data: canvas},
		{Path: "img/pic.png", Kind: "file", DocID: imageID, Data: img},
	}
	pushes := r.pushes
	p := prepare(t, r, changes...)
	if r.pushes != pushes || r.uploads != 0 {
		t.Fatal("Prepare wrote")
	}
	ops := map[string]Op{}
	for _, a := range p.Actions {
		ops[a.Path] = a.Op
	}
	wantOps := map[string]Op{"notes/a.md": OpRecreate, "notes": OpFolder, "c.md": OpRename, "board.canvas": OpRecreate, "img/pic.png": OpRecreate, "img": OpFolder}
	if !reflect.DeepEqual(ops, wantOps) {
		t.Errorf("ops %v, want %v", ops, wantOps)
	}
	apply(t, p)

	meta := filemeta(t, r, o)
	for path, want := range map[string][2]string{
		"/notes/a.md": {noteID, "markdown"}, "/c.md": {otherID, "markdown"},
		"/board.canvas": {canvasID, "canvas"}, "/img/pic.png": {imageID, "image"},
		"/notes": {"", "folder"}, "/img": {"", "folder"},
	} {
		e, _ := meta[path].(map[string]any)
		if e == nil || (want[0] != "" && e["id"] != want[0]) || e["type"] != want[1] {
			t.Errorf("filemeta %s = %v, want id %s type %s", path, e, want[0], want[1])
		}
	}
	if _, ok := meta["/b.md"]; ok {
		t.Error("b.md still listed after the rename back to c.md")
	}
	legacy, _ := r.replay(o, folderID, map[string]any{"op": "map", "doc": "d", "root": "docs", "name": "m"})["m"].(map[string]any)
	if legacy["/notes/a.md"] != noteID {
		t.Errorf("legacy docs map %v: the re-created note is not in it, as the plugin would put it", legacy)
	}
	sum := sha256.Sum256(img)
	if e, _ := meta["/img/pic.png"].(map[string]any); e["hash"] != hex.EncodeToString(sum[:]) || e["mimetype"] != "image/png" {
		t.Errorf("attachment entry %v", e)
	}
	if !bytes.Equal(r.files[imageID+"/"+hex.EncodeToString(sum[:])], img) {
		t.Error("attachment not uploaded")
	}
	if got := r.replay(o, noteID, map[string]any{"op": "text", "doc": "d", "root": "contents", "name": "t"})["t"]; got != "note text, restored" {
		t.Errorf("note reads %q", got)
	}
	// The canvas as yjs holds it exports to what was restored.
	out := r.replay(o, canvasID,
		map[string]any{"op": "map", "doc": "d", "root": "nodes", "name": "nodes"},
		map[string]any{"op": "map", "doc": "d", "root": "edges", "name": "edges"},
		map[string]any{"op": "text", "doc": "d", "root": "n1", "name": "n1"},
		map[string]any{"op": "text", "doc": "d", "root": "n2", "name": "n2"})
	nodes, _ := out["nodes"].(map[string]any)
	edges, _ := out["edges"].(map[string]any)
	got, err := relay.ExportCanvas(nodes, edges, func(name string) (string, bool) { s, ok := out[name].(string); return s, ok })
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	json.Unmarshal(got, &a)
	json.Unmarshal(canvas, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("canvas exports as\n%s\nwant\n%s", got, canvas)
	}
	// Once written, the same restore is empty.
	if p2 := prepare(t, r, changes...); !p2.Empty() {
		t.Errorf("second plan %v", p2.Actions)
	}
}

// A push's deletions and renames: the entry goes, an emptied folder entry
// goes with it, and a path Relay cannot hold is refused before anything is
// written.
func TestDeleteAndRefuse(t *testing.T) {
	o := newOracle(t)
	r := setup(t, o, "x")
	pushes := r.pushes
	for _, bad := range []Change{
		{Path: "../etc/passwd", Kind: "markdown"},
		{Path: "/abs.md", Kind: "markdown"},
		{Path: "nul\x00.md", Kind: "markdown"},
		{Path: "ok.md", Kind: "symlink"},
	} {
		if _, err := Prepare(context.Background(), r, folder, []Change{{Path: "fine.md", Kind: "markdown", Data: []byte("x")}, bad}); err == nil {
			t.Errorf("%q accepted", bad.Path)
		}
	}
	if r.pushes != pushes {
		t.Fatal("a refused plan wrote")
	}
	apply(t, prepare(t, r, Change{Path: "notes/a.md", Delete: true}))
	meta := filemeta(t, r, o)
	if _, ok := meta["/notes/a.md"]; ok {
		t.Error("notes/a.md still listed")
	}
	if _, ok := meta["/notes"]; ok {
		t.Error("the emptied folder entry is still listed")
	}
	if _, ok := meta["/b.md"]; !ok {
		t.Error("b.md lost")
	}
}

func TestRestoreChanges(t *testing.T) {
	snap := &store.Snapshot{Folder: folder, Seq: 4, Files: []store.File{
		{Path: "a.md", Kind: "markdown", DocID: noteID},
		{Path: "dir/b.md", Kind: "markdown", DocID: otherID},
		{Path: "dir/sub/c.png", Kind: "file", DocID: imageID},
		{Path: "dirx.md", Kind: "markdown", DocID: canvasID},
	}}
	blob := func(store.BlobID) ([]byte, error) { return []byte("x"), nil }
	paths := func(ps ...string) []string {
		cs, err := RestoreChanges(snap, ps, blob)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Path)
		}
		return out
	}
	if got := paths("dir"); !reflect.DeepEqual(got, []string{"dir/b.md", "dir/sub/c.png"}) {
		t.Errorf("dir: %v", got)
	}
	if got := paths(); len(got) != 4 {
		t.Errorf("whole folder: %v", got)
	}
	if _, err := RestoreChanges(snap, []string{"nope.md"}, blob); err == nil || !strings.Contains(err.Error(), "not in snapshot 4") {
		t.Errorf("missing path: %v", err)
	}
}

// A file moved into a directory that does not exist yet gets folder
// entries for it, as the plugin keeps them, and keeps its document.
func TestRenameIntoNewFolder(t *testing.T) {
	o := newOracle(t)
	r := setup(t, o, "x")
	apply(t, prepare(t, r, Change{Path: "x/y/b.md", From: "b.md", Kind: "markdown", Data: []byte("other")}))
	meta := filemeta(t, r, o)
	if e, _ := meta["/x/y/b.md"].(map[string]any); e == nil || e["id"] != otherID {
		t.Errorf("moved entry %v, want document %s", meta["/x/y/b.md"], otherID)
	}
	for _, dir := range []string{"/x", "/x/y"} {
		if e, _ := meta[dir].(map[string]any); e == nil || e["type"] != "folder" {
			t.Errorf("no folder entry for %s: %v", dir, meta)
		}
	}
}
