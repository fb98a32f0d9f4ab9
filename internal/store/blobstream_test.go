package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dgraph-io/badger/v4"

	"github.com/relay-git-sync/relay-git-sync/internal/heaptest"
)

// hideLen hides a reader's type, so nothing can find its length.
type hideLen struct{ r io.Reader }

func (h hideLen) Read(p []byte) (int, error) { return h.r.Read(p) }

// readAllBlob reads blob id through OpenBlob.
func readAllBlob(t testing.TB, s *Store, id BlobID) ([]byte, int64) {
	t.Helper()
	rc, size, err := s.OpenBlob(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading blob %s: %v", id, err)
	}
	return got, size
}

// checkStore runs Check with ReadData and fails on any finding.
func checkStore(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.Check(context.Background(), CheckOptions{ReadData: true}, func(f Finding) {
		t.Errorf("check: %+v", f)
	}); err != nil {
		t.Fatal(err)
	}
}

// Large blobs stored from a reader, with or without their size, read back
// byte-identical through OpenBlob and through Blob (the record format is
// PutBlob's), pass Check, and survive a reopen; compressible ones are
// stored as zstd.
func TestPutBlobFromRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir, Options{})
	random := randomBlob(50 << 20)
	text := textOf(rand.New(rand.NewPCG(7, 8)), 12<<20)
	cases := []struct {
		name   string
		data   []byte
		size   int64
		format byte
	}{
		{"random, size unknown", random, -1, blobRaw},
		{"text, size known", text, int64(len(text)), blobZstd},
		{"random tail, size known", random[1<<20:], int64(len(random) - 1<<20), blobRaw},
	}
	ids := make([]BlobID, len(cases))
	for i, c := range cases {
		id, n, err := s.PutBlobFrom(hideLen{iotest.HalfReader(bytes.NewReader(c.data))}, c.size, BlobID{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if want := BlobIDOf(c.data); id != want || n != int64(len(c.data)) {
			t.Fatalf("%s: id %s size %d, want %s %d", c.name, id, n, want, len(c.data))
		}
		if r, err := s.blobHeader(id); err != nil || r.format != c.format {
			t.Errorf("%s: stored as format %d (%v), want %d", c.name, r.format, err, c.format)
		}
		ids[i] = id
	}
	for round := 0; round < 2; round++ {
		for i, c := range cases {
			got, size := readAllBlob(t, s, ids[i])
			if size != int64(len(c.data)) || !bytes.Equal(got, c.data) {
				t.Fatalf("%s: OpenBlob gave %d bytes (size %d), not the content", c.name, len(got), size)
			}
			whole, err := s.Blob(ids[i])
			if err != nil || !bytes.Equal(whole, c.data) {
				t.Fatalf("%s: Blob gave %d bytes, %v", c.name, len(whole), err)
			}
		}
		checkStore(t, s)
		s.Close()
		s = openDisk(t, dir, Options{})
	}
	s.Close()
}

// Records written by PutBlob (existing data dirs) stream through OpenBlob.
func TestOpenBlobReadsPutBlobRecords(t *testing.T) {
	s := openDisk(t, t.TempDir(), Options{})
	defer s.Close()
	for _, data := range [][]byte{randomBlob(9 << 20), textOf(rand.New(rand.NewPCG(3, 4)), 9<<20), []byte("small")} {
		id, err := s.PutBlob(data, BlobID{})
		if err != nil {
			t.Fatal(err)
		}
		s.cache = newBlobCache(blobCacheSize) // read from the database
		if got, size := readAllBlob(t, s, id); size != int64(len(data)) || !bytes.Equal(got, data) {
			t.Fatalf("OpenBlob of a %d-byte PutBlob record gave %d bytes (size %d)", len(data), len(got), size)
		}
	}
}

// In memory, values are split at the LSM threshold: the parts still line
// up.
func TestPutBlobFromInMemory(t *testing.T) {
	s := openMem(t)
	data := randomBlob(6 << 20)
	id, _, err := s.PutBlobFrom(bytes.NewReader(data), -1, BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := readAllBlob(t, s, id); !bytes.Equal(got, data) {
		t.Fatal("OpenBlob gave other bytes")
	}
	checkStore(t, s)
}

// Small content goes through PutBlob: deltas against base still happen.
func TestPutBlobFromSmallKeepsDeltas(t *testing.T) {
	s := openMem(t)
	old := textOf(rand.New(rand.NewPCG(1, 1)), 64<<10)
	base, err := s.PutBlob(old, BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	edited := append(bytes.Clone(old), "one more line\n"...)
	for _, size := range []int64{-1, int64(len(edited))} {
		id, n, err := s.PutBlobFrom(bytes.NewReader(edited), size, base)
		if err != nil || id != BlobIDOf(edited) || n != int64(len(edited)) {
			t.Fatalf("size %d: %s %d %v", size, id, n, err)
		}
		if r, err := s.blobHeader(id); err != nil || r.format != blobDelta {
			t.Errorf("size %d: stored as format %d (%v), want a delta", size, r.format, err)
		}
		if got, _ := readAllBlob(t, s, id); !bytes.Equal(got, edited) {
			t.Fatal("OpenBlob gave other bytes")
		}
	}
}

// A failing reader, or content of another length than announced, stores
// nothing.
func TestPutBlobFromErrors(t *testing.T) {
	s := openDisk(t, t.TempDir(), Options{})
	defer s.Close()
	data := randomBlob(6 << 20)
	boom := errors.New("connection reset")
	if _, _, err := s.PutBlobFrom(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)), -1, BlobID{}); !errors.Is(err, boom) {
		t.Errorf("failing reader: %v, want %v", err, boom)
	}
	for _, size := range []int64{int64(len(data)) + 1, int64(len(data)) - 1, 100} {
		if _, _, err := s.PutBlobFrom(bytes.NewReader(data), size, BlobID{}); err == nil {
			t.Errorf("%d bytes announced as %d: no error", len(data), size)
		}
	}
	for _, d := range [][]byte{data, data[:len(data)-1], data[:100]} {
		if has, err := s.HasBlob(BlobIDOf(d)); err != nil || has {
			t.Errorf("a failed PutBlobFrom stored blob %s (%v)", BlobIDOf(d), err)
		}
	}
	if n := countKeys(t, s, []byte{prefixPart}); n != 0 {
		t.Errorf("failed PutBlobFrom calls left %d parts", n)
	}
}

// OpenBlob verifies what it streams: a damaged part makes the read fail at
// the end rather than return other bytes as the blob.
func TestOpenBlobDetectsDamage(t *testing.T) {
	s := openDisk(t, t.TempDir(), Options{})
	defer s.Close()
	data := randomBlob(6 << 20)
	id, _, err := s.PutBlobFrom(bytes.NewReader(data), -1, BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixPart}})
		defer it.Close()
		it.Rewind()
		it.Next() // part 1: content only
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		v[100] ^= 1
		return txn.Set(it.Item().KeyCopy(nil), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.OpenBlob(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), id.String()) {
		t.Errorf("reading a damaged blob: %v, want an error naming it as damaged", err)
	}
}

