package fusefs

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Defaults of Options.
const (
	DefaultHistoryDir   = ".snapshots"
	DefaultTimeTemplate = "2006-01-02T15:04:05Z07:00" // restic's --time-template default
	DefaultPollInterval = 500 * time.Millisecond
	DefaultCacheSize    = 256 << 20
)

// Options configures Mount. The zero value gives the defaults.
type Options struct {
	// HistoryDir is the name of the history directory at the root of the
	// mount. A file or directory of the folder with that name is hidden
	// by it (and a warning logged).
	HistoryDir string
	// TimeTemplate is the Go time layout naming the snapshot directories
	// (like restic mount's --time-template). A "/" in the result becomes
	// "_"; a second snapshot with the same name gets "-<seq>" appended.
	TimeTemplate string
	// Location is the time zone snapshot names are formatted in (nil =
	// UTC).
	Location *time.Location
	// PollInterval is how often the source is asked for new snapshots; a
	// new one shows at the root within about this long. Negative disables
	// polling (call Refresh).
	PollInterval time.Duration
	// CacheSize bounds the file content kept in memory, in bytes (whole
	// files, least recently used first out). Where the kernel reads large
	// files itself (FUSE passthrough, as root), those are kept in memory
	// files bounded by CacheSize of their own.
	CacheSize int64
	// ReadAheadKB is the kernel readahead for the mount, in KiB, set
	// through /sys/class/bdi when running as root (the kernel's default is
	// 128). Larger requests make big files read faster. Zero = 1024;
	// negative = leave the kernel's default.
	ReadAheadKB int
	// AllowOther lets users other than the one who mounted read the mount
	// (FUSE allow_other; for non-root users it needs user_allow_other in
	// /etc/fuse.conf).
	AllowOther bool
	// Logger receives source errors, new snapshots and warnings (nil =
	// discard).
	Logger *slog.Logger
	// Debug logs every FUSE request to Logger at debug level.
	Debug bool

	// readWrite mounts without the kernel's read-only flag, so the EROFS
	// answers of the nodes themselves can be tested.
	readWrite bool
}

