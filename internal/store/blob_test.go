package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func openMem(t testing.TB) *Store {
	t.Helper()
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openDisk(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// textOf returns n bytes of deterministic prose-like text.
func textOf(r *rand.Rand, n int) []byte {
	words := strings.Fields("the of and a to in is you that it he was for on are as with his they I at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part")
	var b bytes.Buffer
	for b.Len() < n {
		if r.IntN(12) == 0 {
			b.WriteString(".\n")
		}
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// freshCache drops decoded blobs so reads go to the database.
func freshCache(s *Store) { s.cache = newBlobCache(blobCacheSize) }

func TestBlobRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := map[string][]byte{
		"nil":         nil,
		"empty":       {},
		"one byte":    {0},
		"short text":  []byte("hello\n"),
		"text":        textOf(r, 20000),
		"binary":      randBytes(r, 70000),
		"large text":  textOf(r, 5<<20),
		"large rand":  randBytes(r, 5<<20+17),
		"zeros":       make([]byte, 3<<20),
		"nul and hi":  {0, 0xff, 0, 0xfe, '\n'},
		"crlf and ü":  []byte("a\r\nü\r\n"),
		"just 31 rnd": randBytes(r, 31),
	}
	for _, mode := range []string{"memory", "disk"} {
		t.Run(mode, func(t *testing.T) {
			var s *Store
			dir := t.TempDir()
			if mode == "memory" {
				s = openMem(t)
			} else {
				s = openDisk(t, dir, Options{})
			}
			ids := map[string]BlobID{}
			for name, data := range cases {
				id, err := s.PutBlob(data, BlobID{})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if id != BlobIDOf(data) {
					t.Fatalf("%s: id %s, want %s", name, id, BlobIDOf(data))
				}
				ids[name] = id
			}
			check := func() {
				for name, data := range cases {
					id := ids[name]
					got, err := s.Blob(id)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("%s: data differs (%d vs %d bytes)", name, len(got), len(data))
					}
					if has, err := s.HasBlob(id); !has || err != nil {
						t.Fatalf("%s: HasBlob = %v, %v", name, has, err)
					}
					if n, err := s.BlobSize(id); n != int64(len(data)) || err != nil {
						t.Fatalf("%s: BlobSize = %d, %v", name, n, err)
					}
				}
			}
			check()
			freshCache(s)
			check()
			if mode == "disk" {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = openDisk(t, dir, Options{})
				check()
				s.Close()
			}
		})
	}
}

func TestBlobNotFound(t *testing.T) {
	s := openMem(t)
	id := BlobIDOf([]byte("nope"))
	if _, err := s.Blob(id); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), id.String()) {
		t.Fatalf("Blob: %v", err)
	}
	if has, err := s.HasBlob(id); has || err != nil {
		t.Fatalf("HasBlob: %v %v", has, err)
	}
	if _, err := s.BlobSize(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("BlobSize: %v", err)
	}
}

