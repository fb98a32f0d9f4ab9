package store

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The mass-deletion guard. A Relay glitch can empty a folder (notes left
// at 0 bytes, notes deleted by a rename prompt); the snapshot that records
// it is kept like any other — reads show it — but pushing it to the
// connectors is held until an operator releases or drops it.
//
// Per folder, one record (key 'k', see keys.go) holds:
//
//   - the hold, if any: every snapshot from Hold.From on is held (later
//     snapshots queue behind it, since history is linear);
//   - the dropped ranges: snapshots an operator dropped, which are never
//     pushed (internal/mirror skips them; the next snapshot's commit has
//     the last pushed commit as parent).
//
// The hold is written in the same transaction as the snapshot that caused
// it, so a crash can never leave that snapshot recorded and unheld.
//
// A snapshot is compared with the last snapshot that can still be pushed:
// the previous one, or, right after a drop, the one before the dropped
// range, so that a folder still empty after a drop is held again rather
// than pushed.
//
// Record (heldV1):
//
//	format   byte
//	held     byte 0 | 1, then if 1: from, base, baseFiles, deleted
//	         (uvarints), time
//	dropped  uvarint n, n × (from, through) uvarints, ascending
const (
	prefixHeld = 'k'

	heldV1 = 1
)

// DefaultHoldMinFiles is the folder size under which no snapshot is held:
// deleting 3 of 5 notes is ordinary work.
const DefaultHoldMinFiles = 10

// HoldPolicy decides which snapshots are held: one that deletes more than
// Fraction of the files of a folder of at least MinFiles files. A zero
// Fraction holds nothing.
type HoldPolicy struct {
	Fraction float64
	MinFiles int
}

// DefaultHoldPolicy holds a snapshot that deletes more than half of a
// folder of at least 10 files.
var DefaultHoldPolicy = HoldPolicy{Fraction: 0.5, MinFiles: DefaultHoldMinFiles}

// ParseHoldPolicy reads a threshold as `serve --hold-deletions` takes it:
// a percentage ("50%") or a fraction ("0.5") of the folder's files, above
// which a snapshot is held; "0" (or "0%", "off") turns the guard off.
// MinFiles is DefaultHoldMinFiles.
func ParseHoldPolicy(s string) (HoldPolicy, error) {
	t := strings.TrimSpace(s)
	if t == "off" {
		return HoldPolicy{}, nil
	}
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return HoldPolicy{}, fmt.Errorf("%q is not a share of a folder's files: give a percentage (50%%), a fraction (0.5), or 0 to turn the guard off", s)
	}
	if pct {
		v /= 100
	}
	if v < 0 || v >= 1 {
		return HoldPolicy{}, fmt.Errorf("%q: the share of deleted files must be at least 0 and below 100%% (a snapshot cannot delete more than all files); 0 turns the guard off", s)
	}
	if v == 0 {
		return HoldPolicy{}, nil
	}
	return HoldPolicy{Fraction: v, MinFiles: DefaultHoldMinFiles}, nil
}

// String is the policy as ParseHoldPolicy reads it ("50%", "0").
func (p HoldPolicy) String() string {
	if p.Fraction == 0 {
		return "0"
	}
	return strconv.FormatFloat(p.Fraction*100, 'f', -1, 64) + "%"
}

// Holds reports whether deleting deleted of files files is held.
func (p HoldPolicy) Holds(files, deleted int) bool {
	return p.Fraction > 0 && files >= max(p.MinFiles, 1) && float64(deleted) > p.Fraction*float64(files)
}

// Hold is a folder whose snapshots from From on are not pushed.
type Hold struct {
	Folder FolderID
	// From is the first held snapshot; Base the snapshot it was compared
	// with (the last one that can be pushed), which had BaseFiles files,
	// Deleted of which From deletes.
	From, Base         uint64
	BaseFiles, Deleted int
	// Time is snapshot From's time.
	Time time.Time
}

// SeqRange is a range of snapshots, both ends included.
type SeqRange struct{ From, Through uint64 }

// Contains reports whether seq is in r.
func (r SeqRange) Contains(seq uint64) bool { return r.From <= seq && seq <= r.Through }

type heldRec struct {
	hold    *Hold
	dropped []SeqRange
}

