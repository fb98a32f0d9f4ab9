package export

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

type mapBlobs map[store.BlobID][]byte

func (m mapBlobs) Blob(_ context.Context, id store.BlobID) ([]byte, error) { return m[id], nil }

// A name over 255 bytes is exported under a shortened name; the rest as is.
func TestDirExportLongNames(t *testing.T) {
	long := strings.Repeat("L", 300) + ".md"
	cjk := strings.Repeat("界", 100) + ".md"
	blobs := mapBlobs{}
	var files []store.File
	for _, p := range []string{"a.md", long, cjk, "d/" + long} {
		c := []byte("content of " + p)
		blobs[store.BlobIDOf(c)] = c
		files = append(files, store.File{Path: p, Blob: store.BlobIDOf(c), Size: int64(len(c))})
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := Write(context.Background(), &store.Snapshot{Seq: 1, Files: files}, blobs, out, nil); err != nil {
		t.Fatal(err)
	}
	var n int
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Name()) > 255 {
			t.Errorf("name of %d bytes", len(d.Name()))
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(out, "a.md")); err != nil || n != len(files) {
		t.Fatalf("%d files, a.md: %v", n, err)
	}
}
