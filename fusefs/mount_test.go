package fusefs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

var (
	t1 = time.Date(2026, 1, 31, 18, 0, 0, 200_000_000, time.UTC)
	t2 = t1.Add(500 * time.Millisecond) // the same second as t1
	t3 = time.Date(2026, 2, 1, 9, 30, 0, 0, time.UTC)
)

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		if e.Type()&os.ModeSymlink != 0 {
			n += "@"
		}
		names = append(names, n)
	}
	return names
}

func wantFile(t *testing.T, path string, want []byte, mtime time.Time) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != int64(len(want)) || !fi.ModTime().Equal(mtime) || fi.Mode() != 0o444 {
		t.Errorf("stat %s: size %d mtime %v mode %v, want %d, %v, -r--r--r--", path, fi.Size(), fi.ModTime().UTC(), fi.Mode(), len(want), mtime)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("content of %s: %d bytes %.40q, want %d bytes %.40q", path, len(got), got, len(want), want)
	}
}

func TestMount(t *testing.T) {
	h := newWriter(t)
	bin := randomBytes(1, 300<<10+17) // spans several reads, not page aligned
	a1, a2, a3 := []byte("# A\nfirst\n"), []byte("# A\nsecond version\n"), []byte("# A\nthird\n")
	b := []byte("# B\n")
	h.add(t1, map[string][]byte{"a.md": a1, "notes/b.md": b, "img/x.bin": bin, "empty.md": {}})
	h.add(t2, map[string][]byte{"a.md": a2, "notes/b.md": b, "img/x.bin": bin, "empty.md": {}})

	fsys, mnt := mount(t, source.FromStore(h.st), Options{})
	const name1, name2, name3 = "2026-01-31T18:00:00Z", "2026-01-31T18:00:00Z-2", "2026-02-01T09:30:00Z"

	t.Run("live view", func(t *testing.T) {
		if got, want := readDir(t, mnt), []string{".snapshots/", "a.md", "empty.md", "img/", "notes/"}; !slices.Equal(got, want) {
			t.Errorf("root: %v, want %v", got, want)
		}
		wantFile(t, filepath.Join(mnt, "a.md"), a2, t2)
		wantFile(t, filepath.Join(mnt, "notes/b.md"), b, t1) // unchanged since snapshot 1
		wantFile(t, filepath.Join(mnt, "img/x.bin"), bin, t1)
		wantFile(t, filepath.Join(mnt, "empty.md"), nil, t1)
		fi, err := os.Stat(filepath.Join(mnt, "notes"))
		if err != nil || !fi.IsDir() || !fi.ModTime().Equal(t2) || fi.Mode().Perm() != 0o555 {
			t.Errorf("stat notes: %v %v", fi, err)
		}
		if _, err := os.Stat(filepath.Join(mnt, "nope.md")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat nope.md: %v", err)
		}
		// Reading at an offset (pread) past and across the end.
		f, err := os.Open(filepath.Join(mnt, "img/x.bin"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 100)
		if n, err := f.ReadAt(buf, int64(len(bin))-40); n != 40 || err != io.EOF || !bytes.Equal(buf[:40], bin[len(bin)-40:]) {
			t.Errorf("ReadAt across the end: %d %v", n, err)
		}
		if n, err := f.ReadAt(buf, int64(len(bin))+10); n != 0 || err != io.EOF {
			t.Errorf("ReadAt past the end: %d %v", n, err)
		}
	})

	t.Run("history", func(t *testing.T) {
		hist := filepath.Join(mnt, ".snapshots")
		if got, want := readDir(t, hist), []string{name1 + "/", name2 + "/", "by-seq/", "latest@"}; !slices.Equal(got, want) {
			t.Errorf(".snapshots: %v, want %v", got, want)
		}
		if got, err := os.Readlink(filepath.Join(hist, "latest")); err != nil || got != name2 {
			t.Errorf("latest -> %q, %v; want %q", got, err, name2)
		}
		wantFile(t, filepath.Join(hist, "latest", "a.md"), a2, t2)
		if got, want := readDir(t, filepath.Join(hist, "by-seq")), []string{"1/", "2/"}; !slices.Equal(got, want) {
			t.Errorf("by-seq: %v, want %v", got, want)
		}
		for _, dir := range []string{filepath.Join(hist, name1), filepath.Join(hist, "by-seq", "1")} {
			if got, want := readDir(t, dir), []string{"a.md", "empty.md", "img/", "notes/"}; !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", dir, got, want)
			}
			wantFile(t, filepath.Join(dir, "a.md"), a1, t1)
			wantFile(t, filepath.Join(dir, "img/x.bin"), bin, t1)
			fi, err := os.Stat(dir)
			if err != nil || !fi.ModTime().Equal(t1) {
				t.Errorf("stat %s: %v %v", dir, fi, err)
			}
		}
		wantFile(t, filepath.Join(hist, name2, "a.md"), a2, t2)
		for _, bad := range []string{"by-seq/3", "by-seq/01", "by-seq/x", "2026", name1 + "/nope"} {
			if _, err := os.Stat(filepath.Join(hist, bad)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stat .snapshots/%s: %v", bad, err)
			}
		}
	})

	t.Run("writes refused", func(t *testing.T) { refusesWrites(t, mnt) })

	t.Run("mountpoint busy", func(t *testing.T) {
		_, err := Mount(context.Background(), mnt, source.FromStore(h.st), testFolder, Options{})
		if err == nil || !strings.Contains(err.Error(), "busy") {
			t.Errorf("second mount on %s: %v", mnt, err)
		}
	})

	t.Run("concurrent readers", func(t *testing.T) {
		want := map[string][]byte{"a.md": a2, "notes/b.md": b, "img/x.bin": bin, "empty.md": {},
			".snapshots/by-seq/1/a.md": a1, ".snapshots/" + name1 + "/img/x.bin": bin}
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					for p, w := range want {
						got, err := os.ReadFile(filepath.Join(mnt, p))
						if err != nil || !bytes.Equal(got, w) {
							t.Errorf("reader %d: %s: %d bytes, %v", g, p, len(got), err)
							return
						}
					}
					if _, err := os.ReadDir(filepath.Join(mnt, ".snapshots")); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})

	t.Run("new snapshot appears", func(t *testing.T) {
		// Prime the kernel caches with what is about to change: a cached
		// dentry and content for a.md and notes/b.md, a negative one for
		// c.md, and a.md held open.
		held, err := os.Open(filepath.Join(mnt, "a.md"))
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		os.ReadFile(filepath.Join(mnt, "notes/b.md"))
		if _, err := os.Stat(filepath.Join(mnt, "c.md")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("c.md before: %v", err)
		}
		readDir(t, mnt)
		if got := readDir(t, filepath.Join(mnt, "img")); !slices.Equal(got, []string{"x.bin"}) {
			t.Fatalf("img before: %v", got)
		}

		start := time.Now()
		h.add(t3, map[string][]byte{"a.md": a3, "img/x.bin": bin, "img/new.png": {1, 2}, "empty.md": {}, "c.md": []byte("new\n")})
		deadline := start.Add(5 * time.Second)
		for {
			got, _ := os.ReadFile(filepath.Join(mnt, "a.md"))
			_, cerr := os.Stat(filepath.Join(mnt, "c.md"))
			_, berr := os.Stat(filepath.Join(mnt, "notes"))
			if bytes.Equal(got, a3) && cerr == nil && errors.Is(berr, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v the root still shows a.md=%q, c.md: %v, notes: %v", time.Since(start), got, cerr, berr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		lag := time.Since(start)
		t.Logf("new snapshot visible at the root after %v (poll interval %v)", lag, DefaultPollInterval)
		if lag > 2*time.Second {
			t.Errorf("new snapshot took %v to show (want about a second)", lag)
		}
		if fsys.Seq() != 3 {
			t.Errorf("Seq() = %d", fsys.Seq())
		}
		if got, want := readDir(t, mnt), []string{".snapshots/", "a.md", "c.md", "empty.md", "img/"}; !slices.Equal(got, want) {
			t.Errorf("root: %v, want %v", got, want)
		}
		wantFile(t, filepath.Join(mnt, "a.md"), a3, t3)
		wantFile(t, filepath.Join(mnt, "c.md"), []byte("new\n"), t3)
		wantFile(t, filepath.Join(mnt, "img/x.bin"), bin, t1)
		// A directory listed before (and cached by the kernel) shows its
		// new entry.
		if got := readDir(t, filepath.Join(mnt, "img")); !slices.Equal(got, []string{"new.png", "x.bin"}) {
			t.Errorf("img after: %v", got)
		}
		fi, err := os.Stat(mnt)
		if err != nil || !fi.ModTime().Equal(t3) {
			t.Errorf("root mtime: %v %v", fi, err)
		}
		// An open file keeps showing the version it opened (like a file
		// replaced by rename).
		if got, err := io.ReadAll(held); err != nil || !bytes.Equal(got, a2) {
			t.Errorf("held-open a.md: %q, %v; want the old %q", got, err, a2)
		}
		hist := filepath.Join(mnt, ".snapshots")
		if got, err := os.Readlink(filepath.Join(hist, "latest")); err != nil || got != name3 {
			t.Errorf("latest -> %q, %v; want %q", got, err, name3)
		}
		if got, want := readDir(t, filepath.Join(hist, "by-seq")), []string{"1/", "2/", "3/"}; !slices.Equal(got, want) {
			t.Errorf("by-seq: %v, want %v", got, want)
		}
		wantFile(t, filepath.Join(hist, name3, "c.md"), []byte("new\n"), t3)
		wantFile(t, filepath.Join(hist, "by-seq/2/notes/b.md"), b, t1)
	})

	t.Run("unmount", func(t *testing.T) {
		if err := fsys.Unmount(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-fsys.Done():
		default:
			t.Error("Done not closed after Unmount")
		}
		if m, err := isMountPoint(mnt); err != nil || m {
			t.Errorf("still mounted: %v %v", m, err)
		}
		if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 0 {
			t.Errorf("mountpoint after unmount: %v %v", ents, err)
		}
		if err := fsys.Unmount(); err != nil {
			t.Errorf("second Unmount: %v", err)
		}
	})
}

// refusesWrites checks that every kind of modification fails with EROFS,
// in the live view and in the history.
func refusesWrites(t *testing.T, mnt string) {
	t.Helper()
	live := filepath.Join(mnt, "a.md")
	old := filepath.Join(mnt, ".snapshots", "by-seq", "1", "a.md")
	for _, file := range []string{live, old} {
		dir := filepath.Dir(file)
		ops := map[string]func() error{
			"open for write":  func() error { return writeFile(file, os.O_WRONLY) },
			"open read-write": func() error { return writeFile(file, os.O_RDWR) },
			"append":          func() error { return writeFile(file, os.O_WRONLY|os.O_APPEND) },
			"truncate":        func() error { return os.Truncate(file, 0) },
			"create":          func() error { return writeFile(filepath.Join(dir, "new.md"), os.O_WRONLY|os.O_CREATE) },
			"mkdir":           func() error { return os.Mkdir(filepath.Join(dir, "newdir"), 0o755) },
			"rename":          func() error { return os.Rename(file, file+".bak") },
			"unlink":          func() error { return os.Remove(file) },
			"rmdir":           func() error { return syscall.Rmdir(filepath.Join(mnt, "notes")) },
			"symlink":         func() error { return os.Symlink("a.md", filepath.Join(dir, "link")) },
			"link":            func() error { return os.Link(file, filepath.Join(dir, "hard")) },
			"chmod":           func() error { return os.Chmod(file, 0o644) },
			"utimes":          func() error { return os.Chtimes(file, time.Now(), time.Now()) },
		}
		for name, op := range ops {
			if err := op(); !errors.Is(err, syscall.EROFS) {
				t.Errorf("%s %s: %v, want EROFS", name, file, err)
			}
		}
	}
	// The refused operations left nothing behind.
	if _, err := os.Stat(filepath.Join(mnt, "new.md")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("new.md: %v", err)
	}
}

// writeFile opens path with flag and, if that worked, writes to it.
func writeFile(path string, flag int) error {
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte("x"))
	return err
}

// TestMountNodesRefuseWrites mounts without the kernel's read-only flag, so
// the nodes' own EROFS answers are what the callers see.
func TestMountNodesRefuseWrites(t *testing.T) {
	h := newWriter(t)
	h.add(t1, map[string][]byte{"a.md": []byte("a"), "notes/b.md": []byte("b")})
	_, mnt := mount(t, source.FromStore(h.st), Options{readWrite: true})
	if _, err := os.ReadFile(filepath.Join(mnt, "a.md")); err != nil { // switches the kernel to no-open
		t.Fatal(err)
	}
	refusesWrites(t, mnt)
}

func TestMountSourceDown(t *testing.T) {
	h := newWriter(t)
	h.add(t1, map[string][]byte{"a.md": []byte("a1"), "b.md": []byte("b1")})
	src := &flaky{Source: source.FromStore(h.st)}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), nil))
	_, mnt := mount(t, src, Options{PollInterval: 50 * time.Millisecond, Logger: log})

	wantFile(t, filepath.Join(mnt, "a.md"), []byte("a1"), t1)
	src.set(true)
	h.add(t2, map[string][]byte{"a.md": []byte("a2"), "b.md": []byte("b1")})
	time.Sleep(300 * time.Millisecond)

	// What the mount has is still served; content never fetched is EIO.
	wantFile(t, filepath.Join(mnt, "a.md"), []byte("a1"), t1)
	if _, err := os.ReadFile(filepath.Join(mnt, "b.md")); !errors.Is(err, syscall.EIO) {
		t.Errorf("unfetched content while the source is down: %v, want EIO", err)
	}
	if _, err := os.ReadDir(filepath.Join(mnt, ".snapshots", "by-seq", "1")); !errors.Is(err, syscall.EIO) {
		t.Errorf("unloaded snapshot while the source is down: %v, want EIO", err)
	}
	if n := strings.Count(logs.String(), "still serving what the mount has"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, logs.String())
	}

	src.set(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := os.ReadFile(filepath.Join(mnt, "a.md"))
		if string(got) == "a2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a.md still %q after the source came back", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "reachable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
	wantFile(t, filepath.Join(mnt, "b.md"), []byte("b1"), t1)
}

