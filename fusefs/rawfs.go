package fusefs

import (
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// noOpendir wraps go-fuse's node file system so that the kernel stops
// sending OPENDIR and RELEASEDIR: OPENDIR answers ENOSYS, which the kernel
// takes (FUSE no_opendir support, Linux 5.1+) as "keep every directory's
// listing cached and never open directories again", and the READDIR(PLUS)
// requests that then arrive without a handle get a short-lived one. Listing
// a directory the kernel has cached then costs no round trip at all; the
// cached listings of live directories are dropped by the notifications
// sent when a snapshot lands (FS.notices).
//
// It also records whether the kernel supports no_open, which fileNode.Open
// relies on in the same way (older kernels get ordinary opens), and FUSE
// passthrough (see memFile).
type noOpendir struct {
	fuse.RawFileSystem
	fsys *FS
}

func (w noOpendir) Init(s *fuse.Server) {
	flags := s.KernelSettings().Flags64()
	w.fsys.noOpen.Store(flags&fuse.CAP_NO_OPEN_SUPPORT != 0)
	w.fsys.noOpendir.Store(flags&fuse.CAP_NO_OPENDIR_SUPPORT != 0)
	// Registering backing files needs CAP_SYS_ADMIN.
	w.fsys.passthrough.Store(flags&fuse.CAP_PASSTHROUGH != 0 && os.Geteuid() == 0)
	w.RawFileSystem.Init(s)
}

func (w noOpendir) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if !w.fsys.noOpendir.Load() {
		return w.RawFileSystem.OpenDir(cancel, in, out)
	}
	return fuse.ENOSYS
}

func (w noOpendir) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return w.withHandle(cancel, in, func(in *fuse.ReadIn) fuse.Status { return w.RawFileSystem.ReadDir(cancel, in, out) })
}

func (w noOpendir) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return w.withHandle(cancel, in, func(in *fuse.ReadIn) fuse.Status { return w.RawFileSystem.ReadDirPlus(cancel, in, out) })
}

// withHandle runs fn with a directory handle opened for this one request
// (its listing is taken anew; the request's offset seeks into it).
func (w noOpendir) withHandle(cancel <-chan struct{}, in *fuse.ReadIn, fn func(*fuse.ReadIn) fuse.Status) fuse.Status {
	if in.Fh != 0 {
		return fn(in)
	}
	oin := fuse.OpenIn{InHeader: in.InHeader, Flags: syscall.O_RDONLY | syscall.O_DIRECTORY}
	var oout fuse.OpenOut
	if st := w.RawFileSystem.OpenDir(cancel, &oin, &oout); !st.Ok() {
		return st
	}
	h := *in
	h.Fh = oout.Fh
	st := fn(&h)
	w.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: in.InHeader, Fh: oout.Fh, Flags: oin.Flags})
	return st
}
