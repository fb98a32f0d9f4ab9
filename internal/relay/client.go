package relay

// This file is the HTTP client for the Relay Server (a y-sweet fork): the
// two-step document fetch of §3.2 and the attachment download of §3.3.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Errors wrapped by FetchDoc and FetchFile. Test with errors.Is.
var (
	// ErrNotFound: the Relay Server (or the attachment store) has no such
	// document or attachment (HTTP 404). Never retried.
	ErrNotFound = errors.New("not found on the Relay Server")
	// ErrUnauthorized: the Relay Server refused the credentials (HTTP 401
	// or 403). Never retried.
	ErrUnauthorized = errors.New("not authorized by the Relay Server (check RELAY_SERVER_API_KEY)")
	// ErrHashMismatch: the downloaded attachment's SHA-256 differs from the
	// hash in the folder metadata. What FetchFile wrote must be discarded.
	ErrHashMismatch = errors.New("downloaded content does not match its SHA-256")
)

// Client defaults.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRetries   = 4
	DefaultMaxBodyBytes = 256 << 20
	DefaultBackoffBase  = 200 * time.Millisecond
	DefaultBackoffMax   = 5 * time.Second
	// maxRetryAfter caps a server's Retry-After hint.
	maxRetryAfter = 30 * time.Second
	// statusBodyMax is how much of an error body a StatusError keeps.
	statusBodyMax = 200
)

// ClientOptions configures NewClient. Only BaseURL is required.
type ClientOptions struct {
	// BaseURL is the Relay Server (RELAY_SERVER_URL), http or https, with an
	// optional path prefix. Requests never go over plain http when it is
	// https: http URLs the server hands back are upgraded, redirects to http
	// are refused.
	BaseURL string
	// APIKey is the server token (RELAY_SERVER_API_KEY), sent only as
	// "Authorization: Bearer"; optional (a server without auth).
	APIKey string
	// HTTPClient is used for every request (a shallow copy whose redirect
	// policy refuses https->http downgrades). nil: a client with dial, TLS
	// handshake and idle timeouts and a connection pool sized for parallel
	// fetches.
	HTTPClient *http.Client
	// Timeout bounds, per attempt, the wait for response headers and every
	// stall while reading a body (not the whole transfer, so large
	// attachments on slow links still complete). Default 30s.
	Timeout time.Duration
	// MaxRetries is the number of retries after the first attempt, for 5xx,
	// 408, 429, timeouts, network errors, bodies cut short and unparsable
	// token responses; never for other 4xx. 0 means DefaultMaxRetries; a
	// negative value disables retries.
	MaxRetries int
	// MaxBodyBytes caps a document or attachment. Default 256 MiB.
	MaxBodyBytes int64
	// BackoffBase and BackoffMax shape the retry delays: attempt n waits a
	// random duration in [d/2, d] with d = min(BackoffMax, BackoffBase*2^n)
	// (or the server's Retry-After, capped at 30s). Defaults 200ms and 5s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// UserAgent defaults to "relay-git-sync".
	UserAgent string
	// Logger receives retry warnings (without URLs that carry tokens).
	// nil: slog.Default().
	Logger *slog.Logger
	// FileToken issues the file tokens UploadFile needs (relay-server
	// accepts uploads only with one). nil: UploadFile tries the API key,
	// which relay-server refuses (see ErrNeedFileToken).
	FileToken FileTokenFunc
}

// Client talks to one Relay Server. It is safe for concurrent use.
type Client struct {
	base        *url.URL // no trailing slash in Path
	apiKey      string
	hc          *http.Client
	timeout     time.Duration
	maxRetries  int
	maxBody     int64
	backoffBase time.Duration
	backoffMax  time.Duration
	userAgent   string
	log         *slog.Logger
	fileToken   FileTokenFunc
	warnedUp    atomic.Bool
}