// blobVersion returns the Badger version of blob id's record.
func blobVersion(t *testing.T, s *Store, id BlobID) uint64 {
	var v uint64
	if err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(blobKey(id))
		if err == nil {
			v = item.Version()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPutBlobIdempotent(t *testing.T) {
	s := openMem(t)
	r := rand.New(rand.NewPCG(3, 4))
	a := textOf(r, 5000)
	id, err := s.PutBlob(a, BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	v := blobVersion(t, s, id)
	b := append(bytes.Clone(a), "more"...)
	idb, err := s.PutBlob(b, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []BlobID{{}, id, idb, BlobIDOf([]byte("absent"))} {
		freshCache(s) // the lookup must not depend on the cache
		again, err := s.PutBlob(a, base)
		if err != nil || again != id {
			t.Fatalf("second PutBlob: %s %v", again, err)
		}
	}
	if blobVersion(t, s, id) != v {
		t.Fatal("existing blob was rewritten")
	}
	// A base equal to the data itself, and a missing base, are fine.
	c := []byte("standalone content that is long enough to compress, compress, compress")
	if _, err := s.PutBlob(c, BlobIDOf(c)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Blob(BlobIDOf(c)); !bytes.Equal(got, c) {
		t.Fatal("self-based blob")
	}
	// The caller may reuse its buffer after PutBlob.
	buf := []byte("buffer reused by the caller after PutBlob returns........")
	bid, _ := s.PutBlob(buf, BlobID{})
	want := bytes.Clone(buf)
	for i := range buf {
		buf[i] = 'x'
	}
	if got, _ := s.Blob(bid); !bytes.Equal(got, want) {
		t.Fatal("cache aliases the caller's buffer")
	}
	// Blob returns a copy.
	got, _ := s.Blob(bid)
	got[0] = '!'
	if again, _ := s.Blob(bid); !bytes.Equal(again, want) {
		t.Fatal("Blob result aliases the cache")
	}
}

// edit applies a random local edit to doc.
func edit(r *rand.Rand, doc []byte) []byte {
	pos := 0
	if len(doc) > 0 {
		pos = r.IntN(len(doc) + 1)
	}
	del := 0
	if pos < len(doc) && r.IntN(3) == 0 {
		del = r.IntN(min(40, len(doc)-pos) + 1)
	}
	ins := textOf(r, r.IntN(60))
	out := append(bytes.Clone(doc[:pos]), ins...)
	return append(out, doc[pos+del:]...)
}

// chainStats walks the records of ids and returns the deepest chain and the
// number of delta records.
func chainStats(t *testing.T, s *Store, ids []BlobID) (maxDepth, deltas int) {
	for _, id := range ids {
		r, err := s.blobHeader(id)
		if err != nil {
			t.Fatal(err)
		}
		// Walk the chain to check the recorded depth.
		n := 0
		for cur := r; cur.format == blobDelta; n++ {
			if cur, err = s.blobHeader(cur.base); err != nil {
				t.Fatal(err)
			}
		}
		if uint64(n) != r.depth {
			t.Fatalf("%s: recorded depth %d, chain has %d", id, r.depth, n)
		}
		maxDepth = max(maxDepth, n)
		if r.format == blobDelta {
			deltas++
		}
	}
	return maxDepth, deltas
}

func TestDeltaChains(t *testing.T) {
	for _, tc := range []struct{ maxDepth, versions int }{{maxDeltaDepth, 600}, {3, 200}, {1, 80}} {
		maxDepth := tc.maxDepth
		t.Run(fmt.Sprint("maxDepth=", maxDepth), func(t *testing.T) {
			s := openMem(t)
			s.maxDepth = maxDepth
			r := rand.New(rand.NewPCG(5, uint64(maxDepth)))
			doc := textOf(r, 20000)
			var versions [][]byte
			var ids []BlobID
			prev := BlobID{}
			for i := 0; i < tc.versions; i++ {
				id, err := s.PutBlob(doc, prev)
				if err != nil {
					t.Fatal(err)
				}
				versions, ids = append(versions, doc), append(ids, id)
				prev = id
				doc = edit(r, doc)
			}
			depth, deltas := chainStats(t, s, ids)
			t.Logf("%d versions: %d deltas, deepest chain %d", len(ids), deltas, depth)
			if depth > maxDepth {
				t.Fatalf("chain %d deep, limit %d", depth, maxDepth)
			}
			if maxDepth == maxDeltaDepth && (depth > 11 || deltas < len(ids)-2) {
				t.Fatalf("skip deltas: depth %d, %d deltas of %d", depth, deltas, len(ids))
			}
			freshCache(s)
			for i := len(ids) - 1; i >= 0; i-- { // newest first: no help from the cache order
				got, err := s.Blob(ids[i])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, versions[i]) {
					t.Fatalf("version %d differs", i)
				}
			}
		})
	}
}

func TestDeltaSizes(t *testing.T) {
	// A small edit to a big document costs bytes, not kilobytes.
	s := openMem(t)
	r := rand.New(rand.NewPCG(7, 8))
	a := textOf(r, 50000)
	ida, _ := s.PutBlob(a, BlobID{})
	b := append(append(bytes.Clone(a[:25000]), "INSERTED TEXT "...), a[25000:]...)
	idb, err := s.PutBlob(b, ida)
	if err != nil {
		t.Fatal(err)
	}
	var size int
	s.db.View(func(txn *badger.Txn) error {
		v, err := getValue(txn, blobKey(idb))
		size = len(v)
		return err
	})
	if size > 80 {
		t.Fatalf("delta record is %d bytes", size)
	}
	// An unrelated base still round-trips (stored whole when that is smaller).
	c := randBytes(r, 40000)
	idc, err := s.PutBlob(c, idb)
	if err != nil {
		t.Fatal(err)
	}
	freshCache(s)
	for id, want := range map[BlobID][]byte{ida: a, idb: b, idc: c} {
		if got, err := s.Blob(id); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v", id, err)
		}
	}
}

func TestBlobCorruptionDetected(t *testing.T) {
	s := openMem(t)
	data := []byte("some content that will be tampered with in the database")
	id, _ := s.PutBlob(data, BlobID{})
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(blobKey(id), append([]byte{blobRaw, byte(len(data))}, bytes.ToUpper(data)...))
	}); err != nil {
		t.Fatal(err)
	}
	freshCache(s)
	if _, err := s.Blob(id); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("tampered blob: %v", err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(blobKey(id), []byte{99})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Blob(id); err == nil || !strings.Contains(err.Error(), "unsupported blob record format 99") {
		t.Fatalf("unknown format: %v", err)
	}
}

func TestBlobCacheBound(t *testing.T) {
	c := newBlobCache(1000)
	for i := 0; i < 100; i++ {
		c.add(BlobID{byte(i)}, make([]byte, 60))
	}
	if c.size > 1000 || len(c.items) != c.ll.Len() {
		t.Fatalf("size %d, %d items", c.size, len(c.items))
	}
	if _, ok := c.get(BlobID{99}); !ok {
		t.Fatal("newest entry evicted")
	}
	if _, ok := c.get(BlobID{0}); ok {
		t.Fatal("oldest entry kept")
	}
	c.add(BlobID{200}, make([]byte, 500)) // over max/8: not cached
	if _, ok := c.get(BlobID{200}); ok {
		t.Fatal("oversized entry cached")
	}
}
