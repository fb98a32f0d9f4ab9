package relaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
)

// Webhook shapes (§1.2).
const (
	// ShapeA is the current relay-server body: {"eventType","eventId",
	// "payload":{"doc_id","metadata","timestamp","user"}}.
	ShapeA = "A"
	// ShapeB is the legacy body: {"eventType","eventId","payload":{"doc_id","timestamp"}}.
	ShapeB = "B"
	// ShapeC is the event envelope with the timestamp at the top level:
	// {"type":"event","eventId","eventType","channel","timestamp","payload":{"doc_id","metadata","user"}}.
	ShapeC = "C"
	// ShapeCUnix is ShapeC with a numeric (Unix seconds) top-level timestamp,
	// the form the Python tests pin.
	ShapeCUnix = "C-unix"
	// ShapeNoTimestamp is the body relay-server sent between 2025-08-22 and
	// 2026-03-03: ShapeA without any timestamp.
	ShapeNoTimestamp = "no-timestamp"
)

// Webhook describes one document.updated delivery for SendWebhook.
type Webhook struct {
	// DocID is the document that changed: a compound id, or a plain UUID
	// that gets RelayID as prefix.
	DocID   string
	RelayID string
	// Time is the event time (the body's timestamp); zero = now.
	Time time.Time
	// User is the payload's user ("" = null).
	User string
	// Shape is ShapeA (default), ShapeB, ShapeC, ShapeCUnix or
	// ShapeNoTimestamp.
	Shape string
	// EventID defaults to "evt_" + 21 random alphanumerics.
	EventID string
	// Metadata is the payload's metadata (shapes A and C; nil = {}).
	Metadata map[string]any
	// SignedAt is the webhook-timestamp of a signed delivery (zero = now),
	// e.g. 10 minutes ago to test stale-signature rejection.
	SignedAt time.Time
	// SvixHeaders sends svix-id/-timestamp/-signature instead of
	// webhook-id/-timestamp/-signature.
	SvixHeaders bool
	// Body, when non-nil, is sent (and signed) verbatim instead of the
	// body built from the fields above: malformed or oversized tests.
	Body []byte
}

// WebhookBody builds the JSON body of w as the relay server serializes it
// (field order as serde writes it; payload keys sorted).
func WebhookBody(w Webhook) ([]byte, error) {
	docID := w.DocID
	if relay.IsUUID(docID) {
		if w.RelayID == "" {
			return nil, errors.New("relaytest: webhook with a plain doc id needs RelayID")
		}
		docID = relay.CompoundID(w.RelayID, docID)
	}
	if docID == "" {
		return nil, errors.New("relaytest: webhook without DocID")
	}
	t := w.Time
	if t.IsZero() {
		t = time.Now()
	}
	eventID := w.EventID
	if eventID == "" {
		eventID = NewEventID()
	}
	var user any
	if w.User != "" {
		user = w.User
	}
	meta := w.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	type top struct {
		EventType string         `json:"eventType"`
		EventID   string         `json:"eventId"`
		Payload   map[string]any `json:"payload"`
	}
	switch w.Shape {
	case "", ShapeA:
		return json.Marshal(top{"document.updated", eventID, map[string]any{
			"doc_id": docID, "user": user, "metadata": meta, "timestamp": RFC3339Chrono(t),
		}})
	case ShapeB:
		return json.Marshal(top{"document.updated", eventID, map[string]any{
			"doc_id": docID, "timestamp": RFC3339Chrono(t),
		}})
	case ShapeNoTimestamp:
		return json.Marshal(top{"document.updated", eventID, map[string]any{
			"doc_id": docID, "user": user, "metadata": meta,
		}})
	case ShapeC, ShapeCUnix:
		var ts any = RFC3339Chrono(t)
		if w.Shape == ShapeCUnix {
			ts = t.Unix()
		}
		return json.Marshal(struct {
			Type      string         `json:"type"`
			EventID   string         `json:"eventId"`
			EventType string         `json:"eventType"`
			Channel   string         `json:"channel"`
			Timestamp any            `json:"timestamp"`
			Payload   map[string]any `json:"payload"`
		}{"event", eventID, "document.updated", docID, ts, map[string]any{
			"doc_id": docID, "user": user, "metadata": meta,
		}})
	}
	return nil, fmt.Errorf("relaytest: unknown webhook shape %q", w.Shape)
}

