package source_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/source/sourcetest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// dataDir makes a data dir whose store fill wrote.
func dataDir(t *testing.T, fill func(store.Backend)) string {
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
	sourcetest.Run(t, func(t *testing.T, fill func(store.Backend)) source.Source {
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
	dir := dataDir(t, func(store.Backend) {})
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

// TestReadDataDirAfterCrash: a data dir whose writer was killed (no Close)
// still reads: the read-only open recovers it first, as the writer's next
// start would, and loses nothing that was committed.
func TestReadDataDirAfterCrash(t *testing.T) {
	f := store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
	if dir := os.Getenv("SOURCE_CRASH_DIR"); dir != "" {
		st, err := store.Open(filepath.Join(dir, source.StoreDirName), store.Options{SyncWrites: true})
		if err != nil {
			panic(err)
		}
		id, err := st.PutBlob([]byte("hello\n"), store.BlobID{})
		if err == nil {
			_, err = st.AddSnapshot(&store.Snapshot{Folder: f, Time: time.Now(),
				Files: []store.File{{Path: "a.md", Blob: id, Size: 6, DocID: "d", Kind: "markdown"}}}, nil, nil)
		}
		if err != nil {
			panic(err)
		}
		os.Exit(0) // killed: the store is never closed
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestReadDataDirAfterCrash$")
	cmd.Env = append(os.Environ(), "SOURCE_CRASH_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the writer: %v\n%s", err, out)
	}
	if _, err := store.Open(filepath.Join(dir, source.StoreDirName), store.Options{ReadOnly: true}); !errors.Is(err, store.ErrNeedsRecovery) {
		t.Fatalf("a plain read-only open of the crashed store: %v, want ErrNeedsRecovery", err)
	}
	src, err := source.ReadDataDir(dir)
	if err != nil {
		t.Fatalf("ReadDataDir after a crash: %v", err)
	}
	defer src.Close()
	snap, err := src.Snapshot(context.Background(), f, 1)
	if err != nil || len(snap.Files) != 1 || snap.Files[0].Path != "a.md" {
		t.Fatalf("snapshot 1 after the crash: %+v %v", snap, err)
	}
}
