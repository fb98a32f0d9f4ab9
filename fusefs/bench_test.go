package fusefs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// BenchmarkMountVsLoopback compares the mount with FUSE's own ceiling on this
// machine: go-fuse's loopback file system (fs.NewLoopbackRoot) over the same
// files on tmpfs, mounted in the same process with the same transport
// settings (MaxReadAhead, MaxWrite, 1 MiB kernel readahead) and the cache
// timeouts of go-fuse's loopback example (1 s), measured in the same run:
//
//   - file=64MiB: one 64 MiB file read sequentially in 1 MiB reads;
//   - tree=1000: a 1,000-file snapshot (notes of 1–16 KiB in 20
//     directories, 8 MiB) walked and every file read, as grep -r would;
//   - ls=1000snapshots: `ls -lR` of the history directory of a folder of 12
//     files with 1,000 snapshots (each changing one file), against the
//     loopback of a copy of that directory made with `cp -a`.
//
// Every run is cold: before each side is read the kernel is told to forget
// the pages, attributes and dentries of both mounts (FUSE notifications)
// and drops its caches (echo 3 > /proc/sys/vm/drop_caches, root only), so
// every byte and every lookup crosses FUSE. The loopback's files
// stay in tmpfs and the mount's decoded content stays in its own cache
// (Options.CacheSize); the store is on tmpfs too. Each line reports both
// rates, from the median of b.N runs of each side (the machine is shared,
// and a drop of the caches now and then leaves the loopback's pages in
// place: the median is robust to both), and mount/loopback (the target is
// ≥ 0.8). Run it with -benchtime 10x or more. first-MB/s is the first
// read through the fresh mount (store decode and hash check included).
func BenchmarkMountVsLoopback(b *testing.B) {
	testreq.FUSE(b)
	if err := dropCaches(); err != nil {
		b.Skipf("cannot drop the kernel caches (needs root): %v", err)
	}
	for _, shape := range []string{"file=64MiB", "tree=1000", "ls=1000snapshots"} {
		b.Run(shape, func(b *testing.B) { benchVsLoopback(b, shape) })
	}
}

// forget makes the kernel drop the pages, attributes, cached listings and
// dentries of every inode under in that it knows, through the
// notifications live updates use. drop_caches alone is not enough: it
// leaves the pages of the loopback's files in place more often than not
// (they came from tmpfs through splice).
func forget(in *gofs.Inode) {
	for name, ch := range in.Children() {
		forget(ch)
		ch.NotifyContent(0, 0)
		in.NotifyEntry(name)
	}
}

func dropCaches() error {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}

type benchFixture struct {
	fsys         *FS
	loop         *fuse.Server
	loopRoot     gofs.InodeEmbedder
	dir          string
	mnt, loopMnt string // the roots read or listed on each side
	bytes, first float64
	unit         string
}

var benchFixtures = map[string]*benchFixture{}

