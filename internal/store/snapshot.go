package store

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
)

// File is one file of a snapshot's tree.
type File struct {
	Path  string // slash-separated, relative to the folder root (already sanitized by the caller)
	Blob  BlobID // content, stored with PutBlob before the snapshot
	Size  int64  // length of the blob's data
	DocID string // Relay guid of the document / file that holds this content
	Kind  string // "markdown" | "canvas" | "file"
}

// ChangeKind says how a path changed in a snapshot. The zero value is not
// a valid kind (AddSnapshot rejects it).
type ChangeKind uint8

// The change kinds.
const (
	ChangeAdded ChangeKind = iota + 1
	ChangeModified
	ChangeRenamed
	ChangeDeleted
)

// String returns "added", "modified", "renamed" or "deleted".
func (k ChangeKind) String() string {
	switch k {
	case ChangeAdded:
		return "added"
	case ChangeModified:
		return "modified"
	case ChangeRenamed:
		return "renamed"
	case ChangeDeleted:
		return "deleted"
	}
	return fmt.Sprintf("ChangeKind(%d)", uint8(k))
}

// Change is one entry of what a snapshot changed, as the caller described
// it (the store keeps it verbatim; it does not derive it from the trees).
type Change struct {
	Kind    ChangeKind
	Path    string // new path (the deleted path for ChangeDeleted)
	OldPath string // ChangeRenamed only (a rename may also change content)
	DocID   string
}

// Snapshot is the full state of one folder at one moment.
type Snapshot struct {
	Folder  FolderID
	Seq     uint64    // 1-based, monotonic per folder, assigned by AddSnapshot
	Time    time.Time // kept with nanosecond precision, returned in UTC
	Users   []string  // Relay user ids seen in the window
	Changes []Change
	Origin  Origin
	Files   []File // the whole tree, sorted by Path, unique
	// Events are the queue keys of the webhook events the snapshot
	// records: they are pending no more once it is added. The Badger
	// store acknowledges them in the snapshot's transaction and does not
	// keep the keys; a store shared by several instances logs them, so
	// that no instance records the events again. EventIDs are the
	// senders' ids of the same events: such a store's queue may hold one
	// event twice, under two keys (see internal/natsstore).
	Events   []uint64
	EventIDs []string
}

// SnapshotInfo is a snapshot without its tree (Snapshots lists these).
type SnapshotInfo struct {
	Seq      uint64
	Time     time.Time
	Users    []string
	Changes  []Change
	Origin   Origin
	NumFiles int
}

// Origin says which write of relay-git-sync itself made a snapshot's
// changes; the zero Origin is edits made in Relay.
type Origin struct {
	// Restored is the snapshot that a restore (relay-git-sync restore,
	// the web history browser) brought these changes back from.
	Restored uint64
	// Pushed is the git commit whose push (git push relay::) wrote them.
	Pushed *Pushed
}

// IsZero reports whether o is the zero Origin.
func (o Origin) IsZero() bool { return o.Restored == 0 && o.Pushed == nil }

// clone returns o with its own Pushed.
func (o Origin) clone() Origin {
	if o.Pushed != nil {
		p := *o.Pushed
		o.Pushed = &p
	}
	return o
}

// Pushed is a git commit pushed into Relay. The history synthesized from
// the snapshots uses it as the snapshot's commit wherever it continues
// from Parent, so the pusher's branch and the history agree (see
// internal/history).
type Pushed struct {
	Commit [20]byte // the pushed commit's id
	Parent [20]byte // the commit the push built on (zero: none, a first commit)
	// Pack is a stored blob holding a git pack of every object the pushed
	// commits reach that Parent does not (commits, trees, blobs).
	Pack BlobID
}

// DocState is ingest's per-document cache: the SHA-256 of the bytes fetched
// from Relay, the blob they produced, and the path the document had.
type DocState struct {
	Hash [32]byte
	Blob BlobID
	Path string
}

