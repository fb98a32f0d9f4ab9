// Package source owns the read-only view of a snapshot store that the FUSE
// mount (fusefs) and the git remote helper (git-remote-relay) read from: the
// Source interface and its two implementations, over the read API of a
// running `relay-git-sync serve` (NewHTTP) and over a data directory that no
// server holds (OpenDataDir, or FromStore for a store this process already
// has open).
//
// Badger is single-process, so whenever `serve` runs, other commands go
// through its HTTP API; opening the data dir directly is only for when it
// does not.
//
// Both implementations speak the store's types and errors: a folder,
// snapshot or blob that does not exist is an error wrapping store.ErrNotFound
// (also exported here as ErrNotFound). The HTTP implementation adds
// ErrUnauthorized (the token was rejected: a remote helper should run
// `git credential reject`) and ErrUnreachable (no server answered).
package source

import (
	"context"
	"errors"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Source is a read-only view of the snapshots of the folders in one store.
// Implementations are safe for concurrent use.
type Source interface {
	// Folders lists the followed folders, sorted by relay then folder.
	Folders(ctx context.Context) ([]Folder, error)
	// Snapshots lists folder f's snapshots with Seq > afterSeq, in
	// ascending order, without their trees. An unknown folder is
	// ErrNotFound; a known folder without snapshots gives an empty list.
	Snapshots(ctx context.Context, f store.FolderID, afterSeq uint64) ([]store.SnapshotInfo, error)
	// Snapshot returns snapshot seq of folder f with its whole tree
	// (sorted by path); seq 0 means the latest. ErrNotFound when there is
	// no such snapshot (or none at all, for seq 0).
	Snapshot(ctx context.Context, f store.FolderID, seq uint64) (*store.Snapshot, error)
	// Blob returns the content of blob id (a slice the caller owns).
	Blob(ctx context.Context, id store.BlobID) ([]byte, error)
	// Close releases the source (the HTTP connections, or the data dir).
	Close() error
}

// Folder is one followed folder and its latest snapshot (LatestSeq 0 and a
// zero LatestTime when it has none yet).
type Folder struct {
	Relay, Folder string
	LatestSeq     uint64
	LatestTime    time.Time
}

// ID returns the folder's store id.
func (f Folder) ID() store.FolderID { return store.FolderID{Relay: f.Relay, Folder: f.Folder} }

var (
	// ErrNotFound is store.ErrNotFound: an unknown folder, snapshot or blob.
	ErrNotFound = store.ErrNotFound

	// ErrUnauthorized means the server rejected the token (HTTP 401). The
	// error's text says which variable to set.
	ErrUnauthorized = errors.New("token rejected")

	// ErrUnreachable means no server answered at the URL (connection
	// refused, DNS failure, timeout, or something that is not the
	// relay-git-sync read API).
	ErrUnreachable = errors.New("server unreachable")

	// ErrLocked means the data directory is held by another process,
	// normally a running `relay-git-sync serve`.
	ErrLocked = errors.New("data directory in use")
)
