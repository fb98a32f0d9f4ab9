// Package natsstore is the NATS JetStream backend of the store: several
// `serve` instances share one cluster, which holds everything durably and
// replicated (Raft), while each instance keeps a local replica for reads.
//
// Layout (docs/design.md has the whole picture):
//
//	stream RGS_LOG, subjects rgs.log.<relay>.<folder>   a folder's writes, in order: snapshots
//	                         rgs.log._settings           (as tree deltas), doc states, push
//	                                                     state, holds; settings
//	stream RGS_BLOBS, subject rgs.blob.<git blob id>     a blob's record (deltas stay deltas);
//	                                                     one message per subject
//	object store rgs_blobs, name = git blob id (hex)     records over a NATS message, and the
//	                                                     content of blobs over 4 MiB; writes
//	                                                     too big for a message (op.*)
//	stream RGS_QUEUE, subject rgs.queue                  the webhook queue (queue.go)
//	KV bucket rgs_leases, key = folder                   who ingests and pushes a folder (lease.go)
//
// A write is published first, with the subject's expected last sequence
// (so of two writers of a folder only one can append), and applied to the
// local replica once JetStream has it. Every instance follows RGS_LOG and
// applies the others' writes, fetching the blobs they name. The replica is
// a Badger *store.Store, so every read (history, clones, the web browser,
// check) is the Badger code; it lives in a directory of its own that is
// rebuilt from the log at each start, or in memory for one-shot readers.
package natsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Options configures Open.
type Options struct {
	// Replicas of every stream, bucket and object store created; 0 means
	// as many as the cluster has servers, at most 3. Existing ones keep
	// theirs.
	Replicas int
	// Dir holds the local replica; it is emptied at Open. "" keeps the
	// replica in memory (one-shot readers).
	Dir string
	// HoldDeletions is the mass-deletion guard of this instance's writes;
	// it travels with each snapshot, so every replica holds alike.
	HoldDeletions store.HoldPolicy
	// Logger gets the replica's Badger warnings and the follower's errors.
	Logger *slog.Logger
	// Existing refuses a cluster that has no store yet instead of
	// creating one (readers: a mistyped URL must not make an empty store).
	Existing bool
}

// ErrNoStore is returned by Open with Options.Existing when the cluster
// holds no relay-git-sync store.
var ErrNoStore = errors.New("the NATS cluster holds no relay-git-sync store (no stream " + logStream + "): run `relay-git-sync serve --store URL` first, or check the URL")

// Store is the JetStream backend. Reads go to the embedded replica;
// writes are published to JetStream first.
type Store struct {
	*store.Store
	nc    *nats.Conn
	js    jetstream.JetStream
	logs  jetstream.Stream
	blobs jetstream.ObjectStore
	recs  jetstream.Stream
	queue *Queue
	log   *slog.Logger
	dir   string
	reps  int
	hold  store.HoldPolicy
	// maxInline is maxInlineOp (tests lower it).
	maxInline int

	mu      sync.Mutex
	applied map[string]uint64 // subject -> stream sequence of its last applied write
	pos     uint64            // stream sequence the follower has applied up to
	moved   chan struct{}     // closed and replaced when pos moves
	subj    map[string]*sync.Mutex
	// handled are the queue keys of the webhook events the applied
	// snapshots record (PendingEvents forgets those acknowledged since).
	handled map[uint64]struct{}
	// handledIDs are the senders' ids of those events, with the time of
	// the snapshot that records each.
	handledIDs map[string]time.Time
	queueMade  time.Time // when RGS_QUEUE was created (UTC)

	uploaded sync.Map // store.BlobID -> struct{}: known to be in the cluster

	stopFollow context.CancelFunc
	followDone chan struct{}
}

var _ store.Backend = (*Store)(nil)

// Names of what the backend keeps in JetStream.
const (
	logStream      = "RGS_LOG"
	logSubjects    = "rgs.log.>"
	loggedSubjects = "rgs.logged.>" // headers of each stored write (RePublish)
	settingsSubj   = "rgs.log._settings"
	blobBucket     = "rgs_blobs"
	blobStream     = "RGS_BLOBS"
	blobSubjects   = "rgs.blob.*"
	defaultTimeout = 30 * time.Second
)

