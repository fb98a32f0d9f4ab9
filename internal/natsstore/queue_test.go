package natsstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// dialJS connects to url as a separate client, as another instance would.
func dialJS(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func openQueue(t testing.TB, js jetstream.JetStream, replicas int) *Queue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q, err := OpenQueue(ctx, js, replicas)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// event is a distinct event; its times are in a zone other than UTC and
// have nanoseconds, which the queue must keep.
func event(id, doc string) store.QueuedEvent {
	zone := time.FixedZone("X", 5*3600)
	return store.QueuedEvent{
		ID: id, Relay: "11111111-1111-1111-1111-111111111111", Doc: doc, User: "u-" + doc,
		Time:     time.Date(2026, 12, 2, 10, 0, 0, 123456789, zone),
		Received: time.Date(2026, 12, 2, 10, 0, 1, 987654321, zone),
	}
}

func enqueue(t *testing.T, q *Queue, ev store.QueuedEvent) (store.QueuedEvent, bool) {
	t.Helper()
	got, dup, err := q.Enqueue(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(ev.Time) || !got.Received.Equal(ev.Received) || got.Time.Location() != time.UTC {
		t.Fatalf("Enqueue returned times %v %v for %v %v, want the same instants in UTC", got.Time, got.Received, ev.Time, ev.Received)
	}
	return got, dup
}

func pending(t *testing.T, q *Queue) []store.QueuedEvent {
	t.Helper()
	evs, err := q.PendingEvents()
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func wantEvents(t *testing.T, what string, got []store.QueuedEvent, want ...store.QueuedEvent) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestQueueDedupeOrderAndAck(t *testing.T) {
	_, js := dialJS(t, natstest.Start(t).URL())
	q := openQueue(t, js, 1)
	if evs := pending(t, q); len(evs) != 0 {
		t.Fatalf("new queue holds %+v", evs)
	}
	a, dup := enqueue(t, q, event("a", "d1"))
	if dup {
		t.Fatal("first event reported as a duplicate")
	}
	b, _ := enqueue(t, q, event("", "d2"))
	c, _ := enqueue(t, q, event("c", "d3"))
	if !(a.Key < b.Key && b.Key < c.Key) {
		t.Fatalf("keys %d %d %d are not increasing", a.Key, b.Key, c.Key)
	}
	again, dup := enqueue(t, q, event("a", "d1"))
	if !dup || again.Key != a.Key {
		t.Fatalf("same id again: duplicate %v key %d, want true and %d", dup, again.Key, a.Key)
	}
	// Without an id there is no deduplication.
	if _, dup := enqueue(t, q, event("", "d2")); dup {
		t.Fatal("an event without an id reported as a duplicate")
	}
	evs := pending(t, q)
	if len(evs) != 4 {
		t.Fatalf("%d pending, want 4: %+v", len(evs), evs)
	}
	wantEvents(t, "pending", evs[:3], a, b, c)

	if err := q.AckEvents([]uint64{b.Key, evs[3].Key}); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "pending after acking two", pending(t, q), a, c)
	// Acking again (as another instance that handled the same event would)
	// is fine.
	if err := q.AckEvents([]uint64{b.Key, a.Key}); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "pending after acking again", pending(t, q), c)
}

// Two instances on their own connections share one queue: each sees what
// the other queued, through Watch and PendingEvents, and both may ack.
func TestQueueTwoInstances(t *testing.T) {
	url := natstest.Start(t).URL()
	_, js1 := dialJS(t, url)
	_, js2 := dialJS(t, url)
	q1, q2 := openQueue(t, js1, 1), openQueue(t, js2, 1)
	before, _ := enqueue(t, q1, event("before", "d0"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen1, seen2 := make(chan store.QueuedEvent, 10), make(chan store.QueuedEvent, 10)
	if err := q1.Watch(ctx, func(ev store.QueuedEvent) { seen1 <- ev }); err != nil {
		t.Fatal(err)
	}
	if err := q2.Watch(ctx, func(ev store.QueuedEvent) { seen2 <- ev }); err != nil {
		t.Fatal(err)
	}
	a, _ := enqueue(t, q1, event("a", "d1"))
	b, _ := enqueue(t, q2, event("b", "d2"))
	for i, seen := range []chan store.QueuedEvent{seen1, seen2} {
		// The events queued before Watch are not delivered: the first is a.
		wantEvents(t, fmt.Sprintf("watcher %d", i+1), []store.QueuedEvent{receive(t, seen), receive(t, seen)}, a, b)
	}
	wantEvents(t, "pending on 1", pending(t, q1), before, a, b)
	wantEvents(t, "pending on 2", pending(t, q2), before, a, b)
	if err := q1.AckEvents([]uint64{before.Key, a.Key, b.Key}); err != nil {
		t.Fatal(err)
	}
	if err := q2.AckEvents([]uint64{a.Key, b.Key}); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "pending on 2 after both acked", pending(t, q2))
}

// receive waits for a watched event; the bound only keeps a broken Watch
// from hanging the test.
func receive(t *testing.T, ch chan store.QueuedEvent) store.QueuedEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(time.Minute):
		t.Fatal("no event watched within a minute")
		return store.QueuedEvent{}
	}
}

