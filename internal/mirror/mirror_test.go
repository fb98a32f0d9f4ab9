package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// A folder without prefix pushed to an empty remote carries exactly the
// commits history.Linear makes, before and after incremental pushes, over
// both a local path and a file:// URL.
func TestPurePushMatchesLinear(t *testing.T) {
	for _, form := range []string{"path", "file-url"} {
		t.Run(form, func(t *testing.T) {
			st := openStore(t)
			sim := newFolderSim(t, st)
			bare := bareRepo(t)
			url := bare
			if form == "file-url" {
				url = "file://" + bare
			}
			tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(url, "main", ""))
			sim.snap(map[string]string{"a.md": "alpha\n", "notes/b.md": "beta\n"})
			sim.snap(map[string]string{"a.md": "alpha 2\n"})
			sim.snap(map[string]string{"notes/c.md": "gamma\n", "notes/b.md": ""})
			res := tm.push(t)
			want := linearIDs(t, sim.all())
			if got := gitIn(t, bare, "rev-parse", "main"); got != want[len(want)-1] {
				t.Fatalf("remote main = %s, want Linear's %s", got, want[len(want)-1])
			}
			if res[0].Commits != 3 || res[0].Seq != 3 || res[0].Merged {
				t.Errorf("result %+v", res[0])
			}
			log := strings.Fields(gitIn(t, bare, "rev-list", "--reverse", "main"))
			if strings.Join(log, " ") != strings.Join(want, " ") {
				t.Errorf("remote history %v, want %v", log, want)
			}
			// Incremental pushes, one and then two snapshots.
			sim.snap(map[string]string{"d.md": "delta\n"})
			tm.push(t)
			sim.snap(map[string]string{"d.md": "delta 2\n"})
			sim.snap(map[string]string{"a.md": ""})
			res = tm.push(t)
			if res[0].Commits != 2 {
				t.Errorf("incremental push sent %d commits, want 2", res[0].Commits)
			}
			want = linearIDs(t, sim.all())
			log = strings.Fields(gitIn(t, bare, "rev-list", "--reverse", "main"))
			if strings.Join(log, " ") != strings.Join(want, " ") {
				t.Errorf("remote history %v, want %v", log, want)
			}
			checkFiles(t, bare, "main", sim.files)
			gitIn(t, bare, "fsck", "--strict", "--no-dangling")
			// Nothing new: no commit, up to date.
			if res := tm.push(t); !res[0].UpToDate {
				t.Errorf("second push of the same snapshot: %+v", res[0])
			}
			ps, err := st.PushState(testFolder, ConnectorID(connectorTo(url, "main", "")))
			if err != nil || ps.Seq != 6 || !ps.Linear || ps.Attempts != 0 {
				t.Errorf("push state %+v, %v", ps, err)
			}
		})
	}
}

// A remote whose branch has unrelated history (README, CI config) keeps
// every file the folder never had, even with an empty prefix; the folder's
// own files follow the snapshots, deletions included.
func TestUnrelatedHistoryEmptyPrefix(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	clone := foreignClone(t, bare)
	commitFiles(t, clone, "Initial commit", map[string]string{
		"README.md": "# Project\n", ".gitlab-ci.yml": "test: {}\n", ".github/workflows/ci.yml": "on: push\n",
		"notes.md": "the remote's notes\n", // the folder has this path too: the snapshot wins
	})
	gitIn(t, clone, "push", "-q", "origin", "main")
	initial := gitIn(t, bare, "rev-parse", "main")

	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(bare, "main", ""))
	sim.snap(map[string]string{"notes.md": "folder notes\n", "journal/day1.md": "day 1\n"})
	sim.snap(map[string]string{"journal/day2.md": "day 2\n"})
	res := tm.push(t)
	if res[0].Merged || res[0].Commits != 2 {
		t.Errorf("first push onto foreign history: %+v", res[0])
	}
	want := map[string]string{
		"README.md": "# Project", ".gitlab-ci.yml": "test: {}", ".github/workflows/ci.yml": "on: push",
		"notes.md": "folder notes", "journal/day1.md": "day 1", "journal/day2.md": "day 2",
	}
	checkFiles(t, bare, "main", want)
	gitIn(t, bare, "merge-base", "--is-ancestor", initial, "main")

	// Deleting a folder file removes it; foreign files stay.
	sim.snap(map[string]string{"journal/day1.md": ""})
	tm.push(t)
	delete(want, "journal/day1.md")
	checkFiles(t, bare, "main", want)
	if n := gitIn(t, bare, "rev-list", "--count", "main"); n != "4" {
		t.Errorf("%s commits on main, want 4 (initial + 3 snapshots)", n)
	}
	// The commits carry the snapshot trailers.
	for seq := 1; seq <= 3; seq++ {
		if !strings.Contains(gitIn(t, bare, "log", "--format=%B", "main"), fmt.Sprintf("Relay-Snapshot: %s#%d", testFolder, seq)) {
			t.Errorf("no commit of snapshot %d", seq)
		}
	}
}

