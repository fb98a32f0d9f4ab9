package remotehelper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// pngBytes returns deterministic binary content with a PNG signature and
// every byte value.
func pngBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "\x89PNG\r\n\x1a\n\x00\xff")
	return b
}

var statsLine = regexp.MustCompile(`relay: (\d+) new snapshots, (\d+) blobs, (\d+) objects`)

// fetchStats reads the summary git-remote-relay prints with -v.
func fetchStats(t testing.TB, stderr string) (snapshots, blobs, objects int) {
	t.Helper()
	m := statsLine.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", stderr)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	return a, b, c
}

// TestServeCloneFetchPull is the user's path: `relay-git-sync serve` fed by
// the (fake) Relay Server, and the real git client cloning, listing,
// fetching and pulling through git-remote-relay, with the token in
// RELAY_GIT_TOKEN.
func TestServeCloneFetchPull(t *testing.T) {
	relay := relaytest.NewServer(relaytest.Options{APIKey: "relay-key"})
	defer relay.Close()
	folder := relay.NewFolder(relay.NewRelay())
	must := func(_ string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	logo := pngBytes(1, 3000)
	must(folder.AddMarkdown("/notes/plan.md", "# Plan\n\nÜber 😀\n"))
	must(folder.AddMarkdown("/todo.md", "- [ ] write\n"))
	must(folder.AddFile("/img/logo.png", "image", "image/png", logo))
	f := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}

	srv := startServe(t, relay, "relay-key", t.TempDir(), []*relaytest.Folder{folder},
		"GIT_AUTHOR_NAME=Notes Bot", "GIT_AUTHOR_EMAIL=bot@example.com")
	srv.waitFor(f, "the first snapshot", func(s *store.Snapshot) bool { return len(s.Files) == 3 })

	g := newGitEnv(t, EnvToken+"="+e2eToken)
	work := t.TempDir()
	url := "relay::" + srv.url + "/" + f.String()
	_, stderr, err := g.run(work, "clone", "--progress", url, "notes")
	if err != nil {
		t.Fatalf("clone: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "Importing snapshots: 100% (1/1), done.") {
		t.Errorf("no progress in:\n%s", stderr)
	}
	repo := filepath.Join(work, "notes")
	if b, _ := os.ReadFile(filepath.Join(repo, "notes/plan.md")); string(b) != "# Plan\n\nÜber 😀\n" {
		t.Errorf("plan.md = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(repo, "img/logo.png")); !bytes.Equal(b, logo) {
		t.Errorf("logo.png differs (%d bytes)", len(b))
	}
	// The server's identity, not the one in the user's environment.
	if who := strings.TrimSpace(g.git(repo, "log", "-1", "--format=%an <%ae> | %cn <%ce>")); who != "Notes Bot <bot@example.com> | Notes Bot <bot@example.com>" {
		t.Errorf("identity %q", who)
	}
	if head := strings.TrimSpace(g.git(repo, "symbolic-ref", "HEAD")); head != "refs/heads/main" {
		t.Errorf("HEAD -> %s", head)
	}
	tip1 := revParse(g, repo, "HEAD")

	// git ls-remote, outside any repository.
	out := g.git(work, "ls-remote", url)
	if want := tip1 + "\tHEAD\n" + tip1 + "\trefs/heads/main\n"; out != want && out != tip1+"\trefs/heads/main\n"+tip1+"\tHEAD\n" {
		t.Errorf("ls-remote:\n%s\nwant\n%s", out, want)
	}

	// Edits in Relay: an edit, a rename, a deletion and a new binary file.
	data := pngBytes(2, 5000)
	if err := folder.EditMarkdown("/notes/plan.md", "# Plan\n\nÜber 😀\n\n- more\n"); err != nil {
		t.Fatal(err)
	}
	if err := folder.Rename("/img/logo.png", "/img/brand.png"); err != nil {
		t.Fatal(err)
	}
	if err := folder.Delete("/todo.md"); err != nil {
		t.Fatal(err)
	}
	must(folder.AddFile("/data/blob.bin", "file", "application/octet-stream", data))
	latest := srv.waitFor(f, "the edits", func(s *store.Snapshot) bool {
		return hasFile(s, "data/blob.bin") && hasFile(s, "img/brand.png") && !hasFile(s, "todo.md") && !hasFile(s, "img/logo.png")
	})

	// git fetch brings the new snapshots only: two new blobs (the edit and
	// the binary file; the rename reuses its blob).
	before := srv.blobRequests()
	_, stderr = g.git2(repo, "fetch", "-v")
	n, blobs, objects := fetchStats(t, stderr)
	if want := int(latest.Seq) - 1; n != want {
		t.Errorf("fetch: %d new snapshots, want %d\n%s", n, want, stderr)
	}
	if blobs != 2 {
		t.Errorf("fetch wrote %d blobs, want 2\n%s", blobs, stderr)
	}
	if got := srv.blobRequests() - before; got != 2 {
		t.Errorf("fetch downloaded %d blobs, want 2", got)
	}
	types, total := newestPack(t, g, filepath.Join(repo, ".git"))
	if total != objects || types["commit"] != n || types["blob"] != 2 {
		t.Errorf("new pack: %v (%d objects), helper said %d objects", types, total, objects)
	}
	if c := strings.TrimSpace(g.git(repo, "rev-list", "--count", "origin/main")); c != strconv.FormatUint(latest.Seq, 10) {
		t.Errorf("origin/main has %s commits, want %d", c, latest.Seq)
	}

	// git pull fast-forwards the work tree.
	g.git(repo, "pull", "--ff-only", "-q")
	if b, _ := os.ReadFile(filepath.Join(repo, "data/blob.bin")); !bytes.Equal(b, data) {
		t.Errorf("blob.bin differs")
	}
	if _, err := os.Stat(filepath.Join(repo, "todo.md")); !os.IsNotExist(err) {
		t.Errorf("todo.md still there: %v", err)
	}
	log := g.git(repo, "log", "--name-status", "--format=%s")
	for _, want := range []string{"R100\timg/logo.png\timg/brand.png", "D\ttodo.md", "M\tnotes/plan.md", "A\tdata/blob.bin", "A\tnotes/plan.md"} {
		if !strings.Contains(log, want) {
			t.Errorf("git log --name-status lacks %q:\n%s", want, log)
		}
	}

	// The same ids as internal/history over the same snapshots, and as a
	// clone made now.
	src, err := source.NewHTTP(srv.url, e2eToken)
	if err != nil {
		t.Fatal(err)
	}
	ids := linearIDs(t, src, f)
	src.Close()
	if tip := revParse(g, repo, "HEAD"); tip != ids[len(ids)-1].String() || ids[0].String() != revParse(g, repo, "HEAD~"+strconv.Itoa(len(ids)-1)) {
		t.Errorf("HEAD %s, history.Linear %v", tip, ids)
	}
	g.git(work, "clone", "-q", url, "again")
	if a, b := revParse(g, filepath.Join(work, "again"), "HEAD"), revParse(g, repo, "HEAD"); a != b {
		t.Errorf("a clone made now has %s, the fetched one %s", a, b)
	}
	g.git(repo, "fsck", "--strict", "--no-dangling")

	// Nothing new: fetch is quiet and reads no blobs.
	before = srv.blobRequests()
	g.git(repo, "fetch", "-q")
	if got := srv.blobRequests() - before; got != 0 {
		t.Errorf("an up-to-date fetch downloaded %d blobs", got)
	}

	// git push to a serve without --allow-writes is refused with a message
	// that says why, and writes nothing.
	if err := os.WriteFile(filepath.Join(repo, "local.md"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.git(repo, "add", "local.md")
	g.git(repo, "commit", "-q", "-m", "local")
	if msg := g.mustFail(repo, "push", "origin", "HEAD:main"); !strings.Contains(msg, "writes are off: start serve with --allow-writes") {
		t.Errorf("push: %s", msg)
	}
	if _, ok := folder.Entry("/local.md"); ok || len(relay.WrittenUpdates(folder.RelayID(), folder.ID())) != 0 {
		t.Error("a refused push wrote into Relay")
	}
}

// git2 runs git and fails the test if it fails; it returns stdout and stderr.
func (g *gitEnv) git2(dir string, args ...string) (string, string) {
	g.t.Helper()
	out, errOut, err := g.run(dir, args...)
	if err != nil {
		g.t.Fatalf("git %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out, errOut
}

// TestServeErrors: every failure a user can act on ends with a non-zero exit,
// a message that says what to do, and no half-made repository or refs.
func TestServeErrors(t *testing.T) {
	relay := relaytest.NewServer(relaytest.Options{APIKey: "relay-key"})
	defer relay.Close()
	folder := relay.NewFolder(relay.NewRelay())
	if _, err := folder.AddMarkdown("/a.md", "a\n"); err != nil {
		t.Fatal(err)
	}
	f := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	dataDir := t.TempDir()
	srv := startServe(t, relay, "relay-key", dataDir, []*relaytest.Folder{folder})
	srv.waitFor(f, "the first snapshot", func(*store.Snapshot) bool { return true })
	url := "relay::" + srv.url + "/" + f.String()
	work := t.TempDir()

	noDir := func(name string) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(work, name)); !os.IsNotExist(err) {
			t.Errorf("a failed clone left %s behind", name)
		}
	}
	check := func(name, msg string, wants ...string) {
		t.Helper()
		t.Logf("%s:\n%s", name, msg)
		for _, w := range wants {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message lacks %q:\n%s", name, w, msg)
			}
		}
		noDir(name)
	}

	plain := newGitEnv(t)
	check("no-token", plain.mustFail(work, "clone", url, "no-token"), "needs its read API token", EnvToken)
	check("bad-token", plain.with(EnvToken+"=wrong").mustFail(work, "clone", url, "bad-token"), "rejected the token in "+EnvToken)
	ok := plain.with(EnvToken + "=" + e2eToken)
	check("unknown-folder", ok.mustFail(work, "clone", "relay::"+srv.url+"/"+f.Relay+"/0f8e1c7a-1111-4222-8333-444455556666", "unknown-folder"),
		"does not follow folder")
	check("malformed", ok.mustFail(work, "clone", "relay::not/a/folder", "malformed"), "malformed relay:: URL")
	check("malformed2", ok.mustFail(work, "clone", "relay::ftp://host/"+f.String(), "malformed2"), "unknown scheme")
	check("down", ok.mustFail(work, "clone", "relay::http://127.0.0.1:1/"+f.String(), "down"), "cannot reach http://127.0.0.1:1", "relay-git-sync serve")
	check("locked", ok.mustFail(work, "clone", "relay::"+dataDir+"/"+f.String(), "locked"), "in use", "clone through that server")

	// The short form finds the server in git config relay.url, else in
	// RELAY_GIT_URL.
	ok.with(EnvServerURL+"="+srv.url).git(work, "clone", "-q", "relay::"+f.String(), "short-env")
	cfg := ok.with(EnvServerURL + "=http://127.0.0.1:1")
	cfg.git(work, "config", "--global", "relay.url", srv.url)
	cfg.git(work, "clone", "-q", "relay::"+f.String(), "short-config")
	cfg.git(work, "config", "--global", "--unset", "relay.url")

	// A credential helper holds the token: it is used, and approved.
	creds := filepath.Join(t.TempDir(), "credentials")
	helper := plain
	helper.git(work, "config", "--global", "credential.helper", "store --file="+creds)
	host := strings.TrimPrefix(srv.url, "http://")
	if err := os.WriteFile(creds, []byte("http://relay:"+e2eToken+"@"+host+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	helper.git(work, "clone", "-q", url, "with-helper")
	// A stale token in the helper is rejected (and forgotten); with
	// RELAY_GIT_TOKEN set as well, that one is then tried.
	if err := os.WriteFile(creds, []byte("http://relay:stale@"+host+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("stale", helper.mustFail(work, "clone", url, "stale"), "rejected the token from your git credential helper", "git credential reject", EnvToken)
	if b, _ := os.ReadFile(creds); strings.Contains(string(b), "stale") {
		t.Errorf("the rejected token is still stored: %q", b)
	}
	if err := os.WriteFile(creds, []byte("http://relay:stale@"+host+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	helper.with(EnvToken+"="+e2eToken).git(work, "clone", "-q", url, "stale-then-env")

	// A fetch that fails leaves the refs as they were.
	repo := filepath.Join(work, "short-env")
	before := refs(ok, repo)
	srv.stop()
	if msg := ok.mustFail(repo, "fetch"); !strings.Contains(msg, "cannot reach") {
		t.Errorf("fetch with the server down: %s", msg)
	}
	if after := refs(ok, repo); after != before {
		t.Errorf("refs changed by a failed fetch:\n%s\nwas\n%s", after, before)
	}
	if tmp, _ := filepath.Glob(filepath.Join(repo, ".git/objects/pack/tmp_*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// dataDir builds a data dir whose store holds a generated folder history and
// the given history config.
func newDataDir(t testing.TB, f store.FolderID, seed uint64, snapshots int, cfg history.Config) (dir string, v *vault) {
	t.Helper()
	dir = t.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetHistoryConfig(b); err != nil {
		t.Fatal(err)
	}
	v = newVault(st, f, seed, 40)
	v.grow(t, snapshots)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, v
}

// reopen gives v a store again (the data dir must not be open elsewhere);
// the caller closes it.
func (v *vault) reopen(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v.st = st
	return st
}

var testFolder = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}

// TestDataDirCloneFetch clones straight from a data dir (path and file://
// forms), checks the ids against internal/history and across clones, and
// that a fetch after new snapshots writes only what they add.
func TestDataDirCloneFetch(t *testing.T) {
	cfg := history.Config{Author: history.Identity{Name: "Vault", Email: "vault@example.com"},
		Authors: map[string]history.Identity{"a1b2c3d4-0000-4000-8000-000000000001": {Name: "Ada", Email: "ada@example.com"}}}
	dir, v := newDataDir(t, testFolder, 7, 300, cfg)
	g := newGitEnv(t)
	work := t.TempDir()
	url := "relay::" + dir + "/" + testFolder.String()
	if _, stderr := g.git2(work, "clone", "-q", "--progress", url, "a"); stderr != "" {
		t.Errorf("clone -q printed:\n%s", stderr)
	}
	a := filepath.Join(work, "a")

	st := v.reopen(t, dir)
	ids := linearIDs(t, source.FromStore(st), testFolder)
	st.Close()
	if tip := revParse(g, a, "HEAD"); tip != ids[len(ids)-1].String() {
		t.Fatalf("clone HEAD %s, history.Linear %s", tip, ids[len(ids)-1])
	}
	if got := strings.Fields(g.git(a, "rev-list", "--reverse", "HEAD")); strings.Join(got, " ") != strings.Join(hashStrings(ids), " ") {
		t.Errorf("the clone's commits differ from history.Linear's")
	}
	if who := strings.TrimSpace(g.git(a, "log", "-1", "--format=%an <%ae>")); who != "Vault <vault@example.com>" {
		t.Errorf("author %q", who)
	}
	if log := g.git(a, "log", "--format=%b"); !strings.Contains(log, "Co-authored-by: Ada <ada@example.com>") {
		t.Errorf("no Co-authored-by trailer from the authors map")
	}
	g.git(a, "fsck", "--strict", "--no-dangling")

	// The file:// form and a relative path give the same history.
	g.git(work, "clone", "-q", "relay::file://"+dir+"/"+testFolder.String(), "b")
	rel, err := filepath.Rel(work, dir)
	if err != nil {
		t.Fatal(err)
	}
	g.git(work, "clone", "-q", "relay::"+rel+"/"+testFolder.String(), "c")
	for _, c := range []string{"b", "c"} {
		if tip := revParse(g, filepath.Join(work, c), "HEAD"); tip != ids[len(ids)-1].String() {
			t.Errorf("clone %s: HEAD %s", c, tip)
		}
	}
	// The relative path was made absolute, so fetching from the clone works.
	if u := strings.TrimSpace(g.git(filepath.Join(work, "c"), "config", "remote.origin.url")); u != url {
		t.Errorf("remote.origin.url of the clone from a relative path: %s, want %s", u, url)
	}
	if out := g.git(work, "ls-remote", url); !strings.Contains(out, ids[len(ids)-1].String()+"\trefs/heads/main") {
		t.Errorf("ls-remote: %s", out)
	}

	// 40 more snapshots: fetch writes their commits, their new trees and
	// exactly the blobs that did not exist before.
	st = v.reopen(t, dir)
	known := map[store.BlobID]bool{}
	if err := st.Walk(testFolder, 0, func(s *store.Snapshot) error {
		for _, f := range s.Files {
			known[f.Blob] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	v.grow(t, 40)
	newBlobs := map[store.BlobID]bool{}
	if err := st.Walk(testFolder, 300, func(s *store.Snapshot) error {
		for _, f := range s.Files {
			if !known[f.Blob] {
				newBlobs[f.Blob] = true
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ids = linearIDs(t, source.FromStore(st), testFolder)
	st.Close()
	_, stderr := g.git2(a, "fetch", "-v")
	n, blobs, objects := fetchStats(t, stderr)
	types, total := newestPack(t, g, filepath.Join(a, ".git"))
	if n != 40 || blobs != len(newBlobs) || types["blob"] != len(newBlobs) || types["commit"] != 40 || total != objects {
		t.Errorf("fetch of 40 snapshots: helper %d snapshots %d blobs %d objects; pack %v; %d new blobs", n, blobs, objects, types, len(newBlobs))
	}
	if types["tree"] > 40*6 {
		t.Errorf("fetch wrote %d trees for 40 snapshots", types["tree"])
	}
	if tip := revParse(g, a, "origin/main"); tip != ids[len(ids)-1].String() {
		t.Errorf("after fetch: %s, want %s", tip, ids[len(ids)-1])
	}
	g.git(filepath.Join(work, "c"), "fetch", "-q")
	// Two clones made at different times agree.
	g.git(filepath.Join(work, "b"), "pull", "-q", "--ff-only")
	if x, y := revParse(g, filepath.Join(work, "b"), "HEAD"), revParse(g, a, "origin/main"); x != y {
		t.Errorf("pulled clone %s, fetched clone %s", x, y)
	}
	g.git(a, "fsck", "--strict", "--no-dangling")
}

func hashStrings[T fmt.Stringer](ids []T) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// TestEmptyFolder: a followed folder without snapshots clones as an empty
// repository, as git does, and a later fetch brings its first snapshots.
func TestEmptyFolder(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddFolder(testFolder); err != nil {
		t.Fatal(err)
	}
	st.Close()
	g := newGitEnv(t)
	work := t.TempDir()
	url := "relay::" + dir + "/" + testFolder.String()
	_, stderr := g.git2(work, "clone", url, "empty")
	if !strings.Contains(stderr, "You appear to have cloned an empty repository") {
		t.Errorf("clone of an empty folder:\n%s", stderr)
	}
	repo := filepath.Join(work, "empty")
	if out := g.git(repo, "for-each-ref"); out != "" {
		t.Errorf("refs of an empty clone:\n%s", out)
	}
	st, err = store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	newVault(st, testFolder, 3, 5).grow(t, 3)
	st.Close()
	g.git(repo, "pull", "-q", "origin", "main")
	if c := strings.TrimSpace(g.git(repo, "rev-list", "--count", "HEAD")); c != "3" {
		t.Errorf("%s commits after the first pull", c)
	}
	// An unknown folder of the same data dir is an error.
	if msg := g.mustFail(work, "clone", "relay::"+dir+"/"+testFolder.Relay+"/0f8e1c7a-1111-4222-8333-444455556666", "x"); !strings.Contains(msg, "does not follow folder") {
		t.Errorf("unknown folder: %s", msg)
	}
	if msg := g.mustFail(work, "clone", "relay::"+filepath.Join(dir, "nope")+"/"+testFolder.String(), "y"); !strings.Contains(msg, "does not exist") {
		t.Errorf("missing data dir: %s", msg)
	}
}

// TestHistoryConfigChange: when the server's identity changes, every commit
// id changes; fetch notices that the repository's history is not the
// server's and brings the whole new one (a forced update).
func TestHistoryConfigChange(t *testing.T) {
	dir, v := newDataDir(t, testFolder, 9, 20, history.Config{})
	g := newGitEnv(t)
	work := t.TempDir()
	g.git(work, "clone", "-q", "relay::"+dir+"/"+testFolder.String(), "r")
	repo := filepath.Join(work, "r")
	old := revParse(g, repo, "origin/main")

	st := v.reopen(t, dir)
	if err := st.SetHistoryConfig([]byte(`{"author":{"name":"Renamed","email":"new@example.com"}}`)); err != nil {
		t.Fatal(err)
	}
	v.grow(t, 2)
	ids := linearIDs(t, source.FromStore(st), testFolder)
	st.Close()
	_, stderr := g.git2(repo, "fetch")
	if !strings.Contains(stderr, "(forced update)") {
		t.Errorf("fetch after an identity change:\n%s", stderr)
	}
	if tip := revParse(g, repo, "origin/main"); tip != ids[len(ids)-1].String() || tip == old {
		t.Errorf("origin/main %s, want %s", tip, ids[len(ids)-1])
	}
	if who := strings.TrimSpace(g.git(repo, "log", "-1", "--format=%an", "origin/main")); who != "Renamed" {
		t.Errorf("author %q", who)
	}
	g.git(repo, "fsck", "--strict", "--no-dangling")
}

// TestProtocolOnly runs the helper as git does and checks that its stdout
// is the protocol and nothing else (the store logs, progress goes to
// stderr).
func TestProtocolOnly(t *testing.T) {
	dir, _ := newDataDir(t, testFolder, 11, 5, history.Config{})
	bin := binaries(t)
	gitDir := filepath.Join(t.TempDir(), "repo.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", gitDir).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	cmd := exec.Command(filepath.Join(bin, "git-remote-relay"), "origin", dir+"/"+testFolder.String())
	cmd.Env = []string{"GIT_DIR=" + gitDir, "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Stdin = strings.NewReader("capabilities\noption progress true\noption verbosity 1\noption nonsense 1\nlist\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	want := []string{"fetch", "option", "push", "check-connectivity", "", "ok", "ok", "unsupported"}
	if len(lines) < len(want)+4 || strings.Join(lines[:len(want)], "|") != strings.Join(want, "|") {
		t.Fatalf("stdout:\n%s", stdout.String())
	}
	rest := lines[len(want):]
	if !regexp.MustCompile(`^[0-9a-f]{40} refs/heads/main$`).MatchString(rest[0]) || rest[1] != "@refs/heads/main HEAD" || rest[2] != "" || rest[3] != "" || len(rest) != 4 {
		t.Errorf("list answer: %q", rest)
	}
	if !strings.Contains(stderr.String(), "Importing snapshots: 100% (5/5), done.") {
		t.Errorf("stderr: %q", stderr.String())
	}
	// Not fetched: the pending pack is removed.
	if tmp, _ := filepath.Glob(filepath.Join(gitDir, "objects/pack/*")); len(tmp) > 0 {
		t.Errorf("left in objects/pack: %v", tmp)
	}
}

// TestRebuiltDataDir: the data dir was rebuilt with a shorter, different
// history; fetch does not trip over the repository's last snapshot missing
// and brings the new history.
func TestRebuiltDataDir(t *testing.T) {
	dir, _ := newDataDir(t, testFolder, 21, 30, history.Config{})
	g := newGitEnv(t)
	work := t.TempDir()
	url := "relay::" + dir + "/" + testFolder.String()
	g.git(work, "clone", "-q", url, "r")
	repo := filepath.Join(work, "r")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	dir2, v := newDataDir(t, testFolder, 22, 10, history.Config{})
	if err := os.Rename(dir2, dir); err != nil {
		t.Fatal(err)
	}
	_, stderr := g.git2(repo, "fetch")
	if !strings.Contains(stderr, "(forced update)") {
		t.Errorf("fetch from a rebuilt data dir:\n%s", stderr)
	}
	st := v.reopen(t, dir)
	ids := linearIDs(t, source.FromStore(st), testFolder)
	st.Close()
	if tip := revParse(g, repo, "origin/main"); tip != ids[len(ids)-1].String() {
		t.Errorf("origin/main %s, want %s", tip, ids[len(ids)-1])
	}
}
