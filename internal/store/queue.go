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

// maxEnqueueBatch bounds the events written in one transaction.
const maxEnqueueBatch = 256

var errClosed = errors.New("store: closed")

type enqReq struct {
	ev   QueuedEvent
	done chan enqRes
}

type enqRes struct {
	ev  QueuedEvent
	dup bool
	err error
}

// Enqueue stores ev durably (with Options.SyncWrites, it is on disk when
// Enqueue returns) and returns it with its queue key. An event whose
// non-empty ID was enqueued before is not stored again: duplicate is true.
//
// Concurrent calls share one transaction, and so one fsync: Badger syncs
// its log once per transaction, not per batch of transactions, so without
// this every webhook would wait for a sync of its own (group commit).
func (s *Store) Enqueue(ev QueuedEvent) (QueuedEvent, bool, error) {
	r := &enqReq{ev: ev, done: make(chan enqRes, 1)}
	s.enqMu.RLock()
	if s.enqClosed {
		s.enqMu.RUnlock()
		return QueuedEvent{}, false, errClosed
	}
	s.enqCh <- r
	s.enqMu.RUnlock()
	res := <-r.done
	return res.ev, res.dup, res.err
}

// startCommitter starts the goroutine that writes queued events.
func (s *Store) startCommitter() {
	s.enqCh = make(chan *enqReq, 4*maxEnqueueBatch)
	s.enqQuit = make(chan struct{})
	s.enqDone = make(chan struct{})
	go s.commitLoop()
}

// stopCommitter writes what is waiting and stops the committer; Enqueue
// fails from then on.
func (s *Store) stopCommitter() {
	if s.enqCh == nil {
		return
	}
	s.enqMu.Lock()
	if !s.enqClosed {
		s.enqClosed = true
		close(s.enqQuit)
	}
	s.enqMu.Unlock()
	<-s.enqDone
}

// commitLoop takes every event waiting, up to maxEnqueueBatch, and writes
// them in one transaction; events that arrive meanwhile form the next batch.
func (s *Store) commitLoop() {
	defer close(s.enqDone)
	for {
		var first *enqReq
		select {
		case first = <-s.enqCh:
		case <-s.enqQuit:
			// No Enqueue can send any more (enqClosed is set under the
			// write lock): write what is buffered and stop.
			for {
				select {
				case r := <-s.enqCh:
					s.commitBatch([]*enqReq{r}, 0)
				default:
					return
				}
			}
		}
		batch := []*enqReq{first}
	collect:
		for len(batch) < maxEnqueueBatch {
			select {
			case r := <-s.enqCh:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		s.commitBatch(batch, 0)
	}
}

// commitBatch writes a batch and answers its callers. A transaction too
// big for Badger is split; a conflict (with a concurrent writer of the
// same dedupe key, none today) is retried.
func (s *Store) commitBatch(batch []*enqReq, attempt int) {
	res, err := s.writeBatch(batch)
	switch {
	case errors.Is(err, badger.ErrTxnTooBig) && len(batch) > 1:
		s.commitBatch(batch[:len(batch)/2], 0)
		s.commitBatch(batch[len(batch)/2:], 0)
		return
	case errors.Is(err, badger.ErrConflict) && attempt < 5:
		s.commitBatch(batch, attempt+1)
		return
	}
	for i, r := range batch {
		if err != nil {
			res[i] = enqRes{err: fmt.Errorf("store: enqueueing event: %w", err)}
		}
		r.done <- res[i]
	}
}

func (s *Store) writeBatch(batch []*enqReq) ([]enqRes, error) {
	res := make([]enqRes, len(batch))
	release, err := s.reserveSpace(256 * len(batch))
	if err != nil {
		return res, err
	}
	defer release()
	err = s.db.Update(func(txn *badger.Txn) error {
		seen := map[string]bool{}
		for i, r := range batch {
			ev := r.ev
			if ev.ID != "" {
				if seen[ev.ID] {
					res[i] = enqRes{ev: ev, dup: true}
					continue
				}
				_, err := txn.Get(dedupeKey(ev.ID))
				if err == nil {
					res[i] = enqRes{ev: ev, dup: true}
					continue
				}
				if !errors.Is(err, badger.ErrKeyNotFound) {
					return err
				}
				seen[ev.ID] = true
				if err := txn.SetEntry(badger.NewEntry(dedupeKey(ev.ID), nil).WithTTL(dedupeTTL)); err != nil {
					return err
				}
			}
			key, err := s.queueSeq.Next()
			if err != nil {
				return err
			}
			// Badger's first lease starts at 0; keep 0 meaning "no key".
			if key == 0 {
				if key, err = s.queueSeq.Next(); err != nil {
					return err
				}
			}
			ev.Key = key
			if err := txn.Set(queueKey(key), encodeQueued(ev)); err != nil {
				return err
			}
			res[i] = enqRes{ev: ev}
		}
		return nil
	})
	return res, err
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
