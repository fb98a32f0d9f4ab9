package relay_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

// fork returns a document holding state, with its own client id, as a
// writer that read the server's state.
func fork(t *testing.T, state []byte, client uint64) *yjs.Doc {
	t.Helper()
	d := yjs.NewDoc()
	d.ClientID = client
	if err := d.ApplyUpdate(state); err != nil {
		t.Fatal(err)
	}
	return d
}

func encode(t *testing.T, d *yjs.Doc) []byte {
	t.Helper()
	u, err := d.EncodeStateAsUpdate()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func fetchText(t *testing.T, c *relay.Client, r, id string) string {
	t.Helper()
	upd, err := c.FetchDoc(context.Background(), r, id)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, upd).GetText("contents").String()
}

func TestPushUpdateMergesWithConcurrentEdit(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, nil)
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/n.md", "alpha 😀 beta")
	ctx := context.Background()
	state, err := c.FetchDoc(ctx, r, id)
	if err != nil {
		t.Fatal(err)
	}
	g := fork(t, state, 31337)
	if err := g.GetText("contents").Insert(0, "restored "); err != nil {
		t.Fatal(err)
	}
	// Someone types between the read and the write.
	if err := f.EditMarkdown("/n.md", "alpha 😀 beta 中文"); err != nil {
		t.Fatal(err)
	}
	if err := c.PushUpdate(ctx, r, id, encode(t, g)); err != nil {
		t.Fatal(err)
	}
	if got := fetchText(t, c, r, id); got != "restored alpha 😀 beta 中文" {
		t.Fatalf("after the write: %q", got)
	}
	if n := s.Requests(relaytest.RouteNewDoc); n != 0 {
		t.Fatalf("an existing document was created again (%d)", n)
	}
}

func TestPushUpdateCreatesMissingDoc(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, nil)
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/n.md", "old")
	s.DeleteDoc(r, id) // the server lost the document
	g := yjs.NewDoc()
	g.ClientID = 5
	g.GetText("contents").Insert(0, "back")
	if err := c.PushUpdate(context.Background(), r, id, encode(t, g)); err != nil {
		t.Fatal(err)
	}
	if got := fetchText(t, c, r, id); got != "back" {
		t.Fatalf("re-created document: %q", got)
	}
	if n := s.Requests(relaytest.RouteNewDoc); n != 1 {
		t.Fatalf("%d creations", n)
	}
}

// A write whose answer is lost is retried; the update lands once.
func TestPushUpdateRetriesALostAnswer(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	c := newClient(t, s, nil)
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/n.md", "text")
	state, _ := c.FetchDoc(context.Background(), r, id)
	g := fork(t, state, 77)
	g.GetText("contents").Insert(4, " once")
	s.InjectFault(relaytest.RouteUpdate, id, relaytest.Fault{Drop: true, Times: 1})
	if err := c.PushUpdate(context.Background(), r, id, encode(t, g)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.WrittenUpdates(r, id)); n != 2 {
		t.Fatalf("the update was applied %d times, want 2 (the lost answer, the retry)", n)
	}
	if got := fetchText(t, c, r, id); got != "text once" {
		t.Fatalf("after a retried write: %q", got)
	}
}

