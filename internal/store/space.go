package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// The free-space guard.
//
// Why Badger crashes instead of failing on a full disk: Badger v4 writes
// every file it owns through a shared memory map over a file it first
// extends with ftruncate: the value log (.vlog, mapped at twice
// ValueLogFileSize), the memtable write-ahead logs (.mem, the arena size),
// new SSTables (.sst, one copy right after the ftruncate) and DISCARD. The
// files are sparse: a block is allocated when a page is first written, and
// when the file system has none left the page fault fails with SIGBUS, which
// the Go runtime reports as "fatal error: fault". No error is ever returned,
// and v4 has no option to write with write(2) instead.
//
// Preallocating (fallocate) cannot be done from outside Badger: it creates
// those files itself when a memtable or value log file fills and during
// flushes and compactions, and writes into them in the same call. What can
// be bounded is how much is written: every write goes through the Store, and
// what Badger writes on its own (memtable flushes and compactions) is bounded
// by the memtables and the LSM tree. So before every write the Store checks
// with statfs that the write, the writes in flight and a reserve for that
// background work fit; otherwise the write fails with ErrNoSpace and Badger
// never touches a block that cannot be allocated.

// ErrNoSpace is returned (wrapped) by writes refused because the data dir's
// file system is (nearly) full, and by Open on such a file system. It also
// matches syscall.ENOSPC, so layers that do not import the store (the HTTP
// server) recognise it with errors.Is.
var ErrNoSpace error = noSpaceError{}

type noSpaceError struct{}

func (noSpaceError) Error() string        { return "no space left on device" }
func (noSpaceError) Is(target error) bool { return target == syscall.ENOSPC }

const (
	// Each memtable is flushed into an SSTable of at most its size.
	reserveFlush = numMemtables * memTableSize
	// Compactions write their output before deleting their input, so they
	// need at most the LSM tree's size; Badger compacts a few small tables
	// at a time, which this cap covers with our table sizes.
	reserveCompactionMax = 64 << 20
	// Small writes not counted one by one (Badger's headers, DISCARD, the
	// manifest, sequence leases).
	reserveSlack = 1 << 20
	// Once a write is refused, writes resume only when it fits with this
	// much to spare, so answers do not flap while ingest retries.
	resumeMargin = 1 << 20
)

func reserveFor(lsm int64) uint64 {
	return reserveFlush + uint64(min(max(lsm, 0), reserveCompactionMax)) + reserveSlack
}

// freeBytes is the space available to the process on dir's file system
// (the nearest existing ancestor when dir does not exist yet).
func freeBytes(dir string) (uint64, error) {
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return uint64(st.Bavail) * uint64(st.Bsize), nil
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, syscall.ENOENT) || parent == dir {
			return 0, fmt.Errorf("store: checking free space of %s: %w", dir, err)
		}
		dir = parent
	}
}

// checkSpaceToOpen refuses to open a database on a file system without the
// reserve: Badger writes at open (a new value log file, a new memtable,
// flushes of the old ones) and would fault.
func checkSpaceToOpen(dir string) error {
	var lsm int64
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".sst") {
				if fi, err := e.Info(); err == nil {
					lsm += fi.Size()
				}
			}
		}
	}
	free, err := freeBytes(dir)
	if err != nil {
		return err
	}
	if need := reserveFor(lsm); free < need {
		return fmt.Errorf("store: cannot open %s: %s free on its file system, at least %s needed to open the database safely: free space or grow the file system, then start again: %w",
			dir, mib(free), mib(need), ErrNoSpace)
	}
	return nil
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// spaceGuard decides whether a write fits (see the top of this file).
type spaceGuard struct {
	dir string
	log *slog.Logger
	lsm func() int64

	mu       sync.Mutex
	inflight uint64
	full     bool   // writes refused until the refused one fits with resumeMargin
	refused  uint64 // size of the write that was refused
}

// status returns the free space and the reserve, and an ErrNoSpace error
// when writes are refused; it clears the refusal once space is back.
func (g *spaceGuard) status(n uint64) (free, reserve uint64, err error) {
	free, err = freeBytes(g.dir)
	if err != nil {
		return 0, 0, err
	}
	reserve = reserveFor(g.lsm())
	need := reserve + g.inflight + n
	if g.full {
		if free >= reserve+g.inflight+max(n, g.refused)+resumeMargin {
			g.full = false
			g.log.Info("data dir has free space again: writes resumed", "dir", g.dir, "free", mib(free), "free_bytes", free, "reserve", mib(reserve))
		} else {
			need = max(need, reserve+g.refused+resumeMargin)
		}
	}
	if !g.full && free < need {
		g.full, g.refused = true, n
		g.log.Warn("data dir is out of space: writes refused (webhooks answer 503) until space is freed",
			"dir", g.dir, "free", mib(free), "free_bytes", free, "needed", mib(need), "reserve", mib(reserve))
	}
	if g.full {
		return free, reserve, fmt.Errorf("store: out of space: %s free on the data dir's file system, %s needed (%s kept in reserve for the database's own writes): free space or grow the file system; writes resume by themselves: %w",
			mib(free), mib(need), mib(reserve), ErrNoSpace)
	}
	return free, reserve, nil
}

// acquire checks that a write of about n bytes fits and counts it as in
// flight until release is called.
func (g *spaceGuard) acquire(n int) (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, _, err := g.status(uint64(n)); err != nil {
		return nil, err
	}
	g.inflight += uint64(n)
	return func() {
		g.mu.Lock()
		g.inflight -= uint64(n)
		g.mu.Unlock()
	}, nil
}

// DiskSpace reports the bytes free on the data dir's file system and the
// reserve the store keeps; err (matching ErrNoSpace) is non-nil while writes
// are refused for lack of space. An in-memory store reports 0, 0, nil.
func (s *Store) DiskSpace() (free, reserve uint64, err error) {
	if s.space == nil {
		return 0, 0, nil
	}
	s.space.mu.Lock()
	defer s.space.mu.Unlock()
	return s.space.status(0)
}

// reserveSpace is acquire on the store's guard (nil for in-memory stores).
func (s *Store) reserveSpace(n int) (func(), error) { return s.space.acquire(n) }