// checkFiles compares the files of rev with want (contents trimmed).
func checkFiles(t *testing.T, bare, rev string, want map[string]string) {
	t.Helper()
	got := lsTree(t, bare, rev)
	for p, c := range want {
		if got[p] != strings.TrimSpace(c) {
			t.Errorf("%s:%s = %q, want %q", rev, p, got[p], strings.TrimSpace(c))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s has unexpected %s", rev, p)
		}
	}
}

// A prefix puts the folder under a directory of an existing branch, and the
// configured branch (not main) is the one updated; a branch the remote
// lacks is created.
func TestPrefixAndBranch(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	clone := foreignClone(t, bare)
	commitFiles(t, clone, "Project", map[string]string{"README.md": "readme\n", "docs/guide.md": "guide\n", "docs/relay/stale.md": "remote file under the prefix\n"})
	gitIn(t, clone, "push", "-q", "origin", "main")
	mainBefore := gitIn(t, bare, "rev-parse", "main")

	onMain := connectorTo(bare, "main", "docs/relay")
	onBranch := connectorTo(bare, "relay/notes", "vault")
	tm := newManager(t, st, t.TempDir(), Config{}, onMain, onBranch)
	sim.snap(map[string]string{"a.md": "A\n", "sub/b.md": "B\n"})
	tm.push(t)
	checkFiles(t, bare, "main", map[string]string{
		"README.md": "readme", "docs/guide.md": "guide", "docs/relay/a.md": "A", "docs/relay/sub/b.md": "B",
	})
	gitIn(t, bare, "merge-base", "--is-ancestor", mainBefore, "main")
	checkFiles(t, bare, "relay/notes", map[string]string{"vault/a.md": "A", "vault/sub/b.md": "B"})
	if n := gitIn(t, bare, "rev-list", "--count", "relay/notes"); n != "1" {
		t.Errorf("relay/notes has %s commits, want 1", n)
	}
	// Someone edits main outside the prefix meanwhile, and inside it.
	gitIn(t, clone, "pull", "-q", "--ff-only")
	commitFiles(t, clone, "Edit guide", map[string]string{"docs/guide.md": "guide 2\n", "docs/relay/a.md": "edited on the remote\n"})
	gitIn(t, clone, "push", "-q", "origin", "main")
	foreign := gitIn(t, bare, "rev-parse", "main")
	sim.snap(map[string]string{"sub/b.md": "B 2\n"})
	res := tm.push(t)
	if !res[0].Merged || res[1].Merged {
		t.Errorf("merge flags: main %v, branch %v", res[0].Merged, res[1].Merged)
	}
	checkFiles(t, bare, "main", map[string]string{
		"README.md": "readme", "docs/guide.md": "guide 2", "docs/relay/a.md": "A", "docs/relay/sub/b.md": "B 2",
	})
	gitIn(t, bare, "merge-base", "--is-ancestor", foreign, "main")
	subject := gitIn(t, bare, "log", "-1", "--format=%s", "main")
	if subject != "Merge Relay folder snapshot #2 into main" {
		t.Errorf("merge subject %q", subject)
	}
	if parents := strings.Fields(gitIn(t, bare, "log", "-1", "--format=%P", "main")); len(parents) != 2 || parents[0] != foreign {
		t.Errorf("merge parents %v, want the remote head %s first", parents, foreign)
	}
	// The remote's edit of a.md survives in history.
	if got := gitIn(t, bare, "show", foreign+":docs/relay/a.md"); got != "edited on the remote" {
		t.Errorf("foreign edit lost from history: %q", got)
	}
	checkFiles(t, bare, "relay/notes", map[string]string{"vault/a.md": "A", "vault/sub/b.md": "B 2"})
}

