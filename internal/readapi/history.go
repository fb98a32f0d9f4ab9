package readapi

import (
	"errors"
	"fmt"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// GET …/history sends a folder's snapshots after a sequence number, one a
// line, the first with its whole tree and each later one with the
// difference from the one before, so that a whole history costs O(changes)
// rather than O(snapshots × tree): what the remote helper reads to
// synthesize commits. HistoryEncoder writes the lines, the client's
// History reads them back into whole trees.

// HistoryEncoder turns consecutive snapshots (each with its whole tree,
// sorted by path, as store.Walk gives them) into history lines.
type HistoryEncoder struct {
	prev []store.File
	n    uint64
}

// Line returns the line for s, the snapshot after the one given before.
func (e *HistoryEncoder) Line(s *store.Snapshot) HistoryLine {
	line := HistoryLine{SnapshotInfo: NewSnapshotInfo(infoOf(s))}
	if e.n == 0 {
		files := NewFiles(s.Files)
		line.Files = &files
	} else {
		set, deleted := diff(e.prev, s.Files)
		if len(set) > 0 {
			line.Set = NewFiles(set)
		}
		line.Deleted = deleted
	}
	e.prev = s.Files
	e.n++
	return line
}

// End returns the last line of a complete answer.
func (e *HistoryEncoder) End() HistoryEnd { return HistoryEnd{End: true, Count: e.n} }

// diff compares two trees sorted by path: the files of cur that are new or
// different, and the paths of prev that cur no longer has.
func diff(prev, cur []store.File) (set []store.File, deleted []string) {
	i, j := 0, 0
	for i < len(prev) || j < len(cur) {
		switch {
		case j == len(cur) || i < len(prev) && prev[i].Path < cur[j].Path:
			deleted = append(deleted, prev[i].Path)
			i++
		case i == len(prev) || cur[j].Path < prev[i].Path:
			set = append(set, cur[j])
			j++
		default:
			if prev[i] != cur[j] {
				set = append(set, cur[j])
			}
			i++
			j++
		}
	}
	return set, deleted
}

// apply returns a new tree: prev (sorted by path) without the deleted
// paths, with set's files (sorted by path) added or replaced.
func apply(prev, set []store.File, deleted []string) []store.File {
	drop := make(map[string]bool, len(deleted))
	for _, p := range deleted {
		drop[p] = true
	}
	out := make([]store.File, 0, len(prev)+len(set))
	i, j := 0, 0
	for i < len(prev) || j < len(set) {
		switch {
		case j == len(set) || i < len(prev) && prev[i].Path < set[j].Path:
			if !drop[prev[i].Path] {
				out = append(out, prev[i])
			}
			i++
		case i == len(prev) || set[j].Path < prev[i].Path:
			out = append(out, set[j])
			j++
		default: // replaced
			out = append(out, set[j])
			i++
			j++
		}
	}
	return out
}

// historyInput is any line of a …/history answer.
type historyInput struct {
	HistoryLine
	HistoryEnd
	Error
}

// historyDecoder rebuilds whole snapshots from history lines.
type historyDecoder struct {
	folder store.FolderID
	after  uint64
	tree   []store.File
	n      uint64 // snapshots decoded
	last   uint64 // their last seq
}

// errHistoryEnd: the end line came, and the count matched.
var errHistoryEnd = errors.New("end of history")

// decode returns the snapshot of one line, or errHistoryEnd.
func (d *historyDecoder) decode(in *historyInput) (*store.Snapshot, error) {
	switch {
	case in.Error.Error != "":
		return nil, fmt.Errorf("the server failed after %d snapshots: %s", d.n, in.Error.Error)
	case in.End:
		if in.Count != d.n {
			return nil, fmt.Errorf("got %d snapshots, the server says it sent %d", d.n, in.Count)
		}
		return nil, errHistoryEnd
	case in.Seq <= max(d.last, d.after):
		return nil, fmt.Errorf("snapshot %d came after %d", in.Seq, max(d.last, d.after))
	}
	var files []File
	switch {
	case in.Files != nil:
		files = *in.Files
	case d.n == 0:
		return nil, fmt.Errorf("snapshot %d, the first, has no tree", in.Seq)
	default:
		files = in.Set
	}
	s, err := in.snapshot(d.folder, files)
	if err != nil {
		return nil, err
	}
	if in.Files == nil {
		s.Files = apply(d.tree, s.Files, in.Deleted)
	}
	if len(s.Files) != in.NumFiles {
		return nil, fmt.Errorf("snapshot %d: the tree has %d files, the server says %d", in.Seq, len(s.Files), in.NumFiles)
	}
	d.tree = s.Files
	d.n++
	d.last = in.Seq
	return s, nil
}
