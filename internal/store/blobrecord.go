package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Blob records travel between stores (the JetStream backend keeps its
// blobs as the same records, so deltas stay deltas): a store hands out a
// blob's record as it is stored, and another stores it verbatim after
// checking that it decodes to its id. Blobs over streamMin travel as their
// content instead (OpenBlob, PutBlobFrom): their records are never deltas
// and may be hundreds of MB.

// MaxRecordBlob is the largest blob BlobRecord hands out; larger blobs
// travel as content.
const MaxRecordBlob = streamMin

// BlobRecord returns blob id's stored record and, when the record is a
// delta, its base (which the receiving store needs first). A blob over
// MaxRecordBlob bytes is an error: read it with OpenBlob.
func (s *Store) BlobRecord(id BlobID) (rec []byte, base BlobID, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		r, err := blobHeaderTxn(txn, id)
		if err != nil {
			return err
		}
		if r.size > MaxRecordBlob {
			return fmt.Errorf("%d bytes is over %d: read it with OpenBlob", r.size, MaxRecordBlob)
		}
		base = r.base
		rec, err = getValue(txn, blobKey(id))
		return err
	})
	if err != nil {
		return nil, BlobID{}, fmt.Errorf("store: record of blob %s: %w", id, err)
	}
	return rec, base, nil
}

// PutBlobRecord stores rec, a record another store's BlobRecord returned,
// under id. A delta's base must be stored already. The record is decoded
// and its content checked against id before anything is written, so a
// damaged or foreign record is refused. Storing a blob that is already
// there does nothing.
func (s *Store) PutBlobRecord(id BlobID, rec []byte) error {
	if has, err := s.HasBlob(id); err != nil || has {
		return err
	}
	r, err := parseBlobRec(rec)
	if err != nil {
		return fmt.Errorf("store: record of blob %s: %w", id, err)
	}
	if r.size > MaxRecordBlob {
		return fmt.Errorf("store: record of blob %s: %d bytes is over %d: store it with PutBlobFrom", id, r.size, MaxRecordBlob)
	}
	var data []byte
	switch r.format {
	case blobRaw:
		data = r.payload
	case blobZstd:
		data, err = s.z.decompress(r.payload, int(r.size))
	case blobDelta:
		var base []byte
		if base, err = s.blob(r.base, 0); errors.Is(err, ErrNotFound) {
			return fmt.Errorf("store: record of blob %s: its base %s is not stored: store the base first", id, r.base)
		} else if err == nil {
			data, err = r.applyDelta(s.z, base)
		}
	}
	if err != nil {
		return fmt.Errorf("store: record of blob %s: %w", id, err)
	}
	if uint64(len(data)) != r.size || BlobIDOf(data) != id {
		return fmt.Errorf("store: record of blob %s: %w (content does not match the id)", id, errCorrupt)
	}
	release, err := s.reserveSpace(len(rec))
	if err != nil {
		return fmt.Errorf("store: writing blob %s: %w", id, err)
	}
	defer release()
	err = s.db.Update(func(txn *badger.Txn) error { return s.setValue(txn, blobKey(id), rec) })
	if err != nil && !errors.Is(err, badger.ErrConflict) {
		return fmt.Errorf("store: writing blob %s: %w", id, err)
	}
	return nil
}

// BlobRecordBase returns the base a record is a delta against (zero for a
// whole blob), so a receiver can fetch the base first.
func BlobRecordBase(rec []byte) (BlobID, error) {
	r, err := parseBlobRec(rec)
	if err != nil {
		return BlobID{}, fmt.Errorf("store: blob record: %w", err)
	}
	return r.base, nil
}

// ValidateSnapshot checks what AddSnapshot checks of a snapshot before it
// touches the store (paths, kinds, changes, time), so a backend that
// publishes a snapshot elsewhere first can refuse it first.
func ValidateSnapshot(snap *Snapshot, docs map[string]DocState, dropDocs []string) error {
	if snap == nil {
		return errors.New("store: nil snapshot")
	}
	if _, err := snap.Folder.key(); err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	if err := validateSnapshot(snap, docs, dropDocs); err != nil {
		return fmt.Errorf("store: snapshot of %s: %w", snap.Folder, err)
	}
	return nil
}
