package readapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// TokenEnv is the environment variable readers take the read API token from
// (the server's RELAY_GIT_API_TOKEN).
const TokenEnv = "RELAY_GIT_TOKEN"

// MaxBlobSize is the largest blob the client reads: the store's own limit
// (store.PutBlob refuses larger ones), so a bigger answer is not a blob.
const MaxBlobSize = 1 << 30

// Timeouts of every reader: connecting, and waiting for an answer to start
// (a /history answer starts once the server has rebuilt its first tree).
const (
	DialTimeout           = 15 * time.Second
	ResponseHeaderTimeout = 2 * time.Minute
)

// Connections kept open per server: a remote helper downloads this many
// blobs at once (downloads are latency-bound).
const MaxConns = 16

var (
	// ErrUnauthorized means the server rejected the token (HTTP 401).
	ErrUnauthorized = errors.New("token rejected")

	// ErrUnreachable means no server answered at the URL (connection
	// refused, DNS failure, timeout, or something that is not the
	// relay-git-sync read API).
	ErrUnreachable = errors.New("server unreachable")
)

// Client reads the read API of one server. It is safe for concurrent use.
type Client struct {
	base      string // no trailing slash, no user info
	token     string
	userAgent string
	hc        *http.Client
	ownClient bool
}

// Option configures New.
type Option func(*Client)

// WithHTTPClient makes the client use hc (tests, custom TLS or proxies). Its
// CheckRedirect is replaced by the client's own (see New).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the read API at baseURL (http or https, optionally
// with a path prefix behind a reverse proxy), authenticating with
// "Authorization: Bearer token". It does not contact the server: the first
// call does, and its errors say what to do (ErrUnreachable: is serve
// running there; ErrUnauthorized: set RELAY_GIT_TOKEN; store.ErrNotFound:
// unknown folder, snapshot or blob).
//
// The token goes only to baseURL's origin: a redirect to another scheme,
// host or port is refused (net/http would forward the token to another port
// of the same host).
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: want http://host:port or https://host[/prefix]", RedactURL(baseURL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("invalid server URL %q: put the token in %s or a git credential helper, not in the URL", RedactURL(baseURL), TokenEnv)
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u.String(), token: token, userAgent: "relay-git-sync"}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = MaxConns
		t.ResponseHeaderTimeout = ResponseHeaderTimeout
		t.DialContext = (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext
		c.hc = &http.Client{Transport: t}
		c.ownClient = true
	} else {
		hc := *c.hc
		c.hc = &hc
	}
	c.hc.CheckRedirect = sameOrigin
	return c, nil
}

// Base is the server's base URL, without a trailing slash.
func (c *Client) Base() string { return c.base }

// Close releases the client's idle connections.
func (c *Client) Close() {
	if c.ownClient {
		c.hc.CloseIdleConnections()
	}
}

// redirectError is a redirect the client refused.
type redirectError struct{ from, to *url.URL }

func (e *redirectError) Error() string {
	return fmt.Sprintf("%s redirected to %s, another origin: refusing to send the read API token there (if that server is the right one, use its URL directly)",
		origin(e.from), RedactURL(e.to.String()))
}