// Checkpoint policy. Snapshot k's tree is rebuilt from the newest
// checkpoint at or before k plus the tree deltas after it, so a checkpoint
// is written when those deltas (removed + added/changed entries since the
// last one) reach twice the tree size plus checkpointMinEntries, or after
// checkpointMaxGap snapshots. Rebuilding any snapshot then reads at most
// about three trees' worth of entries and at most checkpointMaxGap records,
// while checkpoints cost about a third of what the deltas cost. (A fixed
// "every 64 snapshots" rule would store a whole tree per 64 snapshots even
// when each changed one file: for 300 files over 5,000 snapshots, ~1 MB.)
const (
	checkpointMinEntries = 256
	checkpointMaxGap     = 1024
)

// folderState is what the store keeps in memory per folder: the latest
// tree (so AddSnapshot and Latest cost O(changes) I/O) and the last
// historical tree rebuilt (so reading snapshots in order is cheap).
type folderState struct {
	mu     sync.Mutex // serializes writers of this folder; guards the fields
	loaded bool
	known  bool        // folder record written
	head   uint64      // latest seq, 0 = none
	rec    *snapRecord // record of head (its tree delta dropped)
	files  []File      // tree at head; shared, never modified in place
	ckpt   uint64      // newest checkpoint seq (0 = none: start from the empty tree)
	since  int         // tree delta entries in snapshots after ckpt

	cursorSeq   uint64
	cursorFiles []File
}

// folder returns f's state, locked and loaded. The caller unlocks st.mu.
//
// States are created for folders that exist or are being written: a reader
// (write false) asking about a folder the store has never seen gets nil,
// so lookups of arbitrary ids cannot grow the map.
func (s *Store) folder(fk folderKey, write bool) (*folderState, error) {
	s.mu.Lock()
	st := s.folders[fk]
	s.mu.Unlock()
	if st == nil && !write {
		exists, err := s.folderExists(fk)
		if err != nil {
			return nil, fmt.Errorf("store: loading folder %s: %w", fk.id(), err)
		}
		if !exists {
			return nil, nil
		}
	}
	s.mu.Lock()
	if st = s.folders[fk]; st == nil {
		st = &folderState{}
		s.folders[fk] = st
	}
	s.mu.Unlock()
	st.mu.Lock()
	if !st.loaded {
		if err := s.load(fk, st); err != nil {
			st.mu.Unlock()
			return nil, fmt.Errorf("store: loading folder %s: %w", fk.id(), err)
		}
		st.loaded = true
	}
	return st, nil
}

