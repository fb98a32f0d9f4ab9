package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Test ids (§3.4 test table).
const (
	testRelay  = "12345678-1234-1234-1234-123456789abc"
	testDoc    = "87654321-4321-4321-4321-cba987654321"
	testMiddle = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testCID    = testRelay + "-" + testDoc
	testSecret = "s3cret-shared-Secret_value"
	testWhsec  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	testToken  = "api-token-123"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 3, 3, 22, 0, 0, 0, time.UTC)

// fakeSink records events and dedupes by non-empty ID like the real queue.
type fakeSink struct {
	mu     sync.Mutex
	events []Event
	seen   map[string]bool
	err    error
}

func (f *fakeSink) Enqueue(ctx context.Context, ev Event) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false, f.err
	}
	if ev.ID != "" {
		if f.seen == nil {
			f.seen = map[string]bool{}
		}
		if f.seen[ev.ID] {
			return true, nil
		}
		f.seen[ev.ID] = true
	}
	f.events = append(f.events, ev)
	return false, nil
}

func (f *fakeSink) all() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.events...)
}

func (f *fakeSink) last(t *testing.T) Event {
	t.Helper()
	evs := f.all()
	if len(evs) == 0 {
		t.Fatal("no event enqueued")
	}
	return evs[len(evs)-1]
}

// testEnv is a handler under test with its fakes.
type testEnv struct {
	h    http.Handler
	s    *server
	sink *fakeSink
	rd   *testSource
	reg  *prometheus.Registry
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv builds a handler with a shared secret, an API token, fakes, a
// fixed clock and debug logging into a buffer; mutate adjusts the config.
func newEnv(t testing.TB, mutate func(*Config)) *testEnv {
	t.Helper()
	env := &testEnv{sink: &fakeSink{}, rd: newTestSource(t), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	cfg := Config{
		WebhookSecret: testSecret,
		APIToken:      testToken,
		Events:        env.sink,
		Source:        env.rd,
		Logger:        slog.New(slog.NewJSONHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry:      env.reg,
		Now:           func() time.Time { return testNow },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	env.s = s
	env.h = s.engine()
	return env
}

// do sends one request through the handler.
func (env *testEnv) do(method, path string, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	env.h.ServeHTTP(w, req)
	return w
}

func bearer(secret string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + secret, "Content-Type": "application/json"}
}

// webhookBody builds a shape A body for doc id cid.
func webhookBody(cid, ts string) []byte {
	b, _ := json.Marshal(map[string]any{
		"eventType": "document.updated",
		"eventId":   "evt_abcdefghijklmnopqrstu",
		"payload":   map[string]any{"doc_id": cid, "user": nil, "metadata": map[string]any{}, "timestamp": ts},
	})
	return b
}

// expectJSON checks status and that the body is exactly the given JSON.
func expectJSON(t *testing.T, w *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if got := strings.TrimSpace(w.Body.String()); got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

// counter returns the value of a counter (with optional label pairs) in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
		}
	}
	return 0
}

// ---- the read API's source ----

// testSource is a real store (fixtureStore) with hooks: it records the
// calls, and fails (err), panics or cuts a history short on demand.
type testSource struct {
	source.Source
	err   error
	panic bool
	// failHistoryAfter makes History fail after sending this snapshot.
	failHistoryAfter uint64

	mu    sync.Mutex
	calls []string
}

var errFakeStore = errors.New("fake store failure")

var fixture struct {
	once sync.Once
	st   *store.Store
	err  error
}

// fixtureStore is an in-memory store, shared by the tests (they only
// read it): folder testRelay/testDoc with two snapshots, testRelay/testMiddle
// followed without snapshots, and a history config.
func fixtureStore(t testing.TB) *store.Store {
	t.Helper()
	fixture.once.Do(func() { fixture.st, fixture.err = newFixtureStore() })
	if fixture.err != nil {
		t.Fatalf("building the test store: %v", fixture.err)
	}
	return fixture.st
}

func newFixtureStore() (*store.Store, error) {
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		return nil, err
	}
	empty, err := st.PutBlob(nil, store.BlobID{})
	if err != nil {
		return nil, err
	}
	hello, err := st.PutBlob([]byte("hello\n"), store.BlobID{})
	if err != nil {
		return nil, err
	}
	f := store.FolderID{Relay: testRelay, Folder: testDoc}
	t1 := time.Date(2026, 3, 3, 21, 58, 48, 123456789, time.UTC)
	for _, s := range []*store.Snapshot{
		{Folder: f, Time: t1, Users: []string{"alice"},
			Changes: []store.Change{{Kind: store.ChangeAdded, Path: "notes/a.md", DocID: testDoc}},
			Files:   []store.File{{Path: "notes/a.md", Blob: empty, Kind: "markdown", DocID: testDoc}}},
		{Folder: f, Time: t1.Add(time.Minute),
			Changes: []store.Change{{Kind: store.ChangeRenamed, Path: "notes/b.md", OldPath: "notes/a.md", DocID: testDoc}},
			Files:   []store.File{{Path: "notes/b.md", Blob: hello, Kind: "markdown", DocID: testDoc, Size: 6}}},
	} {
		if _, err := st.AddSnapshot(s, nil, nil); err != nil {
			return nil, err
		}
	}
	if err := st.AddFolder(store.FolderID{Relay: testRelay, Folder: testMiddle}); err != nil {
		return nil, err
	}
	return st, st.SetHistoryConfig([]byte(`{"author":{"name":"Notes Bot","email":"bot@example.com"}}`))
}