func heldKey(fk folderKey) []byte {
	k := make([]byte, 1+len(fk))
	k[0] = prefixHeld
	copy(k[1:], fk[:])
	return k
}

func encodeHeld(r *heldRec) []byte {
	e := &enc{}
	e.byte(heldV1)
	if h := r.hold; h != nil {
		e.byte(1)
		e.uvarint(h.From)
		e.uvarint(h.Base)
		e.uvarint(uint64(h.BaseFiles))
		e.uvarint(uint64(h.Deleted))
		e.time(h.Time)
	} else {
		e.byte(0)
	}
	e.uvarint(uint64(len(r.dropped)))
	for _, d := range r.dropped {
		e.uvarint(d.From)
		e.uvarint(d.Through)
	}
	return e.b
}

func decodeHeld(fk folderKey, v []byte) (*heldRec, error) {
	d := &dec{b: v}
	if f := d.byte(); d.err == nil && f != heldV1 {
		return nil, fmt.Errorf("unsupported held record format %d", f)
	}
	r := &heldRec{}
	switch d.byte() {
	case 0:
	case 1:
		r.hold = &Hold{Folder: fk.id(), From: d.uvarint(), Base: d.uvarint(),
			BaseFiles: int(min(d.uvarint(), math.MaxInt32)), Deleted: int(min(d.uvarint(), math.MaxInt32)), Time: d.time()}
	default:
		d.fail()
	}
	n := d.count(2)
	for i := 0; i < n; i++ {
		r.dropped = append(r.dropped, SeqRange{From: d.uvarint(), Through: d.uvarint()})
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// readHeld returns folder fk's record (empty when none).
func readHeld(txn *badger.Txn, fk folderKey) (*heldRec, error) {
	v, err := getValue(txn, heldKey(fk))
	if errors.Is(err, ErrNotFound) {
		return &heldRec{}, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := decodeHeld(fk, v)
	if err != nil {
		return nil, fmt.Errorf("held record of %s: %w", fk.id(), err)
	}
	return r, nil
}

// holdFor decides whether snapshot seq of folder fk, with tree files,
// is held, and returns the record to write with it (nil: nothing to
// write). st is locked; st.head is the previous snapshot.
func (s *Store) holdFor(p HoldPolicy, fk folderKey, st *folderState, seq uint64, files []File, at time.Time) ([]byte, error) {
	if p.Fraction == 0 || st.head == 0 {
		return nil, nil
	}
	var rec *heldRec
	if err := s.db.View(func(txn *badger.Txn) (err error) {
		rec, err = readHeld(txn, fk)
		return err
	}); err != nil {
		return nil, err
	}
	if rec.hold != nil {
		return nil, nil // held already: seq waits behind rec.hold.From
	}
	base, baseFiles := st.head, st.files
	if n := len(rec.dropped); n > 0 && rec.dropped[n-1].Through == st.head {
		base = rec.dropped[n-1].From - 1
		if err := s.db.View(func(txn *badger.Txn) error {
			from, start, err := s.checkpointAtOrBefore(txn, fk, base)
			if err != nil {
				return err
			}
			baseFiles, _, _, err = s.replay(txn, fk, from, start, base, nil)
			return err
		}); err != nil {
			return nil, fmt.Errorf("reading snapshot %d to compare with: %w", base, err)
		}
	}
	deleted := Deletions(baseFiles, files)
	if !p.Holds(len(baseFiles), deleted) {
		return nil, nil
	}
	rec.hold = &Hold{Folder: fk.id(), From: seq, Base: base, BaseFiles: len(baseFiles), Deleted: deleted, Time: at.UTC()}
	return encodeHeld(rec), nil
}

// Deletions counts the files of prev that next deletes: paths of prev
// that next lacks, except renames — a path gone whose document (matched
// by id, as ingest.Diff matches renames) arrived at a path prev lacks. A
// path that holds another document (a note deleted and made again) is
// not deleted.
func Deletions(prev, next []File) int {
	inPrev := make(map[string]bool, len(prev))
	for _, f := range prev {
		inPrev[f.Path] = true
	}
	inNext := make(map[string]bool, len(next))
	arrived := map[string]int{} // by doc id: paths next has and prev lacks
	for _, f := range next {
		inNext[f.Path] = true
		if !inPrev[f.Path] {
			arrived[f.DocID]++
		}
	}
	deleted := 0
	for _, f := range prev {
		switch {
		case inNext[f.Path]:
		case arrived[f.DocID] > 0:
			arrived[f.DocID]-- // renamed
		default:
			deleted++
		}
	}
	return deleted
}

// Held returns folder f's hold, or nil when its snapshots are not held.
func (s *Store) Held(f FolderID) (*Hold, error) {
	rec, err := s.heldRec(f)
	if err != nil {
		return nil, err
	}
	return rec.hold, nil
}

// Dropped returns the ranges of folder f's snapshots that were dropped
// (never to be pushed), ascending.
func (s *Store) Dropped(f FolderID) ([]SeqRange, error) {
	rec, err := s.heldRec(f)
	if err != nil {
		return nil, err
	}
	return rec.dropped, nil
}

func (s *Store) heldRec(f FolderID) (*heldRec, error) {
	fk, err := f.key()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var rec *heldRec
	err = s.db.View(func(txn *badger.Txn) (err error) {
		rec, err = readHeld(txn, fk)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return rec, nil
}

// Holds lists every held folder, sorted by folder.
func (s *Store) Holds() ([]Hold, error) {
	var out []Hold
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{prefixHeld}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			var fk folderKey
			if len(k) != 1+len(fk) {
				return fmt.Errorf("held key %x: bad length", k)
			}
			copy(fk[:], k[1:])
			rec, err := readHeld(txn, fk)
			if err != nil {
				return err
			}
			if rec.hold != nil {
				out = append(out, *rec.hold)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: listing held folders: %w", err)
	}
	slices.SortFunc(out, func(a, b Hold) int { return strings.Compare(a.Folder.String(), b.Folder.String()) })
	return out, nil
}

// ErrNotHeld is returned (wrapping ErrNotFound) by ReleaseHold and
// DropHold for a folder whose snapshots are not held.
var ErrNotHeld = fmt.Errorf("no held snapshots: %w", ErrNotFound)

// ReleaseHold lets folder f's held snapshots be pushed, deletion
// included, and returns the hold it lifted.
func (s *Store) ReleaseHold(f FolderID) (*Hold, error) {
	h, _, err := s.endHold(f, false)
	return h, err
}

// DropHold drops folder f's held snapshots, from the hold's first to the
// latest: they are never pushed. The next snapshot is compared with the
// one before the dropped range (and held again if it still deletes too
// much); once pushed, its commit follows the last pushed one. It returns
// the hold it ended and the range dropped.
func (s *Store) DropHold(f FolderID) (*Hold, SeqRange, error) {
	return s.endHold(f, true)
}

func (s *Store) endHold(f FolderID, drop bool) (*Hold, SeqRange, error) {
	fk, err := f.key()
	if err != nil {
		return nil, SeqRange{}, fmt.Errorf("store: %w", err)
	}
	st, err := s.folder(fk, false)
	if err != nil {
		return nil, SeqRange{}, err
	}
	if st == nil {
		return nil, SeqRange{}, fmt.Errorf("store: folder %s: %w", fk.id(), ErrNotHeld)
	}
	defer st.mu.Unlock() // no snapshot of f is recorded meanwhile
	var h *Hold
	var r SeqRange
	err = s.db.Update(func(txn *badger.Txn) error {
		rec, err := readHeld(txn, fk)
		if err != nil {
			return err
		}
		if rec.hold == nil {
			return ErrNotHeld
		}
		h = rec.hold
		rec.hold = nil
		if drop {
			r = SeqRange{From: h.From, Through: st.head}
			if n := len(rec.dropped); n > 0 && rec.dropped[n-1].Through+1 == r.From {
				// Held again right after a drop: one range, so that the
				// next snapshot is still compared with the one before it.
				rec.dropped[n-1].Through = r.Through
			} else {
				rec.dropped = append(rec.dropped, r)
			}
		}
		return txn.Set(heldKey(fk), encodeHeld(rec))
	})
	if err != nil {
		return nil, SeqRange{}, fmt.Errorf("store: folder %s: %w", fk.id(), err)
	}
	return h, r, nil
}
