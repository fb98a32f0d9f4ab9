package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
)

// The demo's scripted editing session: what happens, who does it, and how
// many minutes after the session's start.
type demoStep struct {
	minutes int
	user    string
	what    string
	do      func(f *relaytest.Folder) error
}

func newDemoCmd(opts *globalOptions) *cobra.Command {
	var editsEvery time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a self-contained demo: a stand-in Relay Server feeding a real serve",
		Long: `Start a stand-in Relay Server in this process, seed a small shared folder
(markdown with non-ASCII text, a canvas, an image, a subfolder), replay a short
scripted editing session by two users through real signed webhooks into a real
'serve' on a free port with a temporary data dir and a local bare repository
as connector, then print the commands to try against it. After that a new edit
(a line in Journal.md) arrives every --edits-every, so 'git pull' in a clone
and the mount can be seen changing. Runs until Ctrl-C.

Without --data-dir everything lives in a temporary directory that is removed
at exit. With --data-dir DIR (or RELAY_GIT_DATA_DIR), DIR must not hold an
earlier demo, nothing is removed, and DIR keeps:

  DIR/data        the data dir: db/ (the snapshot store), git_connectors.toml,
                  mirrors/ (the connector's local mirror and status.json)
  DIR/remote.git  the bare repository the connector pushed to

The stand-in Relay Server lives in memory and is gone after Ctrl-C: read the
kept snapshots with --data-dir DIR/data (snapshots, export, mount, git clone
relay::DIR/data/…) or clone DIR/remote.git; the demo itself cannot resume.

No configuration and no network beyond loopback.`,
		Example: `  relay-git-sync demo
  relay-git-sync demo --edits-every 0 --data-dir /tmp/demo`,
		Annotations: stopsOnSignal(),
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if editsEvery < 0 {
				return errors.New("--edits-every must not be negative (0 turns the live edits off)")
			}
			keep := cmd.Flags().Changed("data-dir") || opts.getenv(envDataDir) != ""
			return runDemo(cmd.Context(), opts, keep, editsEvery)
		},
	}
	cmd.Flags().DurationVar(&editsEvery, "edits-every", 5*time.Second, "after the scripted session, make a new edit this often (0 = off)")
	return cmd
}