// folderExists reports whether f was added or has snapshots.
func (s *Store) folderExists(fk folderKey) (bool, error) {
	exists := false
	err := s.db.View(func(txn *badger.Txn) error {
		if _, err := txn.Get(folderRecKey(fk)); err == nil {
			exists = true
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		head, err := lastSeq(txn, prefixSnapshot, fk, math.MaxUint64)
		exists = head > 0
		return err
	})
	return exists, err
}

// load reads a folder's head, newest checkpoint and latest tree.
func (s *Store) load(fk folderKey, st *folderState) error {
	return s.db.View(func(txn *badger.Txn) error {
		if _, err := txn.Get(folderRecKey(fk)); err == nil {
			st.known = true
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		head, err := lastSeq(txn, prefixSnapshot, fk, math.MaxUint64)
		if err != nil || head == 0 {
			return err
		}
		cp, files, err := s.checkpointAtOrBefore(txn, fk, head)
		if err != nil {
			return err
		}
		files, rec, since, err := s.replay(txn, fk, cp, files, head, nil)
		if err != nil {
			return err
		}
		rec.Removed, rec.Upserted = nil, nil
		st.head, st.rec, st.files, st.ckpt, st.since = head, rec, files, cp, since
		return nil
	})
}

// lastSeq returns the highest seq ≤ max of a key of kind p ('s' or 'c') of
// folder fk, or 0.
func lastSeq(txn *badger.Txn, p byte, fk folderKey, max uint64) (uint64, error) {
	opts := badger.DefaultIteratorOptions
	opts.Reverse = true
	opts.PrefetchValues = false
	opts.Prefix = folderPrefix(p, fk)
	it := txn.NewIterator(opts)
	defer it.Close()
	it.Seek(seqKey(p, fk, max))
	if !it.Valid() {
		return 0, nil
	}
	return seqOf(it.Item().Key()), nil
}

// checkpointAtOrBefore returns the newest checkpoint ≤ seq and its tree, or
// (0, nil): the empty tree before snapshot 1.
func (s *Store) checkpointAtOrBefore(txn *badger.Txn, fk folderKey, seq uint64) (uint64, []File, error) {
	cp, err := lastSeq(txn, prefixCheckpoint, fk, seq)
	if err != nil || cp == 0 {
		return 0, nil, err
	}
	v, err := getValue(txn, seqKey(prefixCheckpoint, fk, cp))
	if err != nil {
		return 0, nil, err
	}
	files, err := s.decodeCheckpoint(v)
	if err != nil {
		return 0, nil, fmt.Errorf("checkpoint %d: %w", cp, err)
	}
	return cp, files, nil
}

// replay applies the tree deltas of snapshots from+1..to to files (the tree
// at from) and returns the tree at to, the record of to, and the number of
// delta entries applied. Each intermediate snapshot is passed to each, if
// non-nil (the tree slice is shared: copy before modifying).
func (s *Store) replay(txn *badger.Txn, fk folderKey, from uint64, files []File, to uint64,
	each func(seq uint64, rec *snapRecord, files []File) error) ([]File, *snapRecord, int, error) {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchSize = 16
	opts.Prefix = folderPrefix(prefixSnapshot, fk)
	it := txn.NewIterator(opts)
	defer it.Close()
	var rec *snapRecord
	entries := 0
	want := from + 1
	for it.Seek(seqKey(prefixSnapshot, fk, want)); it.Valid() && want <= to; it.Next() {
		item := it.Item()
		if seq := seqOf(item.Key()); seq != want {
			return nil, nil, 0, fmt.Errorf("snapshot %d: %w (found %d next)", want, errCorrupt, seq)
		}
		v, err := item.ValueCopy(nil)
		if err == nil {
			v, err = joinParts(txn, item.KeyCopy(nil), v)
		}
		if err == nil {
			rec, err = s.decodeSnapRecord(v)
		}
		if err != nil {
			return nil, nil, 0, fmt.Errorf("snapshot %d: %w", want, err)
		}
		files = applyTreeDelta(files, rec.Removed, rec.Upserted)
		if len(files) != rec.NumFiles {
			return nil, nil, 0, fmt.Errorf("snapshot %d: %w (tree has %d files, record says %d)", want, errCorrupt, len(files), rec.NumFiles)
		}
		entries += len(rec.Removed) + len(rec.Upserted)
		if each != nil {
			if err := each(want, rec, files); err != nil {
				return nil, nil, 0, err
			}
		}
		want++
	}
	if want <= to {
		return nil, nil, 0, fmt.Errorf("snapshot %d: %w (missing)", want, errCorrupt)
	}
	if rec == nil && to > 0 { // from == to: the tree is known, read the record
		v, err := getValue(txn, seqKey(prefixSnapshot, fk, to))
		if err == nil {
			rec, err = s.decodeSnapRecord(v)
		}
		if err != nil {
			return nil, nil, 0, fmt.Errorf("snapshot %d: %w", to, err)
		}
	}
	return files, rec, entries, nil
}

// applyTreeDelta returns files (sorted) without the removed paths and with
// upserted (sorted) added or replaced. files is not modified.
func applyTreeDelta(files []File, removed []string, upserted []File) []File {
	if len(removed) == 0 && len(upserted) == 0 {
		return files
	}
	out := make([]File, 0, len(files)+len(upserted))
	i, j, k := 0, 0, 0
	for i < len(files) || j < len(upserted) {
		if i < len(files) {
			for k < len(removed) && removed[k] < files[i].Path {
				k++
			}
			if k < len(removed) && removed[k] == files[i].Path {
				i++
				k++
				continue
			}
		}
		switch {
		case j == len(upserted) || (i < len(files) && files[i].Path < upserted[j].Path):
			out = append(out, files[i])
			i++
		case i == len(files) || upserted[j].Path < files[i].Path:
			out = append(out, upserted[j])
			j++
		default: // same path: replaced
			out = append(out, upserted[j])
			i++
			j++
		}
	}
	return out
}

// diffTrees returns what turns prev into next (both sorted by path): the
// paths that are gone, and the files that are new or differ in any field.
func diffTrees(prev, next []File) (removed []string, upserted []File) {
	i, j := 0, 0
	for i < len(prev) || j < len(next) {
		switch {
		case j == len(next) || (i < len(prev) && prev[i].Path < next[j].Path):
			removed = append(removed, prev[i].Path)
			i++
		case i == len(prev) || next[j].Path < prev[i].Path:
			upserted = append(upserted, next[j])
			j++
		default:
			if prev[i] != next[j] {
				upserted = append(upserted, next[j])
			}
			i++
			j++
		}
	}
	return removed, upserted
}

// AddFolder records that folder f is followed, even before its first
// snapshot. It is idempotent.
func (s *Store) AddFolder(f FolderID) error {
	fk, err := f.key()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	st, err := s.folder(fk, true)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if st.known {
		return nil
	}
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(folderRecKey(fk), []byte{folderV1})
	}); err != nil {
		return fmt.Errorf("store: adding folder %s: %w", fk.id(), err)
	}
	st.known = true
	return nil
}

