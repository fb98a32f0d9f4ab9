package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
	"github.com/relay-git-sync/relay-git-sync/internal/writeguard"
)

// WriteChanges writes a push's changes into Relay through r, when folder f
// still has snapshot req.ExpectSeq as its latest in src and the paths they
// touch are in Relay as in that snapshot (else an error wrapping
// readapi.ErrStale: the pusher must fetch first; see writeguard). A change Relay
// cannot hold is an error wrapping writeback.ErrRefused, before anything
// is written. A failure half way returns the result with what was written.
func WriteChanges(ctx context.Context, src source.Source, r writeback.Relay, f store.FolderID, req readapi.ChangesRequest) (*readapi.ChangesResult, error) {
	changes := make([]writeback.Change, 0, len(req.Changes))
	for _, c := range req.Changes {
		if err := readapi.CheckChange(c); err != nil {
			return nil, fmt.Errorf("%w: %w", err, writeback.ErrRefused)
		}
		changes = append(changes, writeback.Change{Path: c.Path, Delete: c.Delete, From: c.From, Kind: c.Kind, Data: c.Data})
	}
	head, err := src.Folder(ctx, f)
	if err != nil {
		return nil, err
	}
	if head.LatestSeq != req.ExpectSeq {
		return nil, fmt.Errorf("%w: %s has snapshot %d now, and the changes were made against snapshot %d: fetch, then push again", readapi.ErrStale, f, head.LatestSeq, req.ExpectSeq)
	}
	var base *store.Snapshot
	if req.ExpectSeq > 0 {
		if base, err = src.Snapshot(ctx, f, req.ExpectSeq); err != nil {
			return nil, err
		}
	}
	if err := writeguard.Check(ctx, r, f, base, src.Blob, changes); err != nil {
		if errors.Is(err, writeguard.ErrChanged) {
			err = fmt.Errorf("%w: %w", readapi.ErrStale, err)
		}
		return nil, err
	}
	plan, err := writeback.Prepare(ctx, r, f, changes)
	if err != nil {
		return nil, err
	}
	out := &readapi.ChangesResult{DryRun: req.DryRun, Actions: wireActions(plan), Written: []string{}}
	if req.DryRun {
		return out, nil
	}
	w, err := plan.Apply(ctx)
	out.Written = append(out.Written, w.Paths...)
	if errors.Is(err, relay.ErrNeedFileToken) {
		err = fmt.Errorf("%w; new or changed attachments cannot be written with the server token alone: push notes and canvases, and add the attachment in Obsidian", err)
	}
	return out, err
}

// changes is the changes route's work, or nil (403) unless writes are on.
func (c *ServeConfig) changes(p *pipeline, st *store.Store) func(context.Context, store.FolderID, readapi.ChangesRequest) (*readapi.ChangesResult, error) {
	if !c.AllowWrites {
		return nil
	}
	src := source.FromStore(st)
	return func(ctx context.Context, f store.FolderID, req readapi.ChangesRequest) (*readapi.ChangesResult, error) {
		return WriteChanges(ctx, src, p.relay, f, req)
	}
}
