package daemon

import (
	"context"

	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
	"github.com/relay-git-sync/relay-git-sync/internal/writeguard"
)

// Restore runs a restore request against src and the Relay Server r and
// answers in the read API's shape (the restore route and the CLI print the
// same thing). With a Recorder, what it wrote is recorded at once as the
// folder's next snapshot, a restore of the snapshot it read (also when it
// failed half way).
func Restore(ctx context.Context, src source.Source, r writeback.Relay, rec writeguard.Recorder, f store.FolderID, req readapi.RestoreRequest) (*readapi.RestoreResult, error) {
	o := writeback.RestoreOptions{Seq: req.Seq, Paths: req.Paths, DryRun: req.DryRun}
	if req.At != nil {
		o.At = *req.At
	}
	var res *writeback.Restored
	write := func(ctx context.Context) (*ingest.Request, error) {
		var err error
		res, err = writeback.Restore(ctx, src, r, f, o)
		if res == nil || req.DryRun || len(res.Written.Paths) == 0 {
			return nil, err
		}
		return &ingest.Request{Folder: f, Dirty: res.Plan.Docs(), Origin: store.Origin{Restored: res.Seq}}, err
	}
	var err error
	if rec != nil {
		_, err = rec.Write(ctx, f, write)
	} else {
		_, err = write(ctx)
	}
	if res == nil {
		return nil, err
	}
	out := &readapi.RestoreResult{Seq: res.Seq, DryRun: req.DryRun, Actions: writeguard.WireActions(res.Plan), Written: res.Written.Paths}
	if out.Written == nil {
		out.Written = []string{}
	}
	return out, err
}

// writeToken is the token the write routes take: none unless writes are on.
func (c *ServeConfig) writeToken() string {
	if !c.AllowWrites {
		return ""
	}
	return c.WriteToken
}

// restore is the restore route's work, or nil (403) unless writes are on.
// The scheduler records each restore as the folder's next snapshot.
func (c *ServeConfig) restore(p *pipeline, st store.Backend, sched *ingest.Scheduler) func(context.Context, store.FolderID, readapi.RestoreRequest) (*readapi.RestoreResult, error) {
	if !c.AllowWrites {
		return nil
	}
	src := source.FromStore(st)
	rec := writeguard.Record(sched, st)
	return func(ctx context.Context, f store.FolderID, req readapi.RestoreRequest) (*readapi.RestoreResult, error) {
		return Restore(ctx, src, p.relay, rec, f, req)
	}
}
