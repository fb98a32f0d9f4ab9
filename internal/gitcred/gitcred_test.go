package gitcred_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/gitcred"
)

// gitWithStore is a git whose only credential helper is `store` over a file
// of its own (HOME and the system config are out of the way).
func gitWithStore(t *testing.T) (gitcred.Git, string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git is not installed: %v", err)
		}
		t.Skipf("git is not installed: %v", err)
	}
	home := t.TempDir()
	creds := filepath.Join(home, "credentials")
	cfg := filepath.Join(home, ".gitconfig")
	if err := os.WriteFile(cfg, []byte("[credential]\n\thelper = store --file="+creds+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+cfg)
	return gitcred.Git{Env: env, Dir: home}, creds
}

func TestFillApproveReject(t *testing.T) {
	ctx := context.Background()
	g, creds := gitWithStore(t)
	const server = "http://127.0.0.1:8000"

	if _, found, err := gitcred.Fill(ctx, g, server, false); found || err != nil {
		t.Fatalf("fill with an empty store: found=%v err=%v, want nothing and no error", found, err)
	}

	// The command the error messages suggest stores a token the helper finds.
	sh := exec.Command("sh", "-c", strings.Replace(gitcred.ApproveCommand(server), "<token>", "s3cret", 1))
	sh.Env, sh.Dir = g.Env, g.Dir
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", gitcred.ApproveCommand(server), err, out)
	}
	c, found, err := gitcred.Fill(ctx, g, server, false)
	if err != nil || !found || c.Password != "s3cret" {
		t.Fatalf("fill after approve: %q found=%v err=%v", c.Password, found, err)
	}
	if _, found, _ := gitcred.Fill(ctx, g, "http://127.0.0.1:8001", false); found {
		t.Error("another port got the token: credentials must be per host and port")
	}

	if err := c.Reject(ctx, g); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(creds); strings.Contains(string(b), "s3cret") {
		t.Fatalf("rejected token still stored: %q", b)
	}
	if err := c.Approve(ctx, g); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(creds); !strings.Contains(string(b), "s3cret") {
		t.Fatalf("approved token not stored: %q", b)
	}
}

func TestQuery(t *testing.T) {
	q, err := gitcred.Query("https://relay.example:8443/base")
	if err != nil || q != "protocol=https\nhost=relay.example:8443\n" {
		t.Errorf("Query = %q, %v", q, err)
	}
	if _, err := gitcred.Query("relay.example"); err == nil {
		t.Error("Query of a URL without scheme: no error")
	}
	if _, err := gitcred.Query("http://u:hunter2@%zz"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Query of a bad URL: %v (must fail without the password)", err)
	}
}

// The read side never takes the write token stored for the same server,
// and the write side never takes the read token.
func TestReadAndWriteTokensApart(t *testing.T) {
	ctx := context.Background()
	g, creds := gitWithStore(t)
	const server = "http://127.0.0.1:8000"
	// The store helper answers with its first matching line: the write
	// token first is the case that matters.
	if err := os.WriteFile(creds, []byte("http://relay-write:w-token@127.0.0.1%3a8000\nhttp://relay:r-token@127.0.0.1%3a8000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, ok, err := gitcred.FillRead(ctx, g, server, false); err != nil || !ok || c.Password != "r-token" {
		t.Errorf("FillRead: %q %v %v, want the read token", c.Password, ok, err)
	}
	if c, ok, err := gitcred.FillAs(ctx, g, server, gitcred.WriteUser, false); err != nil || !ok || c.Password != "w-token" {
		t.Errorf("FillAs write: %q %v %v, want the write token", c.Password, ok, err)
	}
}
