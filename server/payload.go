package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
)

// maxEventIDLen bounds dedupe keys (webhook-id header or body eventId);
// relay-server's are 25 bytes, Svix's about 30.
const maxEventIDLen = 256

// errInvalidPayload: the body is JSON but not a webhook we can use (400
// "Invalid webhook payload"). The wrapped detail is logged, not sent.
var errInvalidPayload = errors.New("invalid webhook payload")

// errNotJSON: the body is not UTF-8 JSON (400 "Invalid JSON payload").
var errNotJSON = errors.New("body is not UTF-8 JSON")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errInvalidPayload, fmt.Sprintf(format, a...))
}

// parsedWebhook is what parseWebhook extracts from a body (§1.2).
type parsedWebhook struct {
	eventID    string // body eventId ("" when absent or not a string)
	relay, doc string
	time       time.Time // zero when there is no timestamp
	timeSource string    // TimeFromPayload, TimeFromEnvelope or "" (none)
	user       string
	eventType  string
}

// parseWebhook parses a webhook body. Errors wrap errNotJSON when the body
// is not UTF-8 JSON, else errInvalidPayload.
//
// Accepted (shapes A, B and C of §1.2): a top-level object with an object
// "payload" holding a string "doc_id" (2 or 3 UUIDs joined by '-'); the
// time is payload.timestamp, else the top-level timestamp. As in the
// original, a falsy timestamp (null, "", 0, false) counts as absent; a
// missing timestamp is not an error (the caller uses the receive time).
// Keys are matched case-sensitively (a repeated key: the last one counts,
// as encoding/json does for a map); unknown keys are ignored.
//
// It runs on every webhook: json.Valid checks the whole body as
// json.Unmarshal would, then objectFields picks the few members wanted out
// of the valid text without decoding the rest (decoding the body into maps
// of json.RawMessage was most of the handler's CPU time).
func parseWebhook(body []byte) (parsedWebhook, error) {
	var w parsedWebhook
	if !utf8.Valid(body) || !json.Valid(body) {
		return w, errNotJSON
	}
	var top topFields
	if !objectFields(body, top.set) {
		return w, invalid("body is not a JSON object")
	}
	if top.payload == nil {
		return w, invalid("no payload")
	}
	var payload payloadFields
	if !objectFields(top.payload, payload.set) {
		return w, invalid("payload is not an object")
	}
	docID, ok := jsonString(payload.docID)
	if !ok || docID == "" {
		return w, invalid("payload.doc_id missing or not a non-empty string")
	}
	var err error
	if w.relay, w.doc, err = relay.ParseCompoundID(docID); err != nil {
		return w, fmt.Errorf("%w: %v", errInvalidPayload, err)
	}
	if t, present, err := parseTimestamp(payload.timestamp); err != nil {
		return w, fmt.Errorf("%w: payload.timestamp: %v", errInvalidPayload, err)
	} else if present {
		w.time, w.timeSource = t, TimeFromPayload
	} else if t, present, err := parseTimestamp(top.timestamp); err != nil {
		return w, fmt.Errorf("%w: timestamp: %v", errInvalidPayload, err)
	} else if present {
		w.time, w.timeSource = t, TimeFromEnvelope
	}
	// Optional fields: wrong types are ignored rather than refused.
	w.user, _ = jsonString(payload.user)
	w.eventType, _ = jsonString(top.eventType)
	if id, ok := jsonString(top.eventID); ok {
		if len(id) > maxEventIDLen {
			return w, invalid("eventId longer than %d bytes", maxEventIDLen)
		}
		w.eventID = id
	}
	return w, nil
}

// topFields and payloadFields are the members parseWebhook reads: each
// the raw JSON text of the value, nil when the key is absent.
type topFields struct{ payload, timestamp, eventType, eventID []byte }

