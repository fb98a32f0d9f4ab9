package fusefs

import (
	"context"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Kernel cache lifetimes. History never changes, so its entries and
// attributes are cached for good; the live view is invalidated through
// notifications when a snapshot lands, and its timeout only bounds the
// damage should a notification be lost.
const (
	forever     = 365 * 24 * time.Hour
	liveTimeout = time.Minute
)

// Views of a tree; part of directory inode numbers, so the same directory
// seen through two views never shares an inode (the kernel does not allow
// directory aliases).
const (
	viewLive   = "l"
	viewByTime = "t"
	viewBySeq  = "n"
)

// node is embedded by every node type: the file system it belongs to, and
// EROFS for everything that would modify it. The mount is read-only in the
// kernel too; these answer should it ever be mounted read-write.
type node struct {
	fs.Inode
	fsys *FS
}

var (
	_ fs.NodeSetattrer = (*node)(nil)
	_ fs.NodeMkdirer   = (*node)(nil)
	_ fs.NodeMknoder   = (*node)(nil)
	_ fs.NodeCreater   = (*node)(nil)
	_ fs.NodeUnlinker  = (*node)(nil)
	_ fs.NodeRmdirer   = (*node)(nil)
	_ fs.NodeRenamer   = (*node)(nil)
	_ fs.NodeSymlinker = (*node)(nil)
	_ fs.NodeLinker    = (*node)(nil)
	_ fs.NodeWriter    = (*node)(nil)
	_ fs.NodeAllocater = (*node)(nil)
	_ fs.NodeStatfser  = (*node)(nil)
)

func (*node) Setattr(context.Context, fs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}
func (*node) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*node) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*node) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}
func (*node) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (*node) Rmdir(context.Context, string) syscall.Errno  { return syscall.EROFS }
func (*node) Rename(context.Context, string, fs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}
func (*node) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*node) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*node) Write(context.Context, fs.FileHandle, []byte, int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}
func (*node) Allocate(context.Context, fs.FileHandle, uint64, uint64, uint32) syscall.Errno {
	return syscall.EROFS
}

// Statfs reports the live view's size, so df shows something meaningful.
func (n *node) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	n.fsys.mu.RLock()
	t := n.fsys.live
	n.fsys.mu.RUnlock()
	const bsize = 4096
	out.Bsize, out.Frsize, out.NameLen = bsize, bsize, 255
	if t != nil {
		out.Blocks = uint64((t.bytes + bsize - 1) / bsize)
		out.Files = uint64(t.files)
	}
	return 0
}

func (f *FS) owner(a *fuse.Attr) { a.Owner = fuse.Owner{Uid: f.uid, Gid: f.gid} }

func (f *FS) fileAttr(fe *fileEnt, a *fuse.Attr) {
	a.Mode = syscall.S_IFREG | 0o444
	a.Size = uint64(fe.size)
	a.Blocks = (a.Size + 511) / 512
	a.Nlink = 1
	a.Ino = fe.ino
	a.SetTimes(&fe.mtime, &fe.mtime, &fe.mtime)
	f.owner(a)
}

func (f *FS) dirAttr(ino uint64, subdirs int, mtime time.Time, a *fuse.Attr) {
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = uint32(2 + subdirs)
	a.Ino = ino
	a.SetTimes(&mtime, &mtime, &mtime)
	f.owner(a)
}

// child returns the inode for entry e, named path in view (seq 0 for the
// live view), filling out with its attributes and cache lifetimes.
func (f *FS) child(ctx context.Context, parent *fs.Inode, view string, t *tree, path string, e entry, out *fuse.EntryOut) *fs.Inode {
	entryTTL, dirTTL := forever, forever
	if view == viewLive {
		entryTTL, dirTTL = liveTimeout, liveTimeout
	}
	out.SetEntryTimeout(entryTTL)
	if e.file != nil {
		out.SetAttrTimeout(forever)
		f.fileAttr(e.file, &out.Attr)
		return parent.NewInode(ctx, &fileNode{node: node{fsys: f}, f: e.file}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: e.file.ino})
	}
	out.SetAttrTimeout(dirTTL)
	if view == viewLive {
		ino := inoOf(viewLive, path)
		f.dirAttr(ino, e.dir.subdirs, t.time, &out.Attr)
		return parent.NewInode(ctx, &liveDir{node: node{fsys: f}, path: path}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino})
	}
	ino := inoOf(view, strconv.FormatUint(t.seq, 10), path)
	f.dirAttr(ino, e.dir.subdirs, t.time, &out.Attr)
	return parent.NewInode(ctx, &snapDir{node: node{fsys: f}, view: view, seq: t.seq, path: path}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino})
}

