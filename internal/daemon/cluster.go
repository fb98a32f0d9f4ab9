package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/mirror"
	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
)

// cluster is what a serve instance on a NATS store adds to the pipeline:
// the lease of each folder it syncs and pushes. Any instance accepts any
// webhook (the queue is shared); only a folder's lease holder acts on it.
type cluster struct {
	st        *natsstore.Store
	leases    *natsstore.Leases
	instances *natsstore.Instances
	ttl       time.Duration
	instance  string
	mirrors   *mirror.Manager
	metrics   *server.Metrics
	log       *slog.Logger

	mu   sync.Mutex
	held map[store.FolderID]bool // leases this instance has caught up on
	// giving is the folder whose lease balance is giving up: owns says
	// no to it meanwhile, rather than take it again.
	giving store.FolderID
	// taking are the folders an owns call is taking, closed when done.
	taking map[store.FolderID]chan struct{}
	// share is the most folders this instance takes: the folders over
	// the live instances, rounded up (0 until first counted: no limit).
	share int
}

func newCluster(ctx context.Context, c Config, ns *natsstore.Store, metrics *server.Metrics) (*cluster, error) {
	cl := &cluster{st: ns, instance: c.instanceName(), ttl: c.LeaseTTL, metrics: metrics, log: c.Logger, held: map[store.FolderID]bool{}, taking: map[store.FolderID]chan struct{}{}}
	l, err := natsstore.OpenLeases(ctx, ns.JetStream(), cl.instance, c.LeaseTTL, ns.Replicas())
	if err != nil {
		return nil, err
	}
	if cl.instances, err = natsstore.OpenInstances(ctx, ns.JetStream(), cl.instance, c.LeaseTTL, ns.Replicas()); err != nil {
		return nil, err
	}
	l.OnLost = cl.lost
	cl.leases = l
	return cl, nil
}

// owns reports whether this instance holds folder f's lease, taking it
// when it is free. A lease just taken is caught up on first: the replica
// applies every write of f the log has, and the folder's pushes resume.
// One call at a time takes a folder; others wait for its outcome.
func (cl *cluster) owns(ctx context.Context, f store.FolderID) bool {
	cl.mu.Lock()
	for ch := cl.taking[f]; ch != nil; ch = cl.taking[f] {
		cl.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
		cl.mu.Lock()
	}
	held := cl.held[f]
	full := !held && cl.share > 0 && len(cl.held) >= cl.share
	if full || f == cl.giving {
		cl.mu.Unlock()
		return false // an instance with room takes it: every one sees the same events
	}
	if held {
		cl.mu.Unlock()
		return cl.renew(ctx, f)
	}
	ch := make(chan struct{})
	cl.taking[f] = ch
	cl.mu.Unlock()
	defer func() {
		cl.mu.Lock()
		delete(cl.taking, f)
		cl.mu.Unlock()
		close(ch)
	}()
	return cl.take(ctx, f)
}

// renew renews a lease this instance holds, which proves it still does.
func (cl *cluster) renew(ctx context.Context, f store.FolderID) bool {
	ok, err := cl.leases.Hold(ctx, f)
	if err != nil {
		cl.log.Warn("renewing a folder lease", "folder", f.String(), "err", err)
		return false
	}
	if !ok {
		cl.mu.Lock()
		delete(cl.held, f)
		cl.mu.Unlock()
	}
	return ok
}

// take takes folder f's lease if it is free and catches up on the folder.
func (cl *cluster) take(ctx context.Context, f store.FolderID) bool {
	ok, err := cl.leases.Hold(ctx, f)
	if err != nil {
		cl.log.Warn("taking a folder lease", "folder", f.String(), "err", err)
		return false
	}
	if !ok {
		return false
	}
	// Bounded: the scheduler's loop waits on owns, and a cluster that
	// lost a node answers again within a leader election.
	cctx, cancel := context.WithTimeout(ctx, cl.ttl)
	err = cl.st.CatchUp(cctx, f)
	cancel()
	if err != nil {
		// Given back, not kept: a lease this instance renews but does not
		// sync (its share full meanwhile) would hold the folder up for good.
		cl.log.Warn("catching up with a folder whose lease was taken failed; lease given back", "folder", f.String(), "err", err)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cl.ttl/3)
		if err := cl.leases.ReleaseOne(rctx, f); err != nil {
			cl.log.Warn("giving a folder lease back", "folder", f.String(), "err", err)
		}
		cancel()
		return false
	}
	cl.mu.Lock()
	if !cl.leases.Has(f) { // lost while catching up
		cl.mu.Unlock()
		return false
	}
	cl.held[f] = true
	n := len(cl.held)
	cl.mu.Unlock()
	cl.log.Info("folder lease taken", "folder", f.String(), "instance", cl.instance)
	cl.metrics.LeasesHeld.Set(float64(n))
	cl.metrics.LeaseChanges.WithLabelValues("taken").Inc()
	if cl.mirrors != nil {
		cl.mirrors.Notify(f)
	}
	return true
}

