package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const okBody = `{"status":"received"}`

func TestNewNeedsSecretOrInsecureFlag(t *testing.T) {
	_, err := New(Config{Events: &fakeSink{}})
	want := "no webhook secret configured: set WEBHOOK_SECRET (see `relay-git-sync webhook keygen`) or pass --insecure-no-webhook-auth"
	if err == nil || err.Error() != want {
		t.Fatalf("New without secret: %v, want %q", err, want)
	}
	if _, err := New(Config{Events: &fakeSink{}, InsecureNoAuth: true}); err != nil {
		t.Fatalf("New with InsecureNoAuth: %v", err)
	}
}

func TestNewConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no sink":             {WebhookSecret: "x"},
		"bad whsec":           {WebhookSecret: "whsec_!!!not base64", Events: &fakeSink{}},
		"empty whsec":         {WebhookSecret: "whsec_", Events: &fakeSink{}},
		"token without read":  {WebhookSecret: "x", Events: &fakeSink{}, APIToken: "t"},
		"negative body limit": {WebhookSecret: "x", Events: &fakeSink{}, MaxBodyBytes: -1},
		"metrics no registry": {WebhookSecret: "x", Events: &fakeSink{}, Metrics: &Metrics{}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestInsecureNoAuthAcceptsUnauthenticated(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.WebhookSecret, c.InsecureNoAuth = "", true })
	w := env.do("POST", "/webhooks", webhookBody(testCID, "2026-03-03T21:58:48+00:00"), nil)
	expectJSON(t, w, 200, okBody)
	if ev := env.sink.last(t); ev.Relay != testRelay || ev.Doc != testDoc {
		t.Errorf("event %+v", ev)
	}
}

func TestInsecureFlagIgnoredWithSecret(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.InsecureNoAuth = true })
	w := env.do("POST", "/webhooks", webhookBody(testCID, "2026-03-03T21:58:48+00:00"), nil)
	expectJSON(t, w, 401, `{"error":"Authentication required"}`)
}

func TestSharedSecretAuth(t *testing.T) {
	const required = `{"error":"Authentication required"}`
	const failed = `{"error":"Authentication failed: Invalid shared secret"}`
	cases := []struct {
		name, header string
		status       int
		body         string
	}{
		{"missing", "", 401, required},
		{"basic", "Basic " + testSecret, 401, required},
		{"lower-case bearer", "bearer " + testSecret, 200, okBody},
		{"upper-case BEARER", "BEARER " + testSecret, 200, okBody},
		{"mixed-case bEaReR", "bEaReR " + testSecret, 200, okBody},
		{"lower-case wrong", "bearer nope", 401, failed},
		{"no space", "Bearer" + testSecret, 401, required},
		{"bare secret", testSecret, 401, required},
		{"Bearer only", "Bearer", 401, required},
		{"empty token", "Bearer ", 401, failed},
		{"wrong", "Bearer nope", 401, failed},
		{"prefix of secret", "Bearer " + testSecret[:5], 401, failed},
		{"secret plus suffix", "Bearer " + testSecret + "x", 401, failed},
		{"Bearer Bearer", "Bearer Bearer " + testSecret, 401, failed},
		{"two spaces", "Bearer  " + testSecret, 401, failed},
		{"trailing space", "Bearer " + testSecret + " ", 401, failed},
		{"ok", "Bearer " + testSecret, 200, okBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil)
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Authorization"] = tc.header
			}
			w := env.do("POST", "/webhooks", webhookBody(testCID, "2026-03-03T21:58:48+00:00"), hdr)
			expectJSON(t, w, tc.status, tc.body)
			outcome := OutcomeUnauthorized
			if tc.status == 200 {
				outcome = OutcomeAccepted
			} else if n := len(env.sink.all()); n != 0 {
				t.Errorf("%d events enqueued by a rejected webhook", n)
			}
			if got := counter(t, env.reg, "relay_git_sync_webhooks_total", "outcome", outcome); got != 1 {
				t.Errorf("webhooks_total{outcome=%s} = %v, want 1", outcome, got)
			}
		})
	}
}

