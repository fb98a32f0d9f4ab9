package source

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

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// TokenEnv is the environment variable the mount and the remote helper read
// the read API token from (the server's RELAY_GIT_API_TOKEN).
const TokenEnv = "RELAY_GIT_TOKEN"

// HTTPOption configures NewHTTP.
type HTTPOption func(*httpSource)

// WithHTTPClient makes the source use c (tests, custom TLS or proxies).
func WithHTTPClient(c *http.Client) HTTPOption {
	return func(s *httpSource) { s.client = c }
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) HTTPOption {
	return func(s *httpSource) { s.userAgent = ua }
}

// NewHTTP returns a Source reading the read API of `relay-git-sync serve` at
// baseURL (http or https, optionally with a path prefix behind a reverse
// proxy), authenticating with "Authorization: Bearer token". It does not
// contact the server: the first call does, and its errors say what to do
// (ErrUnreachable: is serve running there; ErrUnauthorized: set
// RELAY_GIT_TOKEN; ErrNotFound: unknown folder, snapshot or blob).
func NewHTTP(baseURL, token string, opts ...HTTPOption) (Source, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: want http://host:port or https://host[/prefix]", baseURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("invalid server URL %q: put the token in %s, not in the URL", u.Redacted(), TokenEnv)
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	s := &httpSource{base: u.String(), token: token, userAgent: "relay-git-sync"}
	for _, o := range opts {
		o(s)
	}
	if s.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		t.ResponseHeaderTimeout = time.Minute
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		s.client = &http.Client{Transport: t}
		s.ownClient = true
	}
	return s, nil
}

type httpSource struct {
	base      string // no trailing slash
	token     string
	userAgent string
	client    *http.Client
	ownClient bool
}

// Wire shapes of the read API (server/openapi.yaml).

type folderWire struct {
	Relay      string     `json:"relay"`
	Folder     string     `json:"folder"`
	LatestSeq  uint64     `json:"latest_seq"`
	LatestTime *time.Time `json:"latest_time"`
}

type changeWire struct {
	Kind    string `json:"kind"`
	Path    string `json:"path"`
	OldPath string `json:"old_path"`
	DocID   string `json:"doc_id"`
}

type infoWire struct {
	Seq      uint64       `json:"seq"`
	Time     time.Time    `json:"time"`
	Users    []string     `json:"users"`
	Changes  []changeWire `json:"changes"`
	NumFiles int          `json:"num_files"`
}

type fileWire struct {
	Path  string `json:"path"`
	Blob  string `json:"blob"`
	Size  int64  `json:"size"`
	Kind  string `json:"kind"`
	DocID string `json:"doc_id"`
}

type snapshotWire struct {
	infoWire
	Files []fileWire `json:"files"`
}

var changeKinds = map[string]store.ChangeKind{
	store.ChangeAdded.String():    store.ChangeAdded,
	store.ChangeModified.String(): store.ChangeModified,
	store.ChangeRenamed.String():  store.ChangeRenamed,
	store.ChangeDeleted.String():  store.ChangeDeleted,
}

func (w infoWire) info() (store.SnapshotInfo, error) {
	in := store.SnapshotInfo{Seq: w.Seq, Time: w.Time.UTC(), Users: w.Users, NumFiles: w.NumFiles}
	if w.Seq == 0 {
		return in, errors.New("snapshot without a sequence number")
	}
	for _, c := range w.Changes {
		k, ok := changeKinds[c.Kind]
		if !ok {
			return in, fmt.Errorf("snapshot %d: unknown change kind %q", w.Seq, c.Kind)
		}
		in.Changes = append(in.Changes, store.Change{Kind: k, Path: c.Path, OldPath: c.OldPath, DocID: c.DocID})
	}
	return in, nil
}

func (s *httpSource) Folders(ctx context.Context) ([]Folder, error) {
	var out struct {
		Folders []folderWire `json:"folders"`
	}
	if err := s.getJSON(ctx, "/api/v1/folders", "listing folders", &out); err != nil {
		return nil, err
	}
	list := make([]Folder, len(out.Folders))
	for i, f := range out.Folders {
		list[i] = Folder{Relay: f.Relay, Folder: f.Folder, LatestSeq: f.LatestSeq}
		if f.LatestTime != nil {
			list[i].LatestTime = f.LatestTime.UTC()
		}
	}
	return list, nil
}

func folderPath(f store.FolderID) string {
	return "/api/v1/folders/" + url.PathEscape(f.Relay) + "/" + url.PathEscape(f.Folder)
}