func (f *topFields) set(key, v []byte) {
	switch string(key) {
	case "payload":
		f.payload = v
	case "timestamp":
		f.timestamp = v
	case "eventType":
		f.eventType = v
	case "eventId":
		f.eventID = v
	}
}

type payloadFields struct{ docID, timestamp, user []byte }

func (f *payloadFields) set(key, v []byte) {
	switch string(key) {
	case "doc_id":
		f.docID = v
	case "timestamp":
		f.timestamp = v
	case "user":
		f.user = v
	}
}

// objectFields calls set with each member of the JSON object v, in order,
// with its key decoded and its value's raw text. It returns false when v
// is not an object (null, an array, a string, …). v must be valid JSON
// (json.Valid): nothing else is checked.
func objectFields(v []byte, set func(key, value []byte)) bool {
	i := skipSpace(v, 0)
	if i == len(v) || v[i] != '{' {
		return false
	}
	i = skipSpace(v, i+1)
	if v[i] == '}' {
		return true
	}
	for {
		end := skipValue(v, i) // the key, a string
		key := v[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			k, _ := jsonString(v[i:end])
			key = []byte(k)
		}
		i = skipSpace(v, skipSpace(v, end)+1) // past the ':'
		end = skipValue(v, i)
		set(key, v[i:end])
		i = skipSpace(v, end)
		if v[i] == '}' {
			return true
		}
		i = skipSpace(v, i+1) // past the ','
	}
}

func skipSpace(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value starting at v[i].
func skipValue(v []byte, i int) int {
	depth := 0
	for ; i < len(v); i++ {
		switch v[i] {
		case '"':
			for i++; v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of a number or a literal
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i // the end of a number or a literal
			}
		}
	}
	return i
}

// jsonString decodes the raw text of a valid JSON value that is a string;
// ok is false for anything else (absent, null, a number, …).
func jsonString(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		// Valid JSON and UTF-8 already: without escapes the text is the
		// string.
		return string(raw[1 : len(raw)-1]), true
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// parseTimestamp decodes a JSON timestamp value: a string (see
// parseTimeString) or a number of Unix seconds. present is false for an
// absent or falsy value (no raw bytes, null, "", 0, false).
func parseTimestamp(raw json.RawMessage) (t time.Time, present bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return time.Time{}, false, nil
	}
	switch c := raw[0]; {
	case c == 'n' || c == 'f': // null, false
		return time.Time{}, false, nil
	case c == '"':
		s, _ := jsonString(raw)
		if s == "" {
			return time.Time{}, false, nil
		}
		t, err := parseTimeString(s)
		return t, err == nil, err
	case c == '-' || ('0' <= c && c <= '9'):
		t, zero, err := parseUnixSeconds(string(raw))
		if zero {
			return time.Time{}, false, nil
		}
		return t, err == nil, err
	}
	return time.Time{}, false, fmt.Errorf("not a string or a number: %.20s", raw)
}

// Unix seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const (
	minUnix = -62135596800
	maxUnix = 253402300799
)

// parseUnixSeconds parses a JSON number of (possibly fractional) Unix
// seconds. Plain decimals are parsed exactly to the nanosecond (further
// digits truncated); exponent forms go through float64. zero reports a
// value equal to 0 (falsy, treated as absent).
func parseUnixSeconds(num string) (t time.Time, zero bool, err error) {
	intPart, frac, plain := splitDecimal(num)
	if plain {
		neg := intPart[0] == '-'
		sec, err := strconv.ParseInt(intPart, 10, 64)
		if err != nil || sec < minUnix || sec > maxUnix {
			return time.Time{}, false, fmt.Errorf("unix time %s out of range", num)
		}
		var ns int64
		for i := 0; i < 9; i++ {
			ns *= 10
			if i < len(frac) {
				ns += int64(frac[i] - '0')
			}
		}
		if neg {
			ns = -ns
		}
		if sec == 0 && ns == 0 {
			return time.Time{}, true, nil
		}
		return time.Unix(sec, ns).UTC(), false, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || f < minUnix || f > maxUnix {
		return time.Time{}, false, fmt.Errorf("unix time %.40s out of range or not a number", num)
	}
	if f == 0 {
		return time.Time{}, true, nil
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), false, nil
}

// splitDecimal splits "-123.456" into "-123" and "456"; plain is false
// when s has an exponent or is not a decimal number.
func splitDecimal(s string) (intPart, frac string, plain bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == start {
		return "", "", false
	}
	intPart = s[:i]
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		if j == i+1 {
			return "", "", false
		}
		frac, i = s[i+1:j], j
	}
	return intPart, frac, i == len(s)
}

