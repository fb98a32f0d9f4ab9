package ingest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// BenchmarkCheckUnchanged1000 is a reconcile of a folder of 1,000
// unchanged documents against the in-process fake Relay Server: every
// document is fetched and compared, nothing is recorded. Target ≤ 10 s.
func BenchmarkCheckUnchanged1000(b *testing.B) {
	e := newEnv(b)
	for i := range 1000 {
		if _, err := e.folder.AddMarkdown(fmt.Sprintf("/notes/%03d/note-%d.md", i/50, i), fmt.Sprintf("# Note %d\n\n%s", i, longText(i))); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.syncer.SyncFolder(context.Background(), Request{Folder: e.id}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := e.syncer.SyncFolder(context.Background(), Request{Folder: e.id})
		if err != nil {
			b.Fatal(err)
		}
		if res.Snapshot != nil || res.Unchanged != 1000 {
			b.Fatalf("snapshot %v, unchanged %d", res.Snapshot, res.Unchanged)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/check")
}

func longText(i int) string {
	s := ""
	for j := range 20 {
		s += fmt.Sprintf("Line %d of note %d: some text that makes the note a realistic size.\n", j, i)
	}
	return s
}

// BenchmarkReconcile10k syncs a folder of 10,000 notes of 1–4 KB (plus
// canvases and attachments, see fill10k) from the in-process fake Relay
// Server into a store on disk, as `relay-git-sync sync` and serve's
// reconcile do:
//
//   - first: into an empty store (every document fetched, decoded and
//     stored, one snapshot);
//   - unchanged: every document fetched again and compared, nothing
//     recorded (`sync` of an unchanged folder);
//   - sweep: serve's reconcile without its pacing: slices of sliceDocs
//     documents (what the Scheduler's default rate gives) until every
//     document is checked.
//
// The heap metrics (measureHeap) count the fake server's documents in
// base-live-MB; the growth is the sync's. -memprofile shows what
// allocates; bench/reconcile measures the real binary's resident set.
func BenchmarkReconcile10k(b *testing.B) {
	const notes, canvases, files = 10000, 50, 200
	const sliceDocs = int(defaultRecRate * sliceTime / time.Second) // Scheduler.sliceDocs at the default rate
	srv := relaytest.NewServer(relaytest.Options{APIKey: "server-token"})
	b.Cleanup(srv.Close)
	client, err := relay.NewClient(relay.ClientOptions{BaseURL: srv.URL(), APIKey: "server-token", Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	folder := srv.NewFolder(srv.NewRelay())
	fid := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	fill10k(b, folder, notes, canvases, files)
	open := func() *store.Store {
		st, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	want := notes + canvases + files
	sync := func(b *testing.B, st *store.Store, req Request) *Result {
		req.Folder = fid
		res, err := New(Config{Store: st, Relay: client}).SyncFolder(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Failed) > 0 {
			b.Fatalf("%d documents failed, first %v", len(res.Failed), res.Failed[0])
		}
		return res
	}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			st := open()
			b.StartTimer()
			measureHeap(b, func() {
				if r := sync(b, st, Request{}); r.Snapshot == nil || len(r.Snapshot.Files) != want {
					b.Fatalf("snapshot %v", r.Snapshot)
				}
			})
			b.StopTimer()
			st.Close()
			b.StartTimer()
		}
	})
	st := open()
	defer st.Close()
	sync(b, st, Request{})
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			measureHeap(b, func() {
				if r := sync(b, st, Request{}); r.Snapshot != nil || r.Unchanged != notes+canvases {
					b.Fatalf("snapshot %v, unchanged %d", r.Snapshot, r.Unchanged)
				}
			})
		}
	})
	b.Run("sweep", func(b *testing.B) {
		for b.Loop() {
			done, slices := map[string]bool{}, 0
			measureHeap(b, func() {
				for left := -1; left != 0; {
					slices++
					r := sync(b, st, Request{Sweep: &Sweep{Done: maps.Clone(done), Max: sliceDocs}})
					if r.Snapshot != nil {
						b.Fatalf("slice %d recorded snapshot %d", slices, r.Snapshot.Seq)
					}
					for _, id := range r.Checked {
						done[id] = true
					}
					left = r.Unchecked
				}
			})
			if len(done) != notes+canvases {
				b.Fatalf("the sweep checked %d documents in %d slices", len(done), slices)
			}
			b.ReportMetric(float64(slices), "slices")
		}
	})
}