// The malformed message follows one event (read message by message) or
// more than fewEvents (read through a consumer).
func TestQueueMalformedMessageIsNamed(t *testing.T) {
	for _, before := range []int{1, fewEvents + 2} {
		for _, body := range []string{"not json", `{"v":2,"relay":"r","doc":"d"}`} {
			t.Run(fmt.Sprintf("%d/%s", before, body), func(t *testing.T) {
				_, js := dialJS(t, natstest.Start(t).URL())
				q := openQueue(t, js, 1)
				enqueueMany(t, q, before)
				if _, err := js.Publish(context.Background(), queueSubject, []byte(body)); err != nil {
					t.Fatal(err)
				}
				enqueue(t, q, event("after", "d1"))
				bad := fmt.Sprintf("sequence %d ", before+1)
				_, err := q.PendingEvents()
				if err == nil || !strings.Contains(err.Error(), bad) {
					t.Fatalf("PendingEvents with message %d %q: %v, want an error naming %s", before+1, body, err, bad)
				}
			})
		}
	}
}

// With replicas 3, killing the node that leads the queue's stream (and
// that the client is connected to) loses nothing: after the client
// reconnects and a new leader is elected, Enqueue and PendingEvents work,
// and deduplication still knows the events queued before.
func TestQueueClusterNodeKilled(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	_, setup := dialJS(t, c.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	openQueue(t, setup, 3)
	st, err := setup.Stream(ctx, queueStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Cluster.Replicas) != 2 {
		t.Fatalf("queue stream has replicas %+v, want 2 besides the leader", info.Cluster.Replicas)
	}
	var leader *natstest.Node
	urls := []string{}
	for _, nd := range c.Nodes {
		if nd.Name == info.Cluster.Leader {
			leader = nd
			urls = append([]string{nd.URL()}, urls...)
		} else {
			urls = append(urls, nd.URL())
		}
	}
	if leader == nil {
		t.Fatalf("stream leader %q is none of the nodes", info.Cluster.Leader)
	}
	nc, js := dialJS(t, strings.Join(urls, ","), nats.DontRandomize())
	if nc.ConnectedUrl() != leader.URL() {
		t.Fatalf("connected to %s, want the leader %s first", nc.ConnectedUrl(), leader.URL())
	}
	q := openQueue(t, js, 3)
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	seen := make(chan store.QueuedEvent, 10)
	if err := q.Watch(wctx, func(ev store.QueuedEvent) { seen <- ev }); err != nil {
		t.Fatal(err)
	}
	a, _ := enqueue(t, q, event("a", "d1"))
	wantEvents(t, "watched before the kill", []store.QueuedEvent{receive(t, seen)}, a)

	leader.Kill()
	b, _ := enqueue(t, q, event("b", "d2"))
	wantEvents(t, "watched after the kill", []store.QueuedEvent{receive(t, seen)}, b)
	seen2 := make(chan store.QueuedEvent, 10)
	if err := q.Watch(wctx, func(ev store.QueuedEvent) { seen2 <- ev }); err != nil {
		t.Fatal(err)
	}
	cc, _ := enqueue(t, q, event("c", "d3"))
	wantEvents(t, "watch started after the kill", []store.QueuedEvent{receive(t, seen2)}, cc)
	if nc.ConnectedUrl() == leader.URL() {
		t.Fatalf("still connected to the killed node %s", leader.URL())
	}
	again, dup := enqueue(t, q, event("a", "d1"))
	if !dup || again.Key != a.Key {
		t.Fatalf("event a again after the failover: duplicate %v key %d, want true and %d", dup, again.Key, a.Key)
	}
	wantEvents(t, "pending after the failover", pending(t, q), a, b, cc)
}

// enqueueMany queues n distinct events from 8 goroutines and returns
// them in key order.
func enqueueMany(t testing.TB, q *Queue, n int) []store.QueuedEvent {
	t.Helper()
	evs := make([]store.QueuedEvent, n)
	errs := make(chan error, n)
	done := make(chan struct{})
	for w := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := w; i < n; i += 8 {
				ev, _, err := q.Enqueue(event(fmt.Sprintf("e%d", i), fmt.Sprintf("d%d", i)))
				if err != nil {
					errs <- err
					return
				}
				evs[i] = ev
			}
		}()
	}
	for range 8 {
		<-done
	}
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(evs, func(a, b store.QueuedEvent) int { return cmp.Compare(a.Key, b.Key) })
	return evs
}

