package fusefs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
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

func (f *FS) loadMem(fe *fileEnt) (*memBlob, error) {
	data, err := f.src.Blob(f.ctx, fe.blob)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != fe.size {
		return nil, fmt.Errorf("blob %s has %d bytes, the snapshot says %d", fe.blob, len(data), fe.size)
	}
	fd, err := unix.MemfdCreate("relay-blob", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating a memory file: %w", err)
	}
	for off := 0; off < len(data); {
		n, err := unix.Pwrite(fd, data[off:], int64(off))
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("filling a memory file: %w", err)
		}
		off += n
	}
	return &memBlob{size: fe.size, fd: fd}, nil
}
