package remotehelper

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/gitcred"
	"github.com/relay-git-sync/relay-git-sync/internal/gitpath"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	relaypkg "github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/yjsoracle"
)

const e2eWriteToken = "e2e-write-token-9876543210"

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writes counts the updates written to the folder's documents (through
// the update route), to tell a push that wrote nothing.
func writes(relay *relaytest.Server, folder *relaytest.Folder) int {
	n := len(relay.WrittenUpdates(folder.RelayID(), folder.ID()))
	for _, e := range folder.Entries() {
		if m, ok := e.(map[string]any); ok {
			if id, _ := m["id"].(string); id != "" {
				n += len(relay.WrittenUpdates(folder.RelayID(), id))
			}
		}
	}
	return n
}

func entryField(folder *relaytest.Folder, path, key string) string {
	v, _ := folder.Entry(path)
	m, _ := v.(map[string]any)
	s, _ := m[key].(string)
	return s
}

// TestPushThroughServe is git push relay::http://… end to end: the real
// git and git-remote-relay, serve with --allow-writes, the fake Relay
// Server. A clone edits a note, renames one, deletes one, adds a note in a
// new folder and an image, and edits a note git holds under a safe name;
// the push leaves the fake's documents and filemeta_v0 as the plugin
// would, and the next snapshot, fetched, has the pushed tree. Refused
// pushes (no or the wrong token, a non-fast-forward, one behind the
// remote, a symlink) write nothing.
func TestPushThroughServe(t *testing.T) {
	relay := relaytest.NewServer(relaytest.Options{APIKey: "relay-key"})
	defer relay.Close()
	folder := relay.NewFolder(relay.NewRelay())
	add := func(path, text string) string {
		t.Helper()
		id, err := folder.AddMarkdown(path, text)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	planID := add("/notes/plan.md", "# Plan\n\nÜber 😀 and 漢字 here\n")
	add("/todo.md", "- [ ] write\n")
	movedID := add("/old/name.md", "moving\n")
	add("/gone.md", "to delete\n")
	conID := add("/CON.md", "a name Windows reserves\n")
	canvasID, err := folder.AddCanvas("/board.canvas",
		[]map[string]any{{"id": "n1", "type": "text", "x": 0.0, "y": 0.0, "width": 200.0, "height": 60.0}},
		nil, map[string]string{"n1": "card text"})
	if err != nil {
		t.Fatal(err)
	}
	f := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}

	// The attachment is uploaded with a file token that serve has signed
	// (relay-server's relay sign, here the fake's stand-in).
	srv := startServeArgs(t, relay, "relay-key", t.TempDir(), []*relaytest.Folder{folder}, []string{"--allow-writes"},
		readapi.WriteTokenEnv+"="+e2eWriteToken, relaypkg.EnvFileTokenCommand+"="+relay.SignCommand())
	first := srv.waitFor(f, "the first snapshot", func(s *store.Snapshot) bool { return len(s.Files) == 6 })

	g := newGitEnv(t, EnvToken+"="+e2eToken)
	work := t.TempDir()
	g.git(work, "clone", "-q", "relay::"+srv.url+"/"+f.String(), "notes")
	repo := filepath.Join(work, "notes")
	conGit := gitpath.Rename([]string{"CON.md"}, func(s string) string { return s }, gitpath.Tree)["CON.md"]
	if conGit == "" {
		t.Fatal("CON.md has no safe name")
	}
	if _, err := os.Stat(filepath.Join(repo, conGit)); err != nil {
		t.Fatalf("the clone lacks %s: %v", conGit, err)
	}

	planText := "# Plan\n\nÜber 😀 and 漢字 there, more 🎉\n"
	newText := "# New\n\nin a new folder\n"
	png := pngBytes(3, 2000)
	writeFile(t, filepath.Join(repo, "notes/plan.md"), planText)
	if err := os.MkdirAll(filepath.Join(repo, "new/place"), 0o755); err != nil {
		t.Fatal(err)
	}
	g.git(repo, "mv", "old/name.md", "new/place/name.md")
	g.git(repo, "rm", "-q", "gone.md")
	writeFile(t, filepath.Join(repo, "fresh/dir/new.md"), newText)
	writeFile(t, filepath.Join(repo, "img/new.png"), string(png))
	writeFile(t, filepath.Join(repo, conGit), "edited under its safe name\n")
	board, err := os.ReadFile(filepath.Join(repo, "board.canvas"))
	if err != nil || !strings.Contains(string(board), `"card text"`) {
		t.Fatalf("board.canvas in the clone: %v\n%s", err, board)
	}
	writeFile(t, filepath.Join(repo, "board.canvas"), strings.Replace(string(board), `"card text"`, `"card text, pushed"`, 1))
	g.git(repo, "add", "-A")
	g.git(repo, "commit", "-q", "-m", "edit, rename, delete, add")
	pushed := revParse(g, repo, "HEAD")

	// Without the write token, or with the read token: nothing written.
	before := writes(relay, folder)
	if msg := g.mustFail(repo, "push", "origin", "main"); !strings.Contains(msg, readapi.WriteTokenEnv) {
		t.Errorf("push without the write token:\n%s", msg)
	}
	if msg := g.with(readapi.WriteTokenEnv+"="+e2eToken).mustFail(repo, "push", "origin", "main"); !strings.Contains(msg, "may not write") {
		t.Errorf("push with the read token:\n%s", msg)
	}
	if n := writes(relay, folder); n != before {
		t.Fatalf("refused pushes wrote %d updates", n-before)
	}

	// The write token from git's credential helper, stored under its own
	// user name next to nothing else: the read side (RELAY_GIT_TOKEN) must
	// neither use it nor make git forget it.
	g.git(repo, "config", "--global", "credential.helper", "store")
	u, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	g.gitStdin(repo, "protocol=http\nhost="+u.Host+"\nusername="+gitcred.WriteUser+"\npassword="+e2eWriteToken+"\n\n", "credential", "approve")
	_, stderr := g.git2(repo, "push", "origin", "main")
	if !strings.Contains(stderr, "rename   old/name.md -> new/place/name.md") {
		t.Errorf("push output:\n%s", stderr)
	}

	// What the plugin would have.
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), planID, "contents"); got != planText {
		t.Errorf("yjs reads notes/plan.md as %q, want %q", got, planText)
	}
	if id := folder.EntryID("/new/place/name.md"); id != movedID {
		t.Errorf("the renamed note has document %q, want its old %s", id, movedID)
	}
	for _, gone := range []string{"/old/name.md", "/old", "/gone.md"} {
		if _, ok := folder.Entry(gone); ok {
			t.Errorf("%s is still in filemeta_v0", gone)
		}
	}
	for _, dir := range []string{"/fresh", "/fresh/dir"} {
		if typ := entryField(folder, dir, "type"); typ != "folder" {
			t.Errorf("%s has type %q, want a folder entry", dir, typ)
		}
	}
	if typ := entryField(folder, "/fresh/dir/new.md", "type"); typ != "markdown" {
		t.Errorf("the new note has type %q", typ)
	}
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), folder.EntryID("/fresh/dir/new.md"), "contents"); got != newText {
		t.Errorf("yjs reads the new note as %q", got)
	}
	sum := sha256.Sum256(png)
	if h, typ := entryField(folder, "/img/new.png", "hash"), entryField(folder, "/img/new.png", "type"); h != hex.EncodeToString(sum[:]) || typ != "image" {
		t.Errorf("img/new.png entry: hash %s type %q", h, typ)
	}
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), conID, "contents"); got != "edited under its safe name\n" {
		t.Errorf("yjs reads CON.md as %q", got)
	}
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), canvasID, "n1"); got != "card text, pushed" {
		t.Errorf("yjs reads the canvas card as %q", got)
	}
	if _, ok := folder.Entry("/" + conGit); ok {
		t.Errorf("the safe name %s became an entry of its own", conGit)
	}

	// The push is recorded at once as the folder's next snapshot, and its
	// commit is the pushed commit itself: the fetch fast-forwards to it.
	srv.waitFor(f, "the pushed snapshot", func(s *store.Snapshot) bool {
		return s.Seq > first.Seq && hasFile(s, "new/place/name.md") && hasFile(s, "img/new.png") && !hasFile(s, "gone.md")
	})
	sameCommitOnFetch(t, g, repo)
	if got := revParse(g, repo, "origin/main"); got != pushed {
		t.Errorf("origin/main is %s after the fetch, want the pushed %s", got, pushed)
	}
	// A clone made now ends at the pushed commit, which the helper's next
	// fetch there starts from.
	g.git(work, "clone", "-q", "relay::"+srv.url+"/"+f.String(), "second")
	second := filepath.Join(work, "second")
	if got := revParse(g, second, "HEAD"); got != pushed {
		t.Errorf("a clone after the push ends at %s, want the pushed %s", got, pushed)
	}

	w := g.with(readapi.WriteTokenEnv + "=" + e2eWriteToken)

	// A commit that does not build on the remote's head (the pushed
	// commit) is refused, even forced.
	g.git(repo, "checkout", "-q", "-b", "side", pushed+"^")
	writeFile(t, filepath.Join(repo, "todo.md"), "- [x] write\n")
	g.git(repo, "commit", "-q", "-am", "not on the remote's head")
	before = writes(relay, folder)
	if msg := w.mustFail(repo, "push", "origin", "side:main"); !strings.Contains(msg, "rejected") {
		t.Errorf("non-fast-forward push:\n%s", msg)
	}
	if msg := w.mustFail(repo, "push", "--force", "origin", "side:main"); !strings.Contains(msg, "non-fast-forward") {
		t.Errorf("forced non-fast-forward push:\n%s", msg)
	}
	g.git(repo, "checkout", "-q", "main")

	// On the remote's head, with a symlink: refused, naming it.
	g.git(repo, "reset", "-q", "--hard", "origin/main")
	writeFile(t, filepath.Join(repo, "todo.md"), "- [x] write\n")
	if err := os.Symlink("todo.md", filepath.Join(repo, "link.md")); err != nil {
		t.Fatal(err)
	}
	g.git(repo, "add", "-A")
	g.git(repo, "commit", "-q", "-m", "a symlink")
	if msg := w.mustFail(repo, "push", "origin", "main"); !strings.Contains(msg, "link.md is a symbolic link") {
		t.Errorf("push with a symlink:\n%s", msg)
	}
	if n := writes(relay, folder); n != before {
		t.Fatalf("refused pushes wrote %d updates", n-before)
	}

	// Behind the remote: git says fetch first, and so does the helper to a
	// forced push.
	g.git(repo, "reset", "-q", "--hard", "HEAD~1")
	edited := "- [ ] write\n- [ ] edited in Relay\n"
	if err := folder.EditMarkdown("/todo.md", edited); err != nil {
		t.Fatal(err)
	}
	srv.waitFor(f, "the Relay edit", func(s *store.Snapshot) bool {
		for _, file := range s.Files {
			if file.Path == "todo.md" {
				return file.Size == int64(len(edited))
			}
		}
		return false
	})
	writeFile(t, filepath.Join(repo, "todo.md"), "- [x] write\n")
	g.git(repo, "commit", "-q", "-am", "behind")
	before = writes(relay, folder)
	if msg := w.mustFail(repo, "push", "--force", "origin", "main"); !strings.Contains(msg, "fetch first") {
		t.Errorf("push behind the remote:\n%s", msg)
	}
	if n := writes(relay, folder); n != before {
		t.Fatalf("a push behind the remote wrote %d updates", n-before)
	}
	// The fetch of that edit is a fast-forward on top of the pushed
	// commit, and incremental: it starts from the snapshot the push was
	// made on (git had the pushed commit already, so the fetch after the
	// push fetched nothing and the helper's own tip stayed there).
	_, stderr = g.git2(repo, "fetch", "-v", "-v", "origin")
	if !strings.Contains(stderr, "relay: 2 new snapshots") || strings.Contains(stderr, "forced update") {
		t.Errorf("the fetch after the pushed commit:\n%s", stderr)
	}
	if parent := revParse(g, repo, "origin/main^"); parent != pushed {
		t.Errorf("the Relay edit's commit has parent %s, want the pushed commit %s", parent, pushed)
	}
	if _, stderr := g.git2(second, "fetch", "-v", "-v", "origin"); !strings.Contains(stderr, "relay: 1 new snapshots") || strings.Contains(stderr, "forced update") {
		t.Errorf("the fetch from a clone that ends at the pushed commit:\n%s", stderr)
	}
}

