package main

// The read-only commands (snapshots, export, connectors status, inspect)
// never create or lock what they read: a data dir without a store is an
// error that creates nothing, a data dir that `serve` holds is an error that
// names the holder, and --server reads the same snapshots through the running
// serve's read API.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// buildRelayGitSync builds the relay-git-sync binary into a temporary
// directory.
func buildRelayGitSync(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go tool to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "relay-git-sync")
	if out, err := exec.Command(goTool, "build", "-tags", "nomsgpack", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the binary: %v\n%s", err, out)
	}
	return bin
}

// startServeBinary runs `relay-git-sync serve` on dataDir as its own
// process, waits until it answers /health, and stops it with SIGTERM at
// cleanup.
func startServeBinary(t *testing.T, bin string, srv *relaytest.Server, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--data-dir", dataDir, "serve", "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Env = append(os.Environ(),
		"RELAY_SERVER_URL="+srv.URL(), "RELAY_SERVER_API_KEY="+fakeRelayKey,
		"WEBHOOK_SECRET="+newWhsec(t), "RELAY_GIT_API_TOKEN="+testAPIToken)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	must(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer on %s within 30s", base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReadOnlyCommandsWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs serve (skipped with -short)")
	}
	bin := buildRelayGitSync(t)
	srv := relaytest.NewServer(relaytest.Options{APIKey: fakeRelayKey})
	defer srv.Close()
	f := srv.NewFolder(srv.NewRelay())
	_, err := f.AddMarkdown("/notes/plan.md", "# Plan\nÜber 😀\n")
	must(t, err)
	_, err = f.AddFile("/img/logo.png", "image", "image/png", []byte("\x89PNG\x00\x01"))
	must(t, err)
	dataDir := t.TempDir()
	env := map[string]string{"RELAY_SERVER_URL": srv.URL(), "RELAY_SERVER_API_KEY": fakeRelayKey, "RELAY_GIT_DATA_DIR": dataDir}
	folderArg := f.RelayID() + "/" + f.ID()
	_, _, _, err = execute(t, env, "sync", "--relay-id", f.RelayID(), "--folder-id", f.ID())
	must(t, err)
	must(t, f.EditMarkdown("/notes/plan.md", "# Plan v2\n"))
	must(t, f.Rename("/img/logo.png", "/img/brand.png"))
	_, _, _, err = execute(t, env, "sync", "--relay-id", f.RelayID(), "--folder-id", f.ID())
	must(t, err)

	// What the data dir gives, with nothing holding it.
	exports := []struct {
		name string
		args []string
	}{
		{"latest", nil},
		{"first.tar", []string{"--snapshot", "1"}},
		{"first.tar.gz", []string{"--snapshot", "1"}},
		{"latest.zip", []string{"--at", "2999-01-01T00:00:00Z"}},
	}
	fromDir := t.TempDir()
	runReads := func(env map[string]string, outDir string, extra ...string) (list, listJSON string) {
		t.Helper()
		_, list, _, err := execute(t, env, append([]string{"snapshots", folderArg}, extra...)...)
		must(t, err)
		_, listJSON, _, err = execute(t, env, append([]string{"snapshots", folderArg, "--json"}, extra...)...)
		must(t, err)
		for _, e := range exports {
			args := append([]string{"export", folderArg, "--output", filepath.Join(outDir, e.name)}, e.args...)
			if _, _, _, err := execute(t, env, append(args, extra...)...); err != nil {
				t.Fatalf("export %s: %v", e.name, err)
			}
		}
		return list, listJSON
	}
	list, listJSON := runReads(env, fromDir)
	if n := strings.Count(list, "\n"); n != 3 {
		t.Fatalf("snapshots from the data dir: %d lines, want a header and 2:\n%s", n, list)
	}

	// Mistakes in the export's arguments are refused before anything is read.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--output", filepath.Join(fromDir, "x.7z")}, "cannot write .7z files"},
		{[]string{"--output", filepath.Join(fromDir, "x.tar.bz2")}, "cannot write .tar.bz2 files"},
		{[]string{"--output", filepath.Join(fromDir, "x"), "--snapshot", "0"}, "--snapshot 0: snapshots are numbered from 1"},
	} {
		_, _, _, err := execute(t, env, append([]string{"export", folderArg}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("export %v: %v, want %q", c.args, err, c.want)
		}
	}

	serve, base := startServeBinary(t, bin, srv, dataDir)

	// The data dir is held: each read-only command says by what, and what to do.
	holder := fmt.Sprintf("data dir %s is in use by `relay-git-sync serve` (pid %d): pass --server URL", dataDir, serve.Process.Pid)
	refused := filepath.Join(t.TempDir(), "refused.tar")
	for _, args := range [][]string{
		{"snapshots", folderArg},
		{"export", folderArg, "--output", refused},
	} {
		_, _, _, err := execute(t, env, args...)
		if err == nil || !strings.Contains(err.Error(), holder) {
			t.Errorf("%s while serve runs: %v\nwant %q", args[0], err, holder)
		}
	}
	if _, err := os.Lstat(refused); err == nil {
		t.Errorf("a refused export left %s", refused)
	}
	_, out, _, err := execute(t, env, "connectors", "status")
	if err == nil {
		t.Errorf("connectors status without serve's status file succeeded:\n%s", out)
	} else if !strings.Contains(err.Error(), "in use by `relay-git-sync serve` (pid "+strconv.Itoa(serve.Process.Pid)+")") {
		t.Errorf("connectors status while serve runs: %v", err)
	}

	// Through the server, by flag and by RELAY_GIT_URL, the very same output.
	withToken := map[string]string{"RELAY_GIT_DATA_DIR": dataDir, "RELAY_GIT_TOKEN": testAPIToken}
	byEnv := map[string]string{"RELAY_GIT_DATA_DIR": dataDir, "RELAY_GIT_TOKEN": testAPIToken, "RELAY_GIT_URL": base}
	for name, c := range map[string]struct {
		env   map[string]string
		extra []string
	}{
		"--server":      {withToken, []string{"--server", base}},
		"RELAY_GIT_URL": {byEnv, nil},
	} {
		outDir := t.TempDir()
		gotList, gotJSON := runReads(c.env, outDir, c.extra...)
		if gotList != list {
			t.Errorf("%s: snapshots:\n%s\nfrom the data dir:\n%s", name, gotList, list)
		}
		if gotJSON != listJSON {
			t.Errorf("%s: snapshots --json:\n%s\nfrom the data dir:\n%s", name, gotJSON, listJSON)
		}
		for _, e := range exports {
			got, want := filepath.Join(outDir, e.name), filepath.Join(fromDir, e.name)
			if g, w := readExport(t, got), readExport(t, want); !equalMaps(g, w) || len(w) != 2 {
				t.Errorf("%s: export %s = %v, from the data dir %v", name, e.name, g, w)
			}
			if !strings.HasSuffix(e.name, "latest") && !sameFile(t, got, want) {
				t.Errorf("%s: export %s differs from the data dir's byte for byte", name, e.name)
			}
		}
	}

	// Without RELAY_GIT_TOKEN the token comes from git's credential helper.
	gitconfig := filepath.Join(t.TempDir(), "gitconfig")
	must(t, os.WriteFile(gitconfig, []byte("[credential]\n\thelper = \"!f() { echo username=relay; echo password="+testAPIToken+"; }; f\"\n"), 0o644))
	t.Setenv("GIT_CONFIG_GLOBAL", gitconfig)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	_, gotList, _, err := execute(t, map[string]string{"RELAY_GIT_URL": base}, "snapshots", folderArg)
	if err != nil || gotList != list {
		t.Errorf("snapshots with the token from git's credential helper: %v\n%s", err, gotList)
	}

	// A wrong token says which variable to set.
	_, _, _, err = execute(t, map[string]string{"RELAY_GIT_TOKEN": "wrong", "RELAY_GIT_URL": base}, "snapshots", folderArg)
	if err == nil || !strings.Contains(err.Error(), "RELAY_GIT_TOKEN") {
		t.Errorf("snapshots with a wrong token: %v", err)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	must(t, err)
	y, err := os.ReadFile(b)
	must(t, err)
	return bytes.Equal(x, y)
}

// A mistyped --data-dir (one that does not exist, or an empty directory)
// gets an error from every read-only command and stays as it was.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	ydoc := filepath.Join(t.TempDir(), "empty.ydoc")
	must(t, os.WriteFile(ydoc, []byte{0, 0}, 0o644)) // an empty Yjs update
	folderArg := "6ba7b810-9dad-11d1-80b4-00c04fd430c8/f47ac10b-58cc-4372-a567-0e02b2c3d479"
	for _, kind := range []string{"missing", "empty", "empty db"} {
		t.Run(kind, func(t *testing.T) {
			parent := t.TempDir()
			dataDir := filepath.Join(parent, "data")
			switch kind {
			case "empty":
				must(t, os.Mkdir(dataDir, 0o755))
			case "empty db":
				must(t, os.MkdirAll(filepath.Join(dataDir, storeDirName), 0o755))
			}
			before := tree(t, parent)
			env := map[string]string{"RELAY_GIT_DATA_DIR": dataDir}
			out := filepath.Join(parent, "out.tar")
			for _, args := range [][]string{
				{"snapshots", folderArg},
				{"snapshots", folderArg, "--json"},
				{"export", folderArg, "--output", out},
				{"connectors", "status"},
			} {
				_, _, _, err := execute(t, env, args...)
				if want := "no snapshot store at " + dataDir + " "; err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%v: %v, want %q", args, err, want)
				}
			}
			if _, stdout, _, err := execute(t, env, "inspect", "ydoc", ydoc); err != nil || strings.TrimSpace(stdout) != "{}" {
				t.Errorf("inspect ydoc: %v %q", err, stdout)
			}
			if after := tree(t, parent); after != before {
				t.Errorf("the read-only commands changed the data dir's parent:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// The reading commands leave a data dir's store byte for byte as it was
// (Badger opened read-only: no new memtable or value log, no flush or
// compaction at close).
func TestReadOnlyCommandsChangeNoByte(t *testing.T) {
	dataDir := t.TempDir()
	st, err := store.Open(filepath.Join(dataDir, storeDirName), store.Options{})
	must(t, err)
	f := store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
	id, err := st.PutBlob([]byte("# A\n"), store.BlobID{})
	must(t, err)
	_, err = st.AddSnapshot(&store.Snapshot{Folder: f, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Files: []store.File{{Path: "a.md", Blob: id, Size: 4, DocID: "d", Kind: "markdown"}}}, nil, nil)
	must(t, err)
	must(t, st.Close())
	contents := func() string {
		var b strings.Builder
		must(t, filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			fmt.Fprintf(&b, "%s %d %x\n", p, len(data), data)
			return err
		}))
		return b.String()
	}
	before := contents()
	env := map[string]string{"RELAY_GIT_DATA_DIR": dataDir}
	folderArg := f.Relay + "/" + f.Folder
	for _, args := range [][]string{
		{"snapshots", folderArg},
		{"snapshots", folderArg, "--json"},
		{"export", folderArg, "--output", filepath.Join(t.TempDir(), "out.tar")},
		{"connectors", "status"},
		{"backup", "--output", filepath.Join(t.TempDir(), "b.backup")},
	} {
		if _, _, _, err := execute(t, env, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if contents() != before {
		t.Error("the read-only commands changed the data dir's store")
	}
}

// tree lists everything under dir, one path a line.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel + "\n")
		return nil
	})
	must(t, err)
	return b.String()
}

// The holder of a data dir's lock is named from the pid Badger writes into
// db/LOCK and the process's command line, without its flags.
func TestLockHolder(t *testing.T) {
	root := newRootCmd(newGlobalOptions(func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{}))
	db := t.TempDir()
	if got := lockHolder(root, db); got != "another process" {
		t.Errorf("no LOCK file: %q", got)
	}
	lock := filepath.Join(db, "LOCK")
	must(t, os.WriteFile(lock, []byte("garbage\n"), 0o644))
	if got := lockHolder(root, db); got != "another process" {
		t.Errorf("LOCK without a pid: %q", got)
	}
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc on this system")
	}
	// A relay-git-sync serve with a secret among its flags (sh named so,
	// sleeping).
	sh, err := exec.LookPath("sh")
	must(t, err)
	fake := &exec.Cmd{Path: sh, Args: []string{"relay-git-sync", "-c", "sleep 30", "--relay-server-api-key", "s3cret", "--data-dir", "/x", "serve", "--port", "8001"}}
	must(t, fake.Start())
	t.Cleanup(func() { fake.Process.Kill(); fake.Wait() })
	// Start returns once execve has begun; the new argv shows in
	// /proc/PID/cmdline only after the kernel has set up the new stack.
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", fake.Process.Pid)); len(b) > 0 {
			break
		}
		if i == 500 {
			t.Fatal("the fake serve's command line never appeared in /proc")
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, os.WriteFile(lock, []byte(strconv.Itoa(fake.Process.Pid)+"\n"), 0o644))
	if got, want := lockHolder(root, db), fmt.Sprintf("`relay-git-sync serve` (pid %d)", fake.Process.Pid); got != want {
		t.Errorf("holder = %q, want %q", got, want)
	}
	must(t, os.WriteFile(lock, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644))
	if got, want := lockHolder(root, db), fmt.Sprintf("`%s` (pid %d)", filepath.Base(os.Args[0]), os.Getpid()); got != want {
		t.Errorf("holder = %q, want %q", got, want)
	}
}