// Three cycles where another clone pushes to the branch between snapshots
// (§6.5 a): every connector commit reaches the remote, every foreign
// commit stays.
func TestOutOfBandPushesAcrossCycles(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(bare, "main", ""))
	sim.snap(map[string]string{"start.md": "start\n"})
	tm.push(t)
	clone := foreignClone(t, bare)
	var foreign []string
	for i := 1; i <= 3; i++ {
		gitIn(t, clone, "pull", "-q", "--no-rebase")
		commitFiles(t, clone, fmt.Sprintf("Out of band %d", i), map[string]string{fmt.Sprintf("oob-%d.txt", i): "oob\n"})
		gitIn(t, clone, "push", "-q", "origin", "main")
		foreign = append(foreign, gitIn(t, clone, "rev-parse", "HEAD"))
		sim.snap(map[string]string{fmt.Sprintf("untracked-%d.md", i): fmt.Sprintf("new file %d\n", i)})
		res := tm.push(t)
		if !res[0].Merged || !res[0].Fetched {
			t.Errorf("cycle %d: %+v", i, res[0])
		}
	}
	// Several snapshots while the branch moved: one commit each, then the
	// merge.
	gitIn(t, clone, "pull", "-q", "--no-rebase")
	commitFiles(t, clone, "Out of band 4", map[string]string{"oob-4.txt": "oob\n"})
	gitIn(t, clone, "push", "-q", "origin", "main")
	foreign = append(foreign, gitIn(t, clone, "rev-parse", "HEAD"))
	sim.snap(map[string]string{"multi-1.md": "m\n"})
	sim.snap(map[string]string{"multi-2.md": "m\n"})
	sim.snap(map[string]string{"multi-1.md": ""})
	if res := tm.push(t); res[0].Commits != 4 || !res[0].Merged {
		t.Errorf("three snapshots onto a moved branch: %+v", res[0])
	}
	for _, f := range foreign {
		gitIn(t, bare, "merge-base", "--is-ancestor", f, "main")
	}
	files := lsTree(t, bare, "main")
	if files["oob-4.txt"] == "" || files["multi-2.md"] == "" || files["multi-1.md"] != "" {
		t.Errorf("after the multi-snapshot merge: %v", files)
	}
	for i := 1; i <= 3; i++ {
		if files[fmt.Sprintf("oob-%d.txt", i)] == "" || files[fmt.Sprintf("untracked-%d.md", i)] == "" {
			t.Errorf("cycle %d: files missing: %v", i, files)
		}
	}
	log := gitIn(t, bare, "log", "--format=%B", "main") + "\n"
	for seq := 1; seq <= 7; seq++ {
		if !strings.Contains(log, fmt.Sprintf("Relay-Snapshot: %s#%d\n", testFolder, seq)) {
			t.Errorf("snapshot %d's commit is not on the remote", seq)
		}
	}
}

// A commit built on a stale parent (§6.5 b): the branch moves between
// our look at it and our push. The push is rejected, and the same attempt
// fetches, merges and pushes again.
func TestStaleParentRecovers(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	clone := foreignClone(t, bare)
	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(bare, "main", ""))
	sim.snap(map[string]string{"a.md": "a\n"})
	tm.push(t)
	gitIn(t, clone, "pull", "-q")

	raced := ""
	for _, k := range tm.conns {
		k.beforeSend = func() {
			if raced != "" {
				return
			}
			commitFiles(t, clone, "Racing push", map[string]string{"race.txt": "race\n"})
			gitIn(t, clone, "push", "-q", "origin", "main")
			raced = gitIn(t, clone, "rev-parse", "HEAD")
		}
	}
	sim.snap(map[string]string{"b.md": "b\n"})
	res := tm.push(t)
	if raced == "" || !res[0].Merged {
		t.Fatalf("no race happened, or no merge: %+v", res[0])
	}
	gitIn(t, bare, "merge-base", "--is-ancestor", raced, "main")
	checkFiles(t, bare, "main", map[string]string{"a.md": "a", "b.md": "b", "race.txt": "race"})
}