// Folders returns every folder added with AddFolder or with snapshots,
// sorted (by relay, then folder).
func (s *Store) Folders() ([]FolderID, error) {
	var out []FolderID
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{prefixFolder}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != 1+32 {
				return fmt.Errorf("folder key %x: %w", k, errCorrupt)
			}
			out = append(out, folderKey(k[1:]).id())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: listing folders: %w", err)
	}
	return out, nil
}

// AddSnapshot records snap as the folder's next snapshot and returns its
// sequence number (also set in snap.Seq, whose value on input is ignored;
// snap.Folder is lower-cased).
//
// In one transaction it writes the snapshot (its time, users, changes and
// the tree's delta against the previous snapshot; every so often a full
// checkpoint of the tree), which also makes it the folder's latest, marks
// the folder as followed, and updates the folder's doc states: docs are set
// (replacing any state of those ids) and dropDocs are removed. An id may
// not be in both. (Only an initial import of thousands of documents can
// exceed Badger's transaction size; the doc states are then written just
// before the snapshot, in batches. They are a cache, so a crash between the
// two costs a re-fetch at most.)
//
// snap.Files must be sorted by Path without duplicates, each with a
// non-empty clean relative path, a known Kind, a DocID, and a blob that is
// stored with exactly Size bytes; Changes must have valid kinds and paths;
// Time must be set. Errors name the offending file or change. The caller
// keeps ownership of snap: the store copies what it keeps.
func (s *Store) AddSnapshot(snap *Snapshot, docs map[string]DocState, dropDocs []string) (uint64, error) {
	return s.AddSnapshotHolding(snap, docs, dropDocs, s.hold)
}

