// Package benchproc is what the benchmark programs under bench/ share:
// their work directory, the relay-git-sync binary they run, and what Linux
// tells about that process (/proc: resident set, CPU time) and its log.
package benchproc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Workdir makes a temporary directory named after prefix. cleanup removes
// it, unless keep, when it is only logged (for the data dir and the logs).
func Workdir(prefix string, keep bool) (dir string, cleanup func(), err error) {
	if dir, err = os.MkdirTemp("", prefix+"-"); err != nil {
		return "", nil, err
	}
	if keep {
		log.Printf("data dir and logs kept in %s", dir)
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// Binary returns bin, or when it is empty builds relay-git-sync into dir
// (run from the module root).
func Binary(bin, dir string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	bin = filepath.Join(dir, "relay-git-sync")
	log.Printf("building relay-git-sync …")
	cmd := exec.Command("go", "build", "-tags", "nomsgpack", "-o", bin, "./cmd/relay-git-sync")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building (run from the module root, or pass -bin): %w", err)
	}
	return bin, nil
}

// Status returns the sizes in /proc/PID/status (the "kB" fields, such as
// VmHWM and RssAnon), in bytes.
func Status(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		v, isKB := strings.CutSuffix(strings.TrimSpace(rest), " kB")
		if !ok || !isKB {
			continue
		}
		if kb, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[name] = kb << 10
		}
	}
	return out, sc.Err()
}

// StatusField returns one field of Status, such as "VmHWM" (the peak
// resident set).
func StatusField(pid int, name string) (int64, error) {
	st, err := Status(pid)
	if err != nil {
		return 0, err
	}
	v, ok := st[name]
	if !ok {
		return 0, fmt.Errorf("no %s in /proc/%d/status", name, pid)
	}
	return v, nil
}

// CPU returns the user and system time process pid has used, all its
// threads (fields 14 and 15 of /proc/PID/stat, in ticks of 1/100 s).
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * clockTick, nil
}

var servingLine = regexp.MustCompile(`msg=serving addr=(\S+)`)

// WaitServing waits until serve's log at path has its "serving addr=…"
// line and returns the address.
func WaitServing(ctx context.Context, path string) (string, error) {
	for {
		b, _ := os.ReadFile(path)
		if m := servingLine.FindSubmatch(b); m != nil {
			return string(m[1]), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("serve did not start: %w\n%s", ctx.Err(), b)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
