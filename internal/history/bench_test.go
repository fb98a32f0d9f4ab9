package history

import (
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// BenchmarkSynthesize20k synthesizes a 20,000-snapshot history of a
// ~300-file folder into a memory storer, the snapshots being generated as it
// goes (as store.Walk hands them out). BenchmarkGenerate20k measures the
// generation alone.
func BenchmarkSynthesize20k(b *testing.B) {
	const n = 20000
	var commits, trees int
	for b.Loop() {
		st := memory.NewStorage()
		s := New(goldenConfig, st)
		g := newGen(42, 300, false)
		var tip plumbing.Hash
		for range n {
			h, err := s.Append(g.next(), tip)
			if err != nil {
				b.Fatal(err)
			}
			tip = h
		}
		commits, trees = len(st.Commits), len(st.Trees)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "snapshots/s")
	b.ReportMetric(float64(trees)/float64(commits), "trees/commit")
}

func BenchmarkGenerate20k(b *testing.B) {
	for b.Loop() {
		g := newGen(42, 300, false)
		for range 20000 {
			g.next()
		}
	}
	b.ReportMetric(20000*float64(b.N)/b.Elapsed().Seconds(), "snapshots/s")
}