func TestMountEmptyFolderThenFirstSnapshot(t *testing.T) {
	h := newWriter(t)
	if err := h.st.AddFolder(testFolder); err != nil {
		t.Fatal(err)
	}
	_, mnt := mount(t, source.FromStore(h.st), Options{PollInterval: 50 * time.Millisecond})
	if got := readDir(t, mnt); !slices.Equal(got, []string{".snapshots/"}) {
		t.Errorf("empty folder root: %v", got)
	}
	if got := readDir(t, filepath.Join(mnt, ".snapshots")); !slices.Equal(got, []string{"by-seq/"}) {
		t.Errorf("empty folder history: %v", got)
	}
	h.add(t1, map[string][]byte{"first.md": []byte("1")})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(mnt, "first.md")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first snapshot never showed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, err := os.Readlink(filepath.Join(mnt, ".snapshots", "latest")); err != nil || got != "2026-01-31T18:00:00Z" {
		t.Errorf("latest: %q %v", got, err)
	}
}

func TestMountTimeTemplateAndShadowing(t *testing.T) {
	h := newWriter(t)
	h.add(t1, map[string][]byte{"a.md": []byte("a"), ".snapshots/x.md": []byte("hidden")})
	h.add(t3, map[string][]byte{"a.md": []byte("b"), ".snapshots/x.md": []byte("hidden")})
	_, mnt := mount(t, source.FromStore(h.st), Options{TimeTemplate: "2006/01/02 15h04", PollInterval: -1})
	hist := filepath.Join(mnt, ".snapshots")
	if got, want := readDir(t, hist), []string{"2026_01_31 18h00/", "2026_02_01 09h30/", "by-seq/", "latest@"}; !slices.Equal(got, want) {
		t.Errorf("names: %v, want %v", got, want)
	}
	// The folder's own .snapshots is hidden at the root but in the history.
	wantFile(t, filepath.Join(hist, "by-seq", "1", ".snapshots", "x.md"), []byte("hidden"), t1)
}