// A rejected push (§6.5 c) surfaces as an error saying "rejected", is
// recorded in the push state, and goes through once the remote accepts.
func TestRejectedPushSurfacesAndRetries(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	hook := filepath.Join(bare, "hooks", "pre-receive")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho 'branch is frozen' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conn := connectorTo(bare, "main", "")
	tm := newManager(t, st, t.TempDir(), Config{}, conn)
	sim.snap(map[string]string{"a.md": "a\n"})
	res := tm.PushFolder(context.Background(), testFolder)
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "rejected") {
		t.Fatalf("push through a refusing hook: %v", res[0].Err)
	}
	ps, err := st.PushState(testFolder, ConnectorID(conn))
	if err != nil || ps.Attempts != 1 || !strings.Contains(ps.LastError, "rejected") || !isZero(ps.Commit) {
		t.Fatalf("push state after the rejection: %+v %v", ps, err)
	}
	os.Remove(hook)
	tm.push(t)
	ps, _ = st.PushState(testFolder, ConnectorID(conn))
	if ps.Attempts != 0 || ps.Seq != 1 || ps.LastError == "" {
		t.Errorf("push state after the retry: %+v (the last error stays for the record)", ps)
	}
	if got := gitIn(t, bare, "rev-parse", "main"); got != linearIDs(t, sim.all())[0] {
		t.Errorf("main = %s", got)
	}
}

// A lost push state (or a mirror directory deleted) does not duplicate the
// history: the remote's head carries the folder's trailer and is adopted.
func TestLostStateAndMirrorAreRecovered(t *testing.T) {
	for _, prefix := range []string{"", "docs"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			st := openStore(t)
			sim := newFolderSim(t, st)
			bare := bareRepo(t)
			data := t.TempDir()
			conn := connectorTo(bare, "main", prefix)
			tm := newManager(t, st, data, Config{}, conn)
			sim.snap(map[string]string{"a.md": "a\n"})
			sim.snap(map[string]string{"b.md": "b\n"})
			tm.push(t)
			head := gitIn(t, bare, "rev-parse", "main")

			// Forget everything local.
			tm.Close()
			if err := os.RemoveAll(filepath.Join(data, "mirrors")); err != nil {
				t.Fatal(err)
			}
			if err := st.SetPushState(testFolder, ConnectorID(conn), &store.PushState{}, []string{}); err != nil {
				t.Fatal(err)
			}
			tm = newManager(t, st, data, Config{}, conn)
			if res := tm.push(t); !res[0].UpToDate {
				t.Errorf("after losing state: %+v", res[0])
			}
			if got := gitIn(t, bare, "rev-parse", "main"); got != head {
				t.Fatalf("main moved from %s to %s", head, got)
			}
			sim.snap(map[string]string{"c.md": "c\n"})
			res := tm.push(t)
			if res[0].Commits != 1 || res[0].Merged {
				t.Errorf("next push: %+v", res[0])
			}
			if n := gitIn(t, bare, "rev-list", "--count", "main"); n != "3" {
				t.Errorf("%s commits, want 3", n)
			}
			if prefix == "" {
				if got, want := gitIn(t, bare, "rev-parse", "main"), linearIDs(t, sim.all())[2]; got != want {
					t.Errorf("no longer Linear's history: %s, want %s", got, want)
				}
			}
		})
	}
}

