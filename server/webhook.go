package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
)

// Webhook answers (§7).
var (
	ackBody              = []byte(`{"status":"received"}`)
	errAuthRequired      = errBody("Authentication required")
	errBadSharedSecret   = errBody("Authentication failed: Invalid shared secret")
	errPayloadTooLarge   = errBody("Payload too large")
	errInvalidJSON       = errBody("Invalid JSON payload")
	errInvalidPayloadMsg = errBody("Invalid webhook payload")
	errInternal          = errBody("Internal server error")
	errNoSpace           = errBody("Service unavailable: no space left to store the event durably")
)

// webhook handles POST /webhooks: authenticate (§2), read at most
// MaxBodyBytes, parse (§1.2), hand the event to the EventSink, and answer
// 200 only once the sink has committed it.
func (s *server) webhook(c *gin.Context) {
	start := time.Now()
	received := s.now().UTC()
	r := c.Request
	outcome := OutcomeError
	log := s.log
	defer func() {
		s.metrics.Webhooks.WithLabelValues(outcome).Inc()
		s.metrics.WebhookAckSeconds.Observe(time.Since(start).Seconds())
	}()
	reject := func(status int, o string, body errorBody, msg string, attrs ...any) {
		outcome = o
		if o == OutcomeTooLarge {
			c.Header("Connection", "close")
		}
		c.JSON(status, body)
		log.Warn(msg, append(attrs, "outcome", o, "status", status, "remote", c.ClientIP())...)
	}

	// Authentication that needs no body comes first, so an unauthenticated
	// client cannot make the server read a megabyte.
	var sig sigHeaders
	switch s.auth {
	case authShared:
		presented, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			reject(http.StatusUnauthorized, OutcomeUnauthorized, errAuthRequired,
				"webhook rejected: no Bearer authorization")
			return
		}
		if !equalSecret(presented, &s.secret) {
			reject(http.StatusUnauthorized, OutcomeUnauthorized, errBadSharedSecret,
				"webhook rejected: invalid shared secret")
			return
		}
	case authHMAC:
		var ok bool
		if sig, ok = signatureHeaders(r.Header); !ok {
			reject(http.StatusUnauthorized, OutcomeUnauthorized, errAuthRequired,
				"webhook rejected: missing signature headers")
			return
		}
	}

	body, err := s.readBody(r)
	switch {
	case errors.Is(err, errTooLarge):
		reject(http.StatusRequestEntityTooLarge, OutcomeTooLarge, errPayloadTooLarge,
			"webhook rejected: body too large", "limit", s.maxBody, "content_length", r.ContentLength)
		return
	case err != nil:
		reject(http.StatusBadRequest, OutcomeBadRequest, errInvalidJSON,
			"webhook rejected: reading body", "err", err)
		return
	}

	if s.auth == authHMAC {
		if err := verifySignature(s.hmacKey, sig, body, s.now()); err != nil {
			reject(http.StatusUnauthorized, OutcomeUnauthorized,
				errBody("Authentication failed: Signature validation failed: "+err.Error()),
				"webhook rejected: signature validation failed", "reason", err.Error())
			return
		}
	}

	p, err := parseWebhook(body)
	if errors.Is(err, errNotJSON) {
		reject(http.StatusBadRequest, OutcomeBadRequest, errInvalidJSON,
			"webhook rejected: body is not UTF-8 JSON", "bytes", len(body))
		return
	}
	if err != nil {
		reject(http.StatusBadRequest, OutcomeBadRequest, errInvalidPayloadMsg,
			"webhook rejected: invalid payload", "err", err)
		return
	}

	ev := Event{
		ID:         p.eventID,
		Relay:      p.relay,
		Doc:        p.doc,
		Time:       p.time,
		TimeSource: p.timeSource,
		User:       p.user,
		Received:   received,
	}
	// A delivery id from the headers (signed in whsec_ mode) names the
	// delivery better than the body: it takes precedence for dedupe.
	if id := deliveryID(s.auth, sig, r.Header); id != "" {
		if len(id) > maxEventIDLen {
			reject(http.StatusBadRequest, OutcomeBadRequest, errInvalidPayloadMsg,
				"webhook rejected: webhook-id header too long", "bytes", len(id))
			return
		}
		ev.ID = id
	}
	if ev.TimeSource == "" {
		ev.Time, ev.TimeSource = received, TimeReceived
		log.Warn("webhook without timestamp: using the receive time",
			"relay", ev.Relay, "doc", ev.Doc, "event_id", ev.ID, "remote", c.ClientIP())
	}

	dup, err := s.cfg.Events.Enqueue(c.Request.Context(), ev)
	if errors.Is(err, syscall.ENOSPC) {
		// The store refuses writes on a (nearly) full disk rather than
		// crash: the event is not acknowledged. The Relay Server does not
		// retry; the next reconcile picks the change up once space is back.
		outcome = OutcomeUnavailable
		c.JSON(http.StatusServiceUnavailable, errNoSpace)
		log.Warn("webhook not accepted: no space left to store it", "outcome", outcome,
			"relay", ev.Relay, "doc", ev.Doc, "event_id", ev.ID, "err", err, "remote", c.ClientIP())
		return
	}
	if err != nil {
		outcome = OutcomeError
		c.JSON(http.StatusInternalServerError, errInternal)
		log.Error("webhook not accepted: enqueue failed", "outcome", outcome,
			"relay", ev.Relay, "doc", ev.Doc, "event_id", ev.ID, "err", err, "remote", c.ClientIP())
		return
	}
	outcome = OutcomeAccepted
	if dup {
		outcome = OutcomeDuplicate
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", ackBody)
	// An accepted webhook is logged at debug (-v): at INFO, a line per
	// webhook was the handler's largest cost after parsing (formatting and a
	// write to stderr each); relay_git_sync_webhooks_total counts them and
	// the scheduler logs each snapshot they lead to. A duplicate, a
	// sender's retry, stays at INFO.
	level := slog.LevelDebug
	if dup {
		level = slog.LevelInfo
	}
	if ctx := c.Request.Context(); log.Enabled(ctx, level) {
		log.Log(ctx, level, "webhook "+outcome, "outcome", outcome, "relay", ev.Relay, "doc", ev.Doc,
			"event_id", ev.ID, "event_type", p.eventType, "time", ev.Time, "time_source", ev.TimeSource,
			"user", ev.User, "remote", c.ClientIP())
	}
}

// deliveryID is the delivery id from the headers: the verified one in
// whsec_ mode, else webhook-id or svix-id when present.
func deliveryID(mode authMode, sig sigHeaders, h http.Header) string {
	if mode == authHMAC {
		return sig.id
	}
	if id := h.Get("Webhook-Id"); id != "" {
		return id
	}
	return h.Get("Svix-Id")
}

var errTooLarge = errors.New("body too large")

// readBody reads the request body, refusing (errTooLarge) one longer than
// the limit, whatever Content-Length says: at most limit+1 bytes are read.
func (s *server) readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > s.maxBody {
		return nil, errTooLarge
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		// bytes.Buffer.ReadFrom wants MinRead bytes free before each read:
		// with this, a correct Content-Length costs one allocation.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, s.maxBody+1))
	if err != nil {
		return nil, err
	}
	if n > s.maxBody {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

// bearerToken returns the credentials of an "Authorization: Bearer <token>"
// header value. The scheme is matched in any case (RFC 9110, 11.1); ok is
// false when the header is not of the Bearer scheme.
func bearerToken(header string) (token string, ok bool) {
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return token, true
}
