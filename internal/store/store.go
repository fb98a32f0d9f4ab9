package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// ErrNotFound is returned (possibly wrapped) when a blob, snapshot or
// folder does not exist. Test with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a backend shared by several instances when
// another instance wrote the folder since this one read it (the folder's
// lease moved): nothing was written, and the folder's holder carries on.
var ErrConflict = errors.New("another instance wrote this folder meanwhile (its lease moved)")

// ErrNeedsRecovery means a read-only open found a store its last writer
// did not close (a crash, kill -9): Badger must replay and truncate its
// log, which only a read-write open does.
var ErrNeedsRecovery = errors.New("the store was not closed cleanly and needs a read-write open to recover")

// Options configures Open.
type Options struct {
	// InMemory keeps the whole database in memory (tests); dir is ignored.
	InMemory bool
	// SyncWrites makes every commit durable (fsync) before it returns.
	// `serve` sets it. Concurrent commits share fsyncs (group commit; see
	// the package documentation).
	SyncWrites bool
	// Logger receives Badger's messages at WARNING and above (ERROR as
	// slog.LevelError, WARNING as slog.LevelWarn, attribute
	// component=badger). Nil discards them. Badger never writes to stdout.
	Logger *slog.Logger
	// HoldDeletions holds snapshots that delete too many of a folder's
	// files from being pushed (held.go). The zero value holds nothing.
	HoldDeletions HoldPolicy
	// ReadOnly opens an existing store for reading only (Badger's
	// read-only mode): nothing is written at open or close (no new
	// memtable and value log files, no flush or compaction), every write
	// fails, and several read-only processes may share the directory
	// (none while a read-write process holds it).
	ReadOnly bool
}

// Store is the open database. All methods are safe for concurrent use.
type Store struct {
	db       *badger.DB
	log      *slog.Logger
	z        *zcodec
	cache    *blobCache
	maxValue int // largest value written as one Badger value (see setValue)

	// Tuning, fixed at Open; tests lower them to exercise edge cases.
	maxDepth   int // deepest delta chain (blob.go)
	ckptMinGap int // checkpoint policy (snapshot.go)
	ckptMaxGap int

	mu      sync.Mutex
	folders map[folderKey]*folderState

	queueSeq *badger.Sequence // webhook queue keys (queue.go)

	space *spaceGuard // nil in memory (space.go)

	hold HoldPolicy // mass-deletion guard (held.go)

	// The group-commit committer of Enqueue (queue.go).
	enqMu     sync.RWMutex
	enqClosed bool
	enqCh     chan *enqReq
	enqQuit   chan struct{}
	enqDone   chan struct{}
}

// Badger tuning for a small server (a few hundred MB of history, 2 cores,
// little RAM). Each choice was measured or follows platform-notes.md:
const (
	// 4 MiB memtables (default 64 MiB): the memtable arena is allocated up
	// front, so this is most of Badger's heap. It also bounds one
	// transaction to 15% of it (~600 KiB of small entries); AddSnapshot
	// splits doc states off when a huge initial import exceeds that.
	memTableSize = 4 << 20
	// Two memtables (default 5): one being written, one being flushed.
	numMemtables = 2
	// Values up to 64 KiB stay in the LSM tree, where blocks are zstd
	// compressed and compaction drops stale versions; that is every
	// record but large blobs and huge checkpoints. Larger values go to the
	// value log, uncompressed, which is fine: they are our own zstd output
	// and are never rewritten. (A small memtable needs a threshold well
	// under 15% of it, or Badger refuses to open.)
	valueThreshold = 64 << 10
	// 16 MiB value log files (default 1 GiB, mmapped at twice that).
	valueLogFileSize = 16 << 20
	// Values above this are split into parts (keys.go 'x'); well under
	// the value log file size, which is Badger's hard limit for a value.
	maxDiskValue = 1 << 20
	// Block cache 8 MiB (default 256 MiB): decompressed LSM blocks;
	// decoded blobs have their own cache (blobCacheSize).
	blockCacheSize = 8 << 20
	// Index cache 4 MiB (default 0 = keep every table index in memory).
	indexCacheSize = 4 << 20
	// 1 MiB SSTables at the base level (default 2 MiB): a small database
	// still gets several tables, so compactions stay small.
	baseTableSize = 1 << 20
	// 16 KiB blocks (default 4 KiB): zstd sees more context per block
	// (consecutive snapshot records of a folder repeat paths and ids), at
	// the cost of reading 16 KiB for a point lookup.
	blockSize = 16 << 10
	// zstd level 3 for LSM blocks (Badger's default is 1).
	zstdLevel = 3
	// Two compactors (Badger's minimum that keeps L0 moving on 2 cores).
	numCompactors = 2
	// Decoded blobs: LRU bounded by bytes.
	blobCacheSize = 32 << 20
)

