package mirror

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// A blob streamed into the mirror is a loose object that C git and go-git
// read back byte-identical; content that does not match its id, or that
// breaks off, leaves nothing behind.
func TestPutBlobFromStreams(t *testing.T) {
	gitBin := testreq.Git(t)
	dir := t.TempDir()
	r, err := openRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	rnd := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 9<<20+3)
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	h := plumbing.ComputeHash(plumbing.BlobObject, data)

	other := bytes.Clone(data)
	other[5] ^= 1
	if err := r.putBlobFrom(h, int64(len(other)), bytes.NewReader(other)); err == nil {
		t.Error("content of another hash was stored")
	}
	if err := r.putBlobFrom(h, int64(len(data)), io.MultiReader(bytes.NewReader(data[:1<<20]), iotest.ErrReader(io.ErrUnexpectedEOF))); err == nil {
		t.Error("a broken-off read was stored")
	}
	if r.has(h) {
		t.Fatal("a failed write left the object")
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "objects", "tmp_obj_*")); len(tmp) != 0 {
		t.Errorf("failed writes left %v", tmp)
	}

	if err := r.putBlobFrom(h, int64(len(data)), iotest.HalfReader(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if !r.has(h) {
		t.Fatal("go-git does not see the object")
	}
	out, err := exec.Command(gitBin, "--git-dir", dir, "cat-file", "blob", h.String()).Output()
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("git cat-file: %d bytes, %v", len(out), err)
	}
	obj, err := r.st.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := obj.Reader()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("go-git read %d bytes, %v", len(got), err)
	}
	// Written once: a second put is a no-op.
	fi, _ := os.Stat(filepath.Join(dir, "objects", h.String()[:2], h.String()[2:]))
	if err := r.putBlobFrom(h, int64(len(data)), iotest.ErrReader(io.ErrUnexpectedEOF)); err != nil {
		t.Errorf("second put of a present blob: %v", err)
	}
	if fi == nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("loose object %v, want mode 0444", fi)
	}
}
