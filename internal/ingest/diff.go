package ingest

import (
	"sort"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Diff lists what changed from the tree prev to the tree next, matching
// files by Relay document id so that renames and moves are recognized.
// A document may sit at several paths (two clients renaming one note at
// once leave both keys); files at an unchanged path match first, the rest
// of a document's old and new paths pair up as renames in path order.
// The result is sorted by path.
func Diff(prev, next []store.File) []store.Change {
	type key struct{ doc, path string }
	before := make(map[key]store.File, len(prev))
	for _, f := range prev {
		before[key{f.DocID, f.Path}] = f
	}
	var out []store.Change
	matched := make(map[key]bool, len(prev))
	added := map[string][]store.File{} // by doc id, in path order
	for _, f := range next {
		k := key{f.DocID, f.Path}
		p, ok := before[k]
		if !ok {
			added[f.DocID] = append(added[f.DocID], f)
			continue
		}
		matched[k] = true
		if p.Blob != f.Blob || p.Kind != f.Kind {
			out = append(out, store.Change{Kind: store.ChangeModified, Path: f.Path, DocID: f.DocID})
		}
	}
	for _, p := range prev {
		if matched[key{p.DocID, p.Path}] {
			continue
		}
		if cands := added[p.DocID]; len(cands) > 0 {
			f := cands[0]
			added[p.DocID] = cands[1:]
			out = append(out, store.Change{Kind: store.ChangeRenamed, Path: f.Path, OldPath: p.Path, DocID: f.DocID})
			continue
		}
		out = append(out, store.Change{Kind: store.ChangeDeleted, Path: p.Path, DocID: p.DocID})
	}
	for _, fs := range added {
		for _, f := range fs {
			out = append(out, store.Change{Kind: store.ChangeAdded, Path: f.Path, DocID: f.DocID})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}