// Commit messages and merges are deterministic: two data dirs pushing the
// same snapshots onto the same foreign history make the same commits.
func TestMergesAreDeterministic(t *testing.T) {
	var heads []string
	for range 2 {
		st := openStore(t)
		sim := newFolderSim(t, st)
		bare := bareRepo(t)
		clone := foreignClone(t, bare)
		commitFiles(t, clone, "Initial", map[string]string{"README.md": "x\n"})
		// Fixed dates, so that both remotes have the same foreign commit.
		gitInEnv(t, clone, []string{"GIT_COMMITTER_DATE=2026-01-01T00:00:00Z", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z"}, "commit", "-q", "--amend", "--no-edit", "--reset-author")
		gitIn(t, clone, "push", "-q", "origin", "main")
		tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(bare, "main", ""))
		sim.snap(map[string]string{"a.md": "a\n"})
		tm.push(t)
		gitIn(t, clone, "pull", "-q")
		commitFiles(t, clone, "More", map[string]string{"x.txt": "x\n"})
		gitInEnv(t, clone, []string{"GIT_COMMITTER_DATE=2026-01-02T00:00:00Z", "GIT_AUTHOR_DATE=2026-01-02T00:00:00Z"}, "commit", "-q", "--amend", "--no-edit", "--reset-author")
		gitIn(t, clone, "push", "-q", "origin", "main")
		sim.snap(map[string]string{"a.md": "a2\n"})
		tm.push(t)
		heads = append(heads, gitIn(t, bare, "rev-parse", "main"))
	}
	if heads[0] != heads[1] {
		t.Errorf("two runs made %s and %s", heads[0], heads[1])
	}
}

func gitInEnv(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	old := extraGitEnv
	extraGitEnv = env
	defer func() { extraGitEnv = old }()
	return gitIn(t, dir, args...)
}

func TestMergeMessage(t *testing.T) {
	msg := MergeMessage(testFolder, 7, "main", "docs")
	f, seq, ok := history.SnapshotOf(msg)
	if !ok || f != testFolder || seq != 7 {
		t.Errorf("SnapshotOf(merge message) = %v %d %v", f, seq, ok)
	}
	if !strings.HasPrefix(msg, "Merge Relay folder snapshot #7 into main\n\n") || !strings.Contains(msg, "docs/") {
		t.Errorf("message:\n%s", msg)
	}
}

// A connector whose remote does not exist fails with a clear error and
// does not disturb the other connectors of the folder.
func TestBrokenConnectorDoesNotBlockOthers(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	good := bareRepo(t)
	missing := filepath.Join(t.TempDir(), "nope.git")
	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(missing, "main", ""), connectorTo(good, "main", ""))
	sim.snap(map[string]string{"a.md": "a\n"})
	res := tm.PushFolder(context.Background(), testFolder)
	if res[0].Err == nil || res[1].Err != nil {
		t.Fatalf("results: %v / %v", res[0].Err, res[1].Err)
	}
	if !strings.Contains(res[0].Err.Error(), missing) {
		t.Errorf("error does not name the remote: %v", res[0].Err)
	}
	if errors.Is(res[0].Err, context.DeadlineExceeded) {
		t.Errorf("timeout instead of an error: %v", res[0].Err)
	}
}

// A long history's first push (the startup catch-up of a folder that had
// no connector before): C git packs it, the mirror's loose objects are
// packed afterwards, and the result is history.Linear's. Without git, the
// same with go-git's encoder and repacking.
func TestLongHistoryFirstPush(t *testing.T) {
	// 450 snapshots make about 2,250 objects: over the thresholds of C
	// git's encoder and of repacking.
	n := 450
	if testing.Short() {
		n = 200
	}
	st := openStore(t)
	sim := newFolderSim(t, st)
	for i := range n {
		sim.snap(map[string]string{
			fmt.Sprintf("dir%d/file%d.md", i%7, i%40): fmt.Sprintf("version %d\n%s", i, strings.Repeat("text ", i%50)),
			"log.md": fmt.Sprintf("entry %d\n", i),
		})
	}
	for _, packer := range []string{PackerAuto, PackerGoGit} {
		t.Run("packer="+packer, func(t *testing.T) {
			want := linearIDs(t, sim.all())
			n := len(want)
			bare := bareRepo(t)
			data := t.TempDir()
			conn := connectorTo(bare, "main", "")
			tm := newManager(t, st, data, Config{Packer: packer}, conn)
			if packer == PackerGoGit {
				tm.gitBin = "" // as on a machine without git
			}
			res := tm.push(t)
			t.Logf("first push of %d snapshots: %d commits, %d objects in %v", n, res[0].Commits, res[0].Objects, res[0].Took.Round(time.Millisecond))
			if got := gitIn(t, bare, "rev-parse", "main"); got != want[n-1] {
				t.Fatalf("main = %s, want %s", got, want[n-1])
			}
			gitIn(t, bare, "fsck", "--no-dangling")
			mirror := MirrorPath(data, conn)
			if n >= 450 {
				if loose := looseCount(mirror); loose > repackThreshold {
					t.Errorf("mirror still has about %d loose objects", loose)
				}
				if packs, _ := filepath.Glob(filepath.Join(mirror, "objects", "pack", "*.pack")); len(packs) == 0 {
					t.Errorf("mirror was not packed")
				}
			}
			// The mirror still works after packing.
			sim.snap(map[string]string{"log.md": "after\n"})
			tm.push(t)
			if got, want := gitIn(t, bare, "rev-parse", "main"), linearIDs(t, sim.all())[n]; got != want {
				t.Errorf("main = %s after the next push, want %s", got, want)
			}
			gitIn(t, mirror, "fsck", "--no-dangling", "--connectivity-only", string(refPushed))
		})
	}
}

