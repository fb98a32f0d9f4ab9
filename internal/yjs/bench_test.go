package yjs

import (
	"bufio"
	"encoding/json"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// The decode benchmarks compare this package with the real yjs on the same
// bytes in the same run. The machine they run on is often busy, so Go and
// yjs runs are interleaved in batches of about 50 ms (a node process from
// tools/yjsoracle/bench.mjs --serve runs the yjs batches), so that load
// shifts both alike. Metrics:
//
//	x-yjs        median Go time / median yjs time (Y.applyUpdate + reading the roots)
//	x-yjs-min    fastest Go run / fastest yjs run
//	x-yjs-cpu    Go CPU time per run / yjs CPU time per run, every thread
//	             counted (GC workers too): the steadiest on a busy machine,
//	             where wall time is mostly time spent waiting for a core
//	yjs-ms/op    median yjs time
//	go-peak-B    bytes the Go heap grows by per document while 5 are decoded
//	             and read, with the GC held off (every allocation counts)
//	yjs-peak-B   node's heapUsed growth over the same, no scavenge running
//	go-live-B    Go heap held per decoded document after a full GC
//	yjs-live-B   node's heapUsed held per document after a full GC

// yjsBench runs bench.mjs --serve: timing runs in one node with its
// default settings for the whole benchmark; each update's heap is measured
// once, in a fresh node (nothing left from other updates to be freed in its
// GCs) whose young generation is large enough (256 MB) that no scavenge
// runs while the documents are built, so that heapUsed growth is node's
// peak, comparable with go-peak-B.
type yjsBench struct {
	timing *yjsServer
	heaps  map[string]heapFigures
}

type heapFigures struct{ goPeak, goLive, jsPeak, jsLive float64 }

func startYjsBench(b *testing.B) *yjsBench {
	return &yjsBench{timing: startYjsServer(b), heaps: map[string]heapFigures{}}
}

type yjsServer struct {
	in  io.WriteCloser
	out *bufio.Reader
}

func startYjsServer(b *testing.B, nodeFlags ...string) *yjsServer {
	dir := oracleDir(b)
	cmd := exec.Command("node", append(append([]string{"--expose-gc"}, nodeFlags...), "bench.mjs", "--serve")...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting node bench.mjs --serve: %v", err)
	}
	b.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("node bench.mjs --serve: %v", err)
		}
	})
	return &yjsServer{in: in, out: bufio.NewReader(out)}
}

type benchRoot [2]string // name, kind as bench.mjs reads it: text, map, array

type yjsAnswer struct {
	Ns    []float64 `json:"ns"`
	CPUNs float64   `json:"cpu_ns"`
	Peak  float64   `json:"peak"`
	Live  float64   `json:"live"`
	Error string    `json:"error"`
}

func (y *yjsServer) ask(b *testing.B, req map[string]any) yjsAnswer {
	line, _ := json.Marshal(req)
	if _, err := y.in.Write(append(line, '\n')); err != nil {
		b.Fatalf("writing to node bench.mjs --serve: %v", err)
	}
	resp, err := y.out.ReadBytes('\n')
	if err != nil {
		b.Fatalf("reading from node bench.mjs --serve: %v", err)
	}
	var a yjsAnswer
	if err := json.Unmarshal(resp, &a); err != nil {
		b.Fatalf("node bench.mjs --serve answered %q: %v", resp, err)
	}
	if a.Error != "" {
		b.Fatalf("node bench.mjs --serve: %s", a.Error)
	}
	return a
}

