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

// A hostile .gitmodules in the folder does not block a remote that checks
// objects (receive.fsckObjects): it is pushed under a safe name, later
// snapshots arrive, and git fsck --strict is clean on the remote and on
// the mirror.
func TestHostileGitmodulesReachesFsckRemote(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	gitIn(t, bare, "config", "receive.fsckObjects", "true")
	data := t.TempDir()
	tm := newManager(t, st, data, Config{}, connectorTo(bare, "main", ""))
	sim.snap(map[string]string{"a.md": "alpha\n"})
	tm.push(t)
	sim.snap(map[string]string{".gitmodules": "[submodule \"x\"]\n\tpath = x\n\turl = -oProxyCommand=touch /tmp/pwned\n"})
	tm.push(t)
	sim.snap(map[string]string{"a.md": "alpha 2\n", ".gitmodules": ""})
	res := tm.push(t)
	if res[0].Seq != 3 {
		t.Fatalf("remote at snapshot %d, want 3", res[0].Seq)
	}
	want := linearIDs(t, sim.all())
	if got := gitIn(t, bare, "rev-parse", "main"); got != want[len(want)-1] {
		t.Fatalf("remote main = %s, want Linear's %s", got, want[len(want)-1])
	}
	gitIn(t, bare, "fsck", "--strict", "--no-dangling")
	gitIn(t, MirrorPath(data, connectorTo(bare, "main", "")), "fsck", "--strict", "--no-dangling")
	if tree := gitIn(t, bare, "ls-tree", "--name-only", "main~1"); !strings.Contains(tree, ".gitmodules~") {
		t.Fatalf("snapshot 2's tree:\n%s", tree)
	}
}

// Over foreign history (the Overlay), a file git holds under another name
// leaves the remote when it leaves the folder; the foreign file stays.
func TestRenamedFileLeavesRemoteOverForeignHistory(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	clone := foreignClone(t, bare)
	commitFiles(t, clone, "readme", map[string]string{"README": "foreign\n"})
	gitIn(t, clone, "push", "-q", "origin", "HEAD:main")
	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(bare, "main", ""))
	sim.snap(map[string]string{"a.md": "alpha\n", "aux.md": "x\n"})
	tm.push(t)
	if tree := gitIn(t, bare, "ls-tree", "--name-only", "main"); !strings.Contains(tree, "aux~") || !strings.Contains(tree, "README") {
		t.Fatalf("tree:\n%s", tree)
	}
	sim.snap(map[string]string{"aux.md": ""})
	tm.push(t)
	if tree := gitIn(t, bare, "ls-tree", "--name-only", "main"); strings.Contains(tree, "aux~") || !strings.Contains(tree, "README") {
		t.Fatalf("tree after the delete:\n%s", tree)
	}
}
