package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

func TestParseTimeString(t *testing.T) {
	utc := func(y, mo, d, h, mi, s, ns int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	}
	ok := []struct {
		in   string
		want time.Time
	}{
		{"2026-03-03T21:58:48.123456789+00:00", utc(2026, 3, 3, 21, 58, 48, 123456789)}, // chrono to_rfc3339
		{"2026-03-03T21:58:48+00:00", utc(2026, 3, 3, 21, 58, 48, 0)},
		{"2026-03-03T21:58:48Z", utc(2026, 3, 3, 21, 58, 48, 0)},
		{"2026-03-03t21:58:48z", utc(2026, 3, 3, 21, 58, 48, 0)},
		{"2026-03-03 21:58:48Z", utc(2026, 3, 3, 21, 58, 48, 0)},
		{"2026-03-03T21:58:48.1Z", utc(2026, 3, 3, 21, 58, 48, 100000000)},
		{"2026-03-03T21:58:48.123Z", utc(2026, 3, 3, 21, 58, 48, 123000000)},
		{"2026-03-03T21:58:48.123456Z", utc(2026, 3, 3, 21, 58, 48, 123456000)},
		{"2026-03-03T21:58:48,5Z", utc(2026, 3, 3, 21, 58, 48, 500000000)},
		{"2026-03-03T21:58:48.1234567891234Z", utc(2026, 3, 3, 21, 58, 48, 123456789)}, // truncated
		{"2026-03-03T21:58:48.999999999-00:30", utc(2026, 3, 3, 22, 28, 48, 999999999)},
		{"2026-03-03T23:30:00+02:00", utc(2026, 3, 3, 21, 30, 0, 0)},
		{"2026-03-03T23:30:00+0200", utc(2026, 3, 3, 21, 30, 0, 0)},
		{"2026-03-03T23:30:00+02", utc(2026, 3, 3, 21, 30, 0, 0)},
		{"2026-03-03T01:00:00-05:00", utc(2026, 3, 3, 6, 0, 0, 0)},
		{"2026-03-03T21:58", utc(2026, 3, 3, 21, 58, 0, 0)},
		{"2026-03-03T21:58:48", utc(2026, 3, 3, 21, 58, 48, 0)}, // naive = UTC
		{"2026-03-03", utc(2026, 3, 3, 0, 0, 0, 0)},
		{"2024-02-29", utc(2024, 2, 29, 0, 0, 0, 0)},
		{"0001-01-01T00:00:00Z", utc(1, 1, 1, 0, 0, 0, 0)},
	}
	for _, tc := range ok {
		got, err := parseTimeString(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("%q = %v, want %v", tc.in, got, tc.want)
		}
	}
	bad := []string{
		"", "1767225600", "2026", "2026-03", "2026-3-3", "2026-03-03T", "2026-03-03T21",
		"2026-03-03T21:58:48.", "2026-03-03T21:58:48.Z", "2026-03-03X21:58:48Z",
		"2026-13-01", "2026-00-10", "2026-02-29", "2026-04-31", "2026-03-00",
		"2026-03-03T24:00:00Z", "2026-03-03T21:60:00Z", "2026-03-03T21:58:60Z",
		"2026-03-03T21:58:48+24:00", "2026-03-03T21:58:48+02:60", "2026-03-03T21:58:48+2",
		"2026-03-03T21:58:48 Z", "2026-03-03T21:58:48Zjunk", "2026-03-03T21:58:48+02:00:00", "2026-03-03T21:58:48+02:",
		" 2026-03-03", "2026-03-03 ", "yesterday", "Tue, 03 Mar 2026 21:58:48 GMT",
		"２０２６-03-03",
	}
	for _, in := range bad {
		if got, err := parseTimeString(in); err == nil {
			t.Errorf("%q accepted as %v", in, got)
		}
	}
}