// run renews the leases, announces this instance, and gives up a lease
// while it holds more than its share (another instance joined), until
// ctx ends.
func (cl *cluster) run(ctx context.Context) {
	go cl.leases.Run(ctx)
	t := time.NewTicker(cl.ttl / 3)
	defer t.Stop()
	for {
		cl.balance(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// balance counts the live instances and the folders, and releases one
// lease over this instance's share (one per round, so the folders move
// gradually and the others take them as their events come).
func (cl *cluster) balance(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, cl.ttl/3)
	defer cancel()
	cl.reconcile(ctx)
	n, err := cl.instances.Beat(ctx)
	if err != nil {
		cl.log.Warn("counting serve instances", "err", err)
		return
	}
	folders, err := cl.st.Folders()
	if err != nil {
		return
	}
	share := (len(folders) + n - 1) / n
	cl.mu.Lock()
	cl.share = share
	var give store.FolderID
	if len(cl.held) > share {
		for f := range cl.held {
			give = f
			break
		}
		cl.giving = give
	}
	cl.mu.Unlock()
	if give == (store.FolderID{}) {
		return
	}
	// The lease goes first, then the folder: until the key is deleted
	// this instance still holds it, and a sync under way may finish.
	err = cl.leases.ReleaseOne(ctx, give)
	cl.mu.Lock()
	if !cl.leases.Has(give) { // else an owns call took it again meanwhile
		delete(cl.held, give)
	}
	cl.giving = store.FolderID{}
	n = len(cl.held)
	cl.mu.Unlock()
	if err != nil {
		cl.log.Warn("giving up a folder lease", "folder", give.String(), "err", err)
		return
	}
	cl.log.Info("folder lease given up: another instance takes it", "folder", give.String(), "share", share)
	cl.metrics.LeasesHeld.Set(float64(n))
	cl.metrics.LeaseChanges.WithLabelValues("released").Inc()
}

// reconcile makes the folders this instance syncs the leases it holds:
// a lease held but not synced (left by a race of owns with a loss or a
// release) is given back, and a folder whose lease is gone is dropped.
func (cl *cluster) reconcile(ctx context.Context) {
	var orphans []store.FolderID
	cl.mu.Lock()
	for _, f := range cl.leases.Held() {
		if !cl.held[f] && cl.taking[f] == nil && f != cl.giving {
			orphans = append(orphans, f)
		}
	}
	for f := range cl.held {
		if !cl.leases.Has(f) {
			delete(cl.held, f)
		}
	}
	cl.metrics.LeasesHeld.Set(float64(len(cl.held)))
	cl.mu.Unlock()
	for _, f := range orphans {
		cl.log.Warn("giving back a folder lease this instance held but did not sync", "folder", f.String())
		if err := cl.leases.ReleaseOne(ctx, f); err != nil {
			cl.log.Warn("giving a folder lease back", "folder", f.String(), "err", err)
		}
	}
}

// lost is told of a lease whose renewal failed: another instance has the
// folder now (this one stalled past the lease time, or lost the cluster).
func (cl *cluster) lost(f store.FolderID) {
	cl.mu.Lock()
	delete(cl.held, f)
	n := len(cl.held)
	cl.mu.Unlock()
	cl.log.Warn("folder lease lost: another instance syncs it now", "folder", f.String())
	cl.metrics.LeasesHeld.Set(float64(n))
	cl.metrics.LeaseChanges.WithLabelValues("lost").Inc()
}

// status is what /health says of the cluster.
func (cl *cluster) status() server.ClusterStatus {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return server.ClusterStatus{Instance: cl.instance, Leases: len(cl.held)}
}

// release gives the leases up at a graceful stop, so other instances take
// the folders at once rather than after the lease time.
func (cl *cluster) release(ctx context.Context) {
	if err := cl.instances.Leave(ctx); err != nil {
		cl.log.Warn("leaving the instance set", "err", err)
	}
	if err := cl.leases.Release(ctx); err != nil {
		cl.log.Warn("releasing folder leases", "err", err)
		return
	}
	cl.metrics.LeaseChanges.WithLabelValues("released").Add(float64(cl.status().Leases))
	cl.metrics.LeasesHeld.Set(0)
}