// StatusError is an unexpected HTTP status from the Relay Server or the
// attachment store (other than the 401/403/404 mapped to ErrUnauthorized and
// ErrNotFound).
type StatusError struct {
	Op   string // the request, e.g. "POST /doc/<id>/auth"; never a URL with a token
	Code int    // HTTP status code
	Body string // first 200 bytes of the (plain-text) error body, secrets removed
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d %s", e.Op, e.Code, http.StatusText(e.Code))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// NewClient validates the options and returns a client.
func NewClient(o ClientOptions) (*Client, error) {
	o.BaseURL = strings.TrimSpace(o.BaseURL)
	if o.BaseURL == "" {
		return nil, errors.New("relay client: the Relay Server URL is empty")
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("relay client: invalid Relay Server URL: %w", errors.Unwrap(err))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("relay client: Relay Server URL must start with http:// or https://, got scheme %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("relay client: Relay Server URL has no host")
	case u.User != nil:
		return nil, errors.New("relay client: Relay Server URL must not carry credentials; pass the API key separately")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("relay client: Relay Server URL must not have a query or fragment")
	case u.Opaque != "":
		return nil, errors.New("relay client: invalid Relay Server URL")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("relay client: Relay Server URL has an invalid port %q", p)
		}
	}
	if strings.ContainsAny(o.APIKey, "\r\n") {
		return nil, errors.New("relay client: the API key contains a line break")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		base:        u,
		apiKey:      o.APIKey,
		timeout:     o.Timeout,
		maxRetries:  o.MaxRetries,
		maxBody:     o.MaxBodyBytes,
		backoffBase: o.BackoffBase,
		backoffMax:  o.BackoffMax,
		userAgent:   o.UserAgent,
		log:         o.Logger,
		fileToken:   o.FileToken,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	if c.backoffBase <= 0 {
		c.backoffBase = DefaultBackoffBase
	}
	if c.backoffMax <= 0 {
		c.backoffMax = DefaultBackoffMax
	}
	if c.backoffMax < c.backoffBase {
		c.backoffMax = c.backoffBase
	}
	if c.userAgent == "" {
		c.userAgent = "relay-git-sync"
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	var hc http.Client
	if o.HTTPClient != nil {
		hc = *o.HTTPClient
	} else {
		hc = http.Client{Transport: defaultTransport()}
	}
	next := hc.CheckRedirect
	https := u.Scheme == "https"
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if https && req.URL.Scheme != "https" {
			return errRedirectDowngrade
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errTooManyRedirects
		}
		return nil
	}
	c.hc = &hc
	return c, nil
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          128,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// BaseURL returns the configured Relay Server URL (without trailing slash).
func (c *Client) BaseURL() string { return c.base.String() }

// clientToken is y-sweet's ClientToken (POST /doc/{id}/auth).
type clientToken struct {
	URL           string  `json:"url"`
	BaseURL       *string `json:"baseUrl"`
	DocID         string  `json:"docId"`
	Token         *string `json:"token"`
	Authorization string  `json:"authorization"`
}

// FetchDoc returns the full state of document docID of relay relayID as a
// Yjs v1 update (what GET {baseUrl}/as-update serves): it asks
// POST /doc/{relay-doc}/auth for a document token with the API key, then
// downloads the update with that token. Both ids must be UUIDs; they are
// used as given (the server's ids are case-sensitive). Each step is retried
// on its own (see ClientOptions.MaxRetries). The bytes are not decoded.
//
// Errors wrap ErrNotFound, ErrUnauthorized, a *StatusError or the context's
// error, and start with "fetching document <relay>-<doc>".
func (c *Client) FetchDoc(ctx context.Context, relayID, docID string) ([]byte, error) {
	if !IsUUID(relayID) || !IsUUID(docID) {
		return nil, fmt.Errorf("fetching document %.80q-%.80q: %w", relayID, docID, ErrInvalidUUID)
	}
	cid := CompoundID(relayID, docID)
	op := "fetching document " + cid
	sc := c.newScrubber()

	// Step 1: a document token.
	docBase, token, err := c.docToken(ctx, op, cid, "{}", sc)
	if err != nil {
		return nil, sc.wrap(op, err)
	}
	updURL := *docBase
	updURL.Path = strings.TrimRight(updURL.Path, "/") + "/as-update"
	updURL.RawPath = ""

	// Step 2: the update.
	var update []byte
	err = c.retry(ctx, op, sc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, updURL.String(), nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		update, err = c.doRead(ctx, req, "GET /d/"+cid+"/as-update", c.maxBody, sc)
		return err
	})
	if err != nil {
		return nil, sc.wrap(op, err)
	}
	return update, nil
}

// docToken is step 1 of the y-sweet document flow: POST /doc/{cid}/auth
// with the API key and reqBody (an AuthDocRequest), retried on its own. It
// returns the document's base URL (the server's baseUrl, or {base}/d/{cid})
// and the document token ("" when the server has no auth), which it adds to
// sc. op names the caller's operation in retry logs; errors are not yet
// wrapped with it.
func (c *Client) docToken(ctx context.Context, op, cid, reqBody string, sc *scrubber) (*url.URL, string, error) {
	authURL := c.endpoint("doc", cid, "auth")
	authURL.RawQuery = "z=" + cacheBuster()
	var tok clientToken
	err := c.retry(ctx, op, sc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, authURL.String(), strings.NewReader(reqBody))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		c.setAPIKey(req)
		body, err := c.doRead(ctx, req, "POST /doc/"+cid+"/auth", 1<<20, sc)
		if err != nil {
			return err
		}
		tok = clientToken{}
		if err := json.Unmarshal(body, &tok); err != nil {
			return retryable(fmt.Errorf("POST /doc/%s/auth: the Relay Server's answer is not a client token: %w", cid, err), 0)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if tok.DocID != "" && tok.DocID != cid {
		return nil, "", fmt.Errorf("the Relay Server issued a token for another document (%.80q)", tok.DocID)
	}
	token := ""
	if tok.Token != nil {
		token = *tok.Token
		if strings.ContainsAny(token, "\r\n") {
			return nil, "", errors.New("the Relay Server issued a malformed document token")
		}
		sc.add(token)
	}
	docBase := c.endpoint("d", cid)
	if tok.BaseURL != nil && *tok.BaseURL != "" {
		u, err := c.serverURL(*tok.BaseURL)
		if err != nil {
			return nil, "", fmt.Errorf("the Relay Server returned an unusable baseUrl: %w", err)
		}
		docBase = u
	}
	return docBase, token, nil
}

// FetchFile streams attachment fileID of relay relayID with SHA-256 hash
// (64 hex digits) into w and returns the number of bytes written: it asks
// GET /f/{relay-file}/download-url?hash= for a download URL with the API key,
// then downloads that URL without any Authorization header, hashing while it
// writes.
//
// A download cut short is resumed with a Range request (or, if the store
// ignores Range, the already written prefix is read again and checked), so w
// only ever receives each byte once, in order. If the content does not hash
// to hash the error wraps ErrHashMismatch: the caller must discard what w
// received. On any error w may hold a partial download. Errors start with
// "fetching file <relay>-<file>" and wrap ErrNotFound, ErrUnauthorized,
// ErrHashMismatch, a *StatusError or the context's error. The download URL
// (which may carry a token) never appears in errors or logs.
func (c *Client) FetchFile(ctx context.Context, relayID, fileID, hash string, w io.Writer) (int64, error) {
	if !IsUUID(relayID) || !IsUUID(fileID) {
		return 0, fmt.Errorf("fetching file %.80q-%.80q: %w", relayID, fileID, ErrInvalidUUID)
	}
	cid := CompoundID(relayID, fileID)
	op := "fetching file " + cid
	if !IsSHA256Hex(hash) {
		return 0, fmt.Errorf("%s: invalid SHA-256 %.80q", op, hash)
	}
	hash = strings.ToLower(hash)
	op += " (sha256 " + hash[:12] + "…)"
	sc := c.newScrubber()

	// Step 1: the download URL.
	u := c.endpoint("f", cid, "download-url")
	u.RawQuery = "hash=" + hash
	dl, err := c.grantURL(ctx, op, sc, http.MethodGet, u, "/f/"+cid+"/download-url", c.apiKey, "downloadUrl", "a download URL")
	if err != nil {
		return 0, sc.wrap(op, err)
	}
	sc.addURL(dl)
	target, err := c.serverURL(dl)
	if err != nil {
		return 0, sc.wrap(op, fmt.Errorf("the Relay Server returned an unusable download URL: %w", err))
	}

	// Step 2: the content.
	d := &download{c: c, url: target.String(), h: sha256.New(), w: w, sc: sc}
	err = c.retry(ctx, op, sc, d.attempt)
	if err != nil {
		return d.written, sc.wrap(op, err)
	}
	if got := hex.EncodeToString(d.h.Sum(nil)); got != hash {
		return d.written, sc.wrap(op, fmt.Errorf("%w (got sha256 %s after %d bytes)", ErrHashMismatch, got, d.written))
	}
	return d.written, nil
}

// download is the state of FetchFile's second step across attempts.
type download struct {
	c       *Client
	url     string
	h       hash.Hash // over the bytes written to w
	w       io.Writer
	written int64
	sc      *scrubber
}

const downloadOp = "GET download URL"

func (d *download) attempt(ctx context.Context) error {
	c := d.c
	actx, kick, stop := c.attemptContext(ctx)
	defer stop()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, d.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", c.userAgent)
	if d.written > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", d.written))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, actx, downloadOp, err)
	}
	defer resp.Body.Close()
	kick()
	body := &kickReader{r: resp.Body, kick: kick}

	switch {
	case resp.StatusCode == http.StatusPartialContent && d.written > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != d.written {
			return fmt.Errorf("%s: the store answered a resume request with the wrong range", downloadOp)
		}
	case resp.StatusCode == http.StatusOK:
		if d.written > 0 {
			// No Range support: read the prefix again and check it is the
			// same content before appending the rest.
			prefix := sha256.New()
			n, err := io.CopyN(prefix, body, d.written)
			if err != nil {
				return c.bodyError(ctx, actx, downloadOp, err, n)
			}
			if !bytes.Equal(prefix.Sum(nil), d.h.Sum(nil)) {
				return fmt.Errorf("%w (content changed between attempts)", ErrHashMismatch)
			}
		}
	default:
		return c.statusError(resp, downloadOp, d.sc)
	}
	total := resp.ContentLength // the whole attachment, if known
	if total >= 0 && resp.StatusCode == http.StatusPartialContent {
		total += d.written
	}
	if total > c.maxBody {
		return fmt.Errorf("%s: attachment is larger than the %d-byte limit", downloadOp, c.maxBody)
	}
	limit := c.maxBody - d.written
	buf := make([]byte, 64<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if int64(n) > limit {
				return fmt.Errorf("%s: attachment is larger than the %d-byte limit", downloadOp, c.maxBody)
			}
			limit -= int64(n)
			d.h.Write(buf[:n])
			wn, werr := d.w.Write(buf[:n])
			d.written += int64(wn)
			if werr == nil && wn < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return fmt.Errorf("writing the attachment: %w", werr)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return c.bodyError(ctx, actx, downloadOp, rerr, -1)
		}
	}
}

func contentRangeStart(v string) (int64, bool) {
	// "bytes 100-199/200"
	v, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	i := strings.IndexByte(v, '-')
	if i <= 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	return n, err == nil
}

// endpoint builds {base}/{parts...}. The parts are ids validated by the
// caller (UUIDs, compound ids), so no escaping is needed.
func (c *Client) endpoint(parts ...string) *url.URL {
	u := *c.base
	u.Path = c.base.Path + "/" + strings.Join(parts, "/")
	u.RawPath = ""
	u.RawQuery = ""
	return &u
}

// serverURL parses a URL the Relay Server handed back (baseUrl,
// downloadUrl): http or https with a host; http is upgraded to https when
// the configured base URL is https, so no token ever travels in clear.
func (c *Client) serverURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %.20q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	u.Fragment = ""
	if c.base.Scheme == "https" && u.Scheme == "http" {
		u.Scheme = "https"
		if u.Port() == "80" {
			u.Host = u.Hostname()
			if strings.Contains(u.Host, ":") {
				u.Host = "[" + u.Host + "]"
			}
		}
		if c.warnedUp.CompareAndSwap(false, true) {
			c.log.Warn("the Relay Server hands out http:// URLs although it is configured as https://; upgrading them to https (check the server's public URL setting)",
				"host", u.Host)
		}
	}
	return u, nil
}