// measureHeap runs fn and reports the heap it needed: base-live-MB, the
// live heap before; live-growth-MB, the largest live heap during fn (as
// of each GC) above it; heap-growth-MB, the largest heap (garbage not yet
// collected included) above it. With $INGEST_PEAK_HEAP_PROFILE=FILE, the
// heap profile at the largest live heap is written to FILE.<benchmark>.
func measureHeap(b *testing.B, fn func()) {
	runtime.GC()
	base := liveHeap()
	var prof string
	if p := os.Getenv("INGEST_PEAK_HEAP_PROFILE"); p != "" {
		prof = p + "." + b.Name()[strings.LastIndexByte(b.Name(), '/')+1:]
	}
	peak := startPeakHeap(prof)
	fn()
	heap, live := peak()
	b.ReportMetric(float64(base)/1e6, "base-live-MB")
	b.ReportMetric((float64(live)-float64(base))/1e6, "live-growth-MB")
	b.ReportMetric((float64(heap)-float64(base))/1e6, "heap-growth-MB")
}

// fill10k adds notes markdown notes of 1–4 KB in folders of 100, each
// typed in two goes (so its Yjs state has several items), canvases of
// 10–40 text nodes, and files attachments of 4–200 KB of random bytes.
func fill10k(b *testing.B, f *relaytest.Folder, notes, canvases, files int) {
	rng := rand.New(rand.NewPCG(16, 10000))
	for i := range notes {
		path := fmt.Sprintf("/notes/%03d/note-%05d.md", i/100, i)
		var t strings.Builder
		fmt.Fprintf(&t, "# Note %d\n\n", i)
		for n := 1000 + rng.IntN(3000); t.Len() < n; {
			fmt.Fprintf(&t, "Paragraph %d of note %d, with a [[note-%05d]] link and some text of a realistic length.\n\n", t.Len(), i, rng.IntN(notes))
		}
		text := t.String()
		q := len(text) / 4
		if _, err := f.AddMarkdown(path, text[:q]+text[3*q:]); err != nil {
			b.Fatal(err)
		}
		if err := f.EditMarkdown(path, text); err != nil {
			b.Fatal(err)
		}
	}
	for i := range canvases {
		var nodes, edges []map[string]any
		texts := map[string]string{}
		for n := range 10 + rng.IntN(30) {
			id := fmt.Sprintf("node%04d", n)
			nodes = append(nodes, map[string]any{"id": id, "type": "text", "x": float64(n * 300), "y": 0.0, "width": 250.0, "height": 120.0})
			texts[id] = strings.Repeat(fmt.Sprintf("card %d text ", n), 5+rng.IntN(20))
			if n > 0 {
				edges = append(edges, map[string]any{"id": fmt.Sprintf("edge%04d", n), "fromNode": fmt.Sprintf("node%04d", n-1), "toNode": id})
			}
		}
		if _, err := f.AddCanvas(fmt.Sprintf("/canvases/board-%03d.canvas", i), nodes, edges, texts); err != nil {
			b.Fatal(err)
		}
	}
	for i := range files {
		data := make([]byte, 4000+rng.IntN(196000))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if _, err := f.AddFile(fmt.Sprintf("/attachments/image-%04d.png", i), "image", "image/png", data); err != nil {
			b.Fatal(err)
		}
	}
}

// startPeakHeap samples the heap until the returned function is called,
// which returns the largest heap seen (live objects and garbage not yet
// swept: what the resident set follows) and the largest live heap (as of
// each GC). With prof set, a heap profile is written there (the
// allocations live at that GC) each time the live heap peaks.
func startPeakHeap(prof string) func() (heap, live uint64) {
	stop := make(chan struct{})
	done := make(chan [2]uint64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		var peak [2]uint64
		base := s[1].Value.Uint64()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak[0] = max(peak[0], s[0].Value.Uint64())
			if l := s[1].Value.Uint64(); l > peak[1] {
				peak[1] = l
				if prof != "" && l > base+base/20 {
					base = l
					if f, err := os.Create(prof); err == nil {
						pprof.Lookup("heap").WriteTo(f, 0)
						f.Close()
					}
				}
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) { close(stop); p := <-done; return p[0], p[1] }
}

// liveHeap is the live heap as of the last GC.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
