package store

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// queueEvent is a test event with every field set.
func queueEvent(i int) QueuedEvent {
	t := time.Date(2026, 3, 3, 21, 58, 48, 123456789, time.UTC).Add(time.Duration(i) * time.Second)
	return QueuedEvent{
		ID:       fmt.Sprintf("evt_%04d", i),
		Relay:    "0b8c1f4e-2a5d-4c6b-9e7f-1a2b3c4d5e6f",
		Doc:      fmt.Sprintf("5e6f7a8b-9c0d-4e1f-8a2b-%012d", i),
		Time:     t,
		User:     fmt.Sprintf("user-%d", i%3),
		Received: t.Add(250 * time.Millisecond),
	}
}

// sameEvent compares everything but Key, times with Equal.
func sameEvent(got, want QueuedEvent) bool {
	return got.ID == want.ID && got.Relay == want.Relay && got.Doc == want.Doc &&
		got.Time.Equal(want.Time) && got.User == want.User && got.Received.Equal(want.Received)
}

func queueKeys(evs []QueuedEvent) []uint64 {
	keys := make([]uint64, len(evs))
	for i, ev := range evs {
		keys[i] = ev.Key
	}
	return keys
}

func TestQueueRoundTrip(t *testing.T) {
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if evs, err := s.PendingEvents(); err != nil || len(evs) != 0 {
		t.Fatalf("empty queue: PendingEvents = %v, %v", evs, err)
	}
	var enq []QueuedEvent
	for i := range 10 {
		ev := queueEvent(i)
		if i == 4 {
			ev.ID, ev.User = "", "" // no dedupe id, no user
		}
		if i == 5 {
			ev.Time, ev.Received = time.Time{}, time.Time{} // zero times survive
		}
		q, dup, err := s.Enqueue(ev)
		if err != nil || dup {
			t.Fatalf("Enqueue %d: dup=%v err=%v", i, dup, err)
		}
		if q.Key == 0 {
			t.Fatalf("Enqueue %d: key 0", i)
		}
		if len(enq) > 0 && q.Key <= enq[len(enq)-1].Key {
			t.Fatalf("Enqueue %d: key %d not above %d", i, q.Key, enq[len(enq)-1].Key)
		}
		if !sameEvent(q, ev) {
			t.Fatalf("Enqueue %d returned %+v, want %+v", i, q, ev)
		}
		enq = append(enq, q)
	}
	got, err := s.PendingEvents()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(enq) {
		t.Fatalf("PendingEvents: %d events, want %d", len(got), len(enq))
	}
	for i := range got {
		if got[i].Key != enq[i].Key || !sameEvent(got[i], enq[i]) {
			t.Errorf("pending[%d] = %+v, want %+v", i, got[i], enq[i])
		}
		if got[i].Time.Location() != time.UTC && !got[i].Time.IsZero() {
			t.Errorf("pending[%d].Time in %v, want UTC", i, got[i].Time.Location())
		}
	}

	// Ack some (including an unknown key and one twice): the rest stay, in order.
	if err := s.AckEvents([]uint64{enq[0].Key, enq[3].Key, enq[9].Key, enq[3].Key, 1 << 60}); err != nil {
		t.Fatal(err)
	}
	if err := s.AckEvents(nil); err != nil {
		t.Fatalf("AckEvents(nil): %v", err)
	}
	got, err = s.PendingEvents()
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{enq[1].Key, enq[2].Key, enq[4].Key, enq[5].Key, enq[6].Key, enq[7].Key, enq[8].Key}
	if fmt.Sprint(queueKeys(got)) != fmt.Sprint(want) {
		t.Fatalf("after ack: keys %v, want %v", queueKeys(got), want)
	}
	if err := s.AckEvents(queueKeys(got)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.PendingEvents(); err != nil || len(got) != 0 {
		t.Fatalf("after acking all: %v, %v", got, err)
	}
}

func TestQueueDedupe(t *testing.T) {
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	first, dup, err := s.Enqueue(queueEvent(1))
	if err != nil || dup {
		t.Fatalf("first: dup=%v err=%v", dup, err)
	}
	// Same id, different content: a duplicate delivery, not stored.
	again := queueEvent(2)
	again.ID = first.ID
	if _, dup, err := s.Enqueue(again); err != nil || !dup {
		t.Fatalf("same id: dup=%v err=%v", dup, err)
	}
	// The id is remembered after the event is acknowledged: a late
	// redelivery must not queue the change again.
	if err := s.AckEvents([]uint64{first.Key}); err != nil {
		t.Fatal(err)
	}
	if _, dup, err := s.Enqueue(queueEvent(1)); err != nil || !dup {
		t.Fatalf("same id after ack: dup=%v err=%v", dup, err)
	}
	// Events without an id are never duplicates of each other.
	noID := queueEvent(3)
	noID.ID = ""
	for i := range 3 {
		if _, dup, err := s.Enqueue(noID); err != nil || dup {
			t.Fatalf("no id #%d: dup=%v err=%v", i, dup, err)
		}
	}
	got, err := s.PendingEvents()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("pending = %d events, want the 3 without id: %+v", len(got), got)
	}
	for _, ev := range got {
		if ev.ID != "" {
			t.Errorf("pending duplicate %+v", ev)
		}
	}
}