// benchDecode benchmarks decoding the update in file and reading roots,
// against yjs doing the same (see the metrics above).
func benchDecode(b *testing.B, y *yjsBench, file string, roots []benchRoot) {
	update, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	run := func() *Doc {
		d := NewDoc()
		if err := d.ApplyUpdate(update); err != nil {
			b.Fatal(err)
		}
		for _, r := range roots {
			switch r[1] {
			case "text":
				_ = d.GetText(r[0]).String()
			case "map":
				_ = d.GetMap(r[0]).ToJSON()
			case "array":
				_ = d.GetArray(r[0]).ToJSON()
			default:
				b.Fatalf("root %q: unknown kind %q", r[0], r[1])
			}
		}
		return d
	}
	goNs := make([]float64, 0, b.N)
	var jsNs []float64
	var goCPU, jsCPU float64 // CPU time of all Go runs, of all yjs runs
	yjsBatch := func(n int) {
		a := y.timing.ask(b, map[string]any{"file": file, "roots": roots, "n": n})
		jsNs = append(jsNs, a.Ns...)
		jsCPU += a.CPUNs
	}
	var batch int
	var batchNs float64
	b.SetBytes(int64(len(update)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		t0 := time.Now()
		run()
		ns := float64(time.Since(t0))
		goNs = append(goNs, ns)
		batch++
		if batchNs += ns; batchNs >= 50e6 {
			b.StopTimer()
			goCPU += cpuTime() - cpu0
			yjsBatch(batch)
			batch, batchNs = 0, 0
			cpu0 = cpuTime()
			b.StartTimer()
		}
	}
	b.StopTimer()
	goCPU += cpuTime() - cpu0
	if batch > 0 || len(jsNs) == 0 {
		yjsBatch(max(batch, 3))
	}
	b.ReportMetric(median(goNs)/median(jsNs), "x-yjs")
	b.ReportMetric(slices.Min(goNs)/slices.Min(jsNs), "x-yjs-min")
	if goCPU > 0 && jsCPU > 0 {
		b.ReportMetric((goCPU/float64(len(goNs)))/(jsCPU/float64(len(jsNs))), "x-yjs-cpu")
	}
	b.ReportMetric(median(jsNs)/1e6, "yjs-ms/op")

	h, ok := y.heaps[file]
	if !ok {
		h.goPeak, h.goLive = goHeap(run)
		node := startYjsServer(b, "--max-semi-space-size=256")
		js := node.ask(b, map[string]any{"file": file, "roots": roots, "heap": true})
		h.jsPeak, h.jsLive = js.Peak, js.Live
		y.heaps[file] = h
	}
	b.ReportMetric(h.goPeak, "go-peak-B")
	b.ReportMetric(h.goLive, "go-live-B")
	b.ReportMetric(h.jsPeak, "yjs-peak-B")
	b.ReportMetric(h.jsLive, "yjs-live-B")
}

// goHeap returns, per document, how much the heap grows while run decodes
// 5 documents (the GC held off, so nothing allocated is freed: the
// high-water mark) and how much of it the documents keep after a full GC,
// as bench.mjs measures node's.
func goHeap(run func() *Doc) (peak, live float64) {
	const k = 5
	var m0, m1, m2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	old := debug.SetGCPercent(-1)
	docs := make([]*Doc, 0, k)
	for range k {
		docs = append(docs, run())
	}
	runtime.ReadMemStats(&m1)
	debug.SetGCPercent(old)
	runtime.GC()
	runtime.ReadMemStats(&m2)
	runtime.KeepAlive(docs)
	return (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / k, (float64(m2.HeapAlloc) - float64(m0.HeapAlloc)) / k
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkDecodeTrace decodes each editing trace's yjs update (gc on, as
// Relay's documents are) and reads its text.
func BenchmarkDecodeTrace(b *testing.B) {
	dir := tracesDir(b)
	traces, _ := filepath.Glob(filepath.Join(dir, "*.json.gz"))
	out := b.TempDir()
	y := startYjsBench(b)
	for _, tr := range traces {
		name := strings.TrimSuffix(filepath.Base(tr), ".json.gz")
		var file string
		b.Run(name, func(b *testing.B) {
			if file == "" {
				update, _ := replayTrace(b, tr, out, true)
				file = filepath.Join(out, name+".bin")
				if err := os.WriteFile(file, update, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			benchDecode(b, y, file, []benchRoot{{"text", "text"}})
		})
	}
}

// BenchmarkDecodeSession decodes the full state of each differential
// session committed under testdata/sessions and reads every root.
func BenchmarkDecodeSession(b *testing.B) {
	files, _ := filepath.Glob("testdata/sessions/*.bin")
	if len(files) == 0 {
		b.Fatal("no sessions in testdata/sessions")
	}
	y := startYjsBench(b)
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		raw, err := os.ReadFile(strings.TrimSuffix(abs, ".bin") + ".json")
		if err != nil {
			b.Fatal(err)
		}
		var s session
		if err := json.Unmarshal(raw, &s); err != nil {
			b.Fatal(err)
		}
		var roots []benchRoot
		for _, name := range slices.Sorted(maps.Keys(s.RootTypes)) {
			roots = append(roots, benchRoot{name, s.RootTypes[name]})
		}
		b.Run(strings.TrimSuffix(filepath.Base(f), ".bin"), func(b *testing.B) {
			benchDecode(b, y, abs, roots)
		})
	}
}