// badgerOptions returns the options Open uses (exposed to tests).
func badgerOptions(dir string, o Options) badger.Options {
	if o.InMemory {
		dir = ""
	}
	return badger.DefaultOptions(dir).
		WithInMemory(o.InMemory).
		WithReadOnly(o.ReadOnly).
		WithSyncWrites(o.SyncWrites).
		WithLogger(badgerLogger{newLogger(o.Logger)}).
		WithMetricsEnabled(false). // Badger's metrics are process-global expvars
		WithNumVersionsToKeep(1).
		WithMemTableSize(memTableSize).
		WithNumMemtables(numMemtables).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(valueLogFileSize).
		WithBlockCacheSize(blockCacheSize).
		WithIndexCacheSize(indexCacheSize).
		WithBaseTableSize(baseTableSize).
		WithBlockSize(blockSize).
		WithCompression(options.ZSTD).
		WithZSTDCompressionLevel(zstdLevel).
		WithNumCompactors(numCompactors).
		// Compact L0 on Close: the memtable flushed at Close lands in L0
		// with every version of rewritten keys (doc states); compacting it
		// leaves only live versions on disk.
		WithCompactL0OnClose(true).
		WithNumGoroutines(2)
}

func newLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// OpenReadOnly opens an existing store with o.ReadOnly set. A store whose
// last writer crashed is first recovered by one read-write open (Badger
// replays and truncates its log, as the writer's next start would).
func OpenReadOnly(dir string, o Options) (*Store, error) {
	o.ReadOnly = true
	st, err := Open(dir, o)
	if !errors.Is(err, ErrNeedsRecovery) {
		return st, err
	}
	rw := o
	rw.ReadOnly = false
	if st, err = Open(dir, rw); err != nil {
		return nil, err
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	return Open(dir, o)
}

// Open opens (creating if needed) the store in dir. Only one process may
// have a directory open; a second Open fails with an error that says so.
func Open(dir string, o Options) (*Store, error) {
	if !o.InMemory && dir == "" {
		return nil, errors.New("store: no data directory given")
	}
	if !o.InMemory && !o.ReadOnly { // reading needs no space
		if err := checkSpaceToOpen(dir); err != nil {
			return nil, err
		}
	}
	db, err := badger.Open(badgerOptions(dir, o))
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("store: data directory %s is locked by another process (is relay-git-sync serve running?): %w", dir, err)
		}
		if o.ReadOnly && strings.Contains(err.Error(), "Log truncate required") {
			return nil, fmt.Errorf("store: opening %s read-only: %w (%v)", dir, ErrNeedsRecovery, err)
		}
		return nil, fmt.Errorf("store: opening %s: %w", dir, err)
	}
	z, err := newZcodec()
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{
		db:         db,
		log:        newLogger(o.Logger),
		z:          z,
		cache:      newBlobCache(blobCacheSize),
		maxValue:   maxDiskValue,
		maxDepth:   maxDeltaDepth,
		ckptMinGap: checkpointMinEntries,
		ckptMaxGap: checkpointMaxGap,
		folders:    map[folderKey]*folderState{},
		hold:       o.HoldDeletions,
	}
	if !o.InMemory && !o.ReadOnly {
		s.space = &spaceGuard{dir: dir, log: s.log, lsm: func() int64 { lsm, _ := db.Size(); return lsm }}
	}
	if o.InMemory {
		// In memory every value must stay in the LSM tree, which takes
		// values strictly below the threshold (one of exactly the
		// threshold passes Badger's check and then panics in its write
		// path, badger v4.9.6 db.go writeToLSM).
		s.maxValue = valueThreshold - 1
	}
	if err := s.checkVersion(); err != nil {
		s.Close()
		if errors.Is(err, badger.ErrReadOnlyTxn) {
			err = errors.New("not a snapshot store (empty database): run `relay-git-sync sync` or `serve` with this data dir first")
		}
		return nil, fmt.Errorf("store: %s: %w", dir, err)
	}
	if o.ReadOnly {
		// No webhook queue: Badger refuses sequences in read-only mode,
		// and Enqueue fails on a closed committer.
		s.enqClosed = true
		return s, nil
	}
	// Leased in blocks: a restart skips at most a block of unused keys,
	// and keys stay monotonic.
	if s.queueSeq, err = db.GetSequence([]byte{prefixQueueSeq}, 256); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %s: %w", dir, err)
	}
	s.startCommitter()
	return s, nil
}

