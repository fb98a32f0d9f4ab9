// Package writeback writes files back into a Relay shared folder as the
// Relay plugin would: a note's text by a minimal diff against what the
// server holds now, a canvas key by key, an attachment by upload and a new
// filemeta_v0 entry, a rename by moving the entry (the document id stays).
//
// Every write is a Yjs update made against the server's current state with
// a fresh client id, holding only the local edits, so it merges with
// whatever anyone types meanwhile exactly as a Relay client's own edit
// would. Relay has no multi-document transaction: documents are written
// first and the folder document (the entries that make them visible) last,
// and a write that fails half way leaves what was written, which is
// harmless (CRDT updates are idempotent) and makes the next attempt a
// smaller diff.
package writeback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

// Relay is what writing needs of the Relay Server (relay.Client has it).
type Relay interface {
	// FetchDoc returns a document's state as a Yjs v1 update; an error
	// wrapping relay.ErrNotFound when the server has no such document.
	FetchDoc(ctx context.Context, relayID, docID string) ([]byte, error)
	// PushUpdate applies a Yjs v1 update to a document, creating it when
	// the server has none.
	PushUpdate(ctx context.Context, relayID, docID string, update []byte) error
	// HasFile says whether the server stores the attachment fileID with
	// content hash (lower-case SHA-256 hex).
	HasFile(ctx context.Context, relayID, fileID, hash string) (bool, error)
	// UploadFile stores data as attachment fileID with content hash.
	UploadFile(ctx context.Context, relayID, fileID, hash string, data []byte) error
}

// contentsKey is the root Y.Text of a note (§4.2); legacyDocsKey the
// folder's legacy map (path -> note id) the plugin still writes.
const (
	contentsKey   = "contents"
	legacyDocsKey = "docs"
)

// ErrRefused marks a change Relay cannot take (a path it cannot hold, a
// kind that does not fit what is there): nothing was written.
var ErrRefused = errors.New("refused")

// Change is one path of the folder as it should become.
type Change struct {
	// Path is the folder-relative path, slash-separated (as in snapshots
	// and git trees), e.g. "notes/plan.md".
	Path string
	// Delete removes Path's entry (its document stays on the server, as
	// when the plugin deletes a file).
	Delete bool
	// From, for a rename, is the current path whose entry moves to Path
	// (keeping its document id). Data may change the content as well.
	From string
	// Kind is store.File's kind: "markdown", "canvas" or "file".
	Kind string
	// DocID is the document or file id to use when Path must be created:
	// the one it had (restore), if the server still holds it; "" or a
	// document the server no longer has gives a new id.
	DocID string
	// Data is the content: a note's text (UTF-8), a canvas as relay
	// exports it, an attachment's bytes.
	Data []byte
}

// Op says what a planned action does to a path.
type Op string

// The operations a plan is made of.
const (
	OpEdit     Op = "edit"     // a note or canvas gets a diff
	OpCreate   Op = "create"   // a new entry (and document)
	OpRecreate Op = "recreate" // an entry comes back with its old document
	OpRename   Op = "rename"   // the entry moves (and may be edited)
	OpUpload   Op = "upload"   // an attachment's new content
	OpDelete   Op = "delete"   // the entry goes
	OpFolder   Op = "folder"   // a folder entry is created for a new path
)

// Action is one line of a plan.
type Action struct {
	Op     Op
	Path   string
	From   string // for OpRename
	DocID  string
	Detail string // e.g. "+12 -3 characters", "uploads 2.1 MB"

	update []byte // the document's update; nil when only the entry changes
	upload []byte // attachment bytes to upload; nil when the server has them
	hash   string
}

// Plan is what writing a set of changes will do. It is computed against
// the server's state when Prepare ran; Apply writes it.
type Plan struct {
	Folder  store.FolderID
	Actions []Action // sorted by path; no entry for a change that is already in place

	docs map[string]bool // the documents at the changes' paths, and those the actions write

	relay      Relay
	folderDoc  *yjs.Doc
	folderSV   []byte
	folderEdit bool
}

// Docs returns the ids of the documents the plan is about: those at the
// changes' paths when it was prepared (written or already as wanted) and
// those its actions write. A sync that records the plan fetches them.
func (p *Plan) Docs() map[string]bool {
	out := maps.Clone(p.docs)
	for _, a := range p.Actions {
		if a.DocID != "" {
			out[a.DocID] = true
		}
	}
	return out
}

