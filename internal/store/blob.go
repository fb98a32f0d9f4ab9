package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Delta chains.
//
// A new version of a document is stored as a delta against an earlier
// version. Always using the previous version gives the smallest deltas but
// chains as long as the history; cutting chains at a fixed depth with a full
// copy (what git does at pack time) costs one full copy per depth versions,
// which for a document edited thousands of times is most of the store.
//
// So bases are chosen as skip-deltas (Subversion's FSFS scheme): every blob
// record carries gen, the number of versions since its chain's full copy.
// Version g is stored against the ancestor of generation g&(g-1) (g minus
// its lowest set bit), which is on the chain of version g-1: a chain is
// popcount(g) ≤ log2(g)+1 deltas deep, and each change is repeated in about
// log2(n)/2 deltas. A hard limit of maxDeltaDepth still applies (walking
// further up the chain when a candidate is too deep), and a delta that comes
// out no smaller than a full copy becomes a full copy (gen 0).
//
// Measured on the seph-blog1 trace replayed as 4,899 versions of one
// document growing to 57 KB (blob records only, before Badger's block
// compression): plain chain 0.32 MB but 4,888 deltas deep (237 ms to read
// the newest version cold); a full copy every 33 versions 2.1 MB; these
// skip-deltas 0.61 MB, at most 11 deep (1.2 ms cold read). Base-4 skips
// were 0.53 MB and 18 deep: not worth the deeper chains.
const (
	maxDeltaDepth = 32
	// maxDeltaInput: larger blobs are always stored whole (a delta needs
	// both versions in memory, and such files are rarely edited text).
	maxDeltaInput = 4 << 20
	// maxBlobSize is the largest blob PutBlob accepts.
	maxBlobSize = 1 << 30
	// maxChainWalk bounds recursion on a corrupt database.
	maxChainWalk = 2 * maxDeltaDepth
)

// Middle encodings of a delta record.
const (
	midRaw  = 0
	midZstd = 1
	midDict = 2
)

// blobRec is a parsed blob record.
type blobRec struct {
	format     byte
	size       uint64
	base       BlobID // blobDelta only
	gen, depth uint64 // 0 for full copies
	prefix     uint64 // blobDelta only
	suffix     uint64
	mode       byte
	payload    []byte // may be truncated when only the header was read
}

func parseBlobRec(v []byte) (blobRec, error) {
	var r blobRec
	d := &dec{b: v}
	r.format = d.byte()
	if d.err == nil && r.format != blobRaw && r.format != blobZstd && r.format != blobDelta {
		return r, fmt.Errorf("unsupported blob record format %d", r.format)
	}
	r.size = d.uvarint()
	switch r.format {
	case blobRaw, blobZstd:
	case blobDelta:
		r.base = d.blobID()
		r.gen = d.uvarint()
		r.depth = d.uvarint()
		r.prefix = d.uvarint()
		r.suffix = d.uvarint()
		r.mode = d.byte()
		if d.err == nil && (r.prefix+r.suffix > r.size || r.mode > midDict) {
			d.fail()
		}
	}
	if d.err != nil {
		return r, d.err
	}
	r.payload = d.b
	return r, nil
}

func (r *blobRec) appendHeader(e *enc) {
	e.byte(r.format)
	e.uvarint(r.size)
	if r.format == blobDelta {
		e.raw(r.base[:])
		e.uvarint(r.gen)
		e.uvarint(r.depth)
		e.uvarint(r.prefix)
		e.uvarint(r.suffix)
		e.byte(r.mode)
	}
}

// PutBlob stores data once under its git blob id and returns the id.
//
// It is idempotent: when the id is already stored nothing is written and
// the call costs one lookup. base, when non-zero and stored, is an earlier
// version of the same document: data is then stored as a delta against it
// or one of its ancestors (see "Delta chains" above). A missing base is not
// an error (data is stored whole). Blobs are never deleted, since later
// versions may be deltas against them.
func (s *Store) PutBlob(data []byte, base BlobID) (BlobID, error) {
	if len(data) > maxBlobSize {
		return BlobID{}, fmt.Errorf("store: blob of %d bytes is over the %d byte limit", len(data), maxBlobSize)
	}
	id := BlobIDOf(data)
	if has, err := s.HasBlob(id); err != nil || has {
		return id, err
	}
	rec, err := s.encodeBlob(data, base)
	if err != nil {
		return BlobID{}, fmt.Errorf("store: blob %s (base %s): %w", id, base, err)
	}
	key := blobKey(id)
	release, err := s.reserveSpace(len(rec))
	if err != nil {
		return BlobID{}, fmt.Errorf("store: writing blob %s: %w", id, err)
	}
	defer release()
	err = s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(key); err == nil {
			return nil // stored meanwhile
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return s.setValue(txn, key, rec)
	})
	if err != nil && !errors.Is(err, badger.ErrConflict) { // conflict: the same blob was stored concurrently
		return BlobID{}, fmt.Errorf("store: writing blob %s: %w", id, err)
	}
	if s.cache.fits(data) { // not worth a copy of a large blob it would refuse
		s.cache.add(id, bytes.Clone(data))
	}
	return id, nil
}

