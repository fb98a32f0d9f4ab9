package daemon

import (
	"context"
	"log/slog"
	"sync"

	"github.com/relay-git-sync/relay-git-sync/internal/mirror"
	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
)

// cluster is what a serve instance on a NATS store adds to the pipeline:
// the lease of each folder it syncs and pushes. Any instance accepts any
// webhook (the queue is shared); only a folder's lease holder acts on it.
type cluster struct {
	st       *natsstore.Store
	leases   *natsstore.Leases
	instance string
	mirrors  *mirror.Manager
	metrics  *server.Metrics
	log      *slog.Logger

	mu   sync.Mutex
	held map[store.FolderID]bool // leases this instance has caught up on
}

func newCluster(ctx context.Context, c Config, ns *natsstore.Store, metrics *server.Metrics) (*cluster, error) {
	cl := &cluster{st: ns, instance: c.instanceName(), metrics: metrics, log: c.Logger, held: map[store.FolderID]bool{}}
	l, err := natsstore.OpenLeases(ctx, ns.JetStream(), cl.instance, c.LeaseTTL, ns.Replicas())
	if err != nil {
		return nil, err
	}
	l.OnLost = cl.lost
	cl.leases = l
	return cl, nil
}

// owns reports whether this instance holds folder f's lease, taking it
// when it is free. A lease just taken is caught up on first: the replica
// applies every write of f the log has, and the folder's pushes resume.
func (cl *cluster) owns(ctx context.Context, f store.FolderID) bool {
	ok, err := cl.leases.Hold(ctx, f)
	if err != nil {
		cl.log.Warn("taking a folder lease", "folder", f.String(), "err", err)
		return false
	}
	cl.mu.Lock()
	fresh := ok && !cl.held[f]
	if !ok {
		delete(cl.held, f)
	}
	cl.mu.Unlock()
	if !fresh {
		return ok
	}
	if err := cl.st.CatchUp(ctx, f); err != nil {
		cl.log.Warn("catching up with a folder whose lease was taken", "folder", f.String(), "err", err)
		return false
	}
	cl.mu.Lock()
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
	if err := cl.leases.Release(ctx); err != nil {
		cl.log.Warn("releasing folder leases", "err", err)
		return
	}
	cl.metrics.LeaseChanges.WithLabelValues("released").Add(float64(cl.status().Leases))
	cl.metrics.LeasesHeld.Set(0)
}
