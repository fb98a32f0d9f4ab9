package daemon

import (
	"context"

	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeguard"
)

// changes is the changes route's work, or nil (403) unless writes are on.
// The scheduler records each push as the folder's next snapshot.
func (c *ServeConfig) changes(p *pipeline, st store.Backend, sched *ingest.Scheduler) func(context.Context, store.FolderID, readapi.ChangesRequest) (*readapi.ChangesResult, error) {
	if !c.AllowWrites {
		return nil
	}
	src := source.FromStore(st)
	rec := writeguard.Record(sched, st)
	return func(ctx context.Context, f store.FolderID, req readapi.ChangesRequest) (*readapi.ChangesResult, error) {
		return writeguard.WriteChanges(ctx, src, p.relay, rec, f, req)
	}
}
