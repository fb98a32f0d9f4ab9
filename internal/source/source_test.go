package source_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/source/sourcetest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
)

const testToken = "s3cret-token"

// memStore is a filled in-memory store, closed with t.
func memStore(t *testing.T, fill func(store.Backend)) *store.Store {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fill(st)
	return st
}

func TestStoreSource(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, fill func(store.Backend)) source.Source {
		return source.FromStore(memStore(t, fill))
	})
}

// The readers' suite over a NATS JetStream store: filled through one
// instance, read through another's replica.
func TestNATSStoreSource(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, fill func(store.Backend)) source.Source {
		url := natstest.Start(t).URL()
		open := func() *natsstore.Store {
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			ns, err := natsstore.Open(context.Background(), nc, natsstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ns.Close(); nc.Close() })
			return ns
		}
		fill(open())
		return source.FromStore(open())
	})
}

func TestDataDirSource(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, fill func(store.Backend)) source.Source {
		dir := t.TempDir()
		st, err := store.Open(filepath.Join(dir, source.StoreDirName), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fill(st)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		src, err := source.OpenDataDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
}

type nopSink struct{}

func (nopSink) Enqueue(context.Context, server.Event) (bool, error) { return false, nil }

// serveAPI runs serve's real HTTP handler over st, under prefix (as behind
// a reverse proxy), and returns its base URL.
func serveAPI(t *testing.T, st *store.Store, prefix string) string {
	t.Helper()
	h, err := server.New(server.Config{InsecureNoAuth: true, APIToken: testToken, Events: nopSink{}, Source: source.FromStore(st)})
	if err != nil {
		t.Fatal(err)
	}
	if prefix != "" {
		h = http.StripPrefix(prefix, h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL + prefix
}

func TestHTTPSource(t *testing.T) {
	for name, prefix := range map[string]string{"root": "", "prefix": "/relay-git"} {
		t.Run(name, func(t *testing.T) {
			sourcetest.Run(t, func(t *testing.T, fill func(store.Backend)) source.Source {
				src, err := source.NewHTTP(serveAPI(t, memStore(t, fill), prefix)+"/", testToken)
				if err != nil {
					t.Fatal(err)
				}
				return src
			})
		})
	}
}

func TestDataDirErrors(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, source.StoreDirName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// While another Store (a running serve) holds the directory.
	_, err = source.OpenDataDir(dir)
	if !errors.Is(err, source.ErrLocked) || !strings.Contains(err.Error(), "read through that server instead") {
		t.Errorf("OpenDataDir of a held data dir: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := source.OpenDataDir(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing data dir: %v", err)
	}
	if _, err := source.OpenDataDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "has no snapshot store") {
		t.Errorf("data dir without a store: %v", err)
	}
}

func TestHTTPErrors(t *testing.T) {
	url := serveAPI(t, memStore(t, func(store.Backend) {}), "")
	for _, tok := range []string{"", "wrong"} {
		src, err := source.NewHTTP(url, tok)
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Folders(context.Background())
		if !errors.Is(err, source.ErrUnauthorized) || !strings.Contains(err.Error(), source.TokenEnv) {
			t.Errorf("token %q: %v", tok, err)
		}
	}
	for _, bad := range []string{"", "localhost:8000", "ftp://x", "http://", "http://user:pw@host"} {
		if _, err := source.NewHTTP(bad, ""); err == nil {
			t.Errorf("NewHTTP(%q) accepted", bad)
		}
	}
}
