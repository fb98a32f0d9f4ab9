package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// The integrity check (`relay-git-sync check`, after restic's check).
//
// Check reads the whole store in one read transaction, so it sees one
// point in time even while snapshots are being added. It does not stop at
// the first problem: every damaged record is reported as a Finding that
// says where it is (folder, snapshot, file, blob) and what is wrong, and
// the check goes on with what can still be read.
//
// Passes, in order:
//
//  1. Blobs: every blob record parses and its delta chain resolves (each
//     base is stored, one level shallower, and long enough for the delta);
//     with ReadData every blob is decoded and hashed against its id.
//  2. Folders: every folder with snapshots has a folder record; each
//     folder's snapshot records decode, in sequence without gaps, and
//     replaying their tree deltas from the empty tree rebuilds every tree
//     (sizes as recorded; every checkpoint equal to the replayed tree);
//     every file a snapshot adds or changes names a stored blob of the
//     file's size that pass 1 found intact.
//  3. Doc states, queued events, push states, held records (mass-deletion
//     guard) and the history config decode, and refer to folders,
//     snapshots and blobs that exist.
//
// Memory stays bounded by one folder's tree (as Walk) plus the ids of the
// damaged blobs, and, with ReadData, a cache of decoded delta bases.

// Finding is one problem found by Check. Fields that do not apply are
// zero.
type Finding struct {
	// Record is the kind of record that is damaged or inconsistent:
	// "blob", "folder", "snapshot", "checkpoint", "doc state",
	// "queued event", "push state", "held", "history config" or
	// "layout version".
	Record string
	Folder FolderID
	// Seq is the snapshot (or checkpoint) concerned.
	Seq uint64
	// Path is the file of snapshot Seq's tree concerned.
	Path string
	// Blob is the blob concerned.
	Blob BlobID
	// Doc is the document of a doc state; Conn a push state's connector;
	// Event a queued event's key.
	Doc   string
	Conn  string
	Event uint64
	// Problem says what is wrong, and what it breaks.
	Problem string
}

// String is the finding on one line: where, then what.
func (f Finding) String() string {
	var where []string
	if f.Folder != (FolderID{}) {
		where = append(where, "folder "+f.Folder.String())
	}
	if f.Seq != 0 {
		kind := "snapshot"
		if f.Record == "checkpoint" {
			kind = "checkpoint"
		}
		where = append(where, fmt.Sprintf("%s %d", kind, f.Seq))
	}
	if f.Path != "" {
		where = append(where, fmt.Sprintf("file %q", f.Path))
	}
	if f.Doc != "" {
		where = append(where, fmt.Sprintf("doc state %q", f.Doc))
	}
	if f.Conn != "" {
		where = append(where, "connector "+f.Conn)
	}
	if f.Event != 0 {
		where = append(where, fmt.Sprintf("queued event %d", f.Event))
	}
	if !f.Blob.IsZero() {
		where = append(where, "blob "+f.Blob.String())
	}
	if len(where) == 0 {
		where = append(where, f.Record)
	}
	return strings.Join(where, ", ") + ": " + f.Problem
}

// CheckOptions configures Check.
type CheckOptions struct {
	// ReadData decodes every blob and checks that it hashes to its id
	// (reads all content; without it only records and chains are checked).
	ReadData bool
}

// CheckStats counts what Check looked at.
type CheckStats struct {
	Blobs       int   // blob records
	BlobsRead   int   // blobs decoded and hashed (ReadData)
	BytesRead   int64 // their content
	Folders     int
	Snapshots   int // snapshot records
	Checkpoints int
	DocStates   int
	Events      int // queued webhook events
	PushStates  int // push state and owned-paths records
	Held        int // mass-deletion records (holds and dropped snapshots)
	Problems    int // findings reported
}