func TestSharedSecretCheckedBeforeBody(t *testing.T) {
	// An unauthenticated client gets 401, not 413: the body is not read.
	env := newEnv(t, nil)
	body := &countingReader{r: bytes.NewReader(make([]byte, 2<<20))}
	req := httptest.NewRequest("POST", "/webhooks", body)
	req.Header.Set("Authorization", "Bearer wrong")
	w := httptest.NewRecorder()
	env.h.ServeHTTP(w, req)
	expectJSON(t, w, 401, `{"error":"Authentication failed: Invalid shared secret"}`)
	if body.n != 0 {
		t.Errorf("%d body bytes read before authentication", body.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// signed returns Standard Webhooks headers (prefix "webhook-" or "svix-")
// for body, signed with the reference library.
func signed(t *testing.T, secret, prefix, id string, ts time.Time, body []byte) map[string]string {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		prefix + "id":        id,
		prefix + "timestamp": strconv.FormatInt(ts.Unix(), 10),
		prefix + "signature": sig,
		"Content-Type":       "application/json",
	}
}

func TestStandardWebhooksAuth(t *testing.T) {
	body := webhookBody(testCID, "2026-03-03T21:58:48+00:00")
	otherKey := "whsec_" + "c2VjcmV0LWtleS1vdGhlci0zMmJ5dGVzLWxvbmctYWFh"
	sigFail := func(reason string) string {
		return `{"error":"Authentication failed: Signature validation failed: ` + reason + `"}`
	}
	cases := []struct {
		name   string
		hdr    func() map[string]string
		body   []byte
		status int
		want   string
	}{
		{"webhook headers", func() map[string]string { return signed(t, testWhsec, "webhook-", "msg_1", testNow, body) }, body, 200, okBody},
		{"svix headers", func() map[string]string { return signed(t, testWhsec, "svix-", "msg_1", testNow, body) }, body, 200, okBody},
		{"upper-case header names", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			return map[string]string{"WEBHOOK-ID": h["webhook-id"], "Webhook-Timestamp": h["webhook-timestamp"], "WEBHOOK-SIGNATURE": h["webhook-signature"]}
		}, body, 200, okBody},
		{"several signatures, good last", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			bad := signed(t, otherKey, "webhook-", "msg_1", testNow, body)["webhook-signature"]
			h["webhook-signature"] = bad + " v2,abc " + "garbage " + h["webhook-signature"]
			return h
		}, body, 200, okBody},
		{"several signatures, good first", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			h["webhook-signature"] += " v1,AAAA"
			return h
		}, body, 200, okBody},
		{"tolerance edge old", func() map[string]string {
			return signed(t, testWhsec, "webhook-", "msg_1", testNow.Add(-5*time.Minute), body)
		}, body, 200, okBody},
		{"tolerance edge new", func() map[string]string {
			return signed(t, testWhsec, "webhook-", "msg_1", testNow.Add(5*time.Minute), body)
		}, body, 200, okBody},
		{"wrong key", func() map[string]string { return signed(t, otherKey, "webhook-", "msg_1", testNow, body) }, body, 401, sigFail("No matching signature found")},
		{"wrong version", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			h["webhook-signature"] = "v2," + strings.TrimPrefix(h["webhook-signature"], "v1,")
			return h
		}, body, 401, sigFail("No matching signature found")},
		{"not base64", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			h["webhook-signature"] = "v1,%%%"
			return h
		}, body, 401, sigFail("Invalid signature encoding")},
		{"stale", func() map[string]string {
			return signed(t, testWhsec, "webhook-", "msg_1", testNow.Add(-5*time.Minute-time.Second), body)
		}, body, 401, sigFail("Message timestamp too old")},
		{"future", func() map[string]string {
			return signed(t, testWhsec, "webhook-", "msg_1", testNow.Add(5*time.Minute+time.Second), body)
		}, body, 401, sigFail("Message timestamp too new")},
		{"timestamp changed after signing", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			h["webhook-timestamp"] = strconv.FormatInt(testNow.Unix()+1, 10)
			return h
		}, body, 401, sigFail("No matching signature found")},
		{"id changed after signing", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			h["webhook-id"] = "msg_2"
			return h
		}, body, 401, sigFail("No matching signature found")},
		{"non-numeric timestamp", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			h["webhook-timestamp"] = "2026-03-03T22:00:00Z"
			return h
		}, body, 401, sigFail("Invalid Signature Headers")},
		{"tampered body", func() map[string]string { return signed(t, testWhsec, "webhook-", "msg_1", testNow, body) },
			bytes.Replace(body, []byte("document.updated"), []byte("document.updatee"), 1), 401, sigFail("No matching signature found")},
		{"missing signature header", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			delete(h, "webhook-signature")
			return h
		}, body, 401, `{"error":"Authentication required"}`},
		{"mixed prefixes", func() map[string]string {
			h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
			return map[string]string{"webhook-id": h["webhook-id"], "svix-timestamp": h["webhook-timestamp"], "webhook-signature": h["webhook-signature"]}
		}, body, 401, `{"error":"Authentication required"}`},
		{"bearer is ignored", func() map[string]string { return map[string]string{"Authorization": "Bearer " + testWhsec} }, body, 401, `{"error":"Authentication required"}`},
		{"no headers", func() map[string]string { return nil }, body, 401, `{"error":"Authentication required"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, func(c *Config) { c.WebhookSecret = testWhsec })
			w := env.do("POST", "/webhooks", tc.body, tc.hdr())
			expectJSON(t, w, tc.status, tc.want)
			if tc.status == 200 {
				if ev := env.sink.last(t); ev.ID != "msg_1" {
					t.Errorf("event ID %q, want the signed webhook-id msg_1", ev.ID)
				}
			} else if len(env.sink.all()) != 0 {
				t.Error("rejected webhook was enqueued")
			}
		})
	}
}

// TestStandardWebhooksKnownAnswer is the Standard Webhooks specification's
// test vector.
func TestStandardWebhooksKnownAnswer(t *testing.T) {
	const (
		id   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts   = "1614265330"
		body = `{"test": 2432232314}`
		sig  = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	at := time.Unix(1614265330, 0).Add(42 * time.Second)
	key, err := decodeWhsec(testWhsec)
	if err != nil {
		t.Fatal(err)
	}
	sh := sigHeaders{id: id, timestamp: ts, signature: sig}
	if err := verifySignature(key, sh, []byte(body), at); err != nil {
		t.Fatalf("known-answer vector: %v", err)
	}
	if err := verifySignature(key, sh, []byte(body+" "), at); err != errSigNoMatch {
		t.Errorf("modified body: %v, want %v", err, errSigNoMatch)
	}
	if err := verifySignature(key, sh, []byte(body), time.Now()); err != errSigTooOld {
		t.Errorf("real clock: %v, want %v", err, errSigTooOld)
	}
	// The reference library agrees.
	wh, _ := standardwebhooks.NewWebhook(testWhsec)
	if got, _ := wh.Sign(id, time.Unix(1614265330, 0), []byte(body)); got != sig {
		t.Errorf("library signs %s, vector says %s", got, sig)
	}

	// Through the handler: authentication passes (the body then is not a
	// Relay webhook: 400, not 401).
	for _, prefix := range []string{"webhook-", "svix-"} {
		env := newEnv(t, func(c *Config) {
			c.WebhookSecret = testWhsec
			c.Now = func() time.Time { return at }
		})
		w := env.do("POST", "/webhooks", []byte(body), map[string]string{prefix + "id": id, prefix + "timestamp": ts, prefix + "signature": sig})
		expectJSON(t, w, 400, `{"error":"Invalid webhook payload"}`)
	}
}

func TestWhsecPaddingVariants(t *testing.T) {
	padded, err := decodeWhsec("whsec_c2VjcmV0")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := decodeWhsec("whsec_c2VjcmU")
	if err != nil {
		t.Fatal(err)
	}
	if string(padded) != "secret" || string(raw) != "secre" {
		t.Errorf("decoded %q %q", padded, raw)
	}
}

func TestWebhookBodyShapes(t *testing.T) {
	upperCID := strings.ToUpper(testRelay) + "-" + strings.ToUpper(testDoc)
	cases := []struct {
		name   string
		body   string
		wantT  time.Time
		source string
		user   string
		id     string
		relay  string
	}{
		{"A", `{"eventType":"document.updated","eventId":"evt_1","payload":{"doc_id":"` + testCID + `","user":"u-1","metadata":{"channel":"x"},"timestamp":"2026-03-03T21:58:48.123456789+00:00"}}`,
			time.Date(2026, 3, 3, 21, 58, 48, 123456789, time.UTC), TimeFromPayload, "u-1", "evt_1", testRelay},
		{"B", `{"eventType":"document.updated","eventId":"evt_2","payload":{"doc_id":"` + testCID + `","timestamp":"2025-08-20T10:00:00Z"}}`,
			time.Date(2025, 8, 20, 10, 0, 0, 0, time.UTC), TimeFromPayload, "", "evt_2", testRelay},
		{"C string", `{"type":"event","eventId":"evt_3","eventType":"document.updated","channel":"c","timestamp":"2026-01-01T00:00:00.5+01:00","payload":{"doc_id":"` + testCID + `","user":null,"metadata":{}}}`,
			time.Date(2025, 12, 31, 23, 0, 0, 5e8, time.UTC), TimeFromEnvelope, "", "evt_3", testRelay},
		{"C number", `{"timestamp":1767225600,"payload":{"doc_id":"` + testCID + `"}}`,
			time.Unix(1767225600, 0).UTC(), TimeFromEnvelope, "", "", testRelay},
		{"fractional number", `{"payload":{"doc_id":"` + testCID + `","timestamp":1767225600.25}}`,
			time.Unix(1767225600, 25e7).UTC(), TimeFromPayload, "", "", testRelay},
		{"payload wins over envelope", `{"timestamp":"2020-01-01","payload":{"doc_id":"` + testCID + `","timestamp":"2026-01-02"}}`,
			time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), TimeFromPayload, "", "", testRelay},
		{"null payload timestamp falls back", `{"timestamp":"2020-01-01","payload":{"doc_id":"` + testCID + `","timestamp":null}}`,
			time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), TimeFromEnvelope, "", "", testRelay},
		{"empty payload timestamp falls back", `{"timestamp":"2020-01-01","payload":{"doc_id":"` + testCID + `","timestamp":""}}`,
			time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), TimeFromEnvelope, "", "", testRelay},
		{"9-digit fraction", `{"payload":{"doc_id":"` + testCID + `","timestamp":"2026-03-03T21:58:48.000000001Z"}}`,
			time.Date(2026, 3, 3, 21, 58, 48, 1, time.UTC), TimeFromPayload, "", "", testRelay},
		{"date only", `{"payload":{"doc_id":"` + testCID + `","timestamp":"2026-01-01"}}`,
			time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), TimeFromPayload, "", "", testRelay},
		{"no timestamp", `{"eventId":"evt_4","payload":{"doc_id":"` + testCID + `","user":null}}`,
			testNow, TimeReceived, "", "evt_4", testRelay},
		{"3-UUID id", `{"payload":{"doc_id":"` + testRelay + "-" + testMiddle + "-" + testDoc + `","timestamp":"2026-01-01"}}`,
			time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), TimeFromPayload, "", "", testRelay},
		{"upper-case ids", `{"payload":{"doc_id":"` + upperCID + `","timestamp":"2026-01-01"}}`,
			time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), TimeFromPayload, "", "", testRelay},
		{"unknown fields, non-string user and eventId", `{"eventId":17,"extra":[1,2],"payload":{"doc_id":"` + testCID + `","user":{"id":1},"timestamp":"2026-01-01","more":true}}`,
			time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), TimeFromPayload, "", "", testRelay},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil)
			w := env.do("POST", "/webhooks", []byte(tc.body), bearer(testSecret))
			expectJSON(t, w, 200, okBody)
			ev := env.sink.last(t)
			want := Event{ID: tc.id, Relay: tc.relay, Doc: testDoc, Time: tc.wantT, TimeSource: tc.source, User: tc.user, Received: testNow}
			if !ev.Time.Equal(want.Time) || ev.Time.Location() != time.UTC {
				t.Errorf("time %v, want %v (UTC)", ev.Time, want.Time)
			}
			ev.Time = want.Time
			if ev != want {
				t.Errorf("event\n got %+v\nwant %+v", ev, want)
			}
		})
	}
}

func TestWebhookMissingTimestampIsLogged(t *testing.T) {
	env := newEnv(t, nil)
	w := env.do("POST", "/webhooks", []byte(`{"payload":{"doc_id":"`+testCID+`"}}`), bearer(testSecret))
	expectJSON(t, w, 200, okBody)
	if !strings.Contains(env.logs.String(), "webhook without timestamp") {
		t.Errorf("no warning logged:\n%s", env.logs)
	}
}

func TestWebhookInvalid(t *testing.T) {
	const badJSON = `{"error":"Invalid JSON payload"}`
	const badPayload = `{"error":"Invalid webhook payload"}`
	nonUUID := "12345678-1234-1234-1234-12345678zzzz-87654321-4321-4321-4321-cba987654321"
	cases := []struct{ name, body, want string }{
		{"empty", ``, badJSON},
		{"not JSON", `payload=1`, badJSON},
		{"truncated JSON", `{"payload":{"doc_id":"` + testCID + `"}`, badJSON},
		{"non-UTF-8", "{\"payload\":{\"doc_id\":\"" + testCID + "\",\"user\":\"\xff\xfe\"}}", badJSON},
		{"top-level array", `[{"payload":{"doc_id":"` + testCID + `"}}]`, badPayload},
		{"top-level string", `"hello"`, badPayload},
		{"top-level null", `null`, badPayload},
		{"no payload", `{"doc_id":"` + testCID + `","timestamp":"2026-01-01"}`, badPayload},
		{"payload null", `{"payload":null}`, badPayload},
		{"payload string", `{"payload":"` + testCID + `"}`, badPayload},
		{"payload array", `{"payload":["` + testCID + `"]}`, badPayload},
		{"missing doc_id", `{"payload":{"timestamp":"2026-01-01"}}`, badPayload},
		{"empty doc_id", `{"payload":{"doc_id":"","timestamp":"2026-01-01"}}`, badPayload},
		{"numeric doc_id", `{"payload":{"doc_id":12345,"timestamp":"2026-01-01"}}`, badPayload},
		{"Doc_Id wrong case", `{"payload":{"Doc_Id":"` + testCID + `"}}`, badPayload},
		{"short id", `{"payload":{"doc_id":"12345678-1234-1234-1234","timestamp":"2026-01-01"}}`, badPayload},
		{"one UUID", `{"payload":{"doc_id":"` + testRelay + `"}}`, badPayload},
		{"7 parts", `{"payload":{"doc_id":"` + testRelay + `-87654321-4321"}}`, badPayload},
		{"11 parts", `{"payload":{"doc_id":"` + testCID + `-extra"}}`, badPayload},
		{"4 UUIDs", `{"payload":{"doc_id":"` + testCID + "-" + testCID + `"}}`, badPayload},
		{"non-hex UUID", `{"payload":{"doc_id":"` + nonUUID + `"}}`, badPayload},
		{"path games", `{"payload":{"doc_id":"../../etc-passwd-1234-1234-1234-87654321-4321-4321-4321-cba987654321"}}`, badPayload},
		{"bad timestamp", `{"payload":{"doc_id":"` + testCID + `","timestamp":"yesterday"}}`, badPayload},
		{"numeric string timestamp", `{"payload":{"doc_id":"` + testCID + `","timestamp":"1767225600"}}`, badPayload},
		{"bad envelope timestamp", `{"timestamp":"3 March","payload":{"doc_id":"` + testCID + `"}}`, badPayload},
		{"invalid date", `{"payload":{"doc_id":"` + testCID + `","timestamp":"2026-02-30T00:00:00Z"}}`, badPayload},
		{"bool timestamp", `{"payload":{"doc_id":"` + testCID + `","timestamp":true}}`, badPayload},
		{"object timestamp", `{"payload":{"doc_id":"` + testCID + `","timestamp":{"s":1}}}`, badPayload},
		{"huge number timestamp", `{"payload":{"doc_id":"` + testCID + `","timestamp":1e300}}`, badPayload},
		{"long eventId", `{"eventId":"` + strings.Repeat("e", 300) + `","payload":{"doc_id":"` + testCID + `"}}`, badPayload},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil)
			w := env.do("POST", "/webhooks", []byte(tc.body), bearer(testSecret))
			expectJSON(t, w, 400, tc.want)
			if len(env.sink.all()) != 0 {
				t.Error("invalid webhook was enqueued")
			}
			if got := counter(t, env.reg, "relay_git_sync_webhooks_total", "outcome", OutcomeBadRequest); got != 1 {
				t.Errorf("bad_request count %v", got)
			}
		})
	}
}

func TestWebhookIDPrecedence(t *testing.T) {
	body := webhookBody(testCID, "2026-01-01") // eventId evt_abcdefghijklmnopqrstu
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want string
	}{
		{"body eventId", nil, "evt_abcdefghijklmnopqrstu"},
		{"webhook-id header", map[string]string{"webhook-id": "msg_h1"}, "msg_h1"},
		{"svix-id header", map[string]string{"svix-id": "msg_h2"}, "msg_h2"},
		{"webhook-id before svix-id", map[string]string{"svix-id": "msg_h2", "webhook-id": "msg_h1"}, "msg_h1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil)
			hdr := bearer(testSecret)
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			expectJSON(t, env.do("POST", "/webhooks", body, hdr), 200, okBody)
			if got := env.sink.last(t).ID; got != tc.want {
				t.Errorf("ID %q, want %q", got, tc.want)
			}
		})
	}
	env := newEnv(t, nil)
	hdr := bearer(testSecret)
	hdr["webhook-id"] = strings.Repeat("x", maxEventIDLen+1)
	expectJSON(t, env.do("POST", "/webhooks", body, hdr), 400, `{"error":"Invalid webhook payload"}`)
}

func TestWebhookDuplicate(t *testing.T) {
	env := newEnv(t, nil)
	body := webhookBody(testCID, "2026-01-01")
	expectJSON(t, env.do("POST", "/webhooks", body, bearer(testSecret)), 200, okBody)
	expectJSON(t, env.do("POST", "/webhooks", body, bearer(testSecret)), 200, okBody)
	if n := len(env.sink.all()); n != 1 {
		t.Errorf("%d events stored, want 1", n)
	}
	if got := counter(t, env.reg, "relay_git_sync_webhooks_total", "outcome", OutcomeDuplicate); got != 1 {
		t.Errorf("duplicate count %v", got)
	}
	if got := counter(t, env.reg, "relay_git_sync_webhooks_total", "outcome", OutcomeAccepted); got != 1 {
		t.Errorf("accepted count %v", got)
	}
}

// An accepted webhook is logged at debug only; a duplicate (a sender's
// retry) at INFO.
func TestWebhookLogLevels(t *testing.T) {
	logs := &syncBuffer{}
	env := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	body := webhookBody(testCID, "2026-01-01")
	expectJSON(t, env.do("POST", "/webhooks", body, bearer(testSecret)), 200, okBody)
	if strings.Contains(logs.String(), "webhook accepted") {
		t.Errorf("accepted webhook logged at INFO:\n%s", logs)
	}
	expectJSON(t, env.do("POST", "/webhooks", body, bearer(testSecret)), 200, okBody)
	if !strings.Contains(logs.String(), `"level":"INFO","msg":"webhook duplicate"`) {
		t.Errorf("duplicate not logged at INFO:\n%s", logs)
	}
	debug := newEnv(t, nil)
	expectJSON(t, debug.do("POST", "/webhooks", body, bearer(testSecret)), 200, okBody)
	if !strings.Contains(debug.logs.String(), `"level":"DEBUG","msg":"webhook accepted"`) {
		t.Errorf("accepted webhook not logged at debug:\n%s", debug.logs)
	}
}

func TestWebhookSinkError(t *testing.T) {
	env := newEnv(t, nil)
	env.sink.err = errors.New("badger: disk full")
	w := env.do("POST", "/webhooks", webhookBody(testCID, "2026-01-01"), bearer(testSecret))
	expectJSON(t, w, 500, `{"error":"Internal server error"}`)
	if got := counter(t, env.reg, "relay_git_sync_webhooks_total", "outcome", OutcomeError); got != 1 {
		t.Errorf("error count %v", got)
	}
	if !strings.Contains(env.logs.String(), "disk full") {
		t.Error("enqueue error not logged")
	}
}

// padded returns a valid webhook body of exactly n bytes (n >= ~120).
func padded(n int) []byte {
	b := webhookBody(testCID, "2026-01-01")
	return append(b[:len(b)-1:len(b)-1], append(bytes.Repeat([]byte(" "), n-len(b)), '}')...)
}

func TestWebhookBodyLimit(t *testing.T) {
	const limit = 4096
	const tooLarge = `{"error":"Payload too large"}`
	newLimited := func() *testEnv { return newEnv(t, func(c *Config) { c.MaxBodyBytes = limit }) }

	t.Run("exactly the limit", func(t *testing.T) {
		env := newLimited()
		expectJSON(t, env.do("POST", "/webhooks", padded(limit), bearer(testSecret)), 200, okBody)
	})
	t.Run("one byte over, with Content-Length", func(t *testing.T) {
		env := newLimited()
		w := env.do("POST", "/webhooks", padded(limit+1), bearer(testSecret))
		expectJSON(t, w, 413, tooLarge)
		if got := counter(t, env.reg, "relay_git_sync_webhooks_total", "outcome", OutcomeTooLarge); got != 1 {
			t.Errorf("too_large count %v", got)
		}
	})
	t.Run("over, without Content-Length", func(t *testing.T) {
		env := newLimited()
		body := &countingReader{r: bytes.NewReader(padded(10 * limit))}
		req := httptest.NewRequest("POST", "/webhooks", io.NopCloser(body))
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+testSecret)
		w := httptest.NewRecorder()
		env.h.ServeHTTP(w, req)
		expectJSON(t, w, 413, tooLarge)
		if body.n > limit+1+bytes.MinRead {
			t.Errorf("read %d bytes of an oversized body (limit %d)", body.n, limit)
		}
	})
	t.Run("lying Content-Length", func(t *testing.T) {
		env := newLimited()
		req := httptest.NewRequest("POST", "/webhooks", bytes.NewReader(padded(2*limit)))
		req.ContentLength = 100
		req.Header.Set("Authorization", "Bearer "+testSecret)
		w := httptest.NewRecorder()
		env.h.ServeHTTP(w, req)
		expectJSON(t, w, 413, tooLarge)
	})
	t.Run("default 1 MiB", func(t *testing.T) {
		env := newEnv(t, nil)
		expectJSON(t, env.do("POST", "/webhooks", padded(1<<20), bearer(testSecret)), 200, okBody)
		expectJSON(t, env.do("POST", "/webhooks", padded(1<<20+1), bearer(testSecret)), 413, tooLarge)
	})
	t.Run("signed, over the limit", func(t *testing.T) {
		env := newEnv(t, func(c *Config) { c.WebhookSecret, c.MaxBodyBytes = testWhsec, limit })
		body := padded(limit + 1)
		w := env.do("POST", "/webhooks", body, signed(t, testWhsec, "webhook-", "msg_1", testNow, body))
		expectJSON(t, w, 413, tooLarge)
	})
}

// TestWebhookOverRealHTTP sends chunked bodies through a real HTTP server:
// no Content-Length reaches the handler.
func TestWebhookOverRealHTTP(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	var knownLength atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != -1 {
			knownLength.Store(true)
		}
		env.h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	send := func(body []byte) (int, string) {
		pr, pw := io.Pipe()
		go func() {
			for off := 0; off < len(body); off += 1000 {
				end := min(off+1000, len(body))
				if _, err := pw.Write(body[off:end]); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", ts.URL+"/webhooks", pr)
		req.Header.Set("Authorization", "Bearer "+testSecret)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if knownLength.Load() {
			t.Error("the handler saw a Content-Length")
		}
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := send(padded(64 << 10)); code != 200 || body != okBody {
		t.Errorf("at the limit: %d %s", code, body)
	}
	if code, body := send(padded(200 << 10)); code != 413 || body != `{"error":"Payload too large"}` {
		t.Errorf("over the limit: %d %s", code, body)
	}
}

// TestNoSecretsInLogs runs every kind of webhook with debug logging on and
// checks that no secret, signature or body reaches the log.
func TestNoSecretsInLogs(t *testing.T) {
	marker := "BODY-MARKER-c0ffee"
	body := []byte(`{"eventId":"evt_1","payload":{"doc_id":"` + testCID + `","timestamp":"2026-01-01","metadata":{"m":"` + marker + `"}}}`)
	shared := newEnv(t, nil)
	shared.do("POST", "/webhooks", body, bearer(testSecret))
	shared.do("POST", "/webhooks", body, bearer(testSecret+"x"))
	shared.do("POST", "/webhooks", []byte(`{"payload":"`+marker+`"}`), bearer(testSecret))
	shared.do("GET", "/api/v1/folders", nil, bearer(testToken))
	shared.do("GET", "/api/v1/folders", nil, bearer(testToken+"x"))

	hmacEnv := newEnv(t, func(c *Config) { c.WebhookSecret = testWhsec })
	h := signed(t, testWhsec, "webhook-", "msg_1", testNow, body)
	hmacEnv.do("POST", "/webhooks", body, h)
	h["webhook-id"] = "msg_2"
	hmacEnv.do("POST", "/webhooks", body, h)

	sig := strings.TrimPrefix(h["webhook-signature"], "v1,")
	for name, logs := range map[string]string{"shared": shared.logs.String(), "hmac": hmacEnv.logs.String()} {
		if logs == "" {
			t.Fatalf("%s: nothing logged", name)
		}
		for _, secret := range []string{testSecret, testWhsec, strings.TrimPrefix(testWhsec, "whsec_"), testToken, sig, marker} {
			if strings.Contains(logs, secret) {
				t.Errorf("%s log contains %q:\n%s", name, secret, logs)
			}
		}
	}
}

func TestWebhookWrongMethod(t *testing.T) {
	env := newEnv(t, nil)
	w := env.do("GET", "/webhooks", nil, nil)
	expectJSON(t, w, 405, `{"error":"method not allowed"}`)
	if got := w.Header().Get("Allow"); got != "POST" {
		t.Errorf("Allow %q", got)
	}
}

func ExampleNew() {
	h, err := New(Config{
		WebhookSecret: "whs_example",
		Events:        &fakeSink{},
	})
	fmt.Println(h != nil, err)
	// Output: true <nil>
}
