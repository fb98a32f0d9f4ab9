package history

import (
	"fmt"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/gitpath"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// EmptyTree is the id of git's empty tree.
var EmptyTree = plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904")

// Tree modes as git writes them in tree objects.
const (
	modeFile = "100644"
	modeDir  = "40000"
)

type fileRef struct {
	path string
	blob plumbing.Hash
}

// dirNode is one directory of the cached tree.
type dirNode struct {
	kids  map[string]*entry
	order []*entry // kids in git order; nil after a kid was added or removed
	hash  plumbing.Hash
	dirty bool // hash is stale
}

// entry is a file (sub == nil) or a directory of a dirNode.
type entry struct {
	name string // in the snapshot
	git  string // in the tree (see gitpath): set when the dirNode's order is
	sub  *dirNode
	blob plumbing.Hash
}

func newDir() *dirNode { return &dirNode{kids: make(map[string]*entry), dirty: true} }

// gitCompare orders tree entries as git does: by name, a directory's name being
// compared as if it ended with '/'.
func gitCompare(a string, aDir bool, b string, bDir bool) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	ca, cb := -1, -1 // -1: end of name
	if len(a) > n {
		ca = int(a[n])
	} else if aDir {
		ca = '/'
	}
	if len(b) > n {
		cb = int(b[n])
	} else if bDir {
		cb = '/'
	}
	return ca - cb
}

// Tree writes the tree objects of files — nested directories in git's order,
// every file a regular blob (mode 100644) with its Blob id — and returns the
// root tree's id (EmptyTree for no files). Only Path and Blob are used.
//
// Paths must be relative slash paths without empty, "." or ".." components
// or NUL bytes, and unique; no path may be a directory of another. Names git,
// Windows or a file system cannot take (".git", ".gitmodules", "CON", over
// 255 bytes, …) are written under gitpath's safe names. The order of files does not matter (sorted input is fastest).
//
// Directories unchanged since the previous call are not re-encoded (see the
// package documentation).
func (s *Synthesizer) Tree(files []store.File) (plumbing.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.tree(files); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("history: tree: %w", err)
	}
	return s.root.hash, nil
}

// tree brings s.root up to date with files, with every hash computed and
// every tree written. On error the cache is dropped. s.mu must be held.
func (s *Synthesizer) tree(files []store.File) error {
	if err := s.updateTree(files); err != nil {
		s.root, s.prev = nil, nil
		return err
	}
	return nil
}

