package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
)

// Two serve instances on one NATS store: webhooks sent to either become
// snapshots of the folder's one lease holder, both serve the same
// history, /health names the instance and its leases, and a graceful stop
// of the holder hands the folder to the other at once.
func TestServeClusterTwoInstances(t *testing.T) {
	nats := natstest.Start(t)
	fx := newServeFixture(t)
	secret := newSharedSecret(t)
	start := func(name string) *serveProc {
		dir := t.TempDir()
		writeConnectors(t, dir, fx.folder)
		return startServe(t, serveConfig{relay: fx.relay, apiKey: fakeRelayKey, dataDir: dir, secret: secret,
			store: nats.URL(), instance: name, leaseTTL: 2 * time.Second})
	}
	a := start("a")
	b := start("b")
	f := fx.folder
	first := a.waitSnapshot(f, 0, 20*time.Second, nil)
	base := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)
	last := first.Seq
	for i := range 6 {
		text := fmt.Sprintf("# A\nedit %d\n", i)
		must(t, f.EditMarkdown("/notes/a.md", text))
		p := []*serveProc{a, b}[i%2]
		at := base.Add(time.Duration(i) * time.Second)
		send(t, fx.relay, p.webhookURL(), secret, relaytest.Webhook{DocID: fx.noteID, Time: at, User: fmt.Sprintf("u%d", i)}, http.StatusOK)
		s := a.waitSnapshot(f, last, 20*time.Second, nil)
		if !s.Time.Equal(at) {
			t.Fatalf("edit %d (webhook to instance %d): snapshot %d at %v, want %v", i, i%2, s.Seq, s.Time, at)
		}
		last = s.Seq
	}
	// Both instances serve the same history (b's replica follows).
	deadline := time.Now().Add(10 * time.Second)
	for {
		sa, errA := a.snapshots(f)
		sb, errB := b.snapshots(f)
		if errA == nil && errB == nil && slices.EqualFunc(sa, sb, func(x, y apiSnapshot) bool { return x.Seq == y.Seq && x.Time.Equal(y.Time) }) && len(sa) == int(last) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instances disagree: a %d snapshots (%v), b %d (%v)", len(sa), errA, len(sb), errB)
		}
		time.Sleep(50 * time.Millisecond)
	}
	holder, other := a, b
	if _, body, _ := a.get("/health"); !strings.Contains(string(body), `"leases":1`) {
		holder, other = b, a
	}
	// The web history browser of the instance that follows shows it too.
	folderPage := fmt.Sprintf("/ui/f/%s/%s/", f.RelayID(), f.ID())
	if page := webPage(t, other, folderPage); !strings.Contains(page, "u5") {
		t.Errorf("the follower's timeline page does not show the last edit's user u5:\n%s", page)
	}
	if page := webPage(t, other, fmt.Sprintf("%ss/%d/file?path=notes/a.md", folderPage, last)); !strings.Contains(page, "edit 5") {
		t.Errorf("the follower's page of notes/a.md at snapshot %d does not show its text:\n%s", last, page)
	}
	if _, body, _ := holder.get("/health"); !strings.Contains(string(body), `"leases":1`) || !strings.Contains(string(body), `"instance"`) {
		t.Fatalf("/health of the holder: %s", body)
	}
	if got := holder.metric("relay_git_sync_leases_held"); got != 1 {
		t.Errorf("holder's relay_git_sync_leases_held = %v", got)
	}
	// The holder stops; the other takes the folder on the next webhook.
	must(t, holder.stop())
	must(t, f.EditMarkdown("/notes/a.md", "# A\nafter the stop\n"))
	at := base.Add(time.Minute)
	send(t, fx.relay, other.webhookURL(), secret, relaytest.Webhook{DocID: relay.CompoundID(f.RelayID(), f.ID()), Time: at, User: "z"}, http.StatusOK)
	send(t, fx.relay, other.webhookURL(), secret, relaytest.Webhook{DocID: fx.noteID, Time: at, User: "z"}, http.StatusOK)
	s := other.waitSnapshot(f, last, 20*time.Second, nil)
	if !s.Time.Equal(at) || s.Seq != last+1 {
		t.Fatalf("after the holder stopped: snapshot %d at %v, want %d at %v", s.Seq, s.Time, last+1, at)
	}
}

// The folders spread over the instances: one that started alone and took
// every folder gives up those over its share once a second instance runs,
// and the second takes them as their events come.
func TestServeClusterSharesFolders(t *testing.T) {
	nats := natstest.Start(t)
	srv := relaytest.NewServer(relaytest.Options{APIKey: fakeRelayKey})
	t.Cleanup(srv.Close)
	relayID := srv.NewRelay()
	var folders []*relaytest.Folder
	var notes []string
	for i := range 4 {
		f := srv.NewFolder(relayID)
		doc, err := f.AddMarkdown("/n.md", fmt.Sprintf("# %d\n", i))
		must(t, err)
		folders = append(folders, f)
		notes = append(notes, relay.CompoundID(relayID, doc))
	}
	secret := newSharedSecret(t)
	start := func(name string) *serveProc {
		dir := t.TempDir()
		writeConnectors(t, dir, folders...)
		return startServe(t, serveConfig{relay: srv, apiKey: fakeRelayKey, dataDir: dir, secret: secret,
			store: nats.URL(), instance: name, leaseTTL: time.Second})
	}
	leases := func(p *serveProc) int {
		var h struct {
			Cluster struct{ Leases int } `json:"cluster"`
		}
		if err := p.getJSON("/health", &h); err != nil {
			return -1
		}
		return h.Cluster.Leases
	}
	a := start("a")
	for _, f := range folders {
		a.waitSnapshot(f, 0, 20*time.Second, nil)
	}
	if n := leases(a); n != 4 {
		t.Fatalf("a alone holds %d folders, want 4", n)
	}
	b := start("b")
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	for i := 0; ; i++ {
		if leases(a) == 2 && leases(b) == 2 {
			break
		}
		if i == 60 {
			t.Fatalf("the folders did not spread: a holds %d, b %d", leases(a), leases(b))
		}
		for j, f := range folders {
			must(t, f.EditMarkdown("/n.md", fmt.Sprintf("# %d\nround %d\n", j, i)))
			send(t, srv, []*serveProc{a, b}[(i+j)%2].webhookURL(), secret, relaytest.Webhook{DocID: notes[j], Time: base.Add(time.Duration(i) * time.Second), User: "u"}, http.StatusOK)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// No round was snapshotted twice: the times of the snapshots that
	// webhooks dated (an hour ago; reconciles date theirs now) only grow.
	for _, f := range folders {
		snaps, err := a.snapshots(f)
		must(t, err)
		var last time.Time
		for _, sn := range snaps {
			if sn.Time.After(base.Add(30 * time.Minute)) {
				continue
			}
			if !sn.Time.After(last) {
				t.Errorf("folder %s: snapshot %d at %v, after one at %v", f.ID(), sn.Seq, sn.Time, last)
			}
			last = sn.Time
		}
	}
}

// webPage signs in to p's web history browser with its read token and
// returns the page at path.
func webPage(t *testing.T, p *serveProc, path string) string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	must(t, err)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.PostForm(p.url+"/ui/login", url.Values{"token": {p.apiToken}, "next": {path}})
	must(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	must(t, err)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != strings.SplitN(path, "?", 2)[0] {
		t.Fatalf("signing in to %s: %s at %s", path, resp.Status, resp.Request.URL)
	}
	return string(body)
}
