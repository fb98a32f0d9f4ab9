// Package fusefs owns the read-only FUSE view of one Relay shared folder
// (`relay-git-sync mount`): the folder's current files at the root of the
// mount and its whole history under a dot-directory, read from a
// source.Source (a running serve's read API, or a data dir).
//
// # Layout
//
//	MOUNTPOINT/                    the latest snapshot's files
//	MOUNTPOINT/.snapshots/         one directory per snapshot, named by its time
//	  2026-01-31T18:00:00Z/        (Options.TimeTemplate; a second snapshot in the
//	  2026-01-31T18:00:00Z-8/       same second gets "-<seq>" appended)
//	  latest -> 2026-01-31T18:00:00Z-8
//	  by-seq/1/ … by-seq/8/        the same snapshots by sequence number
//
// Directories have the snapshot's time as mtime; a file's mtime is the time
// of the last snapshot, up to the one shown, that added, modified or renamed
// it (from the snapshots' change lists), so unchanged notes keep their times
// from one snapshot to the next and tools that compare mtimes (editors,
// rsync, make) see only real changes.
//
// # Caching and live updates
//
// Every file node is immutable: its inode number is derived from (path,
// content id, mtime), so its attributes and content never change and the
// kernel may cache them for good (long attribute timeouts, page cache kept
// across opens; a file that is open when a new version lands keeps reading
// the version it opened, as after an editor's save-by-rename). History
// directories never change either. The live root
// changes when a new snapshot lands: a poller (Options.PollInterval) asks the
// source for snapshots after the one shown, swaps in the new tree and tells
// the kernel exactly which directory entries changed (go-fuse NotifyEntry /
// NotifyDelete, and attribute invalidation of live directories), so the
// root follows the folder within about a poll interval while unchanged files
// stay cached. Live entries also carry a one-minute timeout as a safety net.
//
// Content is fetched lazily on the first read of a file, through an LRU cache
// of whole blobs (Options.CacheSize) shared by all files with the same
// content, and handed to the kernel without copying. The mount answers OPEN,
// FLUSH and OPENDIR with ENOSYS, which the kernel takes as "no open, flush
// or release needed; keep the page cache and the directory listings" (FUSE
// no_open / no_opendir support, Linux 5.1+): reading a file or listing a
// directory the kernel has seen costs no round trip to this process at all.
// Directory listings are invalidated like directory entries when the live
// view changes. As root, the mount's readahead is raised to 1 MiB
// (Options.ReadAheadKB) so big files cross in fewer, larger requests.
//
// Where the kernel offers FUSE passthrough (Linux 6.9+) and the mount runs
// as root, OPEN is answered instead (no_open is for a whole mount): a file
// of 1 MiB or more is decoded once into a memory file (memfd, in a cache of
// its own bounded by Options.CacheSize) that the kernel then reads itself,
// as go-fuse's loopback file system does with real files; smaller files
// keep their page cache across opens (FOPEN_KEEP_CACHE).
//
// Source errors while mounted (server down, data dir gone) do not take the
// mount down: it keeps serving the tree and content it has, reads of content
// it has never fetched fail with EIO, and the problem and its recovery are
// logged. Everything that would modify the tree fails with EROFS (the mount
// is also made read-only in the kernel).
package fusefs
