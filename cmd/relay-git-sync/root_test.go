package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"
)

// execute runs the command tree with a fake environment and returns the
// resolved options, stdout, stderr and the error.
func execute(t *testing.T, env map[string]string, args ...string) (*globalOptions, string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	opts := newGlobalOptions(func(k string) string { return env[k] }, &stdout, &stderr)
	root := newRootCmd(opts)
	// probe stands in for a real command so resolution can be observed.
	root.AddCommand(&cobra.Command{Use: "probe", RunE: func(*cobra.Command, []string) error { return nil }})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return opts, stdout.String(), stderr.String(), err
}

func TestGlobalOptionsResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		env                  map[string]string
		args                 []string
		dataDir, gitConfig   string
		serverURL, serverKey string
	}{
		{
			name:      "defaults",
			args:      []string{"probe"},
			dataDir:   ".",
			gitConfig: "git_connectors.toml",
		},
		{
			name:      "env data dir moves the connectors file with it",
			env:       map[string]string{envDataDir: "/data"},
			args:      []string{"probe"},
			dataDir:   "/data",
			gitConfig: filepath.Join("/data", "git_connectors.toml"),
		},
		{
			name:      "flag beats env",
			env:       map[string]string{envDataDir: "/data", envRelayServerURL: "http://env", envRelayServerAPIKey: "envkey"},
			args:      []string{"--data-dir", "/flag", "--relay-server-url", "http://flag", "--relay-server-api-key", "flagkey", "probe"},
			dataDir:   "/flag",
			gitConfig: filepath.Join("/flag", "git_connectors.toml"),
			serverURL: "http://flag",
			serverKey: "flagkey",
		},
		{
			name:      "server settings from env",
			env:       map[string]string{envRelayServerURL: "http://relay:8080", envRelayServerAPIKey: "k"},
			args:      []string{"probe"},
			dataDir:   ".",
			gitConfig: "git_connectors.toml",
			serverURL: "http://relay:8080",
			serverKey: "k",
		},
		{
			name:      "explicit connectors file is kept",
			env:       map[string]string{envDataDir: "/data"},
			args:      []string{"--git-config-file", "/etc/conn.toml", "probe"},
			dataDir:   "/data",
			gitConfig: "/etc/conn.toml",
		},
		{
			name:      "empty env counts as unset",
			env:       map[string]string{envDataDir: ""},
			args:      []string{"probe"},
			dataDir:   ".",
			gitConfig: "git_connectors.toml",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts, _, stderr, err := execute(t, tc.env, tc.args...)
			if err != nil {
				t.Fatalf("execute %v: %v (stderr %q)", tc.args, err, stderr)
			}
			got := [4]string{opts.DataDir, opts.GitConfigFile, opts.RelayServerURL, opts.RelayServerAPIKey}
			want := [4]string{tc.dataDir, tc.gitConfig, tc.serverURL, tc.serverKey}
			if got != want {
				t.Errorf("resolved (dataDir, gitConfig, url, key) = %q, want %q", got, want)
			}
			if opts.Logger == nil {
				t.Error("Logger not set after resolve")
			}
		})
	}
}

func TestEmptyFlagValuesRejected(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"--data-dir", "--git-config-file"} {
		_, _, _, err := execute(t, nil, flag, "", "probe")
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s \"\": err = %v, want an error naming the flag", flag, err)
		}
	}
}

func TestHelpDoesNotShowAPIKey(t *testing.T) {
	t.Parallel()
	_, stdout, _, err := execute(t, map[string]string{envRelayServerAPIKey: "s3cret-key"}, "--help")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, "s3cret-key") {
		t.Errorf("--help output contains the API key from the environment:\n%s", stdout)
	}
}

func TestGroupWithoutSubcommandFails(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"inspect"}} {
		_, _, stderr, err := execute(t, nil, args...)
		if err == nil || !strings.Contains(err.Error(), "missing") {
			t.Errorf("args %q: err = %v, want a missing-command error", args, err)
		}
		if !strings.Contains(stderr, "Usage:") {
			t.Errorf("args %q: usage not printed on stderr; stderr = %q", args, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		_, stdout, _, err := execute(t, nil, args...)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		for _, want := range []string{"relay-git-sync dev\n", runtime.Version()} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%q: output %q lacks %q", args, stdout, want)
			}
		}
	}
	// -v stays --verbose.
	if opts, stdout, _, err := execute(t, nil, "-v", "probe"); err != nil || !opts.Verbose || stdout != "" {
		t.Errorf("-v probe: verbose %v, stdout %q, err %v; want verbose and nothing printed", opts.Verbose, stdout, err)
	}
}

