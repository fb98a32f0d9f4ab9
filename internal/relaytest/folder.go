package relaytest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"unicode/utf16"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

// legacyDocsKey is the plugin's legacy root map (path -> guid) that it still
// keeps in step with filemeta_v0 for markdown documents (SyncStore.ts
// legacyIds).
const legacyDocsKey = "docs"

// Folder is a shared folder on the fake server: one folder document whose
// root Y.Map filemeta_v0 maps virtual paths ("/notes/a.md") to entries
// (§4.1). Its methods change the documents as the Obsidian Relay plugin
// does, send webhooks for the documents they touched (see AddWebhook), and
// are safe for concurrent use.
//
// Paths must start with "/" and must not end with "/"; missing parent
// folders get folder entries, as the plugin creates them. For hostile or
// malformed entries use SetRawEntry.
type Folder struct {
	s       *Server
	relayID string
	id      string
	cid     string
}

// ID is the folder's UUID (its document is RelayID()-ID()).
func (f *Folder) ID() string { return f.id }

// RelayID is the relay the folder belongs to.
func (f *Folder) RelayID() string { return f.relayID }

// locked runs fn with the server lock held and the folder document's maps;
// afterwards webhooks are sent for the folder doc (if changed) and for the
// extra documents fn reports.
func (f *Folder) locked(fn func(d *yjs.Doc, meta, legacy *yjs.Type) (changed bool, docs []string, err error)) error {
	s := f.s
	s.mu.Lock()
	d, ok := s.docs[f.cid]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("relaytest: folder document %s was deleted", f.cid)
	}
	changed, docs, err := fn(d, d.GetMap(relay.FileMetaKey), d.GetMap(legacyDocsKey))
	s.mu.Unlock()
	for _, cid := range docs {
		s.emit(cid)
	}
	if changed {
		s.emit(f.cid)
	}
	return err
}

func checkVPath(p string) error {
	if len(p) < 2 || p[0] != '/' || strings.HasSuffix(p, "/") {
		return fmt.Errorf("relaytest: %w %q (want \"/a/b\")", ErrBadPath, p)
	}
	return nil
}

// entry returns the filemeta object at path (a copy), or nil.
func entry(meta *yjs.Type, path string) map[string]any {
	v, ok := meta.Get(path)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return map[string]any{} // a raw non-object entry
	}
	return maps.Clone(m)
}

func isFolderEntry(e map[string]any) bool { return e != nil && e["type"] == "folder" }

