package relay_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

const testKey = "sk_test-server-token-0123456789"

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newFake(t *testing.T, o relaytest.Options) *relaytest.Server {
	t.Helper()
	s := relaytest.NewServer(o)
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, s *relaytest.Server, mod func(*relay.ClientOptions)) *relay.Client {
	t.Helper()
	o := relay.ClientOptions{
		BaseURL:     s.URL(),
		APIKey:      testKey,
		HTTPClient:  s.Client(),
		Timeout:     2 * time.Second,
		BackoffBase: time.Millisecond,
		BackoffMax:  5 * time.Millisecond,
		Logger:      quietLogger(),
	}
	if mod != nil {
		mod(&o)
	}
	c, err := relay.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func decode(t *testing.T, upd []byte) *yjs.Doc {
	t.Helper()
	d := yjs.NewDoc()
	if err := d.ApplyUpdate(upd); err != nil {
		t.Fatalf("decoding update: %v", err)
	}
	return d
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestFetchDocMarkdownAndFolder(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, nil)
	r := s.NewRelay()
	f := s.NewFolder(r)
	text := "# Hello\nwörld 😀 and more\n"
	id, err := f.AddMarkdown("/notes/hello.md", text)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	upd, err := c.FetchDoc(ctx, r, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, upd).GetText("contents").String(); got != text {
		t.Fatalf("contents = %q, want %q", got, text)
	}
	if err := f.EditMarkdown("/notes/hello.md", "# Hello\nwörld 😃 and more!\n"); err != nil {
		t.Fatal(err)
	}
	upd, err = c.FetchDoc(ctx, r, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, upd).GetText("contents").String(); got != "# Hello\nwörld 😃 and more!\n" {
		t.Fatalf("after edit: %q", got)
	}

	upd, err = c.FetchDoc(ctx, r, f.ID())
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := decode(t, upd).GetMap(relay.FileMetaKey).ToJSON().(map[string]any)
	entries, problems := relay.ParseFileMeta(meta)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(entries) != 2 || entries[0].Path != "/notes" || entries[0].Kind() != relay.KindFolder ||
		entries[1].Path != "/notes/hello.md" || entries[1].ID != id || entries[1].Kind() != relay.KindMarkdown {
		t.Fatalf("entries = %+v", entries)
	}
	if n := s.Requests(relaytest.RouteAuth); n != 3 {
		t.Errorf("auth requests = %d, want 3", n)
	}
}

func TestFetchDocCanvas(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, nil)
	r := s.NewRelay()
	f := s.NewFolder(r)
	nodes := []map[string]any{
		{"id": "n1", "type": "text", "text": "stale", "x": 0, "y": 10.5, "width": 250, "height": 60},
		{"id": "n2", "type": "file", "file": "notes/a.md", "x": -120.5, "y": 1e16, "width": 400, "height": 400},
	}
	edges := []map[string]any{{"id": "e1", "fromNode": "n1", "toNode": "n2", "fromSide": "right", "toSide": "left"}}
	id, err := f.AddCanvas("/board.canvas", nodes, edges, map[string]string{"n1": "Live text ü"})
	if err != nil {
		t.Fatal(err)
	}
	upd, err := c.FetchDoc(context.Background(), r, id)
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, upd)
	n, _ := d.GetMap(relay.CanvasNodesKey).ToJSON().(map[string]any)
	e, _ := d.GetMap(relay.CanvasEdgesKey).ToJSON().(map[string]any)
	out, err := relay.ExportCanvas(n, e, func(name string) (string, bool) {
		rt := d.Root(name)
		if rt == nil || rt.Kind() != yjs.KindText {
			return "", false
		}
		return rt.String(), true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "edges": [
    {
      "fromNode": "n1",
      "fromSide": "right",
      "id": "e1",
      "toNode": "n2",
      "toSide": "left"
    }
  ],
  "nodes": [
    {
      "height": 60.0,
      "id": "n1",
      "text": "Live text \u00fc",
      "type": "text",
      "width": 250.0,
      "x": 0.0,
      "y": 10.5
    },
    {
      "file": "notes/a.md",
      "height": 400.0,
      "id": "n2",
      "type": "file",
      "width": 400.0,
      "x": -120.5,
      "y": 1e+16
    }
  ]
}`
	if string(out) != want {
		t.Fatalf("canvas export:\n%s\nwant:\n%s", out, want)
	}
}

func TestFetchFile(t *testing.T) {
	for _, store := range []string{"s3", "filesystem"} {
		t.Run(store, func(t *testing.T) {
			s := newFake(t, relaytest.Options{APIKey: testKey, FileStore: store})
			c := newClient(t, s, nil)
			r := s.NewRelay()
			f := s.NewFolder(r)
			data := bytes.Repeat([]byte("png-bytes\x00\x01"), 10000)
			id, err := f.AddFile("/img/a.png", "image", "image/png", data)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			n, err := c.FetchFile(context.Background(), r, id, sha(data), &buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("got %d bytes, want %d", n, len(data))
			}
			// An updated attachment: the new hash is served, the old one still exists.
			data2 := []byte("new content")
			if err := f.UpdateFile("/img/a.png", data2); err != nil {
				t.Fatal(err)
			}
			buf.Reset()
			if _, err := c.FetchFile(context.Background(), r, id, sha(data2), &buf); err != nil || buf.String() != "new content" {
				t.Fatalf("updated file: %q, %v", buf.String(), err)
			}
			// Upper-case hashes are accepted (and lower-cased).
			buf.Reset()
			if _, err := c.FetchFile(context.Background(), r, id, strings.ToUpper(sha(data)), &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("upper-case hash: %v", err)
			}
		})
	}
}

func TestNoAuthServer(t *testing.T) {
	s := newFake(t, relaytest.Options{})
	c := newClient(t, s, func(o *relay.ClientOptions) { o.APIKey = "" })
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/a.md", "x")
	upd, err := c.FetchDoc(context.Background(), r, id)
	if err != nil {
		t.Fatal(err)
	}
	if decode(t, upd).GetText("contents").String() != "x" {
		t.Fatal("wrong content")
	}
	// relay-server refuses file operations without an authenticator.
	fid, _ := f.AddFile("/b.bin", "file", "", []byte("b"))
	_, err = c.FetchFile(context.Background(), r, fid, sha([]byte("b")), io.Discard)
	if !errors.Is(err, relay.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
}

func TestNotFoundAndUnauthorizedAreNotRetried(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, nil)
	r := s.NewRelay()
	f := s.NewFolder(r)
	ctx := context.Background()

	missing := "0b7e1f7c-4bd0-4c55-9c1e-6f1f6b0d7a11"
	_, err := c.FetchDoc(ctx, r, missing)
	if !errors.Is(err, relay.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	want := "fetching document " + r + "-" + missing + ": not found on the Relay Server"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q does not start with %q", err, want)
	}
	if n := s.Requests(relaytest.RouteAuth); n != 1 {
		t.Errorf("auth requests after 404 = %d, want 1", n)
	}

	bad := newClient(t, s, func(o *relay.ClientOptions) { o.APIKey = "wrong-key-xyz" })
	s.ResetRequests()
	_, err = bad.FetchDoc(ctx, r, f.ID())
	if !errors.Is(err, relay.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), "wrong-key-xyz") {
		t.Errorf("error leaks the key: %v", err)
	}
	if n := s.Requests(relaytest.RouteAuth); n != 1 {
		t.Errorf("auth requests after 401 = %d, want 1", n)
	}

	// 401 and 404 at the second step are final too.
	for _, code := range []int{401, 403, 404, 400} {
		s.ResetRequests()
		s.ClearFaults()
		s.InjectFault(relaytest.RouteAsUpdate, f.ID(), relaytest.Fault{Status: code})
		_, err = c.FetchDoc(ctx, r, f.ID())
		if err == nil {
			t.Fatalf("status %d: no error", code)
		}
		if n := s.Requests(relaytest.RouteAsUpdate); n != 1 {
			t.Errorf("status %d: as-update requests = %d, want 1", code, n)
		}
		var se *relay.StatusError
		if !errors.As(err, &se) || se.Code != code {
			t.Errorf("status %d: no StatusError in %v", code, err)
		}
	}
	s.ClearFaults()

	// A file that is not in the store.
	s.ResetRequests()
	fid := "5d1c2b3a-0000-4000-8000-000000000001"
	_, err = c.FetchFile(ctx, r, fid, sha([]byte("nothing")), io.Discard)
	if !errors.Is(err, relay.ErrNotFound) || s.Requests(relaytest.RouteDownloadURL) != 1 {
		t.Fatalf("err = %v, requests %d", err, s.Requests(relaytest.RouteDownloadURL))
	}
	if !strings.HasPrefix(err.Error(), "fetching file "+r+"-"+fid) {
		t.Errorf("message: %v", err)
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, func(o *relay.ClientOptions) { o.Timeout = 300 * time.Millisecond })
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/a.md", strings.Repeat("abc", 5000))
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 50000)
	fid, _ := f.AddFile("/b.bin", "file", "application/octet-stream", data)
	ctx := context.Background()

	cases := []struct {
		name  string
		route string
		fault relaytest.Fault
		reqs  int
	}{
		{"auth 503", relaytest.RouteAuth, relaytest.Fault{Status: 503, Times: 2}, 3},
		{"auth 429", relaytest.RouteAuth, relaytest.Fault{Status: 429, Times: 1}, 2},
		{"auth garbage", relaytest.RouteAuth, relaytest.Fault{Garbage: true, Times: 1}, 2},
		{"auth timeout", relaytest.RouteAuth, relaytest.Fault{Delay: 2 * time.Second, Times: 1}, 2},
		{"as-update 500", relaytest.RouteAsUpdate, relaytest.Fault{Status: 500, Times: 3}, 4},
		{"as-update truncated", relaytest.RouteAsUpdate, relaytest.Fault{Truncate: true, Times: 2}, 3},
		{"as-update timeout", relaytest.RouteAsUpdate, relaytest.Fault{Delay: 2 * time.Second, Times: 1}, 2},
		{"download-url 502", relaytest.RouteDownloadURL, relaytest.Fault{Status: 502, Times: 1}, 2},
		{"download-url truncated", relaytest.RouteDownloadURL, relaytest.Fault{Truncate: true, Times: 1}, 2},
		{"download 503", relaytest.RouteDownload, relaytest.Fault{Status: 503, Times: 2}, 3},
		{"download truncated", relaytest.RouteDownload, relaytest.Fault{Truncate: true, Times: 2}, 3},
		{"download timeout", relaytest.RouteDownload, relaytest.Fault{Delay: 2 * time.Second, Times: 1}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.ClearFaults()
			s.ResetRequests()
			s.InjectFault(tc.route, "", tc.fault)
			switch tc.route {
			case relaytest.RouteAuth, relaytest.RouteAsUpdate:
				upd, err := c.FetchDoc(ctx, r, id)
				if err != nil {
					t.Fatal(err)
				}
				if got := decode(t, upd).GetText("contents").String(); got != strings.Repeat("abc", 5000) {
					t.Fatal("wrong content")
				}
			default:
				var buf bytes.Buffer
				n, err := c.FetchFile(ctx, r, fid, sha(data), &buf)
				if err != nil {
					t.Fatal(err)
				}
				if n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
					t.Fatalf("got %d bytes, want %d (resume must not duplicate bytes)", n, len(data))
				}
			}
			if n := s.Requests(tc.route); n != tc.reqs {
				t.Errorf("%s requests = %d, want %d", tc.route, n, tc.reqs)
			}
		})
	}
}

func TestRetriesExhausted(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, func(o *relay.ClientOptions) { o.MaxRetries = 2 })
	r := s.NewRelay()
	f := s.NewFolder(r)
	s.InjectFault(relaytest.RouteAsUpdate, "", relaytest.Fault{Status: 503})
	_, err := c.FetchDoc(context.Background(), r, f.ID())
	if err == nil {
		t.Fatal("no error")
	}
	var se *relay.StatusError
	if !errors.As(err, &se) || se.Code != 503 || se.Body != "Something went wrong: injected fault" {
		t.Fatalf("StatusError = %+v in %v", se, err)
	}
	want := "fetching document " + relay.CompoundID(r, f.ID()) + ": giving up after 3 attempts: GET /d/" +
		relay.CompoundID(r, f.ID()) + "/as-update: HTTP 503 Service Unavailable: Something went wrong: injected fault"
	if err.Error() != want {
		t.Errorf("error:\n %s\nwant:\n %s", err, want)
	}
	if n := s.Requests(relaytest.RouteAsUpdate); n != 3 {
		t.Errorf("requests = %d, want 3", n)
	}

	// No retries at all.
	s.ResetRequests()
	c0 := newClient(t, s, func(o *relay.ClientOptions) { o.MaxRetries = -1 })
	if _, err := c0.FetchDoc(context.Background(), r, f.ID()); err == nil || s.Requests(relaytest.RouteAsUpdate) != 1 {
		t.Fatalf("MaxRetries -1: %v, %d requests", err, s.Requests(relaytest.RouteAsUpdate))
	}
}

func TestHashMismatch(t *testing.T) {
	for _, fault := range []relaytest.Fault{{WrongBytes: true}, {Garbage: true}} {
		s := newFake(t, relaytest.Options{APIKey: testKey})
		c := newClient(t, s, nil)
		r := s.NewRelay()
		f := s.NewFolder(r)
		data := []byte("the real attachment bytes")
		fid, _ := f.AddFile("/x.pdf", "pdf", "application/pdf", data)
		s.InjectFault(relaytest.RouteDownload, fid, fault)
		_, err := c.FetchFile(context.Background(), r, fid, sha(data), io.Discard)
		if !errors.Is(err, relay.ErrHashMismatch) {
			t.Fatalf("%+v: err = %v, want ErrHashMismatch", fault, err)
		}
		if n := s.Requests(relaytest.RouteDownload); n != 1 {
			t.Errorf("download requests = %d, want 1 (a mismatch is not retried)", n)
		}
	}
}

func TestGarbageYjsIsReturnedAsIs(t *testing.T) {
	// The client does not decode; garbage is the caller's to reject.
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, nil)
	r := s.NewRelay()
	f := s.NewFolder(r)
	s.InjectFault(relaytest.RouteAsUpdate, "", relaytest.Fault{Garbage: true, Times: 1})
	upd, err := c.FetchDoc(context.Background(), r, f.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := yjs.NewDoc().ApplyUpdate(upd); err == nil {
		t.Log("random bytes happened to decode")
	}
}

// resumeServer serves a download that is cut short once and then ignores
// Range (answers 200 with everything), so FetchFile must re-read and check
// the prefix.
func TestResumeWithoutRangeSupport(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 8192)
	var blobHits atomic.Int32
	var ts *httptest.Server
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/download-url") {
			fmt.Fprintf(w, `{"downloadUrl":%q}`, ts.URL+"/blob?sig=abcdefghijklmnopqrstuvwxyz")
			return
		}
		if r.Header.Get("Authorization") != "" {
			t.Error("download request carries an Authorization header")
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if blobHits.Add(1) == 1 {
			w.Write(data[:len(data)/3])
			panic(http.ErrAbortHandler)
		}
		w.Write(data)
	}))
	defer ts.Close()
	c, _ := relay.NewClient(relay.ClientOptions{BaseURL: ts.URL, APIKey: testKey, BackoffBase: time.Millisecond, Logger: quietLogger()})
	var buf bytes.Buffer
	n, err := c.FetchFile(context.Background(), "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", sha(data), &buf)
	if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("n=%d err=%v equal=%v", n, err, bytes.Equal(buf.Bytes(), data))
	}
	if blobHits.Load() != 2 {
		t.Errorf("blob hits = %d", blobHits.Load())
	}
}

func TestHTTPSNeverDowngraded(t *testing.T) {
	for _, advertiseHTTP := range []bool{false, true} {
		s := newFake(t, relaytest.Options{APIKey: testKey, TLS: true, FileStore: "filesystem"})
		if advertiseHTTP {
			// The server's public URL setting says http:// (a TLS proxy
			// setup gone wrong): baseUrl and downloadUrl come back as
			// http://, the client must upgrade them. Were they used as is,
			// the TLS listener would answer 400 to plain HTTP.
			s.SetPublicURL("http://" + strings.TrimPrefix(s.URL(), "https://"))
		}
		c := newClient(t, s, nil)
		r := s.NewRelay()
		f := s.NewFolder(r)
		id, _ := f.AddMarkdown("/a.md", "over tls")
		upd, err := c.FetchDoc(context.Background(), r, id)
		if err != nil {
			t.Fatalf("advertise http %v: %v", advertiseHTTP, err)
		}
		if decode(t, upd).GetText("contents").String() != "over tls" {
			t.Fatal("wrong content")
		}
		fid, _ := f.AddFile("/f.bin", "file", "", []byte("tls file"))
		// HTTP/2 stream resets are retried like cut connections.
		s.InjectFault(relaytest.RouteDownload, "", relaytest.Fault{Truncate: true, Times: 1})
		var buf bytes.Buffer
		if _, err := c.FetchFile(context.Background(), r, fid, sha([]byte("tls file")), &buf); err != nil || buf.String() != "tls file" {
			t.Fatalf("file over tls (advertise http %v): %v", advertiseHTTP, err)
		}
	}

	// A redirect from https to http is refused, not retried, and never reaches
	// the plain-http server.
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
	}))
	defer plain.Close()
	var tlsHits atomic.Int32
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tlsHits.Add(1)
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer tlsSrv.Close()
	c, err := relay.NewClient(relay.ClientOptions{BaseURL: tlsSrv.URL, APIKey: testKey, HTTPClient: tlsSrv.Client(), BackoffBase: time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FetchDoc(context.Background(), "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
	if err == nil || !strings.Contains(err.Error(), "refusing a redirect from https to plain http") {
		t.Fatalf("err = %v", err)
	}
	if plainHits.Load() != 0 || tlsHits.Load() != 1 {
		t.Errorf("plain hits %d, tls hits %d", plainHits.Load(), tlsHits.Load())
	}
}

func TestTokensNeverInErrors(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey, FileStore: "filesystem"})
	c := newClient(t, s, func(o *relay.ClientOptions) { o.MaxRetries = 1 })
	r := s.NewRelay()
	f := s.NewFolder(r)
	data := []byte("secret-bearing download")
	fid, _ := f.AddFile("/x.bin", "file", "", data)
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "token=") {
			t.Errorf("%s: error leaks a token: %v", what, err)
		}
	}
	// The filesystem download URL carries the API key in its query.
	for _, fault := range []relaytest.Fault{{Truncate: true}, {Status: 500}, {Delay: 3 * time.Second}} {
		s.ClearFaults()
		s.InjectFault(relaytest.RouteDownload, "", fault)
		c := newClient(t, s, func(o *relay.ClientOptions) { o.MaxRetries = 1; o.Timeout = 200 * time.Millisecond })
		_, err := c.FetchFile(context.Background(), r, fid, sha(data), io.Discard)
		check(fmt.Sprintf("fault %+v", fault), err)
	}
	s.ClearFaults()

	// Connection refused on the download URL: the *url.Error must be redacted.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	s.SetPublicURL(deadURL)
	_, err := c.FetchFile(context.Background(), r, fid, sha(data), io.Discard)
	check("connection refused", err)
	if !strings.Contains(err.Error(), "?[redacted]") {
		t.Errorf("expected a redacted URL in %v", err)
	}
	s.SetPublicURL("")

	// A server that echoes the credentials in its error body.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad request from "+r.Header.Get("Authorization"), http.StatusBadRequest)
	}))
	defer echo.Close()
	ce, _ := relay.NewClient(relay.ClientOptions{BaseURL: echo.URL, APIKey: testKey, Logger: quietLogger()})
	_, err = ce.FetchDoc(context.Background(), "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
	check("echoing server", err)
	var se *relay.StatusError
	if !errors.As(err, &se) || strings.Contains(se.Body, testKey) || se.Code != 400 {
		t.Errorf("StatusError %+v", se)
	}

	// Logs of retries carry no token either.
	var logs bytes.Buffer
	cl := newClient(t, s, func(o *relay.ClientOptions) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.MaxRetries = 2
	})
	s.InjectFault(relaytest.RouteDownload, "", relaytest.Fault{Truncate: true, Times: 2})
	if _, err := cl.FetchFile(context.Background(), r, fid, sha(data), io.Discard); err != nil {
		t.Fatal(err)
	}
	if logs.Len() == 0 || strings.Contains(logs.String(), testKey) || strings.Contains(logs.String(), "token=") {
		t.Errorf("logs: %s", logs.String())
	}
}

func TestContextCancellationStopsRetries(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, func(o *relay.ClientOptions) {
		o.BackoffBase = time.Second
		o.BackoffMax = 5 * time.Second
		o.MaxRetries = 10
	})
	r := s.NewRelay()
	f := s.NewFolder(r)
	s.InjectFault(relaytest.RouteAuth, "", relaytest.Fault{Status: 503})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.FetchDoc(ctx, r, f.ID())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s after the context ended", d)
	}
	if n := s.Requests(relaytest.RouteAuth); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}

	// Cancelled while waiting for an answer.
	s.ClearFaults()
	s.InjectFault(relaytest.RouteAsUpdate, "", relaytest.Fault{Delay: 10 * time.Second})
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	start = time.Now()
	_, err = c.FetchDoc(ctx2, r, f.ID())
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}

	// Already cancelled: no request at all.
	s.ResetRequests()
	ctx3, cancel3 := context.WithCancel(context.Background())
	cancel3()
	if _, err := c.FetchDoc(ctx3, r, f.ID()); !errors.Is(err, context.Canceled) || s.Requests(relaytest.RouteAuth) != 0 {
		t.Fatalf("err = %v, %d requests", err, s.Requests(relaytest.RouteAuth))
	}
}

func TestMaxBodyBytes(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, func(o *relay.ClientOptions) { o.MaxBodyBytes = 1000 })
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/big.md", strings.Repeat("x", 5000))
	if _, err := c.FetchDoc(context.Background(), r, id); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("doc: %v", err)
	}
	big := bytes.Repeat([]byte("y"), 5000)
	fid, _ := f.AddFile("/big.bin", "file", "", big)
	if _, err := c.FetchFile(context.Background(), r, fid, sha(big), io.Discard); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("file: %v", err)
	}
	if n := s.Requests(relaytest.RouteAsUpdate); n != 1 {
		t.Errorf("an oversized body must not be retried: %d requests", n)
	}
}

func TestInvalidInput(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "ys://key@host", "http://", "https://user:pw@host", "http://h/?q=1", "http://h:99999", "relay.example.com"} {
		if _, err := relay.NewClient(relay.ClientOptions{BaseURL: u}); err == nil {
			t.Errorf("NewClient(%q): no error", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080", "https://relay.example.com/", "HTTPS://relay.example.com/prefix/", "http://[::1]:9000"} {
		if _, err := relay.NewClient(relay.ClientOptions{BaseURL: u}); err != nil {
			t.Errorf("NewClient(%q): %v", u, err)
		}
	}
	c, _ := relay.NewClient(relay.ClientOptions{BaseURL: "http://127.0.0.1:1"})
	good := "11111111-1111-4111-8111-111111111111"
	if _, err := c.FetchDoc(context.Background(), good, "../../etc"); !errors.Is(err, relay.ErrInvalidUUID) {
		t.Errorf("FetchDoc bad id: %v", err)
	}
	if _, err := c.FetchFile(context.Background(), "x", good, strings.Repeat("a", 64), io.Discard); !errors.Is(err, relay.ErrInvalidUUID) {
		t.Errorf("FetchFile bad relay: %v", err)
	}
	if _, err := c.FetchFile(context.Background(), good, good, "abc", io.Discard); err == nil {
		t.Error("FetchFile bad hash: no error")
	}
}

func TestBasePathPrefix(t *testing.T) {
	// A Relay Server behind a path prefix: every endpoint lives under it.
	s := newFake(t, relaytest.Options{APIKey: testKey})
	proxy := httptest.NewServer(http.StripPrefix("/relay", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, s.URL()+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})))
	defer proxy.Close()
	c, _ := relay.NewClient(relay.ClientOptions{BaseURL: proxy.URL + "/relay/", APIKey: testKey, Logger: quietLogger()})
	r := s.NewRelay()
	f := s.NewFolder(r)
	data := []byte("prefixed")
	fid, _ := f.AddFile("/p.bin", "file", "", data)
	s.ResetRequests()
	// download-url goes through the prefix; the download URL itself is absolute.
	if _, err := c.FetchFile(context.Background(), r, fid, sha(data), io.Discard); err != nil {
		t.Fatal(err)
	}
	if s.Requests(relaytest.RouteDownloadURL) != 1 {
		t.Error("download-url not reached through the prefix")
	}
}