func TestFromBuildInfo(t *testing.T) {
	t.Parallel()
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "07f5942d5c0b6a1f8a3e1e4b0c8f2a9d6e3b7c11"
	tests := []struct {
		name              string
		link              string
		bi                *debug.BuildInfo
		version, revision string
	}{
		{"no build info", "dev", nil, "dev", ""},
		{"go install module@version", "dev",
			&debug.BuildInfo{Main: debug.Module{Path: "github.com/relay-git-sync/relay-git-sync", Version: "v1.2.3"}},
			"v1.2.3", ""},
		{"go build in a clean checkout", "dev",
			&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202131833-07f5942d5c0b"}, Settings: vcs(rev, "false")},
			"v0.0.0-20261202131833-07f5942d5c0b", rev},
		{"go build in a modified checkout", "dev",
			&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202131833-07f5942d5c0b+dirty"}, Settings: vcs(rev, "true")},
			"v0.0.0-20261202131833-07f5942d5c0b+dirty", rev + " (modified)"},
		{"devel build outside a module version", "dev",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")},
			"dev", rev},
		{"linker flag wins", "v2.0.0",
			&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: vcs(rev, "false")},
			"v2.0.0", rev},
	}
	for _, tc := range tests {
		v, r := fromBuildInfo(tc.link, tc.bi)
		if v != tc.version || r != tc.revision {
			t.Errorf("%s: fromBuildInfo = (%q, %q), want (%q, %q)", tc.name, v, r, tc.version, tc.revision)
		}
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cause, err error
		service    bool
		code       int
		stderr     string
	}{
		{"success", nil, nil, false, 0, ""},
		{"error on one line", nil, errors.New("unknown command \"x\"\n\nDid you mean this?\n\ty\n"), false, 1,
			"relay-git-sync: unknown command \"x\" Did you mean this? y\n"},
		{"ctrl-c", interruptedError{os.Interrupt}, fmt.Errorf("sync: %w", context.Canceled), false, 130, ""},
		{"sigterm", interruptedError{syscall.SIGTERM}, nil, false, 143, ""},
		{"failure during interrupt is still reported", interruptedError{os.Interrupt}, errors.New("flush: disk full"), false, 130,
			"relay-git-sync: flush: disk full\n"},
		{"service stopped by sigterm", interruptedError{syscall.SIGTERM}, nil, true, 0, ""},
		{"service stopped by ctrl-c", interruptedError{os.Interrupt}, fmt.Errorf("serve: %w", context.Canceled), true, 0, ""},
		{"service failing to stop", interruptedError{syscall.SIGTERM}, errors.New("unmount: device busy"), true, 1,
			"relay-git-sync: unmount: device busy\n"},
		{"service failing without a signal", nil, errors.New("listening on port 80: permission denied"), true, 1,
			"relay-git-sync: listening on port 80: permission denied\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			if code := exitCode(tc.cause, tc.err, tc.service, &stderr); code != tc.code {
				t.Errorf("exit code = %d, want %d", code, tc.code)
			}
			if stderr.String() != tc.stderr {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}

func TestServeFlagOutsideServe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		hint string // "" = no hint expected
	}{
		{[]string{"--port", "8000"}, "did you mean `relay-git-sync serve --port …`?"},
		{[]string{"--commit-interval=5"}, "did you mean `relay-git-sync serve --commit-interval …`?"},
		{[]string{"--insecure-no-webhook-auth"}, "did you mean `relay-git-sync serve --insecure-no-webhook-auth`?"},
		{[]string{"snapshots", "--webhook-secret", "x"}, "did you mean `relay-git-sync serve --webhook-secret …`?"},
		{[]string{"--no-such-flag"}, ""},
		{[]string{"serve", "--no-such-flag"}, ""},
	}
	for _, tc := range tests {
		_, _, _, err := execute(t, nil, tc.args...)
		if err == nil {
			t.Errorf("%q: no error", tc.args)
			continue
		}
		if !strings.HasPrefix(err.Error(), "unknown flag: --") {
			t.Errorf("%q: err = %q, want pflag's unknown flag message first", tc.args, err)
		}
		if tc.hint == "" {
			if strings.Contains(err.Error(), "did you mean") {
				t.Errorf("%q: err = %q, want no hint", tc.args, err)
			}
			continue
		}
		if !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%q: err = %q, want it to contain %q", tc.args, err, tc.hint)
		}
	}
}
