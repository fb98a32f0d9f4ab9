package natsstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// leaseBucket is the KV bucket of per-folder leases: key relay.folder,
// value the holding instance's name. The bucket's TTL (its stream's
// MaxAge, on nats-server 2.9) is the lease time: a renewal rewrites the
// key, so a key that nobody renews disappears one TTL after its last
// write, and the lease of an instance that died is free again.
const leaseBucket = "rgs_leases"

// Leases are one instance's leases on folders. Every write is a
// compare-and-swap on the revision this instance last wrote, so an
// instance never renews or deletes a lease that was taken over.
//
// A key that holds this instance's name but whose revision it does not
// track (left by an earlier life of the same instance name, which
// crashed, or by another process misconfigured with the same name) is
// not taken: Hold reports false until the key expires. Taking it would
// let two processes believe they hold the lease; waiting costs at most
// one TTL after a crash.
type Leases struct {
	// OnLost is called (if not nil) with a folder whose lease this
	// instance held and lost: its renewal failed, or Hold found it taken
	// over or expired. It is called without locks held. Set it before
	// Run.
	OnLost func(store.FolderID)

	kv       jetstream.KeyValue
	instance string
	ttl      time.Duration

	op   sync.Mutex // one KV operation round at a time: renewals and Hold never race on a revision
	mu   sync.Mutex // guards held
	held map[store.FolderID]uint64
}

// OpenLeases creates the lease bucket, or updates it to this TTL and
// replica count, for the instance named instance.
func OpenLeases(ctx context.Context, js jetstream.JetStream, instance string, ttl time.Duration, replicas int) (*Leases, error) {
	if instance == "" {
		return nil, errors.New("natsstore: leases need an instance name")
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("natsstore: lease time %v: want a positive duration", ttl)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: leaseBucket, TTL: ttl, Replicas: max(replicas, 1), Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("natsstore: creating the lease bucket %s: %w", leaseBucket, err)
	}
	return &Leases{kv: kv, instance: instance, ttl: ttl, held: map[store.FolderID]uint64{}}, nil
}

// leaseKey is f as a KV key: '/' would be allowed, but '.' makes relay
// and folder separate subject tokens.
func leaseKey(f store.FolderID) string { return f.Relay + "." + f.Folder }

// Hold reports whether this instance holds f's lease, taking it when it
// is free. False means another instance holds it (or see Leases about a
// key with this instance's name). A lease already held is renewed, which
// proves it is still ours: reads may be served by a lagging replica, a
// compare-and-swap write is decided by the stream leader.
//
// It gives up after TTL/3, as a renewal does: a lease taken by a request
// answered later could be close to expiring already when Hold returns.
func (l *Leases) Hold(ctx context.Context, f store.FolderID) (bool, error) {
	var lost bool
	defer func() {
		if lost {
			l.lost(f)
		}
	}()
	l.op.Lock()
	defer l.op.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	key := leaseKey(f)
	if rev, ok := l.revision(f); ok {
		next, err := l.kv.Update(ctx, key, []byte(l.instance), rev)
		switch {
		case err == nil:
			l.track(f, next)
			return true, nil
		case wrongRevision(err):
			// Taken over, or expired: either way another instance may
			// have written meanwhile.
			l.drop(f)
			lost = true
		default:
			return false, fmt.Errorf("natsstore: renewing the lease on folder %s: %w", f, err)
		}
	}
	// Create also succeeds on a key that was deleted (Release) or has
	// expired.
	rev, err := l.kv.Create(ctx, key, []byte(l.instance))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("natsstore: taking the lease on folder %s: %w", f, err)
	}
	l.track(f, rev)
	return true, nil
}

// Held returns the folders whose leases this instance holds, sorted.
func (l *Leases) Held() []store.FolderID {
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := make([]store.FolderID, 0, len(l.held))
	for f := range l.held {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b store.FolderID) int {
		return cmp.Or(cmp.Compare(a.Relay, b.Relay), cmp.Compare(a.Folder, b.Folder))
	})
	return fs
}

