package webui_test

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/relay-git-sync/relay-git-sync/internal/daemon"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

const (
	relayKey     = "fake-relay-server-key"
	apiToken     = "browser-read-token-0123456789abcdef"
	writeToken   = "browser-write-token-0123456789abcdef"
	hookSecret   = "browser-webhook-secret-0123456789"
	screenshotEv = "RELAY_GIT_SYNC_SCREENSHOTS"
)

// servedVault is a real `serve` (daemon.Serve) following one folder of the
// fake Relay Server, with writes on, and a read source over its API.
type servedVault struct {
	t      *testing.T
	base   string
	relay  *relaytest.Server
	folder *relaytest.Folder
	src    source.Source
	id     store.FolderID
}

func startServe(t *testing.T) *servedVault {
	t.Helper()
	srv := relaytest.NewServer(relaytest.Options{APIKey: relayKey})
	t.Cleanup(srv.Close)
	f := srv.NewFolder(srv.NewRelay())
	if _, err := f.AddMarkdown("/notes/a.md", "# A\n\nfirst line\nshared line\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AddMarkdown("/notes/keep.md", "# Keep\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AddCanvas("/board.canvas", []map[string]any{
		{"id": "n1", "type": "text", "x": 0.0, "y": 0.0, "width": 240.0, "height": 80.0},
		{"id": "n2", "type": "file", "file": "notes/keep.md", "x": 360.0, "y": 140.0, "width": 240.0, "height": 80.0},
	}, []map[string]any{{"id": "e1", "fromNode": "n1", "fromSide": "right", "toNode": "n2", "toSide": "left"}},
		map[string]string{"n1": "Plan the week"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conns := filepath.Join(dir, "git_connectors.toml")
	toml := fmt.Sprintf("[[git_connector]]\nshared_folder_id = %q\nrelay_id = %q\nurl = \"git@git.example.invalid:notes.git\"\n", f.ID(), f.RelayID())
	if err := os.WriteFile(conns, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Serve(ctx, daemon.ServeConfig{
			Config: daemon.Config{DataDir: dir, ConnectorsFile: conns, RelayServerURL: srv.URL(), RelayServerAPIKey: relayKey,
				Getenv: func(string) string { return "" }},
			Host: "127.0.0.1", CommitInterval: 200 * time.Millisecond, MaxDelay: 2 * time.Second,
			WebhookSecret: hookSecret, APIToken: apiToken, AllowWrites: true, WriteToken: writeToken,
			ShutdownTimeout: 10 * time.Second, Ready: func(addr string) { ready <- addr },
		})
	}()
	v := &servedVault{t: t, relay: srv, folder: f, id: store.FolderID{Relay: f.RelayID(), Folder: f.ID()}}
	select {
	case addr := <-ready:
		v.base = "http://" + addr
	case err := <-done:
		cancel()
		t.Fatalf("serve did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve not listening after 30 s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20 s")
		}
	})
	srv.AddWebhook(relaytest.WebhookConfig{URL: v.base + "/webhooks", Secret: hookSecret})
	src, err := source.NewHTTP(v.base, apiToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	v.src = src
	return v
}

