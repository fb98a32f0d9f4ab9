package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The durable webhook queue. An event is acknowledged to the Relay Server
// only after Enqueue has committed it, and leaves the queue only when the
// scheduler acknowledges it (its change is in a snapshot). Key layout:
//
//	'Q'          badger.Sequence lease of queue keys
//	'q' key[8]   queued event (queueV1 record)
//	'w' id       webhook/event id seen, empty value, expires after dedupeTTL
const (
	prefixQueue    = 'q'
	prefixDedupe   = 'w'
	prefixQueueSeq = 'Q' // badger.Sequence state for queue keys

	queueV1 = 1

	// dedupeTTL is how long a webhook id is remembered. Senders retry for
	// hours at most; a week is ample and keeps the key space small.
	dedupeTTL = 7 * 24 * time.Hour
)

// QueuedEvent is one accepted webhook event.
type QueuedEvent struct {
	Key      uint64 // queue position, assigned by Enqueue
	ID       string // sender's event id for deduplication ("" = none)
	Relay    string
	Doc      string
	Time     time.Time // the event's time (webhook timestamp)
	User     string
	Received time.Time
}

func queueKey(k uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixQueue}, k)
}

func dedupeKey(id string) []byte { return append([]byte{prefixDedupe}, id...) }

func encodeQueued(ev QueuedEvent) []byte {
	e := &enc{}
	e.byte(queueV1)
	e.str(ev.ID)
	e.str(ev.Relay)
	e.str(ev.Doc)
	e.time(ev.Time)
	e.str(ev.User)
	e.time(ev.Received)
	return e.b
}

func decodeQueued(key, v []byte) (QueuedEvent, error) {
	d := &dec{b: v}
	if d.byte() != queueV1 {
		return QueuedEvent{}, fmt.Errorf("store: queue record %x: unknown format", key)
	}
	ev := QueuedEvent{Key: binary.BigEndian.Uint64(key[1:])}
	ev.ID, ev.Relay, ev.Doc = d.str(), d.str(), d.str()
	ev.Time = d.time()
	ev.User = d.str()
	ev.Received = d.time()
	if d.err != nil {
		return QueuedEvent{}, fmt.Errorf("store: queue record %x: %w", key, d.err)
	}
	return ev, nil
}

// Enqueue stores ev durably (with Options.SyncWrites, it is on disk when
// Enqueue returns) and returns it with its queue key. An event whose
// non-empty ID was enqueued before is not stored again: duplicate is true.
func (s *Store) Enqueue(ev QueuedEvent) (QueuedEvent, bool, error) {
	for attempt := 0; ; attempt++ {
		dup, err := s.enqueueOnce(&ev)
		if errors.Is(err, badger.ErrConflict) && attempt < 5 {
			continue // a concurrent Enqueue of the same id: look again
		}
		if err != nil {
			return QueuedEvent{}, false, fmt.Errorf("store: enqueueing event: %w", err)
		}
		return ev, dup, nil
	}
}

func (s *Store) enqueueOnce(ev *QueuedEvent) (bool, error) {
	key, err := s.queueSeq.Next()
	if err != nil {
		return false, err
	}
	// Sequence 0 is never handed out by badger's first lease; skip it anyway
	// so that 0 can mean "no key".
	if key == 0 {
		if key, err = s.queueSeq.Next(); err != nil {
			return false, err
		}
	}
	ev.Key = key
	dup := false
	err = s.db.Update(func(txn *badger.Txn) error {
		if ev.ID != "" {
			_, err := txn.Get(dedupeKey(ev.ID))
			if err == nil {
				dup = true
				return nil
			}
			if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			if err := txn.SetEntry(badger.NewEntry(dedupeKey(ev.ID), nil).WithTTL(dedupeTTL)); err != nil {
				return err
			}
		}
		return txn.Set(queueKey(key), encodeQueued(*ev))
	})
	return dup, err
}

// PendingEvents returns every event not acknowledged yet, oldest first.
func (s *Store) PendingEvents() ([]QueuedEvent, error) {
	var out []QueuedEvent
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixQueue}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			ev, err := decodeQueued(it.Item().Key(), v)
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// AckEvents removes events from the queue.
func (s *Store) AckEvents(keys []uint64) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(queueKey(k)); err != nil {
			return fmt.Errorf("store: acknowledging events: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("store: acknowledging events: %w", err)
	}
	return nil
}
