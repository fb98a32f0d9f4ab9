// Package yjsoracle runs the real yjs (tools/yjsoracle/steps.mjs) for
// tests outside internal/yjs: every update the Go code writes must also be
// applied by yjs, and these helpers let a test ask yjs what it reads.
package yjsoracle

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// Run runs one job of steps.mjs (see its header for the steps; "file"
// values are paths, see File) and returns the job's outputs. Node or the
// oracle's packages missing skip the test on a laptop and fail it in CI.
func Run(t testing.TB, steps ...map[string]any) map[string]any {
	t.Helper()
	js := filepath.Join(testreq.YjsOracle(t), "steps.mjs")
	jobs, _ := json.Marshal([]any{map[string]any{"steps": steps}})
	in := File(t, jobs)
	var stderr bytes.Buffer
	cmd := exec.Command("node", js, in)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("yjs (steps.mjs): %v\n%s", err, stderr.String())
	}
	var res []struct {
		Out map[string]any `json:"out"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 {
		t.Fatalf("yjs (steps.mjs) answered %q: %v", out, err)
	}
	return res[0].Out
}

// File writes b to a new file in a temporary directory of the test and
// returns its path, for the "file" of an apply step.
func File(t testing.TB, b []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "yjs-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// Text returns root's text as yjs reads it after applying the Yjs v1
// updates in order to a new document.
func Text(t testing.TB, root string, updates ...[]byte) string {
	t.Helper()
	steps := []map[string]any{{"op": "new", "doc": "d"}}
	for _, u := range updates {
		steps = append(steps, map[string]any{"op": "apply", "doc": "d", "file": File(t, u)})
	}
	out := Run(t, append(steps, map[string]any{"op": "text", "doc": "d", "root": root, "name": "t"})...)
	s, _ := out["t"].(string)
	return s
}

// Docs is where DocText reads a document's state (relaytest.Server).
type Docs interface {
	DocUpdate(relayID, docID string) ([]byte, error)
}

// DocText returns root's text as yjs reads it from the state docs holds
// for the document (every update Go wrote to it included).
func DocText(t testing.TB, docs Docs, relayID, docID, root string) string {
	t.Helper()
	state, err := docs.DocUpdate(relayID, docID)
	if err != nil {
		t.Fatalf("document %s: %v", docID, err)
	}
	return Text(t, root, state)
}
