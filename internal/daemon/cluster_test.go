package daemon

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
)

// openTestStore opens a NATS store on a fresh single-node server.
func openTestStore(t *testing.T) *natsstore.Store {
	t.Helper()
	nc, err := nats.Connect(natstest.Start(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ns, err := natsstore.Open(context.Background(), nc, natsstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// newTestCluster is instance "a"'s cluster part on ns.
func newTestCluster(t *testing.T, ns *natsstore.Store, ttl time.Duration) *cluster {
	t.Helper()
	metrics, err := server.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := newCluster(context.Background(), Config{Instance: "a", LeaseTTL: ttl, Logger: slog.New(slog.DiscardHandler)}, ns, metrics)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// A lease whose folder the replica cannot catch up on (a write it cannot
// apply yet) is given back, not kept: kept and renewed while another
// folder fills this instance's share, nobody would sync the folder.
func TestOwnsGivesBackALeaseItCannotCatchUpOn(t *testing.T) {
	ctx := context.Background()
	ns := openTestStore(t)
	f := store.FolderID{Relay: "11111111-1111-4111-8111-111111111111", Folder: "22222222-2222-4222-8222-222222222222"}
	if err := ns.AddFolder(f); err != nil {
		t.Fatal(err)
	}
	// A write whose body is in an object that does not exist: the
	// replica retries it, and does not get past it.
	msg := nats.NewMsg("rgs.log." + f.Relay + "." + f.Folder)
	msg.Header.Set("Rgs-Op-Object", "op.missing")
	if _, err := ns.JetStream().PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	cl := newTestCluster(t, ns, time.Second)
	if cl.owns(ctx, f) {
		t.Fatal("owns a folder its replica could not catch up on")
	}
	if held := cl.leases.Held(); len(held) != 0 {
		t.Fatalf("leases still held after the catch-up failed: %v", held)
	}
	if h, err := cl.leases.Holder(ctx, f); err != nil || h != "" {
		t.Fatalf("the lease's holder in the bucket: %q, %v; want none", h, err)
	}
}

// balance makes the folders synced the leases held: a lease held but not
// synced is given back, a folder whose lease is gone is no longer synced.
func TestBalanceReconcilesLeases(t *testing.T) {
	ctx := context.Background()
	ns := openTestStore(t)
	cl := newTestCluster(t, ns, 3*time.Second)
	orphan := store.FolderID{Relay: "11111111-1111-4111-8111-111111111111", Folder: "22222222-2222-4222-8222-222222222222"}
	gone := store.FolderID{Relay: "11111111-1111-4111-8111-111111111111", Folder: "33333333-3333-4333-8333-333333333333"}
	if ok, err := cl.leases.Hold(ctx, orphan); !ok || err != nil {
		t.Fatalf("taking a lease: %v, %v", ok, err)
	}
	cl.mu.Lock()
	cl.held[gone] = true
	cl.mu.Unlock()
	cl.balance(ctx)
	if cl.leases.Has(orphan) {
		t.Error("a lease held but not synced was kept")
	}
	if h, err := cl.leases.Holder(ctx, orphan); err != nil || h != "" {
		t.Errorf("its holder in the bucket: %q, %v; want none", h, err)
	}
	if cl.status().Leases != 0 {
		t.Errorf("still syncing %d folders, want none (the lease of one is gone)", cl.status().Leases)
	}
}
