package server

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// A large blob is streamed from the store (source.BlobOpener) with its
// Content-Length, byte-identical; an unknown one is still 404.
func TestReadAPIBlobStreams(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 9<<20+7) // over the store's streaming threshold
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	id, _, err := st.PutBlobFrom(bytes.NewReader(data), -1, store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	src := source.FromStore(st)
	if _, ok := src.(source.BlobOpener); !ok {
		t.Fatal("the store source does not stream blobs")
	}
	env := newEnv(t, func(c *Config) { c.Source = src })
	srv := httptest.NewServer(env.h)
	defer srv.Close()
	get := func(id string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/blobs/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get(id.String())
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET blob: %d, %d bytes, %v", resp.StatusCode, len(body), err)
	}
	if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(data)) {
		t.Errorf("Content-Length %q, want %d", got, len(data))
	}
	if got := resp.Header.Get("ETag"); got != `"`+id.String()+`"` {
		t.Errorf("ETag %q", got)
	}
	resp = get("0123456789012345678901234567890123456789")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown blob: %d, want 404", resp.StatusCode)
	}
}