// AddSnapshotHolding is AddSnapshot with the mass-deletion policy p in
// place of the store's: a replica applies a write with the policy of the
// instance that made it, so every replica holds the same snapshots.
func (s *Store) AddSnapshotHolding(snap *Snapshot, docs map[string]DocState, dropDocs []string, p HoldPolicy) (uint64, error) {
	if snap == nil {
		return 0, errors.New("store: AddSnapshot: nil snapshot")
	}
	fk, err := snap.Folder.key()
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	fid := fk.id()
	if err := validateSnapshot(snap, docs, dropDocs); err != nil {
		return 0, fmt.Errorf("store: snapshot of %s: %w", fid, err)
	}
	st, err := s.folder(fk, true)
	if err != nil {
		return 0, err
	}
	defer st.mu.Unlock()

	removed, upserted := diffTrees(st.files, snap.Files)
	if err := s.checkBlobs(upserted); err != nil {
		return 0, fmt.Errorf("store: snapshot of %s: %w", fid, err)
	}
	seq := st.head + 1
	if r := snap.Origin.Restored; r >= seq {
		return 0, fmt.Errorf("store: snapshot %d of %s: restored from snapshot %d, which is not an earlier one", seq, fid, r)
	}
	if p := snap.Origin.Pushed; p != nil {
		if p.Commit == ([20]byte{}) {
			return 0, fmt.Errorf("store: snapshot of %s: pushed commit without an id", fid)
		}
		switch has, err := s.HasBlob(p.Pack); {
		case err != nil:
			return 0, fmt.Errorf("store: snapshot of %s: %w", fid, err)
		case !has:
			return 0, fmt.Errorf("store: snapshot of %s: the pack of the pushed commit, blob %s, is not stored", fid, p.Pack)
		}
	}
	rec := &snapRecord{
		Time:     snap.Time.UTC(),
		NumFiles: len(snap.Files),
		Removed:  removed,
		Upserted: upserted,
		Users:    slices.Clone(snap.Users),
		Changes:  slices.Clone(snap.Changes),
		Origin:   snap.Origin.clone(),
	}
	entries := len(removed) + len(upserted)
	ckpt := st.since+entries >= 2*len(snap.Files)+s.ckptMinGap || seq-st.ckpt >= uint64(s.ckptMaxGap)
	files := slices.Clone(snap.Files)
	held, err := s.holdFor(p, fk, st, seq, files, snap.Time)
	if err != nil {
		return 0, fmt.Errorf("store: snapshot %d of %s: %w", seq, fid, err)
	}
	write := func(txn *badger.Txn) error {
		if held != nil {
			if err := txn.Set(heldKey(fk), held); err != nil {
				return err
			}
		}
		if !st.known {
			if err := txn.Set(folderRecKey(fk), []byte{folderV1}); err != nil {
				return err
			}
		}
		if err := s.setValue(txn, seqKey(prefixSnapshot, fk, seq), s.encodeSnapRecord(rec)); err != nil {
			return err
		}
		// Its events are acknowledged with it: a crash in between cannot
		// leave them to be recorded again.
		for _, k := range snap.Events {
			if err := txn.Delete(queueKey(k)); err != nil {
				return err
			}
		}
		if ckpt {
			return s.setValue(txn, seqKey(prefixCheckpoint, fk, seq), s.encodeCheckpoint(files))
		}
		return nil
	}
	if err := s.commitWithDocs(fk, write, docs, dropDocs); err != nil {
		return 0, fmt.Errorf("store: snapshot %d of %s: %w", seq, fid, err)
	}
	rec.Removed, rec.Upserted = nil, nil
	st.known, st.head, st.rec, st.files = true, seq, rec, files
	if ckpt {
		st.ckpt, st.since = seq, 0
	} else {
		st.since += entries
	}
	snap.Seq, snap.Folder = seq, fid
	return seq, nil
}

// PutDocStates updates folder f's doc states without a snapshot: docs are
// set, dropDocs removed (see AddSnapshot).
func (s *Store) PutDocStates(f FolderID, docs map[string]DocState, dropDocs []string) error {
	fk, err := f.key()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := validateDocs(docs, dropDocs); err != nil {
		return fmt.Errorf("store: doc states of %s: %w", fk.id(), err)
	}
	st, err := s.folder(fk, true)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if err := s.commitWithDocs(fk, nil, docs, dropDocs); err != nil {
		return fmt.Errorf("store: doc states of %s: %w", fk.id(), err)
	}
	return nil
}