// Empty says whether the plan writes nothing.
func (p *Plan) Empty() bool { return len(p.Actions) == 0 }

// Prepare reads the folder's current state from the server and works out
// the writes that turn it into what changes describe. Nothing is written.
// A change Relay cannot hold is an error naming its path, before anything
// is written.
func Prepare(ctx context.Context, r Relay, f store.FolderID, changes []Change) (*Plan, error) {
	raw, err := r.FetchDoc(ctx, f.Relay, f.Folder)
	if err != nil {
		return nil, fmt.Errorf("reading folder %s from the Relay Server: %w", f, err)
	}
	fd := yjs.NewDoc()
	if err := fd.ApplyUpdate(raw); err != nil {
		return nil, fmt.Errorf("decoding folder %s: %w", f, err)
	}
	p := &Plan{Folder: f, relay: r, folderDoc: fd, folderSV: fd.EncodeStateVector()}
	fd.SetRandomClientID()
	meta := fd.GetMap(relay.FileMetaKey)
	legacy := fd.GetMap(legacyDocsKey)
	cur, _ := meta.ToJSON().(map[string]any)
	entries, _ := relay.ParseFileMeta(cur)
	byPath := map[string]relay.Entry{}
	for _, e := range entries {
		byPath[e.RelPath] = e
	}

	p.docs = map[string]bool{}
	for _, c := range changes {
		if err := checkChange(c); err != nil {
			return nil, err
		}
		for _, at := range []string{c.Path, c.From} {
			if e, ok := byPath[at]; ok && at != "" {
				p.docs[e.ID] = true
			}
		}
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	wanted := map[string]bool{}
	for _, c := range changes {
		if !c.Delete {
			wanted[c.Path] = true
		}
	}
	now := time.Now().UnixMilli()
	for _, c := range changes {
		key := relay.VirtualPath(c.Path)
		if c.Delete {
			if _, ok := byPath[c.Path]; ok {
				meta.DeleteKey(key)
				if _, ok := legacy.Get(key); ok {
					legacy.DeleteKey(key)
				}
				delete(byPath, c.Path)
				p.Actions = append(p.Actions, Action{Op: OpDelete, Path: c.Path})
				p.folderEdit = true
			}
			continue
		}
		e, exists := byPath[c.Path]
		if !exists && c.From == "" && c.DocID != "" {
			// Restoring a file whose document now lives elsewhere: move it
			// back, unless that path is wanted too.
			if q, ok := pathOf(byPath, c.DocID); ok && !wanted[q] {
				c.From = q
			}
		}
		a := Action{Path: c.Path}
		switch {
		case exists && relay.KindOf(e.Type) != relay.EntryKind(c.Kind) && !(c.Kind == "file" && e.Kind() == relay.KindFile):
			return nil, fmt.Errorf("%s: is a %s in Relay, not a %s: delete it there first, or restore it under another name: %w", c.Path, e.Type, c.Kind, ErrRefused)
		case exists:
			a.Op, a.DocID = OpEdit, e.ID
		case c.From != "" && byPath[c.From].ID != "":
			e = byPath[c.From]
			a.Op, a.From, a.DocID = OpRename, c.From, e.ID
			from := relay.VirtualPath(c.From)
			meta.DeleteKey(from)
			delete(byPath, c.From)
			if err := meta.Set(key, e.Raw); err != nil {
				return nil, fmt.Errorf("%s: moving the entry: %w", c.Path, err)
			}
			if g, ok := legacy.Get(from); ok {
				legacy.DeleteKey(from)
				if err := legacy.Set(key, g); err != nil {
					return nil, fmt.Errorf("%s: moving the legacy entry: %w", c.Path, err)
				}
			}
			byPath[c.Path] = e
			p.folderEdit = true
			p.addFolders(meta, c.Path, byPath)
		default:
			a.Op = OpCreate
			if _, inUse := pathOf(byPath, c.DocID); c.DocID != "" && relay.IsUUID(c.DocID) && !inUse {
				a.DocID, a.Op = strings.ToLower(c.DocID), OpRecreate
			} else {
				a.DocID = newID()
			}
		}
		if err := p.content(ctx, &a, c); err != nil {
			return nil, err
		}
		if a.Op == OpEdit && a.update == nil && a.upload == nil && (c.Kind != "file" || e.Hash == a.hash) {
			continue // already as wanted
		}
		// The entry: created, or (for an attachment) pointing at the new hash.
		if a.Op == OpCreate || a.Op == OpRecreate || (c.Kind == "file" && e.Hash != a.hash) {
			entry := map[string]any{"id": a.DocID, "version": 0.0}
			if e.Raw != nil {
				for k, v := range e.Raw {
					entry[k] = v
				}
			}
			entry["type"] = entryType(c.Kind, c.Path, e.Type)
			if c.Kind == "file" {
				entry["hash"] = a.hash
				entry["mimetype"] = mimeType(c.Path, e.MimeType)
				entry["synctime"] = float64(now)
			}
			if err := meta.Set(key, entry); err != nil {
				return nil, fmt.Errorf("%s: writing the entry: %w", c.Path, err)
			}
			if c.Kind == "markdown" && (a.Op == OpCreate || a.Op == OpRecreate) {
				// The plugin writes a note's entry to its legacy map too.
				if err := legacy.Set(key, a.DocID); err != nil {
					return nil, fmt.Errorf("%s: writing the legacy entry: %w", c.Path, err)
				}
			}
			byPath[c.Path] = relay.Entry{Path: key, RelPath: c.Path, ID: a.DocID, Type: entry["type"].(string), Hash: a.hash, Raw: entry}
			p.folderEdit = true
			p.addFolders(meta, c.Path, byPath)
		}
		p.Actions = append(p.Actions, a)
	}
	p.dropEmptyFolders(meta, byPath, changes)
	return p, nil
}

// pathOf finds the path of the entry with document id.
func pathOf(byPath map[string]relay.Entry, id string) (string, bool) {
	for p, e := range byPath {
		if strings.EqualFold(e.ID, id) && e.Kind() != relay.KindFolder {
			return p, true
		}
	}
	return "", false
}

// content works out a's document update or upload for c's data.
func (p *Plan) content(ctx context.Context, a *Action, c Change) error {
	f := p.Folder
	if c.Kind == "file" {
		sum := sha256.Sum256(c.Data)
		a.hash = hex.EncodeToString(sum[:])
		has, err := p.relay.HasFile(ctx, f.Relay, a.DocID, a.hash)
		if err != nil {
			return fmt.Errorf("%s: asking the Relay Server for its attachment: %w", c.Path, err)
		}
		if !has {
			a.upload = c.Data
			a.Detail = "uploads " + humanBytes(len(c.Data))
		}
		return nil
	}
	doc := yjs.NewDoc()
	raw, err := p.relay.FetchDoc(ctx, f.Relay, a.DocID)
	switch {
	case errors.Is(err, relay.ErrNotFound):
		if a.Op == OpRecreate {
			a.Op, a.DocID = OpCreate, newID() // the server lost it: a new document
		}
	case err != nil:
		return fmt.Errorf("%s: reading its document: %w", c.Path, err)
	default:
		if err := doc.ApplyUpdate(raw); err != nil {
			return fmt.Errorf("%s: decoding its document: %w", c.Path, err)
		}
	}
	sv := doc.EncodeStateVector()
	doc.SetRandomClientID()
	switch c.Kind {
	case "markdown":
		t := doc.GetText(contentsKey)
		before := t.String()
		if err := t.ApplyDiff(string(c.Data)); err != nil {
			return fmt.Errorf("%s: %w", c.Path, err)
		}
		if before != string(c.Data) {
			a.Detail = textDetail(before, string(c.Data))
		}
	case "canvas":
		changed, err := applyCanvas(doc, c.Data)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Path, err)
		}
		if changed > 0 {
			a.Detail = fmt.Sprintf("%d canvas keys", changed)
		}
	}
	if a.Detail == "" && a.Op == OpEdit {
		return nil
	}
	up, err := doc.EncodeLocalChanges(sv)
	if err != nil {
		return fmt.Errorf("%s: encoding the update: %w", c.Path, err)
	}
	if a.Detail != "" || raw == nil {
		a.update = up
	}
	return nil
}