// Open connects the backend over nc (which it does not close; see Connect),
// creates what is missing in JetStream, and replays the log into a fresh
// local replica before it returns.
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsstore: %w", err)
	}
	if o.Replicas <= 0 {
		o.Replicas = min(3, max(1, len(nc.Servers())))
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{nc: nc, js: js, log: log, dir: o.Dir, reps: o.Replicas, hold: o.HoldDeletions, maxInline: maxInlineOp, applied: map[string]uint64{}, handled: map[uint64]struct{}{}, handledIDs: map[string]time.Time{}, moved: make(chan struct{}), subj: map[string]*sync.Mutex{}}
	if o.Existing {
		if _, err := js.Stream(ctx, logStream); errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, ErrNoStore
		}
	}
	if s.logs, err = ensureStream(ctx, js, jetstream.StreamConfig{
		Name: logStream, Subjects: []string{logSubjects}, Storage: jetstream.FileStorage,
		Replicas: o.Replicas, Discard: jetstream.DiscardNew,
		RePublish: &jetstream.RePublish{Source: logSubjects, Destination: loggedSubjects, HeadersOnly: true},
	}); err != nil {
		return nil, err
	}
	if err := clusterSafe(nc.ConnectedServerVersion(), s.logs.CachedInfo().Config.Replicas); err != nil {
		return nil, err
	}
	if s.recs, err = ensureStream(ctx, js, jetstream.StreamConfig{
		Name: blobStream, Subjects: []string{blobSubjects}, Storage: jetstream.FileStorage,
		Replicas: o.Replicas, MaxMsgsPerSubject: 1, AllowDirect: true,
	}); err != nil {
		return nil, err
	}
	if s.blobs, err = ensureObjectStore(ctx, js, jetstream.ObjectStoreConfig{Bucket: blobBucket, Storage: jetstream.FileStorage, Replicas: o.Replicas}); err != nil {
		return nil, err
	}
	if s.queue, err = OpenQueue(ctx, js, o.Replicas); err != nil {
		return nil, err
	}
	s.queueMade = s.queue.stream.CachedInfo().Created.UTC()
	so := store.Options{InMemory: o.Dir == "", SyncWrites: false, Logger: log, HoldDeletions: o.HoldDeletions}
	if o.Dir != "" {
		// The replica is a cache of the log: rebuilt at each start, so
		// it never has to agree with a log that moved on without it.
		if err := os.RemoveAll(o.Dir); err != nil {
			return nil, fmt.Errorf("natsstore: emptying the replica directory: %w", err)
		}
	}
	if s.Store, err = store.Open(o.Dir, so); err != nil {
		return nil, fmt.Errorf("natsstore: opening the local replica: %w", err)
	}
	if err := s.follow(ctx); err != nil {
		s.Store.Close()
		return nil, err
	}
	if err := s.Sync(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// The replay recorded the keys of every event the log names; most
	// are long acknowledged.
	if st, err := s.queue.state(); err == nil {
		s.forget(st.first)
	}
	return s, nil
}

// clusterSafe refuses a replicated store on nats-server before 2.11.
// Older servers could accept two appends to a clustered stream that both
// expect the same last subject sequence (nats-io/nats-server#4320, and
// #5644 for a create expecting none, which KV creates use): two instances
// could then both append a folder's next snapshot or both take a lease.
func clusterSafe(v string, replicas int) error {
	if replicas <= 1 {
		return nil
	}
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil {
		return fmt.Errorf("natsstore: nats-server reports version %q, which is not major.minor.patch", v)
	}
	if major < 2 || major == 2 && minor < 11 {
		return fmt.Errorf("natsstore: nats-server %s cannot hold a replicated store safely (two writers may append to a folder at once, nats-io/nats-server#4320 and #5644): upgrade the cluster to nats-server 2.11 or later, or run a single node", v)
	}
	return nil
}

