package remotehelper

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/heaptest"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// serve's kept pack streams a large attachment from the store into the
// pack (packWriter.writeFrom) instead of reading and compressing it whole:
// git reads it back byte-identical, the notes next to it are still
// deltas, and the build grows the heap by far less than the file.
func TestKeptPackStreamsLargeBlob(t *testing.T) {
	gitBin := testreq.Git(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const n = 24 << 20
	r := rand.New(rand.NewPCG(5, 6))
	big := make([]byte, n)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	bigID, _, err := st.PutBlobFrom(bytes.NewReader(big), n, store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	note := bytes.Repeat([]byte("a line of the note\n"), 400)
	var noteIDs []store.BlobID
	for i := 0; i < 3; i++ {
		note = append(note, "one more line\n"...)
		id, err := st.PutBlob(note, store.BlobID{})
		if err != nil {
			t.Fatal(err)
		}
		noteIDs = append(noteIDs, id)
		files := []store.File{
			{Path: "big.bin", Blob: bigID, Size: n, Kind: "file", DocID: "doc-big"},
			{Path: "note.md", Blob: id, Size: int64(len(note)), Kind: "markdown", DocID: "doc-note"},
		}
		changes := []store.Change{{Kind: store.ChangeModified, Path: "note.md", DocID: "doc-note"}}
		if i == 0 {
			changes = []store.Change{{Kind: store.ChangeAdded, Path: "big.bin", DocID: "doc-big"}, {Kind: store.ChangeAdded, Path: "note.md", DocID: "doc-note"}}
		}
		if _, err := st.AddSnapshot(&store.Snapshot{Folder: testFolder, Time: when.Add(time.Duration(i) * time.Minute), Changes: changes, Files: files}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}

	packs := NewPackCache(t.TempDir(), source.FromStore(st), nil)
	t.Cleanup(packs.Close)
	var pack, idx *os.File
	grew := heaptest.PeakGrowth(func() {
		_, _, pack, idx, err = packs.Open(context.Background(), testFolder)
	})
	if err != nil || pack == nil {
		t.Fatalf("kept pack: %v (pack %v)", err, pack)
	}
	defer pack.Close()
	defer idx.Close()
	t.Logf("building a pack with a %d MiB attachment grew the heap by %.1f MiB", n>>20, float64(grew)/(1<<20))
	if grew > n/2 {
		t.Errorf("building a pack with a %d MiB attachment grew the heap by %.1f MiB, want under %d", n>>20, float64(grew)/(1<<20), n/2>>20)
	}

	repo := filepath.Join(t.TempDir(), "r.git")
	git := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(gitBin, append([]string{"--git-dir", repo}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return out
	}
	git("init", "-q", "--bare")
	for _, f := range []*os.File{pack, idx} {
		data, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		ext := ".pack"
		if f == idx {
			ext = ".idx"
		}
		if err := os.WriteFile(filepath.Join(repo, "objects", "pack", "pack-test"+ext), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("verify-pack", filepath.Join(repo, "objects", "pack", "pack-test.idx"))
	if got := git("cat-file", "blob", bigID.String()); !bytes.Equal(got, big) {
		t.Fatalf("the pack's big.bin: %d bytes, not the attachment", len(got))
	}
	if got := git("cat-file", "blob", noteIDs[2].String()); !bytes.Equal(got, note) {
		t.Fatal("the pack's note.md is not the last version")
	}
	stats := string(git("verify-pack", "-v", filepath.Join(repo, "objects", "pack", "pack-test.idx")))
	if !bytes.Contains([]byte(stats), []byte("chain length = 1")) {
		t.Errorf("no deltas in the pack:\n%s", stats)
	}
}