func (c *Client) setAPIKey(req *http.Request) {
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
}

// grantURL asks the Relay Server for the URL a file's bytes are fetched
// from or sent to (GET …/download-url, POST …/upload-url): one request
// with token as its bearer (none when empty), answered {key: "<url>"},
// retried as the other requests are. what names the URL in errors.
func (c *Client) grantURL(ctx context.Context, op string, sc *scrubber, method string, u *url.URL, route, token, key, what string) (string, error) {
	var granted string
	err := c.retry(ctx, op, sc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		body, err := c.doRead(ctx, req, method+" "+route, 1<<20, sc)
		if err != nil {
			return err
		}
		var r map[string]any
		err = json.Unmarshal(body, &r)
		s, _ := r[key].(string)
		if err != nil || s == "" {
			if err == nil {
				err = errors.New(key + " missing")
			}
			return retryable(fmt.Errorf("%s %s: the Relay Server's answer is not %s: %w", method, route, what, err), 0)
		}
		granted = s
		return nil
	})
	return granted, err
}

// cacheBuster is the y-sweet SDK's "z" query parameter: 8 random [a-z0-9].
func cacheBuster() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

// Redirect policy errors (not retried).
var (
	errRedirectDowngrade = errors.New("refusing a redirect from https to plain http")
	errTooManyRedirects  = errors.New("stopped after 10 redirects")
)

