package ingest

import (
	"context"
	"fmt"
	"testing"
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