func dirEntries(view string, t *tree, d *dirEnt, extra ...fuse.DirEntry) []fuse.DirEntry {
	out := make([]fuse.DirEntry, 0, len(d.names)+len(extra))
	out = append(out, extra...)
	seq := ""
	if view != viewLive {
		seq = strconv.FormatUint(t.seq, 10)
	}
	for _, n := range d.names {
		e := d.entries[n]
		de := fuse.DirEntry{Name: n, Mode: e.mode()}
		if e.file != nil {
			de.Ino = e.file.ino
		} else if view == viewLive {
			de.Ino = inoOf(viewLive, e.dir.path)
		} else {
			de.Ino = inoOf(view, seq, e.dir.path)
		}
		out = append(out, de)
	}
	return out
}

// liveDir is a directory of the live view, named by its path: it always
// shows the latest snapshot (the root of the mount is the one with path "").
type liveDir struct {
	node
	path string
}

var (
	_ fs.NodeLookuper       = (*liveDir)(nil)
	_ fs.NodeOpendirHandler = (*liveDir)(nil)
	_ fs.NodeGetattrer      = (*liveDir)(nil)
	_ fs.NodeOnAdder        = (*liveDir)(nil)
)

// OnAdd builds the persistent history nodes under the root.
func (n *liveDir) OnAdd(ctx context.Context) {
	if n.path != "" || n.fsys.histInode != nil {
		return
	}
	f := n.fsys
	h := &histRoot{node: node{fsys: f}}
	f.histInode = n.NewPersistentInode(ctx, h, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: inoOf("h")})
	f.bySeqInode = n.NewPersistentInode(ctx, &bySeqDir{node: node{fsys: f}}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: inoOf("h", "by-seq")})
	f.latestInode = n.NewPersistentInode(ctx, &latestLink{node: node{fsys: f}}, fs.StableAttr{Mode: syscall.S_IFLNK, Ino: inoOf("h", "latest")})
}

func (n *liveDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	if n.path == "" && name == f.opts.HistoryDir {
		out.SetEntryTimeout(forever)
		out.SetAttrTimeout(liveTimeout)
		f.histAttr(&out.Attr)
		return f.histInode, 0
	}
	f.mu.RLock()
	t := f.live
	f.mu.RUnlock()
	p := join(n.path, name)
	e, ok := t.lookup(p)
	if !ok || !t.isDir(n.path) {
		return nil, syscall.ENOENT
	}
	return f.child(ctx, n.EmbeddedInode(), viewLive, t, p, e, out), 0
}

// isDir reports whether path is a directory of t (the root always is).
func (t *tree) isDir(path string) bool {
	if path == "" {
		return true
	}
	return t != nil && t.dirs[path] != nil
}

func (n *liveDir) list(context.Context) ([]fuse.DirEntry, syscall.Errno) {
	f := n.fsys
	f.mu.RLock()
	t := f.live
	f.mu.RUnlock()
	var extra []fuse.DirEntry
	if n.path == "" {
		extra = append(extra, fuse.DirEntry{Name: f.opts.HistoryDir, Mode: syscall.S_IFDIR, Ino: inoOf("h")})
	}
	e, ok := t.lookup(n.path)
	if !ok || e.dir == nil {
		return extra, 0
	}
	return dirEntries(viewLive, t, e.dir, extra...), 0
}

