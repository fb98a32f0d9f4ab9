package store

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseMapped asks the kernel to reclaim the pages of the value log that
// this process has mapped (MADV_PAGEOUT, Linux 5.4+; older kernels ignore
// it). Badger v4 writes and reads its value log through shared memory maps,
// so streaming a large blob in or out leaves every page of it resident in
// the process: clean page cache the kernel could drop, but counted in the
// resident set (a 200 MB attachment: +200 MB). The hint is only a hint: it
// never changes what the mapping reads (the pages come back from the file),
// and it is harmless on a range that was unmapped and reused in between.
func (s *Store) releaseMapped() {
	if s.space == nil { // in memory: nothing is mapped
		return
	}
	dir, err := filepath.Abs(s.space.dir)
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		// "start-end perms offset dev inode   path"
		i := bytes.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := string(line[i:])
		if !strings.HasSuffix(path, ".vlog") || filepath.Dir(path) != dir {
			continue
		}
		span, _, _ := bytes.Cut(line, []byte{' '})
		lo, hi, ok := bytes.Cut(span, []byte{'-'})
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT)
	}
}
