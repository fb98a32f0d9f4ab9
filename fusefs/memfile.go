package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
)

// passthroughMin is the size from which a file is opened in passthrough
// mode: below it, a file is read in one or two requests, and the memory
// file would cost more than it saves.
const passthroughMin = 1 << 20

// memBlob is a file's content decoded once into a memory file (memfd). Its
// descriptor is closed when the cache drops it; files open on it hold
// their own duplicates.
type memBlob struct {
	size int64
	mu   sync.Mutex
	fd   int // -1 once closed
}

func (m *memBlob) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fd >= 0 {
		unix.Close(m.fd)
		m.fd = -1
	}
}

var errEvicted = errors.New("memory file dropped from the cache")

// dup returns a descriptor of its own on the memory file.
func (m *memBlob) dup() (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fd < 0 {
		return -1, errEvicted
	}
	return unix.FcntlInt(uintptr(m.fd), unix.F_DUPFD_CLOEXEC, 0)
}

// memFile is an open file in passthrough mode: go-fuse registers its
// descriptor with the kernel (FOPEN_PASSTHROUGH), which then reads the memory
// file itself, through its own page cache, without a request to this
// process per read, as go-fuse's loopback file system does with real files.
// Should the registration fail, reads come to fileNode.Read as usual.
type memFile struct{ fd int }

var (
	_ fs.FilePassthroughFder = (*memFile)(nil)
	_ fs.FileReleaser        = (*memFile)(nil)
)

func (h *memFile) PassthroughFd() (int, bool) { return h.fd, true }

// Release closes this open's descriptor (the kernel keeps its own reference
// to the file for as long as it needs it).
func (h *memFile) Release(context.Context) syscall.Errno {
	unix.Close(h.fd)
	return 0
}

// openMem returns an open of fe's content in a memory file, loading it once
// through the cache.
func (f *FS) openMem(fe *fileEnt) (*memFile, error) {
	for {
		m, err := f.memBlobs.get(fe.blob, func() (*memBlob, error) { return f.loadMem(fe) })
		if err != nil {
			f.errLog.warn("cannot read file content", "blob", fe.blob.String(), "err", err)
			return nil, err
		}
		fd, err := m.dup()
		if errors.Is(err, errEvicted) {
			continue // dropped between get and dup: load it again
		}
		if err != nil {
			return nil, fmt.Errorf("duplicating the memory file of %s: %w", fe.blob, err)
		}
		return &memFile{fd: fd}, nil
	}
}

// loadMem copies fe's content into a new memory file as a stream
// (source.OpenBlob): a large file is never held in this process's heap as
// well as in the memory file.
func (f *FS) loadMem(fe *fileEnt) (*memBlob, error) {
	rc, size, err := source.OpenBlob(f.ctx, f.src, fe.blob)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size != fe.size {
		return nil, fmt.Errorf("blob %s has %d bytes, the snapshot says %d", fe.blob, size, fe.size)
	}
	fd, err := unix.MemfdCreate("relay-blob", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating a memory file: %w", err)
	}
	n, err := io.Copy(fdWriter(fd), rc)
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, want %d", n, size)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("filling a memory file with blob %s: %w", fe.blob, err)
	}
	return &memBlob{size: fe.size, fd: fd}, nil
}

// fdWriter writes to a file descriptor, all of each buffer.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := unix.Write(int(w), p[n:])
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}
