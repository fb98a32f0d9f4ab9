package main

// End-to-end tests of `relay-git-sync serve`, in process: runServe with a
// context the test cancels, a temporary data dir, and the fake Relay Server
// (internal/relaytest) that edits documents and sends real webhooks. The
// tests observe the server only from outside, as its users do: webhook
// answers, the read API (/api/v1, with an API token), /health and /metrics.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// ---- harness ----

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newSharedSecret(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func newWhsec(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// writeConnectors writes the data dir's git_connectors.toml following
// folders, the way a user configures serve.
func writeConnectors(t testing.TB, dataDir string, folders ...*relaytest.Folder) {
	t.Helper()
	var b strings.Builder
	for i, f := range folders {
		fmt.Fprintf(&b, "[[git_connector]]\nshared_folder_id = %q\nrelay_id = %q\nurl = \"git@git.example.invalid:notes-%d.git\"\n\n",
			f.ID(), f.RelayID(), i)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, defaultConnectorsFile), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

type serveConfig struct {
	relay     *relaytest.Server
	apiKey    string // the fake's server token
	dataDir   string
	secret    string // webhook secret ("" = none)
	insecure  bool
	reconcile time.Duration // 0 = only at start
	maxDelay  time.Duration // 0 = 2 s
	// writeToken, when set, runs serve with --allow-writes and this token.
	writeToken string
	// store, when set, is --store (a NATS cluster); instance and leaseTTL
	// go with it.
	store    string
	instance string
	leaseTTL time.Duration
}

// serveProc is a running in-process `serve`.
type serveProc struct {
	t        testing.TB
	url      string // http://127.0.0.1:port
	apiToken string
	secrets  []string // must never appear in the log
	logs     *syncBuffer
	cancel   context.CancelFunc
	done     chan error

	once    sync.Once
	stopErr error
}

const testAPIToken = "api-token-for-tests-0123456789"

// startServe runs runServe on 127.0.0.1, port 0, and waits until it
// listens. Cleanup stops it, and prints its log if the test failed.
func startServe(t testing.TB, c serveConfig) *serveProc {
	t.Helper()
	logs := &syncBuffer{}
	opts := newGlobalOptions(func(string) string { return "" }, io.Discard, logs)
	opts.DataDir = c.dataDir
	opts.GitConfigFile = filepath.Join(c.dataDir, defaultConnectorsFile)
	opts.RelayServerURL = c.relay.URL()
	opts.RelayServerAPIKey = c.apiKey
	opts.Store = c.store
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	maxDelay := c.maxDelay
	if maxDelay == 0 {
		maxDelay = 2 * time.Second
	}
	ready := make(chan string, 1)
	so := &serveOptions{
		host: "127.0.0.1", port: 0,
		commitInterval: 0.2, maxDelay: maxDelay, reconcileInterval: c.reconcile,
		webhookSecret: c.secret, insecureNoAuth: c.insecure,
		apiToken: testAPIToken, shutdownTimeout: 10 * time.Second,
		ready:       ready,
		allowWrites: c.writeToken != "", writeToken: c.writeToken,
		instance: c.instance, leaseTTL: c.leaseTTL,
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &serveProc{t: t, apiToken: testAPIToken, logs: logs, cancel: cancel, done: make(chan error, 1)}
	for _, s := range []string{c.secret, c.apiKey, testAPIToken, c.writeToken} {
		if s != "" {
			p.secrets = append(p.secrets, s)
		}
	}
	go func() { p.done <- runServe(ctx, opts, so) }()
	select {
	case addr := <-ready:
		p.url = "http://" + addr
	case err := <-p.done:
		cancel()
		t.Fatalf("serve did not start: %v\nlog:\n%s", err, logs)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve not listening after 30s\nlog:\n%s", logs)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", logs)
		}
	})
	return p
}

// stop cancels serve's context (as SIGTERM does) and returns what runServe
// returned; it fails the test if serve takes more than 20 s to stop.
func (p *serveProc) stop() error {
	p.once.Do(func() {
		p.cancel()
		select {
		case p.stopErr = <-p.done:
		case <-time.After(20 * time.Second):
			p.stopErr = errors.New("runServe did not return within 20s of cancellation")
		}
		for _, s := range p.secrets {
			if strings.Contains(p.logs.String(), s) {
				p.stopErr = errors.Join(p.stopErr, errors.New("a secret appears in the log"))
			}
		}
	})
	return p.stopErr
}

func (p *serveProc) webhookURL() string { return p.url + "/webhooks" }

// get fetches a path of the server, with the API token for /api/.
func (p *serveProc) get(path string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, p.url+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if strings.HasPrefix(path, "/api/v1/") {
		req.Header.Set("Authorization", "Bearer "+p.apiToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// getJSON fetches path and decodes a 200 answer into v.
func (p *serveProc) getJSON(path string, v any) error {
	code, b, err := p.get(path)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, code, b)
	}
	return json.Unmarshal(b, v)
}

// apiSnapshot is a snapshot as the read API returns it.
type apiSnapshot struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Users    []string  `json:"users"`
	NumFiles int       `json:"num_files"`
	Restored uint64    `json:"restored"`
	Changes  []struct {
		Kind, Path string
	} `json:"changes"`
	Files []struct {
		Path string `json:"path"`
		Blob string `json:"blob"`
	} `json:"files"`
}

func folderPath(f *relaytest.Folder) string {
	return "/api/v1/folders/" + f.RelayID() + "/" + f.ID()
}

// snapshots lists a folder's snapshots, oldest first.
func (p *serveProc) snapshots(f *relaytest.Folder) ([]apiSnapshot, error) {
	var out struct {
		Snapshots []apiSnapshot `json:"snapshots"`
	}
	err := p.getJSON(folderPath(f)+"/snapshots", &out)
	return out.Snapshots, err
}

// tree returns the files of one snapshot (seq 0 = latest) with their content.
func (p *serveProc) tree(f *relaytest.Folder, seq uint64) (map[string]string, *apiSnapshot, error) {
	s := "latest"
	if seq != 0 {
		s = strconv.FormatUint(seq, 10)
	}
	var snap apiSnapshot
	if err := p.getJSON(folderPath(f)+"/snapshots/"+s, &snap); err != nil {
		return nil, nil, err
	}
	out := map[string]string{}
	for _, fl := range snap.Files {
		code, b, err := p.get("/api/v1/blobs/" + fl.Blob)
		if err != nil {
			return nil, nil, err
		}
		if code != http.StatusOK {
			return nil, nil, fmt.Errorf("blob %s of %s: HTTP %d", fl.Blob, fl.Path, code)
		}
		out[fl.Path] = string(b)
	}
	return out, &snap, nil
}

// waitSnapshot polls until the folder has a snapshot with a sequence number
// above after for which ok holds, and returns it; it fails the test after
// timeout.
func (p *serveProc) waitSnapshot(f *relaytest.Folder, after uint64, timeout time.Duration, ok func(apiSnapshot) bool) apiSnapshot {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []apiSnapshot
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = p.snapshots(f)
		for _, s := range last {
			if s.Seq > after && (ok == nil || ok(s)) {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("no matching snapshot after seq %d within %s; snapshots %+v, err %v", after, timeout, last, lastErr)
	return apiSnapshot{}
}

// waitContent polls until the latest snapshot's file path holds want.
func (p *serveProc) waitContent(f *relaytest.Folder, path, want string, timeout time.Duration) (map[string]string, *apiSnapshot) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var got map[string]string
	var err error
	for time.Now().Before(deadline) {
		var snap *apiSnapshot
		got, snap, err = p.tree(f, 0)
		if err == nil && got[path] == want {
			return got, snap
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("%s never became %q within %s: tree %q, err %v", path, want, timeout, got, err)
	return nil, nil
}

// metric returns the value of one series of /metrics, e.g.
// `relay_git_sync_webhooks_total{outcome="accepted"}` (0 when absent).
func (p *serveProc) metric(series string) float64 {
	p.t.Helper()
	code, b, err := p.get("/metrics")
	if err != nil || code != http.StatusOK {
		p.t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				p.t.Fatalf("metric %s: %q", series, line)
			}
			return v
		}
	}
	return 0
}

func outcome(o string) string { return `relay_git_sync_webhooks_total{outcome="` + o + `"}` }

// waitMetric polls until a series reaches at least min.
func (p *serveProc) waitMetric(series string, min float64, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.metric(series) >= min {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("%s = %v, want >= %v within %s", series, p.metric(series), min, timeout)
}

// send posts one webhook and checks its status.
func send(t testing.TB, relaySrv *relaytest.Server, url, secret string, w relaytest.Webhook, want int) []byte {
	t.Helper()
	code, body, err := relaySrv.SendWebhook(context.Background(), url, secret, w)
	if err != nil {
		t.Fatalf("webhook %s: %v", w.DocID, err)
	}
	if code != want {
		t.Fatalf("webhook %s: HTTP %d %s, want %d", w.DocID, code, body, want)
	}
	return body
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// serveFixture is a fake Relay Server with one folder holding a note, and a
// data dir whose connectors file follows the folder.
type serveFixture struct {
	relay   *relaytest.Server
	folder  *relaytest.Folder
	noteID  string // compound id of /notes/a.md
	dataDir string
}

const fakeRelayKey = "relay-server-key-for-tests"

func newServeFixture(t *testing.T) *serveFixture {
	t.Helper()
	srv := relaytest.NewServer(relaytest.Options{APIKey: fakeRelayKey})
	t.Cleanup(srv.Close)
	f := srv.NewFolder(srv.NewRelay())
	doc, err := f.AddMarkdown("/notes/a.md", "# A\nfirst\n")
	must(t, err)
	dataDir := t.TempDir()
	writeConnectors(t, dataDir, f)
	return &serveFixture{relay: srv, folder: f, noteID: relay.CompoundID(f.RelayID(), doc), dataDir: dataDir}
}

func (fx *serveFixture) start(t *testing.T, secret string, mod ...func(*serveConfig)) *serveProc {
	c := serveConfig{relay: fx.relay, apiKey: fakeRelayKey, dataDir: fx.dataDir, secret: secret}
	for _, m := range mod {
		m(&c)
	}
	return startServe(t, c)
}

// ---- tests ----

// TestServeEndToEnd: edits on the Relay Server and their signed webhooks
// become snapshots with the right content, time (the newest webhook's) and
// users, in both authentication modes; a burst is coalesced into one
// snapshot; replays are acknowledged and ignored; /health and /metrics.
func TestServeEndToEnd(t *testing.T) {
	for _, mode := range []string{"shared-secret", "standard-webhooks"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			fx := newServeFixture(t)
			secret := newSharedSecret(t)
			if mode == "standard-webhooks" {
				secret = newWhsec(t)
			}
			p := fx.start(t, secret)
			f := fx.folder

			// The reconcile at start records the folder as it is.
			first := p.waitSnapshot(f, 0, 20*time.Second, nil)
			tree, _, err := p.tree(f, first.Seq)
			must(t, err)
			if tree["notes/a.md"] != "# A\nfirst\n" || len(tree) != 1 {
				t.Fatalf("first snapshot: %q", tree)
			}
			if code, body, _ := p.get("/health"); code != http.StatusOK || !strings.Contains(string(body), "healthy") {
				t.Errorf("/health: %d %s", code, body)
			}

			// One edit, one webhook: a snapshot at the webhook's time, by its user.
			base := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Minute)
			must(t, f.EditMarkdown("/notes/a.md", "# A\nsecond\n"))
			t1 := base.Add(123456789 * time.Nanosecond)
			send(t, fx.relay, p.webhookURL(), secret, relaytest.Webhook{DocID: fx.noteID, Time: t1, User: "alice"}, http.StatusOK)
			s2 := p.waitSnapshot(f, first.Seq, 20*time.Second, nil)
			if !s2.Time.Equal(t1) || !slices.Equal(s2.Users, []string{"alice"}) {
				t.Errorf("snapshot %d: time %v users %v, want %v [alice]", s2.Seq, s2.Time, s2.Users, t1)
			}
			tree, _, err = p.tree(f, s2.Seq)
			must(t, err)
			if tree["notes/a.md"] != "# A\nsecond\n" {
				t.Errorf("snapshot %d: %q", s2.Seq, tree)
			}

			// A burst: edits, a new note (its document's webhook, then the
			// folder's, as relay-server sends them), webhooks out of time
			// order and in every body shape, sent well within the quiet
			// period, become one snapshot at the newest time with every
			// user.
			must(t, f.EditMarkdown("/notes/a.md", "# A\nthird\n"))
			bID, err := f.AddMarkdown("/notes/b.md", "bee\n")
			must(t, err)
			must(t, f.EditMarkdown("/notes/a.md", "# A\nfourth\n"))
			newest := base.Add(30 * time.Second)
			replay := relaytest.Webhook{DocID: fx.noteID, Time: base.Add(10 * time.Second), User: "bob", EventID: relaytest.NewEventID()}
			for _, w := range []relaytest.Webhook{
				replay,
				{DocID: relay.CompoundID(f.RelayID(), bID), Time: newest.Add(-time.Millisecond), User: "carol", Shape: relaytest.ShapeC},
				{DocID: relay.CompoundID(f.RelayID(), f.ID()), Time: newest, User: "carol"},
				{DocID: fx.noteID, Time: base.Add(5 * time.Second), User: "alice", Shape: relaytest.ShapeCUnix, SvixHeaders: true},
				{DocID: fx.noteID, Time: base.Add(7 * time.Second), Shape: relaytest.ShapeB}, // legacy: no user
			} {
				send(t, fx.relay, p.webhookURL(), secret, w, http.StatusOK)
			}
			s3 := p.waitSnapshot(f, s2.Seq, 20*time.Second, nil)
			tree, _, err = p.tree(f, s3.Seq)
			must(t, err)
			want := map[string]string{"notes/a.md": "# A\nfourth\n", "notes/b.md": "bee\n"}
			if !equalMaps(tree, want) {
				t.Errorf("snapshot %d: %q, want %q", s3.Seq, tree, want)
			}
			if !s3.Time.Equal(newest) {
				t.Errorf("snapshot %d time %v, want the newest webhook's %v", s3.Seq, s3.Time, newest)
			}
			if !slices.Equal(s3.Users, []string{"alice", "bob", "carol"}) {
				t.Errorf("snapshot %d users %v", s3.Seq, s3.Users)
			}

			// A replayed delivery (same event id / webhook-id) is
			// acknowledged, counted as a duplicate, and changes nothing.
			accepted := p.metric(outcome("accepted"))
			send(t, fx.relay, p.webhookURL(), secret, replay, http.StatusOK)
			if got := p.metric(outcome("duplicate")); got != 1 {
				t.Errorf("duplicates = %v, want 1", got)
			}
			if got := p.metric(outcome("accepted")); got != accepted {
				t.Errorf("accepted went from %v to %v on a replay", accepted, got)
			}
			if accepted != 6 {
				t.Errorf("accepted = %v, want 6", accepted)
			}
			// Everything processed: queue empty, snapshots counted.
			p.waitMetric("relay_git_sync_snapshots_total", 3, 5*time.Second)
			deadline := time.Now().Add(5 * time.Second)
			for p.metric("relay_git_sync_queue_depth") != 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if d := p.metric("relay_git_sync_queue_depth"); d != 0 {
				t.Errorf("queue depth %v, want 0", d)
			}
			if n := p.metric(`relay_git_sync_reconciles_total{result="ok"}`); n != 1 {
				t.Errorf("reconciles = %v, want 1 (at start)", n)
			}
			if n := p.metric(`relay_git_sync_http_requests_total{code="200",route="/webhooks"}`); n != 7 {
				t.Errorf("http_requests_total for 200 /webhooks = %v, want 7", n)
			}
			time.Sleep(400 * time.Millisecond)
			if snaps, _ := p.snapshots(f); len(snaps) != 3 {
				t.Errorf("%d snapshots, want 3: %+v", len(snaps), snaps)
			}
		})
	}
}

// TestServeRejectsBadWebhooks: every kind of bad delivery gets its status,
// is counted by outcome, and queues nothing.
func TestServeRejectsBadWebhooks(t *testing.T) {
	for _, mode := range []string{"shared-secret", "standard-webhooks"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			fx := newServeFixture(t)
			secret, wrong := newSharedSecret(t), newSharedSecret(t)
			if mode == "standard-webhooks" {
				secret, wrong = newWhsec(t), newWhsec(t)
			}
			p := fx.start(t, secret)
			first := p.waitSnapshot(fx.folder, 0, 20*time.Second, nil)
			must(t, fx.folder.EditMarkdown("/notes/a.md", "must not be snapshotted by a rejected webhook\n"))
			url := p.webhookURL()
			ok := relaytest.Webhook{DocID: fx.noteID, User: "mallory"}

			send(t, fx.relay, url, "", ok, http.StatusUnauthorized)    // no credentials
			send(t, fx.relay, url, wrong, ok, http.StatusUnauthorized) // wrong secret / signature
			unauthorized := 2.0
			if mode == "standard-webhooks" {
				stale := ok
				stale.SignedAt = time.Now().Add(-10 * time.Minute)
				send(t, fx.relay, url, secret, stale, http.StatusUnauthorized)
				future := ok
				future.SignedAt = time.Now().Add(10 * time.Minute)
				send(t, fx.relay, url, secret, future, http.StatusUnauthorized)
				unauthorized += 2
			}
			big := ok
			big.Body = append([]byte(`{"eventType":"document.updated","pad":"`), bytes.Repeat([]byte("x"), 1<<20)...)
			big.Body = append(big.Body, `"}`...)
			send(t, fx.relay, url, secret, big, http.StatusRequestEntityTooLarge)
			for _, body := range []string{
				`{"eventType":"document.updated","payload":{"doc_id":`,
				"\xff\xfe not json",
				``,
			} {
				bad := ok
				bad.Body = []byte(body)
				send(t, fx.relay, url, secret, bad, http.StatusBadRequest)
			}
			for _, id := range []string{
				"not-a-uuid",
				fx.folder.RelayID() + "-../../../etc/passwd",
				fx.folder.RelayID() + "-" + strings.ToUpper(fx.folder.ID())[:30],
				"",
			} {
				bad := ok
				bad.Body = []byte(`{"eventType":"document.updated","eventId":"evt_x","payload":{"doc_id":` + strconv.Quote(id) + `,"timestamp":"2026-03-03T21:58:48+00:00"}}`)
				send(t, fx.relay, url, secret, bad, http.StatusBadRequest)
			}

			if got := p.metric(outcome("unauthorized")); got != unauthorized {
				t.Errorf("unauthorized = %v, want %v", got, unauthorized)
			}
			if got := p.metric(outcome("too_large")); got != 1 {
				t.Errorf("too_large = %v, want 1", got)
			}
			if got := p.metric(outcome("bad_request")); got != 7 {
				t.Errorf("bad_request = %v, want 7", got)
			}
			if got := p.metric(outcome("accepted")) + p.metric(outcome("duplicate")); got != 0 {
				t.Errorf("accepted+duplicate = %v, want 0", got)
			}
			// Nothing was queued, so nothing is synced.
			time.Sleep(600 * time.Millisecond)
			if snaps, err := p.snapshots(fx.folder); err != nil || len(snaps) != 1 || snaps[0].Seq != first.Seq {
				t.Errorf("snapshots after rejected webhooks: %+v %v", snaps, err)
			}
			// The server is still fine: a good webhook goes through.
			send(t, fx.relay, url, secret, ok, http.StatusOK)
			s := p.waitSnapshot(fx.folder, first.Seq, 20*time.Second, nil)
			if !slices.Equal(s.Users, []string{"mallory"}) {
				t.Errorf("users %v", s.Users)
			}
			// The read API wants its token.
			for _, auth := range []string{"", "Bearer wrong", "Bearer " + secret} {
				req, _ := http.NewRequest(http.MethodGet, p.url+"/api/v1/folders", nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := http.DefaultClient.Do(req)
				must(t, err)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("read API with %q: HTTP %d, want 401", auth, resp.StatusCode)
				}
			}
		})
	}
}

