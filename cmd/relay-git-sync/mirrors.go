package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/mirror"
	"github.com/relay-git-sync/relay-git-sync/internal/sshkey"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// newMirrors builds the push machinery of serve and sync: every connector
// of the connectors file, the SSH key from SSH_PRIVATE_KEY (kept in
// memory), HTTPS tokens from the environment, and the history config that
// the data dir records (so that pushed commits carry the ids relay:: clones
// see).
func (o *globalOptions) newMirrors(st *store.Store, conns []connectors.Connector, hcfg history.Config) (*mirror.Manager, error) {
	key, keyErr := sshkey.FromEnv(o.getenv)
	if keyErr != nil && !errors.Is(keyErr, sshkey.ErrNotConfigured) {
		o.Logger.Warn("SSH_PRIVATE_KEY is not usable; SSH connectors will fail", "err", keyErr)
	}
	return mirror.New(mirror.Config{
		Store: st, DataDir: o.DataDir, Connectors: conns, History: hcfg,
		SSHKey: key, SSHKeyErr: keyErr, Getenv: o.getenv, Logger: o.Logger,
	})
}

// printPush prints how a push went, one line.
func printPush(w io.Writer, r mirror.Result) {
	target := r.URL + " " + r.Branch
	if r.Prefix != "" {
		target += " (" + r.Prefix + "/)"
	}
	switch {
	case r.Err != nil:
		fmt.Fprintf(w, "  push %s: failed: %v\n", target, r.Err)
	case r.Seq == 0:
		fmt.Fprintf(w, "  push %s: no snapshot yet\n", target)
	case r.UpToDate:
		fmt.Fprintf(w, "  push %s: up to date (snapshot %d, %s)\n", target, r.Seq, short(r.Commit.String()))
	default:
		merged := ""
		if r.Merged {
			merged = ", merged with the branch's own commits"
		}
		fmt.Fprintf(w, "  push %s: pushed %d commit(s) (snapshot %d, %s%s) in %s\n", target, r.Commits, r.Seq, short(r.Commit.String()), merged, r.Took.Round(1e6))
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
