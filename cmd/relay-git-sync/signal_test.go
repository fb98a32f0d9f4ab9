package main

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
)

// TestServeStopsWithExitZero runs the real binary: serve, with its secrets
// from --webhook-secret-file and --api-token-file and no Relay Server key,
// warns about the short secret and the empty key, answers the read API with
// the file's token, and exits 0 on SIGTERM and on SIGINT (systemd counts 143
// as a failure); an interrupted sync keeps 143.
func TestServeStopsWithExitZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; run without -short")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "relay-git-sync")
	if out, err := exec.Command("go", "build", "-tags", "nomsgpack", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the binary: %v\n%s", err, out)
	}
	srv := relaytest.NewServer(relaytest.Options{})
	defer srv.Close()
	f := srv.NewFolder(srv.NewRelay())
	doc, err := f.AddMarkdown("/a.md", "a\n")
	must(t, err)
	secretFile, tokenFile := filepath.Join(tmp, "secret"), filepath.Join(tmp, "token")
	must(t, os.WriteFile(secretFile, []byte("short\n"), 0o600))
	must(t, os.WriteFile(tokenFile, []byte(testAPIToken+"\n"), 0o600))

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			port := freePort(t)
			var logs syncBuffer
			cmd := exec.Command(bin, "--data-dir", filepath.Join(tmp, "data-"+strconv.Itoa(int(sig))), "serve",
				"--host", "127.0.0.1", "--port", strconv.Itoa(port),
				"--webhook-secret-file", secretFile, "--api-token-file", tokenFile)
			cmd.Env = append(os.Environ(), "RELAY_SERVER_URL="+srv.URL(), "RELAY_SERVER_API_KEY=", "WEBHOOK_SECRET=", "RELAY_GIT_API_TOKEN=")
			cmd.Stdout, cmd.Stderr = &logs, &logs
			must(t, cmd.Start())
			defer cmd.Process.Kill()
			p := &serveProc{t: t, url: "http://127.0.0.1:" + strconv.Itoa(port), apiToken: testAPIToken}
			deadline := time.Now().Add(20 * time.Second)
			for {
				if code, _, err := p.get("/api/v1/folders"); err == nil && code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("serve did not answer the read API with the token from --api-token-file\n%s", logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The secret from the file authenticates webhooks.
			send(t, srv, p.webhookURL(), "short", relaytest.Webhook{DocID: f.RelayID() + "-" + doc}, http.StatusOK)
			must(t, cmd.Process.Signal(sig))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve stopped by %v: %v, want exit status 0\n%s", sig, err, logs.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("serve did not stop on %v", sig)
			}
			for _, want := range []string{"only 5 characters long", "RELAY_SERVER_API_KEY is empty"} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, logs.String())
				}
			}
		})
	}

	t.Run("interrupted sync", func(t *testing.T) {
		srv.InjectFault(relaytest.RouteAsUpdate, "", relaytest.Fault{Delay: 10 * time.Second})
		defer srv.ClearFaults()
		cmd := exec.Command(bin, "--data-dir", filepath.Join(tmp, "sync"), "sync", "--relay-id", f.RelayID(), "--folder-id", f.ID())
		cmd.Env = append(os.Environ(), "RELAY_SERVER_URL="+srv.URL())
		must(t, cmd.Start())
		defer cmd.Process.Kill()
		deadline := time.Now().Add(10 * time.Second)
		for srv.Requests(relaytest.RouteAsUpdate) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		must(t, cmd.Process.Signal(syscall.SIGTERM))
		var ee *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 143 {
			t.Errorf("sync interrupted by SIGTERM: %v, want exit status 143", err)
		}
	})
}