func (s *Store) checkVersion() error {
	return s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(versionKey())
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(versionKey(), []byte{layoutVersion})
		}
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if len(v) != 1 || v[0] != layoutVersion {
			return fmt.Errorf("database layout version %v, this build reads %d", v, layoutVersion)
		}
		return nil
	})
}

// Close flushes and closes the database. The Store must not be used after.
func (s *Store) Close() error {
	s.stopCommitter()
	if s.queueSeq != nil {
		s.queueSeq.Release()
	}
	err := s.db.Close()
	s.z.close()
	if err != nil {
		return fmt.Errorf("store: closing: %w", err)
	}
	return nil
}

// badgerLogger sends Badger's warnings and errors to slog and drops the
// rest (Badger is chatty at INFO: every compaction and flush).
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Log(context.Background(), slog.LevelError, strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}

func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Log(context.Background(), slog.LevelWarn, strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

// setValue stores val under key in txn. A value bigger than s.maxValue is
// split: the parts are written first, in their own write batch, under keys
// that include a random nonce, and txn stores only a formatParts marker
// (nonce, count, length). The value appears atomically when txn commits; a
// crash or a lost race in between leaves unreferenced parts, never a half
// or mixed value.
func (s *Store) setValue(txn *badger.Txn, key, val []byte) error {
	if len(val) <= s.maxValue {
		return txn.Set(key, val)
	}
	n := (len(val) + s.maxValue - 1) / s.maxValue
	nonce := rand.Uint64()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i := 0; i < n; i++ {
		part := val[i*s.maxValue : min(len(val), (i+1)*s.maxValue)]
		if err := wb.Set(partKey(key, nonce, i), part); err != nil {
			return err
		}
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	marker := []byte{formatParts}
	marker = binary.BigEndian.AppendUint64(marker, nonce)
	marker = binary.AppendUvarint(marker, uint64(n))
	marker = binary.AppendUvarint(marker, uint64(len(val)))
	return txn.Set(key, marker)
}

// getValue reads what setValue wrote; a missing key is ErrNotFound.
func getValue(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return joinParts(txn, key, v)
}

// parseParts decodes a formatParts marker.
func parseParts(v []byte) (nonce uint64, n int, total uint64, err error) {
	d := &dec{b: v[1:]}
	raw := d.raw(8)
	cnt, total := d.uvarint(), d.uvarint()
	if d.err != nil || cnt == 0 || cnt > 1<<24 || total > maxBlobSize+1<<20 {
		return 0, 0, 0, errCorrupt
	}
	return binary.BigEndian.Uint64(raw), int(cnt), total, nil
}

// joinParts returns v, or the value it points to if v is a parts marker.
func joinParts(txn *badger.Txn, key, v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != formatParts {
		return v, nil
	}
	nonce, n, total, err := parseParts(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, total)
	for i := 0; i < n; i++ {
		item, err := txn.Get(partKey(key, nonce, i))
		if err != nil {
			return nil, fmt.Errorf("part %d of %d: %w", i, n, err)
		}
		if err := item.Value(func(p []byte) error {
			out = append(out, p...)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if uint64(len(out)) != total {
		return nil, errCorrupt
	}
	return out, nil
}