// Streaming a blob in and out holds a few MiB, whatever its size (the
// []byte paths hold at least one whole copy).
func TestStreamingBlobMemory(t *testing.T) {
	s := openDisk(t, t.TempDir(), Options{})
	defer s.Close()
	const n = 48 << 20
	data := randomBlob(n)
	want := sha256.Sum256(data)
	var id BlobID
	var err error
	grew := heaptest.PeakGrowth(func() {
		id, _, err = s.PutBlobFrom(hideLen{bytes.NewReader(data)}, -1, BlobID{})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PutBlobFrom of %d MiB: heap grew by %.1f MiB", n>>20, float64(grew)/(1<<20))
	if grew > 20<<20 {
		t.Errorf("PutBlobFrom of %d MiB grew the heap by %.1f MiB, want under 20", n>>20, float64(grew)/(1<<20))
	}
	h := sha256.New()
	grew = heaptest.PeakGrowth(func() {
		rc, _, oerr := s.OpenBlob(id)
		if oerr != nil {
			err = oerr
			return
		}
		_, err = io.Copy(h, rc)
		rc.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != want {
		t.Fatal("OpenBlob gave other bytes")
	}
	t.Logf("OpenBlob of %d MiB: heap grew by %.1f MiB", n>>20, float64(grew)/(1<<20))
	if grew > 20<<20 {
		t.Errorf("reading %d MiB through OpenBlob grew the heap by %.1f MiB, want under 20", n>>20, float64(grew)/(1<<20))
	}
	// The []byte path, for scale (this is what the test guards against).
	grew = heaptest.PeakGrowth(func() { _, err = s.Blob(id) })
	t.Logf("Blob of the same blob: heap grew by %.1f MiB", float64(grew)/(1<<20))
}
