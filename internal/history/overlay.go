package history

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/relay-git-sync/relay-git-sync/internal/gitpath"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// rawEntry is an entry of a tree read from the storer or being written.
type rawEntry struct {
	name string
	mode filemode.FileMode
	hash plumbing.Hash
}

func (e rawEntry) isDir() bool { return e.mode == filemode.Dir }

// TreeWithPrefix returns the tree base (zero or EmptyTree for none) with
// everything under prefix replaced by files: entries outside prefix are kept
// as they are (their subtrees are not even read), and directories left empty
// disappear. With an empty prefix the result is Tree(files).
//
// prefix is "" or a relative slash path with the same rules as file paths.
// A non-directory entry of base standing where prefix needs a directory is
// replaced when files is not empty.
func (s *Synthesizer) TreeWithPrefix(base plumbing.Hash, prefix string, files []store.File) (plumbing.Hash, error) {
	return s.Overlay(base, prefix, nil, files)
}

// Overlay is TreeWithPrefix for a folder that does not own everything under
// its prefix, as when a connector's remote branch has files of its own (a
// README next to the folder's files, even with an empty prefix): it removes
// from base the files under prefix for which everOwned returns true — it is
// asked about folder-relative paths, without the prefix — and then adds the
// snapshot's files under prefix. Other entries of base stay. A nil everOwned
// owns everything under prefix (TreeWithPrefix).
//
// Where a snapshot file and an entry of base want the same name (a file
// against a directory, or two files), the snapshot wins; the remote's
// version survives in the history, since the merge commit has the remote
// commit as a parent.
//
// The cost is the size of base's subtree at prefix (every one of its trees
// is read to find the owned files) plus the directories on the way to it.
func (s *Synthesizer) Overlay(base plumbing.Hash, prefix string, everOwned func(path string) bool, files []store.File) (plumbing.Hash, error) {
	var comps []string
	if prefix != "" {
		if err := checkPath(prefix); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("history: prefix: %w", err)
		}
		if gitpath.PathChecks(prefix, gitpath.Tree) {
			return plumbing.ZeroHash, fmt.Errorf("history: prefix %q has a name git or a Windows checkout cannot take; choose another prefix", prefix)
		}
		comps = strings.Split(prefix, "/")
	}
	if base == EmptyTree {
		base = plumbing.ZeroHash
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.tree(files); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("history: %w", err)
	}
	h, _, err := s.overlayAt(base, comps, everOwned)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("history: overlay on %s at %q: %w", base, prefix, err)
	}
	if h.IsZero() {
		return s.write(plumbing.TreeObject, nil)
	}
	return h, nil
}

// overlayAt returns base (a tree id, or zero for none) with the snapshot
// placed at comps, or zero when the result is empty. changed reports whether
// the result differs from base.
func (s *Synthesizer) overlayAt(base plumbing.Hash, comps []string, owned func(string) bool) (h plumbing.Hash, changed bool, err error) {
	if len(comps) == 0 {
		if owned == nil {
			if len(s.root.kids) == 0 {
				return plumbing.ZeroHash, !base.IsZero(), nil
			}
			return s.root.hash, s.root.hash != base, nil
		}
		return s.merge(base, s.root, "", owned)
	}
	entries, err := s.readTree(base)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	i := slices.IndexFunc(entries, func(e rawEntry) bool { return e.name == comps[0] })
	var sub plumbing.Hash
	if i >= 0 && entries[i].isDir() {
		sub = entries[i].hash
	}
	nh, subChanged, err := s.overlayAt(sub, comps[1:], owned)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	switch {
	case !subChanged && (i < 0 || entries[i].isDir()):
		return base, false, nil
	case nh.IsZero() && (i < 0 || !entries[i].isDir()):
		// Nothing to place, and a foreign file (or nothing) at this name.
		return base, false, nil
	case nh.IsZero():
		entries = slices.Delete(entries, i, i+1)
	case i >= 0:
		entries[i] = rawEntry{name: comps[0], mode: filemode.Dir, hash: nh}
	default:
		entries = append(entries, rawEntry{name: comps[0], mode: filemode.Dir, hash: nh})
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, true, nil
	}
	h, err = s.writeEntries(entries)
	return h, true, err
}