func (o Options) withDefaults() (Options, error) {
	if o.HistoryDir == "" {
		o.HistoryDir = DefaultHistoryDir
	}
	if !validPath(o.HistoryDir) || strings.Contains(o.HistoryDir, "/") {
		return o, fmt.Errorf("history directory name %q: want a single path element", o.HistoryDir)
	}
	if o.TimeTemplate == "" {
		o.TimeTemplate = DefaultTimeTemplate
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.ReadAheadKB == 0 {
		o.ReadAheadKB = 1024
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// FS is a mounted folder. Create it with Mount; it serves until Unmount (or
// until someone runs fusermount -u on the mountpoint: see Done).
type FS struct {
	src        source.Source
	folder     store.FolderID
	opts       Options
	log        *slog.Logger
	uid, gid   uint32
	mountpoint string

	blobs    *lru[store.BlobID, []byte]
	memBlobs *lru[store.BlobID, *memBlob]
	trees    *lru[uint64, *tree]

	mu   sync.RWMutex
	live *tree // nil before the first snapshot
	hist history

	// Persistent nodes, made when the root is added.
	root                               *liveDir
	histInode, bySeqInode, latestInode *fs.Inode

	server  *fuse.Server
	mounted atomic.Bool
	// What the kernel supports (from INIT): answering OPEN / OPENDIR with
	// ENOSYS, see noOpendir.
	noOpen, noOpendir atomic.Bool
	// FUSE passthrough is offered and allowed (root): large files are
	// opened on memory files the kernel reads itself (see memFile).
	passthrough atomic.Bool
	ctx         context.Context // until Unmount: polling and content loads
	cancel      context.CancelFunc
	done        chan struct{}
	pollDone    chan struct{}
	unmount     sync.Once
	unmountEr   error

	refreshMu sync.Mutex
	renotify  []notice // sent once more on the next poll (see notify)
	shadowLog sync.Once
	errLog    rateLog
}

// history indexes the snapshot list: names, sequence numbers, and for each
// path the snapshots that changed it (for mtimes).
type history struct {
	snaps   []snapMeta
	bySeq   map[uint64]int
	byName  map[string]int
	changed map[string][]int // path -> ascending indexes into snaps
}

type snapMeta struct {
	seq  uint64
	time time.Time
	name string
}

// add appends a snapshot (in ascending sequence order).
func (h *history) add(in store.SnapshotInfo, o *Options) {
	if h.bySeq == nil {
		h.bySeq, h.byName, h.changed = map[uint64]int{}, map[string]int{}, map[string][]int{}
	}
	if _, dup := h.bySeq[in.Seq]; dup {
		return
	}
	i := len(h.snaps)
	seq := strconv.FormatUint(in.Seq, 10)
	base := snapName(in.Time.In(o.Location).Format(o.TimeTemplate))
	name := base
	if name == "" {
		name = seq
	}
	for h.taken(name) {
		name += "-" + seq
	}
	h.snaps = append(h.snaps, snapMeta{seq: in.Seq, time: in.Time, name: name})
	h.bySeq[in.Seq] = i
	h.byName[name] = i
	for _, c := range in.Changes {
		if c.Kind == store.ChangeDeleted {
			continue
		}
		if l := h.changed[c.Path]; len(l) == 0 || l[len(l)-1] != i {
			h.changed[c.Path] = append(l, i)
		}
	}
}

func (h *history) taken(name string) bool {
	_, ok := h.byName[name]
	return ok || name == bySeqName || name == latestName
}

// mtime is the time of the last snapshot up to index i that added,
// modified or renamed path; the snapshot's own time when none did (change
// lists that do not mention the file).
func (h *history) mtime(path string, i int) time.Time {
	l := h.changed[path]
	k := sort.Search(len(l), func(k int) bool { return l[k] > i })
	if k == 0 {
		return h.snaps[i].time
	}
	return h.snaps[l[k-1]].time
}

// snapName makes a formatted time usable as a file name.
func snapName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, s)
	if s == "." || s == ".." {
		return ""
	}
	return s
}

// Mount loads folder f's snapshot list and latest snapshot from src, then
// mounts it read-only at mountpoint and starts following new snapshots. ctx
// bounds only this initial load: errors there (server unreachable, token
// rejected, unknown folder) are returned and nothing is mounted. The caller
// keeps ownership of src and closes it after Unmount.
//
// The mountpoint must be an existing empty directory that is not already a
// mount point (CheckMountpoint). When FUSE itself is missing or not
// permitted, the error wraps ErrFUSEUnavailable and says what to install or
// allow.
func Mount(ctx context.Context, mountpoint string, src source.Source, f store.FolderID, o Options) (*FS, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return nil, err
	}
	if err := CheckMountpoint(abs); err != nil {
		return nil, err
	}
	fsys := newFS(src, f, o)
	fsys.mountpoint = abs
	if err := fsys.Refresh(ctx); err != nil {
		fsys.cancel()
		return nil, err
	}
	server, err := fsys.mount(abs)
	if err != nil {
		fsys.cancel()
		return nil, mountError(abs, err, o)
	}
	fsys.server = server
	fsys.mounted.Store(true)
	if o.ReadAheadKB > 0 {
		if err := setReadAhead(abs, o.ReadAheadKB); err != nil {
			fsys.log.Debug("cannot raise the mount's readahead (needs root); big files read slower", "err", err)
		}
	}
	go func() {
		server.Wait()
		close(fsys.done)
	}()
	go fsys.poll()
	return fsys, nil
}

