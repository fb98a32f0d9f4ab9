package writeguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
)

// Writer runs a write of relay-git-sync and records its snapshot:
// ingest's Syncer, or serve's Scheduler.
type Writer interface {
	Write(ctx context.Context, f store.FolderID, write func(context.Context) (*ingest.Request, error)) (*ingest.Result, error)
}

// Recorder records the snapshot a write of relay-git-sync comes back as:
// Write is a Writer's, PutBlob the store's. A nil Recorder leaves the
// recording to the webhooks, as for any edit.
type Recorder interface {
	Writer
	PutBlob(data []byte) (store.BlobID, error)
}

// Record returns a Recorder over w and the store it records into.
func Record(w Writer, st store.Backend) Recorder { return recorder{w, st} }

// RecordInto returns a Recorder that syncs straight into the store of
// src through fetcher (no serve holds a data dir a command opened), or
// nil when src is not over a store.
func RecordInto(src source.Source, fetcher ingest.Fetcher, log *slog.Logger) Recorder {
	st := source.Store(src)
	if st == nil {
		return nil
	}
	return Record(ingest.New(ingest.Config{Store: st, Relay: fetcher, Logger: log}), st)
}

type recorder struct {
	Writer
	st store.Backend
}

func (r recorder) PutBlob(data []byte) (store.BlobID, error) {
	return r.st.PutBlob(data, store.BlobID{})
}

// WriteChanges writes a push's changes into Relay through r, when folder f
// still has snapshot req.ExpectSeq as its latest in src and the paths they
// touch are in Relay as in that snapshot (else an error wrapping
// readapi.ErrStale: the pusher must fetch first; see Check). A change
// Relay cannot hold, or a pushed commit whose pack does not hold it, is an
// error wrapping writeback.ErrRefused, before anything is written. A
// failure half way returns the result with what was written.
//
// With a Recorder, the whole write holds off other syncs of f, and a
// write that went through is recorded at once as the folder's next
// snapshot, with req.Commit as its pushed commit.
func WriteChanges(ctx context.Context, src source.Source, r writeback.Relay, rec Recorder, f store.FolderID, req readapi.ChangesRequest) (*readapi.ChangesResult, error) {
	changes := make([]writeback.Change, 0, len(req.Changes))
	for _, c := range req.Changes {
		if err := readapi.CheckChange(c); err != nil {
			return nil, fmt.Errorf("%w: %w", err, writeback.ErrRefused)
		}
		changes = append(changes, writeback.Change{Path: c.Path, Delete: c.Delete, From: c.From, Kind: c.Kind, Data: c.Data})
	}
	pushed, err := checkCommit(req.Commit)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, writeback.ErrRefused)
	}
	var out *readapi.ChangesResult
	write := func(ctx context.Context) (*ingest.Request, error) {
		plan, err := prepare(ctx, src, r, f, req.ExpectSeq, changes)
		if err != nil {
			return nil, err
		}
		out = &readapi.ChangesResult{DryRun: req.DryRun, Actions: WireActions(plan), Written: []string{}}
		if req.DryRun {
			return nil, nil
		}
		if pushed != nil && rec != nil {
			if pushed.Pack, err = rec.PutBlob(req.Commit.Pack); err != nil {
				return nil, fmt.Errorf("storing the pushed commit: %w", err)
			}
		}
		w, err := plan.Apply(ctx)
		out.Written = append(out.Written, w.Paths...)
		if errors.Is(err, relay.ErrNeedFileToken) {
			err = fmt.Errorf("%w; or push notes and canvases only, and add the attachment in Obsidian", err)
		}
		if err != nil || (len(w.Paths) == 0 && pushed == nil) {
			return nil, err
		}
		return &ingest.Request{Folder: f, Dirty: plan.Docs(), Origin: store.Origin{Pushed: pushed}}, nil
	}
	if rec == nil {
		_, err = write(ctx)
		return out, err
	}
	_, err = rec.Write(ctx, f, write)
	return out, err
}

// prepare checks that the changes build on Relay's state and plans them.
func prepare(ctx context.Context, src source.Source, r writeback.Relay, f store.FolderID, expect uint64, changes []writeback.Change) (*writeback.Plan, error) {
	head, err := src.Folder(ctx, f)
	if err != nil {
		return nil, err
	}
	if head.LatestSeq != expect {
		return nil, fmt.Errorf("%w: %s has snapshot %d now, and the changes were made against snapshot %d: fetch, then push again", readapi.ErrStale, f, head.LatestSeq, expect)
	}
	var base *store.Snapshot
	if expect > 0 {
		if base, err = src.Snapshot(ctx, f, expect); err != nil {
			return nil, err
		}
	}
	if err := Check(ctx, r, f, base, src.Blob, changes); err != nil {
		if errors.Is(err, ErrChanged) {
			err = fmt.Errorf("%w: %w", readapi.ErrStale, err)
		}
		return nil, err
	}
	return writeback.Prepare(ctx, r, f, changes)
}

// checkCommit reads a pushed commit (nil: none): its ids, and a pack that
// holds it.
func checkCommit(c *readapi.PushCommit) (*store.Pushed, error) {
	if c == nil {
		return nil, nil
	}
	p := &store.Pushed{}
	id, err := store.ParseBlobID(c.ID) // 40 hex digits, as any object id
	if err != nil || id.IsZero() {
		return nil, fmt.Errorf("pushed commit %q: not a commit id", c.ID)
	}
	p.Commit = id
	if c.Parent != "" {
		parent, err := store.ParseBlobID(c.Parent)
		if err != nil {
			return nil, fmt.Errorf("parent %q of the pushed commit: not a commit id", c.Parent)
		}
		p.Parent = parent
	}
	if _, _, err := history.ParsePushPack(c.Pack, plumbing.Hash(p.Commit)); err != nil {
		return nil, err
	}
	return p, nil
}

// WireActions is a plan's actions as the write routes answer them (never
// null in JSON).
func WireActions(p *writeback.Plan) []readapi.RestoreAction {
	out := make([]readapi.RestoreAction, 0, len(p.Actions))
	for _, a := range p.Actions {
		out = append(out, readapi.RestoreAction{Op: string(a.Op), Path: a.Path, OldPath: a.From, DocID: a.DocID, Detail: a.Detail})
	}
	return out
}
