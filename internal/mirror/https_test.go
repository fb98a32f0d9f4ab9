package mirror

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// gitHTTPServer serves the bare repositories under root with git
// http-backend, behind basic auth accepting only user:token.
func gitHTTPServer(t *testing.T, root, user, token string) *httptest.Server {
	t.Helper()
	execPath, err := exec.Command(testreq.Git(t), "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=" + user},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// HTTPS-style remotes take the token from the environment, send it as
// basic auth, and never log it; a wrong token fails without showing it.
func TestHTTPTokenFromEnvironment(t *testing.T) {
	const token = "glpat-secret-token-value-123"
	bare := bareRepo(t)
	gitIn(t, bare, "config", "http.receivepack", "true")
	srv := gitHTTPServer(t, filepath.Dir(bare), "x-access-token", token)
	url := srv.URL + "/" + filepath.Base(bare)

	st := openStore(t)
	sim := newFolderSim(t, st)
	sim.snap(map[string]string{"a.md": "a\n"})
	logs := &syncBuf{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	env := map[string]string{EnvHTTPSToken: "wrong-token-value-456"}
	getenv := func(k string) string { return env[k] }
	tm := newManager(t, st, t.TempDir(), Config{Getenv: getenv, Logger: logger}, connectorTo(url, "main", ""))
	res := tm.PushFolder(context.Background(), testFolder)
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), EnvHTTPSToken) {
		t.Errorf("wrong token: %v", res[0].Err)
	}
	tm.Close()

	env[EnvHTTPSToken] = token
	tm = newManager(t, st, t.TempDir(), Config{Getenv: getenv, Logger: logger}, connectorTo(url, "main", ""))
	tm.push(t)
	if got, want := gitIn(t, bare, "rev-parse", "main"), linearIDs(t, sim.all())[0]; got != want {
		t.Errorf("main = %s, want %s", got, want)
	}
	for _, secret := range []string{token, "wrong-token-value-456"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a token is in the log:\n%s", logs)
		}
		ps, _ := st.PushState(testFolder, ConnectorID(connectorTo(url, "main", "")))
		if ps != nil && strings.Contains(ps.LastError, secret) {
			t.Errorf("a token is in the push state: %s", ps.LastError)
		}
	}
}

func TestCredentialsNeverOverPlainHTTP(t *testing.T) {
	d := remoteDeps{getenv: func(k string) string {
		if k == EnvHTTPSToken {
			return "tok"
		}
		return ""
	}, httpClient: http.DefaultClient}
	if _, err := newRemote(connectors.Connector{URL: "http://git.example.com/x.git"}, d); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Errorf("token over plain http to a remote host: %v", err)
	}
	// A password in the URL is used but never shown.
	r, err := newRemote(connectors.Connector{URL: "https://bob:hunter2@git.example.com/x.git"}, d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.display, "hunter2") || strings.Contains(r.fetchURL, "hunter2") || strings.Contains(r.ep.String(), "hunter2") {
		t.Errorf("password visible: %s %s %s", r.display, r.fetchURL, r.ep)
	}
	if a, ok := r.auth.(interface{ String() string }); !ok || strings.Contains(a.String(), "hunter2") {
		t.Errorf("auth %v", r.auth)
	}
	// Without credentials, http to anywhere is allowed (anonymous).
	if _, err := newRemote(connectors.Connector{URL: "http://git.example.com/x.git"}, remoteDeps{getenv: func(string) string { return "" }}); err != nil {
		t.Errorf("anonymous http: %v", err)
	}
}
