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
	rd   *fakeReader
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
	env := &testEnv{sink: &fakeSink{}, rd: newFakeReader(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	cfg := Config{
		WebhookSecret: testSecret,
		APIToken:      testToken,
		Events:        env.sink,
		Reader:        env.rd,
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

// ---- fake Reader ----

type fakeReader struct {
	folders []FolderSummary
	snaps   map[string][]Snapshot // relay/folder -> ascending
	blobs   map[string][]byte
	err     error
	panic   bool
	// failHistoryAfter makes History fail after sending this snapshot.
	failHistoryAfter uint64

	mu    sync.Mutex
	calls []string
}

var errFakeStore = errors.New("fake store failure")

func newFakeReader() *fakeReader {
	t1 := time.Date(2026, 3, 3, 21, 58, 48, 123456789, time.UTC)
	t2 := t1.Add(time.Minute)
	snaps := []Snapshot{
		{
			SnapshotInfo: SnapshotInfo{Seq: 1, Time: t1, Users: []string{"alice"}, NumFiles: 1,
				Changes: []Change{{Kind: "added", Path: "notes/a.md", DocID: testDoc}}},
			Files: []File{{Path: "notes/a.md", Blob: "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", Kind: "markdown", DocID: testDoc, Size: 0}},
		},
		{
			SnapshotInfo: SnapshotInfo{Seq: 2, Time: t2, NumFiles: 1,
				Changes: []Change{{Kind: "renamed", Path: "notes/b.md", OldPath: "notes/a.md", DocID: testDoc}}},
			Files: []File{{Path: "notes/b.md", Blob: "ce013625030ba8dba906f756967f9e9ca394464a", Kind: "markdown", DocID: testDoc, Size: 6}},
		},
	}
	return &fakeReader{
		folders: []FolderSummary{
			{Relay: testRelay, Folder: testDoc, LatestSeq: 2, LatestTime: t2},
			{Relay: testRelay, Folder: testMiddle},
		},
		snaps: map[string][]Snapshot{testRelay + "/" + testDoc: snaps},
		blobs: map[string][]byte{
			"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391": {},
			"ce013625030ba8dba906f756967f9e9ca394464a": []byte("hello\n"),
		},
	}
}

func (f *fakeReader) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeReader) Folders() ([]FolderSummary, error) {
	f.record("Folders")
	if f.panic {
		panic("fake reader panic")
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.folders, nil
}

func (f *fakeReader) Snapshots(relay, folder string, after uint64) ([]SnapshotInfo, error) {
	f.record("Snapshots " + relay + " " + folder + " " + itoa(after))
	if f.err != nil {
		return nil, f.err
	}
	snaps, ok := f.snaps[relay+"/"+folder]
	if !ok {
		return nil, ErrNotFound
	}
	var out []SnapshotInfo
	for _, s := range snaps {
		if s.Seq > after {
			out = append(out, s.SnapshotInfo)
		}
	}
	return out, nil
}

func (f *fakeReader) Snapshot(relay, folder string, seq uint64) (*Snapshot, error) {
	f.record("Snapshot " + relay + " " + folder + " " + itoa(seq))
	if f.err != nil {
		return nil, f.err
	}
	snaps, ok := f.snaps[relay+"/"+folder]
	if !ok || len(snaps) == 0 {
		return nil, ErrNotFound
	}
	if seq == 0 {
		s := snaps[len(snaps)-1]
		return &s, nil
	}
	for _, s := range snaps {
		if s.Seq == seq {
			return &s, nil
		}
	}
	return nil, errors.Join(errors.New("no such snapshot"), ErrNotFound)
}

func (f *fakeReader) Blob(id string) ([]byte, error) {
	f.record("Blob " + id)
	if f.err != nil {
		return nil, f.err
	}
	b, ok := f.blobs[id]
	if !ok {
		return nil, ErrNotFound
	}
	return b, nil
}

func (f *fakeReader) History(relay, folder string, after uint64, fn func(*HistoryEntry) error) error {
	f.record("History " + relay + " " + folder + " " + itoa(after))
	if f.err != nil {
		return f.err
	}
	snaps, ok := f.snaps[relay+"/"+folder]
	if !ok {
		return ErrNotFound
	}
	var prev map[string]File
	for _, s := range snaps {
		if s.Seq <= after {
			continue
		}
		e := &HistoryEntry{SnapshotInfo: s.SnapshotInfo}
		cur := make(map[string]File, len(s.Files))
		for _, fl := range s.Files {
			cur[fl.Path] = fl
			if old, ok := prev[fl.Path]; prev != nil && (!ok || old != fl) {
				e.Set = append(e.Set, fl)
			}
		}
		if prev == nil {
			e.Files = s.Files
		}
		for p := range prev {
			if _, ok := cur[p]; !ok {
				e.Deleted = append(e.Deleted, p)
			}
		}
		prev = cur
		if err := fn(e); err != nil {
			return err
		}
		if f.failHistoryAfter > 0 && s.Seq >= f.failHistoryAfter {
			return errFakeStore
		}
	}
	return nil
}

func (f *fakeReader) HistoryConfig() ([]byte, error) {
	f.record("HistoryConfig")
	if f.err != nil {
		return nil, f.err
	}
	return []byte(`{"author":{"name":"Notes Bot","email":"bot@example.com"},"committer":{"name":"","email":""}}`), nil
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