// waitSnapshot waits until the folder has a snapshot after seq with
// numFiles files, and returns its seq.
func (v *servedVault) waitSnapshot(after uint64, numFiles int) uint64 {
	v.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		infos, err := v.src.Snapshots(context.Background(), v.id, after)
		if err == nil {
			for _, in := range infos {
				if in.NumFiles == numFiles {
					return in.Seq
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	v.t.Fatalf("no snapshot after %d with %d files within 20 s", after, numFiles)
	return 0
}

// consoleLog collects what the pages write to the console.
type consoleLog struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func (c *consoleLog) follow(ctx context.Context) {
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
}

// problems are the errors and exceptions, less the refusals the test
// asks for on purpose (a wrong token, a restore with the read token),
// which Chromium logs as failed loads.
func (c *consoleLog) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException && m.Type != chromedp.ConsoleWarning {
			continue
		}
		refusal := strings.Contains(m.Text, "Failed to load resource") &&
			((strings.Contains(m.Text, "status of 401") && strings.HasSuffix(m.URL, "/ui/login")) ||
				(strings.Contains(m.Text, "status of 403") && strings.Contains(m.URL, "/restore?")))
		if !refusal {
			out = append(out, fmt.Sprintf("%s %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
		}
	}
	return out
}

// TestBrowser drives the pages in a real Chromium against a real serve
// and the fake Relay Server: a wrong token is refused; sign in with the
// write token; open the folder; find the deleted note through its
// history; diff two versions; download a snapshot as .zip; restore the
// note and see it come back on a timeline open in another tab (by the
// server-sent event); a read-token session gets no restore and a 403.
// Every page is screenshotted, and any console error fails the test.
func TestBrowser(t *testing.T) {
	chromium := testreq.Chromium(t)
	shots := os.Getenv(screenshotEv)
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	v := startServe(t)
	t0 := time.Now()
	s1 := v.waitSnapshot(0, 3)
	if err := v.folder.EditMarkdown("/notes/a.md", "# A\n\nsecond line, edited\nshared line\n"); err != nil {
		t.Fatal(err)
	}
	s2 := v.waitSnapshot(s1, 3)
	if err := v.folder.Delete("/notes/a.md"); err != nil {
		t.Fatal(err)
	}
	s3 := v.waitSnapshot(s2, 2)
	t.Logf("three snapshots in %.1fs", time.Since(t0).Seconds())

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1280, 900))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()
	var logs consoleLog
	if err := chromedp.Do(ctx); err != nil { // starts the browser and its first tab
		t.Fatal(err)
	}
	logs.follow(ctx)

	start := time.Now()
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		t.Logf("%5.1fs %s", time.Since(start).Seconds(), what)
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(ctx context.Context, sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	eval := func(ctx context.Context, js string) any {
		t.Helper()
		r, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return r
	}
	shot := func(ctx context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Every page has its landmarks and a title.
	landmarks := func(ctx context.Context) {
		t.Helper()
		if got := eval(ctx, `!!(document.title && document.querySelector("main") && document.querySelector("nav") && document.querySelector("h1"))`); got != true {
			t.Errorf("%v: a page without title, main, nav or h1", eval(ctx, "location.href"))
		}
	}

	// A wrong token is refused.
	step("open the sign-in page",
		chromedp.Navigate(v.base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("p.error")))
	if msg := text(ctx, "p.error"); !strings.Contains(msg, "not valid") {
		t.Fatalf("wrong token: %q", msg)
	}
	landmarks(ctx)
	shot(ctx, "01-sign-in-refused")

	step("sign in with the write token",
		chromedp.Clear(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), writeToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("table.list tbody a")))
	landmarks(ctx)
	shot(ctx, "02-folders")

	step("open the folder",
		chromedp.Click(chromedp.CSS("table.list tbody a")),
		chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
	landmarks(ctx)
	if row := text(ctx, fmt.Sprintf("#s%d", s3)); !strings.Contains(row, "deleted") || !strings.Contains(row, "notes/a.md") {
		t.Fatalf("timeline row of snapshot %d: %q", s3, row)
	}
	shot(ctx, "03-timeline")
	// Times are rewritten into the browser's zone; the UTC text stays as a tooltip.
	if tz := eval(ctx, `(() => { const el = document.querySelector("time"); return !el.textContent.endsWith("UTC") && el.title.endsWith("UTC") })()`); tz != true {
		t.Error("the timeline's times are not shown in the viewer's time zone")
	}

	step("open the deleted note's history from the timeline",
		chromedp.Click(chromedp.CSS(fmt.Sprintf("#s%d .changes a", s3))),
		chromedp.WaitVisible(chromedp.CSS("form.history")))
	landmarks(ctx)
	shot(ctx, "04-history")

	step("compare the last two versions",
		chromedp.Click(chromedp.CSS("form.history button")),
		chromedp.WaitVisible(chromedp.CSS("table.diff")))
	landmarks(ctx)
	diff := text(ctx, "table.diff")
	if !strings.Contains(diff, "first line") || !strings.Contains(diff, "second line, edited") {
		t.Fatalf("diff:\n%s", diff)
	}
	if n := eval(ctx, `document.querySelectorAll("table.diff mark").length`); n == float64(0) {
		t.Error("the diff marks no changed words")
	}
	shot(ctx, "05-diff")
	// Dark mode follows the system's preference.
	dark := func(on string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: on}}})
			return err
		})
	}
	step("dark mode", dark("dark"))
	if bg := eval(ctx, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(21, 23, 26)" {
		t.Errorf("dark mode background %v", bg)
	}
	shot(ctx, "05-diff-dark")
	step("light mode", dark("light"))
	step("phone width", chromedp.EmulateViewport(390, 844))
	if fits := eval(ctx, `document.documentElement.scrollWidth <= window.innerWidth`); fits != true {
		t.Error("the diff page scrolls sideways at phone width")
	}
	shot(ctx, "06-diff-phone")
	step("desktop width", chromedp.EmulateViewport(1280, 900))

	step("a canvas",
		chromedp.Navigate(fmt.Sprintf("%s/ui/f/%s/%s/s/%d/file?path=board.canvas", v.base, v.id.Relay, v.id.Folder, s1)),
		chromedp.WaitVisible(chromedp.CSS("svg.canvas")))
	if n := eval(ctx, `document.querySelectorAll("svg.canvas rect").length + "/" + document.querySelectorAll("svg.canvas line").length`); n != "2/1" {
		t.Errorf("canvas drawn with %v boxes/arrows, want 2/1", n)
	}
	if txt := eval(ctx, `document.querySelector("svg.canvas").textContent`); !strings.Contains(fmt.Sprint(txt), "Plan the week") {
		t.Errorf("canvas drawing text %q", txt)
	}
	landmarks(ctx)
	shot(ctx, "05-canvas")

	// Download snapshot 2 as a zip.
	downloads := t.TempDir()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	step("download a snapshot",
		chromedp.Navigate(fmt.Sprintf("%s/ui/f/%s/%s/s/%d/", v.base, v.id.Relay, v.id.Folder, s2)),
		chromedp.WaitVisible(chromedp.CSS("table.files")),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true),
			})
			return err
		}),
		chromedp.Click(chromedp.CSS(`a[href$="/zip"]`)))
	landmarks(ctx)
	shot(ctx, "07-snapshot")
	var zipPath string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			zipPath = filepath.Join(downloads, ev.GUID)
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the zip download was canceled")
		}
	}
	if got := zipFiles(t, zipPath); got["notes/a.md"] != "# A\n\nsecond line, edited\nshared line\n" || got["notes/keep.md"] != "# Keep\n" || len(got) != 3 {
		t.Fatalf("the downloaded zip holds %q", got)
	}
	// And the deleted note's last version on its own.
	fileProgress := chromedp.Events(ctx, browser.DownloadProgress)
	step("download a file",
		chromedp.Navigate(fmt.Sprintf("%s/ui/f/%s/%s/s/%d/file?path=notes%%2Fa.md", v.base, v.id.Relay, v.id.Folder, s2)),
		chromedp.WaitVisible(chromedp.CSS("a[download]")),
		chromedp.Click(chromedp.CSS("a[download]")))
	var notePath string
	for ev, err := range fileProgress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			notePath = filepath.Join(downloads, ev.GUID)
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the note download was canceled")
		}
	}
	if b, err := os.ReadFile(notePath); err != nil || string(b) != "# A\n\nsecond line, edited\nshared line\n" {
		t.Fatalf("the downloaded note holds %q (%v)", b, err)
	}

	// A second tab follows the timeline while the first one restores.
	tab2, cancelTab2 := chromedp.NewContext(ctx)
	defer cancelTab2()
	logs.follow(tab2)
	if err := chromedp.Do(tab2, chromedp.Navigate(fmt.Sprintf("%s/ui/f/%s/%s/", v.base, v.id.Relay, v.id.Folder)),
		chromedp.WaitVisible(chromedp.CSS("ol.timeline"))); err != nil {
		t.Fatalf("timeline in a second tab: %v", err)
	}

	step("open the note's last version from its history",
		chromedp.Navigate(fmt.Sprintf("%s/ui/f/%s/%s/history?path=notes%%2Fa.md", v.base, v.id.Relay, v.id.Folder)),
		chromedp.WaitVisible(chromedp.CSS("form.history")),
		chromedp.Click(chromedp.CSS("form.history tbody tr:first-child td:last-child a")),
		chromedp.WaitVisible(chromedp.CSS("article.markdown")))
	landmarks(ctx)
	shot(ctx, "08-file")
	step("preview the restore",
		chromedp.Click(chromedp.CSS(`a[href*="/restore?"]`)),
		chromedp.WaitVisible(chromedp.CSS("button.danger")))
	landmarks(ctx)
	if list := text(ctx, "ul.actions-list"); !strings.Contains(list, "notes/a.md") {
		t.Fatalf("restore preview: %q", list)
	}
	shot(ctx, "09-restore-preview")
	if _, err := v.src.Snapshots(context.Background(), v.id, s3); err != nil {
		t.Fatal(err)
	}
	step("confirm the restore",
		chromedp.Click(chromedp.CSS("button.danger")),
		chromedp.WaitVisible(chromedp.CSS(`main p[role="status"]`)))
	shot(ctx, "10-restored")

	// The note comes back as a new snapshot; the open timeline shows it
	// without a reload.
	s4 := v.waitSnapshot(s3, 3)
	if err := chromedp.Do(tab2, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf("#s%d", s4)))); err != nil {
		t.Fatalf("the open timeline did not show snapshot %d: %v", s4, err)
	}
	if live := text(tab2, "#live"); !strings.Contains(live, "new snapshot") {
		t.Errorf("the live region says %q", live)
	}
	shot(tab2, "11-timeline-new-snapshot")
	if row := text(tab2, fmt.Sprintf("#s%d", s4)); !strings.Contains(row, "added") || !strings.Contains(row, "notes/a.md") {
		t.Fatalf("timeline row of the restore: %q", row)
	}
	step("the restored note",
		chromedp.Navigate(fmt.Sprintf("%s/ui/f/%s/%s/s/%d/file?path=notes%%2Fa.md", v.base, v.id.Relay, v.id.Folder, s4)),
		chromedp.WaitVisible(chromedp.CSS("article.markdown")))
	if body := text(ctx, "article.markdown"); !strings.Contains(body, "second line, edited") {
		t.Fatalf("restored note: %q", body)
	}
	step("phone width", chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(fmt.Sprintf("%s/ui/f/%s/%s/", v.base, v.id.Relay, v.id.Folder)),
		chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
	if fits := eval(ctx, `document.documentElement.scrollWidth <= window.innerWidth`); fits != true {
		t.Error("the timeline scrolls sideways at phone width")
	}
	shot(ctx, "12-timeline-phone")
	step("desktop width", chromedp.EmulateViewport(1280, 900))

	// A read-token session: no restore link, and 403 when it asks anyway.
	step("sign out, sign in with the read token",
		chromedp.Click(chromedp.CSS("form.signout button")),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), apiToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("table.list tbody a")),
		chromedp.Navigate(fmt.Sprintf("%s/ui/f/%s/%s/s/%d/file?path=notes%%2Fa.md", v.base, v.id.Relay, v.id.Folder, s2)),
		chromedp.WaitVisible(chromedp.CSS("article.markdown")))
	if n := eval(ctx, `document.querySelectorAll('a[href*="/restore?"]').length`); n != float64(0) {
		t.Error("a read-token session is offered a restore")
	}
	step("restore with the read token",
		chromedp.Navigate(fmt.Sprintf("%s/ui/f/%s/%s/restore?seq=%d&path=notes%%2Fa.md", v.base, v.id.Relay, v.id.Folder, s2)),
		chromedp.WaitVisible(chromedp.CSS("p.error")))
	if msg := text(ctx, "p.error"); !strings.Contains(msg, "write token") {
		t.Errorf("read-token restore: %q", msg)
	}
	shot(ctx, "13-restore-refused")

	for _, p := range logs.problems() {
		t.Errorf("console: %s", p)
	}
}

func zipFiles(t *testing.T, p string) map[string]string {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatalf("the download is not a zip: %v", err)
	}
	defer zr.Close()
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = string(b)
	}
	return out
}