// addFolders gives each parent directory of p that has no entry a folder
// entry, as the plugin keeps one for every folder.
func (p *Plan) addFolders(meta *yjs.Type, rel string, byPath map[string]relay.Entry) {
	for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := byPath[dir]; ok {
			return
		}
		e := map[string]any{"id": newID(), "type": "folder", "version": 0.0}
		_ = meta.Set(relay.VirtualPath(dir), e) // a plain JSON object: cannot fail
		byPath[dir] = relay.Entry{Path: relay.VirtualPath(dir), RelPath: dir, ID: e["id"].(string), Type: "folder", Raw: e}
		p.Actions = append(p.Actions, Action{Op: OpFolder, Path: dir, DocID: e["id"].(string)})
	}
}

// dropEmptyFolders removes the folder entries that deletions and renames
// emptied (git has no empty directories: a pushed tree without a
// directory's files means the directory is gone).
func (p *Plan) dropEmptyFolders(meta *yjs.Type, byPath map[string]relay.Entry, changes []Change) {
	emptied := map[string]bool{}
	for _, c := range changes {
		gone := c.From
		if c.Delete {
			gone = c.Path
		}
		for dir := path.Dir(gone); gone != "" && dir != "." && dir != "/"; dir = path.Dir(dir) {
			emptied[dir] = true
		}
	}
	var dirs []string
	for d := range emptied {
		dirs = append(dirs, d)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // children first
	for _, d := range dirs {
		e, ok := byPath[d]
		if !ok || e.Kind() != relay.KindFolder {
			continue
		}
		inside := false
		for q := range byPath {
			if strings.HasPrefix(q, d+"/") {
				inside = true
				break
			}
		}
		if !inside {
			meta.DeleteKey(relay.VirtualPath(d))
			delete(byPath, d)
			p.Actions = append(p.Actions, Action{Op: OpDelete, Path: d, Detail: "empty folder"})
			p.folderEdit = true
		}
	}
}

// Written is what Apply wrote before it stopped.
type Written struct {
	Paths []string // actions fully written, in order
}

// Apply writes the plan: uploads, then each document's update, then the
// folder document (so an entry never shows before its content). On an error the result says what was written (which
// stays: a second Prepare+Apply writes only what is missing).
func (p *Plan) Apply(ctx context.Context) (Written, error) {
	var w Written
	f := p.Folder
	// Uploads first: the one write that needs more than the server token
	// (relay.ErrNeedFileToken) fails before anything else is written.
	for _, a := range p.Actions {
		if a.upload != nil {
			if err := p.relay.UploadFile(ctx, f.Relay, a.DocID, a.hash, a.upload); err != nil {
				return w, fmt.Errorf("%s: uploading: %w", a.Path, err)
			}
		}
	}
	for _, a := range p.Actions {
		if a.update != nil {
			if err := p.relay.PushUpdate(ctx, f.Relay, a.DocID, a.update); err != nil {
				return w, fmt.Errorf("%s: writing its document: %w", a.Path, err)
			}
		}
		if a.update != nil || a.upload != nil {
			w.Paths = append(w.Paths, a.Path)
		}
	}
	if p.folderEdit {
		up, err := p.folderDoc.EncodeLocalChanges(p.folderSV)
		if err != nil {
			return w, fmt.Errorf("folder %s: encoding the folder update: %w", f, err)
		}
		if err := p.relay.PushUpdate(ctx, f.Relay, f.Folder, up); err != nil {
			return w, fmt.Errorf("folder %s: writing the folder's entries (the documents are written, the entries that show them are not): %w", f, err)
		}
		for _, a := range p.Actions {
			if a.update == nil && a.upload == nil {
				w.Paths = append(w.Paths, a.Path)
			}
		}
	}
	return w, nil
}

func checkChange(c Change) error {
	if _, err := relay.SanitizePath(relay.VirtualPath(c.Path)); err != nil || c.Path == "" || strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("%q: not a path Relay can hold (%v): %w", c.Path, err, ErrRefused)
	}
	if c.From != "" {
		if _, err := relay.SanitizePath(relay.VirtualPath(c.From)); err != nil {
			return fmt.Errorf("%q: not a path Relay can hold (%v): %w", c.From, err, ErrRefused)
		}
	}
	if c.Delete {
		return nil
	}
	switch c.Kind {
	case "markdown", "canvas", "file":
	default:
		return fmt.Errorf("%s: unknown kind %q (want markdown, canvas or file): %w", c.Path, c.Kind, ErrRefused)
	}
	return nil
}

// textDetail summarizes a text change in UTF-16 code units, as Relay counts.
func textDetail(before, after string) string {
	// The common prefix and suffix bound what changed; the exact ops are the
	// document's business.
	b, a := []rune(before), []rune(after)
	i := 0
	for i < len(b) && i < len(a) && b[i] == a[i] {
		i++
	}
	j := 0
	for j < len(b)-i && j < len(a)-i && b[len(b)-1-j] == a[len(a)-1-j] {
		j++
	}
	return fmt.Sprintf("+%d -%d characters", len(a)-i-j, len(b)-i-j)
}

func humanBytes(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