func (s *Synthesizer) updateTree(files []store.File) error {
	for i := 1; i < len(files); i++ {
		if files[i-1].Path >= files[i].Path {
			// Not strictly sorted: work on a sorted copy.
			files = slices.Clone(files)
			slices.SortFunc(files, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
			for i := 1; i < len(files); i++ {
				if files[i].Path == files[i-1].Path {
					return fmt.Errorf("path %q given twice", files[i].Path)
				}
			}
			break
		}
	}
	if s.root == nil {
		s.root, s.prev = newDir(), s.prev[:0]
	}

	// Compare with the previous files (both sorted by path).
	removed, upserts := s.removed[:0], s.upserts[:0]
	prev := s.prev
	reshaped := false // a path was added or removed
	i, j := 0, 0
	for i < len(prev) || j < len(files) {
		c := 1 // prev[i] absent or after files[j]
		switch {
		case j == len(files):
			c = -1
		case i == len(prev):
		case prev[i].path == files[j].Path: // usually the same string: no byte compare
			c = 0
		default:
			c = strings.Compare(prev[i].path, files[j].Path)
		}
		switch {
		case c < 0:
			removed = append(removed, prev[i].path)
			reshaped = true
			i++
		case c > 0:
			upserts = append(upserts, upsert{file: j, prev: -1})
			reshaped = true
			j++
		default:
			if prev[i].blob != plumbing.Hash(files[j].Blob) {
				upserts = append(upserts, upsert{file: j, prev: i})
			}
			i++
			j++
		}
	}
	s.removed, s.upserts = removed, upserts
	for _, u := range upserts {
		f := &files[u.file]
		if err := checkPath(f.Path); err != nil {
			return err
		}
		if f.Blob.IsZero() {
			return fmt.Errorf("file %q: zero blob id", f.Path)
		}
	}

	// Deletions first, so that a file may replace a directory that went
	// away in the same step (and the other way round).
	for _, p := range removed {
		s.root.remove(p)
	}
	for _, u := range upserts {
		f := &files[u.file]
		if err := s.root.set(f.Path, plumbing.Hash(f.Blob)); err != nil {
			return err
		}
	}
	if err := s.rehash(s.root); err != nil {
		return err
	}

	// Remember files: in place when only contents changed (the usual case).
	if !reshaped {
		for _, u := range upserts {
			prev[u.prev].blob = plumbing.Hash(files[u.file].Blob)
		}
		return nil
	}
	prev = prev[:0]
	for k := range files {
		prev = append(prev, fileRef{path: files[k].Path, blob: plumbing.Hash(files[k].Blob)})
	}
	s.prev = prev
	return nil
}

// upsert is a file to add (prev < 0) or whose content changed (prev is its
// index in Synthesizer.prev), by its index in the files given.
type upsert struct{ file, prev int }

// checkPath rejects paths that cannot be written into a git tree safely.
func checkPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	for rest := p; ; {
		c, tail, more := strings.Cut(rest, "/")
		switch {
		case c == "", c == ".", c == "..":
			return fmt.Errorf("path %q: empty, \".\" or \"..\" component", p)
		case strings.IndexByte(c, 0) >= 0:
			return fmt.Errorf("path %q: NUL byte", p)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// set makes path a file with blob, creating directories as needed.
func (d *dirNode) set(path string, blob plumbing.Hash) error {
	full := path
	for {
		d.dirty = true
		name, rest, more := strings.Cut(path, "/")
		e := d.kids[name]
		if !more {
			switch {
			case e == nil:
				d.kids[name] = &entry{name: name, blob: blob}
				d.order = nil
			case e.sub != nil:
				return fmt.Errorf("path %q is both a file and a directory", full)
			default:
				e.blob = blob
			}
			return nil
		}
		if e == nil {
			e = &entry{name: name, sub: newDir()}
			d.kids[name] = e
			d.order = nil
		} else if e.sub == nil {
			return fmt.Errorf("path %q is both a file and a directory", full[:len(full)-len(rest)-1])
		}
		d, path = e.sub, rest
	}
}

// remove deletes the file at path (which the caller knows exists) and the
// directories it leaves empty.
func (d *dirNode) remove(path string) {
	name, rest, more := strings.Cut(path, "/")
	e := d.kids[name]
	if e == nil {
		return
	}
	d.dirty = true
	if more {
		if e.sub == nil {
			return
		}
		e.sub.remove(rest)
		if len(e.sub.kids) > 0 {
			return
		}
	} else if e.sub != nil {
		return
	}
	delete(d.kids, name)
	d.order = nil
}

// rehash recomputes and writes the dirty directories under and including d.
func (s *Synthesizer) rehash(d *dirNode) error {
	if !d.dirty {
		return nil
	}
	if d.order == nil {
		d.order = make([]*entry, 0, len(d.kids))
		renamed := false
		for _, e := range d.kids {
			d.order = append(d.order, e)
			e.git = e.name
			renamed = renamed || gitpath.Check(e.name, gitpath.Tree) != 0
		}
		if renamed {
			// Names git, Windows or a file system cannot take get safe
			// ones, chosen among their siblings (gitpath.Siblings).
			names := make([]string, len(d.order))
			for i, e := range d.order {
				names[i] = e.name
			}
			for i, g := range gitpath.Siblings(names, gitpath.Tree) {
				d.order[i].git = g
			}
		}
		slices.SortFunc(d.order, func(a, b *entry) int {
			return gitCompare(a.git, a.sub != nil, b.git, b.sub != nil)
		})
	}
	for _, e := range d.order {
		if e.sub != nil {
			if err := s.rehash(e.sub); err != nil {
				return err
			}
		}
	}
	b := s.buf[:0]
	for _, e := range d.order {
		if e.sub != nil {
			b = append(b, modeDir...)
			b = append(b, ' ')
			b = append(b, e.git...)
			b = append(b, 0)
			b = append(b, e.sub.hash[:]...)
		} else {
			b = append(b, modeFile...)
			b = append(b, ' ')
			b = append(b, e.git...)
			b = append(b, 0)
			b = append(b, e.blob[:]...)
		}
	}
	s.buf = b
	h, err := s.write(plumbing.TreeObject, b)
	if err != nil {
		return err
	}
	d.hash, d.dirty = h, false
	return nil
}
