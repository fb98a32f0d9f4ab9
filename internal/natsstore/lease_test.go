package natsstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// leaseTTL is short so that expiry tests finish soon; nothing asserts how
// long anything took.
const leaseTTL = 2 * time.Second

var (
	folderA = store.FolderID{Relay: "11111111-1111-1111-1111-111111111111", Folder: "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"}
	folderB = store.FolderID{Relay: "11111111-1111-1111-1111-111111111111", Folder: "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"}
	folderC = store.FolderID{Relay: "00000000-0000-0000-0000-000000000000", Folder: "cccccccc-cccc-cccc-cccc-cccccccccccc"}
)

// openLeases opens instance's leases on a connection of its own.
func openLeases(t *testing.T, url, instance string, ttl time.Duration) *Leases {
	t.Helper()
	_, js := dialJS(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := OpenLeases(ctx, js, instance, ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func hold(t *testing.T, l *Leases, f store.FolderID, want bool) {
	t.Helper()
	got, err := l.Hold(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%s Hold(%s) = %v, want %v", l.instance, f, got, want)
	}
}

func wantHolder(t *testing.T, l *Leases, f store.FolderID, want string) {
	t.Helper()
	got, err := l.Holder(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Holder(%s) = %q, want %q", f, got, want)
	}
}

// eventually polls cond; the bound only keeps a broken lease from hanging
// the test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLeaseOneHolderAndRelease(t *testing.T) {
	url := natstest.Start(t).URL()
	a, b := openLeases(t, url, "a", time.Minute), openLeases(t, url, "b", time.Minute)
	wantHolder(t, a, folderA, "")
	hold(t, a, folderA, true)
	hold(t, a, folderA, true)
	hold(t, b, folderA, false)
	wantHolder(t, b, folderA, "a")
	hold(t, a, folderB, true)
	hold(t, a, folderC, true)
	hold(t, b, folderB, false)
	if got, want := a.Held(), []store.FolderID{folderC, folderA, folderB}; !slices.Equal(got, want) {
		t.Fatalf("a holds %v, want %v (sorted)", got, want)
	}
	if got := b.Held(); len(got) != 0 {
		t.Fatalf("b holds %v", got)
	}
	// A restarted "a" does not know the revision: it waits for expiry.
	hold(t, openLeases(t, url, "a", time.Minute), folderA, false)

	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := a.Held(); len(got) != 0 {
		t.Fatalf("a holds %v after Release", got)
	}
	wantHolder(t, b, folderA, "")
	hold(t, b, folderA, true) // at once: a deleted its keys
	hold(t, a, folderA, false)
	wantHolder(t, a, folderA, "b")
}

// An instance that stops renewing (it died) loses its lease after the
// TTL; while it renews, its key is rewritten.
func TestLeaseExpiresWithoutRenewal(t *testing.T) {
	url := natstest.Start(t).URL()
	a, b := openLeases(t, url, "a", leaseTTL), openLeases(t, url, "b", leaseTTL)
	hold(t, a, folderA, true)
	first, _ := a.revision(folderA)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		a.Run(ctx)
		close(done)
	}()
	eventually(t, "a renewal", func() bool {
		rev, ok := a.revision(folderA)
		return ok && rev != first
	})
	hold(t, b, folderA, false)
	cancel()
	<-done
	eventually(t, "b to take the lease a stopped renewing", func() bool {
		ok, err := b.Hold(context.Background(), folderA)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	wantHolder(t, a, folderA, "b")
	// a finds out at its next Hold.
	var lost []store.FolderID
	a.OnLost = func(f store.FolderID) { lost = append(lost, f) }
	hold(t, a, folderA, false)
	if !slices.Equal(lost, []store.FolderID{folderA}) || len(a.Held()) != 0 {
		t.Fatalf("a reported lost %v and holds %v, want %v lost and nothing held", lost, a.Held(), folderA)
	}
}

// A holder whose key was taken over (deleted and created by another) sees
// its next renewal fail: it drops the lease and reports it, and its
// Release leaves the new holder's key alone.
func TestLeaseTakenOverIsLost(t *testing.T) {
	url := natstest.Start(t).URL()
	a, b := openLeases(t, url, "a", leaseTTL), openLeases(t, url, "b", leaseTTL)
	lostc := make(chan store.FolderID, 2)
	a.OnLost = func(f store.FolderID) { lostc <- f }
	hold(t, a, folderA, true)
	hold(t, a, folderB, true)

	if err := b.kv.Delete(context.Background(), leaseKey(folderA)); err != nil {
		t.Fatal(err)
	}
	hold(t, b, folderA, true)
	// No renewal yet: Release must not delete b's key.
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantHolder(t, a, folderA, "b")
	wantHolder(t, a, folderB, "")

	hold(t, a, folderB, true)
	if err := b.kv.Delete(context.Background(), leaseKey(folderB)); err != nil {
		t.Fatal(err)
	}
	hold(t, b, folderB, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	select {
	case f := <-lostc:
		if f != folderB {
			t.Fatalf("lost %s, want %s", f, folderB)
		}
	case <-time.After(time.Minute):
		t.Fatal("a did not report its lease lost within a minute")
	}
	if got := a.Held(); len(got) != 0 {
		t.Fatalf("a holds %v after losing its lease", got)
	}
	wantHolder(t, a, folderB, "b")
}

// On a 3-node cluster with the bucket replicated 3 times, leases keep
// working after the node leading the bucket's stream is killed: a free
// folder can be taken, a held one is refused, and compare-and-swap
// renewals go on once a new leader is elected.
func TestLeaseClusterNodeKilled(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	open := func(instance string) *Leases {
		_, js := dialJS(t, c.URL())
		l, err := OpenLeases(ctx, js, instance, 15*time.Second, 3)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := open("a"), open("b")
	hold(t, a, folderA, true)
	info, err := a.kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.(*jetstream.KeyValueBucketStatus).StreamInfo().Cluster.Leader
	for _, nd := range c.Nodes {
		if nd.Name == leader {
			nd.Kill()
		}
	}
	// Until a new leader is elected, requests fail; then they work.
	eventually(t, "b to take a free folder after the kill", func() bool {
		ok, err := b.Hold(ctx, folderB)
		return err == nil && ok
	})
	hold(t, b, folderA, false)
	wantHolder(t, b, folderA, "a")
	if lost := a.renew(ctx); len(lost) != 0 {
		t.Fatalf("a lost %v renewing after the failover", lost)
	}
	hold(t, a, folderA, true)
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	hold(t, a, folderB, true)
}