func (n *liveDir) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	f.mu.RLock()
	t := f.live
	f.mu.RUnlock()
	subdirs := 0
	if e, ok := t.lookup(n.path); ok && e.dir != nil {
		subdirs = e.dir.subdirs
	}
	if n.path == "" {
		subdirs++ // the history directory
	}
	var mtime time.Time
	if t != nil {
		mtime = t.time
	}
	f.dirAttr(inoOf(viewLive, n.path), subdirs, mtime, &out.Attr)
	out.SetTimeout(liveTimeout)
	return 0
}

// snapDir is a directory of one snapshot (path "" is the snapshot's own
// directory under .snapshots/ or .snapshots/by-seq/).
type snapDir struct {
	node
	view string
	seq  uint64
	path string
}

var (
	_ fs.NodeLookuper       = (*snapDir)(nil)
	_ fs.NodeOpendirHandler = (*snapDir)(nil)
	_ fs.NodeGetattrer      = (*snapDir)(nil)
)

func (n *snapDir) dir(ctx context.Context) (*tree, *dirEnt, syscall.Errno) {
	t, err := n.fsys.treeFor(ctx, n.seq)
	if err != nil {
		return nil, nil, syscall.EIO
	}
	d := t.dirs[n.path]
	if d == nil {
		return nil, nil, syscall.ENOENT
	}
	return t, d, 0
}

func (n *snapDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, d, errno := n.dir(ctx)
	if errno != 0 {
		return nil, errno
	}
	e, ok := d.entries[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	return n.fsys.child(ctx, n.EmbeddedInode(), n.view, t, join(n.path, name), e, out), 0
}

func (n *snapDir) list(ctx context.Context) ([]fuse.DirEntry, syscall.Errno) {
	t, d, errno := n.dir(ctx)
	if errno != 0 {
		return nil, errno
	}
	return dirEntries(n.view, t, d), 0
}

func (n *snapDir) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	t, d, errno := n.dir(ctx)
	if errno != 0 {
		return errno
	}
	n.fsys.dirAttr(inoOf(n.view, strconv.FormatUint(n.seq, 10), n.path), d.subdirs, t.time, &out.Attr)
	out.SetTimeout(forever)
	return 0
}

// histRoot is the history directory (.snapshots): a directory per snapshot
// named by its time, by-seq/ and the latest link.
type histRoot struct{ node }

var (
	_ fs.NodeLookuper       = (*histRoot)(nil)
	_ fs.NodeOpendirHandler = (*histRoot)(nil)
	_ fs.NodeGetattrer      = (*histRoot)(nil)
)

func (f *FS) histAttr(a *fuse.Attr) {
	f.mu.RLock()
	n := len(f.hist.snaps)
	var mtime time.Time
	if n > 0 {
		mtime = f.hist.snaps[n-1].time
	}
	f.mu.RUnlock()
	f.dirAttr(inoOf("h"), n+1, mtime, a)
}

func (n *histRoot) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	switch name {
	case bySeqName:
		out.SetEntryTimeout(forever)
		out.SetAttrTimeout(liveTimeout)
		f.bySeqAttr(&out.Attr)
		return f.bySeqInode, 0
	case latestName:
		target, ok := f.latestName()
		if !ok {
			return nil, syscall.ENOENT
		}
		out.SetEntryTimeout(liveTimeout)
		out.SetAttrTimeout(liveTimeout)
		f.linkAttr(target, &out.Attr)
		return f.latestInode, 0
	}
	f.mu.RLock()
	i, ok := f.hist.byName[name]
	var s snapMeta
	if ok {
		s = f.hist.snaps[i]
	}
	f.mu.RUnlock()
	if !ok {
		return nil, syscall.ENOENT
	}
	return f.snapRoot(ctx, n.EmbeddedInode(), viewByTime, s, out)
}

// snapRoot returns the top directory of snapshot s. Its tree is loaded
// lazily, on the first lookup or listing inside it.
func (f *FS) snapRoot(ctx context.Context, parent *fs.Inode, view string, s snapMeta, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ino := inoOf(view, strconv.FormatUint(s.seq, 10), "")
	out.SetEntryTimeout(forever)
	out.SetAttrTimeout(forever)
	f.dirAttr(ino, 0, s.time, &out.Attr)
	out.Attr.Nlink = 1 // not known before the tree is loaded; 1 = "unknown" for find(1)
	return parent.NewInode(ctx, &snapDir{node: node{fsys: f}, view: view, seq: s.seq}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino}), 0
}

