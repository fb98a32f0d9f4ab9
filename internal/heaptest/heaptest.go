// Package heaptest measures how much heap a piece of code holds at its
// peak, for tests that show a path streams instead of holding whole files.
package heaptest

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// PeakGrowth returns how far the heap grew above where it was when fn
// started, sampled every 200 µs while fn runs, with the GC made eager (10%)
// so that the peak follows what is live rather than garbage not yet
// collected.
func PeakGrowth(fn func()) int64 {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() int64 {
		metrics.Read(sample)
		return int64(sample[0].Value.Uint64())
	}
	start := read()
	var peak atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			peak.Store(max(peak.Load(), read()))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return max(peak.Load(), read()) - start
}