// TestPushToDataDir pushes to relay::/data-dir/…, which writes to the Relay
// Server named by RELAY_SERVER_URL itself. --dry-run writes nothing; a push
// that fails half way says what was written, and pushing again writes only
// what is missing; a push over an edit made in Relay since the snapshot is
// refused.
func TestPushToDataDir(t *testing.T) {
	relay := relaytest.NewServer(relaytest.Options{APIKey: "relay-key"})
	defer relay.Close()
	folder := relay.NewFolder(relay.NewRelay())
	aID, err := folder.AddMarkdown("/a.md", "alpha\n")
	if err != nil {
		t.Fatal(err)
	}
	f := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	dataDir := t.TempDir()
	srv := startServe(t, relay, "relay-key", dataDir, []*relaytest.Folder{folder})
	srv.waitFor(f, "the first snapshot", func(s *store.Snapshot) bool { return len(s.Files) == 1 })
	srv.stop()

	g := newGitEnv(t)
	work := t.TempDir()
	g.git(work, "clone", "-q", "relay::"+dataDir+"/"+f.String(), "notes")
	repo := filepath.Join(work, "notes")
	writeFile(t, filepath.Join(repo, "a.md"), "alpha, edited\n")
	writeFile(t, filepath.Join(repo, "c.md"), "gamma\n")
	g.git(repo, "add", "-A")
	g.git(repo, "commit", "-q", "-m", "edit a, add c")

	if msg := g.mustFail(repo, "push", "origin", "main"); !strings.Contains(msg, "set RELAY_SERVER_URL") {
		t.Errorf("push without RELAY_SERVER_URL:\n%s", msg)
	}
	w := g.with(EnvRelayServerURL+"="+relay.URL(), EnvRelayServerAPIKey+"=relay-key")
	if _, stderr := w.git2(repo, "push", "--dry-run", "origin", "main"); !strings.Contains(stderr, "create   c.md") || !strings.Contains(stderr, "dry run: 2 changes") {
		t.Errorf("dry run:\n%s", stderr)
	}
	if n := writes(relay, folder); n != 0 {
		t.Fatalf("a dry run or a refused push wrote %d updates", n)
	}

	// The folder document fails: a.md's text is written, c.md's entry not.
	relay.InjectFault(relaytest.RouteUpdate, folder.ID(), relaytest.Fault{Status: http.StatusBadRequest, Times: 1})
	if msg := w.mustFail(repo, "push", "origin", "main"); !strings.Contains(msg, "written before the failure: a.md") {
		t.Errorf("push failing half way:\n%s", msg)
	}
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), aID, "contents"); got != "alpha, edited\n" {
		t.Errorf("after the failed push yjs reads a.md as %q", got)
	}
	if _, ok := folder.Entry("/c.md"); ok {
		t.Fatal("c.md has an entry although the folder write failed")
	}
	aWrites := len(relay.WrittenUpdates(folder.RelayID(), aID))

	w.git(repo, "push", "origin", "main")
	if got := len(relay.WrittenUpdates(folder.RelayID(), aID)); got != aWrites {
		t.Errorf("pushing again wrote a.md again (%d updates, had %d)", got, aWrites)
	}
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), folder.EntryID("/c.md"), "contents"); got != "gamma\n" {
		t.Errorf("yjs reads c.md as %q", got)
	}
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), aID, "contents"); got != "alpha, edited\n" {
		t.Errorf("yjs reads a.md as %q", got)
	}

	// The push is the data dir's next snapshot: the fetch after it is no
	// forced update, and the history has the pushed commit itself, even
	// though the push had to be repeated.
	sameCommitOnFetch(t, w, repo)
	// A commit that changes no file writes nothing, and is history too.
	g.git(repo, "commit", "-q", "--allow-empty", "-m", "a note to self")
	w.git(repo, "push", "origin", "main")
	sameCommitOnFetch(t, w, repo)

	// A new attachment needs a file token to upload, which the server
	// token is not: refused with a message that says so, nothing written.
	writeFile(t, filepath.Join(repo, "img.png"), string(pngBytes(5, 500)))
	g.git(repo, "add", "img.png")
	g.git(repo, "commit", "-q", "-m", "an image")
	before := writes(relay, folder)
	if msg := w.mustFail(repo, "push", "origin", "main"); !strings.Contains(msg, "file token") || !strings.Contains(msg, "add the attachment in Obsidian") {
		t.Errorf("push of an attachment with the server token only:\n%s", msg)
	}
	if _, ok := folder.Entry("/img.png"); ok || writes(relay, folder) != before {
		t.Error("the refused attachment push wrote into Relay")
	}
	// With a command that signs file tokens (relay-server's relay sign), it goes.
	w.with(relaypkg.EnvFileTokenCommand+"="+relay.SignCommand()).git(repo, "push", "origin", "main")
	sum := sha256.Sum256(pngBytes(5, 500))
	if h := entryField(folder, "/img.png", "hash"); h != hex.EncodeToString(sum[:]) {
		t.Errorf("img.png has hash %q in filemeta_v0 after the push", h)
	}
	sameCommitOnFetch(t, w, repo)

	// a.md is edited in Obsidian; the data dir (no serve) has no snapshot
	// of it. A push that edits a.md again would take that edit back:
	// refused, naming it, nothing written.
	if err := folder.EditMarkdown("/a.md", "alpha, edited in Obsidian\n"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(repo, "a.md"), "alpha, edited twice\n")
	g.git(repo, "commit", "-q", "-am", "edit a again")
	before = writes(relay, folder)
	if msg := w.mustFail(repo, "push", "origin", "main"); !strings.Contains(msg, "fetch first") || !strings.Contains(msg, "a.md (edited in Relay)") {
		t.Errorf("push over an edit made in Relay:\n%s", msg)
	}
	if n := writes(relay, folder); n != before {
		t.Errorf("the refused push wrote %d updates", n-before)
	}
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), aID, "contents"); got != "alpha, edited in Obsidian\n" {
		t.Errorf("the edit made in Obsidian became %q", got)
	}
}

