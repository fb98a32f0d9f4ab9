package webui

import (
	"context"
	"sync"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// infoCache keeps each folder's snapshot list (without trees) once read,
// for the pages that need a whole history's change lists: older timeline
// pages, filters and file histories. Snapshots are only ever appended, so
// a later read asks the source for the new ones only. It costs a few
// hundred bytes per snapshot of the folders someone looked at.
type infoCache struct {
	mu      sync.Mutex
	folders map[store.FolderID]*folderInfos
}

type folderInfos struct {
	mu    sync.Mutex
	infos []store.SnapshotInfo
}

// all returns every snapshot of f, oldest first. The slice is shared:
// callers must not change it.
func (c *infoCache) all(ctx context.Context, src interface {
	Snapshots(context.Context, store.FolderID, uint64) ([]store.SnapshotInfo, error)
}, f store.FolderID) ([]store.SnapshotInfo, error) {
	c.mu.Lock()
	if c.folders == nil {
		c.folders = map[store.FolderID]*folderInfos{}
	}
	fi := c.folders[f]
	if fi == nil {
		fi = &folderInfos{}
		c.folders[f] = fi
	}
	c.mu.Unlock()

	fi.mu.Lock()
	defer fi.mu.Unlock()
	var after uint64
	if n := len(fi.infos); n > 0 {
		after = fi.infos[n-1].Seq
	}
	more, err := src.Snapshots(ctx, f, after)
	if err != nil {
		return nil, err
	}
	fi.infos = append(fi.infos, more...)
	return fi.infos[:len(fi.infos):len(fi.infos)], nil
}
