// Package testreq checks the prerequisites of tests that run against real
// parts — git, sshd, FUSE, node with the yjs oracle, python3, Chromium,
// nats-server — and decides what a missing one means.
//
// On a developer's machine a missing part skips the test with what to
// install. Under CI (CI=true, as GitHub Actions and .ci/run set it) it fails
// the test instead: a CI machine that lacks a part must not pass by
// skipping what it was meant to check. .ci/run installs every part.
//
// Only a missing part is reported this way. A part that is there but fails
// (a FUSE mount that is refused, git exiting non-zero) is the test's own
// failure.
package testreq

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// InCI reports whether the tests run under CI: CI is set to a true value
// ("true", "1", …).
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Missing reports that a prerequisite of the test is missing: t.Skip on a
// developer's machine, t.Fatal under CI. what says what is missing and how
// to install it.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing, and CI must run this test: %s", what)
	}
	t.Skipf("skipped, prerequisite missing: %s (under CI=true this fails)", what)
}

// Program returns the path of the program name, looked up in PATH and then
// in the extra directories dirs (for programs such as sshd that live in an
// sbin directory outside an ordinary user's PATH). If it is nowhere, the
// test is skipped or failed as Missing says; install tells how to get it.
func Program(t testing.TB, name, install string, dirs ...string) string {
	t.Helper()
	p, err := lookPath(name, dirs...)
	if err != nil {
		Missing(t, fmt.Sprintf("%s is not installed (%s)", name, install))
	}
	return p
}

func lookPath(name string, dirs ...string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, d := range dirs {
		c := filepath.Join(d, name)
		if fi, serr := os.Stat(c); serr == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", err
}

// Git returns the path of git.
func Git(t testing.TB) string {
	t.Helper()
	return Program(t, "git", "apt-get install git")
}

// SSHD returns the path of the OpenSSH server.
func SSHD(t testing.TB) string {
	t.Helper()
	return Program(t, "sshd", "apt-get install openssh-server", "/usr/sbin", "/usr/local/sbin", "/sbin")
}

// Python3 returns the path of python3.
func Python3(t testing.TB) string {
	t.Helper()
	return Program(t, "python3", "apt-get install python3")
}

// Node returns the path of node.
func Node(t testing.TB) string {
	t.Helper()
	return Program(t, "node", "apt-get install nodejs npm, or node >= 18 from nodejs.org")
}

// NATSServer returns the path of nats-server 2.11 or later: older
// servers cannot hold a replicated store (natsstore refuses them), and the
// tests run the clustered backend.
func NATSServer(t testing.TB) string {
	t.Helper()
	const install = "go install github.com/nats-io/nats-server/v2@v2.15.2, into a directory in PATH"
	p := Program(t, "nats-server", install)
	out, err := exec.Command(p, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", p, err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(string(out), "nats-server: v")), "%d.%d", &major, &minor); err != nil {
		t.Fatalf("%s --version printed %q: want \"nats-server: vMAJOR.MINOR.PATCH\"", p, out)
	}
	if major < 2 || major == 2 && minor < 11 {
		Missing(t, fmt.Sprintf("%s is %s; the tests need nats-server 2.11 or later (%s)", p, strings.TrimSpace(string(out)), install))
	}
	return p
}

// Chromium returns the path of an installed Chromium (or Chrome) for
// browser tests; tests run it headless.
func Chromium(t testing.TB) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(t, "chromium is not installed (apt-get install --no-install-recommends chromium)")
	return ""
}

// Go returns the path of the go tool, for tests that build binaries: the
// one in PATH, else the one of the toolchain running the test.
func Go(t testing.TB) string {
	t.Helper()
	dirs := []string{}
	if root := os.Getenv("GOROOT"); root != "" {
		dirs = append(dirs, filepath.Join(root, "bin"))
	}
	name := "go"
	if runtime.GOOS == "windows" {
		name = "go.exe"
	}
	return Program(t, name, "install Go from go.dev/dl", dirs...)
}

// YjsOracle returns the directory of the yjs oracle (tools/yjsoracle, with
// its node_modules installed), found from the test's working directory
// upwards, and checks that node is there to run it.
func YjsOracle(t testing.TB) string {
	t.Helper()
	Node(t)
	dir, err := findUp("tools/yjsoracle")
	if err != nil {
		t.Fatalf("testreq: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "yjs")); err != nil {
		Missing(t, fmt.Sprintf("the yjs oracle's packages are not installed (run `npm ci --prefix %s`)", dir))
	}
	return dir
}

// findUp returns the absolute path of rel in the working directory or the
// nearest directory above it that has it.
func findUp(rel string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%s not found in %s or any directory above it", rel, wd)
		}
	}
}

// FUSE checks that this machine can mount FUSE file systems: /dev/fuse
// exists and, unless the test runs as root (which mounts directly), a
// fusermount helper is installed. It does not try a mount: once these are
// there, a mount that fails — refused permission included — is a failure of
// the test, never a reason to skip it.
func FUSE(t testing.TB) {
	t.Helper()
	fuse(t, "/dev/fuse", os.Geteuid() == 0)
}

func fuse(t testing.TB, dev string, root bool) {
	t.Helper()
	if _, err := os.Stat(dev); errors.Is(err, os.ErrNotExist) {
		Missing(t, fmt.Sprintf("%s does not exist (load the fuse module with modprobe fuse; in a container, run it with --device /dev/fuse --cap-add SYS_ADMIN)", dev))
		return
	} else if err != nil {
		t.Fatalf("testreq: FUSE device: %v", err)
	}
	if root {
		return
	}
	if _, err := lookPath("fusermount3"); err == nil {
		return
	}
	if _, err := lookPath("fusermount"); err == nil {
		return
	}
	Missing(t, "fusermount3 is not installed; mounting FUSE as a user needs it (apt-get install fuse3)")
}