// TestServeRelayOutage: the Relay Server fails (503) for a while. Webhooks
// are still acknowledged (they are durable), /health stays up, fetch errors
// are counted, and once the Relay Server recovers the change arrives by the
// scheduler's retry, with the webhook's time and user.
func TestServeRelayOutage(t *testing.T) {
	t.Parallel()
	fx := newServeFixture(t)
	secret := newWhsec(t)
	p := fx.start(t, secret)
	first := p.waitSnapshot(fx.folder, 0, 20*time.Second, nil)

	fx.relay.InjectFault(relaytest.RouteAsUpdate, "", relaytest.Fault{Status: http.StatusServiceUnavailable})
	must(t, fx.folder.EditMarkdown("/notes/a.md", "written during the outage\n"))
	when := time.Now().UTC().Add(-3 * time.Second).Truncate(time.Millisecond)
	send(t, fx.relay, p.webhookURL(), secret, relaytest.Webhook{DocID: fx.noteID, Time: when, User: "dora"}, http.StatusOK)
	p.waitMetric("relay_git_sync_relay_fetch_errors_total", 1, 30*time.Second)
	if code, _, _ := p.get("/health"); code != http.StatusOK {
		t.Errorf("/health during the outage: %d", code)
	}
	if snaps, err := p.snapshots(fx.folder); err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots during the outage: %+v %v", snaps, err)
	}
	if d := p.metric("relay_git_sync_queue_depth"); d != 1 {
		t.Errorf("queue depth during the outage = %v, want 1", d)
	}
	fx.relay.ClearFaults()

	_, snap := p.waitContent(fx.folder, "notes/a.md", "written during the outage\n", 30*time.Second)
	if snap.Seq != first.Seq+1 || !snap.Time.Equal(when) || !slices.Equal(snap.Users, []string{"dora"}) {
		t.Errorf("snapshot after the outage: seq %d time %v users %v, want seq %d time %v [dora]",
			snap.Seq, snap.Time, snap.Users, first.Seq+1, when)
	}
}

