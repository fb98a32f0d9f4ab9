// Command largefile measures how much memory `relay-git-sync serve` needs
// for one large attachment: it runs the real serve binary against the fake
// Relay Server (internal/relaytest, in this process) with a folder of one
// note, waits for its first snapshot and push, then adds an attachment of
// -size bytes and reads serve's peak resident set (VmHWM in
// /proc/PID/status) after each phase:
//
//   - baseline: the note synced and pushed;
//   - stored: the attachment downloaded and stored (its snapshot is in the
//     read API; the push to the connector starts at the same time);
//   - ingest: the attachment also pushed to a local bare git repository
//     (the folder's connector);
//   - read: in a fresh serve over the same data dir (its own baseline), the
//     attachment read back through the read API (GET /api/v1/blobs/{id},
//     what the mount and git-remote-relay use), streamed and checked here.
//
// The target (issue 16) is growth under 64 MB over the baseline. Linux
// only (it reads /proc). Run from the module root:
//
//	go run -tags nomsgpack ./bench/largefile
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relay-git-sync/relay-git-sync/bench/internal/benchproc"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

var (
	binFlag = flag.String("bin", "", "relay-git-sync binary (default: build it with go build -tags nomsgpack)")
	size    = flag.Int64("size", 200_000_000, "attachment size in bytes")
	keep    = flag.Bool("keep", false, "keep the data dir and serve's log")
	timeout = flag.Duration("timeout", 10*time.Minute, "give up after this long")
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	if err := run(); err != nil {
		log.Fatal("largefile: ", err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	tmp, cleanup, err := benchproc.Workdir("largefile", *keep)
	if err != nil {
		return err
	}
	defer cleanup()
	bin, err := benchproc.Binary(*binFlag, tmp)
	if err != nil {
		return err
	}
	bare := filepath.Join(tmp, "remote.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", bare).CombinedOutput(); err != nil {
		return fmt.Errorf("git init --bare: %v: %s", err, out)
	}

	const relayKey, apiToken = "bench-relay-key", "bench-api-token"
	srv := relaytest.NewServer(relaytest.Options{APIKey: relayKey})
	defer srv.Close()
	relayID := srv.NewRelay()
	folder := srv.NewFolder(relayID)
	if _, err := folder.AddMarkdown("/note.md", "# a note\n"); err != nil {
		return err
	}
	fid := store.FolderID{Relay: relayID, Folder: folder.ID()}

	dataDir := filepath.Join(tmp, "data")
	os.MkdirAll(dataDir, 0o755)
	conn := fmt.Sprintf("[[git_connector]]\nshared_folder_id = %q\nrelay_id = %q\nurl = %q\n", folder.ID(), relayID, "file://"+bare)
	if err := os.WriteFile(filepath.Join(dataDir, "git_connectors.toml"), []byte(conn), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(), "RELAY_GIT_DATA_DIR="+dataDir, "RELAY_SERVER_URL="+srv.URL(),
		"RELAY_SERVER_API_KEY="+relayKey, "WEBHOOK_SECRET=bench-webhook-secret", "RELAY_GIT_API_TOKEN="+apiToken)
	cmd, addr, err := startServe(ctx, bin, filepath.Join(tmp, "serve.log"), env)
	if err != nil {
		return err
	}
	defer stopServe(cmd)
	base := "http://" + addr
	src, err := source.NewHTTP(base, apiToken)
	if err != nil {
		return err
	}
	defer src.Close()

	// Baseline: the note snapshotted and pushed.
	if _, err := waitFile(ctx, src, fid, "note.md"); err != nil {
		return err
	}
	if err := waitPushed(ctx, bare, "note.md"); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	baseline, err := hwm(pid)
	if err != nil {
		return err
	}
	anon, err := watchAnon(pid)
	if err != nil {
		return err
	}
	report("baseline", baseline, baseline, anon)

	log.Printf("adding a %d-byte attachment …", *size)
	data := make([]byte, *size)
	rand.Read(data)
	want := sha256.Sum256(data)
	start := time.Now()
	if _, err := folder.AddFile("/big.bin", "file", "application/octet-stream", data); err != nil {
		return err
	}
	data = nil
	f, err := waitFile(ctx, src, fid, "big.bin")
	if err != nil {
		return err
	}
	stored, err := hwm(pid)
	if err != nil {
		return err
	}
	report(fmt.Sprintf("stored (%.1fs: snapshot cut, push starting)", time.Since(start).Seconds()), stored, baseline, anon)
	if err := waitPushed(ctx, bare, "big.bin"); err != nil {
		return err
	}
	ingest, err := hwm(pid)
	if err != nil {
		return err
	}
	report(fmt.Sprintf("ingest (%.1fs: download, store, push)", time.Since(start).Seconds()), ingest, baseline, anon)
	close(anon.stop)

	// Reading on its own, in a fresh serve over the same data dir.
	stopServe(cmd)
	cmd, addr, err = startServe(ctx, bin, filepath.Join(tmp, "serve2.log"), env)
	if err != nil {
		return err
	}
	defer stopServe(cmd)
	base = "http://" + addr
	pid = cmd.Process.Pid
	src2, err := source.NewHTTP(base, apiToken)
	if err != nil {
		return err
	}
	defer src2.Close()
	if _, err := waitFile(ctx, src2, fid, "big.bin"); err != nil {
		return err
	}
	baseline2, err := hwm(pid)
	if err != nil {
		return err
	}
	anon, err = watchAnon(pid)
	if err != nil {
		return err
	}
	defer close(anon.stop)
	report("baseline (fresh serve)", baseline2, baseline2, anon)
	start = time.Now()
	got, n, err := readBlob(ctx, base, apiToken, f.Blob)
	if err != nil {
		return err
	}
	if n != *size || got != want {
		return fmt.Errorf("read API: got %d bytes (sha256 %x), want %d", n, got, *size)
	}
	read, err := hwm(pid)
	if err != nil {
		return err
	}
	report(fmt.Sprintf("read (%.1fs: GET /api/v1/blobs/{id})", time.Since(start).Seconds()), read, baseline2, anon)
	fmt.Printf("target: peak growth < 64 MB: ingest %v, read %v\n", ingest-baseline < 64e6, read-baseline2 < 64e6)
	return nil
}

func startServe(ctx context.Context, bin, logPath string, env []string) (*exec.Cmd, string, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--host", "127.0.0.1", "--port", "0", "--commit-interval", "0.2", "--reconcile-interval", "1s")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	addr, err := benchproc.WaitServing(ctx, logPath)
	if err != nil {
		stopServe(cmd)
		return nil, "", err
	}
	return cmd, addr, nil
}

// stopServe stops serve (once; later calls do nothing).
func stopServe(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

// report prints a phase's peak resident set (VmHWM) and its growth, and
// the peak of the anonymous part (heap and stacks, sampled: see anonPeak)
// over its level at the baseline.
func report(phase string, peak, baseline int64, a *anonPeak) {
	fmt.Printf("%-45s VmHWM %7.1f MB  growth %7.1f MB  anon growth %7.1f MB\n", phase,
		float64(peak)/1e6, float64(peak-baseline)/1e6, float64(a.max.Load()-a.base)/1e6)
}

// hwm returns the process's peak resident set size in bytes.
func hwm(pid int) (int64, error) { return benchproc.StatusField(pid, "VmHWM") }

// anonPeak samples a process's RssAnon every 10 ms. VmHWM counts the file
// pages Badger maps too (its value log is written through mmap, and the
// written pages stay resident until the kernel needs them back); the
// kernel keeps no peak of the anonymous part alone.
type anonPeak struct {
	base int64 // RssAnon at the baseline
	max  atomic.Int64
	stop chan struct{}
}

func watchAnon(pid int) (*anonPeak, error) {
	base, err := benchproc.StatusField(pid, "RssAnon")
	if err != nil {
		return nil, err
	}
	a := &anonPeak{base: base, stop: make(chan struct{})}
	a.max.Store(base)
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-t.C:
			}
			if v, err := benchproc.StatusField(pid, "RssAnon"); err == nil && v > a.max.Load() {
				a.max.Store(v)
			}
		}
	}()
	return a, nil
}

// waitFile waits for a snapshot whose tree has path.
func waitFile(ctx context.Context, src source.Source, f store.FolderID, path string) (store.File, error) {
	for {
		if snap, err := src.Snapshot(ctx, f, 0); err == nil {
			for _, fl := range snap.Files {
				if fl.Path == path {
					return fl, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return store.File{}, fmt.Errorf("no snapshot with %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitPushed waits for the bare repository's main to have path.
func waitPushed(ctx context.Context, bare, path string) error {
	for {
		out, err := exec.Command("git", "-C", bare, "ls-tree", "-r", "--name-only", "main").Output()
		if err == nil && strings.Contains("\n"+string(out), "\n"+path+"\n") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never reached the connector: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readBlob streams a blob from the read API and returns its sha256 and size.
func readBlob(ctx context.Context, base, token string, id store.BlobID) ([32]byte, int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/blobs/"+id.String(), nil)
	if err != nil {
		return [32]byte{}, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return [32]byte{}, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return [32]byte{}, 0, fmt.Errorf("GET blob: %s", resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}
