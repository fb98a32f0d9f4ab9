package export

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

func TestFormatOf(t *testing.T) {
	for p, want := range map[string]Format{
		"notes": Dir, "notes-january": Dir, "backup.2026-01-31": Dir, "a.tar/b": Dir, "v1.2": Dir,
		"n.tar": Tar, "n.TAR": Tar, "n.tar.gz": TarGz, "n.tgz": TarGz, "n.zip": Zip, "dir.d/n.Zip": Zip,
	} {
		if got, err := FormatOf(p); got != want || err != nil {
			t.Errorf("FormatOf(%q) = %v, %v; want %v", p, got, err, want)
		}
	}
	for p, ext := range map[string]string{
		"n.7z": ".7z", "n.tar.bz2": ".tar.bz2", "n.tar.xz": ".tar.xz", "n.tar.zst": ".tar.zst", "n.TAR.LZ4": ".TAR.LZ4",
		"n.gz": ".gz", "n.bz2": ".bz2", "n.rar": ".rar", "n.tbz2": ".tbz2", "n.txz": ".txz",
	} {
		_, err := FormatOf(p)
		if err == nil || !strings.Contains(err.Error(), "cannot write "+ext+" files") || !strings.Contains(err.Error(), ".tar.gz") {
			t.Errorf("FormatOf(%q): %v", p, err)
		}
	}
}

// noBlobs fails the test if Write reads anything.
type noBlobs struct{ t *testing.T }

func (b noBlobs) Blob(context.Context, store.BlobID) ([]byte, error) {
	b.t.Error("Write read a blob for an output it cannot write")
	return nil, os.ErrInvalid
}

// An output name Write cannot honour is refused before anything is read or
// written.
func TestWriteRefusesOtherArchives(t *testing.T) {
	dir := t.TempDir()
	snap := &store.Snapshot{Seq: 1, Files: []store.File{{Path: "a.md", Size: 1}}}
	for _, name := range []string{"notes.7z", "notes.tar.bz2"} {
		if err := Write(context.Background(), snap, noBlobs{t}, filepath.Join(dir, name), nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Write left %v", entries)
	}
}