// TestServeReconcileCatchesDroppedWebhooks: the Relay Server never retries a
// webhook; an edit whose webhook was lost still reaches a snapshot by the
// periodic reconcile sweep (its time is the sweep's).
func TestServeReconcileCatchesDroppedWebhooks(t *testing.T) {
	t.Parallel()
	fx := newServeFixture(t)
	p := fx.start(t, newSharedSecret(t), func(c *serveConfig) { c.reconcile = 300 * time.Millisecond })
	p.waitSnapshot(fx.folder, 0, 20*time.Second, nil)
	p.waitMetric(`relay_git_sync_reconciles_total{result="ok"}`, 2, 10*time.Second)

	before := time.Now()
	must(t, fx.folder.EditMarkdown("/notes/a.md", "no webhook for this one\n"))
	_, err := fx.folder.AddMarkdown("/notes/new.md", "nor for this\n")
	must(t, err)
	tree, snap := p.waitContent(fx.folder, "notes/new.md", "nor for this\n", 20*time.Second)
	if tree["notes/a.md"] != "no webhook for this one\n" {
		t.Errorf("tree %q", tree)
	}
	if snap.Time.Before(before) || snap.Time.After(time.Now()) || len(snap.Users) != 0 {
		t.Errorf("reconciled snapshot: time %v (edit at %v), users %v", snap.Time, before, snap.Users)
	}
}