func newTestSource(t testing.TB) *testSource {
	return &testSource{Source: source.FromStore(fixtureStore(t))}
}

func (f *testSource) record(s string) error {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
	if f.panic {
		panic("fake source panic")
	}
	return f.err
}

func (f *testSource) Folders(ctx context.Context) ([]source.Folder, error) {
	if err := f.record("Folders"); err != nil {
		return nil, err
	}
	return f.Source.Folders(ctx)
}

func (f *testSource) Snapshots(ctx context.Context, id store.FolderID, after uint64) ([]store.SnapshotInfo, error) {
	if err := f.record("Snapshots " + id.String() + " " + itoa(after)); err != nil {
		return nil, err
	}
	return f.Source.Snapshots(ctx, id, after)
}

func (f *testSource) Snapshot(ctx context.Context, id store.FolderID, seq uint64) (*store.Snapshot, error) {
	if err := f.record("Snapshot " + id.String() + " " + itoa(seq)); err != nil {
		return nil, err
	}
	return f.Source.Snapshot(ctx, id, seq)
}

func (f *testSource) Blob(ctx context.Context, id store.BlobID) ([]byte, error) {
	if err := f.record("Blob " + id.String()); err != nil {
		return nil, err
	}
	return f.Source.Blob(ctx, id)
}

func (f *testSource) History(ctx context.Context, id store.FolderID, after uint64, fn func(*store.Snapshot) error) error {
	if err := f.record("History " + id.String() + " " + itoa(after)); err != nil {
		return err
	}
	return f.Source.History(ctx, id, after, func(s *store.Snapshot) error {
		if err := fn(s); err != nil {
			return err
		}
		if f.failHistoryAfter > 0 && s.Seq >= f.failHistoryAfter {
			return errFakeStore
		}
		return nil
	})
}

func (f *testSource) HistoryConfig(ctx context.Context) (history.Config, error) {
	if err := f.record("HistoryConfig"); err != nil {
		return history.Config{}, err
	}
	return f.Source.HistoryConfig(ctx)
}

func itoa(u uint64) string {
	b, _ := json.Marshal(u)
	return string(b)
}

// ginEngine returns the engine behind a handler from New.
func ginEngine(t *testing.T, h http.Handler) *gin.Engine {
	t.Helper()
	e, ok := h.(*gin.Engine)
	if !ok {
		t.Fatalf("handler is %T, not *gin.Engine", h)
	}
	return e
}
