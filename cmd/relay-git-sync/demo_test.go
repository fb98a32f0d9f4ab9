package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `relay-git-sync demo` as a newcomer would: wait for its
// "Try this" commands, run them with the real git (and the mount where
// FUSE works), check the files, stop it with SIGINT and check that nothing
// is left behind.
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
	demo := exec.CommandContext(ctx, filepath.Join(bin, "relay-git-sync"), "demo")
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
	}
	check := func(dir string) {
		t.Helper()
		for p, frag := range want {
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil || !strings.Contains(string(b), frag) {
				t.Errorf("%s/%s: %v, content %q", filepath.Base(dir), p, err, b)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "Board.canvas")); err == nil {
			t.Errorf("%s: deleted Board.canvas is there", filepath.Base(dir))
		}
	}

	git(work, []string{"RELAY_GIT_TOKEN=" + cmds["token"]}, "clone", "-q", cmds["relay"], "demo-notes")
	check(filepath.Join(work, "demo-notes"))
	if log := git(filepath.Join(work, "demo-notes"), nil, "log", "--format=%an|%s"); len(strings.Split(strings.TrimSpace(log), "\n")) != 7 {
		t.Errorf("relay:: clone history:\n%s", log)
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
	a := git(filepath.Join(work, "demo-notes"), nil, "rev-parse", "HEAD")
	b := git(filepath.Join(work, "demo-mirror"), nil, "rev-parse", "HEAD")
	if a != b {
		t.Errorf("relay:: clone at %s, mirror at %s: want the same commit", a, b)
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
}