// storePaths maps the safe names of a synthesized tree back to the
// folder's paths, for files and for new files in renamed directories.
func TestStorePaths(t *testing.T) {
	files := []store.File{{Path: "CON.md"}, {Path: "aux/x.md"}, {Path: "ok/.gitmodules"}, {Path: "plain.md"}}
	renamed := gitpath.Rename(files, func(f store.File) string { return f.Path }, gitpath.Tree)
	toStore := storePaths(files)
	for sp, gp := range renamed {
		if got := toStore(gp); got != sp {
			t.Errorf("%s -> %s -> %s", sp, gp, got)
		}
	}
	auxGit := strings.TrimSuffix(renamed["aux/x.md"], "/x.md")
	if auxGit == "aux" || auxGit == "" {
		t.Fatalf("aux was not renamed: %v", renamed)
	}
	for gp, want := range map[string]string{auxGit + "/new.md": "aux/new.md", "plain.md": "plain.md", "new/file.md": "new/file.md"} {
		if got := toStore(gp); got != want {
			t.Errorf("%s maps to %s, want %s", gp, got, want)
		}
	}
}

// gitStdin runs git with stdin, failing the test if it fails.
func (g *gitEnv) gitStdin(dir, stdin string, args ...string) {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, g.env, strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// BenchmarkPush100Notes times git push of a commit that edits 100 notes
// (a line appended to each) through serve into the fake Relay Server, and
// reports the time per note. Between pushes (untimed) the pushed writes
// come back as a snapshot, which the clone fetches and builds on.
func BenchmarkPush100Notes(b *testing.B) {
	const notes = 100
	relay := relaytest.NewServer(relaytest.Options{APIKey: "relay-key"})
	defer relay.Close()
	folder := relay.NewFolder(relay.NewRelay())
	body := strings.Repeat("a line of a note, long enough to be typical\n", 40)
	for i := range notes {
		if _, err := folder.AddMarkdown(fmt.Sprintf("/notes/%03d.md", i), body); err != nil {
			b.Fatal(err)
		}
	}
	f := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	srv := startServeArgs(b, relay, "relay-key", b.TempDir(), []*relaytest.Folder{folder}, []string{"--allow-writes"},
		readapi.WriteTokenEnv+"="+e2eWriteToken)
	srv.waitFor(f, "the first snapshot", func(s *store.Snapshot) bool { return len(s.Files) == notes })
	g := newGitEnv(b, EnvToken+"="+e2eToken, readapi.WriteTokenEnv+"="+e2eWriteToken)
	work := b.TempDir()
	g.git(work, "clone", "-q", "relay::"+srv.url+"/"+f.String(), "notes")
	repo := filepath.Join(work, "notes")
	size := int64(len(body))

	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		line := fmt.Sprintf("edit %d\n", n)
		size += int64(len(line))
		for i := range notes {
			p := filepath.Join(repo, fmt.Sprintf("notes/%03d.md", i))
			old, err := os.ReadFile(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, append(old, line...), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		g.git(repo, "commit", "-q", "-am", line)
		b.StartTimer()
		g.git(repo, "push", "-q", "origin", "main")
		b.StopTimer()
		srv.waitFor(f, "the pushed snapshot", func(s *store.Snapshot) bool {
			for _, file := range s.Files {
				if file.Size != size {
					return false
				}
			}
			return true
		})
		g.git(repo, "fetch", "-q")
		g.git(repo, "reset", "-q", "--hard", "origin/main")
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*notes), "ms/note")
}

// TestPushKeepsConcurrentTyping: someone types in a note while a push
// writes it (after the push read the note, before its update lands): both
// edits are in the note, as the real yjs reads it.
func TestPushKeepsConcurrentTyping(t *testing.T) {
	relay := relaytest.NewServer(relaytest.Options{APIKey: "relay-key"})
	defer relay.Close()
	folder := relay.NewFolder(relay.NewRelay())
	const base = "# Plan\n\nfirst 😀\nmiddle 漢字\nlast\n"
	id, err := folder.AddMarkdown("/plan.md", base)
	if err != nil {
		t.Fatal(err)
	}
	f := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	dataDir := t.TempDir()
	srv := startServe(t, relay, "relay-key", dataDir, []*relaytest.Folder{folder})
	srv.waitFor(f, "the first snapshot", func(s *store.Snapshot) bool { return len(s.Files) == 1 })
	srv.stop()

	g := newGitEnv(t, EnvRelayServerURL+"="+relay.URL(), EnvRelayServerAPIKey+"=relay-key")
	work := t.TempDir()
	g.git(work, "clone", "-q", "relay::"+dataDir+"/"+f.String(), "notes")
	repo := filepath.Join(work, "notes")
	writeFile(t, filepath.Join(repo, "plan.md"), strings.Replace(base, "last\n", "last, pushed 🎉\n", 1))
	g.git(repo, "commit", "-q", "-am", "edit the end")

	// The push's update is held back until the user has typed.
	relay.InjectFault(relaytest.RouteUpdate, id, relaytest.Fault{Delay: 3 * time.Second, Times: 1})
	done := make(chan error, 1)
	var stderr string
	go func() {
		var err error
		_, stderr, err = g.run(repo, "push", "origin", "main")
		done <- err
	}()
	for relay.RequestsFor(relaytest.RouteUpdate, id) == 0 {
		select {
		case err := <-done:
			t.Fatalf("the push ended before writing the note: %v\n%s", err, stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	typed := strings.Replace(base, "first 😀\n", "first 😀, typed meanwhile\n", 1)
	if err := folder.EditMarkdown("/plan.md", typed); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("push: %v\n%s", err, stderr)
	}
	want := "# Plan\n\nfirst 😀, typed meanwhile\nmiddle 漢字\nlast, pushed 🎉\n"
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), id, "contents"); got != want {
		t.Errorf("yjs reads %q, want %q", got, want)
	}
}

// TestPushToEmptyFolder: a folder without snapshots clones empty; a first
// commit pushed to it creates its notes in Relay. A new name git trees
// cannot hold as is is refused.
func TestPushToEmptyFolder(t *testing.T) {
	relay := relaytest.NewServer(relaytest.Options{APIKey: "relay-key"})
	defer relay.Close()
	folder := relay.NewFolder(relay.NewRelay())
	f := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddFolder(f); err != nil {
		t.Fatal(err)
	}
	st.Close()

	g := newGitEnv(t, EnvRelayServerURL+"="+relay.URL(), EnvRelayServerAPIKey+"=relay-key")
	work := t.TempDir()
	g.git(work, "clone", "-q", "relay::"+dir+"/"+f.String(), "empty")
	repo := filepath.Join(work, "empty")
	writeFile(t, filepath.Join(repo, "first/note.md"), "the first note\n")
	g.git(repo, "add", "-A")
	g.git(repo, "commit", "-q", "-m", "first")
	g.git(repo, "push", "-q", "origin", "main")
	if got := yjsoracle.DocText(t, relay, folder.RelayID(), folder.EntryID("/first/note.md"), "contents"); got != "the first note\n" {
		t.Errorf("yjs reads the pushed note as %q", got)
	}
	if typ := entryField(folder, "/first", "type"); typ != "folder" {
		t.Errorf("/first has type %q", typ)
	}

	// A name git trees do not hold as is would come back renamed: refused.
	writeFile(t, filepath.Join(repo, "first/aux.md"), "reserved on Windows\n")
	g.git(repo, "add", "-A")
	g.git(repo, "commit", "-q", "-m", "aux")
	if msg := g.mustFail(repo, "push", "origin", "main"); !strings.Contains(msg, "first/aux.md: a name git or a Windows checkout cannot hold") {
		t.Errorf("push of aux.md:\n%s", msg)
	}
	if _, ok := folder.Entry("/first/aux.md"); ok {
		t.Error("first/aux.md was written")
	}
}

// sameCommitOnFetch fetches origin in repo and checks that its main is
// the local main, the commit just pushed, reached without a forced update.
func sameCommitOnFetch(t *testing.T, g *gitEnv, repo string) {
	t.Helper()
	_, stderr := g.git2(repo, "fetch", "origin")
	if strings.Contains(stderr, "forced update") {
		t.Errorf("the fetch after a push was a forced update:\n%s", stderr)
	}
	local, remote := g.git(repo, "rev-parse", "main"), g.git(repo, "rev-parse", "origin/main")
	if local != remote {
		t.Errorf("after the push and a fetch origin/main is %s, the pushed main %s\n%s", remote, local, g.git(repo, "log", "--format=%H %P %s", "-3", "origin/main"))
	}
}
