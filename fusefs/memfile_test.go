package fusefs

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
)

// Where the kernel offers FUSE passthrough, large files are read by the
// kernel from memory files, without a READ request per read; a file kept
// open keeps its content after the cache dropped its memory file; and a
// dropped file reads again.
func TestMountPassthrough(t *testing.T) {
	h := newWriter(t)
	big1 := randomBytes(1, 2<<20+3)
	big2 := randomBytes(2, 3<<20)
	small := []byte("a small note\n")
	h.add(t1, map[string][]byte{"a/big1.bin": big1, "big2.bin": big2, "note.md": small})
	var logs syncBuffer
	// A cache of 4 MiB holds one of the two large files at a time.
	fsys, mnt := mount(t, source.FromStore(h.st), Options{
		CacheSize: 4 << 20, Debug: true,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if !fsys.passthrough.Load() {
		t.Skip("the kernel does not offer FUSE passthrough, or not running as root")
	}

	f1, err := os.Open(filepath.Join(mnt, "a/big1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	if got, err := io.ReadAll(f1); err != nil || !bytes.Equal(got, big1) {
		t.Fatalf("big1.bin: %d bytes, %v; want its %d bytes", len(got), err, len(big1))
	}
	// big2 takes the cache's room: big1's memory file is dropped while
	// f1 is still open on it.
	if got, err := os.ReadFile(filepath.Join(mnt, "big2.bin")); err != nil || !bytes.Equal(got, big2) {
		t.Fatalf("big2.bin: %d bytes, %v; want its %d bytes", len(got), err, len(big2))
	}
	if got, err := io.ReadAll(io.NewSectionReader(f1, 0, int64(len(big1)))); err != nil || !bytes.Equal(got, big1) {
		t.Fatalf("big1.bin, open while its memory file was dropped: %d bytes, %v", len(got), err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "a/big1.bin")); err != nil || !bytes.Equal(got, big1) {
		t.Fatalf("big1.bin again: %d bytes, %v", len(got), err)
	}
	if strings.Contains(logs.String(), ": READ n") {
		t.Errorf("large files were read through READ requests, not by the kernel:\n%s", grepLines(logs.String(), ": READ n"))
	}
	// Small files are read as before.
	if got, err := os.ReadFile(filepath.Join(mnt, "note.md")); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("note.md: %q, %v", got, err)
	}
	if !strings.Contains(logs.String(), ": READ n") {
		t.Error("the small file was not read through a READ request; is the log check above blind?")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