// Two folders push to one branch under different prefixes: each sees the
// other's commits as foreign and merges them; both directories and every
// commit of both survive.
func TestTwoFoldersOneBranch(t *testing.T) {
	st := openStore(t)
	a := newFolderSim(t, st)
	b := newFolderSim(t, st)
	b.folder = store.FolderID{Relay: testFolder.Relay, Folder: "a47ac10b-58cc-4372-a567-0e02b2c3d479"}
	bare := bareRepo(t)
	ca := connectorTo(bare, "main", "alpha")
	cb := connectorTo(bare, "main", "beta")
	cb.SharedFolderID = b.folder.Folder
	tm := newManager(t, st, t.TempDir(), Config{}, ca, cb)
	for i := range 4 {
		a.snap(map[string]string{fmt.Sprintf("a%d.md", i): "a\n"})
		b.snap(map[string]string{fmt.Sprintf("b%d.md", i): "b\n"})
		for _, f := range []store.FolderID{a.folder, b.folder} {
			for _, r := range tm.PushFolder(context.Background(), f) {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
			}
		}
	}
	want := map[string]string{}
	for i := range 4 {
		want[fmt.Sprintf("alpha/a%d.md", i)] = "a"
		want[fmt.Sprintf("beta/b%d.md", i)] = "b"
	}
	checkFiles(t, bare, "main", want)
	log := gitIn(t, bare, "log", "--format=%B", "main") + "\n"
	for seq := 1; seq <= 4; seq++ {
		for _, f := range []store.FolderID{a.folder, b.folder} {
			if !strings.Contains(log, fmt.Sprintf("Relay-Snapshot: %s#%d\n", f, seq)) {
				t.Errorf("%s#%d missing from main", f, seq)
			}
		}
	}
}

// After a long build the session is renewed; a branch that moved during
// the build is fetched and merged.
func TestFreshSessionAfterLongBuild(t *testing.T) {
	old := sessionIdle
	sessionIdle = 0
	defer func() { sessionIdle = old }()
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(bare, "main", ""))
	sim.snap(map[string]string{"a.md": "a\n"})
	tm.push(t)
	if got := gitIn(t, bare, "rev-parse", "main"); got != linearIDs(t, sim.all())[0] {
		t.Errorf("main = %s", got)
	}
	clone := foreignClone(t, bare)
	sim.snap(map[string]string{"b.md": "b\n"})
	moved := false
	for _, k := range tm.conns {
		k.afterBuild = func() {
			if !moved {
				moved = true
				commitFiles(t, clone, "During the build", map[string]string{"x.txt": "x\n"})
				gitIn(t, clone, "push", "-q", "origin", "main")
			}
		}
	}
	res := tm.push(t)
	if !moved || !res[0].Merged {
		t.Errorf("result %+v", res[0])
	}
	checkFiles(t, bare, "main", map[string]string{"a.md": "a", "b.md": "b", "x.txt": "x"})
}
