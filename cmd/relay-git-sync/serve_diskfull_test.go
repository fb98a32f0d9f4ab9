package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// TestServeDiskFull runs the real binary with its data dir on a 16 MiB tmpfs
// and fills it with 1 MiB attachments announced by signed webhooks. Before
// the free-space guard, serve died with SIGBUS in Badger's mmapped value log
// (issue 17). Now, once the disk is full: webhooks answer 503, /health
// answers 503 and says why, the data_dir_full metric is 1 and the process
// stays up. Then the tmpfs grows; serve resumes by itself, /health answers
// 200, every attachment (those whose webhook was acknowledged, and through
// the folder's later syncs the refused ones) is in the latest snapshot with
// its content, every acknowledged event is recorded on a snapshot, and
// SIGTERM ends serve with exit status 0.
func TestServeDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and mounts a tmpfs (skipped with -short)")
	}
	if os.Geteuid() != 0 {
		testreq.Missing(t, "root, to mount a tmpfs for the data dir (CI runs as root)")
	}
	goTool := testreq.Go(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "relay-git-sync")
	if out, err := exec.Command(goTool, "build", "-tags", "nomsgpack", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the binary: %v\n%s", err, out)
	}

	fs := filepath.Join(tmp, "fs")
	must(t, os.Mkdir(fs, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", fs).CombinedOutput(); err != nil {
		t.Fatalf("mounting a 16 MiB tmpfs on %s: %v: %s", fs, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", fs).CombinedOutput(); err != nil {
			t.Errorf("unmounting the tmpfs %s: %v: %s", fs, err, out)
		}
	})

	srv := relaytest.NewServer(relaytest.Options{APIKey: fakeRelayKey})
	defer srv.Close()
	folder := srv.NewFolder(srv.NewRelay())
	_, err := folder.AddMarkdown("/readme.md", "# attachments\n")
	must(t, err)
	dataDir := filepath.Join(fs, "data")
	writeConnectors(t, dataDir, folder)
	secret := newWhsec(t)
	port := freePort(t)
	p := &serveProc{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), apiToken: testAPIToken}

	logPath := filepath.Join(tmp, "serve.log") // outside the tmpfs, which fills up
	logf, err := os.Create(logPath)
	must(t, err)
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--commit-interval", "0.2", "--max-delay", "1s", "--reconcile-interval", "0")
	cmd.Env = append(os.Environ(),
		"RELAY_SERVER_URL="+srv.URL(), "RELAY_SERVER_API_KEY="+fakeRelayKey,
		"RELAY_GIT_DATA_DIR="+dataDir, "WEBHOOK_SECRET="+secret, "RELAY_GIT_API_TOKEN="+testAPIToken)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Registered after the mount: runs before the unmount.
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			// A Go crash is followed by every goroutine's stack: show
			// its first lines rather than the tail.
			if i := strings.Index(string(log), "\nfatal error"); i >= 0 {
				log = log[:min(len(log), i+2000)]
			}
			t.Logf("serve.log:\n%s", tail(string(log), 60))
		}
	})
	alive := func(when string) {
		t.Helper()
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("serve exited %s: %v", when, err)
		default:
		}
	}
	health := func() (int, string) {
		t.Helper()
		code, b, err := p.get("/health")
		if err != nil {
			alive("while /health was asked")
			t.Fatalf("GET /health: %v", err)
		}
		return code, string(b)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, _, err := p.get("/health"); err == nil && code == http.StatusOK {
			break
		}
		alive("at start")
		if time.Now().After(deadline) {
			t.Fatal("serve did not answer /health with 200 within 20s")
		}
	}
	// The reconcile at start (the only one: --reconcile-interval 0) is done
	// before the first attachment, so each attachment reaches a snapshot
	// only through webhooks: the events' users show which ones.
	p.waitSnapshot(folder, 0, 20*time.Second, nil)

	// One attachment and one webhook at a time, as relay-server sends
	// them. The bytes are random so nothing compresses them.
	type attachment struct {
		path  string
		data  []byte
		acked bool
	}
	var files []*attachment
	add := func() int {
		t.Helper()
		a := &attachment{path: fmt.Sprintf("/files/%03d.bin", len(files)), data: make([]byte, 1<<20)}
		rand.Read(a.data)
		_, err := folder.AddFile(a.path, "file", "application/octet-stream", a.data)
		must(t, err)
		files = append(files, a)
		code, body, err := srv.SendWebhook(context.Background(), p.webhookURL(), secret,
			relaytest.Webhook{DocID: relay.CompoundID(folder.RelayID(), folder.ID()), User: fmt.Sprintf("u%03d", len(files)-1)})
		if err != nil {
			alive("after a webhook")
			t.Fatalf("webhook for %s: %v", a.path, err)
		}
		a.acked = code >= 200 && code < 300
		if !a.acked && code != http.StatusServiceUnavailable {
			t.Fatalf("webhook for %s: HTTP %d %s, want 2xx or 503", a.path, code, body)
		}
		return code
	}

	// landed waits until the latest snapshot lists the last attachment, so
	// the next one is added only after its sync (a sync that saw it would
	// leave its own event nothing to record). With untilFull it also stops
	// once the disk is full, when the attachment cannot land.
	landed := func(untilFull bool) {
		t.Helper()
		want := strings.TrimPrefix(files[len(files)-1].path, "/")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var snap apiSnapshot
			if err := p.getJSON(folderPath(folder)+"/snapshots/latest", &snap); err == nil {
				for _, f := range snap.Files {
					if f.Path == want {
						return
					}
				}
			}
			if code, _ := health(); untilFull && code == http.StatusServiceUnavailable {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is in no snapshot 10s after its webhook was acknowledged", want)
			}
		}
	}

	// Fill the disk: 16 MiB cannot hold 40 attachments, so webhooks must
	// start answering 503.
	refused := 0
	for i := 0; i < 40 && refused < 3; i++ {
		if add() == http.StatusServiceUnavailable {
			refused++
			time.Sleep(200 * time.Millisecond)
		} else {
			landed(true)
		}
		alive(fmt.Sprintf("after %d attachments", len(files)))
	}
	if refused == 0 {
		t.Fatalf("%d attachments of 1 MiB on a 16 MiB data dir and no webhook answered 503", len(files))
	}
	acked := 0
	for _, a := range files {
		if a.acked {
			acked++
		}
	}
	if acked == 0 {
		t.Fatal("no webhook was acknowledged before the disk was full: the test proves nothing")
	}
	code, body := health()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "space") {
		t.Fatalf("/health on a full disk: HTTP %d %s, want 503 saying the data dir is out of space", code, body)
	}
	if full := p.metric("relay_git_sync_data_dir_full"); full != 1 {
		t.Errorf("relay_git_sync_data_dir_full = %v on a full disk, want 1", full)
	}
	if p.metric("relay_git_sync_data_dir_free_bytes") <= 0 {
		t.Error("relay_git_sync_data_dir_free_bytes is not reported")
	}
	alive("on a full disk")
	t.Logf("disk full after %d attachments: %d webhooks acknowledged, %d answered 503; /health: %s", len(files), acked, refused, body)

	// Space comes back: serve resumes by itself.
	if out, err := exec.Command("mount", "-o", "remount,size=96m", fs).CombinedOutput(); err != nil {
		t.Fatalf("growing the tmpfs to 96 MiB: %v: %s", err, out)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body = health()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health after the disk grew: HTTP %d %s, want 200 within 15s", code, body)
		}
	}
	for range 3 {
		if code := add(); code < 200 || code >= 300 {
			t.Fatalf("webhook after the disk grew: HTTP %d, want 2xx", code)
		}
		landed(false)
	}

	// Every acknowledged attachment lands with its bytes, and so do the
	// refused ones: the folder's sync for a later webhook fetches every
	// attachment its metadata lists.
	var tree map[string]string
	var missing []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		alive("after the disk grew")
		tree, _, err = p.tree(folder, 0)
		missing = missing[:0]
		for _, a := range files {
			if tree[strings.TrimPrefix(a.path, "/")] != string(a.data) {
				missing = append(missing, fmt.Sprintf("%s (acknowledged %v)", a.path, a.acked))
			}
		}
		if err == nil && len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the disk grew, the latest snapshot lacks %d of %d attachments (err %v): %s",
				len(missing), len(files), err, strings.Join(missing, ", "))
		}
	}
	// Each acknowledged webhook's event (its user is unique) is recorded on
	// a snapshot, and the queue is empty: no acknowledged event was dropped
	// or left behind on the full disk.
	for deadline := time.Now().Add(10 * time.Second); p.metric("relay_git_sync_queue_depth") != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if d := p.metric("relay_git_sync_queue_depth"); d != 0 {
		t.Errorf("queue depth %v after every attachment landed, want 0", d)
	}
	snaps, err := p.snapshots(folder)
	must(t, err)
	users := map[string]bool{}
	for _, s := range snaps {
		for _, u := range s.Users {
			users[u] = true
		}
	}
	for i, a := range files {
		if u := fmt.Sprintf("u%03d", i); a.acked && !users[u] {
			t.Errorf("the acknowledged webhook for %s (user %s) is recorded on no snapshot", a.path, u)
		}
	}
	if full := p.metric("relay_git_sync_data_dir_full"); full != 0 {
		t.Errorf("relay_git_sync_data_dir_full = %v after the disk grew, want 0", full)
	}

	must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("serve after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within 20s of SIGTERM")
	}
	log, err := os.ReadFile(logPath)
	must(t, err)
	for _, bad := range []string{"fatal error", "SIGBUS", "panic:"} {
		if strings.Contains(string(log), bad) {
			t.Errorf("serve's log contains %q", bad)
		}
	}
	if !strings.Contains(string(log), "writes resumed") {
		t.Error(`serve's log has no "writes resumed" line after the disk grew`)
	}
	t.Logf("%d attachments, %d acknowledged before the disk filled, all in the latest snapshot", len(files), acked)
}