// RFC3339Chrono formats t as chrono's DateTime<Utc>::to_rfc3339 does:
// "+00:00" offset, and 0, 3, 6 or 9 fractional digits (as few as keep the
// value exact).
func RFC3339Chrono(t time.Time) string {
	t = t.UTC()
	ns := t.Nanosecond()
	layout := "2006-01-02T15:04:05"
	switch {
	case ns == 0:
	case ns%1_000_000 == 0:
		layout += ".000"
	case ns%1_000 == 0:
		layout += ".000000"
	default:
		layout += ".000000000"
	}
	return t.Format(layout) + "+00:00"
}

// NewEventID returns "evt_" and 21 random characters of [A-Za-z0-9], like
// relay-server's event ids.
func NewEventID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 21)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return "evt_" + string(b)
}

// webhookTimeout is relay-server's default timeout_ms.
const webhookTimeout = 5 * time.Second

// SendWebhook POSTs one webhook to url as the relay server does
// (Content-Type application/json, User-Agent y-sweet-webhook/1.0.0).
// Authentication by secret: "" none; "whsec_…" Standard Webhooks signature
// headers (webhook-id = the event id, webhook-timestamp, webhook-signature
// "v1,<base64 HMAC-SHA256>"), as a Svix-style sender in front of the relay
// server would add; anything else "Authorization: Bearer <secret>" (the
// relay server's auth_token). It returns the status and up to 1 MiB of the
// response body. The request times out after 5s (relay-server's default)
// unless ctx ends first.
func (s *Server) SendWebhook(ctx context.Context, url, secret string, w Webhook) (status int, body []byte, err error) {
	return sendWebhook(ctx, s.hooks.hc, url, secret, w)
}

