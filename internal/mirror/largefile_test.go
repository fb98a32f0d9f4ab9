package mirror

import (
	"math/rand/v2"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/heaptest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// A large attachment is copied from the store into the mirror and packed
// for the remote (go-git's encoder) as a stream: the push grows the heap
// by far less than the file, and the remote gets it byte-identical.
func TestLargeBlobPushStreams(t *testing.T) {
	testreq.Git(t)
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	tm := newManager(t, st, t.TempDir(), Config{Packer: PackerGoGit}, connectorTo(bare, "main", ""))
	sim.snap(map[string]string{"note.md": "a note\n"})
	tm.push(t) // warms up what the first push allocates once

	const n = 40 << 20
	r := rand.New(rand.NewPCG(3, 4))
	big := make([]byte, n)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	snap := sim.snap(map[string]string{"big.bin": string(big)})
	grew := heaptest.PeakGrowth(func() { tm.push(t) })
	t.Logf("pushing a %d MiB attachment grew the heap by %.1f MiB", n>>20, float64(grew)/(1<<20))
	if grew > n/4 {
		t.Errorf("pushing a %d MiB attachment grew the heap by %.1f MiB, want under %d", n>>20, float64(grew)/(1<<20), n/4>>20)
	}
	var id store.BlobID
	for _, f := range snap.Files {
		if f.Path == "big.bin" {
			id = f.Blob
		}
	}
	if got := gitIn(t, bare, "rev-parse", "main:big.bin"); got != id.String() {
		t.Fatalf("remote main:big.bin is %s, want %s", got, id)
	}
	if got := gitIn(t, bare, "cat-file", "-s", id.String()); got != "41943040" {
		t.Fatalf("remote blob size %s", got)
	}
	// The remote's own check of the content (it hashes what it reads).
	gitIn(t, bare, "fsck", "--no-dangling")
}