// noConsumers is a stream on which consumers cannot be created, as when
// the node a new consumer is placed on is dead: PendingEvents must then
// read message by message.
type noConsumers struct{ jetstream.Stream }

func (noConsumers) CreateConsumer(context.Context, jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return nil, context.DeadlineExceeded
}

// More events than one fetch asks for, with some acknowledged in between,
// are all read, in order, through the consumer and message by message.
func TestQueuePendingManyWithHoles(t *testing.T) {
	_, js := dialJS(t, natstest.Start(t).URL())
	q := openQueue(t, js, 1)
	all := enqueueMany(t, q, pendingBatch+300)
	var acked []uint64
	var want []store.QueuedEvent
	for i, ev := range all {
		if i%3 == 1 || i == 0 || i == len(all)-1 {
			acked = append(acked, ev.Key)
		} else {
			want = append(want, ev)
		}
	}
	if err := q.AckEvents(acked); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "pending through a consumer", pending(t, q), want...)
	slow := &Queue{js: q.js, stream: noConsumers{q.stream}}
	wantEvents(t, "pending message by message", pending(t, slow), want...)
	if err := q.AckEvents(acked); err != nil {
		t.Fatalf("acking %d events again: %v", len(acked), err)
	}
	consumers := 0
	for range q.stream.ListConsumers(context.Background()).Info() {
		consumers++
	}
	if consumers > 1 { // the last one's delete may still be on its way
		t.Errorf("%d consumers left on the queue stream", consumers)
	}
}

// The watcher takes events from the republished messages, and reads from
// the stream when one shows it missed some (a sequence beyond the next it
// expects) or has no body (republished headers only, as a stream set up by
// an older relay-git-sync does).
func TestQueueWatcherGapAndHeadersOnly(t *testing.T) {
	_, js := dialJS(t, natstest.Start(t).URL())
	q := openQueue(t, js, 1)
	a, _ := enqueue(t, q, event("a", "d1"))
	b, _ := enqueue(t, q, event("b", "d2"))
	c, _ := enqueue(t, q, event("c", "d3"))
	var got []store.QueuedEvent
	w := &watcher{q: q, fn: func(ev store.QueuedEvent) { got = append(got, ev) }, next: a.Key}
	republished := func(ev store.QueuedEvent, body bool) *nats.Msg {
		m := nats.NewMsg(queueStored)
		m.Header.Set(jetstream.SequenceHeader, fmt.Sprint(ev.Key))
		if body {
			data, err := encodeEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			m.Data = data
		} else {
			m.Header.Set(nats.MsgSize, "100")
		}
		return m
	}
	ctx := context.Background()
	w.woken(ctx, republished(a, true))
	wantEvents(t, "after a's wake-up", got, a)
	w.woken(ctx, republished(c, true)) // b missed
	wantEvents(t, "after c's wake-up with b missed", got, a, b, c)
	w.woken(ctx, republished(b, true)) // late: passed already
	wantEvents(t, "after b's late wake-up", got, a, b, c)
	d, _ := enqueue(t, q, event("d", "d4"))
	w.woken(ctx, republished(d, false))
	wantEvents(t, "after d's headers-only wake-up", got, a, b, c, d)
	if w.next != d.Key+1 {
		t.Fatalf("next %d, want %d", w.next, d.Key+1)
	}
}

