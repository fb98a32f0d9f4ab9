package store

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of size (e.g. "16m") on a new directory.
// Mounting needs root: skipped otherwise, except under CI, where it fails.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the full-disk test needs root to mount a tmpfs (CI runs as root)")
		}
		t.Skip("not root: cannot mount a tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// TestFullDiskRefusesWrites fills a 16 MiB tmpfs with 1 MiB blobs (random,
// so they go to Badger's value log uncompressed). Before the guard this
// died with SIGBUS in Badger's mmapped value log; now writes fail with
// ErrNoSpace (matching ENOSPC), and resume once the file system grows.
func TestFullDiskRefusesWrites(t *testing.T) {
	fs := mountTmpfs(t, "16m")
	dir := filepath.Join(fs, "db")
	s, err := Open(dir, Options{SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	blob := func() []byte {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	var stored []BlobID
	var refused error
	for i := 0; i < 40 && refused == nil; i++ {
		id, err := s.PutBlob(blob(), BlobID{})
		if err != nil {
			refused = err
			break
		}
		stored = append(stored, id)
	}
	if refused == nil {
		t.Fatal("40 MiB of blobs fit on a 16 MiB file system")
	}
	if !errors.Is(refused, ErrNoSpace) || !errors.Is(refused, syscall.ENOSPC) {
		t.Fatalf("refused write: %v, want ErrNoSpace", refused)
	}
	if _, _, err := s.DiskSpace(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("DiskSpace while full: %v", err)
	}
	if _, _, err := s.Enqueue(QueuedEvent{Relay: "r", Doc: "d"}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Enqueue while full: %v, want ErrNoSpace", err)
	}
	t.Logf("%d blobs stored, then: %v", len(stored), refused)

	if out, err := exec.Command("mount", "-o", "remount,size=64m", fs).CombinedOutput(); err != nil {
		t.Fatalf("growing the tmpfs: %v: %s", err, out)
	}
	if _, _, err := s.DiskSpace(); err != nil {
		t.Fatalf("DiskSpace after growing: %v", err)
	}
	if _, err := s.PutBlob(blob(), BlobID{}); err != nil {
		t.Fatalf("write after growing: %v", err)
	}
	for _, id := range stored {
		if _, err := s.Blob(id); err != nil {
			t.Fatalf("blob %s: %v", id, err)
		}
	}
}

// TestOpenOnFullDisk: opening a database on a file system without the
// reserve fails with one clear error instead of faulting in Badger.
func TestOpenOnFullDisk(t *testing.T) {
	fs := mountTmpfs(t, "4m")
	_, err := Open(filepath.Join(fs, "db"), Options{})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Open on a 4 MiB file system: %v, want ErrNoSpace", err)
	}
	t.Log(err)
}