func newFS(src source.Source, f store.FolderID, o Options) *FS {
	fsys := &FS{
		src: src, folder: f, opts: o, log: o.Logger.With("folder", f.String()),
		uid: uint32(os.Getuid()), gid: uint32(os.Getgid()),
		blobs:    newLRU[store.BlobID](o.CacheSize, func(b []byte) int64 { return int64(len(b)) }),
		trees:    newLRU[uint64](1<<18, func(t *tree) int64 { return int64(t.files + len(t.dirs)) }),
		memBlobs: newLRU[store.BlobID](o.CacheSize, func(m *memBlob) int64 { return m.size }),
		done:     make(chan struct{}),
		pollDone: make(chan struct{}),
	}
	fsys.memBlobs.onEvict = (*memBlob).close
	fsys.errLog.log = fsys.log
	fsys.ctx, fsys.cancel = context.WithCancel(context.Background())
	fsys.root = &liveDir{node: node{fsys: fsys}}
	return fsys
}

// mount is fs.Mount with the node file system wrapped in noOpendir.
func (f *FS) mount(dir string) (*fuse.Server, error) {
	opts := f.fuseOptions()
	server, err := fuse.NewServer(noOpendir{RawFileSystem: fs.NewNodeFS(f.root, opts), fsys: f}, dir, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, err // as fs.Mount: the serve loop ends with the connection
	}
	return server, nil
}

func (f *FS) fuseOptions() *fs.Options {
	neg := liveTimeout
	mo := []string{"default_permissions"}
	if !f.opts.readWrite {
		mo = append(mo, "ro")
	}
	return &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther: f.opts.AllowOther,
			Options:    mo,
			FsName:     "relay:" + f.folder.String(),
			Name:       "relay-git-sync",
			// Large requests: fewer round trips for big files.
			MaxWrite:     1 << 20,
			MaxReadAhead: 1 << 20,
			// Reads answer bytes from memory, never a file descriptor:
			// without this go-fuse first tries a splice for every read
			// (a pipe, an fcntl and a write of the header into it) and
			// only then falls back to writing the bytes.
			DisableSplice: true,
			// As root, mount(2) directly (no fusermount needed); go-fuse
			// falls back to fusermount when that fails.
			DirectMount:   os.Geteuid() == 0,
			DisableXAttrs: true,
			// Inodes are immutable: nothing for the kernel to invalidate
			// on its own (mtime changes and the like).
			ExplicitDataCacheControl: true,
			Debug:                    f.opts.Debug,
			Logger:                   slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
		},
		NegativeTimeout: &neg,
		UID:             f.uid,
		GID:             f.gid,
		Logger:          log.New(slogWriter{f.log}, "", 0),
	}
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("fuse: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

// Done is closed when the file system is no longer mounted: after Unmount,
// or when it was unmounted from outside (fusermount -u).
func (f *FS) Done() <-chan struct{} { return f.done }

// Mountpoint returns the absolute path the folder is mounted at.
func (f *FS) Mountpoint() string { return f.mountpoint }

// Seq returns the sequence number of the snapshot the root shows (0 =
// none yet).
func (f *FS) Seq() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.live == nil {
		return 0
	}
	return f.live.seq
}

// Unmount stops following the source and unmounts. When the mountpoint is
// busy (a shell's working directory, an open file), it is detached lazily
// after a few tries: it disappears from the tree at once and the processes
// still using it get errors. It returns an error only when not even that
// worked. It is safe to call more than once.
func (f *FS) Unmount() error {
	f.unmount.Do(func() {
		f.cancel()
		<-f.pollDone
		select {
		case <-f.done:
			return // already unmounted from outside
		default:
		}
		if err := f.server.Unmount(); err != nil {
			if lerr := lazyUnmount(f.mountpoint); lerr != nil {
				f.unmountEr = fmt.Errorf("unmounting %s: %v; run `fusermount3 -u %s` (or `umount %s` as root) once nothing uses it", f.mountpoint, strings.TrimSpace(err.Error()), f.mountpoint, f.mountpoint)
				return
			}
			f.log.Warn("mountpoint was busy: detached it lazily; processes still using it will get errors", "mountpoint", f.mountpoint)
		}
		select {
		case <-f.done:
		case <-time.After(5 * time.Second):
		}
		f.memBlobs.purge()
	})
	return f.unmountEr
}

