package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// StoreDirName is the store's directory inside a data dir (the same name as
// cmd/relay-git-sync's storeDirName).
const StoreDirName = "db"

// OpenDataDir opens the snapshot store of data directory dir for reading,
// and for the writes of a command that records what it writes into Relay
// (Store). It never creates one: a data dir without a store is an error
// saying so. Badger allows one read-write process per store, so while
// `relay-git-sync serve` (or any other command) has it open this fails
// with an error wrapping ErrLocked that tells the user to go through the
// server instead.
//
// A read-write open writes to the store (Badger's new memtable and value
// log files; the webhook queue's key lease, flushed and compacted at
// close), so do not point it at a copy that must stay byte-identical:
// ReadDataDir does not write.
func OpenDataDir(dir string) (Source, error) { return openDataDir(dir, false) }

// ReadDataDir is OpenDataDir for reading only: nothing in the data dir
// changes, opening and closing cost less, several readers may share it
// (still none while a read-write process holds it), and every write to
// Store(src) fails. A store whose writer crashed is first recovered by a
// read-write open, as the writer's next start would.
func ReadDataDir(dir string) (Source, error) { return openDataDir(dir, true) }

func openDataDir(dir string, readOnly bool) (Source, error) {
	db := filepath.Join(dir, StoreDirName)
	fi, err := os.Stat(db)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, derr := os.Stat(dir); errors.Is(derr, fs.ErrNotExist) {
			return nil, fmt.Errorf("data dir %s does not exist (set --data-dir, or pass --server URL to read from a running serve)", dir)
		}
		return nil, fmt.Errorf("data dir %s has no snapshot store (no %s): run `relay-git-sync sync` or `serve` with this data dir first, or pass --server URL", dir, db)
	case err != nil:
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("data dir %s: %s is not a directory", dir, db)
	}
	open := store.Open
	if readOnly {
		open = store.OpenReadOnly
	}
	st, err := open(db, store.Options{})
	if err != nil {
		if isLockError(err) {
			return nil, fmt.Errorf("data dir %s is in use by another process (most likely `relay-git-sync serve`): read through that server instead, or stop it: %w", dir, ErrLocked)
		}
		return nil, err
	}
	return &storeSource{st: st, owned: true, name: "data dir " + dir}, nil
}

// isLockError recognizes Badger's directory lock failure (store.Open wraps
// it with its own hint, which is kept in the message).
func isLockError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Cannot acquire directory lock") || strings.Contains(s, "locked by another process")
}

// FromStore returns a Source over a store this process already has open
// (serve's own store, tests). Close does not close the store.
func FromStore(st store.Backend) Source { return &storeSource{st: st, name: "the snapshot store"} }

// OwnStore returns a Source over st that closes st on Close (a store
// opened for one command, such as a replica of a NATS store); name says
// what it is in messages.
func OwnStore(st store.Backend, name string) Source {
	return &storeSource{st: st, owned: true, name: name}
}

// Store returns the store src reads when src is over a store (a data dir
// this process opened, or FromStore), else nil: a command that writes into
// Relay records its snapshot there.
func Store(src Source) store.Backend {
	if s, ok := src.(*storeSource); ok {
		return s.st
	}
	return nil
}

var _ Source = (*storeSource)(nil)

type storeSource struct {
	st    store.Backend
	owned bool
	name  string // for messages: "data dir PATH"
}

func (s *storeSource) Folders(ctx context.Context) ([]Folder, error) {
	ids, err := s.st.Folders()
	if err != nil {
		return nil, err
	}
	out := make([]Folder, 0, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := s.head(id)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// head reads f's latest snapshot from the store's memory (no tree).
func (s *storeSource) head(f store.FolderID) (Folder, error) {
	seq, t, err := s.st.Head(f)
	return Folder{Relay: f.Relay, Folder: f.Folder, LatestSeq: seq, LatestTime: t}, err
}

func (s *storeSource) Folder(ctx context.Context, f store.FolderID) (Folder, error) {
	if err := ctx.Err(); err != nil {
		return Folder{}, err
	}
	g, err := s.head(f)
	if err == nil && g.LatestSeq == 0 {
		err = s.known(f) // Head does not tell an empty folder from an unknown one
	}
	return g, err
}

// known reports whether the store follows f (an unknown folder is
// ErrNotFound, as over HTTP).
func (s *storeSource) known(f store.FolderID) error {
	ids, err := s.st.Folders()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == f {
			return nil
		}
	}
	return fmt.Errorf("%s does not follow folder %s: %w", s.name, f, store.ErrNotFound)
}

func (s *storeSource) Snapshots(ctx context.Context, f store.FolderID, afterSeq uint64) ([]store.SnapshotInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	infos, err := s.st.Snapshots(f, afterSeq)
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 {
		// Only an empty answer needs the (cheap, but not free) check.
		if err := s.known(f); err != nil {
			return nil, err
		}
	}
	return infos, nil
}

func (s *storeSource) Snapshot(ctx context.Context, f store.FolderID, seq uint64) (*store.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if seq == 0 {
		return s.st.Latest(f)
	}
	return s.st.Snapshot(f, seq)
}

func (s *storeSource) History(ctx context.Context, f store.FolderID, afterSeq uint64, fn func(*store.Snapshot) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.known(f); err != nil {
		return err
	}
	return s.st.Walk(f, afterSeq, func(snap *store.Snapshot) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(snap)
	})
}

func (s *storeSource) HistoryConfig(ctx context.Context) (history.Config, error) {
	var cfg history.Config
	if err := ctx.Err(); err != nil {
		return cfg, err
	}
	raw, err := s.st.HistoryConfig()
	if errors.Is(err, store.ErrNotFound) {
		return cfg, nil // never recorded: the defaults, as serve would use
	}
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: history config: %w", s.name, err)
	}
	return cfg, nil
}

func (s *storeSource) Blob(ctx context.Context, id store.BlobID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.st.Blob(id)
}

func (s *storeSource) Close() error {
	if s.owned {
		return s.st.Close()
	}
	return nil
}