// encodeBlob returns data's blob record: a delta against base's chain when
// that helps, else a full copy.
func (s *Store) encodeBlob(data []byte, base BlobID) ([]byte, error) {
	if base.IsZero() || len(data) > maxDeltaInput {
		return s.encodeFull(data), nil
	}
	cur, err := s.blobHeader(base)
	if errors.Is(err, ErrNotFound) {
		return s.encodeFull(data), nil
	}
	if err != nil {
		return nil, err
	}
	gen := cur.gen + 1
	target := gen & (gen - 1)
	curID := base
	for i := 0; cur.format == blobDelta && (cur.gen > target || cur.depth >= uint64(s.maxDepth)); i++ {
		if i > maxChainWalk {
			return nil, fmt.Errorf("delta chain of %s: %w", base, errCorrupt)
		}
		curID = cur.base
		if cur, err = s.blobHeader(curID); err != nil {
			return nil, fmt.Errorf("delta chain of %s at %s: %w", base, curID, err)
		}
	}
	if cur.size > maxDeltaInput {
		return s.encodeFull(data), nil
	}
	baseData, err := s.blob(curID, 0)
	if err != nil {
		return nil, err
	}
	r := blobRec{format: blobDelta, size: uint64(len(data)), base: curID, gen: gen, depth: cur.depth + 1}
	if err := s.makeDelta(&r, baseData, data); err != nil {
		return nil, err
	}
	e := &enc{b: make([]byte, 0, 48+len(r.payload))}
	r.appendHeader(e)
	e.raw(r.payload)
	// A delta much smaller than the data is surely smaller than a full
	// copy too; otherwise compare.
	if len(e.b) > len(data)/8+64 {
		if full := s.encodeFull(data); len(full) <= len(e.b) {
			return full, nil
		}
	}
	return e.b, nil
}

// encodeFull stores data whole: zstd-compressed, or raw when that is not
// smaller (already compressed files, tiny blobs).
func (s *Store) encodeFull(data []byte) []byte {
	r := blobRec{format: blobRaw, size: uint64(len(data)), payload: data}
	if len(data) >= 32 && s.worthCompressing(data) {
		if z := s.z.compress(data); len(z) < len(data) {
			r.format, r.payload = blobZstd, z
		}
	}
	e := &enc{b: make([]byte, 0, 12+len(r.payload))}
	r.appendHeader(e)
	e.raw(r.payload)
	return e.b
}

// compressSample is how much of a large blob worthCompressing tries.
const compressSample = 1 << 20

// worthCompressing reports whether compressing data whole may pay. For a
// blob over maxDeltaInput (an attachment: often an image, a PDF or an
// archive, already compressed) its first compressSample bytes are tried
// first: compressing hundreds of MB of random-looking bytes costs seconds
// and several times their size in memory, only to be thrown away.
func (s *Store) worthCompressing(data []byte) bool {
	if len(data) <= maxDeltaInput {
		return true
	}
	return s.compresses(data[:compressSample])
}

// compresses reports whether zstd saves more than 1/16 of sample.
func (s *Store) compresses(sample []byte) bool {
	return len(s.z.compress(sample)) < len(sample)-len(sample)/16
}

// makeDelta fills r's prefix, suffix, mode and payload: the bytes data
// shares with base at both ends are referenced, and the middle is stored
// compressed with base's middle as a raw zstd dictionary (or plainly, or
// raw, whichever is smallest). Cutting the common ends first keeps the
// dictionary, and so the cost of a small edit, small.
func (s *Store) makeDelta(r *blobRec, base, data []byte) error {
	p := 0
	for p < len(base) && p < len(data) && base[p] == data[p] {
		p++
	}
	sfx := 0
	for sfx < len(base)-p && sfx < len(data)-p && base[len(base)-1-sfx] == data[len(data)-1-sfx] {
		sfx++
	}
	mid := data[p : len(data)-sfx]
	dict := base[p : len(base)-sfx]
	r.prefix, r.suffix = uint64(p), uint64(sfx)
	r.mode, r.payload = midRaw, mid
	if len(mid) < 16 {
		return nil
	}
	if len(dict) >= 8 {
		c, err := s.z.compressDict(mid, dict)
		if err != nil {
			return err
		}
		if len(c) < len(r.payload) {
			r.mode, r.payload = midDict, c
		}
		return nil
	}
	if c := s.z.compress(mid); len(c) < len(r.payload) {
		r.mode, r.payload = midZstd, c
	}
	return nil
}