// poll follows the source until Unmount.
func (f *FS) poll() {
	defer close(f.pollDone)
	if f.opts.PollInterval < 0 {
		<-f.ctx.Done()
		return
	}
	tick := time.NewTicker(f.opts.PollInterval)
	defer tick.Stop()
	timeout := max(20*f.opts.PollInterval, 30*time.Second)
	var down bool
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.done:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(f.ctx, timeout)
		err := f.Refresh(ctx)
		cancel()
		switch {
		case err != nil && f.ctx.Err() != nil:
			return
		case err != nil && !down:
			down = true
			f.log.Warn("cannot read new snapshots; still serving what the mount has", "err", err)
		case err == nil && down:
			down = false
			f.log.Info("source reachable again; following new snapshots")
		}
	}
}

// Refresh asks the source for snapshots newer than the one shown and, if
// there are, shows the newest at the root and notifies the kernel of what
// changed. The poller calls it; tests may call it to not wait.
func (f *FS) Refresh(ctx context.Context) error {
	f.refreshMu.Lock()
	defer f.refreshMu.Unlock()

	// Entries notified last time are notified once more: a lookup that
	// read the old tree just before the swap may have answered the kernel
	// just after the notification.
	if again := f.renotify; len(again) > 0 {
		f.renotify = nil
		f.send(again)
	}

	f.mu.RLock()
	var last uint64
	if n := len(f.hist.snaps); n > 0 {
		last = f.hist.snaps[n-1].seq
	}
	f.mu.RUnlock()
	infos, err := f.src.Snapshots(ctx, f.folder, last)
	if err != nil {
		return fmt.Errorf("listing snapshots of %s: %w", f.folder, err)
	}
	if len(infos) == 0 {
		return nil
	}
	newest := infos[len(infos)-1]
	snap, err := f.src.Snapshot(ctx, f.folder, newest.Seq)
	if err != nil {
		return fmt.Errorf("reading snapshot %d of %s: %w", newest.Seq, f.folder, err)
	}

	f.mu.Lock()
	for _, in := range infos {
		f.hist.add(in, &f.opts)
	}
	idx, ok := f.hist.bySeq[snap.Seq]
	if !ok { // the source answered a different snapshot than listed
		f.hist.add(store.SnapshotInfo{Seq: snap.Seq, Time: snap.Time, Changes: snap.Changes}, &f.opts)
		idx = f.hist.bySeq[snap.Seq]
	}
	t, shadowed := buildTree(snap, func(p string) time.Time { return f.hist.mtime(p, idx) }, f.opts.HistoryDir)
	old := f.live
	f.live = t
	names := make([]string, 0, len(infos))
	for _, in := range infos {
		names = append(names, f.hist.snaps[f.hist.bySeq[in.Seq]].name)
	}
	f.mu.Unlock()

	if len(shadowed) > 0 {
		f.shadowLog.Do(func() {
			f.log.Warn("some paths of the folder cannot be shown at the root (hidden by the history directory, or clashing with a directory)", "paths", shadowed, "history_dir", f.opts.HistoryDir)
		})
	}
	if f.mounted.Load() {
		notices := f.notices(old, t, names, infos)
		f.send(notices)
		f.renotify = notices
		f.log.Info("new snapshot", "seq", snap.Seq, "time", snap.Time.Format(time.RFC3339), "files", len(snap.Files))
	}
	return nil
}

// notice is one kernel cache invalidation.
type notice struct {
	parent *fs.Inode
	name   string // entry to invalidate; "" = parent's attributes and cached listing
	child  *fs.Inode
}

