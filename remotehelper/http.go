package remotehelper

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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// httpBackend reads the read API of `relay-git-sync serve` (server/openapi.yaml).
type httpBackend struct {
	base   string // no trailing slash
	token  string
	client *http.Client
}

func newHTTPBackend(base, token string) *httpBackend {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = httpBlobWorkers + 2
	t.ResponseHeaderTimeout = 5 * time.Minute
	t.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &httpBackend{base: base, token: token, client: &http.Client{Transport: t}}
}

// httpBlobWorkers: downloads are latency-bound, so more of them at once
// than there are cores.
const httpBlobWorkers = 8

func (b *httpBackend) blobWorkers() int { return httpBlobWorkers }

func (b *httpBackend) close() error {
	b.client.CloseIdleConnections()
	return nil
}

// get sends one authenticated GET and turns every answer but 200 into an
// error that says what to do.
func (b *httpBackend) get(ctx context.Context, path, what string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if b.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	req.Header.Set("User-Agent", "git-remote-relay")
	resp, err := b.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, kindErrorf(errUnreachable, "cannot reach %s (is `relay-git-sync serve` running there?): %v", b.base, unwrapURLError(err))
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	msg := errorMessage(resp)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, kindErrorf(errUnauthorized, "%s rejected the token: %s", b.base, msg)
	case http.StatusNotFound:
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
			return nil, kindErrorf(errUnreachable, "%s answered 404 for %s: is it a relay-git-sync server (`relay-git-sync serve`)?", b.base, what)
		}
		return nil, fmt.Errorf("%s: not found on %s", what, b.base)
	}
	return nil, fmt.Errorf("%s: %s answered %s: %s", what, b.base, resp.Status, msg)
}

// unwrapURLError drops net/http's `Get "URL": ` prefix (the URL is said
// already).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
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

func (b *httpBackend) getJSON(ctx context.Context, path, what string, dst any) error {
	resp, err := b.get(ctx, path, what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return kindErrorf(errUnreachable, "%s answered %s with %q, not JSON: is it a relay-git-sync server?", b.base, what, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return fmt.Errorf("reading %s from %s: %w", what, b.base, err)
	}
	return nil
}

func (b *httpBackend) historyConfig(ctx context.Context) (history.Config, error) {
	var cfg history.Config
	err := b.getJSON(ctx, "/api/v1/history-config", "history config", &cfg)
	return cfg, err
}

func (b *httpBackend) latest(ctx context.Context, f store.FolderID, _ uint64) (uint64, error) {
	var out struct {
		Folders []struct {
			Relay     string `json:"relay"`
			Folder    string `json:"folder"`
			LatestSeq uint64 `json:"latest_seq"`
		} `json:"folders"`
	}
	if err := b.getJSON(ctx, "/api/v1/folders", "the list of folders", &out); err != nil {
		return 0, err
	}
	for _, g := range out.Folders {
		if strings.EqualFold(g.Relay, f.Relay) && strings.EqualFold(g.Folder, f.Folder) {
			return g.LatestSeq, nil
		}
	}
	return 0, kindErrorf(errUnknownFolder, "%s does not follow folder %s (GET %s/api/v1/folders lists the folders it has)", b.base, f, b.base)
}

// Wire shapes of GET …/history.
type fileWire struct {
	Path  string `json:"path"`
	Blob  string `json:"blob"`
	Size  int64  `json:"size"`
	Kind  string `json:"kind"`
	DocID string `json:"doc_id"`
}

type historyLine struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Users   []string  `json:"users"`
	Changes []struct {
		Kind    string `json:"kind"`
		Path    string `json:"path"`
		OldPath string `json:"old_path"`
		DocID   string `json:"doc_id"`
	} `json:"changes"`
	Files   *[]fileWire `json:"files"`
	Set     []fileWire  `json:"set"`
	Deleted []string    `json:"deleted"`
	End     bool        `json:"end"`
	Count   uint64      `json:"count"`
	Error   string      `json:"error"`
}

var changeKinds = map[string]store.ChangeKind{
	store.ChangeAdded.String():    store.ChangeAdded,
	store.ChangeModified.String(): store.ChangeModified,
	store.ChangeRenamed.String():  store.ChangeRenamed,
	store.ChangeDeleted.String():  store.ChangeDeleted,
}