// Check verifies the whole store (see above) and calls report with each
// problem found, as it is found. The error is only for what stops the
// check itself (ctx ended, the database failed); damage is reported, not
// returned.
func (s *Store) Check(ctx context.Context, o CheckOptions, report func(Finding)) (CheckStats, error) {
	c := &checker{
		s:       s,
		ctx:     ctx,
		o:       o,
		report:  report,
		bad:     map[BlobID]string{},
		heads:   map[folderKey]uint64{},
		folders: map[folderKey]bool{},
	}
	if o.ReadData {
		// Decoded delta bases: blobs are visited in id order, so a chain's
		// members come in any order; without a cache each would decode
		// its whole chain again.
		c.cache = newBlobCache(blobCacheSize)
	}
	err := s.db.View(func(txn *badger.Txn) error {
		c.txn = txn
		for _, pass := range []func() error{c.version, c.blobs, c.allFolders, c.docStates, c.queue, c.pushStates, c.held, c.historyConfig} {
			if err := pass(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return c.stats, fmt.Errorf("store: check: %w", err)
	}
	return c.stats, nil
}

type checker struct {
	s      *Store
	ctx    context.Context
	o      CheckOptions
	report func(Finding)
	txn    *badger.Txn
	stats  CheckStats
	cache  *blobCache

	bad     map[BlobID]string    // damaged blobs, and why
	folders map[folderKey]bool   // folders with a folder record or snapshots
	heads   map[folderKey]uint64 // latest snapshot of each folder
}

func (c *checker) add(f Finding) {
	c.stats.Problems++
	c.report(f)
}

// iterate calls fn with each item under prefix, checking ctx as it goes.
func (c *checker) iterate(prefix []byte, values bool, fn func(*badger.Item)) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = values
	opts.PrefetchSize = 16
	it := c.txn.NewIterator(opts)
	defer it.Close()
	for i := 0; ; i++ {
		if i%256 == 0 {
			if err := c.ctx.Err(); err != nil {
				return err
			}
		}
		if i == 0 {
			it.Rewind()
		} else {
			it.Next()
		}
		if !it.Valid() {
			return nil
		}
		fn(it.Item())
	}
}

// value reads an item's whole value, joining a split one.
func (c *checker) value(item *badger.Item) ([]byte, error) {
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	v, err = joinParts(c.txn, item.KeyCopy(nil), v)
	if err != nil {
		return nil, fmt.Errorf("split value: %w", err)
	}
	return v, nil
}

func (c *checker) version() error {
	v, err := getValue(c.txn, versionKey())
	if err == nil && (len(v) != 1 || v[0] != layoutVersion) {
		err = fmt.Errorf("%v, want [%d]", v, layoutVersion)
	}
	if err != nil {
		c.add(Finding{Record: "layout version", Problem: fmt.Sprintf("the layout version record is damaged: %v", err)})
	}
	return nil
}

// blobs is pass 1.
func (c *checker) blobs() error {
	return c.iterate([]byte{prefixBlob}, c.o.ReadData, func(item *badger.Item) {
		c.stats.Blobs++
		k := item.Key()
		if len(k) != 1+len(BlobID{}) {
			c.add(Finding{Record: "blob", Problem: fmt.Sprintf("blob key %x has the wrong length", k)})
			return
		}
		id := BlobID(k[1:])
		var err error
		if c.o.ReadData {
			var data []byte
			if data, err = c.decode(id, 0); err == nil {
				c.stats.BlobsRead++
				c.stats.BytesRead += int64(len(data))
			}
		} else {
			err = c.chain(id)
		}
		if err != nil {
			c.bad[id] = err.Error()
			c.add(Finding{Record: "blob", Blob: id, Problem: err.Error()})
		}
	})
}

// errEmpty is a record whose value reads as nothing: Badger drops a value
// log entry whose checksum is wrong when it opens the store, and the key
// then reads as empty.
var errEmpty = errors.New("the record is empty (its value was lost)")

// header reads blob id's record header; a missing blob says so.
func (c *checker) header(id BlobID) (blobRec, error) {
	r, err := blobHeaderTxn(c.txn, id)
	if errors.Is(err, ErrNotFound) {
		return r, errors.New("not stored")
	}
	if errors.Is(err, errCorrupt) {
		if v, verr := getValue(c.txn, blobKey(id)); verr == nil && len(v) == 0 {
			err = errEmpty
		}
	}
	if err != nil {
		return r, fmt.Errorf("record damaged: %w", err)
	}
	return r, nil
}

// chain checks blob id's record header and walks its delta chain to the
// full copy it starts from, by headers only.
func (c *checker) chain(id BlobID) error {
	r, err := c.header(id)
	if err != nil {
		return err
	}
	for i := 1; r.format == blobDelta; i++ {
		if i > maxChainWalk {
			return fmt.Errorf("delta chain longer than %d", maxChainWalk)
		}
		b, err := c.header(r.base)
		if err != nil {
			return fmt.Errorf("delta base %s (%d up its chain): %w", r.base, i, err)
		}
		if b.depth+1 != r.depth {
			return fmt.Errorf("delta base %s (%d up its chain) is %d deltas deep, the delta on it says %d", r.base, i, b.depth, r.depth-1)
		}
		if r.prefix+r.suffix > b.size {
			return fmt.Errorf("delta on base %s (%d up its chain) takes %d bytes of its %d", r.base, i, r.prefix+r.suffix, b.size)
		}
		r = b
	}
	return nil
}

// decode returns blob id's content, checked against the id.
func (c *checker) decode(id BlobID, depth int) ([]byte, error) {
	if data, ok := c.cache.get(id); ok {
		return data, nil
	}
	if why, ok := c.bad[id]; ok {
		return nil, errors.New(why)
	}
	if depth > maxChainWalk {
		return nil, fmt.Errorf("delta chain longer than %d", maxChainWalk)
	}
	data, err := c.decodeRecord(id, depth)
	if err != nil {
		if depth > 0 {
			c.bad[id] = err.Error()
		}
		return nil, err
	}
	c.cache.add(id, data)
	return data, nil
}

func (c *checker) decodeRecord(id BlobID, depth int) ([]byte, error) {
	v, err := getValue(c.txn, blobKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, errors.New("not stored")
	}
	if err == nil && len(v) == 0 {
		err = errEmpty
	}
	if err != nil {
		return nil, fmt.Errorf("record damaged: %w", err)
	}
	r, err := parseBlobRec(v)
	if err != nil {
		return nil, fmt.Errorf("record damaged: %w", err)
	}
	var data []byte
	switch r.format {
	case blobRaw:
		data = r.payload
	case blobZstd:
		if data, err = c.s.z.decompress(r.payload, int(r.size)); err != nil {
			return nil, fmt.Errorf("content does not decompress: %w", err)
		}
	case blobDelta:
		base, err := c.decode(r.base, depth+1)
		if err != nil {
			return nil, fmt.Errorf("delta base %s: %w", r.base, err)
		}
		if data, err = r.applyDelta(c.s.z, base); err != nil {
			return nil, fmt.Errorf("delta on %s does not apply: %w", r.base, err)
		}
	}
	if uint64(len(data)) != r.size {
		return nil, fmt.Errorf("content is %d bytes, the record says %d", len(data), r.size)
	}
	if got := BlobIDOf(data); got != id {
		return nil, fmt.Errorf("content does not match its id (it hashes to %s)", got)
	}
	return data, nil
}

// allFolders is pass 2.
func (c *checker) allFolders() error {
	err := c.iterate([]byte{prefixFolder}, true, func(item *badger.Item) {
		k := item.Key()
		if len(k) != 1+32 {
			c.add(Finding{Record: "folder", Problem: fmt.Sprintf("folder key %x has the wrong length", k)})
			return
		}
		fk := folderKey(k[1:])
		c.folders[fk] = true
		v, err := item.ValueCopy(nil)
		if err == nil && (len(v) != 1 || v[0] != folderV1) {
			err = fmt.Errorf("value %x, want [%d]", v, folderV1)
		}
		if err != nil {
			c.add(Finding{Record: "folder", Folder: fk.id(), Problem: fmt.Sprintf("folder record damaged: %v", err)})
		}
	})
	if err != nil {
		return err
	}
	// Folders with snapshots but no folder record: one seek per folder.
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte{prefixSnapshot}
	opts.PrefetchValues = false
	it := c.txn.NewIterator(opts)
	var withSnaps []folderKey
	for it.Rewind(); it.Valid(); {
		k := it.Item().Key()
		if len(k) < 1+32 {
			it.Next()
			continue
		}
		fk := folderKey(k[1:33])
		withSnaps = append(withSnaps, fk)
		it.Seek(append(folderPrefix(prefixSnapshot, fk), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	}
	it.Close()
	for _, fk := range withSnaps {
		if !c.folders[fk] {
			c.folders[fk] = true
			c.add(Finding{Record: "folder", Folder: fk.id(), Problem: "has snapshots but no folder record: the folder is not listed, so no reader finds it"})
		}
	}
	keys := make([]folderKey, 0, len(c.folders))
	for fk := range c.folders {
		keys = append(keys, fk)
	}
	slices.SortFunc(keys, func(a, b folderKey) int { return strings.Compare(string(a[:]), string(b[:])) })
	for _, fk := range keys {
		c.stats.Folders++
		if err := c.folder(fk); err != nil {
			return err
		}
	}
	return nil
}

// folder checks one folder's snapshots and checkpoints, replaying the tree
// deltas from the empty tree as Walk does, but going on past damage.
func (c *checker) folder(fk folderKey) error {
	fid := fk.id()
	ckpts, err := c.checkpoints(fk)
	if err != nil {
		return err
	}
	var files []File // the tree after the last snapshot, when known
	known := true
	var lost uint64 // first snapshot whose tree cannot be rebuilt (while !known)
	// unreadable reports snapshots from..through, which a reader cannot
	// rebuild because of the damage at from.
	unreadable := func(from, through uint64, why string) {
		if through < from {
			return
		}
		rng := fmt.Sprintf("snapshot %d", from)
		if through > from {
			rng = fmt.Sprintf("snapshots %d to %d", from, through)
		}
		c.add(Finding{Record: "snapshot", Folder: fid, Seq: from, Problem: fmt.Sprintf("%s cannot be rebuilt: %s", rng, why)})
	}
	var lostWhy string
	loseTree := func(seq uint64, why string) {
		if known {
			known, files, lost, lostWhy = false, nil, seq, why
		}
	}
	ci := 0 // next checkpoint to meet
	want := uint64(1)
	err = c.iterate(folderPrefix(prefixSnapshot, fk), true, func(item *badger.Item) {
		k := item.Key()
		if len(k) != 1+32+8 {
			c.add(Finding{Record: "snapshot", Folder: fid, Problem: fmt.Sprintf("snapshot key %x has the wrong length", k)})
			return
		}
		seq := seqOf(k)
		c.stats.Snapshots++
		if seq < want {
			c.add(Finding{Record: "snapshot", Folder: fid, Seq: seq, Problem: "snapshot 0 does not exist: numbering starts at 1"})
			return
		}
		if seq > want {
			gap := fmt.Sprintf("snapshot %d is missing", want)
			if seq-want > 1 {
				gap = fmt.Sprintf("snapshots %d to %d are missing", want, seq-1)
			}
			c.add(Finding{Record: "snapshot", Folder: fid, Seq: want, Problem: gap})
			loseTree(want, gap)
			for ci < len(ckpts) && ckpts[ci] < seq {
				ci++ // checkpoints of missing snapshots are reported below
			}
		}
		want = seq + 1
		rec, err := c.snapRecord(item)
		if err != nil {
			why := fmt.Sprintf("snapshot record damaged: %v", err)
			c.add(Finding{Record: "snapshot", Folder: fid, Seq: seq, Problem: why})
			loseTree(seq, fmt.Sprintf("snapshot %d is damaged", seq))
		} else {
			c.snapContents(fid, seq, rec)
			if known {
				if why := treeDeltaOrder(rec); why != "" {
					c.add(Finding{Record: "snapshot", Folder: fid, Seq: seq, Problem: "tree delta damaged: " + why})
					loseTree(seq, fmt.Sprintf("the tree delta of snapshot %d is damaged", seq))
				} else if files = applyTreeDelta(files, rec.Removed, rec.Upserted); len(files) != rec.NumFiles {
					c.add(Finding{Record: "snapshot", Folder: fid, Seq: seq, Problem: fmt.Sprintf("the rebuilt tree has %d files, the record says %d", len(files), rec.NumFiles)})
					loseTree(seq, fmt.Sprintf("the tree delta of snapshot %d is damaged", seq))
				}
			}
		}
		if ci < len(ckpts) && ckpts[ci] == seq {
			next := uint64(0) // the snapshots the checkpoint serves end before the next one
			if ci+1 < len(ckpts) {
				next = ckpts[ci+1]
			}
			ci++
			c.stats.Checkpoints++
			cf, err := c.checkpoint(fk, seq)
			serves := fmt.Sprintf("snapshots %d and later cannot be read", seq)
			if next > 0 {
				serves = fmt.Sprintf("snapshots %d to %d cannot be read", seq, next-1)
			}
			switch {
			case err != nil:
				c.add(Finding{Record: "checkpoint", Folder: fid, Seq: seq, Problem: fmt.Sprintf("checkpoint damaged (%s): %v", serves, err)})
			case known && !slices.Equal(files, cf):
				c.add(Finding{Record: "checkpoint", Folder: fid, Seq: seq, Problem: fmt.Sprintf("checkpoint differs from the tree rebuilt from the snapshots before it (%s correctly): %s", strings.TrimSuffix(serves, " cannot be read"), treeDiff(files, cf))})
			case !known:
				unreadable(lost, seq-1, lostWhy)
				known, files = true, cf
			}
		}
	})
	if err != nil {
		return err
	}
	head := want - 1
	c.heads[fk] = head
	if !known {
		unreadable(lost, head, lostWhy+"; this includes the latest snapshot, so the folder cannot be loaded (no reads, no new snapshots)")
	}
	for _, cp := range ckpts {
		if cp > head {
			c.add(Finding{Record: "checkpoint", Folder: fid, Seq: cp, Problem: fmt.Sprintf("checkpoint of a snapshot that does not exist (the latest is %d)", head)})
		}
	}
	return nil
}

// checkpoints lists the sequence numbers of fk's checkpoints.
func (c *checker) checkpoints(fk folderKey) ([]uint64, error) {
	var out []uint64
	err := c.iterate(folderPrefix(prefixCheckpoint, fk), false, func(item *badger.Item) {
		k := item.Key()
		if len(k) != 1+32+8 {
			c.add(Finding{Record: "checkpoint", Folder: fk.id(), Problem: fmt.Sprintf("checkpoint key %x has the wrong length", k)})
			return
		}
		out = append(out, seqOf(k))
	})
	return out, err
}

func (c *checker) checkpoint(fk folderKey, seq uint64) ([]File, error) {
	v, err := getValue(c.txn, seqKey(prefixCheckpoint, fk, seq))
	if err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, errEmpty
	}
	return c.s.decodeCheckpoint(v)
}

func (c *checker) snapRecord(item *badger.Item) (*snapRecord, error) {
	v, err := c.value(item)
	if err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, errEmpty
	}
	return c.s.decodeSnapRecord(v)
}

// treeDeltaOrder checks what applyTreeDelta relies on: both lists sorted,
// without duplicates.
func treeDeltaOrder(r *snapRecord) string {
	for i := 1; i < len(r.Removed); i++ {
		if r.Removed[i-1] >= r.Removed[i] {
			return fmt.Sprintf("removed paths out of order at %q", r.Removed[i])
		}
	}
	for i := 1; i < len(r.Upserted); i++ {
		if r.Upserted[i-1].Path >= r.Upserted[i].Path {
			return fmt.Sprintf("files out of order at %q", r.Upserted[i].Path)
		}
	}
	return ""
}

// snapContents checks what a snapshot record adds: its changed files (each
// naming an intact stored blob of its size) and its changes.
func (c *checker) snapContents(fid FolderID, seq uint64, rec *snapRecord) {
	for _, f := range rec.Upserted {
		at := Finding{Record: "snapshot", Folder: fid, Seq: seq, Path: f.Path, Blob: f.Blob}
		if err := checkPath(f.Path); err != nil {
			at.Problem = fmt.Sprintf("bad path: %v", err)
			c.add(at)
		}
		if f.DocID == "" {
			at.Problem = "no doc id"
			c.add(at)
		}
		if f.Blob.IsZero() {
			at.Problem = "no blob"
			c.add(at)
			continue
		}
		if why, ok := c.bad[f.Blob]; ok {
			at.Problem = "the file's content is damaged: blob " + why
			c.add(at)
			continue
		}
		r, err := c.header(f.Blob)
		switch {
		case err != nil:
			at.Problem = "the file's content is lost: blob " + err.Error()
			c.add(at)
		case r.size != uint64(f.Size):
			at.Problem = fmt.Sprintf("the file is %d bytes, its blob %d", f.Size, r.size)
			c.add(at)
		}
	}
	if p := rec.Origin.Pushed; p != nil {
		at := Finding{Record: "snapshot", Folder: fid, Seq: seq, Blob: p.Pack}
		if why, ok := c.bad[p.Pack]; ok {
			at.Problem = "the pack of the pushed commit is damaged: blob " + why
			c.add(at)
		} else if _, err := c.header(p.Pack); err != nil {
			at.Problem = "the pack of the pushed commit is lost: blob " + err.Error()
			c.add(at)
		}
	}
	for i, ch := range rec.Changes {
		if ch.Kind < ChangeAdded || ch.Kind > ChangeDeleted || ch.Path == "" || (ch.Kind == ChangeRenamed) != (ch.OldPath != "") {
			c.add(Finding{Record: "snapshot", Folder: fid, Seq: seq, Path: ch.Path,
				Problem: fmt.Sprintf("change %d is invalid (%s, old path %q)", i, ch.Kind, ch.OldPath)})
		}
	}
}

// treeDiff describes the first difference between two trees.
func treeDiff(want, got []File) string {
	for i := 0; i < len(want) && i < len(got); i++ {
		if want[i] != got[i] {
			return fmt.Sprintf("file %q: %+v in the snapshots, %+v in the checkpoint", want[i].Path, want[i], got[i])
		}
	}
	return fmt.Sprintf("%d files in the snapshots, %d in the checkpoint", len(want), len(got))
}

// docStates is part of pass 3.
func (c *checker) docStates() error {
	return c.iterate([]byte{prefixDocState}, true, func(item *badger.Item) {
		c.stats.DocStates++
		k := item.KeyCopy(nil)
		if len(k) < 1+32+2 {
			c.add(Finding{Record: "doc state", Problem: fmt.Sprintf("doc state key %x is too short", k)})
			return
		}
		fk := folderKey(k[1:33])
		at := Finding{Record: "doc state", Folder: fk.id()}
		id, err := docIDFromKey(k)
		if err != nil {
			at.Problem = fmt.Sprintf("doc state key %x damaged: %v", k, err)
			c.add(at)
			return
		}
		at.Doc = id
		if !c.folders[fk] {
			at.Problem = "doc state of a folder the store does not have"
			c.add(at)
		}
		v, err := item.ValueCopy(nil)
		var st DocState
		if err == nil {
			st, err = decodeDocState(v)
		}
		if err != nil {
			at.Problem = fmt.Sprintf("doc state damaged: %v", err)
			c.add(at)
			return
		}
		at.Blob = st.Blob
		if why, ok := c.bad[st.Blob]; ok {
			at.Problem = "its last version is damaged: blob " + why
			c.add(at)
		} else if _, err := c.header(st.Blob); err != nil {
			at.Problem = "its last version is lost: blob " + err.Error()
			c.add(at)
		}
	})
}

// queue is part of pass 3.
func (c *checker) queue() error {
	return c.iterate([]byte{prefixQueue}, true, func(item *badger.Item) {
		c.stats.Events++
		k := item.KeyCopy(nil)
		if len(k) != 1+8 {
			c.add(Finding{Record: "queued event", Problem: fmt.Sprintf("queue key %x has the wrong length", k)})
			return
		}
		at := Finding{Record: "queued event", Event: binary.BigEndian.Uint64(k[1:])}
		v, err := item.ValueCopy(nil)
		if err == nil {
			_, err = decodeQueued(k, v)
		}
		if err != nil {
			at.Problem = fmt.Sprintf("queued webhook event damaged (it will not be fetched): %v", err)
			c.add(at)
		}
	})
}

// pushStates is part of pass 3.
func (c *checker) pushStates() error {
	return c.iterate([]byte{prefixPush}, true, func(item *badger.Item) {
		c.stats.PushStates++
		k := item.KeyCopy(nil)
		if len(k) < 1+32+2 || len(k) != 1+32+1+int(k[33])+1 {
			c.add(Finding{Record: "push state", Problem: fmt.Sprintf("push state key %x has the wrong length", k)})
			return
		}
		fk := folderKey(k[1:33])
		at := Finding{Record: "push state", Folder: fk.id(), Conn: string(k[34 : len(k)-1])}
		if !c.folders[fk] {
			at.Problem = "push state of a folder the store does not have"
			c.add(at)
		}
		v, err := c.value(item)
		if err != nil {
			at.Problem = fmt.Sprintf("push record damaged: %v", err)
			c.add(at)
			return
		}
		switch k[len(k)-1] {
		case pushKindState:
			ps, err := decodePushState(v)
			switch {
			case err != nil:
				at.Problem = fmt.Sprintf("push state damaged: %v", err)
				c.add(at)
			case ps.Seq > c.heads[fk]:
				at.Problem = fmt.Sprintf("records snapshot %d as pushed, but the folder's latest snapshot is %d", ps.Seq, c.heads[fk])
				c.add(at)
			}
		case pushKindOwned:
			if _, err := c.s.decodeOwned(v); err != nil {
				at.Problem = fmt.Sprintf("owned paths damaged: %v", err)
				c.add(at)
			}
		default:
			at.Problem = fmt.Sprintf("push record of unknown kind %q", k[len(k)-1])
			c.add(at)
		}
	})
}

// held is part of pass 3: the mass-deletion guard's records (held.go).
func (c *checker) held() error {
	return c.iterate([]byte{prefixHeld}, true, func(item *badger.Item) {
		c.stats.Held++
		k := item.KeyCopy(nil)
		if len(k) != 1+32 {
			c.add(Finding{Record: "held", Problem: fmt.Sprintf("held record key %x has the wrong length", k)})
			return
		}
		fk := folderKey(k[1:])
		at := Finding{Record: "held", Folder: fk.id()}
		if !c.folders[fk] {
			at.Problem = "held record of a folder the store does not have"
			c.add(at)
		}
		v, err := c.value(item)
		var r *heldRec
		if err == nil {
			r, err = decodeHeld(fk, v)
		}
		if err != nil {
			at.Problem = fmt.Sprintf("held record damaged (holds and dropped snapshots of the folder are unknown): %v", err)
			c.add(at)
			return
		}
		head := c.heads[fk]
		if h := r.hold; h != nil && (h.From == 0 || h.From > head || h.Base >= h.From) {
			at.Seq = h.From
			at.Problem = fmt.Sprintf("holds snapshots from %d compared with %d, but the folder's latest snapshot is %d", h.From, h.Base, head)
			c.add(at)
		}
		var prev uint64
		for _, d := range r.dropped {
			if d.From == 0 || d.From > d.Through || d.Through > head || d.From <= prev {
				at.Seq = d.From
				at.Problem = fmt.Sprintf("dropped snapshots %d to %d are not a range of the folder's snapshots 1 to %d in order", d.From, d.Through, head)
				c.add(at)
			}
			prev = d.Through
		}
	})
}

// historyConfig is part of pass 3.
func (c *checker) historyConfig() error {
	v, err := getValue(c.txn, historyConfigKey())
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	switch {
	case err != nil:
	case len(v) == 0 || v[0] != settingV1:
		err = errCorrupt
	case !json.Valid(v[1:]):
		err = errors.New("not JSON")
	}
	if err != nil {
		c.add(Finding{Record: "history config", Problem: fmt.Sprintf("history config damaged (it decides every commit id): %v", err)})
	}
	return nil
}