// errAttemptTimeout is the cause of an attempt's context when the Timeout
// watchdog fired.
var errAttemptTimeout = errors.New("attempt timed out")

// attemptContext returns a context for one attempt that is cancelled when
// the Timeout passes without progress; kick restarts the watchdog.
func (c *Client) attemptContext(parent context.Context) (ctx context.Context, kick, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	t := time.AfterFunc(c.timeout, func() { cancel(errAttemptTimeout) })
	return ctx, func() { t.Reset(c.timeout) }, func() { t.Stop(); cancel(nil) }
}

type kickReader struct {
	r    io.Reader
	kick func()
}

func (k *kickReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	if n > 0 {
		k.kick()
	}
	return n, err
}

// doRead performs one attempt of a request whose body is read whole (at
// most limit bytes) and classifies failures.
func (c *Client) doRead(ctx context.Context, req *http.Request, op string, limit int64, sc *scrubber) ([]byte, error) {
	actx, kick, stop := c.attemptContext(ctx)
	defer stop()
	req = req.WithContext(actx)
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, actx, op, err)
	}
	defer resp.Body.Close()
	kick()
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(resp, op, sc)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%s: the answer (%d bytes) is larger than the %d-byte limit", op, resp.ContentLength, limit)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(&kickReader{r: resp.Body, kick: kick}, limit+1))
	if err != nil {
		return nil, c.bodyError(ctx, actx, op, err, n)
	}
	if n > limit {
		return nil, fmt.Errorf("%s: the answer is larger than the %d-byte limit", op, limit)
	}
	return buf.Bytes(), nil
}

