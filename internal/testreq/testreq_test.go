package testreq

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The helper's behaviour is checked in a child process (this test binary,
// running TestChild), since a skip or a failure ends the test it happens in.

const childEnv = "TESTREQ_CHILD"

// TestChild is the child process: it runs the scenario childEnv names.
// Run directly, it does nothing.
func TestChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		return
	case "missing-program":
		Program(t, "relay-git-sync-no-such-program", "it does not exist")
	case "present-program":
		if p := Program(t, "sh", "apt-get install dash"); !filepath.IsAbs(p) {
			t.Errorf("Program(sh) = %q, want an absolute path", p)
		}
	case "program-in-extra-dir":
		if p := Program(t, "fake-sshd", "test", os.Getenv("TESTREQ_DIR")); p != filepath.Join(os.Getenv("TESTREQ_DIR"), "fake-sshd") {
			t.Errorf("Program found %q", p)
		}
	case "no-fuse-device":
		fuse(t, "/nonexistent/fuse", true)
	case "no-fusermount":
		// A user without fusermount3 on PATH cannot mount.
		fuse(t, os.Args[0], false)
	case "fuse-as-root":
		fuse(t, os.Args[0], true)
	default:
		t.Fatalf("unknown scenario %q", os.Getenv(childEnv))
	}
	t.Log("child ran to the end")
}

type outcome string

const (
	passed  outcome = "PASS"
	skipped outcome = "SKIP"
	failed  outcome = "FAIL"
)

// child runs one scenario with CI set to ci and returns what became of it
// and its output.
func child(t *testing.T, scenario, ci string, env ...string) (outcome, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+scenario, "CI="+ci)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	s := string(out)
	switch {
	case strings.Contains(s, "--- SKIP: TestChild"):
		if err != nil {
			t.Fatalf("%s: skipped but exited with %v:\n%s", scenario, err, s)
		}
		return skipped, s
	case strings.Contains(s, "--- FAIL: TestChild"):
		if err == nil {
			t.Fatalf("%s: failed but exited 0:\n%s", scenario, s)
		}
		return failed, s
	case strings.Contains(s, "--- PASS: TestChild") && err == nil:
		return passed, s
	}
	t.Fatalf("%s: cannot tell what happened (exit %v):\n%s", scenario, err, s)
	return "", ""
}

func TestMissingSkipsOnALaptopAndFailsInCI(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fake-sshd"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		scenario string
		env      []string
		missing  bool
		message  string
	}{
		{scenario: "missing-program", missing: true, message: "relay-git-sync-no-such-program is not installed (it does not exist)"},
		{scenario: "present-program"},
		{scenario: "program-in-extra-dir", env: []string{"TESTREQ_DIR=" + dir}},
		{scenario: "no-fuse-device", missing: true, message: "/nonexistent/fuse does not exist"},
		{scenario: "no-fusermount", env: []string{"PATH=" + dir}, missing: true, message: "fusermount3 is not installed"},
		{scenario: "fuse-as-root", env: []string{"PATH=" + dir}},
	} {
		t.Run(c.scenario, func(t *testing.T) {
			t.Parallel()
			for _, ci := range []string{"", "false", "true", "1"} {
				got, out := child(t, c.scenario, ci, c.env...)
				want := passed
				if c.missing {
					want = skipped
					if ci == "true" || ci == "1" {
						want = failed
					}
				}
				if got != want {
					t.Errorf("CI=%q: %s, want %s:\n%s", ci, got, want, out)
					continue
				}
				if c.missing && !strings.Contains(out, c.message) {
					t.Errorf("CI=%q: output does not say %q:\n%s", ci, c.message, out)
				}
				if c.missing && strings.Contains(out, "child ran to the end") {
					t.Errorf("CI=%q: the test went on after the missing part:\n%s", ci, out)
				}
			}
		})
	}
}
