package remotehelper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// backend is where the helper reads a folder's snapshots: the read API of a
// running server (httpBackend) or a data dir (dataDirBackend).
//
// internal/source has the same two shapes for the mount, but not what the
// helper needs to be O(changes): the history config and a walk that hands
// out the whole history in one pass (GET …/history, store.Walk).
type backend interface {
	// historyConfig is the Config the data dir's owner synthesizes with.
	historyConfig(ctx context.Context) (history.Config, error)
	// latest returns the folder's latest sequence number (0 = no
	// snapshots yet), or an error wrapping errUnknownFolder. With after > 0
	// (the last snapshot this repository has) it may answer after itself
	// when nothing is newer without checking that snapshot after exists:
	// the walk from there checks it.
	latest(ctx context.Context, f store.FolderID, after uint64) (uint64, error)
	// walk calls fn with each snapshot after afterSeq, in order, each with
	// its whole tree sorted by path. fn may keep the snapshot.
	walk(ctx context.Context, f store.FolderID, afterSeq uint64, fn func(*store.Snapshot) error) error
	// blob returns the content of blob id, checked against the id.
	blob(ctx context.Context, id store.BlobID) ([]byte, error)
	// blobWorkers is how many blobs to read at once.
	blobWorkers() int
	close() error
}

var (
	// errUnknownFolder: the server or data dir does not follow the folder.
	errUnknownFolder = errors.New("unknown folder")
	// errUnauthorized: the server rejected the token (HTTP 401).
	errUnauthorized = errors.New("token rejected")
	// errUnreachable: nothing (or not a relay-git-sync server) answered.
	errUnreachable = errors.New("server unreachable")
)

// kindError is an error of one of the kinds above whose message is its own
// (the kind's name would only repeat it).
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func kindErrorf(kind error, format string, a ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, a...)}
}

// dataDirBackend reads a data dir's store directly.
type dataDirBackend struct {
	dir string
	st  *store.Store
}

// storeDirName is the store's directory inside a data dir (as in
// cmd/relay-git-sync and internal/source).
const storeDirName = "db"

func openDataDir(dir string, log *slog.Logger) (*dataDirBackend, error) {
	db := filepath.Join(dir, storeDirName)
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(dir); errors.Is(derr, fs.ErrNotExist) {
			return nil, fmt.Errorf("data dir %s does not exist", dir)
		}
		return nil, fmt.Errorf("%s is not a relay-git-sync data dir (it has no %s directory)", dir, storeDirName)
	}
	st, err := store.Open(db, store.Options{Logger: log})
	if err != nil {
		if s := err.Error(); strings.Contains(s, "Cannot acquire directory lock") || strings.Contains(s, "locked by another process") {
			return nil, fmt.Errorf("data dir %s is in use, most likely by a running `relay-git-sync serve`: clone through that server instead (relay::http://host:port/<relay-id>/<folder-id>)", dir)
		}
		return nil, fmt.Errorf("opening data dir %s: %w", dir, err)
	}
	return &dataDirBackend{dir: dir, st: st}, nil
}

func (b *dataDirBackend) historyConfig(context.Context) (history.Config, error) {
	var cfg history.Config
	raw, err := b.st.HistoryConfig()
	if errors.Is(err, store.ErrNotFound) {
		return cfg, nil // never recorded: the defaults, as serve would use
	}
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("data dir %s: history config: %w", b.dir, err)
	}
	return cfg, nil
}

func (b *dataDirBackend) latest(_ context.Context, f store.FolderID, after uint64) (uint64, error) {
	if after > 0 {
		// Only the records after the repository's: a fetch does not pay
		// for rebuilding the latest tree (the walk rebuilds it anyway).
		infos, err := b.st.Snapshots(f, after)
		if err != nil {
			return 0, err
		}
		if len(infos) > 0 {
			return infos[len(infos)-1].Seq, nil
		}
	} else {
		snap, err := b.st.Latest(f)
		if err == nil {
			return snap.Seq, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
	}
	folders, err := b.st.Folders()
	if err != nil {
		return 0, err
	}
	for _, g := range folders {
		if g == f {
			return after, nil
		}
	}
	return 0, kindErrorf(errUnknownFolder, "data dir %s does not follow folder %s", b.dir, f)
}

func (b *dataDirBackend) walk(ctx context.Context, f store.FolderID, after uint64, fn func(*store.Snapshot) error) error {
	return b.st.Walk(f, after, func(s *store.Snapshot) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(s)
	})
}

func (b *dataDirBackend) blob(_ context.Context, id store.BlobID) ([]byte, error) {
	return b.st.Blob(id) // the store checks every decode against the id
}

// Decoding is CPU work: one reader per core.
func (b *dataDirBackend) blobWorkers() int { return max(2, runtime.GOMAXPROCS(0)) }

func (b *dataDirBackend) close() error { return b.st.Close() }