func (n *histRoot) list(context.Context) ([]fuse.DirEntry, syscall.Errno) {
	f := n.fsys
	f.mu.RLock()
	list := make([]fuse.DirEntry, 0, len(f.hist.snaps)+2)
	for _, s := range f.hist.snaps {
		list = append(list, fuse.DirEntry{Name: s.name, Mode: syscall.S_IFDIR, Ino: inoOf(viewByTime, strconv.FormatUint(s.seq, 10), "")})
	}
	has := len(f.hist.snaps) > 0
	f.mu.RUnlock()
	list = append(list, fuse.DirEntry{Name: bySeqName, Mode: syscall.S_IFDIR, Ino: inoOf("h", "by-seq")})
	if has {
		list = append(list, fuse.DirEntry{Name: latestName, Mode: syscall.S_IFLNK, Ino: inoOf("h", "latest")})
	}
	return list, 0
}

func (n *histRoot) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.histAttr(&out.Attr)
	out.SetTimeout(liveTimeout)
	return 0
}

const (
	bySeqName  = "by-seq"
	latestName = "latest"
)

// bySeqDir is .snapshots/by-seq: the snapshots by sequence number.
type bySeqDir struct{ node }

var (
	_ fs.NodeLookuper       = (*bySeqDir)(nil)
	_ fs.NodeOpendirHandler = (*bySeqDir)(nil)
	_ fs.NodeGetattrer      = (*bySeqDir)(nil)
)

func (f *FS) bySeqAttr(a *fuse.Attr) {
	f.histAttr(a)
	a.Ino = inoOf("h", "by-seq")
	a.Nlink--
}

func (n *bySeqDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	seq, err := strconv.ParseUint(name, 10, 64)
	if err != nil || strconv.FormatUint(seq, 10) != name {
		return nil, syscall.ENOENT
	}
	f.mu.RLock()
	i, ok := f.hist.bySeq[seq]
	var s snapMeta
	if ok {
		s = f.hist.snaps[i]
	}
	f.mu.RUnlock()
	if !ok {
		return nil, syscall.ENOENT
	}
	return f.snapRoot(ctx, n.EmbeddedInode(), viewBySeq, s, out)
}

func (n *bySeqDir) list(context.Context) ([]fuse.DirEntry, syscall.Errno) {
	f := n.fsys
	f.mu.RLock()
	list := make([]fuse.DirEntry, 0, len(f.hist.snaps))
	for _, s := range f.hist.snaps {
		seq := strconv.FormatUint(s.seq, 10)
		list = append(list, fuse.DirEntry{Name: seq, Mode: syscall.S_IFDIR, Ino: inoOf(viewBySeq, seq, "")})
	}
	f.mu.RUnlock()
	return list, 0
}

func (n *bySeqDir) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.bySeqAttr(&out.Attr)
	out.SetTimeout(liveTimeout)
	return 0
}

// latestLink is .snapshots/latest, a relative symlink to the newest
// snapshot's directory.
type latestLink struct{ node }

var (
	_ fs.NodeReadlinker = (*latestLink)(nil)
	_ fs.NodeGetattrer  = (*latestLink)(nil)
)

func (f *FS) latestName() (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if n := len(f.hist.snaps); n > 0 {
		return f.hist.snaps[n-1].name, true
	}
	return "", false
}

func (f *FS) linkAttr(target string, a *fuse.Attr) {
	f.mu.RLock()
	var mtime time.Time
	if n := len(f.hist.snaps); n > 0 {
		mtime = f.hist.snaps[n-1].time
	}
	f.mu.RUnlock()
	a.Mode = syscall.S_IFLNK | 0o777
	a.Size = uint64(len(target))
	a.Nlink = 1
	a.Ino = inoOf("h", "latest")
	a.SetTimes(&mtime, &mtime, &mtime)
	f.owner(a)
}

func (n *latestLink) Readlink(context.Context) ([]byte, syscall.Errno) {
	target, ok := n.fsys.latestName()
	if !ok {
		return nil, syscall.ENOENT
	}
	return []byte(target), 0
}