func runDemo(ctx context.Context, opts *globalOptions, keep bool, editsEvery time.Duration) error {
	base := opts.DataDir
	if !keep {
		tmp, err := os.MkdirTemp("", "relay-git-sync-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		base = tmp
	}
	dataDir := filepath.Join(base, "data")
	remote := filepath.Join(base, "remote.git")
	// A new demo has new relay and folder ids: an earlier demo's store
	// would follow folders the new stand-in server does not have.
	for _, p := range []string{dataDir, remote} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("demo: %s holds an earlier demo (%s): remove it or give another --data-dir", base, p)
		}
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	if err := exec.Command("git", "init", "--quiet", "--bare", "--initial-branch=main", remote).Run(); err != nil {
		return fmt.Errorf("creating the demo's bare repository (is git installed?): %w", err)
	}

	key := make([]byte, 24)
	rand.Read(key)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	apiToken := randomB64(24)
	// The session happened this morning: webhook times follow the script.
	start := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	var clockMu sync.Mutex
	clock := start
	relayKey := randomB64(24)
	relaySrv := relaytest.NewServer(relaytest.Options{
		APIKey: relayKey,
		Now: func() time.Time {
			clockMu.Lock()
			defer clockMu.Unlock()
			return clock
		},
	})
	defer relaySrv.Close()
	relayID := relaySrv.NewRelay()
	folder := relaySrv.NewFolder(relayID)
	connectors := fmt.Sprintf("[[git_connector]]\nrelay_id = %q\nshared_folder_id = %q\nurl = %q\nbranch = \"main\"\n", relayID, folder.ID(), remote)
	gitConfig := filepath.Join(dataDir, defaultConnectorsFile)
	if err := os.WriteFile(gitConfig, []byte(connectors), 0o644); err != nil {
		return err
	}

	sopts := *opts
	sopts.DataDir, sopts.GitConfigFile = dataDir, gitConfig
	sopts.RelayServerURL, sopts.RelayServerAPIKey = relaySrv.URL(), relayKey
	ready := make(chan string, 1)
	so := &serveOptions{
		host: "127.0.0.1", port: 0, commitInterval: 0.5, maxDelay: 5 * time.Second,
		reconcileInterval: time.Minute, webhookSecret: secret, apiToken: apiToken,
		shutdownTimeout: 5 * time.Second, ready: ready,
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	serveErr := make(chan error, 1)
	go func() { serveErr <- runServe(serveCtx, &sopts, so) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-serveErr:
		return fmt.Errorf("demo: serve did not start: %w", err)
	}
	serveURL := "http://" + addr
	// serve's startup reconcile finds the folder empty; then the seeding
	// and the scripted edits arrive as webhooks, dated by the script.
	if err := waitReconcile(ctx, serveURL); err != nil {
		return err
	}
	relaySrv.AddWebhook(relaytest.WebhookConfig{URL: serveURL + "/webhooks", Secret: secret})
	relaySrv.SetEditingUser("alice")
	if err := seedDemo(folder); err != nil {
		return err
	}
	if err := relaySrv.WaitWebhooks(ctx); err != nil {
		return err
	}
	if err := waitFirstSnapshot(ctx, serveURL, apiToken); err != nil {
		return err
	}

	fmt.Fprintf(opts.stdout, "Replaying an editing session into %s …\n", serveURL)
	for _, st := range demoScript() {
		clockMu.Lock()
		clock = start.Add(time.Duration(st.minutes) * time.Minute)
		clockMu.Unlock()
		relaySrv.SetEditingUser(st.user)
		if err := st.do(folder); err != nil {
			return fmt.Errorf("demo step %q: %w", st.what, err)
		}
		if err := relaySrv.WaitWebhooks(ctx); err != nil {
			return err
		}
		fmt.Fprintf(opts.stdout, "  %s  %-5s %s\n", clock.Format("15:04"), st.user, st.what)
		// Let the folder go quiet so each step becomes its own snapshot.
		select {
		case <-time.After(900 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
	if _, failed, lastErr := relaySrv.WebhookStats(); failed > 0 {
		return fmt.Errorf("demo: %d webhooks failed, last: %v", failed, lastErr)
	}

	folderArg := relayID + "/" + folder.ID()
	fmt.Fprintf(opts.stdout, `
relay-git-sync demo is running. Try this:

  export RELAY_GIT_TOKEN=%s
  git clone relay::%s/%s demo-notes        # needs git-remote-relay on PATH
  git clone %s demo-mirror                # the connector's pushed history
  mkdir -p demo-mount && relay-git-sync mount %s demo-mount --server %s
  curl -s -H "Authorization: Bearer $RELAY_GIT_TOKEN" %s/api/v1/folders/%s/snapshots

Data dir: %s
`, apiToken, serveURL, folderArg, remote, folderArg, serveURL, serveURL, folderArg, dataDir)
	if editsEvery > 0 {
		fmt.Fprintf(opts.stdout, "A new line arrives in Journal.md every %s (--edits-every): git pull in the clone and the mount show it.\n", editsEvery)
	}
	fmt.Fprintln(opts.stdout, "Press Ctrl-C to stop.")

	// The live edits end before the stand-in server closes (deferred
	// calls run last in, first out).
	editCtx, stopEdits := context.WithCancel(ctx)
	var edits sync.WaitGroup
	defer edits.Wait()
	defer stopEdits()
	var editErr chan error // stays nil, never ready, without live edits
	if editsEvery > 0 {
		editErr = make(chan error, 1)
		edits.Add(1)
		go func() {
			defer edits.Done()
			editErr <- liveEdits(editCtx, relaySrv, folder, editsEvery, func(t time.Time) {
				clockMu.Lock()
				clock = t
				clockMu.Unlock()
			})
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	case err := <-editErr: // nil once ctx ended
		if err != nil {
			stopServe()
			<-serveErr
			return err
		}
	}
	stopServe()
	if err := <-serveErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintln(opts.stderr, "demo stopped")
	return nil
}

// liveEdits appends a line to Journal.md every interval, as alice and bob
// in turn, dated now, until ctx ends. It fails only when an edit or its
// webhook does.
func liveEdits(ctx context.Context, relaySrv *relaytest.Server, folder *relaytest.Folder, every time.Duration, setClock func(time.Time)) error {
	journal := demoJournal
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := time.Now().UTC()
		setClock(now)
		user := []string{"alice", "bob"}[n%2]
		relaySrv.SetEditingUser(user)
		journal += fmt.Sprintf("- %s %s: live edit %d\n", now.Format("15:04:05"), user, n)
		if err := folder.EditMarkdown("/Journal.md", journal); err != nil {
			return fmt.Errorf("demo: live edit %d: %w", n, err)
		}
		if err := relaySrv.WaitWebhooks(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if _, failed, lastErr := relaySrv.WebhookStats(); failed > 0 {
			return fmt.Errorf("demo: %d webhooks failed, last: %v", failed, lastErr)
		}
	}
}

// waitReconcile polls /metrics until serve's startup reconcile is done.
func waitReconcile(ctx context.Context, serveURL string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(serveURL + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, `relay_git_sync_reconciles_total{result="ok"} `) && !strings.HasSuffix(l, " 0") {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("demo: serve's startup reconcile did not finish within 30 s")
}

// waitFirstSnapshot polls the read API until a folder has a snapshot.
func waitFirstSnapshot(ctx context.Context, serveURL, token string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, serveURL+"/api/v1/folders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var body struct {
				Folders []struct {
					LatestSeq uint64 `json:"latest_seq"`
				} `json:"folders"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err == nil && len(body.Folders) > 0 && body.Folders[0].LatestSeq > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("demo: serve recorded no snapshot of the seeded folder within 30 s")
}

func randomB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func seedDemo(f *relaytest.Folder) error {
	steps := []func() error{
		func() error {
			_, err := f.AddMarkdown("/Welcome.md", "# Willkommen, bienvenue, 欢迎\n\nThis folder is shared through Relay — café ☕ talk and all.\n")
			return err
		},
		func() error { _, err := f.AddFolderEntry("/Ideas"); return err },
		func() error {
			_, err := f.AddMarkdown("/Ideas/brainstorm.md", "- a garden for notes\n- straße names\n")
			return err
		},
		func() error { _, err := f.AddMarkdown("/Ideas/todo.md", "- [ ] pick a name\n"); return err },
		func() error { _, err := f.AddMarkdown("/Journal.md", demoJournal); return err },
		func() error {
			nodes, edges := demoCanvas()
			_, err := f.AddCanvas("/Board.canvas", nodes, edges, map[string]string{"n1": "Start here"})
			return err
		},
		func() error {
			_, err := f.AddFile("/attachments/diagram.png", "image", "image/png", demoPNG(color.RGBA{40, 120, 200, 255}))
			return err
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("seeding the demo folder: %w", err)
		}
	}
	return nil
}

// demoJournal is Journal.md as seeded; live edits append to it.
const demoJournal = "# Journal\n\n"

// demoCanvas is Board.canvas as seeded: a text card pointing at Welcome.md.
func demoCanvas() (nodes, edges []map[string]any) {
	return []map[string]any{
			{"id": "n1", "type": "text", "text": "", "x": 0.0, "y": 0.0, "width": 260.0, "height": 80.0},
			{"id": "n2", "type": "file", "file": "Welcome.md", "x": 320.0, "y": 0.0, "width": 400.0, "height": 300.0},
		},
		[]map[string]any{{"id": "e1", "fromNode": "n1", "fromSide": "right", "toNode": "n2", "toSide": "left"}}
}

func demoScript() []demoStep {
	return []demoStep{
		{5, "alice", "edits Welcome.md", func(f *relaytest.Folder) error {
			return f.EditMarkdown("/Welcome.md", "# Willkommen, bienvenue, 欢迎\n\nThis folder is shared through Relay — café ☕ talk and all.\n\nAlice was here.\n")
		}},
		{12, "bob", "adds Projects/plan.md", func(f *relaytest.Folder) error {
			_, err := f.AddMarkdown("/Projects/plan.md", "# Plan\n\n1. Write\n2. Sync\n3. Clone with git\n")
			return err
		}},
		{20, "alice", "renames Ideas/brainstorm.md", func(f *relaytest.Folder) error {
			return f.Rename("/Ideas/brainstorm.md", "/Ideas/brainstorming.md")
		}},
		{31, "bob", "redraws the diagram", func(f *relaytest.Folder) error {
			return f.UpdateFile("/attachments/diagram.png", demoPNG(color.RGBA{220, 80, 40, 255}))
		}},
		{38, "alice", "links the plan on Board.canvas", func(f *relaytest.Folder) error {
			nodes, edges := demoCanvas()
			nodes = append(nodes, map[string]any{"id": "n3", "type": "file", "file": "Projects/plan.md", "x": 320.0, "y": 360.0, "width": 400.0, "height": 200.0})
			edges = append(edges, map[string]any{"id": "e2", "fromNode": "n1", "fromSide": "bottom", "toNode": "n3", "toSide": "left"})
			return f.EditCanvas("/Board.canvas", nodes, edges, map[string]string{"n1": "Start here, then the plan"})
		}},
		{44, "bob", "deletes Ideas/todo.md", func(f *relaytest.Folder) error {
			return f.Delete("/Ideas/todo.md")
		}},
		{52, "bob", "moves Ideas to Archive/Ideas", func(f *relaytest.Folder) error {
			return f.Rename("/Ideas", "/Archive/Ideas")
		}},
	}
}

// demoPNG draws a small solid image: a real PNG, so viewers open it.
func demoPNG(c color.Color) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}
