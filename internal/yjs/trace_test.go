package yjs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tracesDir returns the shared editing traces, or skips: they sit beside
// the checkout (../shared/traces) and a clone used elsewhere lacks them.
func tracesDir(t testing.TB) string {
	t.Helper()
	dir, _ := filepath.Abs("../../../shared/traces")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("editing traces not found at %s; they come with the project's shared/ folder", dir)
	}
	return dir
}

// replayTrace replays a trace into real yjs and returns the update and
// the text the trace must end with.
func replayTrace(t testing.TB, trace, outDir string, gc bool) (update []byte, endContent string) {
	t.Helper()
	name := strings.TrimSuffix(filepath.Base(trace), ".json.gz")
	out := filepath.Join(outDir, fmt.Sprintf("%s-gc-%v.bin", name, gc))
	runNode(t, oracleDir(t), "replay-trace.mjs", trace, out, fmt.Sprintf("--gc=%v", gc))
	update, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		EndContent string `json:"endContent"`
	}
	raw, err := os.ReadFile(out + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	return update, meta.EndContent
}

// TestTraces replays every editing trace into yjs — one client for a
// sequential trace, one per agent for a concurrent one — and decodes the
// result here; the text must be the trace's endContent. The small trace in
// testdata/traces runs on any clone; the full ones in shared/traces where
// they exist.
func TestTraces(t *testing.T) {
	if testing.Short() {
		t.Skip("trace replays take seconds each; run without -short")
	}
	oracleDir(t)
	local, _ := filepath.Abs("testdata/traces") // node runs in the oracle's dir
	traces, _ := filepath.Glob(filepath.Join(local, "*.json.gz"))
	if len(traces) == 0 {
		t.Fatal("no trace in testdata/traces")
	}
	dir, _ := filepath.Abs("../../../shared/traces")
	if shared, _ := filepath.Glob(filepath.Join(dir, "*.json.gz")); len(shared) > 0 {
		traces = append(traces, shared...)
	} else {
		t.Logf("full editing traces not found at %s (they come with the project's shared/ folder): replaying only testdata/traces", dir)
	}
	out := t.TempDir()
	for _, tr := range traces {
		for _, gc := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/gc=%v", strings.TrimSuffix(filepath.Base(tr), ".json.gz"), gc), func(t *testing.T) {
				t.Parallel()
				update, want := replayTrace(t, tr, out, gc)
				d := NewDoc()
				if err := d.ApplyUpdate(update); err != nil {
					t.Fatal(err)
				}
				if got := d.GetText("text").String(); got != want {
					t.Fatalf("decoded text differs from endContent at byte %d (got %d bytes, want %d)",
						firstDiff(got, want), len(got), len(want))
				}
			})
		}
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
