package store

import (
	"context"
	"io"
	"time"
)

// Backend is what the service keeps: folders and their snapshots, blobs,
// ingest's document states, the webhook queue, push state, mass-deletion
// holds and settings. *Store (Badger in a data dir, embedded, the
// default) is one; internal/natsstore (NATS JetStream, shared by several
// serve instances) is the other. Every package above the store takes a
// Backend.
type Backend interface {
	// Folders and snapshots (snapshot.go).
	AddFolder(f FolderID) error
	Folders() ([]FolderID, error)
	AddSnapshot(snap *Snapshot, docs map[string]DocState, dropDocs []string) (uint64, error)
	PutDocStates(f FolderID, docs map[string]DocState, dropDocs []string) error
	DocStates(f FolderID) (map[string]DocState, error)
	Latest(f FolderID) (*Snapshot, error)
	Head(f FolderID) (uint64, time.Time, error)
	Snapshot(f FolderID, seq uint64) (*Snapshot, error)
	Walk(f FolderID, afterSeq uint64, fn func(*Snapshot) error) error
	Snapshots(f FolderID, afterSeq uint64) ([]SnapshotInfo, error)

	// Blobs (blob.go, blobstream.go).
	PutBlob(data []byte, base BlobID) (BlobID, error)
	PutBlobFrom(r io.Reader, size int64, base BlobID) (BlobID, int64, error)
	Blob(id BlobID) ([]byte, error)
	OpenBlob(id BlobID) (io.ReadCloser, int64, error)
	HasBlob(id BlobID) (bool, error)
	BlobSize(id BlobID) (int64, error)

	// The webhook queue (queue.go).
	Enqueue(ev QueuedEvent) (QueuedEvent, bool, error)
	PendingEvents() ([]QueuedEvent, error)
	AckEvents(keys []uint64) error

	// Push state of the mirror connectors (pushstate.go).
	PushState(f FolderID, conn string) (*PushState, error)
	PushOwned(f FolderID, conn string) ([]string, error)
	SetPushState(f FolderID, conn string, ps *PushState, owned []string) error
	PushStates() ([]ConnectorPush, error)

	// Mass-deletion holds (held.go).
	Held(f FolderID) (*Hold, error)
	Dropped(f FolderID) ([]SeqRange, error)
	Holds() ([]Hold, error)
	ReleaseHold(f FolderID) (*Hold, error)
	DropHold(f FolderID) (*Hold, SeqRange, error)

	// Settings (settings.go).
	HistoryConfig() ([]byte, error)
	SetHistoryConfig(cfg []byte) error

	// Operations: backup.go, check.go, space.go.
	Backup(ctx context.Context, w io.Writer) error
	Check(ctx context.Context, o CheckOptions, report func(Finding)) (CheckStats, error)
	DiskSpace() (free, reserve uint64, err error)
	Close() error
}

var _ Backend = (*Store)(nil)
