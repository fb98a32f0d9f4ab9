package ingest

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/heaptest"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// newDiskEnv is newEnv with the store on disk (an in-memory store keeps
// every blob on the heap, which would hide what streaming saves).
func newDiskEnv(t *testing.T) *env {
	t.Helper()
	srv := relaytest.NewServer(relaytest.Options{APIKey: "server-token"})
	t.Cleanup(srv.Close)
	client, err := relay.NewClient(relay.ClientOptions{
		BaseURL: srv.URL(), APIKey: "server-token",
		Timeout: 10 * time.Second, MaxRetries: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := srv.NewFolder(srv.NewRelay())
	return &env{
		t: t, srv: srv, st: st, folder: f,
		id:     store.FolderID{Relay: f.RelayID(), Folder: f.ID()},
		syncer: New(Config{Store: st, Relay: client, Concurrency: 4}),
	}
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// A large attachment goes from the Relay Server into the store without
// being held whole: it arrives byte-identical, and the sync grows the heap
// by far less than the file (the bytes.Buffer it replaced held up to twice
// the file, and the store's record one more copy).
func TestLargeAttachmentStreamsIntoStore(t *testing.T) {
	e := newDiskEnv(t)
	// A first, smaller attachment warms up what the store allocates once
	// (its zstd encoder, memtables), which is not the file's cost.
	if _, err := e.folder.AddFile("/warm.bin", "file", "application/octet-stream", randomBytes(6 << 20)[1:]); err != nil {
		t.Fatal(err)
	}
	e.sync(Request{})
	const n = 40 << 20
	data := randomBytes(n)
	if _, err := e.folder.AddFile("/big.bin", "file", "application/octet-stream", data); err != nil {
		t.Fatal(err)
	}
	var res *Result
	grew := heaptest.PeakGrowth(func() { res = e.sync(Request{}) })
	t.Logf("syncing a %d MiB attachment grew the heap by %.1f MiB", n>>20, float64(grew)/(1<<20))
	if grew > n/2 { // bounded by buffers (the store's parts, Badger's write batch), not by n
		t.Errorf("syncing a %d MiB attachment grew the heap by %.1f MiB, want under %d", n>>20, float64(grew)/(1<<20), n/2>>20)
	}
	if res.Snapshot == nil || len(res.Snapshot.Files) != 2 || res.Snapshot.Files[0].Path != "big.bin" {
		t.Fatalf("snapshot %+v", res.Snapshot)
	}
	f := res.Snapshot.Files[0]
	if f.Size != n || f.Blob != store.BlobIDOf(data) {
		t.Fatalf("big.bin: size %d blob %s, want %d %s", f.Size, f.Blob, n, store.BlobIDOf(data))
	}
	rc, _, err := e.st.OpenBlob(f.Blob)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored content: %d bytes, %v", len(got), err)
	}
}

// A download that breaks off resumes into the same stream; one whose
// content does not match its hash stores nothing.
func TestLargeAttachmentDownloadFaults(t *testing.T) {
	e := newDiskEnv(t)
	data := randomBytes(9 << 20)
	if _, err := e.folder.AddFile("/big.bin", "file", "application/octet-stream", data); err != nil {
		t.Fatal(err)
	}
	e.srv.InjectFault(relaytest.RouteDownload, "", relaytest.Fault{WrongBytes: true})
	res, err := e.syncer.SyncFolder(context.Background(), Request{Folder: e.id})
	if err == nil && (res.Snapshot != nil && len(res.Snapshot.Files) > 0) {
		t.Fatalf("a download with wrong bytes was snapshotted: %+v", res.Snapshot)
	}
	if has, err := e.st.HasBlob(store.BlobIDOf(data)); err != nil || has {
		t.Fatalf("blob stored after wrong bytes (%v)", err)
	}
	// Flipped content is not stored under any id either: nothing but the
	// folder's records was written.
	e.srv.ClearFaults()
	e.srv.InjectFault(relaytest.RouteDownload, "", relaytest.Fault{Truncate: true, Times: 1})
	res = e.sync(Request{})
	if res.Snapshot == nil || len(res.Snapshot.Files) != 1 || res.Snapshot.Files[0].Blob != store.BlobIDOf(data) {
		t.Fatalf("after a truncated download: snapshot %+v", res.Snapshot)
	}
	if got, err := e.st.Blob(res.Snapshot.Files[0].Blob); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored content: %d bytes, %v", len(got), err)
	}
}
