package relaytest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

const key = "server-token-abcdef0123456789"

func newServer(t *testing.T, o relaytest.Options) *relaytest.Server {
	t.Helper()
	s := relaytest.NewServer(o)
	t.Cleanup(s.Close)
	return s
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func idOf(t *testing.T, f *relaytest.Folder, path string) string {
	t.Helper()
	id := f.EntryID(path)
	if id == "" {
		t.Fatalf("no entry %q", path)
	}
	return id
}

// folderDoc decodes the folder document as a client would see it.
func folderDoc(t *testing.T, s *relaytest.Server, f *relaytest.Folder) *yjs.Doc {
	t.Helper()
	upd, err := s.DocUpdate(f.RelayID(), f.ID())
	if err != nil {
		t.Fatal(err)
	}
	d := yjs.NewDoc()
	if err := d.ApplyUpdate(upd); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFolderRenameMoveDelete(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key})
	r := s.NewRelay()
	f := s.NewFolder(r)
	if !relay.IsUUID(r) || !relay.IsUUID(f.ID()) || f.RelayID() != r {
		t.Fatalf("ids %q %q", r, f.ID())
	}
	md, err := f.AddMarkdown("/a/x.md", "x")
	if err != nil {
		t.Fatal(err)
	}
	png, err := f.AddFile("/a/b/y.png", "image", "image/png", []byte("png"))
	if err != nil {
		t.Fatal(err)
	}
	cv, err := f.AddCanvas("/top.canvas", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	aID, bID := idOf(t, f, "/a"), idOf(t, f, "/a/b")
	if got := keys(f.Entries()); !reflect.DeepEqual(got, []string{"/a", "/a/b", "/a/b/y.png", "/a/x.md", "/top.canvas"}) {
		t.Fatalf("keys = %v", got)
	}
	e, _ := f.Entry("/a/b/y.png")
	em := e.(map[string]any)
	if em["type"] != "image" || em["mimetype"] != "image/png" || em["hash"] != hex.EncodeToString(sha256Sum([]byte("png"))) ||
		em["version"] != float64(0) || em["id"] != png {
		t.Fatalf("file entry %v", em)
	}
	if _, ok := em["synctime"].(float64); !ok {
		t.Fatalf("synctime %T", em["synctime"])
	}
	if e, _ := f.Entry("/a/x.md"); !reflect.DeepEqual(e, map[string]any{"id": md, "type": "markdown", "version": float64(0)}) {
		t.Fatalf("markdown entry %v", e)
	}
	if e, _ := f.Entry("/top.canvas"); !reflect.DeepEqual(e, map[string]any{"id": cv, "type": "canvas", "version": float64(0)}) {
		t.Fatalf("canvas entry %v", e)
	}

	// Rename a file: old key gone, new key with the same entry.
	if err := f.Rename("/a/x.md", "/a/z.md"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Entry("/a/x.md"); ok || f.EntryID("/a/z.md") != md {
		t.Fatalf("after rename: %v", keys(f.Entries()))
	}
	// Move a folder: every child moves, ids kept.
	if err := f.Rename("/a", "/c/d"); err != nil {
		t.Fatal(err)
	}
	want := []string{"/c", "/c/d", "/c/d/b", "/c/d/b/y.png", "/c/d/z.md", "/top.canvas"}
	if got := keys(f.Entries()); !reflect.DeepEqual(got, want) {
		t.Fatalf("after move: %v, want %v", got, want)
	}
	if f.EntryID("/c/d") != aID || f.EntryID("/c/d/b") != bID || f.EntryID("/c/d/b/y.png") != png || f.EntryID("/c/d/z.md") != md {
		t.Fatal("ids changed by the move")
	}
	// The legacy docs map follows markdown entries.
	d := folderDoc(t, s, f)
	if legacy := d.GetMap("docs").ToJSON(); !reflect.DeepEqual(legacy, map[string]any{"/c/d/z.md": md}) {
		t.Fatalf("legacy docs = %v", legacy)
	}
	// What a client decodes from the folder doc parses cleanly.
	meta, _ := d.GetMap(relay.FileMetaKey).ToJSON().(map[string]any)
	entries, problems := relay.ParseFileMeta(meta)
	if len(entries) != 6 || len(problems) != 0 {
		t.Fatalf("entries %v problems %v", entries, problems)
	}

	// Errors.
	if err := f.Rename("/nope", "/x"); err == nil {
		t.Error("rename of a missing entry")
	}
	if err := f.Rename("/c/d/z.md", "/top.canvas"); err == nil {
		t.Error("rename onto an existing entry")
	}
	if err := f.Rename("/c", "/c/e"); err == nil {
		t.Error("move into itself")
	}
	if _, err := f.AddMarkdown("/top.canvas", ""); err == nil {
		t.Error("add over an existing entry")
	}
	if _, err := f.AddMarkdown("no-slash.md", ""); err == nil {
		t.Error("path without leading slash")
	}
	if _, err := f.AddMarkdown("/top.canvas/inner.md", ""); err == nil {
		t.Error("file below a file")
	}

	// Delete a folder: children go too; documents stay on the server.
	if err := f.Delete("/c"); err != nil {
		t.Fatal(err)
	}
	if got := keys(f.Entries()); !reflect.DeepEqual(got, []string{"/top.canvas"}) {
		t.Fatalf("after delete: %v", got)
	}
	if legacy := folderDoc(t, s, f).GetMap("docs").ToJSON(); len(legacy.(map[string]any)) != 0 {
		t.Fatalf("legacy docs after delete = %v", legacy)
	}
	if _, err := s.DocUpdate(r, md); err != nil {
		t.Errorf("document deleted from the server: %v", err)
	}
	if err := f.Delete("/c"); err == nil {
		t.Error("double delete")
	}

	// Raw entries for hostile tests.
	for k, v := range map[string]any{"/../../etc/passwd": map[string]any{"id": md, "type": "markdown", "version": 0}, "/n": "not an object", "/nil": nil} {
		if err := f.SetRawEntry(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := f.Entry("/../../etc/passwd"); !ok {
		t.Fatal("raw entry missing")
	}
	if err := f.Delete("/n"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteRawEntry("/nil"); err != nil {
		t.Fatal(err)
	}
	if got := keys(f.Entries()); !reflect.DeepEqual(got, []string{"/../../etc/passwd", "/top.canvas"}) {
		t.Fatalf("keys: %v", got)
	}
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestEditMarkdownIsMinimal(t *testing.T) {
	s := newServer(t, relaytest.Options{})
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/a.md", "hello 😀 world")
	steps := []string{"hello 😀 brave world", "hello 😃 brave world", "😃", "", "a\r\nb", "a\r\nb\n"}
	prev, _ := s.DocUpdate(r, id)
	for _, want := range steps {
		if err := f.EditMarkdown("/a.md", want); err != nil {
			t.Fatal(err)
		}
		upd, _ := s.DocUpdate(r, id)
		d := yjs.NewDoc()
		if err := d.ApplyUpdate(upd); err != nil {
			t.Fatal(err)
		}
		if got := d.GetText("contents").String(); got != want {
			t.Fatalf("text %q, want %q", got, want)
		}
		// History only grows: the previous state is contained in the new one.
		old := yjs.NewDoc()
		old.ApplyUpdate(prev)
		for c, clock := range old.StateVector() {
			if d.StateVector()[c] < clock {
				t.Fatal("state vector went backwards")
			}
		}
		prev = upd
	}
	// One-character insert in a long text costs one struct, not a rewrite.
	long := strings.Repeat("lorem ipsum ", 1000)
	id2, _ := f.AddMarkdown("/long.md", long)
	before, _ := s.DocUpdate(r, id2)
	f.EditMarkdown("/long.md", long[:6000]+"X"+long[6000:])
	after, _ := s.DocUpdate(r, id2)
	if len(after)-len(before) > 64 {
		t.Errorf("update grew by %d bytes for a one-character edit", len(after)-len(before))
	}
	if err := f.EditMarkdown("/missing.md", "x"); err == nil {
		t.Error("edit of a missing entry")
	}
}

func TestCanvasDocument(t *testing.T) {
	s := newServer(t, relaytest.Options{})
	r := s.NewRelay()
	f := s.NewFolder(r)
	nodes := []map[string]any{{"id": "n1", "type": "text", "text": "", "x": 1}, {"id": "g", "type": "group", "label": "G"}}
	edges := []map[string]any{{"id": "e", "fromNode": "n1", "toNode": "g"}}
	id, err := f.AddCanvas("/c.canvas", nodes, edges, map[string]string{"n1": "live"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantNodes []string, wantText string) {
		t.Helper()
		upd, _ := s.DocUpdate(r, id)
		d := yjs.NewDoc()
		if err := d.ApplyUpdate(upd); err != nil {
			t.Fatal(err)
		}
		n := d.GetMap("nodes").ToJSON().(map[string]any)
		if got := keys(n); !reflect.DeepEqual(got, wantNodes) {
			t.Fatalf("nodes %v, want %v", got, wantNodes)
		}
		if got := d.GetText("n1").String(); got != wantText {
			t.Fatalf("n1 text %q", got)
		}
	}
	check([]string{"g", "n1"}, "live")
	if err := f.EditCanvas("/c.canvas", nodes[:1], nil, map[string]string{"n1": "live text"}); err != nil {
		t.Fatal(err)
	}
	check([]string{"n1"}, "live text")
	if _, err := f.AddCanvas("/bad.canvas", []map[string]any{{"type": "text"}}, nil, nil); err == nil {
		t.Error("node without id")
	}
}

func do(t *testing.T, method, u, auth string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, body)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestProtocol(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key, Version: "9.9.9"})
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/a.md", "hi")
	cid := relay.CompoundID(r, id)
	base := s.URL()

	expect := func(resp *http.Response, body string, code int, wantBody string) {
		t.Helper()
		if resp.StatusCode != code || (wantBody != "" && body != wantBody) {
			t.Fatalf("%s %s: %d %q, want %d %q", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body, code, wantBody)
		}
		if resp.Header.Get("relay-server-version") != "9.9.9" {
			t.Fatalf("no relay-server-version header on %s", resp.Request.URL.Path)
		}
	}
	resp, body := do(t, "POST", base+"/doc/"+cid+"/auth?z=abcd1234", "", strings.NewReader("{}"))
	expect(resp, body, 401, "Something went wrong: Unauthorized.")
	resp, body = do(t, "POST", base+"/doc/"+cid+"/auth", "wrong", strings.NewReader("{}"))
	expect(resp, body, 401, "Something went wrong: Unauthorized.")
	missing := relay.CompoundID(r, "00000000-0000-4000-8000-000000000000")
	resp, body = do(t, "POST", base+"/doc/"+missing+"/auth", key, strings.NewReader("{}"))
	expect(resp, body, 404, "Something went wrong: Doc "+missing+" not found")

	resp, body = do(t, "POST", base+"/doc/"+cid+"/auth?z=abcd1234", key, strings.NewReader("{}"))
	expect(resp, body, 200, "")
	var ct map[string]any
	if err := json.Unmarshal([]byte(body), &ct); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(base, "http://")
	if ct["url"] != "ws://"+host+"/d/"+cid+"/ws" || ct["baseUrl"] != base+"/d/"+cid || ct["docId"] != cid ||
		ct["authorization"] != "full" || ct["token"] == "" {
		t.Fatalf("client token %v", ct)
	}
	tok := ct["token"].(string)

	resp, body = do(t, "GET", base+"/d/"+cid+"/as-update", "", nil)
	expect(resp, body, 401, "Something went wrong: No token provided.")
	resp, body = do(t, "GET", base+"/d/"+cid+"/as-update", "forged", nil)
	expect(resp, body, 401, "")
	// A doc token is bound to its document.
	resp, body = do(t, "GET", base+"/d/"+relay.CompoundID(r, f.ID())+"/as-update", tok, nil)
	expect(resp, body, 401, "")
	for _, auth := range []string{tok, key} {
		resp, body = do(t, "GET", base+"/d/"+cid+"/as-update", auth, nil)
		expect(resp, body, 200, "")
		if resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatal("content type")
		}
		d := yjs.NewDoc()
		if err := d.ApplyUpdate([]byte(body)); err != nil || d.GetText("contents").String() != "hi" {
			t.Fatalf("update: %v", err)
		}
	}

	// Files.
	data := []byte("attachment")
	fid, _ := f.AddFile("/f.bin", "file", "", data)
	fcid := relay.CompoundID(r, fid)
	h := hex.EncodeToString(sha256Sum(data))
	resp, body = do(t, "GET", base+"/f/"+fcid+"/download-url", key, nil)
	expect(resp, body, 400, "Something went wrong: Hash query parameter required when using server token")
	resp, body = do(t, "GET", base+"/f/"+fcid+"/download-url?hash=xyz", key, nil)
	expect(resp, body, 400, "Something went wrong: Invalid file hash format in query parameter")
	resp, body = do(t, "GET", base+"/f/"+fcid+"/download-url?hash="+strings.Repeat("0", 64), key, nil)
	expect(resp, body, 404, "Something went wrong: File not found")
	resp, body = do(t, "GET", base+"/f/"+fcid+"/download-url?hash="+h, "", nil)
	expect(resp, body, 401, "")
	resp, body = do(t, "GET", base+"/f/"+fcid+"/download-url?hash="+h, tok, nil)
	expect(resp, body, 400, "Something went wrong: Document tokens cannot be used for file operations")
	resp, body = do(t, "GET", base+"/f/"+fcid+"/download-url?hash="+h, key, nil)
	expect(resp, body, 200, "")
	var du struct {
		DownloadURL string `json:"downloadUrl"`
	}
	json.Unmarshal([]byte(body), &du)
	u, err := url.Parse(du.DownloadURL)
	if err != nil || u.Query().Get("X-Amz-Signature") == "" || u.Query().Get("X-Amz-Expires") != "3600" {
		t.Fatalf("download url %q", du.DownloadURL)
	}
	resp, body = do(t, "GET", du.DownloadURL, "", nil)
	if resp.StatusCode != 200 || body != "attachment" {
		t.Fatalf("download: %d %q", resp.StatusCode, body)
	}
	// Range requests are supported (as on S3).
	req, _ := http.NewRequest("GET", du.DownloadURL, nil)
	req.Header.Set("Range", "bytes=5-")
	rr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(rr.Body)
	rr.Body.Close()
	if rr.StatusCode != 206 || string(rb) != "hment" {
		t.Fatalf("range: %d %q", rr.StatusCode, rb)
	}
	// A tampered signature is refused.
	q := u.Query()
	q.Set("X-Amz-Expires", "999999")
	u.RawQuery = q.Encode()
	resp, _ = do(t, "GET", u.String(), "", nil)
	if resp.StatusCode != 403 {
		t.Fatalf("tampered URL: %d", resp.StatusCode)
	}
	// Unknown routes.
	resp, _ = do(t, "GET", base+"/nothing", key, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("unknown route: %d", resp.StatusCode)
	}
	if s.Requests(relaytest.RouteAuth) != 4 || s.Requests(relaytest.RouteDownload) != 3 {
		t.Errorf("counts: auth %d download %d", s.Requests(relaytest.RouteAuth), s.Requests(relaytest.RouteDownload))
	}
}

func TestPresignedURLExpires(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newServer(t, relaytest.Options{APIKey: key, Now: clock, PresignExpiry: time.Minute})
	r := s.NewRelay()
	f := s.NewFolder(r)
	fid, _ := f.AddFile("/f.bin", "file", "", []byte("x"))
	h := hex.EncodeToString(sha256Sum([]byte("x")))
	_, body := do(t, "GET", s.URL()+"/f/"+relay.CompoundID(r, fid)+"/download-url?hash="+h, key, nil)
	var du struct {
		DownloadURL string `json:"downloadUrl"`
	}
	json.Unmarshal([]byte(body), &du)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	resp, body := do(t, "GET", du.DownloadURL, "", nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "Request has expired") {
		t.Fatalf("expired URL: %d %s", resp.StatusCode, body)
	}
}

func TestFilesystemDownloadURL(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key, FileStore: "filesystem"})
	r := s.NewRelay()
	f := s.NewFolder(r)
	fid, _ := f.AddFile("/f.bin", "file", "", []byte("fs"))
	fcid := relay.CompoundID(r, fid)
	h := hex.EncodeToString(sha256Sum([]byte("fs")))
	_, body := do(t, "GET", s.URL()+"/f/"+fcid+"/download-url?hash="+h, key, nil)
	var du struct {
		DownloadURL string `json:"downloadUrl"`
	}
	json.Unmarshal([]byte(body), &du)
	if du.DownloadURL != s.URL()+"/f/"+fcid+"/download?hash="+h+"&token="+key {
		t.Fatalf("download url %q", du.DownloadURL)
	}
	resp, body := do(t, "GET", du.DownloadURL, "", nil)
	if resp.StatusCode != 200 || body != "fs" {
		t.Fatalf("download %d %q", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", s.URL()+"/f/"+fcid+"/download?hash="+h+"&token=nope", "", nil)
	if resp.StatusCode != 401 || body != "Something went wrong: Invalid token" {
		t.Fatalf("bad token: %d %q", resp.StatusCode, body)
	}
	// The filesystem store does not check existence before handing out a URL.
	none := strings.Repeat("ab", 32)
	_, body = do(t, "GET", s.URL()+"/f/"+fcid+"/download-url?hash="+none, key, nil)
	json.Unmarshal([]byte(body), &du)
	resp, body = do(t, "GET", du.DownloadURL, "", nil)
	if resp.StatusCode != 404 || body != "Something went wrong: File not found" {
		t.Fatalf("missing: %d %q", resp.StatusCode, body)
	}
}

func TestFaultsTimesAndIDs(t *testing.T) {
	s := newServer(t, relaytest.Options{})
	r := s.NewRelay()
	f := s.NewFolder(r)
	a, _ := f.AddMarkdown("/a.md", "a")
	b, _ := f.AddMarkdown("/b.md", "b")
	s.InjectFault(relaytest.RouteAuth, a, relaytest.Fault{Status: 500, Times: 2})
	status := func(id string) int {
		resp, _ := do(t, "POST", s.URL()+"/doc/"+relay.CompoundID(r, id)+"/auth", "", strings.NewReader("{}"))
		return resp.StatusCode
	}
	if status(b) != 200 || status(a) != 500 || status(a) != 500 || status(a) != 200 {
		t.Fatal("fault by plain id with Times 2")
	}
	s.InjectFault(relaytest.RouteAuth, relay.CompoundID(r, b), relaytest.Fault{Status: 502})
	for range 3 {
		if status(b) != 502 || status(a) != 200 {
			t.Fatal("unlimited fault by compound id")
		}
	}
	s.ClearFaults()
	if status(b) != 200 {
		t.Fatal("ClearFaults")
	}
	if n := s.Requests(relaytest.RouteAuth); n != 11 {
		t.Fatalf("requests %d", n)
	}
}

// A rate-limited server answers requests one after another at its rate,
// however many arrive at once, and counts them per document.
func TestRequestsPerSecond(t *testing.T) {
	s := newServer(t, relaytest.Options{})
	r := s.NewRelay()
	f := s.NewFolder(r)
	a, _ := f.AddMarkdown("/a.md", "a")
	auth := func() {
		resp, _ := do(t, "POST", s.URL()+"/doc/"+relay.CompoundID(r, a)+"/auth", "", strings.NewReader("{}"))
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	start := time.Now()
	for range 20 {
		auth()
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("20 requests without a limit took %v", d)
	}
	s.SetRequestsPerSecond(50)
	start = time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(auth)
	}
	wg.Wait()
	// The first answer is immediate, the 20th waits 19 slots of 20 ms.
	if d := time.Since(start); d < 370*time.Millisecond || d > 3*time.Second {
		t.Fatalf("20 concurrent requests at 50/s took %v, want about 380 ms", d)
	}
	if n := s.RequestsFor(relaytest.RouteAuth, a); n != 40 {
		t.Fatalf("RequestsFor(auth, plain id) = %d, want 40", n)
	}
	if n := s.RequestsFor(relaytest.RouteAuth, relay.CompoundID(r, a)); n != 40 {
		t.Fatalf("RequestsFor(auth, compound id) = %d, want 40", n)
	}
	if n := s.RequestsFor(relaytest.RouteAsUpdate, a); n != 0 {
		t.Fatalf("RequestsFor(as-update) = %d, want 0", n)
	}
	s.SetRequestsPerSecond(0)
	start = time.Now()
	auth()
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("a request after lifting the limit took %v", d)
	}
}

func TestDeterministicIDs(t *testing.T) {
	ids := func() []string {
		s := relaytest.NewServer(relaytest.Options{Seed: 42})
		defer s.Close()
		r := s.NewRelay()
		f := s.NewFolder(r)
		m, _ := f.AddMarkdown("/x/a.md", "")
		return []string{r, f.ID(), f.EntryID("/x"), m}
	}
	a, b := ids(), ids()
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%v != %v", a, b)
	}
}

// receiver is a tiny webhook endpoint that authenticates like relay-git-sync
// (§2): Bearer shared secret, or Standard Webhooks for whsec_ secrets.
type receiver struct {
	secret string
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(rc.secret, "whsec_") {
		wh, err := standardwebhooks.NewWebhook(rc.secret)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := r.Header.Clone()
		for _, n := range []string{"id", "timestamp", "signature"} { // accept svix-* too
			if v := h.Get("svix-" + n); v != "" {
				h.Set("webhook-"+n, v)
			}
		}
		if err := wh.Verify(body, h); err != nil {
			http.Error(w, `{"error":"Authentication failed: `+err.Error()+`"}`, http.StatusUnauthorized)
			return
		}
	} else if r.Header.Get("Authorization") != "Bearer "+rc.secret {
		http.Error(w, `{"error":"Authentication required"}`, http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, body)
	rc.heads = append(rc.heads, r.Header.Clone())
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"queued"}`)
}

func (rc *receiver) received() ([][]byte, []http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][]byte(nil), rc.bodies...), append([]http.Header(nil), rc.heads...)
}

func TestWebhooks(t *testing.T) {
	s := newServer(t, relaytest.Options{})
	r := s.NewRelay()
	doc := "6f0b3a1e-8d2c-4c1a-9f1e-2b3c4d5e6f70"
	at := time.Date(2026, 3, 3, 21, 58, 48, 123456789, time.UTC)
	ctx := context.Background()

	for _, secret := range []string{"shared-secret-value", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		rc := &receiver{secret: secret}
		ts := httptest.NewServer(rc)
		status, body, err := s.SendWebhook(ctx, ts.URL+"/webhooks", secret, relaytest.Webhook{DocID: doc, RelayID: r, Time: at, EventID: "evt_abcdefghijklmnopqrstu"})
		if err != nil || status != 200 || string(body) != `{"status":"queued"}` {
			t.Fatalf("%s: %d %s %v", secret, status, body, err)
		}
		// svix-* headers.
		if status, _, _ := s.SendWebhook(ctx, ts.URL, secret, relaytest.Webhook{DocID: doc, RelayID: r, SvixHeaders: true}); status != 200 {
			t.Fatalf("%s svix headers: %d", secret, status)
		}
		// Wrong secret, and for whsec a stale signature, are refused.
		if status, _, _ := s.SendWebhook(ctx, ts.URL, "whsec_"+strings.Repeat("A", 32), relaytest.Webhook{DocID: doc, RelayID: r}); status != 401 {
			t.Fatalf("%s: wrong secret accepted", secret)
		}
		if strings.HasPrefix(secret, "whsec_") {
			if status, _, _ := s.SendWebhook(ctx, ts.URL, secret, relaytest.Webhook{DocID: doc, RelayID: r, SignedAt: time.Now().Add(-10 * time.Minute)}); status != 401 {
				t.Fatal("stale signature accepted")
			}
		} else if status, _, _ := s.SendWebhook(ctx, ts.URL, "", relaytest.Webhook{DocID: doc, RelayID: r}); status != 401 {
			t.Fatal("missing auth accepted")
		}
		bodies, heads := rc.received()
		ts.Close()
		if len(bodies) != 2 {
			t.Fatalf("%s: received %d", secret, len(bodies))
		}
		want := `{"eventType":"document.updated","eventId":"evt_abcdefghijklmnopqrstu","payload":{"doc_id":"` + r + "-" + doc +
			`","metadata":{},"timestamp":"2026-03-03T21:58:48.123456789+00:00","user":null}}`
		if string(bodies[0]) != want {
			t.Fatalf("body\n %s\nwant\n %s", bodies[0], want)
		}
		h := heads[0]
		if h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != "y-sweet-webhook/1.0.0" {
			t.Fatalf("headers %v", h)
		}
		if strings.HasPrefix(secret, "whsec_") && (h.Get("webhook-id") != "evt_abcdefghijklmnopqrstu" || !strings.HasPrefix(h.Get("webhook-signature"), "v1,")) {
			t.Fatalf("signature headers %v", h)
		}
		if strings.HasPrefix(secret, "whsec_") && heads[1].Get("svix-signature") == "" {
			t.Fatal("no svix-signature header")
		}
	}

	// Shapes.
	for shape, want := range map[string]string{
		relaytest.ShapeB:           `{"eventType":"document.updated","eventId":"evt_x","payload":{"doc_id":"R-D","timestamp":"2026-03-03T21:58:48.123+00:00"}}`,
		relaytest.ShapeC:           `{"type":"event","eventId":"evt_x","eventType":"document.updated","channel":"R-D","timestamp":"2026-03-03T21:58:48.123+00:00","payload":{"doc_id":"R-D","metadata":{},"user":"u1"}}`,
		relaytest.ShapeCUnix:       `{"type":"event","eventId":"evt_x","eventType":"document.updated","channel":"R-D","timestamp":1772575128,"payload":{"doc_id":"R-D","metadata":{},"user":"u1"}}`,
		relaytest.ShapeNoTimestamp: `{"eventType":"document.updated","eventId":"evt_x","payload":{"doc_id":"R-D","metadata":{},"user":"u1"}}`,
	} {
		b, err := relaytest.WebhookBody(relaytest.Webhook{DocID: "R-D", Time: at.Truncate(time.Millisecond), User: "u1", Shape: shape, EventID: "evt_x"})
		if err != nil || string(b) != want {
			t.Errorf("shape %s:\n %s\nwant\n %s (%v)", shape, b, want, err)
		}
	}
	if got := relaytest.RFC3339Chrono(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); got != "2026-01-01T00:00:00+00:00" {
		t.Errorf("chrono format %s", got)
	}
	if id := relaytest.NewEventID(); len(id) != 25 || !strings.HasPrefix(id, "evt_") {
		t.Errorf("event id %q", id)
	}
	// Signature known-answer vector of the Standard Webhooks spec.
	sig, err := relaytest.SignWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil || sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Errorf("known-answer signature %q %v", sig, err)
	}
}

func TestAutomaticWebhooks(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key})
	rc := &receiver{secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	r := s.NewRelay()
	other := s.NewRelay()
	s.AddWebhook(relaytest.WebhookConfig{URL: ts.URL, Secret: rc.secret, Prefix: r})
	s.SetEditingUser("user-7")
	f := s.NewFolder(r)
	md, _ := f.AddMarkdown("/a.md", "a")
	f.EditMarkdown("/a.md", "ab")
	f.AddFile("/b.png", "image", "image/png", []byte("b"))
	s.NewFolder(other) // another relay: not delivered (prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	bodies, _ := rc.received()
	var got []string
	for _, b := range bodies {
		var w struct {
			Payload struct {
				DocID string `json:"doc_id"`
				User  string `json:"user"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		if w.Payload.User != "user-7" {
			t.Errorf("user %q", w.Payload.User)
		}
		got = append(got, w.Payload.DocID)
	}
	fd, dd := relay.CompoundID(r, f.ID()), relay.CompoundID(r, md)
	want := []string{fd, dd, fd, dd, fd} // new folder; new doc + folder entry; edit; file entry
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("webhooks for\n %v\nwant\n %v", got, want)
	}
	sent, failed, lastErr := s.WebhookStats()
	if sent != 5 || failed != 0 {
		t.Fatalf("stats %d %d %v", sent, failed, lastErr)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key})
	r := s.NewRelay()
	f := s.NewFolder(r)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("/d%d/n.md", i)
			id, err := f.AddMarkdown(p, "x")
			if err != nil {
				t.Error(err)
				return
			}
			for j := range 20 {
				if err := f.EditMarkdown(p, strings.Repeat("y", j)); err != nil {
					t.Error(err)
				}
				// Not do(): it calls t.Fatal, which must not run in this goroutine.
				req, _ := http.NewRequest("POST", s.URL()+"/doc/"+relay.CompoundID(r, id)+"/auth", strings.NewReader("{}"))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("auth %d %s", resp.StatusCode, body)
				}
				s.Requests(relaytest.RouteAuth)
				f.Entries()
			}
		}()
	}
	wg.Wait()
	if n := len(f.Entries()); n != 16 {
		t.Fatalf("entries %d", n)
	}
}

func TestMiscHelpers(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key})
	r := s.NewRelay()
	f := s.NewFolder(r)
	if g, ok := s.Folder(r, f.ID()); !ok || g != f {
		t.Fatal("Folder lookup")
	}
	id, err := f.AddFolderEntry("/x/y")
	if err != nil || f.EntryID("/x/y") != id || f.EntryID("/x") == "" {
		t.Fatalf("AddFolderEntry: %v %v", err, f.Entries())
	}
	if again, err := f.AddFolderEntry("/x/y"); err != nil || again != id {
		t.Fatal("AddFolderEntry is not idempotent")
	}
	f.AddMarkdown("/x/n.md", "")
	if _, err := f.AddFolderEntry("/x/n.md"); err == nil {
		t.Fatal("folder over a file")
	}
	doc := "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	if err := s.EditDoc(r, doc, func(d *yjs.Doc) error { return d.GetMap("m").Set("k", "v") }); err != nil {
		t.Fatal(err)
	}
	upd, err := s.DocUpdate(r, doc)
	if err != nil {
		t.Fatal(err)
	}
	d := yjs.NewDoc()
	d.ApplyUpdate(upd)
	if v, _ := d.GetMap("m").Get("k"); v != "v" {
		t.Fatalf("EditDoc: %v", v)
	}
	s.DeleteDoc(r, doc)
	if _, err := s.DocUpdate(r, doc); err == nil {
		t.Fatal("DeleteDoc")
	}
	h := s.PutBlob(r, doc, "text/plain", []byte("blob"))
	resp, body := do(t, "GET", s.URL()+"/f/"+relay.CompoundID(r, doc)+"/download-url?hash="+h, key, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PutBlob: %d %s", resp.StatusCode, body)
	}
	s.DeleteBlob(r, doc, h)
	if resp, _ := do(t, "GET", s.URL()+"/f/"+relay.CompoundID(r, doc)+"/download-url?hash="+h, key, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatal("DeleteBlob")
	}
	tlsSrv := newServer(t, relaytest.Options{TLS: true})
	if tlsSrv.Certificate() == nil || tlsSrv.TLSConfig() == nil || !strings.HasPrefix(tlsSrv.URL(), "https://") {
		t.Fatal("TLS helpers")
	}
	if s.Certificate() != nil || s.TLSConfig() != nil {
		t.Fatal("TLS helpers without TLS")
	}
}