func (s *httpSource) Snapshots(ctx context.Context, f store.FolderID, afterSeq uint64) ([]store.SnapshotInfo, error) {
	var out struct {
		Snapshots []infoWire `json:"snapshots"`
	}
	p := folderPath(f) + "/snapshots"
	if afterSeq > 0 {
		p += "?after=" + strconv.FormatUint(afterSeq, 10)
	}
	if err := s.getJSON(ctx, p, "folder "+f.String(), &out); err != nil {
		return nil, err
	}
	infos := make([]store.SnapshotInfo, len(out.Snapshots))
	for i, w := range out.Snapshots {
		in, err := w.info()
		if err != nil {
			return nil, fmt.Errorf("folder %s from %s: %w", f, s.base, err)
		}
		infos[i] = in
	}
	return infos, nil
}

func (s *httpSource) Snapshot(ctx context.Context, f store.FolderID, seq uint64) (*store.Snapshot, error) {
	which, what := "latest", fmt.Sprintf("latest snapshot of folder %s", f)
	if seq != 0 {
		which, what = strconv.FormatUint(seq, 10), fmt.Sprintf("snapshot %d of folder %s", seq, f)
	}
	var w snapshotWire
	if err := s.getJSON(ctx, folderPath(f)+"/snapshots/"+which, what, &w); err != nil {
		return nil, err
	}
	in, err := w.info()
	if err != nil {
		return nil, fmt.Errorf("%s from %s: %w", what, s.base, err)
	}
	snap := &store.Snapshot{Folder: f, Seq: in.Seq, Time: in.Time, Users: in.Users, Changes: in.Changes,
		Files: make([]store.File, len(w.Files))}
	for i, fw := range w.Files {
		id, err := store.ParseBlobID(fw.Blob)
		if err != nil {
			return nil, fmt.Errorf("%s from %s: file %q: %w", what, s.base, fw.Path, err)
		}
		snap.Files[i] = store.File{Path: fw.Path, Blob: id, Size: fw.Size, DocID: fw.DocID, Kind: fw.Kind}
	}
	return snap, nil
}

func (s *httpSource) Blob(ctx context.Context, id store.BlobID) ([]byte, error) {
	what := "blob " + id.String()
	resp, err := s.get(ctx, "/api/v1/blobs/"+id.String(), what)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var data []byte
	if n := resp.ContentLength; n > 0 && n < 1<<34 {
		data = make([]byte, 0, n)
	}
	buf := &byteBuf{b: data}
	if _, err := io.Copy(buf, resp.Body); err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", what, s.base, err)
	}
	// Content is addressed by its git blob id: check it, so a proxy or a
	// truncated answer cannot hand out wrong bytes.
	if got := store.BlobIDOf(buf.b); got != id {
		return nil, fmt.Errorf("reading %s from %s: content does not match its id (got %s, %d bytes)", what, s.base, got, len(buf.b))
	}
	return buf.b, nil
}

// byteBuf is a minimal io.Writer that appends to a preallocated slice.
type byteBuf struct{ b []byte }

func (w *byteBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func (s *httpSource) Close() error {
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
	return nil
}

func (s *httpSource) getJSON(ctx context.Context, path, what string, dst any) error {
	resp, err := s.get(ctx, path, what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("%w: %s answered %s for %s with %q, not JSON: is %s a relay-git-sync server?",
			ErrUnreachable, s.base, resp.Status, what, resp.Header.Get("Content-Type"), s.base)
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return fmt.Errorf("reading %s from %s: %w", what, s.base, err)
	}
	return nil
}

// get sends one authenticated GET and turns every answer but 200 into an
// error a user can act on.
func (s *httpSource) get(ctx context.Context, path, what string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	req.Header.Set("User-Agent", s.userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s: %w", what, ctxErr)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the message already
		}
		return nil, fmt.Errorf("%w: cannot reach %s (is `relay-git-sync serve` running at %s?): %v", ErrUnreachable, s.base, s.base, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	msg := errorMessage(resp)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		hint := "set " + TokenEnv + " to the server's RELAY_GIT_API_TOKEN"
		if s.token == "" {
			hint = "no token given: " + hint
		}
		return nil, fmt.Errorf("%w by %s (%s): %s", ErrUnauthorized, s.base, msg, hint)
	case http.StatusNotFound:
		if strings.HasSuffix(path, "/snapshots") || strings.Contains(path, "/snapshots?") {
			// Only an unknown folder makes the listing 404.
			return nil, fmt.Errorf("%s: %w on %s (is it followed there? GET %s/api/v1/folders lists the folders)", what, store.ErrNotFound, s.base, s.base)
		}
		return nil, fmt.Errorf("%s: %w on %s", what, store.ErrNotFound, s.base)
	}
	return nil, fmt.Errorf("%s: %s answered %s: %s", what, s.base, resp.Status, msg)
}

// errorMessage extracts {"error": "…"} from an error answer, or a short
// excerpt of whatever else came back.
func errorMessage(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error string `json:"error"`
	}
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