// sameOrigin is the http.Client's CheckRedirect: same scheme, host and port
// as the first request, at most 10 redirects.
func sameOrigin(req *http.Request, via []*http.Request) error {
	if origin(req.URL) != origin(via[0].URL) {
		return &redirectError{from: via[0].URL, to: req.URL}
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// origin is scheme://host:port, with the scheme's default port explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// RedactURL returns raw with any user info (user:password@, or a token as
// user name) replaced by "xxxxx", for messages; it works on strings that do
// not parse as URLs too.
func RedactURL(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return raw
	}
	return raw[:i+3] + "xxxxx" + rest[at:]
}

// Folders lists the followed folders, sorted by relay then folder.
func (c *Client) Folders(ctx context.Context) ([]Folder, error) {
	var out Folders
	if err := c.getJSON(ctx, "/api/v1/folders", "the list of folders", &out); err != nil {
		return nil, err
	}
	for i, f := range out.Folders {
		if f.LatestTime != nil {
			t := f.LatestTime.UTC()
			out.Folders[i].LatestTime = &t
		}
	}
	return out.Folders, nil
}

func folderPath(f store.FolderID) string {
	return "/api/v1/folders/" + url.PathEscape(f.Relay) + "/" + url.PathEscape(f.Folder)
}

// Snapshots lists folder f's snapshots after afterSeq, without their trees.
func (c *Client) Snapshots(ctx context.Context, f store.FolderID, afterSeq uint64) ([]store.SnapshotInfo, error) {
	var out Snapshots
	what := "the snapshots of folder " + f.String()
	if err := c.getJSON(ctx, folderPath(f)+"/snapshots?after="+strconv.FormatUint(afterSeq, 10), what, &out); err != nil {
		return nil, err
	}
	infos := make([]store.SnapshotInfo, len(out.Snapshots))
	for i, w := range out.Snapshots {
		in, err := w.Store()
		if err != nil {
			return nil, fmt.Errorf("reading %s from %s: %w", what, c.base, err)
		}
		infos[i] = in
	}
	return infos, nil
}

// Snapshot returns snapshot seq of folder f (0: the latest) with its tree.
func (c *Client) Snapshot(ctx context.Context, f store.FolderID, seq uint64) (*store.Snapshot, error) {
	which, what := "latest", "the latest snapshot of folder "+f.String()
	if seq != 0 {
		which, what = strconv.FormatUint(seq, 10), fmt.Sprintf("snapshot %d of folder %s", seq, f)
	}
	var w Snapshot
	if err := c.getJSON(ctx, folderPath(f)+"/snapshots/"+which, what, &w); err != nil {
		return nil, err
	}
	s, err := w.snapshot(f, w.Files)
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", what, c.base, err)
	}
	return s, nil
}

// History calls fn with each snapshot of folder f after afterSeq, oldest
// first, each with its whole tree sorted by path (fn may keep it), from one
// GET …/history. An error from fn stops it and is returned as is.
func (c *Client) History(ctx context.Context, f store.FolderID, afterSeq uint64, fn func(*store.Snapshot) error) error {
	what := "the history of folder " + f.String()
	resp, err := c.get(ctx, folderPath(f)+"/history?after="+strconv.FormatUint(afterSeq, 10), what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := c.checkType(resp, what, HistoryContentType); err != nil {
		return err
	}
	jd := json.NewDecoder(resp.Body)
	d := historyDecoder{folder: f, after: afterSeq}
	for {
		var in historyInput
		err := jd.Decode(&in)
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("the answer ends after %d snapshots without its end line", d.n)
		}
		var s *store.Snapshot
		if err == nil {
			s, err = d.decode(&in)
		}
		switch {
		case errors.Is(err, errHistoryEnd):
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading %s from %s: %w", what, c.base, err)
		}
		if err := fn(s); err != nil {
			return err
		}
	}
}

// HistoryConfig returns the config the server synthesizes commits with.
func (c *Client) HistoryConfig(ctx context.Context) (history.Config, error) {
	var cfg history.Config
	err := c.getJSON(ctx, "/api/v1/history-config", "the history config", &cfg)
	return cfg, err
}

// Blob returns the content of blob id, checked against the id.
func (c *Client) Blob(ctx context.Context, id store.BlobID) ([]byte, error) {
	what := "blob " + id.String()
	resp, err := c.get(ctx, "/api/v1/blobs/"+id.String(), what)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxBlobSize {
		return nil, fmt.Errorf("reading %s from %s: %d bytes, over the %d-byte limit of a blob", what, c.base, resp.ContentLength, MaxBlobSize)
	}
	var data []byte
	if n := resp.ContentLength; n > 0 {
		data = make([]byte, 0, n)
	}
	buf := &appendWriter{b: data}
	if _, err := io.Copy(buf, io.LimitReader(resp.Body, MaxBlobSize+1)); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("reading %s from %s: %w", what, c.base, err)
	}
	if len(buf.b) > MaxBlobSize {
		return nil, fmt.Errorf("reading %s from %s: over the %d-byte limit of a blob", what, c.base, MaxBlobSize)
	}
	// Content is addressed by its git blob id: check it, so that a proxy or
	// a truncated answer cannot hand out wrong bytes.
	if got := store.BlobIDOf(buf.b); got != id {
		return nil, fmt.Errorf("reading %s from %s: the content does not match its id (got %s, %d bytes)", what, c.base, got, len(buf.b))
	}
	return buf.b, nil
}

