package store

import (
	"bytes"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/heaptest"
)

// allocated returns the bytes the process allocated while fn ran.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func randomBlob(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return data
}

// A blob too large for the decoded-blob cache is decoded once per read and
// handed over as is: reading a large attachment costs one copy of it, not
// two (the read API, the mirror and the mount all read through Blob).
func TestLargeBlobReadCostsOneCopy(t *testing.T) {
	s := openDisk(t, t.TempDir(), Options{})
	defer s.Close()
	const n = 16 << 20 // over an eighth of the cache: never cached
	data := randomBlob(n)
	id, err := s.PutBlob(data, BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	alloc := allocated(func() {
		if got, err = s.Blob(id); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(got, data) {
		t.Fatal("Blob returned other bytes")
	}
	if alloc > n*3/2 {
		t.Errorf("Blob of a %d MiB blob allocated %.1f MiB, want one copy (under %d MiB)", n>>20, float64(alloc)/(1<<20), n*3/2>>20)
	}
	// The result is the caller's: changing it changes no later read.
	got[0] ^= 0xff
	again, err := s.Blob(id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatal("a second Blob saw the first caller's change")
	}
}

// BenchmarkLargeBlob reports what storing and reading one large
// incompressible attachment allocates (alloc-MB/op) and how far it grows
// the heap (peak-heap-MB/op, see heaptest.PeakGrowth), through the []byte
// methods (PutBlob, Blob) and the streaming ones (PutBlobFrom, OpenBlob):
// the store's share of serve's peak memory for a large attachment
// (bench/README.md, "Memory").
func BenchmarkLargeBlob(b *testing.B) {
	const n = 200_000_000
	data := randomBlob(n)
	for _, op := range []string{"PutBlob", "Blob", "PutBlobFrom", "OpenBlob"} {
		b.Run(op, func(b *testing.B) {
			var total uint64
			var peak int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := openDisk(b, b.TempDir(), Options{})
				var id BlobID
				if op == "Blob" || op == "OpenBlob" {
					var err error
					if id, err = s.PutBlob(data, BlobID{}); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				var err error
				peak = max(peak, heaptest.PeakGrowth(func() {
					total += allocated(func() {
						switch op {
						case "PutBlob":
							_, err = s.PutBlob(data, BlobID{})
						case "Blob":
							_, err = s.Blob(id)
						case "PutBlobFrom":
							_, _, err = s.PutBlobFrom(hideLen{bytes.NewReader(data)}, -1, BlobID{})
						case "OpenBlob":
							var rc io.ReadCloser
							if rc, _, err = s.OpenBlob(id); err == nil {
								_, err = io.Copy(io.Discard, rc)
								rc.Close()
							}
						}
					})
				}))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(total)/float64(b.N)/1e6, "alloc-MB/op")
			b.ReportMetric(float64(peak)/1e6, "peak-heap-MB/op")
		})
	}
}

// Storing a large blob that does not compress (an image, an archive) does
// not compress it whole to find out: a sample decides. One that does
// compress still is.
func TestLargeIncompressibleBlobIsNotCompressedWhole(t *testing.T) {
	s := openDisk(t, t.TempDir(), Options{})
	defer s.Close()
	const n = 16 << 20
	data := randomBlob(n)
	var id BlobID
	var err error
	alloc := allocated(func() {
		if id, err = s.PutBlob(data, BlobID{}); err != nil {
			t.Fatal(err)
		}
	})
	if alloc > 3*n {
		t.Errorf("PutBlob of %d MiB of random bytes allocated %.1f MiB, want under %d MiB", n>>20, float64(alloc)/(1<<20), 3*n>>20)
	}
	if r, err := s.blobHeader(id); err != nil || r.format != blobRaw {
		t.Errorf("random bytes stored as format %d (%v), want raw", r.format, err)
	}
	if got, err := s.Blob(id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Blob: %d bytes, %v", len(got), err)
	}

	text := textOf(rand.New(rand.NewPCG(5, 6)), n)
	tid, err := s.PutBlob(text, BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.blobHeader(tid); err != nil || r.format != blobZstd {
		t.Errorf("%d MiB of text stored as format %d (%v), want zstd", n>>20, r.format, err)
	}
	if got, err := s.Blob(tid); err != nil || !bytes.Equal(got, text) {
		t.Fatalf("Blob of the text: %d bytes, %v", len(got), err)
	}
}
