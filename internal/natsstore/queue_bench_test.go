package natsstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
)

// BenchmarkQueueDrain queues benchEvents events, then times reading them
// all (PendingEvents, as a rescan does) and acknowledging them all
// (AckEvents), on one node and on a 3-node cluster with replicas 3. Run
// with -benchtime=Nx: each iteration queues the events anew.
func BenchmarkQueueDrain(b *testing.B) {
	const benchEvents = 2000
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			var url string
			if nodes == 1 {
				url = natstest.Start(b).URL()
			} else {
				url = natstest.StartCluster(b, nodes).URL()
			}
			_, js := dialJS(b, url)
			q := openQueue(b, js, nodes)
			var pendingTime, ackTime time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				benchEnqueue(b, q, benchEvents)
				b.StartTimer()
				start := time.Now()
				evs, err := q.PendingEvents()
				if err != nil {
					b.Fatal(err)
				}
				pendingTime += time.Since(start)
				if len(evs) != benchEvents {
					b.Fatalf("%d pending, want %d", len(evs), benchEvents)
				}
				keys := make([]uint64, len(evs))
				for i, ev := range evs {
					keys[i] = ev.Key
				}
				start = time.Now()
				if err := q.AckEvents(keys); err != nil {
					b.Fatal(err)
				}
				ackTime += time.Since(start)
			}
			b.StopTimer()
			if evs, err := q.PendingEvents(); err != nil || len(evs) != 0 {
				b.Fatalf("after acking all: %d pending, %v", len(evs), err)
			}
			b.ReportMetric(float64(pendingTime.Milliseconds())/float64(b.N), "pending-ms/op")
			b.ReportMetric(float64(ackTime.Milliseconds())/float64(b.N), "ack-ms/op")
		})
	}
}

// benchEnqueue queues n distinct events from 16 goroutines.
func benchEnqueue(b *testing.B, q *Queue, n int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if _, _, err := q.Enqueue(event("", fmt.Sprintf("d%d", i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}
