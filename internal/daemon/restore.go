package daemon

import (
	"context"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
)

// Restore runs a restore request against src and the Relay Server r and
// answers in the read API's shape (the restore route and the CLI print the
// same thing).
func Restore(ctx context.Context, src source.Source, r writeback.Relay, f store.FolderID, req readapi.RestoreRequest) (*readapi.RestoreResult, error) {
	o := writeback.RestoreOptions{Seq: req.Seq, Paths: req.Paths, DryRun: req.DryRun}
	if req.At != nil {
		o.At = *req.At
	}
	res, err := writeback.Restore(ctx, src, r, f, o)
	if res == nil {
		return nil, err
	}
	out := &readapi.RestoreResult{Seq: res.Seq, DryRun: req.DryRun, Actions: wireActions(res.Plan), Written: res.Written.Paths}
	if out.Written == nil {
		out.Written = []string{}
	}
	return out, err
}

// wireActions is a plan's actions as the write routes answer them (never
// null in JSON).
func wireActions(p *writeback.Plan) []readapi.RestoreAction {
	out := make([]readapi.RestoreAction, 0, len(p.Actions))
	for _, a := range p.Actions {
		out = append(out, readapi.RestoreAction{Op: string(a.Op), Path: a.Path, OldPath: a.From, DocID: a.DocID, Detail: a.Detail})
	}
	return out
}

// writeToken is the token the write routes take: none unless writes are on.
func (c *ServeConfig) writeToken() string {
	if !c.AllowWrites {
		return ""
	}
	return c.WriteToken
}

// restore is the restore route's work, or nil (403) unless writes are on.
func (c *ServeConfig) restore(p *pipeline, st *store.Store) func(context.Context, store.FolderID, readapi.RestoreRequest) (*readapi.RestoreResult, error) {
	if !c.AllowWrites {
		return nil
	}
	src := source.FromStore(st)
	return func(ctx context.Context, f store.FolderID, req readapi.RestoreRequest) (*readapi.RestoreResult, error) {
		return Restore(ctx, src, p.relay, f, req)
	}
}
