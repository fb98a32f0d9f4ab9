// Package source owns the read-only view of a snapshot store that every
// reader goes through: the FUSE mount (fusefs), the git remote helper
// (remotehelper), export and snapshots, and the read API itself (server/
// serves a FromStore source). It has the Source interface and its two
// implementations, over the read API of a running `relay-git-sync serve`
// (NewHTTP, a thin layer over internal/readapi's client) and over a data
// directory that no server holds (OpenDataDir, or FromStore for a store this
// process already has open). Package sourcetest checks both against one
// conformance suite.
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

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
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
	// Folder returns folder f with its latest snapshot's seq and time,
	// without reading any tree. An unknown folder is ErrNotFound, with a
	// message that says where the folders are listed.
	Folder(ctx context.Context, f store.FolderID) (Folder, error)
	// History calls fn with each snapshot of folder f with Seq > afterSeq,
	// oldest first, each with its whole tree sorted by path (fn may keep
	// it). It reads the history in one pass, so a whole history costs
	// O(changes), not O(snapshots × tree): the way to process many
	// snapshots. An error from fn stops it and is returned as is; an
	// unknown folder is ErrNotFound (before any call of fn).
	History(ctx context.Context, f store.FolderID, afterSeq uint64, fn func(*store.Snapshot) error) error
	// HistoryConfig returns the config (identity, Relay user map) the
	// store's owner synthesizes commits with, which decides every commit
	// id (see internal/history); the zero Config when none was recorded.
	HistoryConfig(ctx context.Context) (history.Config, error)
	// Blob returns the content of blob id (a slice the caller owns),
	// checked against the id.
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
	ErrUnauthorized = readapi.ErrUnauthorized

	// ErrUnreachable means no server answered at the URL (connection
	// refused, DNS failure, timeout, or something that is not the
	// relay-git-sync read API).
	ErrUnreachable = readapi.ErrUnreachable

	// ErrLocked means the data directory is held by another process,
	// normally a running `relay-git-sync serve`.
	ErrLocked = errors.New("data directory in use")
)