// fixture builds (once per shape and process) the store on tmpfs, the
// mount, the same files on tmpfs and their loopback mount.
func fixture(b *testing.B, shape string) *benchFixture {
	if fx := benchFixtures[shape]; fx != nil {
		return fx
	}
	dir, err := os.MkdirTemp("/dev/shm", "fusefs-bench-")
	if err != nil {
		b.Fatal(err)
	}
	fx := &benchFixture{dir: dir, unit: "MB/s"}
	benchFixtures[shape] = fx
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := &snapWriter{t: b, st: st}
	files := map[string][]byte{}
	switch shape {
	case "file=64MiB":
		files["big.bin"] = randomBytes(7, 64<<20)
	case "tree=1000":
		r := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < 1000; i++ {
			files[fmt.Sprintf("dir%02d/note%04d.md", i%20, i)] = randomBytes(uint64(i), 1024+r.IntN(15*1024))
		}
	case "ls=1000snapshots":
		for i := 0; i < 12; i++ {
			files[fmt.Sprintf("dir%d/note%02d.md", i%3, i)] = randomBytes(uint64(i), 2048)
		}
		for s := 0; s < 1000; s++ {
			p := fmt.Sprintf("dir%d/note%02d.md", s%3, s%12)
			files[p] = randomBytes(uint64(1000+s), 2048)
			h.add(t1.Add(time.Duration(s)*time.Minute), files)
		}
	}
	if shape != "ls=1000snapshots" {
		h.add(t1, files)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	fx.fsys, err = Mount(context.Background(), mnt, source.FromStore(st), testFolder, Options{PollInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	tmpfs := filepath.Join(dir, "tmpfs")
	if shape == "ls=1000snapshots" {
		os.Mkdir(tmpfs, 0o755)
		if out, err := exec.Command("cp", "-a", filepath.Join(mnt, DefaultHistoryDir), tmpfs).CombinedOutput(); err != nil {
			b.Fatalf("cp -a: %v: %s", err, out)
		}
		fx.mnt = filepath.Join(mnt, DefaultHistoryDir)
	} else {
		for p, data := range files {
			full := filepath.Join(tmpfs, p)
			os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, data, 0o644); err != nil {
				b.Fatal(err)
			}
			fx.bytes += float64(len(data))
		}
		fx.mnt = mnt
	}
	fx.loopRoot, err = gofs.NewLoopbackRoot(tmpfs)
	if err != nil {
		b.Fatal(err)
	}
	loopMnt := filepath.Join(dir, "loop")
	os.Mkdir(loopMnt, 0o755)
	sec := time.Second
	fx.loop, err = gofs.Mount(loopMnt, fx.loopRoot, &gofs.Options{
		AttrTimeout: &sec, EntryTimeout: &sec,
		MountOptions: fuse.MountOptions{
			Options: []string{"ro"}, FsName: tmpfs, Name: "loopback", DirectMount: true,
			MaxWrite: 1 << 20, MaxReadAhead: 1 << 20,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := setReadAhead(loopMnt, 1024); err != nil {
		b.Fatal(err)
	}
	fx.loopMnt = loopMnt
	if shape == "ls=1000snapshots" {
		fx.loopMnt = filepath.Join(loopMnt, DefaultHistoryDir)
		fx.unit = "entries/s"
		fx.bytes = float64(lsR(b, fx.loopMnt))
		if n := lsR(b, fx.mnt); float64(n) != fx.bytes {
			b.Fatalf("ls -lR: %d lines through the mount, %d through the loopback", n, int(fx.bytes))
		}
		return fx
	}
	start := time.Now()
	if n := readTree(b, mnt, make([]byte, 1<<20)); float64(n) != fx.bytes {
		b.Fatalf("read %d bytes through the mount, want %d", n, int(fx.bytes))
	}
	fx.first = fx.bytes / 1e6 / time.Since(start).Seconds()
	return fx
}

// TestMain unmounts the benchmark fixtures.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, fx := range benchFixtures {
		if fx.fsys != nil {
			fx.fsys.Unmount()
		}
		if fx.loop != nil {
			fx.loop.Unmount()
		}
		os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}

// readTree reads every file under root (but the history) into buf, reused
// so that allocation does not blur the comparison, and returns the bytes
// read.
func readTree(b testing.TB, root string, buf []byte) int64 {
	var n int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == DefaultHistoryDir {
				return filepath.SkipDir
			}
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		for {
			k, err := f.Read(buf)
			n += int64(k)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// lsR runs ls -lR on dir and returns the number of lines it printed. (Not
// with cmd.Dir = dir: the child would chdir into a mount this process
// serves before exec, while sharing its memory (vfork), which can deadlock
// the Go runtime.)
func lsR(b testing.TB, dir string) int {
	out, err := exec.Command("ls", "-lR", "--time-style=+%s", dir).Output()
	if err != nil {
		b.Fatalf("ls -lR %s: %v", dir, err)
	}
	n := 0
	for _, c := range out {
		if c == '\n' {
			n++
		}
	}
	return n
}

func benchVsLoopback(b *testing.B, shape string) {
	fx := fixture(b, shape)
	buf := make([]byte, 1<<20)
	run := func(root string) time.Duration {
		forget(fx.fsys.root.EmbeddedInode())
		forget(fx.loopRoot.EmbeddedInode())
		if err := dropCaches(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if fx.unit == "entries/s" {
			lsR(b, root)
		} else if n := readTree(b, root, buf); float64(n) != fx.bytes {
			b.Fatalf("%s: read %d bytes, want %d", root, n, int(fx.bytes))
		}
		return time.Since(start)
	}
	var loopTimes, mountTimes []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate which side goes first.
		if i%2 == 0 {
			loopTimes = append(loopTimes, run(fx.loopMnt))
			mountTimes = append(mountTimes, run(fx.mnt))
		} else {
			mountTimes = append(mountTimes, run(fx.mnt))
			loopTimes = append(loopTimes, run(fx.loopMnt))
		}
	}
	loopTime, mountTime := median(loopTimes), median(mountTimes)
	work := fx.bytes
	if fx.unit == "MB/s" {
		work /= 1e6
	}
	b.ReportMetric(work/loopTime.Seconds(), "loopback-"+fx.unit)
	b.ReportMetric(work/mountTime.Seconds(), "mount-"+fx.unit)
	b.ReportMetric(loopTime.Seconds()/mountTime.Seconds(), "mount/loopback")
	if fx.first > 0 {
		b.ReportMetric(fx.first, "first-MB/s")
	}
	if fx.unit == "entries/s" {
		b.ReportMetric(fx.bytes, "lines")
	}
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