// ensureParents creates folder entries for the missing ancestors of path.
func (f *Folder) ensureParents(meta *yjs.Type, path string) (bool, error) {
	changed := false
	for i := 1; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		dir := path[:i]
		if e := entry(meta, dir); e != nil {
			if !isFolderEntry(e) {
				return changed, fmt.Errorf("relaytest: %q: parent %q is not a folder", path, dir)
			}
			continue
		}
		if err := meta.Set(dir, map[string]any{"id": f.s.newUUIDLocked(), "type": "folder", "version": 0}); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

// AddFolderEntry adds a folder entry {id, type:"folder", version:0} (and its
// missing parents). For an existing folder it returns that folder's id.
func (f *Folder) AddFolderEntry(path string) (id string, err error) {
	if err := checkVPath(path); err != nil {
		return "", err
	}
	err = f.locked(func(d *yjs.Doc, meta, _ *yjs.Type) (bool, []string, error) {
		if e := entry(meta, path); e != nil {
			if isFolderEntry(e) {
				id, _ = e["id"].(string)
				return false, nil, nil
			}
			return false, nil, fmt.Errorf("relaytest: %q: %w (not a folder)", path, ErrEntryExists)
		}
		changed, err := f.ensureParents(meta, path)
		if err != nil {
			return changed, nil, err
		}
		id = f.s.newUUIDLocked()
		return true, nil, meta.Set(path, map[string]any{"id": id, "type": "folder", "version": 0})
	})
	return id, err
}

// addDoc creates a new document, lets fill write its content, and adds a
// filemeta entry {id, type, version:0} for it.
func (f *Folder) addDoc(path, typ string, fill func(*yjs.Doc) error) (docID string, err error) {
	if err := checkVPath(path); err != nil {
		return "", err
	}
	err = f.locked(func(_ *yjs.Doc, meta, legacy *yjs.Type) (bool, []string, error) {
		if entry(meta, path) != nil {
			return false, nil, fmt.Errorf("relaytest: %q: %w", path, ErrEntryExists)
		}
		s := f.s
		docID = s.newUUIDLocked()
		cid := relay.CompoundID(f.relayID, docID)
		doc := s.newDocLocked(cid)
		if err := fill(doc); err != nil {
			delete(s.docs, cid)
			return false, nil, err
		}
		if _, err := f.ensureParents(meta, path); err != nil {
			return true, []string{cid}, err
		}
		if err := meta.Set(path, map[string]any{"id": docID, "type": typ, "version": 0}); err != nil {
			return true, []string{cid}, err
		}
		if typ == "markdown" {
			// The plugin writes markdown entries to both maps in one transaction.
			if err := legacy.Set(path, docID); err != nil {
				return true, []string{cid}, err
			}
		}
		return true, []string{cid}, nil
	})
	return docID, err
}

// AddMarkdown creates a markdown document (root Y.Text "contents" holding
// text) and its filemeta entry {id, type:"markdown", version:0} (plus the
// legacy "docs" map entry the plugin keeps). It returns the doc id.
func (f *Folder) AddMarkdown(path, text string) (docID string, err error) {
	return f.addDoc(path, "markdown", func(d *yjs.Doc) error {
		if text == "" {
			d.GetText("contents")
			return nil
		}
		return d.GetText("contents").Insert(0, text)
	})
}

// docFor returns the document behind a filemeta entry of the given type.
func (f *Folder) docFor(meta *yjs.Type, path, typ string) (*yjs.Doc, string, error) {
	e := entry(meta, path)
	if e == nil {
		return nil, "", fmt.Errorf("relaytest: %q: %w", path, ErrNoEntry)
	}
	if e["type"] != typ {
		return nil, "", fmt.Errorf("relaytest: %q is a %v entry, not %s", path, e["type"], typ)
	}
	id, _ := e["id"].(string)
	cid := relay.CompoundID(f.relayID, id)
	d, ok := f.s.docs[cid]
	if !ok {
		return nil, "", fmt.Errorf("relaytest: %q: document %s does not exist", path, cid)
	}
	return d, cid, nil
}

// EditMarkdown changes the text of the markdown document at path to
// newText with one minimal edit: the common prefix and suffix (in UTF-16
// code units, never splitting a surrogate pair) are kept, the middle is
// deleted and the new middle inserted, so the document's history grows
// like real typing. The folder document is not touched.
func (f *Folder) EditMarkdown(path, newText string) error {
	return f.locked(func(_ *yjs.Doc, meta, _ *yjs.Type) (bool, []string, error) {
		d, cid, err := f.docFor(meta, path, "markdown")
		if err != nil {
			return false, nil, err
		}
		if err := editText(d.GetText("contents"), newText); err != nil {
			return false, []string{cid}, err
		}
		return false, []string{cid}, nil
	})
}

// editText applies the minimal prefix/suffix edit turning t into newText.
func editText(t *yjs.Type, newText string) error {
	a := utf16.Encode([]rune(t.String()))
	b := utf16.Encode([]rune(newText))
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	if p > 0 && utf16.IsSurrogate(rune(a[p-1])) && a[p-1] < 0xdc00 {
		p-- // do not split after a high surrogate
	}
	sfx := 0
	for sfx < len(a)-p && sfx < len(b)-p && a[len(a)-1-sfx] == b[len(b)-1-sfx] {
		sfx++
	}
	if sfx > 0 {
		if c := a[len(a)-sfx]; c >= 0xdc00 && c <= 0xdfff {
			sfx-- // do not start the suffix at a low surrogate
		}
	}
	if del := len(a) - p - sfx; del > 0 {
		if err := t.Delete(p, del); err != nil {
			return err
		}
	}
	if ins := b[p : len(b)-sfx]; len(ins) > 0 {
		return t.Insert(p, string(utf16.Decode(ins)))
	}
	return nil
}

// AddCanvas creates a canvas document (§4.3): root Y.Maps "nodes" and
// "edges" keyed by each object's "id" (objects without a string id are an
// error), and for each entry of texts a root Y.Text named after the node id
// holding the live text. Values must be JSON-like (string, float64, int,
// bool, nil, []any, map[string]any). filemeta gets {id, type:"canvas",
// version:0}.
func (f *Folder) AddCanvas(path string, nodes, edges []map[string]any, texts map[string]string) (docID string, err error) {
	return f.addDoc(path, "canvas", func(d *yjs.Doc) error {
		return fillCanvas(d, nodes, edges, texts)
	})
}

// EditCanvas brings the canvas at path to the given state: changed or new
// node/edge objects are set, missing ones deleted, and the root texts edited
// minimally (a text not listed is left alone).
func (f *Folder) EditCanvas(path string, nodes, edges []map[string]any, texts map[string]string) error {
	return f.locked(func(_ *yjs.Doc, meta, _ *yjs.Type) (bool, []string, error) {
		d, cid, err := f.docFor(meta, path, "canvas")
		if err != nil {
			return false, nil, err
		}
		return false, []string{cid}, fillCanvas(d, nodes, edges, texts)
	})
}

func fillCanvas(d *yjs.Doc, nodes, edges []map[string]any, texts map[string]string) error {
	for _, part := range []struct {
		name string
		objs []map[string]any
	}{{relay.CanvasNodesKey, nodes}, {relay.CanvasEdgesKey, edges}} {
		m := d.GetMap(part.name)
		keep := map[string]bool{}
		for _, o := range part.objs {
			id, ok := o["id"].(string)
			if !ok || id == "" {
				return fmt.Errorf("relaytest: canvas %s object without a string id", part.name)
			}
			keep[id] = true
			if old, ok := m.Get(id); ok && jsonEqual(old, o) {
				continue
			}
			if err := m.Set(id, map[string]any(maps.Clone(o))); err != nil {
				return fmt.Errorf("relaytest: canvas %s %q: %w", part.name, id, err)
			}
		}
		for _, k := range m.Keys() {
			if !keep[k] {
				m.DeleteKey(k)
			}
		}
	}
	for id, text := range texts {
		if r := d.Root(id); r != nil && r.Kind() != yjs.KindText && r.Kind() != yjs.KindUnknown {
			return fmt.Errorf("relaytest: canvas root %q is a %s, not a text", id, r.Kind())
		}
		if err := editText(d.GetText(id), text); err != nil {
			return err
		}
	}
	return nil
}

func jsonEqual(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// AddFile stores data as an attachment under files/{relay-fileid}/{sha256}
// and adds the filemeta entry {id, type, hash, mimetype, synctime,
// version:0} (type e.g. "image", "pdf", "audio", "video", "base", "file";
// an empty mimetype becomes application/octet-stream). Binary content never
// lives in Yjs, so only the folder document changes.
func (f *Folder) AddFile(path, typ, mimetype string, data []byte) (fileID string, err error) {
	if err := checkVPath(path); err != nil {
		return "", err
	}
	switch typ {
	case "", "folder", "markdown", "canvas":
		return "", fmt.Errorf("relaytest: AddFile: %q is not a file type", typ)
	}
	if mimetype == "" {
		mimetype = "application/octet-stream"
	}
	err = f.locked(func(_ *yjs.Doc, meta, _ *yjs.Type) (bool, []string, error) {
		if entry(meta, path) != nil {
			return false, nil, fmt.Errorf("relaytest: %q: %w", path, ErrEntryExists)
		}
		s := f.s
		fileID = s.newUUIDLocked()
		hash := f.storeBlobLocked(fileID, mimetype, data)
		changed, err := f.ensureParents(meta, path)
		if err != nil {
			return changed, nil, err
		}
		return true, nil, meta.Set(path, map[string]any{
			"id":       fileID,
			"type":     typ,
			"hash":     hash,
			"mimetype": mimetype,
			"synctime": float64(s.now().UnixMilli()),
			"version":  0,
		})
	})
	return fileID, err
}

func (f *Folder) storeBlobLocked(fileID, mimetype string, data []byte) string {
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	f.s.blobs[blobKey(relay.CompoundID(f.relayID, fileID), hash)] = &blob{append([]byte(nil), data...), mimetype, f.s.now()}
	return hash
}

// UpdateFile stores new content for the attachment at path (the old version
// stays in the store, as on S3) and puts the new hash and synctime into its
// filemeta entry.
func (f *Folder) UpdateFile(path string, data []byte) error {
	return f.locked(func(_ *yjs.Doc, meta, _ *yjs.Type) (bool, []string, error) {
		e := entry(meta, path)
		if e == nil {
			return false, nil, fmt.Errorf("relaytest: %q: %w", path, ErrNoEntry)
		}
		id, _ := e["id"].(string)
		if _, isHash := e["hash"].(string); !isHash || id == "" {
			return false, nil, fmt.Errorf("relaytest: %q is not a file entry", path)
		}
		mt, _ := e["mimetype"].(string)
		e["hash"] = f.storeBlobLocked(id, mt, data)
		e["synctime"] = float64(f.s.now().UnixMilli())
		return true, nil, meta.Set(path, e)
	})
}

// Rename moves the entry at oldPath to newPath, keeping its id: the plugin
// deletes the old key and sets the new one. For a folder entry every key
// below it moves too (§4.1). Missing parents of newPath get folder entries.
func (f *Folder) Rename(oldPath, newPath string) error {
	if err := checkVPath(oldPath); err != nil {
		return err
	}
	if err := checkVPath(newPath); err != nil {
		return err
	}
	if oldPath == newPath {
		return nil
	}
	return f.locked(func(_ *yjs.Doc, meta, legacy *yjs.Type) (bool, []string, error) {
		e := entry(meta, oldPath)
		if e == nil {
			return false, nil, fmt.Errorf("relaytest: %q: %w", oldPath, ErrNoEntry)
		}
		if entry(meta, newPath) != nil {
			return false, nil, fmt.Errorf("relaytest: %q: %w", newPath, ErrEntryExists)
		}
		folder := isFolderEntry(e)
		if folder && strings.HasPrefix(newPath, oldPath+"/") {
			return false, nil, fmt.Errorf("relaytest: cannot move %q into itself", oldPath)
		}
		changed, err := f.ensureParents(meta, newPath)
		if err != nil {
			return changed, nil, err
		}
		moves := [][2]string{{oldPath, newPath}}
		if folder {
			for _, k := range meta.Keys() {
				if rest, ok := strings.CutPrefix(k, oldPath+"/"); ok {
					moves = append(moves, [2]string{k, newPath + "/" + rest})
				}
			}
		}
		for _, mv := range moves {
			v, _ := meta.Get(mv[0])
			if err := meta.Set(mv[1], v); err != nil {
				return true, nil, err
			}
			meta.DeleteKey(mv[0])
			if g, ok := legacy.Get(mv[0]); ok {
				if err := legacy.Set(mv[1], g); err != nil {
					return true, nil, err
				}
				legacy.DeleteKey(mv[0])
			}
		}
		return true, nil, nil
	})
}

// Delete removes the filemeta key at path (and, for a folder entry, every
// key below it), with the legacy "docs" entries. Documents and attachments
// stay on the server, as with the plugin.
func (f *Folder) Delete(path string) error {
	return f.locked(func(_ *yjs.Doc, meta, legacy *yjs.Type) (bool, []string, error) {
		e := entry(meta, path)
		if e == nil {
			return false, nil, fmt.Errorf("relaytest: %q: %w", path, ErrNoEntry)
		}
		keys := []string{path}
		if isFolderEntry(e) {
			for _, k := range meta.Keys() {
				if strings.HasPrefix(k, path+"/") {
					keys = append(keys, k)
				}
			}
		}
		for _, k := range keys {
			meta.DeleteKey(k)
			legacy.DeleteKey(k)
		}
		return true, nil, nil
	})
}

// SetRawEntry sets filemeta key to any JSON-like value (not checked), for
// hostile-path and invalid-entry tests. A nil value is stored as null.
func (f *Folder) SetRawEntry(key string, value any) error {
	return f.locked(func(_ *yjs.Doc, meta, _ *yjs.Type) (bool, []string, error) {
		if err := meta.Set(key, value); err != nil {
			return false, nil, fmt.Errorf("relaytest: SetRawEntry %q: %w", key, err)
		}
		return true, nil, nil
	})
}

// DeleteRawEntry removes filemeta key, whatever it holds.
func (f *Folder) DeleteRawEntry(key string) error {
	return f.locked(func(_ *yjs.Doc, meta, legacy *yjs.Type) (bool, []string, error) {
		if _, ok := meta.Get(key); !ok {
			return false, nil, fmt.Errorf("relaytest: %q: %w", key, ErrNoEntry)
		}
		meta.DeleteKey(key)
		legacy.DeleteKey(key)
		return true, nil, nil
	})
}

// Entry returns the filemeta value at path as a client decoding the folder
// document sees it (a copy; numbers are float64).
func (f *Folder) Entry(path string) (any, bool) {
	v, ok := f.Entries()[path]
	return v, ok
}

// Entries returns the whole filemeta_v0 map as a client decoding the folder
// document sees it (a copy; numbers are float64, as yjs decodes them).
func (f *Folder) Entries() map[string]any {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	d := f.s.docs[f.cid]
	if d == nil {
		return nil
	}
	m, _ := normalize(d.GetMap(relay.FileMetaKey).ToJSON()).(map[string]any)
	return m
}

// normalize deep-copies a JSON-like value with every integer as float64.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case uint32:
		return float64(x)
	case float32:
		return float64(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = normalize(e)
		}
		return a
	}
	return v
}

// EntryID returns the id in the filemeta entry at path ("" if none).
func (f *Folder) EntryID(path string) string {
	v, _ := f.Entry(path)
	m, _ := v.(map[string]any)
	id, _ := m["id"].(string)
	return id
}