// ensureStream returns stream cfg.Name, creating it when missing (an
// existing stream keeps its settings, such as its replicas).
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another instance was first
			st, err = js.Stream(ctx, cfg.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsstore: stream %s: %w", cfg.Name, err)
	}
	return st, nil
}

func ensureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || errors.Is(err, jetstream.ErrBucketExists) {
			obs, err = js.ObjectStore(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsstore: object store %s: %w", cfg.Bucket, err)
	}
	return obs, nil
}

// JetStream returns the backend's JetStream context (leases use it).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Replicas is the replica count the backend creates streams with.
func (s *Store) Replicas() int { return s.reps }

// Ping checks that the cluster answers JetStream requests.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("the NATS store does not answer: %w", err)
	}
	return nil
}

// Enqueue, PendingEvents and AckEvents are the shared queue's.
func (s *Store) Enqueue(ev store.QueuedEvent) (store.QueuedEvent, bool, error) {
	return s.queue.Enqueue(ev)
}

// PendingEvents returns every event not yet acknowledged by any instance,
// but those a snapshot in the log records (its writer died before
// acknowledging them): these are acknowledged here instead.
//
// The queue's first sequence, from its leader, comes first: what is
// below it is acknowledged for sure, so a read served by a replica a
// moment behind returns nothing acknowledged, and the recorded keys below
// it are forgotten.
func (s *Store) PendingEvents() ([]store.QueuedEvent, error) {
	st, err := s.queue.state()
	if err != nil {
		return nil, err
	}
	first := st.first
	evs, err := s.queue.pending(st.msgs)
	if err != nil {
		return nil, err
	}
	s.forget(first)
	var done []uint64
	s.mu.Lock()
	evs = slices.DeleteFunc(evs, func(ev store.QueuedEvent) bool {
		recorded := s.recordedLocked(ev.Key, ev.ID)
		if recorded {
			done = append(done, ev.Key)
		}
		return recorded || ev.Key < first
	})
	s.mu.Unlock()
	if len(done) > 0 {
		if err := s.queue.AckEvents(done); err != nil {
			s.log.Warn("acknowledging webhook events a snapshot in the log records", "err", err)
		}
	}
	return evs, nil
}

// forget forgets the recorded events below queue key first (they are
// acknowledged), and the ids of events recorded longer ago than a sender
// or the queue's de-duplication could repeat them.
func (s *Store) forget(first uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.handled {
		if k < first {
			delete(s.handled, k)
		}
	}
	old := time.Now().Add(-2 * queueDedupe)
	for id, t := range s.handledIDs {
		if t.Before(old) {
			delete(s.handledIDs, id)
		}
	}
}

// Recorded reports whether a snapshot in the log records the webhook
// event with queue key k, or one with the sender's id (not empty) id: the
// queue may hold an event twice, under two keys, when its leader changed
// while the event was being queued.
func (s *Store) Recorded(k uint64, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordedLocked(k, id)
}

func (s *Store) recordedLocked(k uint64, id string) bool {
	if _, ok := s.handled[k]; ok {
		return true
	}
	_, ok := s.handledIDs[id]
	return ok && id != ""
}

// AckEvents removes events from the shared queue.
func (s *Store) AckEvents(keys []uint64) error { return s.queue.AckEvents(keys) }

// WatchEvents calls fn for every event enqueued from now on, by any
// instance, until ctx ends.
func (s *Store) WatchEvents(ctx context.Context, fn func(store.QueuedEvent)) error {
	return s.queue.Watch(ctx, fn)
}

// Backup writes the replica, caught up first, as a Badger backup: what
// restore-backup loads into a data dir.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	if err := s.Sync(ctx); err != nil {
		return err
	}
	return s.Store.Backup(ctx, w)
}

// Close stops following the log and closes the replica (and removes its
// directory: it is rebuilt at the next start anyway).
func (s *Store) Close() error {
	if s.stopFollow != nil {
		s.stopFollow()
		<-s.followDone
	}
	err := s.Store.Close()
	if s.dir != "" {
		if rerr := os.RemoveAll(s.dir); err == nil {
			err = rerr
		}
	}
	return err
}