func TestWriteErrors(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey})
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/n.md", "x")
	upd := encode(t, yjs.NewDoc())
	ctx := context.Background()
	noLeak := func(what string, err error, secrets ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		for _, sec := range append(secrets, testKey) {
			if strings.Contains(err.Error(), sec) {
				t.Fatalf("%s: the error leaks %q: %v", what, sec, err)
			}
		}
		if !strings.HasPrefix(err.Error(), "writing document "+relay.CompoundID(r, id)) &&
			!strings.HasPrefix(err.Error(), "uploading file ") {
			t.Fatalf("%s: the error does not say what failed: %v", what, err)
		}
	}

	// A refused key: ErrUnauthorized, not retried.
	bad := newClient(t, s, func(o *relay.ClientOptions) { o.APIKey = "wrong-key-0123456789" })
	err := bad.PushUpdate(ctx, r, id, upd)
	noLeak("wrong key", err, "wrong-key-0123456789")
	if !errors.Is(err, relay.ErrUnauthorized) || s.Requests(relaytest.RouteAuth) != 1 {
		t.Fatalf("wrong key: %v (%d auth requests)", err, s.Requests(relaytest.RouteAuth))
	}

	// 5xx on the update: retried, then a StatusError.
	c := newClient(t, s, func(o *relay.ClientOptions) { o.MaxRetries = 2 })
	s.InjectFault(relaytest.RouteUpdate, "", relaytest.Fault{Status: 502})
	err = c.PushUpdate(ctx, r, id, upd)
	noLeak("502", err)
	var se *relay.StatusError
	if !errors.As(err, &se) || se.Code != 502 || s.Requests(relaytest.RouteUpdate) != 3 || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("502: %v (%d requests)", err, s.Requests(relaytest.RouteUpdate))
	}
	s.ClearFaults()

	// Too large.
	err = c.PushUpdate(ctx, r, id, make([]byte, relaytest.MaxUpdateBytes+1))
	noLeak("too large", err)
	if !errors.Is(err, relay.ErrTooLarge) || !strings.Contains(err.Error(), "2097153 bytes") {
		t.Fatalf("too large: %v", err)
	}

	// Nothing listening.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	cd, _ := relay.NewClient(relay.ClientOptions{BaseURL: dead.URL, APIKey: testKey, MaxRetries: -1, Logger: quietLogger()})
	err = cd.PushUpdate(ctx, r, id, upd)
	noLeak("server down", err)
	if !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("server down: %v", err)
	}

	// A server that echoes the document token in its error body.
	const docTok = "doc-token-that-must-not-leak"
	var echo *httptest.Server
	echo = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/auth") {
			io.WriteString(w, `{"baseUrl":"`+echo.URL+`/d/x","token":"`+docTok+`"}`)
			return
		}
		http.Error(w, "refused "+req.Header.Get("Authorization"), http.StatusBadRequest)
	}))
	defer echo.Close()
	ce, _ := relay.NewClient(relay.ClientOptions{BaseURL: echo.URL, APIKey: testKey, Logger: quietLogger()})
	err = ce.PushUpdate(ctx, r, id, upd)
	noLeak("echoing server", err, docTok)
	if !errors.As(err, &se) || se.Code != 400 || !strings.Contains(se.Body, "[redacted]") {
		t.Fatalf("echoing server: %v", err)
	}

	// Bad input is refused before any request.
	if err := c.PushUpdate(ctx, r, id, nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty update: %v", err)
	}
	if err := c.PushUpdate(ctx, r, "../x", upd); !errors.Is(err, relay.ErrInvalidUUID) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestUploadFile(t *testing.T) {
	for _, store := range []string{"s3", "filesystem"} {
		t.Run(store, func(t *testing.T) {
			s := newFake(t, relaytest.Options{APIKey: testKey, FileStore: store})
			r := s.NewRelay()
			f := s.NewFolder(r)
			fid, _ := f.AddFile("/a.png", "image", "image/png", []byte("old"))
			data := []byte("\x89PNG restored bytes")
			h := sha(data)
			ctx := context.Background()

			// With the server token only, relay-server refuses uploads.
			plain := newClient(t, s, nil)
			err := plain.UploadFile(ctx, r, fid, h, data)
			if !errors.Is(err, relay.ErrNeedFileToken) || s.Requests(relaytest.RouteUploadURL) != 1 {
				t.Fatalf("without a file token: %v", err)
			}

			var issued []string
			c := newClient(t, s, func(o *relay.ClientOptions) {
				o.FileToken = func(ctx context.Context, relayID, fileID, hash, mimetype string, length int64) (string, error) {
					tok := s.IssueFileToken(relayID, fileID, hash, mimetype, length)
					issued = append(issued, tok)
					return tok, nil
				}
			})
			if has, err := c.HasFile(ctx, r, fid, h); err != nil || has {
				t.Fatalf("HasFile before the upload: %v %v", has, err)
			}
			if err := c.UploadFile(ctx, r, fid, strings.ToUpper(h), data); err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			if _, err := c.FetchFile(ctx, r, fid, h, &got); err != nil || got.String() != string(data) {
				t.Fatalf("download after upload: %q %v", got.String(), err)
			}
			if has, err := c.HasFile(ctx, r, fid, h); err != nil || !has {
				t.Fatalf("HasFile after the upload: %v %v", has, err)
			}
			vs, err := c.FileHistory(ctx, r, fid)
			if err != nil || len(vs) != 2 {
				t.Fatalf("history: %+v %v", vs, err)
			}
			for _, v := range vs {
				if v.Hash == h && (v.Size != int64(len(data)) || time.Since(v.CreatedAt) > time.Hour) {
					t.Fatalf("history entry %+v", v)
				}
			}

			// Failed uploads say so without the file token (the
			// filesystem store's upload URL carries it).
			s.InjectFault(relaytest.RouteUpload, "", relaytest.Fault{Status: 500})
			c1 := newClient(t, s, func(o *relay.ClientOptions) {
				o.MaxRetries = 1
				o.FileToken = s.FileTokens()
			})
			err = c1.UploadFile(ctx, r, fid, h, data)
			if err == nil || !strings.HasPrefix(err.Error(), "uploading file ") || strings.Contains(err.Error(), "file.") ||
				strings.Contains(err.Error(), "token=") || strings.Contains(err.Error(), testKey) {
				t.Fatalf("failed upload: %v", err)
			}
			for _, tok := range issued {
				if strings.Contains(err.Error(), tok) {
					t.Fatalf("failed upload leaks a file token: %v", err)
				}
			}
			s.ClearFaults()

			// Data that does not hash to hash is refused before any request.
			if err := c.UploadFile(ctx, r, fid, sha([]byte("other")), data); err == nil {
				t.Fatal("mismatched hash accepted")
			}
		})
	}
}

// A server that takes the server token for uploads (not relay-server, see
// relaytest.Options.ServerTokenUploads) gets the hash in the query.
func TestUploadFileWithServerToken(t *testing.T) {
	s := newFake(t, relaytest.Options{APIKey: testKey, ServerTokenUploads: true, FileStore: "filesystem"})
	c := newClient(t, s, nil)
	r := s.NewRelay()
	fid := "33333333-3333-4333-8333-333333333333"
	data := []byte("payload")
	if err := c.UploadFile(context.Background(), r, fid, sha(data), data); err != nil {
		t.Fatal(err)
	}
	if has, err := c.HasFile(context.Background(), r, fid, sha(data)); err != nil || !has {
		t.Fatalf("HasFile: %v %v", has, err)
	}
}

// A server without auth issues no tokens; writing needs none.
func TestPushUpdateNoAuthServer(t *testing.T) {
	s := newFake(t, relaytest.Options{})
	c := newClient(t, s, func(o *relay.ClientOptions) { o.APIKey = "" })
	r := s.NewRelay()
	id := "44444444-4444-4444-8444-444444444444"
	g := yjs.NewDoc()
	g.ClientID = 9
	g.GetText("contents").Insert(0, "new note")
	if err := c.PushUpdate(context.Background(), r, id, encode(t, g)); err != nil {
		t.Fatal(err)
	}
	if got := fetchText(t, c, r, id); got != "new note" {
		t.Fatalf("%q", got)
	}
}
