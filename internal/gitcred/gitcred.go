// Package gitcred keeps read API tokens in git's credential system, so that
// any credential helper (cache, store, libsecret, osxkeychain, manager) can
// hold them: `git credential fill` with the server's protocol and host asks
// the configured helpers, and the token is the password (the username is not
// used). A token the server accepted is handed back with `git credential
// approve` (helpers that cache or store keep it), one it rejected with `git
// credential reject` (helpers forget it).
package gitcred

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
)

// Git says how to run git: its environment (nil: this process's) and
// working directory ("" : this process's).
type Git struct {
	Env []string
	Dir string
}

// Credential is one answer of `git credential fill`.
type Credential struct {
	attrs    []string // the fill's answer, as key=value lines, for approve/reject
	Password string   // the token
}

// Query returns the `protocol=` and `host=` lines that name a server's
// credential, for its base URL.
func Query(serverURL string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return "", fmt.Errorf("server URL: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("server URL %q: want scheme://host[:port]", u.Redacted())
	}
	return "protocol=" + u.Scheme + "\nhost=" + u.Host + "\n", nil
}

// ApproveCommand is the shell command a user runs to store a token for
// serverURL with their credential helper.
func ApproveCommand(serverURL string) string {
	q, _ := Query(serverURL)
	return "printf '" + strings.ReplaceAll(q, "\n", `\n`) + `username=` + ReadUser + `\npassword=<token>\n' | git credential approve`
}

// Fill asks git's credential helpers for the token of serverURL. With
// interactive false git must not prompt (no terminal, no askpass program):
// only stored or cached credentials count, and found is false when no helper
// has one.
func Fill(ctx context.Context, g Git, serverURL string, interactive bool) (c Credential, found bool, err error) {
	return FillAs(ctx, g, serverURL, "", interactive)
}

// WriteUser is the user name the write token is stored under, so that a
// credential helper keeps it apart from the read token of the same server.
const WriteUser = "relay-write"

// FillRead is Fill for the read token: a credential stored under
// WriteUser (the write token, for pushes) is never taken for it, so it is
// neither sent as the read token nor rejected as one.
func FillRead(ctx context.Context, g Git, serverURL string, interactive bool) (Credential, bool, error) {
	c, ok, err := Fill(ctx, g, serverURL, interactive)
	if ok && c.User() == WriteUser {
		return FillAs(ctx, g, serverURL, ReadUser, interactive)
	}
	return c, ok, err
}

// ReadUser is the user name ApproveCommand stores the read token under.
const ReadUser = "relay"

// User is the user name the credential is stored under ("" when none).
func (c Credential) User() string {
	for _, a := range c.attrs {
		if u, ok := strings.CutPrefix(a, "username="); ok {
			return u
		}
	}
	return ""
}

// FillAs is Fill for the credential of a given user name ("" = any).
func FillAs(ctx context.Context, g Git, serverURL, user string, interactive bool) (c Credential, found bool, err error) {
	q, err := Query(serverURL)
	if err != nil {
		return c, false, err
	}
	if user != "" {
		q += "username=" + user + "\n"
	}
	if !interactive {
		// GIT_ASKPASS set but empty disables core.askPass and SSH_ASKPASS
		// too; Git Credential Manager has its own switch.
		g.Env = append(g.environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "GCM_INTERACTIVE=never")
	}
	out, err := g.credential(ctx, "fill", q+"\n")
	if err != nil {
		if !interactive {
			return c, false, nil // no helper had one, and git may not ask
		}
		return c, false, fmt.Errorf("asking for a token: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		c.attrs = append(c.attrs, line)
		if p, ok := strings.CutPrefix(line, "password="); ok {
			c.Password = p
		}
	}
	return c, c.Password != "", nil
}

// Approve tells the credential helpers that c worked (they may store it).
func (c Credential) Approve(ctx context.Context, g Git) error {
	_, err := g.credential(ctx, "approve", strings.Join(c.attrs, "\n")+"\n\n")
	return err
}

// Reject tells the credential helpers that c was refused (they forget it).
func (c Credential) Reject(ctx context.Context, g Git) error {
	_, err := g.credential(ctx, "reject", strings.Join(c.attrs, "\n")+"\n\n")
	return err
}

func (g Git) environ() []string {
	if g.Env == nil {
		return exec.Command("git").Environ()
	}
	return append([]string(nil), g.Env...)
}

// credential runs `git credential VERB` with input on stdin.
func (g Git) credential(ctx context.Context, verb, input string) (string, error) {
	c := exec.CommandContext(ctx, "git", "credential", verb)
	c.Env, c.Dir = g.Env, g.Dir
	c.Stdin = strings.NewReader(input)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("git credential %s: %w: %s", verb, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
