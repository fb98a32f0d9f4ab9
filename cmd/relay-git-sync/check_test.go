package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

const (
	checkFolderA = "6ba7b810-9dad-11d1-80b4-00c04fd430c8/0f0e0d0c-0b0a-4908-8706-050403020100"
	checkFolderB = "6ba7b810-9dad-11d1-80b4-00c04fd430c8/1f1e1d1c-1b1a-4918-8716-151413121110"
	checkBulk    = 3000 // files in snapshot 2 of folder A: its record goes to Badger's value log
)

// makeCheckDataDir makes a data dir whose store has folder A with three
// snapshots (the second adds checkBulk files, the third removes them and is
// a checkpoint) and then folder B with one snapshot of a big incompressible
// file. The two big values, snapshot 2 of A and B's blob, are in Badger's
// value log, in that order. It returns B's blob id.
func makeCheckDataDir(t *testing.T) (dataDir string, big store.BlobID) {
	t.Helper()
	dataDir = t.TempDir()
	st, err := store.Open(filepath.Join(dataDir, storeDirName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	at := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	put := func(data []byte, base store.BlobID) store.BlobID {
		id, err := st.PutBlob(data, base)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	add := func(folder string, files []store.File, seq int) {
		f, _ := store.ParseFolderID(folder)
		if _, err := st.AddSnapshot(&store.Snapshot{Folder: f, Time: at.Add(time.Duration(seq) * time.Minute), Files: files}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	note := []byte(strings.Repeat("a line of the note that is edited\n", 40))
	aFile := func(data []byte, base store.BlobID) store.File {
		return store.File{Path: "a.md", Blob: put(data, base), Size: int64(len(data)), DocID: "doc-a", Kind: "markdown"}
	}
	a1 := aFile(note, store.BlobID{})
	add(checkFolderA, []store.File{a1}, 1)
	note = append(note, "edit 2\n"...)
	a2 := aFile(note, a1.Blob)
	files := []store.File{a2}
	for i := range checkBulk {
		data := fmt.Appendf(nil, "bulk %d %x\n", i, r.Uint64())
		files = append(files, store.File{Path: fmt.Sprintf("bulk/n%04d.md", i), Blob: put(data, store.BlobID{}), Size: int64(len(data)),
			DocID: fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), r.Uint64()&(1<<48-1)), Kind: "markdown"})
	}
	add(checkFolderA, files, 2)
	note = append(note, "edit 3\n"...)
	add(checkFolderA, []store.File{aFile(note, a2.Blob)}, 3)
	data := make([]byte, 200<<10)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	big = put(data, store.BlobID{})
	add(checkFolderB, []store.File{{Path: "big.bin", Blob: big, Size: int64(len(data)), DocID: "doc-big", Kind: "file"}}, 1)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dataDir, big
}

// flipAfter flips a byte 100 bytes after key in the store's value log
// file, inside that key's value, as a failing disk would.
func flipAfter(t *testing.T, dataDir string, key []byte) {
	t.Helper()
	vlogs, _ := filepath.Glob(filepath.Join(dataDir, storeDirName, "*.vlog"))
	for _, p := range vlogs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, key); i >= 0 {
			b[i+len(key)+100] ^= 0x10
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("key %x is in none of the value log files %v", key, vlogs)
}

// snapshotKey is the store's key of snapshot seq of folder (keys.go).
func snapshotKey(t *testing.T, folder string, seq uint64) []byte {
	t.Helper()
	k := []byte{'s'}
	for _, id := range strings.Split(folder, "/") {
		b, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
		if err != nil {
			t.Fatal(err)
		}
		k = append(k, b...)
	}
	return binary.BigEndian.AppendUint64(k, seq)
}

// runCheckCmd runs check and returns its output, the exit status main
// gives it and the error.
func runCheckCmd(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	_, stdout, _, err := execute(t, map[string]string{"RELAY_GIT_TOKEN": mountTestToken}, args...)
	return stdout, exitCode(nil, err, false, io.Discard), err
}

func TestCheckCommand(t *testing.T) {
	clean, _ := makeCheckDataDir(t)

	t.Run("clean", func(t *testing.T) {
		for _, extra := range [][]string{nil, {"--read-data"}} {
			out, code, err := runCheckCmd(t, append([]string{"--data-dir", clean, "check"}, extra...)...)
			if err != nil || code != 0 || !strings.HasSuffix(out, "\nno errors were found\n") {
				t.Errorf("check %v: exit %d, %v\n%s", extra, code, err, out)
			}
			if want := fmt.Sprintf("checked 2 folders, 4 snapshots, 1 checkpoint, %d blobs", checkBulk+4); !strings.Contains(out, want) {
				t.Errorf("check %v: no %q in\n%s", extra, want, out)
			}
		}
	})

	t.Run("clean through the server", func(t *testing.T) {
		st, err := store.Open(filepath.Join(clean, storeDirName), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		url := mountTestServer(t, st)
		out, code, err := runCheckCmd(t, "--data-dir", clean, "check", "--read-data", "--server", url)
		if err != nil || code != 0 || !strings.HasSuffix(out, "\nno errors were found\n") ||
			!strings.Contains(out, fmt.Sprintf("checked 2 folders, 4 snapshots, %d blobs read", checkBulk+4)) {
			t.Errorf("exit %d, %v\n%s", code, err, out)
		}
		// The data dir is held: the error names the holder and --server.
		_, code, err = runCheckCmd(t, "--data-dir", clean, "check")
		var inUse *storeInUseError
		if !errors.As(err, &inUse) || code != 1 || !strings.Contains(err.Error(), "--server URL") {
			t.Errorf("held data dir: exit %d, %v", code, err)
		}
	})

	t.Run("damaged blob", func(t *testing.T) {
		dir, big := makeCheckDataDir(t)
		flipAfter(t, dir, append([]byte{'b'}, big[:]...))
		want := fmt.Sprintf("folder %s, snapshot 1, file \"big.bin\", blob %s: the file's content is damaged", checkFolderB, big)
		out, code, err := runCheckCmd(t, "--data-dir", dir, "check")
		if !errors.Is(err, errDamaged) || code != 1 || !strings.Contains(out, want) || !strings.HasSuffix(out, "\n2 problems found\n") {
			t.Errorf("exit %d, %v\nwant %s in\n%s", code, err, want, out)
		}

		st, err := store.Open(filepath.Join(dir, storeDirName), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		url := mountTestServer(t, st)
		// Through the server only reading the data tells.
		out, code, err = runCheckCmd(t, "check", "--server", url)
		if err != nil || code != 0 || !strings.Contains(out, "blobs not read (--read-data") {
			t.Errorf("without --read-data: exit %d, %v\n%s", code, err, out)
		}
		want = fmt.Sprintf("folder %s, snapshot 1, file \"big.bin\", blob %s: the file's content cannot be fetched", checkFolderB, big)
		out, code, err = runCheckCmd(t, "check", "--server", url, "--read-data")
		if !errors.Is(err, errDamaged) || code != 1 || !strings.Contains(out, want) || !strings.HasSuffix(out, "\n1 problem found\n") {
			t.Errorf("--read-data: exit %d, %v\nwant %s in\n%s", code, err, want, out)
		}
	})

	t.Run("damaged snapshot", func(t *testing.T) {
		dir, _ := makeCheckDataDir(t)
		flipAfter(t, dir, snapshotKey(t, checkFolderA, 2))
		want := fmt.Sprintf("folder %s, snapshot 2: snapshot record damaged", checkFolderA)
		out, code, err := runCheckCmd(t, "--data-dir", dir, "check")
		if !errors.Is(err, errDamaged) || code != 1 || !strings.Contains(out, want) {
			t.Errorf("exit %d, %v\nwant %s in\n%s", code, err, want, out)
		}

		st, err := store.Open(filepath.Join(dir, storeDirName), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		url := mountTestServer(t, st)
		want = fmt.Sprintf("folder %s, snapshot 2: snapshot 2 cannot be read through the server", checkFolderA)
		out, code, err = runCheckCmd(t, "check", "--server", url)
		if !errors.Is(err, errDamaged) || code != 1 || !strings.Contains(out, want) || !strings.HasSuffix(out, "\n1 problem found\n") {
			t.Errorf("through the server: exit %d, %v\nwant %s in\n%s", code, err, want, out)
		}
	})
}
