package fusefs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// BenchmarkMountRead compares reading through the mount with reading the
// same bytes from the local disk (a temporary directory, in the page cache
// after being written), in the same run:
//
//   - file: one 64 MiB file, read sequentially in 1 MiB reads;
//   - tree: a 1,000-file snapshot (notes of 1–16 KiB in 20 directories, 8 MiB),
//     walked and every file read, as grep -r would.
//
// Both sides are read the same way, into one reused buffer (os.ReadFile's
// fresh 64 MiB allocation per read would cost as much as the read itself
// and hide the difference).
//
// "warm" reads again what the kernel has cached (the steady state of a
// mount being used); "cold" first makes the kernel forget the mount's pages,
// dentries and attributes (through the same notifications live updates use),
// so every byte and every lookup crosses FUSE and is served from the mount's
// own content cache. The disk side is always the page cache, so "cold" is
// the strict comparison. Each line reports disk-MB/s, mount-MB/s and
// mount/disk (the target is ≥ 0.5).
//
// The content comes from a real store on disk; the first read of the big
// file through a fresh mount (store decode, hash check and FUSE) is reported
// once as first-MB/s.
func BenchmarkMountRead(b *testing.B) {
	testreq.FUSE(b)
	for _, shape := range []string{"file=64MiB", "tree=1000"} {
		for _, cache := range []string{"warm", "cold"} {
			b.Run(shape+"/cache="+cache, func(b *testing.B) {
				benchRead(b, shape, cache == "cold")
			})
		}
	}
}

type benchFixture struct {
	fsys      *FS
	mnt, disk string
	bytes     int64
	first     time.Duration
}

var benchFixtures = map[string]*benchFixture{}

// fixture builds (once per shape and process) the store, the mount and the
// same tree on disk.
func fixture(b *testing.B, shape string) *benchFixture {
	if fx := benchFixtures[shape]; fx != nil {
		return fx
	}
	dir, err := os.MkdirTemp("", "fusefs-bench-")
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	files := map[string][]byte{}
	switch shape {
	case "file=64MiB":
		files["big.bin"] = randomBytes(7, 64<<20)
	case "tree=1000":
		r := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < 1000; i++ {
			files[fmt.Sprintf("dir%02d/note%04d.md", i%20, i)] = randomBytes(uint64(i), 1024+r.IntN(15*1024))
		}
	}
	h := &snapWriter{t: b, st: st}
	h.add(t1, files)
	disk := filepath.Join(dir, "disk")
	var total int64
	for p, data := range files {
		full := filepath.Join(disk, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	fsys, err := Mount(context.Background(), mnt, source.FromStore(st), testFolder, Options{PollInterval: -1, ReadAheadKB: 1024})
	if err != nil {
		b.Fatal(err)
	}
	fx := &benchFixture{fsys: fsys, mnt: mnt, disk: disk, bytes: total}
	start := time.Now()
	if n := readTree(b, mnt, make([]byte, 1<<20)); n != total {
		b.Fatalf("read %d bytes through the mount, want %d", n, total)
	}
	fx.first = time.Since(start)
	benchFixtures[shape] = fx
	return fx
}

// TestMain unmounts the benchmark fixtures.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, fx := range benchFixtures {
		fx.fsys.Unmount()
		os.RemoveAll(filepath.Dir(fx.mnt))
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

// dropKernelCache makes the kernel forget the live view's pages, attributes
// and dentries (the mount's own content cache stays warm).
func (f *FS) dropKernelCache() {
	var walk func(in *gofs.Inode)
	walk = func(in *gofs.Inode) {
		for name, ch := range in.Children() {
			if _, ok := ch.Operations().(*histRoot); ok {
				continue
			}
			walk(ch)
			ch.NotifyContent(0, 0)
			in.NotifyEntry(name)
		}
	}
	walk(f.root.EmbeddedInode())
}

func benchRead(b *testing.B, shape string, cold bool) {
	fx := fixture(b, shape)
	var diskTime, mountTime time.Duration
	buf := make([]byte, 1<<20)
	b.SetBytes(2 * fx.bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if cold {
			fx.fsys.dropKernelCache()
		}
		b.StartTimer()

		start := time.Now()
		if n := readTree(b, fx.mnt, buf); n != fx.bytes {
			b.Fatalf("mount: %d bytes", n)
		}
		mountTime += time.Since(start)

		start = time.Now()
		if n := readTree(b, fx.disk, buf); n != fx.bytes {
			b.Fatalf("disk: %d bytes", n)
		}
		diskTime += time.Since(start)
	}
	mb := float64(fx.bytes) * float64(b.N) / 1e6
	b.ReportMetric(mb/diskTime.Seconds(), "disk-MB/s")
	b.ReportMetric(mb/mountTime.Seconds(), "mount-MB/s")
	b.ReportMetric(diskTime.Seconds()/mountTime.Seconds(), "mount/disk")
	b.ReportMetric(float64(fx.bytes)/1e6/fx.first.Seconds(), "first-MB/s")
}
