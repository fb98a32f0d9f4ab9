package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// The webhook queue is one stream shared by every instance: an accepted
// event is a message, its key the stream sequence, and acknowledging it
// deletes the message. Nothing is ever discarded by limits: an event
// leaves the queue only when some instance has handled it.
const (
	queueStream  = "RGS_QUEUE"
	queueSubject = "rgs.queue"
	// queueDedupe is how long JetStream remembers event ids: a sender
	// retrying a webhook within it does not queue the event twice.
	queueDedupe = time.Hour
	// queueTimeout bounds one Enqueue, PendingEvents or AckEvents call.
	queueTimeout = 30 * time.Second
	// queueStored is where the stream republishes each message it
	// stored, for watchers.
	queueStored = "rgs.queued"
	// watchPoll is how often a watcher looks for new messages without a
	// wake-up.
	watchPoll = 5 * time.Second
	// publishTry bounds one publish attempt: a request that reached a
	// stream leader that then died gets no answer, only a timeout.
	publishTry = 5 * time.Second
	// queueTry bounds one read, delete or consumer request, for the same
	// reason: a node that died leaves it unanswered.
	queueTry = 5 * time.Second
	// fewEvents is how many queued messages PendingEvents reads one by one
	// rather than through a consumer.
	fewEvents = 8
	// pendingBatch is how many messages PendingEvents asks a consumer for
	// at a time.
	pendingBatch = 1000
	// ackParallel is how many deletes AckEvents has in flight at a time.
	ackParallel = 64
)

