package remotehelper

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/relay-git-sync/relay-git-sync/internal/gitcred"
	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
)

// connect opens the target and reads its history config. A data dir is
// opened read-only unless write (a push records its snapshot there). For a
// server, the token is tried from, in order: the credential helpers (`git
// credential fill`, without prompting), $RELAY_GIT_TOKEN, and a prompt on
// the terminal (when git may prompt). A rejected credential is passed to
// `git credential reject`, an accepted one from fill to `git credential
// approve`.
func (h *helper) connect(ctx context.Context, write bool) (source.Source, history.Config, error) {
	var cfg history.Config
	t := h.target
	if t.DataDir != "" {
		open := source.ReadDataDir
		if write {
			open = source.OpenDataDir
		}
		src, err := open(t.DataDir)
		if errors.Is(err, source.ErrLocked) {
			return nil, cfg, fmt.Errorf("data dir %s is in use, most likely by a running `relay-git-sync serve`: clone through that server instead (relay::http://host:port/<relay-id>/<folder-id>)", t.DataDir)
		}
		if err != nil {
			return nil, cfg, err
		}
		if cfg, err = src.HistoryConfig(ctx); err != nil {
			src.Close()
			return nil, cfg, err
		}
		return src, cfg, nil
	}

	type attempt struct {
		source string
		token  string
		cred   *gitcred.Credential // from git credential fill
	}
	try := func(a attempt) (source.Source, error) {
		src, err := source.NewHTTP(t.Server, a.token, source.WithUserAgent("git-remote-relay"))
		if err != nil {
			return nil, err
		}
		c, err := src.HistoryConfig(ctx)
		if err != nil {
			src.Close()
			if errors.Is(err, source.ErrUnauthorized) && a.cred != nil {
				if rerr := a.cred.Reject(ctx, h.git.cred()); rerr != nil {
					h.log.Warn("git credential reject failed", "err", rerr)
				}
			}
			return nil, err
		}
		if a.cred != nil {
			if aerr := a.cred.Approve(ctx, h.git.cred()); aerr != nil {
				h.log.Warn("git credential approve failed", "err", aerr)
			}
		}
		cfg = c
		return src, nil
	}
	next := []func() (attempt, bool){
		func() (attempt, bool) {
			c, ok, err := gitcred.FillRead(ctx, h.git.cred(), t.Server, false)
			if err != nil {
				h.log.Warn("git credential fill failed", "err", err)
			}
			return attempt{source: "the token from your git credential helper", token: c.Password, cred: &c}, ok
		},
		func() (attempt, bool) {
			tok := h.cfg.Getenv(EnvToken)
			return attempt{source: "the token in " + EnvToken, token: tok}, tok != ""
		},
		func() (attempt, bool) {
			if h.cfg.Getenv("GIT_TERMINAL_PROMPT") == "0" {
				return attempt{}, false
			}
			c, ok, err := gitcred.Fill(ctx, h.git.cred(), t.Server, true)
			if err != nil {
				return attempt{}, false // no terminal: nothing to ask
			}
			return attempt{source: "the token you typed", token: c.Password, cred: &c}, ok
		},
	}
	var rejected []string
	var helperRejected bool
	for _, n := range next {
		a, ok := n()
		if !ok {
			continue
		}
		src, err := try(a)
		if err == nil {
			return src, cfg, nil
		}
		if !errors.Is(err, source.ErrUnauthorized) {
			return nil, cfg, err
		}
		rejected = append(rejected, a.source)
		helperRejected = helperRejected || a.cred != nil
	}
	if len(rejected) == 0 {
		// No token anywhere: one request tells "no server" from "needs a token".
		src, err := try(attempt{})
		if err == nil {
			return src, cfg, nil
		}
		if !errors.Is(err, source.ErrUnauthorized) {
			return nil, cfg, err
		}
		return nil, cfg, fmt.Errorf("%s needs its read API token (RELAY_GIT_API_TOKEN on the server) and none was found.\n%s", t.Server, tokenHelp(t.Server))
	}
	msg := fmt.Sprintf("%s rejected %s", t.Server, strings.Join(rejected, " and "))
	if helperRejected {
		msg += " (now removed from the credential helper with `git credential reject`)"
	}
	return nil, cfg, fmt.Errorf("%s.\n%s", msg, tokenHelp(t.Server))
}

func tokenHelp(server string) string {
	return "Set " + EnvToken + "=<token>, or store the token for git's credential helper:\n  " + gitcred.ApproveCommand(server)
}