func toFiles(ws []fileWire) ([]store.File, error) {
	out := make([]store.File, len(ws))
	for i, w := range ws {
		id, err := store.ParseBlobID(w.Blob)
		if err != nil {
			return nil, fmt.Errorf("file %q: %w", w.Path, err)
		}
		out[i] = store.File{Path: w.Path, Blob: id, Size: w.Size, Kind: w.Kind, DocID: w.DocID}
	}
	return out, nil
}

func (b *httpBackend) walk(ctx context.Context, f store.FolderID, after uint64, fn func(*store.Snapshot) error) error {
	what := "history of folder " + f.String()
	p := "/api/v1/folders/" + url.PathEscape(f.Relay) + "/" + url.PathEscape(f.Folder) + "/history?after=" + strconv.FormatUint(after, 10)
	resp, err := b.get(ctx, p, what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var tree []store.File
	var n, last uint64
	for {
		var line historyLine
		if err := dec.Decode(&line); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading %s from %s after %d snapshots: %w", what, b.base, n, err)
		}
		switch {
		case line.Error != "":
			return fmt.Errorf("reading %s from %s after %d snapshots: the server failed: %s", what, b.base, n, line.Error)
		case line.End:
			if line.Count != n {
				return fmt.Errorf("reading %s from %s: got %d snapshots, the server sent %d", what, b.base, n, line.Count)
			}
			return nil
		case line.Seq <= max(last, after):
			return fmt.Errorf("reading %s from %s: snapshot %d after %d", what, b.base, line.Seq, max(last, after))
		}
		snap := &store.Snapshot{Folder: f, Seq: line.Seq, Time: line.Time.UTC(), Users: line.Users}
		for _, c := range line.Changes {
			k, ok := changeKinds[c.Kind]
			if !ok {
				return fmt.Errorf("reading %s from %s: snapshot %d: unknown change kind %q", what, b.base, line.Seq, c.Kind)
			}
			snap.Changes = append(snap.Changes, store.Change{Kind: k, Path: c.Path, OldPath: c.OldPath, DocID: c.DocID})
		}
		switch {
		case line.Files != nil:
			tree, err = toFiles(*line.Files)
			if err == nil {
				slices.SortFunc(tree, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
			}
		case n == 0:
			err = errors.New("the first snapshot has no tree")
		default:
			var set []store.File
			if set, err = toFiles(line.Set); err == nil {
				tree = applyDelta(tree, set, line.Deleted)
			}
		}
		if err != nil {
			return fmt.Errorf("reading %s from %s: snapshot %d: %w", what, b.base, line.Seq, err)
		}
		snap.Files = tree
		n++
		last = line.Seq
		if err := fn(snap); err != nil {
			return err
		}
	}
}

// applyDelta returns a new tree: prev (sorted by path) without the deleted
// paths, with set's files added or replaced.
func applyDelta(prev, set []store.File, deleted []string) []store.File {
	slices.SortFunc(set, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
	drop := make(map[string]bool, len(deleted))
	for _, p := range deleted {
		drop[p] = true
	}
	out := make([]store.File, 0, len(prev)+len(set))
	i, j := 0, 0
	for i < len(prev) || j < len(set) {
		switch {
		case j == len(set) || i < len(prev) && prev[i].Path < set[j].Path:
			if !drop[prev[i].Path] {
				out = append(out, prev[i])
			}
			i++
		case i == len(prev) || set[j].Path < prev[i].Path:
			out = append(out, set[j])
			j++
		default: // replaced
			out = append(out, set[j])
			i++
			j++
		}
	}
	return out
}

func (b *httpBackend) blob(ctx context.Context, id store.BlobID) ([]byte, error) {
	what := "blob " + id.String()
	resp, err := b.get(ctx, "/api/v1/blobs/"+id.String(), what)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var data []byte
	if n := resp.ContentLength; n > 0 && n < 1<<31 {
		data = make([]byte, 0, n)
	}
	buf := &appendWriter{b: data}
	if _, err := io.Copy(buf, resp.Body); err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", what, b.base, err)
	}
	if got := store.BlobIDOf(buf.b); got != id {
		return nil, fmt.Errorf("reading %s from %s: the content does not match its id (got %s, %d bytes)", what, b.base, got, len(buf.b))
	}
	return buf.b, nil
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
