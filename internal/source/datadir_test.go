package source_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/source/sourcetest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// dataDir makes a data dir whose store fill wrote.
func dataDir(t *testing.T, fill func(*store.Store)) string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, source.StoreDirName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadDataDirSource(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, fill func(*store.Store)) source.Source {
		src, err := source.ReadDataDir(dataDir(t, fill))
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
}

// TestReadDataDirSharing: readers share a data dir, never with a writer,
// and cannot write through Store.
func TestReadDataDirSharing(t *testing.T) {
	dir := dataDir(t, func(*store.Store) {})
	a, err := source.ReadDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := source.ReadDataDir(dir)
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	if _, err := b.Folders(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := source.Store(b).PutBlob([]byte("x"), store.BlobID{}); err == nil {
		t.Error("PutBlob through a read-only data dir succeeded")
	}
	if _, err := source.OpenDataDir(dir); !errors.Is(err, source.ErrLocked) {
		t.Errorf("OpenDataDir beside readers: %v", err)
	}
	a.Close()
	b.Close()

	w, err := source.OpenDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := source.ReadDataDir(dir); !errors.Is(err, source.ErrLocked) || !strings.Contains(err.Error(), "read through that server instead") {
		t.Errorf("ReadDataDir of a held data dir: %v", err)
	}
}
