// Package storecopy moves a store from one backend to another (a Badger
// data dir and a NATS JetStream cluster, either way) so that the history
// synthesized from the copy has the same commit ids: every snapshot is
// recorded again with the same sequence number, time, users, changes,
// origin and tree, and the settings that shape commits (the history
// config) and the push state of every connector go with them.
package storecopy

import (
	"context"
	"errors"
	"fmt"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Stats is what Copy moved.
type Stats struct {
	Folders, Snapshots, Blobs, PushStates, Events int
}

// Copy copies everything in src into dst, which must be empty. progress,
// when set, is told of each snapshot copied. A store with held or dropped
// snapshots is refused (the destination would not hold them the same
// way): release or drop the holds first.
func Copy(ctx context.Context, src, dst store.Backend, progress func(f store.FolderID, seq uint64)) (Stats, error) {
	var st Stats
	folders, err := src.Folders()
	if err != nil {
		return st, err
	}
	if have, err := dst.Folders(); err != nil {
		return st, err
	} else if len(have) > 0 {
		return st, fmt.Errorf("the destination already holds %d folder(s): copy into an empty store", len(have))
	}
	for _, f := range folders {
		if h, err := src.Held(f); err != nil {
			return st, err
		} else if h != nil {
			return st, fmt.Errorf("folder %s has held snapshots from %d on: release or drop them first (relay-git-sync held)", f, h.From)
		}
		if d, err := src.Dropped(f); err != nil {
			return st, err
		} else if len(d) > 0 {
			return st, fmt.Errorf("folder %s has dropped snapshots (%d–%d): such a store cannot be copied yet", f, d[0].From, d[0].Through)
		}
	}
	switch cfg, err := src.HistoryConfig(); {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return st, err
	default:
		if err := dst.SetHistoryConfig(cfg); err != nil {
			return st, err
		}
	}
	c := copier{src: src, dst: dst, stats: &st}
	for _, f := range folders {
		if err := c.folder(ctx, f, progress); err != nil {
			return st, fmt.Errorf("folder %s: %w", f, err)
		}
	}
	pushes, err := src.PushStates()
	if err != nil {
		return st, err
	}
	for _, p := range pushes {
		owned, err := src.PushOwned(p.Folder, p.Conn)
		if err != nil {
			return st, err
		}
		ps := p.State
		if err := dst.SetPushState(p.Folder, p.Conn, &ps, owned); err != nil {
			return st, err
		}
		st.PushStates++
	}
	events, err := src.PendingEvents()
	if err != nil {
		return st, err
	}
	for _, ev := range events {
		if _, _, err := dst.Enqueue(ev); err != nil {
			return st, err
		}
		st.Events++
	}
	return st, nil
}

type copier struct {
	src, dst store.Backend
	stats    *Stats
}

func (c *copier) folder(ctx context.Context, f store.FolderID, progress func(store.FolderID, uint64)) error {
	if err := c.dst.AddFolder(f); err != nil {
		return err
	}
	c.stats.Folders++
	// Blobs are copied as the snapshot that first names them is, each
	// against the previous version of its document, so the destination
	// stores deltas as the source did.
	prev := map[string]store.BlobID{} // doc id -> blob in the last snapshot
	err := c.src.Walk(f, 0, func(s *store.Snapshot) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, file := range s.Files {
			if err := c.blob(file.Blob, prev[file.DocID]); err != nil {
				return fmt.Errorf("snapshot %d, %q: %w", s.Seq, file.Path, err)
			}
		}
		if p := s.Origin.Pushed; p != nil {
			if err := c.blob(p.Pack, store.BlobID{}); err != nil {
				return fmt.Errorf("snapshot %d, pushed pack: %w", s.Seq, err)
			}
		}
		want := s.Seq
		seq, err := c.dst.AddSnapshot(&store.Snapshot{Folder: f, Time: s.Time, Users: s.Users, Changes: s.Changes, Origin: s.Origin, Files: s.Files}, nil, nil)
		if err != nil {
			return fmt.Errorf("snapshot %d: %w", want, err)
		}
		if seq != want {
			return fmt.Errorf("snapshot %d became %d in the destination", want, seq)
		}
		clear(prev)
		for _, file := range s.Files {
			prev[file.DocID] = file.Blob
		}
		c.stats.Snapshots++
		if progress != nil {
			progress(f, seq)
		}
		return nil
	})
	if err != nil {
		return err
	}
	docs, err := c.src.DocStates(f)
	if err != nil {
		return err
	}
	for id, d := range docs {
		if has, err := c.src.HasBlob(d.Blob); err != nil {
			return err
		} else if !has {
			delete(docs, id) // ingest fetches the document again
			continue
		}
		if err := c.blob(d.Blob, store.BlobID{}); err != nil {
			return fmt.Errorf("doc state of %s: %w", id, err)
		}
	}
	if len(docs) > 0 {
		return c.dst.PutDocStates(f, docs, nil)
	}
	return nil
}

// blob copies blob id unless the destination has it; base is an earlier
// version of the same document (zero: none).
func (c *copier) blob(id, base store.BlobID) error {
	if has, err := c.dst.HasBlob(id); err != nil || has {
		return err
	}
	size, err := c.src.BlobSize(id)
	if err != nil {
		return err
	}
	var got store.BlobID
	if size > store.MaxRecordBlob {
		r, _, err := c.src.OpenBlob(id)
		if err != nil {
			return err
		}
		got, _, err = c.dst.PutBlobFrom(r, size, store.BlobID{})
		r.Close()
		if err != nil {
			return err
		}
	} else {
		data, err := c.src.Blob(id)
		if err != nil {
			return err
		}
		if got, err = c.dst.PutBlob(data, base); err != nil {
			return err
		}
	}
	if got != id {
		return fmt.Errorf("blob %s was stored as %s", id, got)
	}
	c.stats.Blobs++
	return nil
}