// commitWithDocs runs write and the doc state updates in one transaction,
// falling back to writing the doc states first (in batches) when they do
// not fit in one.
func (s *Store) commitWithDocs(fk folderKey, write func(*badger.Txn) error, docs map[string]DocState, drop []string) error {
	ids := make([]string, 0, len(docs))
	for id := range docs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// Snapshot records and checkpoints are compressed and usually small;
	// the reserve's slack covers them, and doc states are counted here.
	release, err := s.reserveSpace(128 * (len(ids) + len(drop)))
	if err != nil {
		return err
	}
	defer release()
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, id := range ids {
			if err := txn.Set(docStateKey(fk, id), encodeDocState(docs[id])); err != nil {
				return err
			}
		}
		for _, id := range drop {
			if err := txn.Delete(docStateKey(fk, id)); err != nil {
				return err
			}
		}
		if write != nil {
			return write(txn)
		}
		return nil
	})
	if !errors.Is(err, badger.ErrTxnTooBig) {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, id := range ids {
		if err := wb.Set(docStateKey(fk, id), encodeDocState(docs[id])); err != nil {
			return err
		}
	}
	for _, id := range drop {
		if err := wb.Delete(docStateKey(fk, id)); err != nil {
			return err
		}
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	if write == nil {
		return nil
	}
	return s.db.Update(write)
}

// checkBlobs verifies that each file's blob is stored with the file's size.
func (s *Store) checkBlobs(files []File) error {
	return s.db.View(func(txn *badger.Txn) error {
		for _, f := range files {
			r, err := blobHeaderTxn(txn, f.Blob)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("file %q: blob %s is not stored", f.Path, f.Blob)
			}
			if err != nil {
				return fmt.Errorf("file %q: blob %s: %w", f.Path, f.Blob, err)
			}
			if r.size != uint64(f.Size) {
				return fmt.Errorf("file %q: size %d, but blob %s has %d bytes", f.Path, f.Size, f.Blob, r.size)
			}
		}
		return nil
	})
}

func validateSnapshot(snap *Snapshot, docs map[string]DocState, drop []string) error {
	if snap.Time.IsZero() {
		return errors.New("time is not set")
	}
	for i, f := range snap.Files {
		if err := checkPath(f.Path); err != nil {
			return fmt.Errorf("file %d %q: %w", i, f.Path, err)
		}
		if i > 0 {
			switch p := snap.Files[i-1].Path; {
			case p == f.Path:
				return fmt.Errorf("file %d %q: duplicate path", i, f.Path)
			case p > f.Path:
				return fmt.Errorf("file %d %q: files not sorted by path (after %q)", i, f.Path, p)
			}
		}
		if f.Blob.IsZero() {
			return fmt.Errorf("file %q: no blob", f.Path)
		}
		if f.Size < 0 {
			return fmt.Errorf("file %q: negative size %d", f.Path, f.Size)
		}
		if _, ok := kindCodes[f.Kind]; !ok {
			return fmt.Errorf("file %q: unknown kind %q (want markdown, canvas or file)", f.Path, f.Kind)
		}
		if f.DocID == "" {
			return fmt.Errorf("file %q: no doc id", f.Path)
		}
	}
	for i, c := range snap.Changes {
		if c.Kind < ChangeAdded || c.Kind > ChangeDeleted {
			return fmt.Errorf("change %d (%q): invalid kind %d", i, c.Path, c.Kind)
		}
		if c.Path == "" {
			return fmt.Errorf("change %d (%s): empty path", i, c.Kind)
		}
		if (c.Kind == ChangeRenamed) != (c.OldPath != "") {
			return fmt.Errorf("change %d (%s %q): OldPath %q is for renames only, and required for them", i, c.Kind, c.Path, c.OldPath)
		}
	}
	for i, u := range snap.Users {
		if u == "" {
			return fmt.Errorf("user %d: empty id", i)
		}
	}
	return validateDocs(docs, drop)
}

func validateDocs(docs map[string]DocState, drop []string) error {
	for id := range docs {
		if id == "" {
			return errors.New("doc state with an empty doc id")
		}
	}
	for _, id := range drop {
		if id == "" {
			return errors.New("dropped doc state with an empty doc id")
		}
		if _, ok := docs[id]; ok {
			return fmt.Errorf("doc %q is both set and dropped", id)
		}
	}
	return nil
}

// checkPath accepts a clean, relative, slash-separated path: no empty, "."
// or ".." components, no leading or trailing slash, no NUL, valid UTF-8.
// (The caller sanitizes paths; this only keeps nonsense out of the store.)
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case !utf8.ValidString(p):
		return errors.New("path is not valid UTF-8")
	case strings.IndexByte(p, 0) >= 0:
		return errors.New("path contains NUL")
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "":
			return errors.New("path has an empty component (leading, trailing or double slash)")
		case ".", "..":
			return fmt.Errorf("path has a %q component", c)
		}
	}
	return nil
}