// Blob returns the data of blob id (a copy the caller owns), or an error
// wrapping ErrNotFound. Decoded blobs are kept in an LRU cache of about
// 32 MiB; every decode is verified against the id.
func (s *Store) Blob(id BlobID) ([]byte, error) {
	data, err := s.blob(id, 0)
	if err != nil {
		return nil, fmt.Errorf("store: blob %s: %w", id, err)
	}
	if !s.cache.fits(data) {
		// Too large to be cached, so decoded for this call alone (s.blob
		// never returns a raw record's payload shared with Badger: getValue
		// copies): no second copy of an attachment of hundreds of MB.
		return data, nil
	}
	return bytes.Clone(data), nil
}

// blob returns the (shared, read-only) data of id.
func (s *Store) blob(id BlobID, depth int) ([]byte, error) {
	if data, ok := s.cache.get(id); ok {
		return data, nil
	}
	if depth > maxChainWalk {
		return nil, fmt.Errorf("delta chain too deep at %s: %w", id, errCorrupt)
	}
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		v, err = getValue(txn, blobKey(id))
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	r, err := parseBlobRec(v)
	if err != nil {
		return nil, fmt.Errorf("record of %s: %w", id, err)
	}
	var data []byte
	switch r.format {
	case blobRaw:
		data = r.payload
	case blobZstd:
		if data, err = s.z.decompress(r.payload, int(r.size)); err != nil {
			return nil, fmt.Errorf("record of %s: %w", id, err)
		}
	case blobDelta:
		base, err := s.blob(r.base, depth+1)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				err = fmt.Errorf("%w (base %s of %s is missing)", errCorrupt, r.base, id)
			}
			return nil, err
		}
		if data, err = r.applyDelta(s.z, base); err != nil {
			return nil, fmt.Errorf("record of %s: %w", id, err)
		}
	}
	if uint64(len(data)) != r.size || BlobIDOf(data) != id {
		return nil, fmt.Errorf("record of %s: %w (content does not match its id)", id, errCorrupt)
	}
	s.cache.add(id, data)
	return data, nil
}

func (r *blobRec) applyDelta(z *zcodec, base []byte) ([]byte, error) {
	if r.prefix+r.suffix > uint64(len(base)) {
		return nil, errCorrupt
	}
	midLen := int(r.size - r.prefix - r.suffix)
	var mid []byte
	switch r.mode {
	case midRaw:
		mid = r.payload
	case midZstd:
		var err error
		if mid, err = z.decompress(r.payload, midLen); err != nil {
			return nil, err
		}
	case midDict:
		var err error
		if mid, err = z.decompressDict(r.payload, base[r.prefix:uint64(len(base))-r.suffix], midLen); err != nil {
			return nil, err
		}
	}
	if len(mid) != midLen {
		return nil, errCorrupt
	}
	out := make([]byte, 0, r.size)
	out = append(out, base[:r.prefix]...)
	out = append(out, mid...)
	return append(out, base[uint64(len(base))-r.suffix:]...), nil
}

// HasBlob reports whether blob id is stored (one key lookup).
func (s *Store) HasBlob(id BlobID) (bool, error) {
	if _, ok := s.cache.get(id); ok {
		return true, nil
	}
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(blobKey(id))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: looking up blob %s: %w", id, err)
	}
	return true, nil
}

// BlobSize returns the length of blob id's data without decoding it.
func (s *Store) BlobSize(id BlobID) (int64, error) {
	if data, ok := s.cache.get(id); ok {
		return int64(len(data)), nil
	}
	r, err := s.blobHeader(id)
	if err != nil {
		return 0, fmt.Errorf("store: blob %s: %w", id, err)
	}
	return int64(r.size), nil
}

// blobHeader reads blob id's record header (the payload is not kept).
func (s *Store) blobHeader(id BlobID) (blobRec, error) {
	var r blobRec
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		r, err = blobHeaderTxn(txn, id)
		return err
	})
	return r, err
}

// blobHeaderTxn reads blob id's record header in txn; a missing blob is
// ErrNotFound. For a split record only the first part is read.
func blobHeaderTxn(txn *badger.Txn, id BlobID) (blobRec, error) {
	var r blobRec
	key := blobKey(id)
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, err
	}
	parse := func(v []byte) error {
		var err error
		r, err = parseBlobRec(v)
		r.payload = nil // only valid inside Value
		return err
	}
	err = item.Value(func(v []byte) error {
		if len(v) == 0 || v[0] != formatParts {
			return parse(v)
		}
		nonce, _, _, err := parseParts(v)
		if err != nil {
			return err
		}
		part, err := txn.Get(partKey(key, nonce, 0))
		if err != nil {
			return fmt.Errorf("part 0: %w", err)
		}
		return part.Value(parse)
	})
	return r, err
}
