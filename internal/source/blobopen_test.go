package source_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
)

// Both sources stream blobs (source.BlobOpener): a large attachment reads
// back byte-identical from the store and over the read API, and an answer
// whose content was altered or cut short on the way fails at its end.
func TestOpenBlob(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 9<<20+5)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	id, _, err := st.PutBlobFrom(bytes.NewReader(data), -1, store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutBlob([]byte("hello\n"), store.BlobID{}); err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Config{InsecureNoAuth: true, APIToken: testToken, Events: nopSink{}, Source: source.FromStore(st)})
	if err != nil {
		t.Fatal(err)
	}
	// mangle, when set, rewrites the blob answers on their way; noLength
	// drops their Content-Length (sent chunked).
	var mangle func(body []byte) []byte
	noLength := false
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mangle == nil || !strings.HasPrefix(r.URL.Path, "/api/v1/blobs/") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := mangle(rec.Body.Bytes())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if noLength {
			w.Header().Del("Content-Length")
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(ts.Close)
	httpSrc, err := source.NewHTTP(ts.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpSrc.Close() })
	read := func(src source.Source, id store.BlobID) ([]byte, int64, error) {
		o, ok := src.(source.BlobOpener)
		if !ok {
			t.Fatalf("%T does not stream blobs", src)
		}
		rc, size, err := o.OpenBlob(context.Background(), id)
		if err != nil {
			return nil, 0, err
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		return got, size, err
	}
	for name, src := range map[string]source.Source{"store": source.FromStore(st), "http": httpSrc} {
		for _, want := range [][]byte{data, []byte("hello\n")} {
			wid := store.BlobIDOf(want)
			got, size, err := read(src, wid)
			if err != nil || size != int64(len(want)) || !bytes.Equal(got, want) {
				t.Errorf("%s: blob %s: %d bytes (size %d), %v", name, wid, len(got), size, err)
			}
		}
		if _, _, err := read(src, store.BlobIDOf([]byte("not stored"))); err == nil {
			t.Errorf("%s: an unknown blob opened", name)
		}
	}

	for name, m := range map[string]func([]byte) []byte{
		"a flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"cut short":      func(b []byte) []byte { return b[:len(b)-100] },
	} {
		for _, nl := range []bool{false, true} {
			mangle, noLength = m, nl
			got, _, err := read(httpSrc, id)
			if err == nil || !strings.Contains(err.Error(), id.String()) {
				t.Errorf("%s (no Content-Length: %v): read %d bytes, error %v; want an error naming the blob", name, nl, len(got), err)
			}
		}
	}
	mangle, noLength = func(b []byte) []byte { return b }, true
	if got, size, err := read(httpSrc, id); err != nil || size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Errorf("without Content-Length: %d bytes (size %d), %v", len(got), size, err)
	}
}