// parseTimeString parses an ISO-8601 / RFC 3339 date-time, as the
// original's python-dateutil isoparse does for the forms senders use:
//
//	YYYY-MM-DD                                   (midnight UTC)
//	YYYY-MM-DD[T| ]hh:mm[:ss[(.|,)fraction]][zone]
//
// with any number of fraction digits (beyond nanoseconds truncated) and
// zone Z, z, ±hh:mm, ±hhmm or ±hh; no zone means UTC. Numeric strings
// such as "1767225600" are refused, as in the original.
func parseTimeString(s string) (time.Time, error) {
	p := tsParser{s: s, ok: true}
	year := p.digits(4)
	p.expect('-')
	month := p.digits(2)
	p.expect('-')
	day := p.digits(2)
	var hour, minute, sec, nsec int
	loc := time.UTC
	if p.ok && !p.done() {
		if c := p.next(); c != 'T' && c != 't' && c != ' ' {
			p.ok = false
		}
		hour = p.digits(2)
		p.expect(':')
		minute = p.digits(2)
		if p.peek() == ':' {
			p.next()
			sec = p.digits(2)
			if c := p.peek(); c == '.' || c == ',' {
				p.next()
				nsec = p.fraction()
			}
		}
		if p.ok && !p.done() {
			switch c := p.next(); c {
			case 'Z', 'z':
			case '+', '-':
				oh := p.digits(2)
				om := 0
				if p.peek() == ':' {
					p.next()
					om = p.digits(2)
				} else if !p.done() {
					om = p.digits(2)
				}
				if oh > 23 || om > 59 {
					p.ok = false
				}
				off := oh*3600 + om*60
				if c == '-' {
					off = -off
				}
				if off != 0 {
					loc = time.FixedZone("", off)
				}
			default:
				p.ok = false
			}
		}
	}
	if !p.ok || !p.done() {
		return time.Time{}, fmt.Errorf("%q is not an ISO-8601 date-time", truncate(s, 64))
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, fmt.Errorf("%q is not a valid date-time", truncate(s, 64))
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc).UTC(), nil
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// tsParser is a tiny cursor over a timestamp string; ok turns false at the
// first unexpected byte and stays false.
type tsParser struct {
	s  string
	i  int
	ok bool
}

func (p *tsParser) done() bool { return p.i >= len(p.s) }

func (p *tsParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *tsParser) next() byte {
	c := p.peek()
	p.i++
	return c
}

func (p *tsParser) expect(c byte) {
	if p.next() != c {
		p.ok = false
	}
}

func (p *tsParser) digits(n int) int {
	v := 0
	for k := 0; k < n; k++ {
		c := p.next()
		if c < '0' || c > '9' {
			p.ok = false
			return 0
		}
		v = v*10 + int(c-'0')
	}
	return v
}

// fraction reads one or more digits as nanoseconds (truncating).
func (p *tsParser) fraction() int {
	ns, n := 0, 0
	for !p.done() && '0' <= p.peek() && p.peek() <= '9' {
		c := p.next()
		if n < 9 {
			ns = ns*10 + int(c-'0')
		}
		n++
	}
	if n == 0 {
		p.ok = false
	}
	for ; n < 9; n++ {
		ns *= 10
	}
	return ns
}

// truncate shortens s for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