func TestParseTimestampJSON(t *testing.T) {
	cases := []struct {
		raw     string
		present bool
		want    time.Time
		bad     bool
	}{
		{raw: ``},
		{raw: `null`},
		{raw: `false`},
		{raw: `""`},
		{raw: `0`},
		{raw: `0.0`},
		{raw: `0e5`},
		{raw: `1767225600`, present: true, want: time.Unix(1767225600, 0)},
		{raw: `1767225600.123456789`, present: true, want: time.Unix(1767225600, 123456789)},
		{raw: `1767225600.1234567899`, present: true, want: time.Unix(1767225600, 123456789)},
		{raw: `-1.5`, present: true, want: time.Unix(-2, 5e8)},
		{raw: `1.7672256e9`, present: true, want: time.Unix(1767225600, 0)},
		{raw: `"2026-01-01"`, present: true, want: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{raw: `"2026-01-01\u005400:00:00Z"`, present: true, want: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{raw: `"1767225600"`, bad: true},
		{raw: `true`, bad: true},
		{raw: `[]`, bad: true},
		{raw: `{}`, bad: true},
		{raw: `253402300800`, bad: true},
		{raw: `-62135596801`, bad: true},
		{raw: `1e20`, bad: true},
		{raw: `99999999999999999999`, bad: true},
	}
	for _, tc := range cases {
		got, present, err := parseTimestamp(json.RawMessage(tc.raw))
		if tc.bad {
			if err == nil {
				t.Errorf("%s accepted as %v", tc.raw, got)
			}
			continue
		}
		if err != nil || present != tc.present || !got.Equal(tc.want) {
			t.Errorf("%s = %v, %v, %v; want %v, %v", tc.raw, got, present, err, tc.want, tc.present)
		}
		if present && got.Location() != time.UTC {
			t.Errorf("%s: not UTC", tc.raw)
		}
	}
}

// FuzzParseWebhook checks parseWebhook against decodeWebhookMaps, the
// parser it replaced (encoding/json into maps of json.RawMessage): the same
// fields, the same class of error and, for invalid payloads, the same
// message. The seeds run in every go test.
func FuzzParseWebhook(f *testing.F) {
	for _, body := range []string{
		`{"payload":{"doc_id":"` + testCID + `","timestamp":"2026-03-03T21:58:48.123456789+00:00"}}`,
		`{"timestamp":1767225600.5,"payload":{"doc_id":"` + testCID + `"}}`,
		`{"payload":{"doc_id":"` + testCID + `","timestamp":"2026-03-03T23:30:00+0200"}}`,
		`{"eventType":"document.updated","eventId":"evt_1","payload":{"doc_id":"` + testCID + `","user":"u-1","metadata":{"channel":"x","n":[1,{"a":"}"}]},"timestamp":"2026-03-03T21:58:48Z"}}`,
		` { "eventId" : 17 , "extra" : [ 1 , 2 ] , "payload" : { "doc_id" : "` + testCID + `" , "user" : { "id" : 1 } , "timestamp" : 1767225600 } , "more" : true } `,
		"{\n\t\"payload\":{\"doc_id\":\"" + testCID + "\",\"timestamp\":-1.5e3}\r\n}",
		`{"pay\u006coad":{"doc\u005fid":"` + testCID + `","user":"\u00e9\"\\","timestamp":"2026-01-01\u005400:00:00Z"},"eventId":"\ud800x"}`,
		`{"payload":{"doc_id":"x"},"payload":{"doc_id":"` + testCID + `","timestamp":0},"timestamp":"2020-01-01"}`,
		`{"payload":{"doc_id":"` + testCID + `","doc_id":null}}`,
		`{"payload":null}`, `{"payload":[]}`, `{"payload":"x"}`, `{"Payload":{"doc_id":"` + testCID + `"}}`,
		`{"payload":{"doc_id":""}}`, `{"payload":{"doc_id":17}}`, `{"payload":{}}`, `{}`, `null`, `[]`, `"x"`, `17`, ``,
		`{"payload":{"doc_id":"` + testCID + `","timestamp":true}}`, `{"payload":{"doc_id":"` + testCID + `","timestamp":[]}}`,
		`{"payload":{"doc_id":"` + testCID + `"},"timestamp":{}}`, `{"payload":{"doc_id":"` + testCID + `","timestamp":"yesterday"}}`,
		`{"payload":{"doc_id":"` + testCID + `"},"eventId":"` + strings.Repeat("e", 257) + `"}`,
		`{"payload":{"doc_id":"` + testCID + `"}} x`, `{"payload":{"doc_id":"` + testCID + `"}`, "{\"payload\":{\"doc_id\":\"\xff\"}}",
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseWebhook(body)
		want, wantErr := decodeWebhookMaps(body)
		switch {
		case errors.Is(wantErr, errNotJSON):
			if !errors.Is(err, errNotJSON) {
				t.Fatalf("%q: got %+v, %v; want an errNotJSON", body, p, err)
			}
			return
		case wantErr != nil:
			if err == nil || err.Error() != wantErr.Error() || !errors.Is(err, errInvalidPayload) {
				t.Fatalf("%q: got %+v, %v; want %v", body, p, err, wantErr)
			}
			return
		case err != nil:
			t.Fatalf("%q: %v; want %+v", body, err, want)
		}
		if p != want {
			t.Fatalf("%q:\n got %+v\nwant %+v", body, p, want)
		}
		if len(p.relay) != 36 || len(p.doc) != 36 {
			t.Fatalf("accepted ids %q %q", p.relay, p.doc)
		}
		if p.timeSource != "" && p.time.Location() != time.UTC {
			t.Fatalf("time not UTC: %v", p.time)
		}
	})
}

// decodeWebhookMaps is parseWebhook as it was written first, decoding the
// body with encoding/json: the reference FuzzParseWebhook compares with.
func decodeWebhookMaps(body []byte) (parsedWebhook, error) {
	var w parsedWebhook
	if !utf8.Valid(body) {
		return w, errNotJSON
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return w, fmt.Errorf("%w: %v", errNotJSON, err)
		}
		return w, invalid("body is not a JSON object")
	}
	rawPayload, ok := top["payload"]
	if !ok {
		return w, invalid("no payload")
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(rawPayload, &payload); err != nil || payload == nil {
		return w, invalid("payload is not an object")
	}
	var docID string
	if err := json.Unmarshal(payload["doc_id"], &docID); err != nil || docID == "" {
		return w, invalid("payload.doc_id missing or not a non-empty string")
	}
	var err error
	if w.relay, w.doc, err = relay.ParseCompoundID(docID); err != nil {
		return w, fmt.Errorf("%w: %v", errInvalidPayload, err)
	}
	if t, present, err := parseTimestamp(payload["timestamp"]); err != nil {
		return w, fmt.Errorf("%w: payload.timestamp: %v", errInvalidPayload, err)
	} else if present {
		w.time, w.timeSource = t, TimeFromPayload
	} else if t, present, err := parseTimestamp(top["timestamp"]); err != nil {
		return w, fmt.Errorf("%w: timestamp: %v", errInvalidPayload, err)
	} else if present {
		w.time, w.timeSource = t, TimeFromEnvelope
	}
	_ = json.Unmarshal(payload["user"], &w.user)
	_ = json.Unmarshal(top["eventType"], &w.eventType)
	if raw, ok := top["eventId"]; ok {
		var id string
		if json.Unmarshal(raw, &id) == nil {
			if len(id) > maxEventIDLen {
				return w, invalid("eventId longer than %d bytes", maxEventIDLen)
			}
			w.eventID = id
		}
	}
	return w, nil
}

// storeSink queues webhook events in a store and hands them to a
// scheduler, as serve does.
type storeSink struct {
	st    *store.Store
	sched *ingest.Scheduler
}

func (s storeSink) Enqueue(_ context.Context, ev Event) (bool, error) {
	q, dup, err := s.st.Enqueue(store.QueuedEvent{ID: ev.ID, Relay: ev.Relay, Doc: ev.Doc, Time: ev.Time, User: ev.User, Received: ev.Received})
	if err == nil && !dup {
		s.sched.Notify(q)
	}
	return dup, err
}

// Through the webhook handler, the queue and the scheduler, a webhook dated
// 2999 gives a snapshot dated when it was received (ingest.FutureTolerance).
func TestFutureTimestampThroughWebhook(t *testing.T) {
	srv := relaytest.NewServer(relaytest.Options{APIKey: "server-token"})
	t.Cleanup(srv.Close)
	client, err := relay.NewClient(relay.ClientOptions{BaseURL: srv.URL(), APIKey: "server-token", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	folder := srv.NewFolder(srv.NewRelay())
	doc, err := folder.AddMarkdown("/a.md", "a")
	if err != nil {
		t.Fatal(err)
	}
	fid := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	syncer := ingest.New(ingest.Config{Store: st, Relay: client})
	if _, err := syncer.SyncFolder(context.Background(), ingest.Request{Folder: fid}); err != nil {
		t.Fatal(err)
	}
	snaps := make(chan *store.Snapshot, 8)
	sched := ingest.NewScheduler(ingest.SchedulerConfig{Syncer: syncer, Store: st, Queue: st, Quiet: 20 * time.Millisecond,
		OnSnapshot: func(_ context.Context, s *store.Snapshot) { snaps <- s }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(200 * time.Millisecond) // the startup reconcile of one note is over

	received := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	env := newEnv(t, func(c *Config) {
		c.Events = storeSink{st, sched}
		c.Now = func() time.Time { return received }
	})
	if err := folder.EditMarkdown("/a.md", "from the future"); err != nil {
		t.Fatal(err)
	}
	w := env.do("POST", "/webhooks", webhookBody(relay.CompoundID(fid.Relay, doc), "2999-01-01T00:00:00Z"), bearer(testSecret))
	if w.Code != 200 {
		t.Fatalf("webhook: %d %s", w.Code, w.Body)
	}
	select {
	case snap := <-snaps:
		if !snap.Time.Equal(received) {
			t.Errorf("snapshot time %v, want the receive time %v", snap.Time, received)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no snapshot")
	}
}