func (n *latestLink) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	target, _ := n.fsys.latestName()
	n.fsys.linkAttr(target, &out.Attr)
	out.SetTimeout(liveTimeout)
	return 0
}

// fileNode is one immutable file version (shared by every view that shows
// the same path, content and mtime).
type fileNode struct {
	node
	f *fileEnt
}

var (
	_ fs.NodeOpener    = (*fileNode)(nil)
	_ fs.NodeReader    = (*fileNode)(nil)
	_ fs.NodeGetattrer = (*fileNode)(nil)
	_ fs.NodeFlusher   = (*fileNode)(nil)
)

func (n *fileNode) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.fileAttr(n.f, &out.Attr)
	out.SetTimeout(forever)
	return 0
}

// Open refuses writing, and otherwise answers ENOSYS: the kernel then
// stops sending OPEN and RELEASE for this mount and keeps every file's page
// cache across opens (FUSE no_open support), which is right for content
// that never changes. Reads arrive without a file handle. (Kernels without
// no_open get FOPEN_KEEP_CACHE, to the same effect at one round trip per
// open.)
//
// Where the kernel offers FUSE passthrough (and this process may use it:
// root), opens are answered instead, since no_open would be for the whole
// mount: files of passthroughMin or more are opened on a memory file the
// kernel reads itself (memFile), smaller ones with FOPEN_KEEP_CACHE.
func (n *fileNode) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&(syscall.O_TRUNC|syscall.O_APPEND|syscall.O_CREAT) != 0 {
		return nil, 0, syscall.EROFS
	}
	if n.fsys.passthrough.Load() {
		if n.f.size >= passthroughMin {
			if h, err := n.fsys.openMem(n.f); err == nil {
				return h, 0, 0
			}
			// Reads go through Read, which reports the error.
		}
		return nil, fuse.FOPEN_KEEP_CACHE, 0
	}
	if !n.fsys.noOpen.Load() {
		return nil, fuse.FOPEN_KEEP_CACHE, 0 // a kernel without no_open support
	}
	return nil, 0, syscall.ENOSYS
}

// Flush answers ENOSYS so the kernel stops sending FLUSH on every close.
func (n *fileNode) Flush(context.Context, fs.FileHandle) syscall.Errno { return syscall.ENOSYS }

func (n *fileNode) Read(_ context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= n.f.size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	data, err := n.fsys.blob(n.f)
	if err != nil {
		return nil, syscall.EIO
	}
	end := off + int64(len(dest))
	if end > int64(len(data)) {
		end = int64(len(data))
	}
	if off >= end {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(data[off:end]), 0
}

func (n *liveDir) OpendirHandle(ctx context.Context, _ uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return openDir(n.list(ctx))
}

func (n *snapDir) OpendirHandle(ctx context.Context, _ uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return openDir(n.list(ctx))
}

func (n *histRoot) OpendirHandle(ctx context.Context, _ uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return openDir(n.list(ctx))
}

func (n *bySeqDir) OpendirHandle(ctx context.Context, _ uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return openDir(n.list(ctx))
}

// openDir answers OPENDIR with the listing taken now, and asks the kernel to
// cache it (FOPEN_CACHE_DIR): history listings never change, and the live
// ones are invalidated when a snapshot lands (see FS.notices).
func openDir(list []fuse.DirEntry, errno syscall.Errno) (fs.FileHandle, uint32, syscall.Errno) {
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{list: list}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// dirHandle is an open directory. go-fuse serializes the calls on one
// handle.
type dirHandle struct {
	list []fuse.DirEntry
	pos  int
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
)

func (d *dirHandle) Readdirent(context.Context) (*fuse.DirEntry, syscall.Errno) {
	if d.pos >= len(d.list) {
		return nil, 0
	}
	e := d.list[d.pos]
	d.pos++
	e.Off = uint64(d.pos) // the offset of the next entry
	return &e, 0
}

func (d *dirHandle) Seekdir(_ context.Context, off uint64) syscall.Errno {
	d.pos = int(min(off, uint64(len(d.list))))
	return 0
}