func sendWebhook(ctx context.Context, hc *http.Client, url, secret string, w Webhook) (int, []byte, error) {
	if w.EventID == "" {
		w.EventID = NewEventID()
	}
	payload := w.Body
	if payload == nil {
		var err error
		if payload, err = WebhookBody(w); err != nil {
			return 0, nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, fmt.Errorf("relaytest: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "y-sweet-webhook/1.0.0")
	switch {
	case secret == "":
	case strings.HasPrefix(secret, "whsec_"):
		signed := w.SignedAt
		if signed.IsZero() {
			signed = time.Now()
		}
		sig, err := SignWebhook(secret, w.EventID, signed, payload)
		if err != nil {
			return 0, nil, err
		}
		prefix := "webhook-"
		if w.SvixHeaders {
			prefix = "svix-"
		}
		req.Header.Set(prefix+"id", w.EventID)
		req.Header.Set(prefix+"timestamp", strconv.FormatInt(signed.Unix(), 10))
		req.Header.Set(prefix+"signature", sig)
	default:
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("relaytest: sending webhook: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, b, fmt.Errorf("relaytest: reading webhook answer: %w", err)
	}
	return resp.StatusCode, b, nil
}

// SignWebhook returns the Standard Webhooks signature header value
// ("v1,<base64>") of body for a "whsec_" secret.
func SignWebhook(secret, msgID string, ts time.Time, body []byte) (string, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return "", fmt.Errorf("relaytest: webhook secret: %w", err)
	}
	return wh.Sign(msgID, ts, body)
}

// ---- automatic webhooks, as the relay server sends them on every update ----

// WebhookConfig is one relay-server webhook configuration (§1.4).
type WebhookConfig struct {
	URL string
	// Secret: "" none, "whsec_…" signed, else the Bearer auth_token.
	Secret string
	// Prefix: the doc id must start with it ("" = every document).
	Prefix string
	// Shape of the bodies (default ShapeA).
	Shape string
}

type hookQueue struct {
	cfg     WebhookConfig
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []Webhook
	busy    bool
	closed  bool
	sent    int
	failed  int
	lastErr error
}

type hookSet struct {
	s      *Server
	mu     sync.Mutex
	queues []*hookQueue
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	hc     *http.Client
}

func newHookSet(s *Server) *hookSet {
	ctx, cancel := context.WithCancel(context.Background())
	hc := s.opts.WebhookClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &hookSet{s: s, ctx: ctx, cancel: cancel, hc: hc}
}

// AddWebhook makes the server POST a webhook for every document update the
// fake makes (Folder methods, EditDoc, NewFolder) to cfg.URL, like
// relay-server: one sequential sender per configuration with an unbounded
// in-memory queue, 5s timeout, no retry (failures are only counted).
// Updates made by one Folder call produce one event per document touched
// (a new markdown document: the document, then the folder).
func (s *Server) AddWebhook(cfg WebhookConfig) {
	q := &hookQueue{cfg: cfg}
	q.cond = sync.NewCond(&q.mu)
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() != nil {
		return
	}
	h.queues = append(h.queues, q)
	h.wg.Add(1)
	go h.run(q)
}

// WebhookStats returns how many automatic webhooks were answered 2xx and
// how many failed (non-2xx or transport errors), over all configurations,
// and the last failure.
func (s *Server) WebhookStats() (sent, failed int, lastErr error) {
	h := s.hooks
	h.mu.Lock()
	qs := append([]*hookQueue(nil), h.queues...)
	h.mu.Unlock()
	for _, q := range qs {
		q.mu.Lock()
		sent += q.sent
		failed += q.failed
		if q.lastErr != nil {
			lastErr = q.lastErr
		}
		q.mu.Unlock()
	}
	return sent, failed, lastErr
}

// WaitWebhooks blocks until every queued automatic webhook has been sent
// (or failed), or ctx ends.
func (s *Server) WaitWebhooks(ctx context.Context) error {
	h := s.hooks
	h.mu.Lock()
	qs := append([]*hookQueue(nil), h.queues...)
	h.mu.Unlock()
	for _, q := range qs {
		for {
			q.mu.Lock()
			idle := len(q.queue) == 0 && !q.busy || q.closed
			q.mu.Unlock()
			if idle {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

// emit queues a document.updated event for cid to every matching webhook
// configuration.
func (s *Server) emit(cid string) {
	h := s.hooks
	h.mu.Lock()
	qs := append([]*hookQueue(nil), h.queues...)
	h.mu.Unlock()
	if len(qs) == 0 {
		return
	}
	s.mu.Lock()
	user, now := s.user, s.now()
	s.mu.Unlock()
	for _, q := range qs {
		if !strings.HasPrefix(cid, q.cfg.Prefix) {
			continue
		}
		q.mu.Lock()
		if !q.closed {
			q.queue = append(q.queue, Webhook{DocID: cid, Time: now, User: user, Shape: q.cfg.Shape, EventID: NewEventID()})
			q.cond.Signal()
		}
		q.mu.Unlock()
	}
}

func (h *hookSet) run(q *hookQueue) {
	defer h.wg.Done()
	for {
		q.mu.Lock()
		for len(q.queue) == 0 && !q.closed {
			q.cond.Wait()
		}
		if q.closed {
			q.mu.Unlock()
			return
		}
		w := q.queue[0]
		q.queue = q.queue[1:]
		q.busy = true
		q.mu.Unlock()

		status, _, err := sendWebhook(h.ctx, h.hc, q.cfg.URL, q.cfg.Secret, w)
		if err == nil && (status < 200 || status > 299) {
			err = fmt.Errorf("relaytest: webhook for %s answered HTTP %d", w.DocID, status)
		}
		q.mu.Lock()
		q.busy = false
		if err != nil {
			q.failed++
			q.lastErr = err
		} else {
			q.sent++
		}
		q.mu.Unlock()
	}
}

func (h *hookSet) close() {
	h.mu.Lock()
	h.cancel()
	qs := h.queues
	h.mu.Unlock()
	for _, q := range qs {
		q.mu.Lock()
		q.closed = true
		q.queue = nil
		q.cond.Broadcast()
		q.mu.Unlock()
	}
	h.wg.Wait()
}
