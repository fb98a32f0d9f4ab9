package server

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHealth(t *testing.T) {
	env := newEnv(t, nil)
	expectJSON(t, env.do("GET", "/health", nil, nil), 200, `{"status":"healthy"}`)
	if w := env.do("HEAD", "/health", nil, nil); w.Code != 200 {
		t.Errorf("HEAD: %d", w.Code)
	}

	var gotDeadline bool
	env = newEnv(t, func(c *Config) {
		c.Health = func(ctx context.Context) error {
			_, gotDeadline = ctx.Deadline()
			return errors.New("badger: closed")
		}
	})
	expectJSON(t, env.do("GET", "/health", nil, nil), 503, `{"error":"badger: closed","status":"unhealthy"}`)
	if w := env.do("HEAD", "/health", nil, nil); w.Code != 503 {
		t.Errorf("HEAD unhealthy: %d", w.Code)
	}
	if !gotDeadline {
		t.Error("health check context has no deadline")
	}
	// Public, even with secrets configured and an Authorization header.
	env = newEnv(t, nil)
	expectJSON(t, env.do("GET", "/health", nil, bearer("wrong")), 200, `{"status":"healthy"}`)
}

func TestPubkey(t *testing.T) {
	cases := []struct {
		name string
		pub  string
		err  error
		code int
		body string
	}{
		{"ed25519", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB relay-git-sync\n", nil, 200,
			`{"key_type":"ssh-ed25519","public_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB relay-git-sync"}`},
		{"rsa", "ssh-rsa AAAAB3NzaC1yc2E", nil, 200, `{"key_type":"ssh-rsa","public_key":"ssh-rsa AAAAB3NzaC1yc2E"}`},
		{"ecdsa", "ecdsa-sha2-nistp256 AAAAE2VjZHNh", nil, 200, `{"key_type":"ecdsa","public_key":"ecdsa-sha2-nistp256 AAAAE2VjZHNh"}`},
		{"unknown", "sk-ssh-ed25519@openssh.com AAAA", nil, 200, `{"key_type":"unknown","public_key":"sk-ssh-ed25519@openssh.com AAAA"}`},
		{"not configured", "", ErrNoSSHKey, 400, `{"error":"SSH_PRIVATE_KEY environment variable not configured"}`},
		{"wrapped not configured", "", errors.Join(errors.New("x"), ErrNoSSHKey), 400, `{"error":"SSH_PRIVATE_KEY environment variable not configured"}`},
		{"broken key", "", errors.New("ssh: no key found"), 500, `{"error":"Failed to retrieve public key: ssh: no key found"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, func(c *Config) {
				c.PublicKey = func() (string, error) { return tc.pub, tc.err }
			})
			expectJSON(t, env.do("GET", "/api/pubkey", nil, nil), tc.code, tc.body)
		})
	}
	env := newEnv(t, nil) // no PublicKey func
	expectJSON(t, env.do("GET", "/api/pubkey", nil, nil), 400, `{"error":"SSH_PRIVATE_KEY environment variable not configured"}`)
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	env := newEnv(t, nil)
	for _, p := range []string{"/", "/webhook", "/webhooks/", "/health/", "/api", "/api/v1", "/api/v1/folders/", "/nope"} {
		for _, m := range []string{"GET", "POST"} {
			w := env.do(m, p, nil, bearer(testSecret))
			expectJSON(t, w, 404, `{"error":"not found"}`)
		}
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/webhooks", "POST"},
		{"PUT", "/webhooks", "POST"},
		{"POST", "/health", "GET, HEAD"},
		{"DELETE", "/api/v1/folders", "GET"},
		{"POST", "/openapi.yaml", "GET"},
		{"POST", "/metrics", "GET"},
	} {
		w := env.do(tc.method, tc.path, nil, nil)
		expectJSON(t, w, 405, `{"error":"method not allowed"}`)
		if got := w.Header().Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	env := newEnv(t, nil)
	env.do("POST", "/webhooks", webhookBody(testCID, "2026-01-01"), bearer(testSecret))
	env.do("POST", "/webhooks", webhookBody(testCID, "2026-01-01"), nil)
	env.s.metrics.QueueDepth.Set(7)
	env.s.metrics.RelayFetchErrors.Inc()
	w := env.do("GET", "/metrics", nil, nil)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, s := range []string{
		`relay_git_sync_webhooks_total{outcome="accepted"} 1`,
		`relay_git_sync_webhooks_total{outcome="unauthorized"} 1`,
		`relay_git_sync_webhooks_total{outcome="too_large"} 0`,
		`relay_git_sync_webhook_ack_seconds_count 2`,
		`relay_git_sync_http_requests_total{code="200",route="/webhooks"} 1`,
		`relay_git_sync_http_requests_total{code="401",route="/webhooks"} 1`,
		`relay_git_sync_queue_depth 7`,
		`relay_git_sync_relay_fetch_errors_total 1`,
		`relay_git_sync_snapshot_latency_seconds_count 0`,
		`relay_git_sync_reconciles_total{result="ok"} 0`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("metrics lack %q", s)
		}
	}
	env.do("GET", "/nope", nil, nil)
	if got := counter(t, env.reg, "relay_git_sync_http_requests_total", "route", "unmatched", "code", "404"); got != 1 {
		t.Errorf("unmatched 404 count %v", got)
	}
}

func TestMetricsFromConfig(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("second NewMetrics on one registry succeeded")
	}
	env := newEnv(t, func(c *Config) { c.Registry, c.Metrics = reg, m })
	env.do("POST", "/webhooks", webhookBody(testCID, "2026-01-01"), bearer(testSecret))
	if got := counter(t, reg, "relay_git_sync_webhooks_total", "outcome", "accepted"); got != 1 {
		t.Errorf("accepted %v", got)
	}
	m.Snapshots.Inc()
	if !strings.Contains(env.do("GET", "/metrics", nil, nil).Body.String(), "relay_git_sync_snapshots_total 1") {
		t.Error("metrics from Config not served")
	}
}

// TestNothingOnStdout: gin must not print (release mode, no logger
// middleware); stdout belongs to the remote helper protocol elsewhere.
func TestNothingOnStdout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stdout
	os.Stdout = w
	func() {
		defer func() { os.Stdout = orig }()
		env := newEnv(t, nil)
		env.do("POST", "/webhooks", webhookBody(testCID, "2026-01-01"), bearer(testSecret))
		env.do("GET", "/nope", nil, nil)
		env.do("GET", "/docs", nil, nil)
		env.rd.panic = true
		env.do("GET", "/api/v1/folders", nil, bearer(testToken))
	}()
	w.Close()
	out, _ := io.ReadAll(r)
	if len(out) != 0 {
		t.Errorf("stdout got %q", out)
	}
}

func TestClockIsUsed(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	env := newEnv(t, func(c *Config) { c.Now = func() time.Time { return at } })
	env.do("POST", "/webhooks", []byte(`{"payload":{"doc_id":"`+testCID+`"}}`), bearer(testSecret))
	ev := env.sink.last(t)
	if !ev.Received.Equal(at) || ev.Received.Location() != time.UTC || !ev.Time.Equal(at) || ev.TimeSource != TimeReceived {
		t.Errorf("event %+v", ev)
	}
}
