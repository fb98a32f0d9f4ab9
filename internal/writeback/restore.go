package writeback

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// RestoreChanges returns the changes that put paths back as they are in
// snap: each file of snap that is one of paths or lies under one (a
// directory); the whole snapshot when paths is empty. A path that names
// nothing in snap is an error. Files that exist now but not in snap are
// left alone (restoring never deletes: history has them either way).
// Each change carries the file's document id, so a note that was deleted
// comes back as its old document and a renamed one moves back.
func RestoreChanges(snap *store.Snapshot, paths []string, blob func(store.BlobID) ([]byte, error)) ([]Change, error) {
	want := make([]string, 0, len(paths))
	for _, p := range paths {
		p = strings.Trim(p, "/")
		if p == "" || p == "." {
			want = nil // the whole folder
			break
		}
		want = append(want, p)
	}
	used := make([]bool, len(want))
	var out []Change
	for _, f := range snap.Files {
		match := len(want) == 0
		for i, p := range want {
			if f.Path == p || strings.HasPrefix(f.Path, p+"/") {
				match, used[i] = true, true
			}
		}
		if !match {
			continue
		}
		data, err := blob(f.Blob)
		if err != nil {
			return nil, fmt.Errorf("%s: reading its content from snapshot %d: %w", f.Path, snap.Seq, err)
		}
		out = append(out, Change{Path: f.Path, Kind: f.Kind, DocID: f.DocID, Data: data})
	}
	for i, p := range want {
		if !used[i] {
			return nil, fmt.Errorf("%s: not in snapshot %d of %s (paths are as in git, e.g. notes/plan.md): %w", p, snap.Seq, snap.Folder, ErrRefused)
		}
	}
	return out, nil
}

// RestoreOptions say what to restore: snapshot Seq, else the last at or
// before At, else the latest; Paths as in RestoreChanges.
type RestoreOptions struct {
	Seq    uint64
	At     time.Time
	Paths  []string
	DryRun bool // plan only
}

// Restored is what a restore planned and wrote.
type Restored struct {
	Seq     uint64
	Plan    *Plan
	Written Written
}

// Restore puts paths of a snapshot of f, read from src, back into Relay
// through r. With DryRun it only plans. A failure after writing started
// returns what was written with the error.
func Restore(ctx context.Context, src source.Source, r Relay, f store.FolderID, o RestoreOptions) (*Restored, error) {
	snap, err := source.Pick(ctx, src, f, o.Seq, o.At)
	if err != nil {
		return nil, err
	}
	changes, err := RestoreChanges(snap, o.Paths, func(id store.BlobID) ([]byte, error) { return src.Blob(ctx, id) })
	if err != nil {
		return nil, err
	}
	plan, err := Prepare(ctx, r, f, changes)
	if err != nil {
		return nil, err
	}
	res := &Restored{Seq: snap.Seq, Plan: plan}
	if o.DryRun {
		return res, nil
	}
	res.Written, err = plan.Apply(ctx)
	return res, err
}
