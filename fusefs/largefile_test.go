package fusefs

import (
	"bytes"
	"log/slog"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/relay-git-sync/relay-git-sync/internal/heaptest"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// A large file's memory file is filled from the store as a stream: its
// content is byte-identical and never also on the heap.
func TestLoadMemStreams(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const n = 24 << 20
	data := randomBytes(3, n)
	id, _, err := st.PutBlobFrom(bytes.NewReader(data), n, store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	fsys := newFS(source.FromStore(st), store.FolderID{}, Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(fsys.cancel)
	var m *memBlob
	grew := heaptest.PeakGrowth(func() { m, err = fsys.loadMem(&fileEnt{blob: id, size: n}) })
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	t.Logf("loading a %d MiB file into a memory file grew the heap by %.1f MiB", n>>20, float64(grew)/(1<<20))
	if grew > n/4 {
		t.Errorf("loading a %d MiB file grew the heap by %.1f MiB, want under %d", n>>20, float64(grew)/(1<<20), n/4>>20)
	}
	got := make([]byte, n+1)
	k, err := unix.Pread(m.fd, got, 0)
	if err != nil || k != n || !bytes.Equal(got[:k], data) {
		t.Fatalf("the memory file holds %d bytes (%v), not the file", k, err)
	}
	if _, err := fsys.loadMem(&fileEnt{blob: id, size: n - 1}); err == nil {
		t.Error("a size other than the snapshot's was accepted")
	}
}
