package fusefs

import (
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// tree is one snapshot's files arranged as directories. It is immutable
// once built.
type tree struct {
	seq   uint64
	time  time.Time
	dirs  map[string]*dirEnt // by slash path; "" is the root
	files int
	bytes int64
}

type dirEnt struct {
	path    string
	names   []string // sorted
	entries map[string]entry
	subdirs int
}

// entry is a directory entry: exactly one of dir and file is set.
type entry struct {
	dir  *dirEnt
	file *fileEnt
}

// fileEnt is one immutable version of a file.
type fileEnt struct {
	blob  store.BlobID
	size  int64
	mtime time.Time
	ino   uint64
}

func (e entry) mode() uint32 {
	if e.dir != nil {
		return syscall.S_IFDIR
	}
	return syscall.S_IFREG
}

// same reports whether two entries show the same thing: the same file
// version, or both directories (whose contents are compared separately).
func (e entry) same(o entry) bool {
	if e.dir != nil || o.dir != nil {
		return e.dir != nil && o.dir != nil
	}
	return e.file.ino == o.file.ino
}

// inoOf derives a stable inode number from its parts. The top bit is
// cleared so it never meets go-fuse's automatic numbers (from 2^63), and 0
// and 1 (the root) are avoided.
func inoOf(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	ino := h.Sum64() &^ (1 << 63)
	if ino < 2 {
		ino += 2
	}
	return ino
}

func fileIno(path string, blob store.BlobID, mtime time.Time) uint64 {
	return inoOf("f", path, blob.String(), strconv.FormatInt(mtime.UnixNano(), 10))
}

// buildTree arranges snap's files. mtimeOf gives each file's mtime. skip,
// when non-empty, is a top-level name to leave out (the history directory
// shadows it in the live view); shadowed reports whether it was there.
// Files whose path collides with a directory (a file "a" and a file "a/b")
// lose to the directory.
func buildTree(snap *store.Snapshot, mtimeOf func(path string) time.Time, skip string) (t *tree, shadowed []string) {
	t = &tree{seq: snap.Seq, time: snap.Time, dirs: map[string]*dirEnt{}}
	root := &dirEnt{entries: map[string]entry{}}
	t.dirs[""] = root
	var mkdir func(path string) *dirEnt
	mkdir = func(path string) *dirEnt {
		if d := t.dirs[path]; d != nil {
			return d
		}
		parent, name := root, path
		if i := strings.LastIndexByte(path, '/'); i >= 0 {
			parent, name = mkdir(path[:i]), path[i+1:]
		}
		d := &dirEnt{path: path, entries: map[string]entry{}}
		if old, ok := parent.entries[name]; ok && old.file != nil {
			shadowed = append(shadowed, path)
			t.files--
			t.bytes -= old.file.size
		}
		parent.subdirs++
		parent.entries[name] = entry{dir: d}
		t.dirs[path] = d
		return d
	}
	for _, f := range snap.Files {
		if !validPath(f.Path) {
			shadowed = append(shadowed, f.Path)
			continue
		}
		if skip != "" && (f.Path == skip || strings.HasPrefix(f.Path, skip+"/")) {
			shadowed = append(shadowed, f.Path)
			continue
		}
		parent, name := root, f.Path
		if i := strings.LastIndexByte(f.Path, '/'); i >= 0 {
			parent, name = mkdir(f.Path[:i]), f.Path[i+1:]
		}
		if _, ok := parent.entries[name]; ok { // a directory (or a duplicate path) wins
			shadowed = append(shadowed, f.Path)
			continue
		}
		mt := mtimeOf(f.Path)
		parent.entries[name] = entry{file: &fileEnt{blob: f.Blob, size: f.Size, mtime: mt, ino: fileIno(f.Path, f.Blob, mt)}}
		t.files++
		t.bytes += f.Size
	}
	for _, d := range t.dirs {
		d.names = make([]string, 0, len(d.entries))
		for n := range d.entries {
			d.names = append(d.names, n)
		}
		sort.Strings(d.names)
	}
	return t, shadowed
}

// validPath accepts clean relative slash paths (the store already requires
// them; a source over HTTP is checked again here).
func validPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

// lookup returns the entry at a slash path ("" = the root directory).
func (t *tree) lookup(path string) (entry, bool) {
	if t == nil {
		if path == "" {
			return entry{dir: emptyDir}, true
		}
		return entry{}, false
	}
	if d := t.dirs[path]; d != nil {
		return entry{dir: d}, true
	}
	parent, name := "", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		parent, name = path[:i], path[i+1:]
	}
	d := t.dirs[parent]
	if d == nil {
		return entry{}, false
	}
	e, ok := d.entries[name]
	return e, ok
}

var emptyDir = &dirEnt{entries: map[string]entry{}}

// change is one directory entry that differs between two trees.
type change struct {
	dir, name string
	removed   bool // gone from the directory
}

// diffTrees lists the entries of the directories that exist in both trees
// (or in old, for removals) whose content differs. It does not descend into
// directories that appear or disappear: invalidating their entry is enough.
func diffTrees(old, cur *tree) []change {
	var out []change
	var walk func(path string, a, b *dirEnt)
	walk = func(path string, a, b *dirEnt) {
		for _, n := range a.names {
			ea := a.entries[n]
			eb, ok := b.entries[n]
			switch {
			case !ok:
				out = append(out, change{dir: path, name: n, removed: true})
			case !ea.same(eb):
				out = append(out, change{dir: path, name: n})
			case ea.dir != nil:
				walk(join(path, n), ea.dir, eb.dir)
			}
		}
		for _, n := range b.names {
			if _, ok := a.entries[n]; !ok {
				out = append(out, change{dir: path, name: n})
			}
		}
	}
	a, _ := old.lookup("")
	b, _ := cur.lookup("")
	walk("", a.dir, b.dir)
	return out
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