// notices lists what the kernel must forget after the root moved from old
// to cur: changed entries of live directories it knows, the attributes and
// cached listings of every live directory it knows (their mtime is the
// snapshot's), and the history directory's new entries.
func (f *FS) notices(old, cur *tree, names []string, infos []store.SnapshotInfo) []notice {
	var out []notice
	root := f.root.EmbeddedInode()
	for _, c := range diffTrees(old, cur) {
		parent := root
		if c.dir != "" {
			for _, el := range strings.Split(c.dir, "/") {
				if parent = parent.GetChild(el); parent == nil {
					break
				}
			}
		}
		if parent == nil {
			continue // the kernel never looked there
		}
		n := notice{parent: parent, name: c.name}
		if c.removed {
			n.child = parent.GetChild(c.name)
		}
		out = append(out, n)
	}
	var walk func(in *fs.Inode)
	walk = func(in *fs.Inode) {
		out = append(out, notice{parent: in})
		for _, ch := range in.Children() {
			if _, ok := ch.Operations().(*liveDir); ok {
				walk(ch)
			}
		}
	}
	walk(root)
	out = append(out, notice{parent: f.histInode}, notice{parent: f.bySeqInode}, notice{parent: f.latestInode})
	for i, name := range names {
		out = append(out,
			notice{parent: f.histInode, name: name},
			notice{parent: f.bySeqInode, name: strconv.FormatUint(infos[i].Seq, 10)})
	}
	out = append(out, notice{parent: f.histInode, name: latestName})
	return out
}

// send delivers notices to the kernel. It must not run under f.mu: the
// kernel may wait for requests in flight on the same directories, which
// need f.mu to be answered.
func (f *FS) send(notices []notice) {
	for _, n := range notices {
		var errno syscall.Errno
		switch {
		case n.name == "":
			errno = n.parent.NotifyContent(0, 0) // attributes, and a directory's cached listing
		case n.child != nil:
			if errno = n.parent.NotifyDelete(n.name, n.child); errno != 0 {
				errno = n.parent.NotifyEntry(n.name)
			}
		default:
			errno = n.parent.NotifyEntry(n.name)
		}
		// ENOENT: the kernel had nothing cached there; fine.
		if errno != 0 && errno != syscall.ENOENT {
			f.log.Debug("kernel cache notification failed", "name", n.name, "err", errno)
		}
	}
}

// treeFor returns snapshot seq's tree, loading it through the cache.
func (f *FS) treeFor(ctx context.Context, seq uint64) (*tree, error) {
	t, err := f.trees.get(seq, func() (*tree, error) {
		snap, err := f.src.Snapshot(f.ctx, f.folder, seq)
		if err != nil {
			return nil, err
		}
		f.mu.RLock()
		defer f.mu.RUnlock()
		idx, ok := f.hist.bySeq[seq]
		if !ok {
			return nil, fmt.Errorf("snapshot %d is not listed", seq)
		}
		t, _ := buildTree(snap, func(p string) time.Time { return f.hist.mtime(p, idx) }, "")
		return t, nil
	})
	if err != nil {
		f.errLog.warn("cannot read snapshot", "seq", seq, "err", err)
	}
	return t, err
}

// blob returns a file's content through the cache.
func (f *FS) blob(fe *fileEnt) ([]byte, error) {
	data, err := f.blobs.get(fe.blob, func() ([]byte, error) {
		data, err := f.src.Blob(f.ctx, fe.blob)
		if err == nil && int64(len(data)) != fe.size {
			err = fmt.Errorf("blob %s has %d bytes, the snapshot says %d", fe.blob, len(data), fe.size)
		}
		return data, err
	})
	if err != nil {
		f.errLog.warn("cannot read file content", "blob", fe.blob.String(), "err", err)
	}
	return data, err
}

// rateLog logs at most one warning every few seconds (a source that is
// down would otherwise log every read), counting the ones it drops.
type rateLog struct {
	log     *slog.Logger
	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (r *rateLog) warn(msg string, args ...any) {
	r.mu.Lock()
	if now := time.Now(); now.Sub(r.last) < 5*time.Second {
		r.dropped++
		r.mu.Unlock()
		return
	} else {
		r.last = now
	}
	if r.dropped > 0 {
		args = append(args, "similar_errors_not_logged", r.dropped)
		r.dropped = 0
	}
	r.mu.Unlock()
	r.log.Warn(msg, args...)
}
