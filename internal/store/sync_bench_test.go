package store

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAddSnapshotSynced measures durable (SyncWrites) snapshots of
// one small change each, from one writer and from several writers on
// different folders. With several writers Badger commits the transactions
// queued meanwhile as one batch with one fsync, so throughput grows with
// the number of writers instead of staying at one fsync per snapshot.
//
//	go test -tags nomsgpack -run '^$' -bench AddSnapshotSynced ./internal/store
func BenchmarkAddSnapshotSynced(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{SyncWrites: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var blobs []BlobID
			for i := 0; i < 64; i++ {
				data := fmt.Appendf(nil, "version %d", i)
				id, err := s.PutBlob(data, BlobID{})
				if err != nil {
					b.Fatal(err)
				}
				blobs = append(blobs, id)
			}
			var next atomic.Uint64
			b.SetParallelism((writers + 1) / 2) // GOMAXPROCS is 2 here
			if writers == 1 {
				b.SetParallelism(1)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(next.Add(1), 0))
				f := testFolder(r)
				for i := 0; pb.Next(); i++ {
					id := blobs[i%len(blobs)]
					size := int64(len(fmt.Sprintf("version %d", i%len(blobs))))
					files := []File{{Path: "note.md", Blob: id, Size: size, DocID: "d", Kind: "markdown"}}
					if _, err := s.AddSnapshot(&Snapshot{Folder: f, Time: time.Now(), Files: files}, map[string]DocState{"d": {Blob: id}}, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "snapshots/s")
		})
	}
}
