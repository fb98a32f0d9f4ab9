// Package writeguard keeps a push from overwriting edits made in Relay
// after the snapshot the push was made against. writeback diffs each file
// against Relay's current state, so a push of a note edited in Relay since
// (an edit whose webhook has not made a snapshot yet, or a data dir that
// has not been synced for a while) would silently take that edit back.
// Check refuses such a push instead, naming the paths: the user fetches
// (gets the edit as a snapshot), merges, and pushes again.
package writeguard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

// ErrChanged marks paths that changed in Relay since the base snapshot.
var ErrChanged = errors.New("changed in Relay since")

// Check reads, for every path changes touch, its entry and content in
// Relay now, and returns an error wrapping ErrChanged that names the paths
// whose state is neither what base (the snapshot the changes were made
// against; nil: none) has nor what the change writes (a write that landed
// in an earlier, failed attempt). blob reads a snapshot's content.
func Check(ctx context.Context, r writeback.Relay, f store.FolderID, base *store.Snapshot, blob func(context.Context, store.BlobID) ([]byte, error), changes []writeback.Change) error {
	raw, err := r.FetchDoc(ctx, f.Relay, f.Folder)
	if err != nil {
		return fmt.Errorf("reading folder %s from the Relay Server: %w", f, err)
	}
	fd := yjs.NewDoc()
	if err := fd.ApplyUpdate(raw); err != nil {
		return fmt.Errorf("decoding folder %s: %w", f, err)
	}
	cur, _ := fd.GetMap(relay.FileMetaKey).ToJSON().(map[string]any)
	list, _ := relay.ParseFileMeta(cur)
	now := map[string]relay.Entry{}
	for _, e := range list {
		now[e.RelPath] = e
	}
	was := map[string]store.File{}
	if base != nil {
		for _, file := range base.Files {
			was[file.Path] = file
		}
	}

	g := &guard{ctx: ctx, r: r, f: f, blob: blob}
	var changed []string
	for _, c := range changes {
		var why string
		if c.From != "" {
			// The entry moved already (an earlier attempt): fine.
			if from, ok := was[c.From]; !ok || now[c.Path].ID == "" || !strings.EqualFold(now[c.Path].ID, from.DocID) {
				why, err = g.path(c.From, was, now, nil)
			}
		}
		if err == nil && why == "" {
			var want []byte
			if !c.Delete {
				want = c.Data
			}
			why, err = g.path(c.Path, was, now, want)
		}
		if err != nil {
			return err
		}
		if why != "" {
			changed = append(changed, why)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	sort.Strings(changed)
	seq := "(none)"
	if base != nil {
		seq = fmt.Sprint(base.Seq)
	}
	return fmt.Errorf("%w snapshot %s: %s; wait for the snapshot that records this (seconds, with serve running), fetch, merge, and push again", ErrChanged, seq, strings.Join(changed, ", "))
}

type guard struct {
	ctx  context.Context
	r    writeback.Relay
	f    store.FolderID
	blob func(context.Context, store.BlobID) ([]byte, error)
}

// path says how p changed in Relay since the snapshot ("" when it did
// not, or when it already is want: nil for a path that goes).
func (g *guard) path(p string, was map[string]store.File, now map[string]relay.Entry, want []byte) (string, error) {
	old, inBase := was[p]
	e, inRelay := now[p]
	switch {
	case !inBase && !inRelay:
		return "", nil
	case !inRelay:
		if want == nil {
			return "", nil // deleted, as the push wants
		}
		return p + " (deleted or renamed in Relay)", nil
	case e.Kind() == relay.KindFolder:
		return p + " (a folder in Relay)", nil
	}
	// current is the entry's content: its hash for an attachment, else
	// the rendered document.
	current := e.Hash
	same := func(content []byte) bool {
		if e.Kind() == relay.KindFile {
			sum := sha256.Sum256(content)
			return current == hex.EncodeToString(sum[:])
		}
		return string(content) == current
	}
	if e.Kind() != relay.KindFile {
		raw, err := g.r.FetchDoc(g.ctx, g.f.Relay, e.ID)
		switch {
		case errors.Is(err, relay.ErrNotFound):
			raw = nil
		case err != nil:
			return "", fmt.Errorf("%s: reading its document: %w", p, err)
		}
		text, err := render(e, raw)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		current = string(text)
	}
	if want != nil && same(want) {
		return "", nil // already written
	}
	if !inBase {
		return p + " (created in Relay)", nil
	}
	data, err := g.blob(g.ctx, old.Blob)
	if err != nil {
		return "", fmt.Errorf("%s: reading its content in the snapshot: %w", p, err)
	}
	if same(data) {
		return "", nil
	}
	return p + " (edited in Relay)", nil
}

// render is a document's content as snapshots hold it (ingest does the
// same): a note's text, a canvas as relay.ExportCanvas writes it.
func render(e relay.Entry, raw []byte) ([]byte, error) {
	doc := yjs.NewDoc()
	if raw != nil {
		if err := doc.ApplyUpdate(raw); err != nil {
			return nil, fmt.Errorf("decoding its document: %w", err)
		}
	}
	if e.Kind() == relay.KindCanvas {
		root := func(name string) map[string]any {
			if doc.Root(name) == nil {
				return nil
			}
			m, _ := doc.GetMap(name).ToJSON().(map[string]any)
			return m
		}
		return relay.ExportCanvas(root(relay.CanvasNodesKey), root(relay.CanvasEdgesKey), func(name string) (string, bool) {
			t := doc.Root(name)
			if t == nil || t.Kind() != yjs.KindText {
				return "", false
			}
			return t.String(), true
		})
	}
	return []byte(doc.GetText("contents").String()), nil
}
