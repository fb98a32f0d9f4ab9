package main

import (
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/yjsoracle"
)

const testWriteToken = "write-token-for-tests-0123456789"

// TestRestoreThroughServe: a note edited, a canvas and an image deleted in
// Relay come back with `restore --server`, as the documents they were;
// --dry-run and a missing write token write nothing; the restore's own
// webhooks make the next snapshot equal to the restored one; the real yjs
// reads what was written; restoring from the data dir works once serve is
// gone.
func TestRestoreThroughServe(t *testing.T) {
	t.Parallel()
	fx := newServeFixture(t)
	canvasID, err := fx.folder.AddCanvas("/board.canvas",
		[]map[string]any{{"id": "n1", "type": "text", "x": 0.0, "y": 0.0, "width": 200.0, "height": 60.0}},
		nil, map[string]string{"n1": "card text"})
	must(t, err)
	png := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("pixels", 100))
	imgID, err := fx.folder.AddFile("/img/p.png", "image", "image/png", png)
	must(t, err)
	secret := newSharedSecret(t)
	p := fx.start(t, secret, func(c *serveConfig) { c.writeToken = testWriteToken })
	fx.relay.AddWebhook(relaytest.WebhookConfig{URL: p.webhookURL(), Secret: secret})
	first := p.waitSnapshot(fx.folder, 0, 20*time.Second, func(s apiSnapshot) bool { return s.NumFiles == 3 })
	want, _, err := p.tree(fx.folder, first.Seq)
	must(t, err)

	// The loss: an edit, two deletions.
	must(t, fx.folder.EditMarkdown("/notes/a.md", "# A\nsomething else entirely\n"))
	must(t, fx.folder.Delete("/board.canvas"))
	must(t, fx.folder.Delete("/img/p.png"))
	lost := p.waitSnapshot(fx.folder, first.Seq, 20*time.Second, func(s apiSnapshot) bool { return s.NumFiles == 1 })

	folderArg := fx.folder.RelayID() + "/" + fx.folder.ID()
	env := map[string]string{envReadURL: p.url}
	args := func(extra ...string) []string {
		return append([]string{"restore", folderArg, "--snapshot", "1"}, extra...)
	}
	// Without the write token nothing is written.
	if _, _, _, err := execute(t, env, args()...); err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "token") {
		t.Errorf("restore without the write token: %v", err)
	}
	if _, _, _, err := execute(t, map[string]string{envReadURL: p.url, readapi.WriteTokenEnv: testAPIToken}, args()...); err == nil || !strings.Contains(err.Error(), "may not write") {
		t.Errorf("restore with the read token: %v", err)
	}
	env[readapi.WriteTokenEnv] = testWriteToken
	_, out, _, err := execute(t, env, args("--dry-run")...)
	must(t, err)
	for _, line := range []string{"edit     notes/a.md", "recreate board.canvas", "recreate img/p.png", "dry run: "} {
		if !strings.Contains(out, line) {
			t.Errorf("dry run output lacks %q:\n%s", line, out)
		}
	}
	if n := len(fx.relay.WrittenUpdates(fx.folder.RelayID(), fx.folder.ID())); n != 0 {
		t.Fatalf("dry run wrote %d folder updates", n)
	}
	if _, ok := fx.folder.Entry("/board.canvas"); ok {
		t.Fatal("dry run wrote the canvas entry")
	}

	_, out, _, err = execute(t, env, args()...)
	must(t, err)
	if !strings.Contains(out, "restored 3 paths") {
		t.Errorf("restore output:\n%s", out)
	}
	// Back as they were, with their old documents.
	if fx.folder.EntryID("/board.canvas") != canvasID || fx.folder.EntryID("/img/p.png") != imgID {
		t.Errorf("entries came back as other documents: canvas %s, image %s", fx.folder.EntryID("/board.canvas"), fx.folder.EntryID("/img/p.png"))
	}
	noteDoc := fx.folder.EntryID("/notes/a.md")
	if got := yjsoracle.DocText(t, fx.relay, fx.folder.RelayID(), noteDoc, "contents"); got != want["notes/a.md"] {
		t.Errorf("yjs reads the restored note as %q, want %q", got, want["notes/a.md"])
	}
	if got := yjsoracle.DocText(t, fx.relay, fx.folder.RelayID(), canvasID, "n1"); got != "card text" {
		t.Errorf("yjs reads the canvas card as %q", got)
	}
	// The restore is recorded at once as the next snapshot, a restore of
	// snapshot 1, equal to it (the webhooks it causes find nothing new).
	back := p.waitSnapshot(fx.folder, lost.Seq, 20*time.Second, func(s apiSnapshot) bool { return s.NumFiles == 3 })
	if back.Seq != lost.Seq+1 || back.Restored != 1 {
		t.Errorf("the restore came back as snapshot %d, a restore of %d; want %d, a restore of 1", back.Seq, back.Restored, lost.Seq+1)
	}
	got, _, err := p.tree(fx.folder, back.Seq)
	must(t, err)
	for path, content := range want {
		if got[path] != content {
			t.Errorf("after the restore %s = %.60q, want %.60q", path, got[path], content)
		}
	}
	// Restoring again writes nothing.
	_, out, _, err = execute(t, env, args()...)
	must(t, err)
	if !strings.Contains(out, "nothing to write") {
		t.Errorf("second restore:\n%s", out)
	}

	// From the data dir, once serve is gone: the edit of snapshot 2.
	must(t, p.stop())
	local := map[string]string{envDataDir: fx.dataDir, envRelayServerURL: fx.relay.URL(), envRelayServerAPIKey: fakeRelayKey}
	_, out, _, err = execute(t, local, "restore", folderArg, "notes/a.md", "--snapshot", "2")
	must(t, err)
	if !strings.Contains(out, "edit     notes/a.md") {
		t.Errorf("local restore output:\n%s", out)
	}
	if got := yjsoracle.DocText(t, fx.relay, fx.folder.RelayID(), noteDoc, "contents"); got != "# A\nsomething else entirely\n" {
		t.Errorf("after the local restore yjs reads %q", got)
	}
	// Recorded in the data dir at once.
	_, out, _, err = execute(t, local, "snapshots", folderArg)
	must(t, err)
	if latest := strings.Split(out, "\n")[1]; !strings.Contains(latest, "restore of #2: modified notes/a.md") {
		t.Errorf("the latest snapshot after the local restore:\n%s", out)
	}
}
