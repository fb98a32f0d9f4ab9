package remotehelper

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
)

// Tokens for the read API come from git's credential system, so that any
// credential helper (cache, store, libsecret, osxkeychain, manager) can hold
// them: `git credential fill` with the server's protocol and host asks the
// configured helpers; the token is the password (the username is not used).
// A token the server accepted is handed back with `git credential approve`
// (helpers that cache or store keep it), one it rejected with `git
// credential reject` (helpers forget it).

// credential is one answer of `git credential fill`.
type credential struct {
	attrs    []string // the fill's answer, as key=value lines, for approve/reject
	password string
}

// credentialQuery returns the protocol and host lines for a server URL.
func credentialQuery(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", err
	}
	q := "protocol=" + u.Scheme + "\nhost=" + u.Host + "\n"
	return q, nil
}

// fillCredential asks git's credential helpers for a token. With interactive
// false, git must not prompt (no terminal, no askpass program): only stored
// or cached credentials count; found is false when no helper has one.
func fillCredential(ctx context.Context, git *gitRunner, server string, interactive bool) (c credential, found bool, err error) {
	q, err := credentialQuery(server)
	if err != nil {
		return c, false, err
	}
	g := *git
	if !interactive {
		// GIT_ASKPASS set but empty disables core.askPass and SSH_ASKPASS
		// too; Git Credential Manager has its own switch.
		g.env = append(append([]string(nil), git.env...), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "GCM_INTERACTIVE=never")
	}
	out, err := g.output(ctx, []byte(q+"\n"), "credential", "fill")
	if err != nil {
		if !interactive {
			return c, false, nil // no helper had one, and git may not ask
		}
		return c, false, fmt.Errorf("asking for a token: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" {
			continue
		}
		c.attrs = append(c.attrs, line)
		if p, ok := strings.CutPrefix(line, "password="); ok {
			c.password = p
		}
	}
	return c, c.password != "", nil
}

// approve tells the credential helpers that c worked (they may store it).
func (c credential) approve(ctx context.Context, git *gitRunner) error {
	return c.send(ctx, git, "approve")
}

// reject tells the credential helpers that c was refused (they forget it).
func (c credential) reject(ctx context.Context, git *gitRunner) error {
	return c.send(ctx, git, "reject")
}

func (c credential) send(ctx context.Context, git *gitRunner, verb string) error {
	var in bytes.Buffer
	for _, a := range c.attrs {
		in.WriteString(a)
		in.WriteByte('\n')
	}
	in.WriteByte('\n')
	_, err := git.output(ctx, in.Bytes(), "credential", verb)
	return err
}