// transportError classifies an error from http.Client.Do.
func (c *Client) transportError(parent, actx context.Context, op string, err error) error {
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("%s: %w", op, context.Cause(parent))
	}
	if errors.Is(context.Cause(actx), errAttemptTimeout) {
		return retryable(fmt.Errorf("%s: no answer within %s", op, c.timeout), 0)
	}
	err = redactURLError(err)
	if errors.Is(err, errRedirectDowngrade) || errors.Is(err, errTooManyRedirects) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return retryable(fmt.Errorf("%s: %w", op, err), 0)
}

// bodyError classifies an error while reading a body.
func (c *Client) bodyError(parent, actx context.Context, op string, err error, n int64) error {
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("%s: %w", op, context.Cause(parent))
	}
	if errors.Is(context.Cause(actx), errAttemptTimeout) {
		return retryable(fmt.Errorf("%s: the answer stalled for %s", op, c.timeout), 0)
	}
	err = redactURLError(err)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		if n >= 0 {
			return retryable(fmt.Errorf("%s: the answer was cut short after %d bytes: %w", op, n, err), 0)
		}
		return retryable(fmt.Errorf("%s: the answer was cut short: %w", op, err), 0)
	}
	return retryable(fmt.Errorf("%s: reading the answer: %w", op, err), 0)
}

