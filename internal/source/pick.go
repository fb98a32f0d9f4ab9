package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// ErrNoSnapshots means a folder has no snapshot yet.
var ErrNoSnapshots = errors.New("no snapshots yet; run `relay-git-sync sync` or `serve` first")

// Pick returns snapshot seq of f, or with seq 0 the last one at or before
// at, or with at zero too the latest. Errors say which snapshot is missing
// and wrap store.ErrNotFound (or ErrNoSnapshots).
func Pick(ctx context.Context, src Source, f store.FolderID, seq uint64, at time.Time) (*store.Snapshot, error) {
	if seq == 0 && !at.IsZero() {
		infos, err := src.Snapshots(ctx, f, 0)
		if err != nil {
			return nil, err
		}
		for _, in := range infos {
			if !in.Time.After(at) && in.Seq > seq {
				seq = in.Seq
			}
		}
		if seq == 0 {
			return nil, fmt.Errorf("%s has no snapshot at or before %s: %w", f, at.UTC().Format(time.RFC3339), store.ErrNotFound)
		}
	}
	s, err := src.Snapshot(ctx, f, seq)
	switch {
	case err == nil:
		return s, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	case seq != 0:
		return nil, fmt.Errorf("%s has no snapshot %d (see `relay-git-sync snapshots %s`): %w", f, seq, f, store.ErrNotFound)
	}
	return nil, fmt.Errorf("%s: %w", f, ErrNoSnapshots)
}