// Latest returns folder f's newest snapshot, or an error wrapping
// ErrNotFound when it has none. It is served from memory after the first
// call. The result is the caller's.
func (s *Store) Latest(f FolderID) (*Snapshot, error) {
	fk, err := f.key()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	st, err := s.folder(fk, false)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("store: folder %s has no snapshots: %w", fk.id(), ErrNotFound)
	}
	defer st.mu.Unlock()
	if st.head == 0 {
		return nil, fmt.Errorf("store: folder %s has no snapshots: %w", fk.id(), ErrNotFound)
	}
	return makeSnapshot(fk, st.head, st.rec, slices.Clone(st.files)), nil
}

// Head returns the sequence number and time of folder f's latest snapshot,
// or 0 and the zero time when it has none (or is unknown). It reads the
// state kept in memory, or only the head record of a folder not loaded:
// no history is decoded.
func (s *Store) Head(f FolderID) (uint64, time.Time, error) {
	fk, err := f.key()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("store: %w", err)
	}
	s.mu.Lock()
	inMemory := s.folders[fk] != nil
	s.mu.Unlock()
	if !inMemory {
		// Read the head record alone: loading the folder would rebuild
		// its latest tree from the newest checkpoint (up to a thousand
		// tree deltas), which a reader asking only for the head, or
		// walking the history once (git-remote-relay), does not need.
		return s.headOnDisk(fk)
	}
	st, err := s.folder(fk, false)
	if err != nil || st == nil {
		return 0, time.Time{}, err
	}
	defer st.mu.Unlock()
	if st.head == 0 {
		return 0, time.Time{}, nil
	}
	return st.head, st.rec.Time, nil
}

// headOnDisk reads folder fk's latest sequence number and its time from
// the database (0 and the zero time when it has no snapshots).
func (s *Store) headOnDisk(fk folderKey) (uint64, time.Time, error) {
	var seq uint64
	var t time.Time
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if seq, err = lastSeq(txn, prefixSnapshot, fk, math.MaxUint64); err != nil || seq == 0 {
			return err
		}
		v, err := getValue(txn, seqKey(prefixSnapshot, fk, seq))
		if err != nil {
			return err
		}
		rec, err := s.decodeSnapRecord(v)
		if err != nil {
			return fmt.Errorf("snapshot %d: %w", seq, err)
		}
		t = rec.Time
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("store: reading the head of folder %s: %w", fk.id(), err)
	}
	return seq, t, nil
}

func makeSnapshot(fk folderKey, seq uint64, rec *snapRecord, files []File) *Snapshot {
	return &Snapshot{
		Folder:  fk.id(),
		Seq:     seq,
		Time:    rec.Time,
		Users:   slices.Clone(rec.Users),
		Changes: slices.Clone(rec.Changes),
		Origin:  rec.Origin.clone(),
		Files:   files,
	}
}