// Queue is the durable webhook queue on JetStream.
type Queue struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// OpenQueue creates the queue's stream, or updates an existing one to this
// configuration (such as the replica count).
func OpenQueue(ctx context.Context, js jetstream.JetStream, replicas int) (*Queue, error) {
	cfg := jetstream.StreamConfig{
		Name:       queueStream,
		Subjects:   []string{queueSubject},
		Storage:    jetstream.FileStorage,
		Replicas:   max(replicas, 1),
		Duplicates: queueDedupe,
		Retention:  jetstream.LimitsPolicy,
		// Whole messages, so that watchers need not read them back.
		RePublish: &jetstream.RePublish{Source: queueSubject, Destination: queueStored},
	}
	st, err := js.CreateOrUpdateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another instance created it meanwhile
		st, err = js.CreateOrUpdateStream(ctx, cfg)
	}
	if err != nil {
		// nats-server before 2.10 cannot change a stream's RePublish: keep
		// the one an older relay-git-sync set (headers only), which Watch
		// handles too.
		if cur, cerr := js.Stream(ctx, queueStream); cerr == nil {
			if rp := cur.CachedInfo().Config.RePublish; rp != nil && *rp != *cfg.RePublish {
				cfg.RePublish = rp
				st, err = js.CreateOrUpdateStream(ctx, cfg)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsstore: creating the webhook queue (stream %s): %w", queueStream, err)
	}
	return &Queue{js: js, stream: st}, nil
}

// Enqueue stores ev in the queue and returns it with its key; it is
// durable (acknowledged by the stream's replicas) when Enqueue returns.
// An event whose ID JetStream saw within queueDedupe is not stored again:
// Enqueue then reports a duplicate, with the first copy's key.
//
// A publish that times out or finds no stream leader (a node died, a
// leader election is under way) is retried until queueTimeout, under the
// same message id so that a retry never stores the event twice; an event
// without an ID gets a random message id for that.
func (q *Queue) Enqueue(ev store.QueuedEvent) (store.QueuedEvent, bool, error) {
	ev.Time, ev.Received = ev.Time.UTC(), ev.Received.UTC()
	data, err := encodeEvent(ev)
	if err != nil {
		return store.QueuedEvent{}, false, err
	}
	msgID := ev.ID
	if msgID == "" {
		msgID = "rgs-" + nuid.Next()
	}
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	for {
		tctx, tcancel := context.WithTimeout(ctx, publishTry)
		ack, err := q.js.Publish(tctx, queueSubject, data, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(queueStream))
		tcancel()
		if err == nil {
			ev.Key = ack.Sequence
			return ev, ack.Duplicate, nil
		}
		if !transient(err) || ctx.Err() != nil {
			return store.QueuedEvent{}, false, fmt.Errorf("natsstore: queueing webhook event for %s/%s: %w", ev.Relay, ev.Doc, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// transient reports whether a publish may succeed if tried again: the
// server did not answer, or answered that JetStream is not available now.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		(errors.As(err, &apiErr) && apiErr.Code == 503)
}

// PendingEvents returns every event still in the queue, oldest first. A
// message that is not an event is an error naming its sequence (delete it
// with `nats stream rmm RGS_QUEUE SEQ` once looked at).
//
// It streams a queue of more than fewEvents through a short-lived
// consumer, a few round trips however many events are queued. On
// nats-server 2.9 a new consumer may be placed on a replica that just
// died, and its creation then hangs until the server notices; so each
// consumer request is bounded by queueTry, and when one fails or stalls
// the rest is read message by message ("the next message from sequence
// N"), each request answered by the stream leader and bounded by queueTry.
func (q *Queue) PendingEvents() ([]store.QueuedEvent, error) {
	st, err := q.state()
	if err != nil {
		return nil, err
	}
	return q.pending(st.msgs)
}

// pending is PendingEvents of a queue that held msgs messages a moment ago.
func (q *Queue) pending(msgs uint64) ([]store.QueuedEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	var evs []store.QueuedEvent
	next := uint64(1)
	// A few messages are read one by one sooner than a consumer is made
	// (on the cluster's meta leader, at every rescan of every instance).
	if msgs > fewEvents {
		var done bool
		var err error
		if evs, next, done, err = q.pendingByConsumer(ctx); err != nil || done {
			return evs, err
		}
	}
	for seq := next; ; {
		m, err := q.getMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return evs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("natsstore: reading the webhook queue at sequence %d: %w", seq, err)
		}
		ev, err := decodeEvent(m.Sequence, m.Data)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
		seq = m.Sequence + 1
	}
}

// queueState is the queue as its stream leader has it: first is the
// sequence of its oldest message (the last plus one when it is empty), so
// every event below it was acknowledged; msgs is how many it holds.
type queueState struct{ first, msgs uint64 }

// state reads the queue's state, retrying while the leader is elected.
func (q *Queue) state() (queueState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	for {
		tctx, tcancel := context.WithTimeout(ctx, queueTry)
		info, err := q.stream.Info(tctx)
		tcancel()
		if err == nil {
			st := queueState{first: info.State.FirstSeq, msgs: info.State.Msgs}
			if st.msgs == 0 {
				st.first = info.State.LastSeq + 1
			}
			return st, nil
		}
		if !transient(err) || ctx.Err() != nil {
			return queueState{}, fmt.Errorf("natsstore: reading the webhook queue's state: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// pendingByConsumer reads the queue through an ephemeral consumer (in
// memory, one replica, no acks). It is done when it has read a message
// with nothing pending after it; otherwise the caller goes on from next
// message by message. Only a message that is not an event is an error.
func (q *Queue) pendingByConsumer(ctx context.Context) (evs []store.QueuedEvent, next uint64, done bool, err error) {
	tctx, cancel := context.WithTimeout(ctx, queueTry)
	cons, cerr := q.stream.CreateConsumer(tctx, jetstream.ConsumerConfig{
		FilterSubject:     queueSubject,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: queueTimeout, // removes it if the delete below is lost
	})
	cancel()
	if cerr != nil {
		return nil, 1, false, nil
	}
	name := cons.CachedInfo().Name
	defer func() { // nobody needs to wait for it
		go func() {
			dctx, dcancel := context.WithTimeout(context.Background(), queueTry)
			defer dcancel()
			q.stream.DeleteConsumer(dctx, name)
		}()
	}()
	next = 1
	for pending := cons.CachedInfo().NumPending; pending > 0; {
		if ctx.Err() != nil { // the caller's read reports it
			return evs, next, false, nil
		}
		// A no-wait fetch ends as soon as the server has sent what it has;
		// the client ends it after a second without a message (a dead node).
		batch, ferr := cons.FetchNoWait(int(min(pending, pendingBatch)))
		if ferr != nil {
			return evs, next, false, nil
		}
		got := 0
		for m := range batch.Messages() {
			md, merr := m.Metadata()
			if merr != nil {
				return evs, next, false, nil
			}
			if md.Sequence.Stream < next { // cannot happen: the consumer delivers in order
				continue
			}
			ev, derr := decodeEvent(md.Sequence.Stream, m.Data())
			if derr != nil {
				return nil, 0, false, derr
			}
			evs = append(evs, ev)
			next, pending = md.Sequence.Stream+1, md.NumPending
			got++
		}
		if got == 0 {
			// Nothing although something was pending: the rest was
			// acknowledged meanwhile, or the consumer's node is gone.
			return evs, next, false, nil
		}
	}
	return evs, next, true, nil
}

// getMsg reads the first queue message from sequence seq on, retrying
// transient errors within ctx, each try bounded by queueTry so that a
// request to a node that died does not take the whole of ctx.
func (q *Queue) getMsg(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	for {
		tctx, cancel := context.WithTimeout(ctx, queueTry)
		m, err := q.stream.GetMsg(tctx, seq, jetstream.WithGetMsgSubject(queueSubject))
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return m, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// AckEvents deletes the events with these keys from the queue, up to
// ackParallel at a time. Several instances may acknowledge the same event:
// a key no longer in the queue is not an error. The first failure ends the
// call and names its key.
func (q *Queue) AckEvents(keys []uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, ackParallel)
	for _, k := range keys {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := q.ack(ctx, k); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel() // the caller learns of the failure now, not after the rest
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("natsstore: acknowledging queued webhook events: %w", ctx.Err())
	}
	return first
}

// ack deletes the message with sequence k; transient errors (a leader
// election) are retried within ctx, each try bounded by queueTry.
func (q *Queue) ack(ctx context.Context, k uint64) error {
	for {
		tctx, tcancel := context.WithTimeout(ctx, queueTry)
		err := q.stream.DeleteMsg(tctx, k)
		tcancel()
		if err == nil {
			return nil
		}
		if transient(err) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		// The delete error does not say why; a message that is gone was
		// acknowledged already.
		tctx, tcancel = context.WithTimeout(ctx, queueTry)
		_, gerr := q.stream.GetMsg(tctx, k)
		tcancel()
		if errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return nil
		}
		return fmt.Errorf("natsstore: acknowledging queued webhook event %d: %w", k, err)
	}
}

// Watch calls fn, in order and from one goroutine, for each event queued
// from now on by any instance, until ctx ends. It returns once every event
// queued after it returns is sure to be seen. A message that is not an
// event is skipped here; PendingEvents reports it.
//
// Watch uses no consumer (see PendingEvents): the stream republishes each
// stored message on queueStored with its sequence (header Nats-Sequence),
// and the watcher takes the event from there. It reads from the stream
// leader instead only when a sequence shows it missed messages (wake-ups
// lost while reconnecting or dropped as a slow consumer), when the
// republished message has no body (a stream still configured by an older
// relay-git-sync, headers only), and on a poll every watchPoll, which
// catches up after the last wake-ups were lost.
func (q *Queue) Watch(ctx context.Context, fn func(store.QueuedEvent)) error {
	nc := q.js.Conn()
	wctx, wcancel := context.WithCancel(ctx)
	// The subscription's own pending buffer holds what the watcher has not
	// taken yet; past its limits the client drops messages, a gap.
	wakes := make(chan *nats.Msg, 256)
	sub, err := nc.Subscribe(queueStored, func(m *nats.Msg) {
		select {
		case wakes <- m:
		case <-wctx.Done():
		}
	})
	sctx, cancel := context.WithTimeout(ctx, queueTimeout)
	defer cancel()
	if err == nil {
		err = nc.FlushWithContext(sctx) // the server has the subscription
	}
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = q.stream.Info(sctx)
	}
	if err != nil {
		wcancel()
		if sub != nil {
			sub.Unsubscribe()
		}
		return fmt.Errorf("natsstore: watching the webhook queue: %w", err)
	}
	w := &watcher{q: q, fn: fn, next: info.State.LastSeq + 1}
	go func() {
		defer wcancel()
		defer sub.Unsubscribe()
		tick := time.NewTicker(watchPoll)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case m := <-wakes:
				w.woken(wctx, m)
			case <-tick.C:
				w.catchUp(wctx)
			}
		}
	}()
	return nil
}

// watcher is the state of one Watch: next is the sequence of the first
// message it has not passed to fn (or skipped) yet.
type watcher struct {
	q    *Queue
	fn   func(store.QueuedEvent)
	next uint64
}

// woken handles one republished message.
func (w *watcher) woken(ctx context.Context, m *nats.Msg) {
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	switch {
	case err != nil || seq > w.next || len(m.Data) == 0:
		// Messages missed, or no body: read from the stream (which
		// includes this message unless that fails; then the poll retries).
		w.catchUp(ctx)
	case seq == w.next:
		w.next++
		if ev, err := decodeEvent(seq, m.Data); err == nil {
			w.fn(ev)
		}
	}
	// seq < next: passed already, read from the stream.
}

// catchUp reads the messages from next on from the stream until there are
// no more. A read error (a leader election) ends it: the next wake-up or
// poll tries again.
func (w *watcher) catchUp(ctx context.Context) {
	for ctx.Err() == nil {
		tctx, cancel := context.WithTimeout(ctx, queueTry)
		m, err := w.q.stream.GetMsg(tctx, w.next, jetstream.WithGetMsgSubject(queueSubject))
		cancel()
		if err != nil {
			return
		}
		w.next = m.Sequence + 1
		if ev, err := decodeEvent(m.Sequence, m.Data); err == nil {
			w.fn(ev)
		}
	}
}

// queuedV1 is an event as a queue message holds it. V is the format
// version, so that a later format can be told apart.
type queuedV1 struct {
	V        int       `json:"v"`
	ID       string    `json:"id,omitempty"`
	Relay    string    `json:"relay"`
	Doc      string    `json:"doc"`
	Time     time.Time `json:"time"` // RFC 3339 with nanoseconds
	User     string    `json:"user,omitempty"`
	Received time.Time `json:"received"`
}

func encodeEvent(ev store.QueuedEvent) ([]byte, error) {
	b, err := json.Marshal(queuedV1{V: 1, ID: ev.ID, Relay: ev.Relay, Doc: ev.Doc, Time: ev.Time.UTC(), User: ev.User, Received: ev.Received.UTC()})
	if err != nil {
		return nil, fmt.Errorf("natsstore: encoding webhook event for %s/%s: %w", ev.Relay, ev.Doc, err)
	}
	return b, nil
}

func decodeEvent(seq uint64, data []byte) (store.QueuedEvent, error) {
	var m queuedV1
	if err := json.Unmarshal(data, &m); err != nil {
		return store.QueuedEvent{}, fmt.Errorf("natsstore: webhook queue message at sequence %d (stream %s) is not an event: %w", seq, queueStream, err)
	}
	if m.V != 1 {
		return store.QueuedEvent{}, fmt.Errorf("natsstore: webhook queue message at sequence %d (stream %s) has format version %d, which this relay-git-sync does not know (an older version than the instance that wrote it?)", seq, queueStream, m.V)
	}
	return store.QueuedEvent{Key: seq, ID: m.ID, Relay: m.Relay, Doc: m.Doc, Time: m.Time.UTC(), User: m.User, Received: m.Received.UTC()}, nil
}