// TestServeFirstStartRace: on a new data dir the documents of a folder are
// not known until its first sync. A webhook for a document that arrives
// while that sync is running (after it fetched the document) must still
// bring the change in, not be acknowledged and forgotten.
func TestServeFirstStartRace(t *testing.T) {
	t.Parallel()
	fx := newServeFixture(t)
	slowID, err := fx.folder.AddMarkdown("/slow.md", "slow\n")
	must(t, err)
	// The first sync fetches the folder, then a.md and slow.md in
	// parallel; slow.md takes a second.
	fx.relay.InjectFault(relaytest.RouteAsUpdate, slowID, relaytest.Fault{Delay: time.Second, Times: 1})
	secret := newSharedSecret(t)
	p := fx.start(t, secret)
	deadline := time.Now().Add(10 * time.Second)
	for fx.relay.Requests(relaytest.RouteAsUpdate) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a.md is fetched; slow.md is still delayed
	must(t, fx.folder.EditMarkdown("/notes/a.md", "edited during the first sync\n"))
	when := time.Now().UTC().Truncate(time.Millisecond)
	send(t, fx.relay, p.webhookURL(), secret, relaytest.Webhook{DocID: fx.noteID, Time: when, User: "erin"}, http.StatusOK)

	_, snap := p.waitContent(fx.folder, "notes/a.md", "edited during the first sync\n", 20*time.Second)
	if !snap.Time.Equal(when) || !slices.Equal(snap.Users, []string{"erin"}) {
		t.Errorf("snapshot %d: time %v users %v, want %v [erin]", snap.Seq, snap.Time, snap.Users, when)
	}
}

