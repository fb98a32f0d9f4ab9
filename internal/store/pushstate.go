package store

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Push state: what internal/mirror remembers about each connector (one
// remote, branch and prefix fed by one folder), so that a restart resumes
// where the last push ended and `connectors status` can say how pushing
// goes. Key layout (see keys.go):
//
//	'p' relay[16] folder[16] len(conn) conn 's'   PushState (pushV1)
//	'p' relay[16] folder[16] len(conn) conn 'o'   owned paths (ownedV1)
//
// conn is the mirror's connector id (a short hash of url, branch and
// prefix). The owned paths are kept apart from the state because they can
// be large and change only when a push succeeds, while the state is
// rewritten after every attempt.
const (
	prefixPush = 'p'

	pushKindState = 's'
	pushKindOwned = 'o'

	pushV1  = 1
	ownedV1 = 1

	maxConnIDLen = 64
)

// PushState is the last known outcome of pushing one connector.
type PushState struct {
	// URL, Branch and Prefix name the connector (URL without credentials),
	// so that status can show states whose connector left the file.
	URL, Branch, Prefix string

	// Commit is the last commit pushed to the branch (zero: none yet), made
	// from snapshot Seq, at PushedAt.
	Commit   [20]byte
	Seq      uint64
	PushedAt time.Time
	// Linear reports that Commit is the folder's own history (the commit of
	// snapshot Seq as history.Linear makes it): no prefix and no foreign
	// commits on the branch so far.
	Linear bool

	// Attempts counts consecutive failed attempts (0 after a success);
	// LastError and ErrorAt describe the latest failure, kept after a
	// success for the record until the next failure replaces them.
	Attempts  int
	LastError string
	ErrorAt   time.Time
	// NextAttempt is when the next retry is due (zero: none pending).
	NextAttempt time.Time
}

// ConnectorPush is one connector's push state, as listed by PushStates.
type ConnectorPush struct {
	Folder FolderID
	Conn   string
	State  PushState
}

func pushKey(fk folderKey, conn string, kind byte) []byte {
	k := make([]byte, 0, 1+len(fk)+1+len(conn)+1)
	k = append(k, prefixPush)
	k = append(k, fk[:]...)
	k = append(k, byte(len(conn)))
	k = append(k, conn...)
	return append(k, kind)
}

func checkConnID(conn string) error {
	if conn == "" || len(conn) > maxConnIDLen || bytes.IndexByte([]byte(conn), 0) >= 0 {
		return fmt.Errorf("store: connector id %q: must be 1–%d bytes without NUL", conn, maxConnIDLen)
	}
	return nil
}

func encodePushState(ps *PushState) []byte {
	e := &enc{}
	e.byte(pushV1)
	e.str(ps.URL)
	e.str(ps.Branch)
	e.str(ps.Prefix)
	e.raw(ps.Commit[:])
	e.uvarint(ps.Seq)
	e.time(ps.PushedAt)
	if ps.Linear {
		e.byte(1)
	} else {
		e.byte(0)
	}
	e.uvarint(uint64(max(ps.Attempts, 0)))
	e.str(ps.LastError)
	e.time(ps.ErrorAt)
	e.time(ps.NextAttempt)
	return e.b
}

func decodePushState(v []byte) (*PushState, error) {
	d := &dec{b: v}
	if f := d.byte(); d.err == nil && f != pushV1 {
		return nil, fmt.Errorf("unsupported push state format %d", f)
	}
	ps := &PushState{}
	ps.URL, ps.Branch, ps.Prefix = d.str(), d.str(), d.str()
	copy(ps.Commit[:], d.raw(20))
	ps.Seq = d.uvarint()
	ps.PushedAt = d.time()
	ps.Linear = d.byte() == 1
	ps.Attempts = int(min(d.uvarint(), 1<<31-1))
	ps.LastError = d.str()
	ps.ErrorAt = d.time()
	ps.NextAttempt = d.time()
	if d.err != nil {
		return nil, d.err
	}
	return ps, nil
}

// PushState returns the push state of connector conn of folder f, or an
// error wrapping ErrNotFound when none was recorded.
func (s *Store) PushState(f FolderID, conn string) (*PushState, error) {
	fk, err := f.key()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := checkConnID(conn); err != nil {
		return nil, err
	}
	var ps *PushState
	err = s.db.View(func(txn *badger.Txn) error {
		v, err := getValue(txn, pushKey(fk, conn, pushKindState))
		if err != nil {
			return err
		}
		ps, err = decodePushState(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: push state of %s connector %s: %w", f, conn, err)
	}
	return ps, nil
}

// PushOwned returns the paths that connector conn of folder f records as
// owned by the folder (sorted), or nil when none were recorded.
func (s *Store) PushOwned(f FolderID, conn string) ([]string, error) {
	fk, err := f.key()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := checkConnID(conn); err != nil {
		return nil, err
	}
	var paths []string
	err = s.db.View(func(txn *badger.Txn) error {
		v, err := getValue(txn, pushKey(fk, conn, pushKindOwned))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		paths, err = s.decodeOwned(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: owned paths of %s connector %s: %w", f, conn, err)
	}
	return paths, nil
}

func (s *Store) encodeOwned(paths []string) []byte {
	e := &enc{}
	appendPaths(e, paths)
	return append([]byte{ownedV1}, s.z.compress(e.b)...)
}

func (s *Store) decodeOwned(v []byte) ([]string, error) {
	if len(v) == 0 {
		return nil, errCorrupt
	}
	if v[0] != ownedV1 {
		return nil, fmt.Errorf("unsupported owned paths format %d", v[0])
	}
	body, err := s.z.decompress(v[1:], maxRecordSize)
	if err != nil {
		return nil, err
	}
	d := &dec{b: body}
	paths := readPaths(d)
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return paths, d.err
}

// SetPushState records the push state of connector conn of folder f and,
// when owned is not nil, replaces its owned paths (which must be sorted and
// unique), in one transaction. A nil owned leaves the recorded paths as
// they are; an empty, non-nil one clears them.
func (s *Store) SetPushState(f FolderID, conn string, ps *PushState, owned []string) error {
	fk, err := f.key()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := checkConnID(conn); err != nil {
		return err
	}
	for i := 1; i < len(owned); i++ {
		if owned[i-1] >= owned[i] {
			return fmt.Errorf("store: owned paths of %s connector %s: not sorted and unique at %q", f, conn, owned[i])
		}
	}
	state := encodePushState(ps)
	var ownedRec []byte
	if owned != nil {
		ownedRec = s.encodeOwned(owned)
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := s.setValue(txn, pushKey(fk, conn, pushKindState), state); err != nil {
			return err
		}
		if owned != nil {
			return s.setValue(txn, pushKey(fk, conn, pushKindOwned), ownedRec)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: push state of %s connector %s: %w", f, conn, err)
	}
	return nil
}

// PushStates lists every recorded push state, sorted by folder, then
// connector id.
func (s *Store) PushStates() ([]ConnectorPush, error) {
	var out []ConnectorPush
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{prefixPush}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if len(k) < 1+32+2 || k[len(k)-1] != pushKindState {
				continue
			}
			var fk folderKey
			copy(fk[:], k[1:33])
			n := int(k[33])
			if len(k) != 1+32+1+n+1 {
				return fmt.Errorf("push state key %x: bad length", k)
			}
			conn := string(k[34 : 34+n])
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if v, err = joinParts(txn, k, v); err != nil {
				return err
			}
			ps, err := decodePushState(v)
			if err != nil {
				return fmt.Errorf("push state of %s connector %s: %w", fk.id(), conn, err)
			}
			out = append(out, ConnectorPush{Folder: fk.id(), Conn: conn, State: *ps})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: listing push states: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Folder != b.Folder {
			if a.Folder.Relay != b.Folder.Relay {
				return a.Folder.Relay < b.Folder.Relay
			}
			return a.Folder.Folder < b.Folder.Folder
		}
		return a.Conn < b.Conn
	})
	return out, nil
}