// Has reports whether this instance holds f's lease (as far as it knows:
// taken or renewed, and not lost since).
func (l *Leases) Has(f store.FolderID) bool {
	_, ok := l.revision(f)
	return ok
}

// Holder returns the name of the instance holding f's lease, or "" when
// it is free. On a replicated bucket the answer may come from a replica a
// moment behind.
func (l *Leases) Holder(ctx context.Context, f store.FolderID) (string, error) {
	e, err := l.kv.Get(ctx, leaseKey(f))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("natsstore: reading the lease on folder %s: %w", f, err)
	}
	return string(e.Value()), nil
}

// Run renews every held lease every TTL/3 until ctx ends. A lease whose
// renewal fails for any reason is dropped and reported to OnLost: after a
// failed renewal this instance cannot know how long the key lives on.
func (l *Leases) Run(ctx context.Context) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, f := range l.renew(ctx) {
				l.lost(f)
			}
		}
	}
}

// renew renews every held lease and returns those it lost.
func (l *Leases) renew(ctx context.Context) []store.FolderID {
	l.op.Lock()
	defer l.op.Unlock()
	var lost []store.FolderID
	for _, f := range l.Held() {
		rev, _ := l.revision(f)
		// A renewal still unanswered after TTL/3 is given up: the key was
		// last written at most 2·TTL/3 ago and still lives, so this
		// instance stops believing it holds the lease before it expires.
		rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		next, err := l.kv.Update(rctx, leaseKey(f), []byte(l.instance), rev)
		cancel()
		if ctx.Err() != nil {
			break // stopping, not lost
		}
		l.mu.Lock()
		if err != nil {
			delete(l.held, f)
			lost = append(lost, f)
		} else {
			l.held[f] = next
		}
		l.mu.Unlock()
	}
	return lost
}

// Release deletes this instance's leases, for a graceful stop, so others
// need not wait for them to expire. A lease that was taken over meanwhile
// is left alone. Afterwards none is held: one that could not be deleted
// (the error says which) expires after the TTL.
func (l *Leases) Release(ctx context.Context) error {
	l.op.Lock()
	defer l.op.Unlock()
	var errs []error
	for _, f := range l.Held() {
		rev, _ := l.revision(f)
		err := l.kv.Delete(ctx, leaseKey(f), jetstream.LastRevision(rev))
		if err != nil && !wrongRevision(err) {
			errs = append(errs, fmt.Errorf("natsstore: releasing the lease on folder %s: %w", f, err))
		}
		l.drop(f)
	}
	return errors.Join(errs...)
}

// ReleaseOne gives up folder f's lease (an instance holding more than
// its share), unless it was taken over meanwhile.
func (l *Leases) ReleaseOne(ctx context.Context, f store.FolderID) error {
	l.op.Lock()
	defer l.op.Unlock()
	rev, ok := l.revision(f)
	if !ok {
		return nil
	}
	l.drop(f)
	err := l.kv.Delete(ctx, leaseKey(f), jetstream.LastRevision(rev))
	if err != nil && !wrongRevision(err) {
		return fmt.Errorf("natsstore: releasing the lease on folder %s: %w", f, err)
	}
	return nil
}

// wrongRevision reports whether err is a failed compare-and-swap (servers
// before 2.10 and R1 streams say 10071, others 10164).
func wrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func (l *Leases) revision(f store.FolderID) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rev, ok := l.held[f]
	return rev, ok
}

func (l *Leases) track(f store.FolderID, rev uint64) {
	l.mu.Lock()
	l.held[f] = rev
	l.mu.Unlock()
}

func (l *Leases) drop(f store.FolderID) {
	l.mu.Lock()
	delete(l.held, f)
	l.mu.Unlock()
}

func (l *Leases) lost(f store.FolderID) {
	if l.OnLost != nil {
		l.OnLost(f)
	}
}
