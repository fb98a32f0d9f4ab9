package fusefs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrFUSEUnavailable means this machine cannot mount FUSE file systems for
// this user: /dev/fuse is missing, no fusermount helper is installed, or the
// mount was not permitted. The error's text says what to install or allow.
var ErrFUSEUnavailable = errors.New("FUSE is not available")

// CheckMountpoint returns an error a user can act on unless dir is an
// existing, empty directory that is not already a mount point.
func CheckMountpoint(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return fmt.Errorf("mountpoint %s is a dead FUSE mount (its server was killed): unmount it first with `fusermount3 -u %s` (or `umount %s` as root)", dir, dir, dir)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("mountpoint %s does not exist: create it first (mkdir -p %s)", dir, dir)
	case err != nil:
		return fmt.Errorf("mountpoint %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("mountpoint %s is not a directory", dir)
	}
	if mounted, err := isMountPoint(dir); err == nil && mounted {
		return fmt.Errorf("mountpoint %s is busy: something is already mounted there (unmount it with `fusermount3 -u %s` or `umount %s`, or choose another directory)", dir, dir, dir)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", dir, err)
	}
	defer d.Close()
	if names, err := d.Readdirnames(1); err == nil && len(names) > 0 {
		return fmt.Errorf("mountpoint %s is not empty: mount on an empty directory (the mount would hide %q and the rest)", dir, names[0])
	} else if err != nil && err != io.EOF {
		return fmt.Errorf("mountpoint %s: %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether dir is the mount point of a mount in this
// process's mount namespace (from /proc/self/mountinfo).
func isMountPoint(dir string) (bool, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ...
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == real {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space …) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fusermount returns the path of the fusermount helper, or "".
func fusermount() string {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// mountError explains a failed mount.
func mountError(dir string, err error, o Options) error {
	msg := strings.TrimSpace(err.Error())
	if _, serr := os.Stat("/dev/fuse"); serr != nil {
		return fmt.Errorf("%w: /dev/fuse is missing: load the fuse kernel module (modprobe fuse), or give the container the device (docker run --device /dev/fuse --cap-add SYS_ADMIN) (mounting %s: %s)", ErrFUSEUnavailable, dir, msg)
	}
	if os.Geteuid() != 0 && fusermount() == "" {
		return fmt.Errorf("%w: fusermount3 is not installed: install fuse3 (apt-get install fuse3) (mounting %s: %s)", ErrFUSEUnavailable, dir, msg)
	}
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || strings.Contains(msg, "fusermount exited") ||
		strings.Contains(msg, "permission denied") || strings.Contains(msg, "not permitted") {
		hint := "mounting FUSE needs root or the setuid fusermount3 of the fuse3 package (apt-get install fuse3); in a container, --device /dev/fuse --cap-add SYS_ADMIN"
		if o.AllowOther && os.Geteuid() != 0 {
			hint += "; --allow-other also needs user_allow_other in /etc/fuse.conf"
		}
		return fmt.Errorf("%w: mounting %s was not permitted (%s): %s", ErrFUSEUnavailable, dir, msg, hint)
	}
	return fmt.Errorf("mounting %s: %s", dir, msg)
}

// setReadAhead sets the readahead of the mount at dir (its backing device
// info in sysfs; root only).
func setReadAhead(dir string, kb int) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(p, []byte(strconv.Itoa(kb)), 0)
}

// lazyUnmount detaches a busy mount (umount -l).
func lazyUnmount(dir string) error {
	if os.Geteuid() == 0 {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err == nil {
			return nil
		}
	}
	bin := fusermount()
	if bin == "" {
		return errors.New("no fusermount3 to unmount with")
	}
	if out, err := exec.Command(bin, "-u", "-z", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("%s -u -z %s: %v: %s", bin, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}