// BackupContentType is the media type of GET /api/v1/backup.
const BackupContentType = "application/vnd.relay-git-sync.backup"

// Backup asks the server for a point-in-time backup of its whole store and
// returns the answer's body as it streams (store.VerifyBackup checks it,
// store.Restore loads it). The caller closes it. A backup the server could
// not finish ends in a read error, or without the end record VerifyBackup
// looks for.
func (c *Client) Backup(ctx context.Context) (io.ReadCloser, error) {
	const what = "a backup of the store"
	resp, err := c.get(ctx, "/api/v1/backup", what)
	if err != nil {
		return nil, err
	}
	if err := c.checkType(resp, what, BackupContentType); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp.Body, nil
}

// appendWriter appends to a preallocated slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func (c *Client) getJSON(ctx context.Context, path, what string, dst any) error {
	resp, err := c.get(ctx, path, what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := c.checkType(resp, what, "application/json"); err != nil {
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading %s from %s: %w", what, c.base, err)
	}
	return nil
}

// checkType tells the read API from whatever else may answer at the URL.
func (c *Client) checkType(resp *http.Response, what, want string) error {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != want {
		return fmt.Errorf("%w: %s answered %s for %s with %q, not %s: is %s a relay-git-sync server?",
			ErrUnreachable, c.base, resp.Status, what, resp.Header.Get("Content-Type"), want, c.base)
	}
	return nil
}

// get sends one authenticated GET and turns every answer but 200 into an
// error a user can act on.
func (c *Client) get(ctx context.Context, path, what string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return c.do(ctx, req, what)
}

// do sends req with the token and turns every answer but 200 into an
// error that says what to do.
func (c *Client) do(ctx context.Context, req *http.Request, what string) (*http.Response, error) {
	resp, err := c.send(ctx, req, what)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	msg := errorMessage(resp)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		hint := "set " + TokenEnv + " to the server's RELAY_GIT_API_TOKEN"
		if req.Method != http.MethodGet {
			hint = "set " + WriteTokenEnv + " to the server's write token"
		}
		if c.token == "" {
			hint = "no token given: " + hint
		}
		return nil, fmt.Errorf("%w by %s (%s): %s", ErrUnauthorized, c.base, msg, hint)
	case http.StatusForbidden:
		return nil, fmt.Errorf("%s: %w by %s: %s", what, ErrWriteRefused, c.base, msg)
	case http.StatusNotFound:
		if err := c.checkType(resp, what, "application/json"); err != nil {
			return nil, err // a 404 page of something else
		}
		return nil, fmt.Errorf("%s: %w on %s", what, store.ErrNotFound, c.base)
	}
	return nil, fmt.Errorf("%s: %s answered %s: %s", what, c.base, resp.Status, msg)
}

// send sends req with the token and the user agent; an error is one of
// the transport (unreachable, a refused redirect), any answer a response.
func (c *Client) send(ctx context.Context, req *http.Request, what string) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s: %w", what, ctxErr)
		}
		var re *redirectError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%s: %w", what, re)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without net/http's `Get "URL":` (the URL is said already)
		}
		return nil, fmt.Errorf("%w: cannot reach %s (is `relay-git-sync serve` running at %s?): %v", ErrUnreachable, c.base, c.base, err)
	}
	return resp, nil
}

// errorMessage extracts {"error": "…"} from an error answer, or a short
// excerpt of whatever else came back.
func errorMessage(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e Error
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		s = resp.Status
	}
	return s
}
