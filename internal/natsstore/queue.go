package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// queueStored is where the stream republishes the headers of each
	// message it stored, to wake watchers up.
	queueStored = "rgs.queued"
	// watchPoll is how often a watcher looks for new messages without a
	// wake-up.
	watchPoll = 5 * time.Second
	// publishTry bounds one publish attempt: a request that reached a
	// stream leader that then died gets no answer, only a timeout.
	publishTry = 5 * time.Second
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
		RePublish:  &jetstream.RePublish{Source: queueSubject, Destination: queueStored, HeadersOnly: true},
	}
	st, err := js.CreateOrUpdateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another instance created it meanwhile
		st, err = js.CreateOrUpdateStream(ctx, cfg)
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
// It reads message by message ("the next message from sequence N"), each
// request answered by the stream leader, rather than through a consumer:
// on nats-server 2.9 a new consumer may be placed on a replica that just
// died, and its creation then hangs until the server notices.
func (q *Queue) PendingEvents() ([]store.QueuedEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	var evs []store.QueuedEvent
	for seq := uint64(1); ; {
		m, err := q.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(queueSubject))
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

// AckEvents deletes the events with these keys from the queue. Several
// instances may acknowledge the same event: a key no longer in the queue
// is not an error.
func (q *Queue) AckEvents(keys []uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	for _, k := range keys {
		err := q.stream.DeleteMsg(ctx, k)
		if err == nil {
			continue
		}
		// The delete error does not say why; a message that is gone was
		// acknowledged already.
		if _, gerr := q.stream.GetMsg(ctx, k); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			continue
		}
		return fmt.Errorf("natsstore: acknowledging queued webhook event %d: %w", k, err)
	}
	return nil
}

// Watch calls fn, in order and from one goroutine, for each event queued
// from now on by any instance, until ctx ends. It returns once every event
// queued after it returns is sure to be seen. A message that is not an
// event is skipped here; PendingEvents reports it.
//
// Watch uses no consumer (see PendingEvents): the stream republishes the
// headers of each stored message on queueStored, which wakes the watcher
// up to read the new messages from the stream leader; a poll every
// watchPoll catches up after wake-ups lost while reconnecting.
func (q *Queue) Watch(ctx context.Context, fn func(store.QueuedEvent)) error {
	nc := q.js.Conn()
	wake := make(chan struct{}, 1)
	sub, err := nc.Subscribe(queueStored, func(*nats.Msg) {
		select {
		case wake <- struct{}{}:
		default:
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
		if sub != nil {
			sub.Unsubscribe()
		}
		return fmt.Errorf("natsstore: watching the webhook queue: %w", err)
	}
	next := info.State.LastSeq + 1
	go func() {
		defer sub.Unsubscribe()
		tick := time.NewTicker(watchPoll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-tick.C:
			}
			// Read errors (a leader election) are retried at the next wake-up or poll.
			for ctx.Err() == nil {
				m, err := q.stream.GetMsg(ctx, next, jetstream.WithGetMsgSubject(queueSubject))
				if err != nil {
					break
				}
				next = m.Sequence + 1
				if ev, err := decodeEvent(m.Sequence, m.Data); err == nil {
					fn(ev)
				}
			}
		}
	}()
	return nil
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