func TestMountUnknownFolder(t *testing.T) {
	h := newWriter(t)
	h.add(t1, map[string][]byte{"a.md": []byte("a")})
	other := store.FolderID{Relay: testFolder.Relay, Folder: "00000000-0000-4000-8000-000000000001"}
	_, err := Mount(context.Background(), t.TempDir(), source.FromStore(h.st), other, Options{})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown folder: %v", err)
	}
}

func TestCheckMountpoint(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	full := filepath.Join(dir, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	for _, tc := range []struct{ dir, want string }{
		{filepath.Join(dir, "missing"), "does not exist"},
		{file, "not a directory"},
		{full, "is not empty"},
		{"/proc", "busy"},
		{empty, ""},
	} {
		err := CheckMountpoint(tc.dir)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckMountpoint(%s) = %v, want %q", tc.dir, err, tc.want)
		}
	}
}

func TestHistoryNames(t *testing.T) {
	o, _ := Options{TimeTemplate: "2006-01-02"}.withDefaults()
	var h history
	day := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{day, day.Add(time.Hour), day.Add(2 * time.Hour), day.Add(24 * time.Hour)} {
		h.add(store.SnapshotInfo{Seq: uint64(i + 1), Time: at}, &o)
	}
	var names []string
	for _, s := range h.snaps {
		names = append(names, s.name)
	}
	if want := []string{"2026-03-01", "2026-03-01-2", "2026-03-01-3", "2026-03-02"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	o.TimeTemplate = "latest"
	var h2 history
	h2.add(store.SnapshotInfo{Seq: 1, Time: day}, &o)
	if h2.snaps[0].name != "latest-1" {
		t.Errorf("reserved name: %q", h2.snaps[0].name)
	}
}

func TestMountErrorExplains(t *testing.T) {
	testreq.FUSE(t) // the explanations depend on /dev/fuse being there
	for _, cause := range []error{syscall.EPERM, errors.New("fusermount exited with code 256")} {
		err := mountError("/mnt/x", cause, Options{AllowOther: true})
		if !errors.Is(err, ErrFUSEUnavailable) || !strings.Contains(err.Error(), "fuse3") {
			t.Errorf("%v: %v", cause, err)
		}
	}
	if err := mountError("/mnt/x", errors.New("something else"), Options{}); errors.Is(err, ErrFUSEUnavailable) || !strings.Contains(err.Error(), "mounting /mnt/x: something else") {
		t.Errorf("other error: %v", err)
	}
}