// TestQueueReopen checks that pending events, their order and the dedupe
// ids survive a close and reopen, and that keys keep increasing across
// opens (the sequence is leased in blocks; a restart may skip keys but
// never reuses or goes back).
func TestQueueReopen(t *testing.T) {
	dir := t.TempDir()
	open := func() *Store {
		t.Helper()
		s, err := Open(dir, Options{SyncWrites: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var all []QueuedEvent
	var maxKey uint64
	n := 0
	for round := range 3 {
		s := open()
		got, err := s.PendingEvents()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(queueKeys(got)) != fmt.Sprint(queueKeys(all)) {
			t.Fatalf("round %d: pending keys %v, want %v", round, queueKeys(got), queueKeys(all))
		}
		for i := range got {
			if !sameEvent(got[i], all[i]) {
				t.Fatalf("round %d: pending[%d] = %+v, want %+v", round, i, got[i], all[i])
			}
		}
		// Every id seen before is still a duplicate, acknowledged or not.
		for i := range n {
			if _, dup, err := s.Enqueue(queueEvent(i)); err != nil || !dup {
				t.Fatalf("round %d: redelivery of %d: dup=%v err=%v", round, i, dup, err)
			}
		}
		// More than one lease block (256) in the first round.
		count := 5
		if round == 0 {
			count = 300
		}
		for range count {
			q, dup, err := s.Enqueue(queueEvent(n))
			if err != nil || dup {
				t.Fatalf("round %d: Enqueue %d: dup=%v err=%v", round, n, dup, err)
			}
			if q.Key <= maxKey {
				t.Fatalf("round %d: key %d not above %d", round, q.Key, maxKey)
			}
			maxKey = q.Key
			all = append(all, q)
			n++
		}
		// Acknowledge the oldest half of what is pending.
		half := len(all) / 2
		if err := s.AckEvents(queueKeys(all[:half])); err != nil {
			t.Fatal(err)
		}
		all = all[half:]
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueueConcurrentSameID races many Enqueues of one id (a sender
// retrying while the first delivery is still being committed): exactly one
// is stored, the others are duplicates, none fails.
func TestQueueConcurrentSameID(t *testing.T) {
	s, err := Open(t.TempDir(), Options{SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const ids, senders = 8, 8
	type result struct {
		id  string
		dup bool
		err error
	}
	results := make(chan result, ids*senders)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range ids {
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, dup, err := s.Enqueue(queueEvent(i))
				results <- result{queueEvent(i).ID, dup, err}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(results)
	stored := map[string]int{}
	for r := range results {
		if r.err != nil {
			t.Errorf("Enqueue %s: %v", r.id, r.err)
			continue
		}
		if !r.dup {
			stored[r.id]++
		}
	}
	for i := range ids {
		if id := queueEvent(i).ID; stored[id] != 1 {
			t.Errorf("%s: %d non-duplicate enqueues, want 1", id, stored[id])
		}
	}
	got, err := s.PendingEvents()
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, ev := range got {
		gotIDs = append(gotIDs, ev.ID)
	}
	sort.Strings(gotIDs)
	if len(gotIDs) != ids {
		t.Fatalf("pending ids %v, want %d distinct", gotIDs, ids)
	}
	for i := 1; i < len(gotIDs); i++ {
		if gotIDs[i] == gotIDs[i-1] {
			t.Fatalf("id %s stored twice: %v", gotIDs[i], gotIDs)
		}
	}
}

// BenchmarkQueueEnqueueSynced measures durable enqueues (SyncWrites, as
// serve opens the store) from one goroutine and from 64 at once: how much
// concurrent webhooks gain from sharing fsyncs. Reports events/s.
func BenchmarkQueueEnqueueSynced(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", par), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{SyncWrites: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var mu sync.Mutex
			n := 0
			next := func() QueuedEvent {
				mu.Lock()
				defer mu.Unlock()
				n++
				return queueEvent(n)
			}
			b.SetParallelism((par + 1) / 2) // RunParallel starts GOMAXPROCS×this goroutines
			b.ResetTimer()
			if par == 1 {
				for b.Loop() {
					if _, _, err := s.Enqueue(next()); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, _, err := s.Enqueue(next()); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
