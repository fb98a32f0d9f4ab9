package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// TestDemo runs `relay-git-sync demo` as a newcomer would: wait for its
// "Try this" commands, run them with the real git (and the mount where
// FUSE works), check the files, see the live edits arrive by git pull and
// in the mount, stop it with SIGINT and check that nothing is left behind.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs a demo; run without -short")
	}
	bin := t.TempDir()
	for _, c := range []string{"relay-git-sync", "git-remote-relay"} {
		out, err := exec.Command("go", "build", "-tags", "nomsgpack", "-o", filepath.Join(bin, c), "../"+c).CombinedOutput()
		if err != nil {
			t.Fatalf("building %s: %v\n%s", c, err, out)
		}
	}
	work := t.TempDir()
	tmp := t.TempDir() // the demo's TMPDIR, to see what it leaves behind
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+tmp, "HOME="+work,
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	demo := exec.CommandContext(ctx, filepath.Join(bin, "relay-git-sync"), "demo", "--edits-every", "300ms")
	demo.Env, demo.Dir = env, work
	stdout, _ := demo.StdoutPipe()
	var stderr strings.Builder
	demo.Stderr = &stderr
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	defer demo.Process.Kill()

	// Read until the prompt to stop, collecting the suggested commands.
	cmds := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "export RELAY_GIT_TOKEN="):
			cmds["token"] = strings.TrimPrefix(l, "export RELAY_GIT_TOKEN=")
		case strings.HasPrefix(l, "git clone relay::"):
			cmds["relay"] = strings.Fields(l)[2]
		case strings.HasPrefix(l, "git clone /"):
			cmds["mirror"] = strings.Fields(l)[2]
		case strings.Contains(l, "relay-git-sync mount"):
			cmds["mount"] = l[strings.Index(l, "relay-git-sync mount"):]
		}
		if strings.HasPrefix(l, "Press Ctrl-C") {
			break
		}
	}
	if len(cmds) < 4 {
		t.Fatalf("demo printed %v\nstderr:\n%s", cmds, stderr.String())
	}
	go io.Copy(io.Discard, stdout)

	git := func(dir string, extra []string, args ...string) string {
		t.Helper()
		c := exec.Command("git", args...)
		c.Dir, c.Env = dir, append(env, extra...)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	want := map[string]string{
		"Welcome.md":                     "Alice was here.",
		"Projects/plan.md":               "3. Clone with git",
		"Archive/Ideas/brainstorming.md": "straße",
		"attachments/diagram.png":        "\x89PNG",
		"Board.canvas":                   "then the plan",
		"Journal.md":                     "# Journal",
	}
	check := func(dir string) {
		t.Helper()
		for p, frag := range want {
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil || !strings.Contains(string(b), frag) {
				t.Errorf("%s/%s: %v, content %q", filepath.Base(dir), p, err, b)
			}
		}
		for _, p := range []string{"Ideas/todo.md", "Archive/Ideas/todo.md"} {
			if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
				t.Errorf("%s: deleted %s is there", filepath.Base(dir), p)
			}
		}
	}

	token := []string{"RELAY_GIT_TOKEN=" + cmds["token"]}
	notes := filepath.Join(work, "demo-notes")
	git(work, token, "clone", "-q", cmds["relay"], "demo-notes")
	check(notes)
	commits := func() int { return len(strings.Fields(git(notes, nil, "rev-list", "HEAD"))) }
	// The seed and the 7 scripted steps, then live edits.
	first := commits()
	if first < 8 {
		t.Errorf("relay:: clone has %d commits, want the seed and the 7 scripted steps:\n%s", first, git(notes, nil, "log", "--format=%an|%s"))
	}
	// The running demo keeps making snapshots: git pull brings new commits
	// and new lines in Journal.md.
	journal, _ := os.ReadFile(filepath.Join(notes, "Journal.md"))
	for deadline := time.Now().Add(20 * time.Second); ; {
		git(notes, token, "pull", "-q")
		now, _ := os.ReadFile(filepath.Join(notes, "Journal.md"))
		if n := commits(); n > first && len(now) > len(journal) && strings.Contains(string(now), "live edit") {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no new snapshot from the running demo in 20 s: %d commits (first clone %d), Journal.md %q", n, first, now)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The connector pushed the same history.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := exec.Command("git", "clone", "-q", cmds["mirror"], "demo-mirror")
		c.Dir, c.Env = work, env
		if out, err := c.CombinedOutput(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("cloning the mirror: %v\n%s", err, out)
		}
		os.RemoveAll(filepath.Join(work, "demo-mirror"))
		time.Sleep(200 * time.Millisecond)
	}
	check(filepath.Join(work, "demo-mirror"))
	// Same ids: the mirror's head is in the relay:: clone's history.
	mirrorHead := strings.TrimSpace(git(filepath.Join(work, "demo-mirror"), nil, "rev-parse", "HEAD"))
	git(notes, token, "fetch", "-q")
	if c := exec.Command("git", "merge-base", "--is-ancestor", mirrorHead, "origin/main"); func() error { c.Dir, c.Env = notes, env; return c.Run() }() != nil {
		t.Errorf("the mirror's head %s is not in the relay:: clone's history", mirrorHead)
	}

	// The mount, where FUSE is available.
	if _, err := os.Stat("/dev/fuse"); err == nil {
		mnt := filepath.Join(work, "demo-mount")
		os.MkdirAll(mnt, 0o755)
		args := strings.Fields(cmds["mount"])[2:]
		m := exec.Command(filepath.Join(bin, "relay-git-sync"), append([]string{"mount"}, args...)...)
		m.Dir, m.Env = work, append(env, "RELAY_GIT_TOKEN="+cmds["token"])
		var mout strings.Builder
		m.Stdout, m.Stderr = &mout, &mout
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		ok := false
		for i := 0; i < 100 && !ok; i++ {
			if b, err := os.ReadFile(filepath.Join(mnt, "Welcome.md")); err == nil && strings.Contains(string(b), "Alice") {
				ok = true
			} else {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if ok {
			check(mnt)
			// The mount follows the live edits.
			before, _ := os.ReadFile(filepath.Join(mnt, "Journal.md"))
			grew := false
			for i := 0; i < 100 && !grew; i++ {
				time.Sleep(100 * time.Millisecond)
				now, _ := os.ReadFile(filepath.Join(mnt, "Journal.md"))
				grew = len(now) > len(before)
			}
			if !grew {
				t.Errorf("Journal.md in the mount did not change in 10 s: %q", before)
			}
		} else if !regexp.MustCompile(`(?i)fuse|permission`).MatchString(mout.String()) {
			t.Errorf("mount did not show the folder:\n%s", mout.String())
		} else {
			t.Logf("mount unavailable here: %s", mout.String())
		}
		m.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- m.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			m.Process.Kill()
			t.Error("mount did not stop on SIGINT")
		}
		if mounts, _ := os.ReadFile("/proc/mounts"); strings.Contains(string(mounts), mnt) {
			t.Errorf("%s still mounted", mnt)
		}
	}

	demo.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- demo.Wait() }()
	select {
	case err := <-done:
		if err != nil && !strings.Contains(err.Error(), "exit status 130") {
			t.Errorf("demo exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop on SIGINT")
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("demo left %d entries in its TMPDIR", len(left))
	}
	// Its connector is a local path: no SSH key is needed, none is asked for.
	if strings.Contains(stderr.String(), "SSH") {
		t.Errorf("demo warned about SSH:\n%s", stderr.String())
	}
}

// TestDemoKeepsWhatHelpSays: with --data-dir DIR the demo keeps exactly
// what its help lists, and refuses a DIR that holds an earlier demo.
func TestDemoKeepsWhatHelpSays(t *testing.T) {
	t.Parallel()
	testreq.Git(t)
	dir := filepath.Join(t.TempDir(), "demo")
	run := func(ctx context.Context, stdout *syncBuffer) error {
		stderr := &syncBuffer{}
		opts := newGlobalOptions(func(string) string { return "" }, stdout, stderr)
		opts.DataDir = dir
		opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
		err := runDemo(ctx, opts, true, 0)
		if t.Failed() {
			t.Logf("demo stderr:\n%s", stderr)
		}
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, stdout) }()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(stdout.String(), "Press Ctrl-C"); {
		select {
		case err := <-done:
			t.Fatalf("demo ended before it was ready: %v\n%s", err, stdout)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not ready in 60 s:\n%s", stdout)
		}
	}
	if strings.Contains(stdout.String(), "Journal.md every") {
		t.Errorf("--edits-every 0 still announces live edits:\n%s", stdout)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}

	help := newDemoCmd(newGlobalOptions(func(string) string { return "" }, io.Discard, io.Discard)).Long
	list := func(d string) []string {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	for _, tc := range []struct {
		dir, prefix string
		want        []string
	}{
		{dir, "DIR/", []string{"data", "remote.git"}},
		{filepath.Join(dir, "data"), "", []string{"db", "git_connectors.toml", "mirrors"}},
	} {
		got := list(tc.dir)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s holds %q, want %q", tc.dir, got, tc.want)
		}
		for _, name := range got {
			if !strings.Contains(help, tc.prefix+name) {
				t.Errorf("demo --help does not say that %s%s is kept", tc.prefix, name)
			}
		}
	}

	// A second demo in the same DIR would follow the first one's folder.
	if err := run(context.Background(), &syncBuffer{}); err == nil || !strings.Contains(err.Error(), "earlier demo") {
		t.Errorf("second demo in %s: %v, want a refusal naming the earlier demo", dir, err)
	}
}
