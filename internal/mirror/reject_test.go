package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A push the remote refuses names the remote's own reason, in the result
// and in the push state `connectors status` shows.
func TestRejectedPushNamesCause(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	hook := "#!/bin/sh\necho 'error: policy: notes may not be pushed here' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bare, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(bare, "main", ""))
	sim.snap(map[string]string{"a.md": "alpha\n"})
	res := tm.PushFolder(t.Context(), testFolder)
	if len(res) != 1 || res[0].Err == nil {
		t.Fatalf("push went through: %+v", res)
	}
	const cause = "error: policy: notes may not be pushed here"
	if !strings.Contains(res[0].Err.Error(), cause) {
		t.Fatalf("error %q does not name the remote's cause", res[0].Err)
	}
	ps, err := tm.k(t).state()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ps.LastError, cause) || strings.Contains(ps.LastError, "\n") {
		t.Fatalf("push state error %q", ps.LastError)
	}
}

func (tm *testManager) k(t *testing.T) *connector {
	t.Helper()
	if len(tm.conns) != 1 {
		t.Fatalf("%d connectors", len(tm.conns))
	}
	return tm.conns[0]
}