// OpenQueue updates a queue stream made by an older relay-git-sync
// (republishing headers only), keeping its events, or keeps that setting
// where the server cannot change it; Watch works with both.
func TestQueueOldStreamConfig(t *testing.T) {
	nc, js := dialJS(t, natstest.Start(t).URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(nc.ConnectedServerVersion(), "v"), "%d.%d", &major, &minor); err != nil {
		t.Fatal(err)
	}
	// nats-server 2.9 cannot change a stream's RePublish.
	canChange := major > 2 || major == 2 && minor >= 10
	old := jetstream.StreamConfig{
		Name: queueStream, Subjects: []string{queueSubject}, Storage: jetstream.FileStorage,
		Replicas: 1, Duplicates: queueDedupe, Retention: jetstream.LimitsPolicy,
		RePublish: &jetstream.RePublish{Source: queueSubject, Destination: queueStored, HeadersOnly: true},
	}
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	q := openQueue(t, js, 1)
	before, _ := enqueue(t, q, event("before", "d0"))
	if q.stream.CachedInfo().Config.RePublish.HeadersOnly == canChange {
		t.Fatalf("OpenQueue on nats-server %s: republishing headers only %v", nc.ConnectedServerVersion(), !canChange)
	}
	seen := make(chan store.QueuedEvent, 10)
	if err := q.Watch(ctx, func(ev store.QueuedEvent) { seen <- ev }); err != nil {
		t.Fatal(err)
	}
	a, _ := enqueue(t, q, event("a", "d1"))
	wantEvents(t, "watched with bodies", []store.QueuedEvent{receive(t, seen)}, a)
	// An older instance starting sets headers only again.
	if _, err := js.UpdateStream(ctx, old); canChange && err != nil {
		t.Fatal(err)
	}
	b, _ := enqueue(t, q, event("b", "d2"))
	wantEvents(t, "watched with headers only", []store.QueuedEvent{receive(t, seen)}, b)
	wantEvents(t, "pending", pending(t, q), before, a, b)
}

// Right after the stream leader dies, with the client on a live node,
// PendingEvents and AckEvents retry each request until a new leader
// answers rather than waiting for the whole queueTimeout on the first.
func TestQueueLeaderKilledReadAndAck(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	_, setup := dialJS(t, c.URL())
	q := openQueue(t, setup, 3)
	evs := enqueueMany(t, q, 50)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := q.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var leader *natstest.Node
	var others []string
	for _, nd := range c.Nodes {
		if nd.Name == info.Cluster.Leader {
			leader = nd
		} else {
			others = append(others, nd.URL())
		}
	}
	if leader == nil {
		t.Fatalf("stream leader %q is none of the nodes", info.Cluster.Leader)
	}
	_, js := dialJS(t, strings.Join(others, ","))
	q2 := openQueue(t, js, 3)
	leader.Kill()
	start := time.Now()
	wantEvents(t, "pending right after the leader died", pending(t, q2), evs...)
	keys := make([]uint64, len(evs))
	for i, ev := range evs {
		keys[i] = ev.Key
	}
	if err := q2.AckEvents(keys); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "pending after acking all", pending(t, q2))
	t.Logf("read and acked %d events in %v after the leader died", len(evs), time.Since(start))
}

// noReads is a stream from which messages cannot be read, as while its
// leader is being elected.
type noReads struct{ jetstream.Stream }

func (noReads) GetMsg(context.Context, uint64, ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error) {
	return nil, context.DeadlineExceeded
}

// Watch takes the events from the republished messages: it needs no read
// from the stream while none is missed.
func TestQueueWatchWithoutReads(t *testing.T) {
	_, js := dialJS(t, natstest.Start(t).URL())
	q := openQueue(t, js, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan store.QueuedEvent, 10)
	if err := (&Queue{js: q.js, stream: noReads{q.stream}}).Watch(ctx, func(ev store.QueuedEvent) { seen <- ev }); err != nil {
		t.Fatal(err)
	}
	a, _ := enqueue(t, q, event("a", "d1"))
	b, _ := enqueue(t, q, event("b", "d2"))
	wantEvents(t, "watched", []store.QueuedEvent{receive(t, seen), receive(t, seen)}, a, b)
}