// Snapshot returns snapshot seq of folder f with its whole tree, or an
// error wrapping ErrNotFound. The tree is rebuilt from the newest
// checkpoint at or before seq, or from the last tree this folder rebuilt
// when that is closer, so reading a folder's snapshots in ascending order
// costs O(changes) reads each (Walk is cheaper still).
func (s *Store) Snapshot(f FolderID, seq uint64) (*Snapshot, error) {
	fk, err := f.key()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	st, err := s.folder(fk, false)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("store: snapshot %d of %s: %w", seq, fk.id(), ErrNotFound)
	}
	head, headRec, headFiles := st.head, st.rec, st.files
	curSeq, curFiles := st.cursorSeq, st.cursorFiles
	st.mu.Unlock()
	if seq == 0 || seq > head {
		return nil, fmt.Errorf("store: snapshot %d of %s: %w", seq, fk.id(), ErrNotFound)
	}
	if seq == head {
		return makeSnapshot(fk, seq, headRec, slices.Clone(headFiles)), nil
	}
	var files []File
	var rec *snapRecord
	err = s.db.View(func(txn *badger.Txn) error {
		from, start, err := s.checkpointAtOrBefore(txn, fk, seq)
		if err != nil {
			return err
		}
		if curSeq > from && curSeq <= seq {
			from, start = curSeq, curFiles
		}
		files, rec, _, err = s.replay(txn, fk, from, start, seq, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: snapshot %d of %s: %w", seq, fk.id(), err)
	}
	st.mu.Lock()
	st.cursorSeq, st.cursorFiles = seq, files
	st.mu.Unlock()
	return makeSnapshot(fk, seq, rec, slices.Clone(files)), nil
}

// Walk calls fn with each snapshot of folder f after afterSeq, in
// ascending order, each with its whole tree (which fn may keep). It reads
// the history once, applying each snapshot's changes to the previous tree:
// the way to process many snapshots (history synthesis, export of all).
// An error from fn stops the walk and is returned as is. fn runs inside
// one Badger read transaction (it may call other Store methods, but should
// not block for long: an open read keeps compaction from dropping old
// versions). Snapshots added during the walk are not included.
func (s *Store) Walk(f FolderID, afterSeq uint64, fn func(*Snapshot) error) error {
	fk, err := f.key()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	head, _, err := s.Head(f)
	if err != nil {
		return err
	}
	if afterSeq >= head {
		return nil
	}
	var fnErr error
	err = s.db.View(func(txn *badger.Txn) error {
		from, files, err := s.checkpointAtOrBefore(txn, fk, afterSeq)
		if err != nil {
			return err
		}
		_, _, _, err = s.replay(txn, fk, from, files, head, func(seq uint64, rec *snapRecord, files []File) error {
			if seq <= afterSeq {
				return nil
			}
			if err := fn(makeSnapshot(fk, seq, rec, slices.Clone(files))); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
		return err
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: walking snapshots of %s: %w", fk.id(), err)
	}
	return nil
}

// Snapshots lists folder f's snapshots after afterSeq in ascending order,
// without their trees. A folder without snapshots gives an empty list.
func (s *Store) Snapshots(f FolderID, afterSeq uint64) ([]SnapshotInfo, error) {
	fk, err := f.key()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []SnapshotInfo
	err = s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchSize = 16
		opts.Prefix = folderPrefix(prefixSnapshot, fk)
		it := txn.NewIterator(opts)
		defer it.Close()
		if afterSeq == math.MaxUint64 {
			return nil
		}
		for it.Seek(seqKey(prefixSnapshot, fk, afterSeq+1)); it.Valid(); it.Next() {
			item := it.Item()
			seq := seqOf(item.Key())
			v, err := item.ValueCopy(nil)
			if err == nil {
				v, err = joinParts(txn, item.KeyCopy(nil), v)
			}
			var rec *snapRecord
			if err == nil {
				rec, err = s.decodeSnapRecord(v)
			}
			if err != nil {
				return fmt.Errorf("snapshot %d: %w", seq, err)
			}
			out = append(out, SnapshotInfo{Seq: seq, Time: rec.Time, Users: rec.Users, Changes: rec.Changes, Origin: rec.Origin, NumFiles: rec.NumFiles})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: listing snapshots of %s: %w", fk.id(), err)
	}
	return out, nil
}

// DocStates returns folder f's doc states by doc id (empty, not nil, when
// there are none).
func (s *Store) DocStates(f FolderID) (map[string]DocState, error) {
	fk, err := f.key()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := map[string]DocState{}
	err = s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = folderPrefix(prefixDocState, fk)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			id, err := docIDFromKey(item.Key())
			if err != nil {
				return fmt.Errorf("doc state key %x: %w", item.Key(), err)
			}
			if err := item.Value(func(v []byte) error {
				st, err := decodeDocState(v)
				out[id] = st
				return err
			}); err != nil {
				return fmt.Errorf("doc state of %q: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: doc states of %s: %w", fk.id(), err)
	}
	return out, nil
}