// TestServeRefusesToStartWithoutSecret: no webhook secret is an error unless
// --insecure-no-webhook-auth, which then accepts unsigned webhooks.
func TestServeRefusesToStartWithoutSecret(t *testing.T) {
	t.Parallel()
	fx := newServeFixture(t)
	env := map[string]string{"RELAY_SERVER_URL": fx.relay.URL(), "RELAY_GIT_DATA_DIR": fx.dataDir}
	_, _, _, err := execute(t, env, "serve", "--host", "127.0.0.1", "--port", "0")
	if err == nil || !strings.Contains(err.Error(), "--insecure-no-webhook-auth") || !strings.Contains(err.Error(), "WEBHOOK_SECRET") {
		t.Fatalf("serve without a secret: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fx.dataDir, storeDirName)); !os.IsNotExist(err) {
		t.Errorf("serve created the store before refusing to start: %v", err)
	}

	p := fx.start(t, "", func(c *serveConfig) { c.insecure = true })
	first := p.waitSnapshot(fx.folder, 0, 20*time.Second, nil)
	must(t, fx.folder.EditMarkdown("/notes/a.md", "unauthenticated\n"))
	send(t, fx.relay, p.webhookURL(), "", relaytest.Webhook{DocID: fx.noteID}, http.StatusOK)
	p.waitSnapshot(fx.folder, first.Seq, 20*time.Second, nil)
	if !strings.Contains(p.logs.String(), "webhook authentication is DISABLED") {
		t.Errorf("no warning about disabled authentication in the log")
	}
}

// TestServeAutomaticWebhooks: the fake sends a webhook after every change,
// as relay-server does, while a user edits steadily; the last state
// arrives, with every editing user.
func TestServeAutomaticWebhooks(t *testing.T) {
	t.Parallel()
	fx := newServeFixture(t)
	secret := newSharedSecret(t)
	p := fx.start(t, secret)
	p.waitSnapshot(fx.folder, 0, 20*time.Second, nil)
	fx.relay.AddWebhook(relaytest.WebhookConfig{URL: p.webhookURL(), Secret: secret})
	text := "# A\n"
	for i := range 20 {
		fx.relay.SetEditingUser(fmt.Sprintf("user-%d", i%2))
		text += fmt.Sprintf("line %d\n", i)
		must(t, fx.folder.EditMarkdown("/notes/a.md", text))
		if i == 10 {
			_, err := fx.folder.AddMarkdown("/notes/c.md", "sea\n")
			must(t, err)
		}
		time.Sleep(15 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, fx.relay.WaitWebhooks(ctx))
	if sent, failed, lastErr := fx.relay.WebhookStats(); sent != 22 || failed != 0 {
		t.Fatalf("webhooks sent %d failed %d (%v), want 22 sent", sent, failed, lastErr)
	}
	tree, _ := p.waitContent(fx.folder, "notes/a.md", text, 20*time.Second)
	if tree["notes/c.md"] != "sea\n" {
		t.Errorf("tree %q", tree)
	}
	snaps, err := p.snapshots(fx.folder)
	must(t, err)
	users := map[string]bool{}
	for _, s := range snaps {
		for _, u := range s.Users {
			users[u] = true
		}
	}
	if !users["user-0"] || !users["user-1"] {
		t.Errorf("users recorded: %v", users)
	}
}

// TestServeShutdown: cancelling serve's context (what SIGTERM does) in the
// middle of a stream of webhooks returns cleanly and promptly, closes the
// store (it opens again at once), and loses no acknowledged event: a
// restart on the same data dir brings every acknowledged edit in.
func TestServeShutdown(t *testing.T) {
	t.Parallel()
	fx := newServeFixture(t)
	secret := newSharedSecret(t)
	p := fx.start(t, secret)
	p.waitSnapshot(fx.folder, 0, 20*time.Second, nil)

	var mu sync.Mutex
	text, acked := "", ""
	stop := make(chan struct{})
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			text += fmt.Sprintf("marker %d\n", i)
			cur := text
			mu.Unlock()
			if err := fx.folder.EditMarkdown("/notes/a.md", cur); err != nil {
				t.Error(err)
				return
			}
			code, _, err := fx.relay.SendWebhook(context.Background(), p.webhookURL(), secret, relaytest.Webhook{DocID: fx.noteID})
			if err == nil && code == http.StatusOK {
				mu.Lock()
				acked = cur
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(700 * time.Millisecond)
	start := time.Now()
	if err := p.stop(); err != nil {
		t.Fatalf("runServe after cancel: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %s", took)
	}
	time.Sleep(50 * time.Millisecond) // the stream sees refused connections
	close(stop)
	<-streamDone
	mu.Lock()
	lastAcked := acked
	mu.Unlock()
	if lastAcked == "" {
		t.Fatal("no webhook was acknowledged")
	}

	// The store was closed: it opens at once, and holds what serve wrote.
	st, err := store.Open(filepath.Join(fx.dataDir, storeDirName), store.Options{})
	if err != nil {
		t.Fatalf("reopening the store after shutdown: %v", err)
	}
	pending, err := st.PendingEvents()
	must(t, err)
	must(t, st.Close())
	t.Logf("%d events pending at shutdown", len(pending))

	// A restart brings every acknowledged edit in (full-state documents:
	// the last acknowledged text contains all earlier ones).
	p2 := fx.start(t, secret)
	tree, _ := p2.waitContent(fx.folder, "notes/a.md", text, 20*time.Second)
	if !strings.HasPrefix(tree["notes/a.md"], lastAcked) {
		t.Errorf("after restart: %q does not contain the last acknowledged text", tree["notes/a.md"])
	}
}