// merge combines the base tree (zero for none) at folder-relative directory
// rel ("" or ending in '/') with the snapshot directory d (nil for none):
// owned files of base go, foreign ones stay, d's entries are added. It
// returns zero for an empty result.
func (s *Synthesizer) merge(base plumbing.Hash, d *dirNode, rel string, owned func(string) bool) (plumbing.Hash, bool, error) {
	entries, err := s.readTree(base)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	out := make([]rawEntry, 0, len(entries)+len(kidsOf(d)))
	changed := false
	// base's entries carry git names: match d's by theirs (d is rehashed).
	var ours map[string]*entry
	if d != nil {
		ours = make(map[string]*entry, len(d.order))
		for _, k := range d.order {
			ours[k.git] = k
		}
	}
	for _, e := range entries {
		if ours[e.name] != nil {
			continue // handled with d's entries
		}
		if e.isDir() {
			nh, c, err := s.merge(e.hash, nil, rel+e.name+"/", owned)
			if err != nil {
				return plumbing.ZeroHash, false, err
			}
			changed = changed || c
			if !nh.IsZero() {
				out = append(out, rawEntry{name: e.name, mode: filemode.Dir, hash: nh})
			}
			continue
		}
		if owned(rel + e.name) {
			changed = true
			continue
		}
		out = append(out, e)
	}
	if d != nil {
		byName := make(map[string]int, len(entries))
		for i, e := range entries {
			byName[e.name] = i
		}
		for name, k := range ours {
			changed = true // refined below by comparing hashes
			var b *rawEntry
			if i, ok := byName[name]; ok {
				b = &entries[i]
			}
			switch {
			case k.sub == nil:
				out = append(out, rawEntry{name: name, mode: filemode.Regular, hash: k.blob})
			case b != nil && b.isDir():
				nh, _, err := s.merge(b.hash, k.sub, rel+name+"/", owned)
				if err != nil {
					return plumbing.ZeroHash, false, err
				}
				out = append(out, rawEntry{name: name, mode: filemode.Dir, hash: nh})
			default:
				out = append(out, rawEntry{name: name, mode: filemode.Dir, hash: k.sub.hash})
			}
		}
	}
	if !changed {
		return base, false, nil
	}
	if len(out) == 0 {
		return plumbing.ZeroHash, !base.IsZero(), nil
	}
	h, err := s.writeEntries(out)
	return h, h != base, err
}

func kidsOf(d *dirNode) map[string]*entry {
	if d == nil {
		return nil
	}
	return d.kids
}

// readTree returns the entries of tree h (none for the zero id).
func (s *Synthesizer) readTree(h plumbing.Hash) ([]rawEntry, error) {
	if h.IsZero() {
		return nil, nil
	}
	t, err := object.GetTree(s.objects, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	out := make([]rawEntry, len(t.Entries))
	for i, e := range t.Entries {
		out[i] = rawEntry{name: e.Name, mode: e.Mode, hash: e.Hash}
	}
	return out, nil
}

// writeEntries sorts entries in git's order and writes them as a tree.
func (s *Synthesizer) writeEntries(entries []rawEntry) (plumbing.Hash, error) {
	slices.SortFunc(entries, func(a, b rawEntry) int {
		return gitCompare(a.name, a.isDir(), b.name, b.isDir())
	})
	b := s.buf[:0]
	for _, e := range entries {
		b = strconv.AppendUint(b, uint64(e.mode), 8)
		b = append(b, ' ')
		b = append(b, e.name...)
		b = append(b, 0)
		b = append(b, e.hash[:]...)
	}
	s.buf = b
	return s.write(plumbing.TreeObject, b)
}