// statusError maps a non-success status: 404 -> ErrNotFound,
// 401/403 -> ErrUnauthorized, 5xx/408/429 -> retryable *StatusError,
// others -> *StatusError.
func (c *Client) statusError(resp *http.Response, op string, sc *scrubber) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	body := sc.scrub(cleanBody(b))
	if len(body) > statusBodyMax {
		body = body[:statusBodyMax]
		for !utf8.ValidString(body) {
			body = body[:len(body)-1]
		}
	}
	se := &StatusError{Op: op, Code: resp.StatusCode, Body: body}
	switch code := resp.StatusCode; {
	case code == http.StatusNotFound:
		return fmt.Errorf("%w (%w)", ErrNotFound, se)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%w (%w)", ErrUnauthorized, se)
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return retryable(se, retryAfter(resp.Header.Get("Retry-After")))
	default:
		return se
	}
}

// cleanBody makes an error body printable: valid UTF-8, control characters
// as spaces, trimmed.
func cleanBody(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// retryableError marks a transient failure.
type retryableError struct {
	err   error
	after time.Duration // server hint, 0 = none
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

func retryable(err error, after time.Duration) error { return &retryableError{err, after} }

// retry runs fn until it succeeds, fails permanently, the retries are used
// up or ctx ends.
func (c *Client) retry(ctx context.Context, op string, sc *scrubber, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var re *retryableError
		if !errors.As(err, &re) {
			return err
		}
		if attempt >= c.maxRetries {
			if c.maxRetries == 0 {
				return re.err
			}
			return fmt.Errorf("giving up after %d attempts: %w", attempt+1, re.err)
		}
		delay := c.backoff(attempt)
		if re.after > 0 {
			delay = re.after
		}
		c.log.Warn("relay server request failed; retrying",
			"op", op, "attempt", attempt+1, "retry_in", delay.Round(time.Millisecond), "error", sc.scrub(re.err.Error()))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after %d attempts; last error: %s)", context.Cause(ctx), attempt+1, sc.scrub(re.err.Error()))
		case <-t.C:
		}
	}
}

// backoff returns the delay before retry number attempt+1: a random
// duration in [d/2, d], d = min(BackoffMax, BackoffBase*2^attempt).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.backoffMax
	if attempt < 30 {
		if e := c.backoffBase << attempt; e > 0 && e < d {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// redactURLError replaces the URL inside a *url.Error by its redacted form
// (no query, no user info): download URLs may carry a token.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	}
	return err
}

// RedactURL returns s without user info, query and fragment, for messages:
// a download URL may carry a token in its query.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery = ""
		u.ForceQuery = false
		return u.String() + "?[redacted]"
	}
	return u.String()
}

// scrubber removes secrets (the API key, document tokens, download-URL
// query values) from texts that end up in errors and logs.
type scrubber struct {
	secrets []string
}

func (c *Client) newScrubber() *scrubber {
	sc := &scrubber{}
	sc.add(c.apiKey)
	return sc
}

func (sc *scrubber) add(s string) {
	if len(s) >= 4 {
		sc.secrets = append(sc.secrets, s)
		if q := url.QueryEscape(s); q != s {
			sc.secrets = append(sc.secrets, q)
		}
	}
}

func (sc *scrubber) addURL(s string) {
	u, err := url.Parse(s)
	if err != nil {
		sc.add(s)
		return
	}
	if len(u.RawQuery) >= 12 {
		sc.add(u.RawQuery)
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) >= 12 {
				sc.add(v)
			}
		}
	}
	if p, ok := u.User.Password(); ok {
		sc.add(p)
	}
}

func (sc *scrubber) scrub(s string) string {
	for _, x := range sc.secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "[redacted]")
		}
	}
	return s
}

// wrap prefixes err with op and guarantees that its text holds no secret.
func (sc *scrubber) wrap(op string, err error) error {
	return &opError{msg: sc.scrub(op + ": " + err.Error()), err: err}
}

// opError carries a scrubbed message and the original error chain (for
// errors.Is/As).
type opError struct {
	msg string
	err error
}

func (e *opError) Error() string { return e.msg }
func (e *opError) Unwrap() error { return e.err }
