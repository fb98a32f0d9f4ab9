package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// TestServeCrash is the crash test of the durable webhook queue: the real
// binary runs `serve` as a subprocess against the fake Relay Server (in this
// process) while a sender edits documents and posts a signed webhook for
// each edit at a steady rate, as relay-server does. The server is killed
// with SIGKILL at random moments and restarted on the same data dir, several
// times. At the end, after a quiet period:
//
//   - the latest snapshot holds every edit whose webhook was acknowledged
//     (each edit appends a unique marker line to a note; documents are
//     full-state, so later snapshots contain earlier edits);
//   - every acknowledged event is in some snapshot's window: its user
//     (unique per event) is recorded on a snapshot whose time is at least
//     the event's time. A change can reach a snapshot without its event
//     only through the full sync at a start (the reconcile), when the edit
//     was made before that sync fetched the document and the webhook came
//     after; such events are reported, not failed.
//
// Events that were acknowledged but not yet in a snapshot when the process
// was killed must come back from the queue on restart: the test counts
// them ("recovered") and fails if, after its kills, none was: a run that
// never killed a process holding such events proved nothing.
//
// RELAY_GIT_SYNC_CRASH_KILLS (default 8) sets the number of kills and
// RELAY_GIT_SYNC_CRASH_SEED the seed of the kill times (default: the clock;
// it is logged). `make crash-test` runs a longer one.
func TestServeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds the binary and kills it repeatedly (skipped with -short)")
	}
	goTool := testreq.Go(t)
	kills := envInt(t, "RELAY_GIT_SYNC_CRASH_KILLS", 8)
	seed := uint64(envInt(t, "RELAY_GIT_SYNC_CRASH_SEED", int(time.Now().UnixNano()%1_000_000)))
	t.Logf("kills=%d seed=%d (set RELAY_GIT_SYNC_CRASH_SEED=%d to repeat the kill times)", kills, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "relay-git-sync")
	build := exec.Command(goTool, "build", "-tags", "nomsgpack", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the binary: %v\n%s", err, out)
	}

	// The fake Relay Server and a folder of notes. Each event edits the
	// next note in turn: a note is edited again only after every other
	// one, seconds later, so a sync only ever sees a note's edit through
	// the event that announced it (or a full sync at start).
	const notes = 300
	srv := relaytest.NewServer(relaytest.Options{APIKey: fakeRelayKey})
	defer srv.Close()
	folder := srv.NewFolder(srv.NewRelay())
	noteIDs := make([]string, notes)
	texts := make([]string, notes)
	for i := range notes {
		texts[i] = fmt.Sprintf("# note %d\n", i)
		id, err := folder.AddMarkdown(notePath(i), texts[i])
		must(t, err)
		noteIDs[i] = relay.CompoundID(folder.RelayID(), id)
	}
	dataDir := filepath.Join(tmp, "data")
	writeConnectors(t, dataDir, folder)
	secret := newWhsec(t)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := &serveProc{t: t, url: base, apiToken: testAPIToken}

	// Incarnations of the server process.
	type incarnation struct {
		cmd        *exec.Cmd
		logPath    string
		start, end time.Time
	}
	var incs []*incarnation
	startServer := func() *incarnation {
		t.Helper()
		inc := &incarnation{logPath: filepath.Join(tmp, fmt.Sprintf("serve-%02d.log", len(incs)))}
		logf, err := os.Create(inc.logPath)
		must(t, err)
		defer logf.Close()
		cmd := exec.Command(bin, "serve", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
			"--commit-interval", "0.2", "--max-delay", "1s")
		cmd.Env = append(os.Environ(),
			"RELAY_SERVER_URL="+srv.URL(), "RELAY_SERVER_API_KEY="+fakeRelayKey,
			"RELAY_GIT_DATA_DIR="+dataDir, "WEBHOOK_SECRET="+secret, "RELAY_GIT_API_TOKEN="+testAPIToken)
		cmd.Stdout, cmd.Stderr = logf, logf // a file: what is written survives SIGKILL
		inc.start = time.Now()
		must(t, cmd.Start())
		inc.cmd = cmd
		incs = append(incs, inc)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if code, _, err := p.get("/health"); err == nil && code == http.StatusOK {
				return inc
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				log, _ := os.ReadFile(inc.logPath)
				t.Fatalf("serve did not come up on port %d:\n%s", port, log)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Cleanup(func() {
		for _, inc := range incs {
			if inc.cmd.ProcessState == nil {
				inc.cmd.Process.Kill()
				inc.cmd.Wait()
			}
		}
	})

	// The sender: one edit and one webhook every 25 ms (40/s), in order,
	// as relay-server's sequential webhook sender.
	type event struct {
		note       int
		marker     string
		user       string
		edited     time.Time // the edit (and the webhook's timestamp)
		acked      bool
		ackedAfter time.Time // when the 2xx came
	}
	var mu sync.Mutex
	var events []*event
	stopSend := make(chan struct{})
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopSend:
				return
			case <-tick.C:
			}
			n := i % notes
			ev := &event{note: n, marker: fmt.Sprintf("marker-%05d", i), user: fmt.Sprintf("u%05d", i)}
			texts[n] += ev.marker + "\n"
			if err := folder.EditMarkdown(notePath(n), texts[n]); err != nil {
				t.Error(err)
				return
			}
			ev.edited = time.Now().UTC()
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
			code, _, err := srv.SendWebhook(context.Background(), base+"/webhooks", secret,
				relaytest.Webhook{DocID: noteIDs[n], Time: ev.edited, User: ev.user})
			if err == nil && code >= 200 && code < 300 {
				mu.Lock()
				ev.acked, ev.ackedAfter = true, time.Now()
				mu.Unlock()
			}
		}
	}()

	// Kill at random moments, restart at once or after a short pause.
	for k := 0; k < kills; k++ {
		inc := startServer()
		time.Sleep(time.Duration(200+rng.IntN(2300)) * time.Millisecond)
		must(t, inc.cmd.Process.Signal(syscall.SIGKILL))
		inc.cmd.Wait()
		inc.end = time.Now()
		if rng.IntN(2) == 0 {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		}
	}
	last := startServer()
	time.Sleep(2 * time.Second)
	close(stopSend)
	<-sendDone

	mu.Lock()
	var acked []*event
	for _, ev := range events {
		if ev.acked {
			acked = append(acked, ev)
		}
	}
	sent := len(events)
	mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no webhook was acknowledged")
	}

	// Quiet period: wait until the latest snapshot holds every
	// acknowledged marker.
	var (
		tree map[string]string
		err  error
	)
	missing := acked
	deadline := time.Now().Add(60 * time.Second)
	for len(missing) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if tree, _, err = p.tree(folder, 0); err != nil {
			continue
		}
		missing = missing[:0:0]
		for _, ev := range acked {
			if !strings.Contains(tree[strings.TrimPrefix(notePath(ev.note), "/")], ev.marker+"\n") {
				missing = append(missing, ev)
			}
		}
	}
	for i, ev := range missing {
		if i == 10 {
			t.Errorf("… and %d more", len(missing)-10)
			break
		}
		t.Errorf("acknowledged edit %s (note %d, at %s) is not in the latest snapshot", ev.marker, ev.note, ev.edited.Format(time.RFC3339Nano))
	}
	// The events are acknowledged to the queue just after the snapshot.
	for deadline := time.Now().Add(10 * time.Second); p.metric("relay_git_sync_queue_depth") != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if d := p.metric("relay_git_sync_queue_depth"); d != 0 {
		t.Errorf("queue depth %v after the quiet period", d)
	}

	// Every acknowledged event is in some snapshot's window.
	snaps, err := p.snapshots(folder)
	must(t, err)
	type seen struct {
		seq  uint64
		time time.Time
	}
	byUser := map[string]seen{}
	for _, s := range snaps {
		for _, u := range s.Users {
			if _, ok := byUser[u]; !ok {
				byUser[u] = seen{s.Seq, s.Time}
			}
		}
	}
	// Which incarnation recorded which snapshot, and when each one's
	// first snapshot (the full sync at start) was logged.
	seqInc := map[uint64]int{}
	firstSnap := make([]time.Time, len(incs))
	logged := 0
	for k, inc := range incs {
		seqs, times := snapshotLog(t, inc.logPath)
		logged += len(seqs)
		for j, seq := range seqs {
			seqInc[seq] = k
			if j == 0 {
				firstSnap[k] = times[j]
			}
		}
	}
	if logged == 0 {
		t.Fatal(`no "snapshot" line in serve's logs: has the log format changed? (snapshotLine)`)
	}
	incAt := func(tm time.Time) int {
		for k := len(incs) - 1; k >= 0; k-- {
			if !tm.Before(incs[k].start) {
				return k
			}
		}
		return 0
	}
	var early, recovered, checked int
	for _, ev := range acked {
		s, ok := byUser[ev.user]
		if ok && !s.time.Before(ev.edited) {
			checked++
			if k, ok := seqInc[s.seq]; ok && k > incAt(ev.ackedAfter) {
				recovered++ // acknowledged by one process, snapshotted by a later one
			}
			continue
		}
		// Not in a window: allowed only for an edit made between a
		// start and that process's first snapshot (which, being a full
		// sync, may have fetched the edit before its webhook came).
		k := incAt(ev.edited)
		limit := firstSnap[k]
		if limit.IsZero() {
			limit = incs[k].end
		}
		if limit.IsZero() || !ev.edited.After(limit.Add(10*time.Millisecond)) {
			early++
			continue
		}
		t.Errorf("acknowledged event %s (user %s, time %s) is in no snapshot's window (found: %v %+v)",
			ev.marker, ev.user, ev.edited.Format(time.RFC3339Nano), ok, s)
	}

	if kills > 0 && recovered == 0 {
		t.Errorf("after %d SIGKILLs no acknowledged event was snapshotted by a later process: either the queue lost them on restart or no kill hit a process with acknowledged, unsnapshotted events (repeat with RELAY_GIT_SYNC_CRASH_SEED=%d)", kills, seed)
	}

	// A clean stop at the end: SIGTERM, exit status 0 (systemd counts
	// 143 as a failure).
	must(t, last.cmd.Process.Signal(syscall.SIGTERM))
	if err := last.cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v, want exit status 0", err)
	}
	if t.Failed() {
		for _, inc := range incs {
			log, _ := os.ReadFile(inc.logPath)
			t.Logf("%s:\n%s", filepath.Base(inc.logPath), tail(string(log), 40))
		}
	}
	t.Logf("crash test: %d SIGKILLs, %d processes; %d edits sent, %d webhooks acknowledged, %d not (server down or killed mid-request); "+
		"%d snapshots; %d acknowledged events in a snapshot window (%d of them recovered from the queue by a later process), "+
		"%d captured early by a full sync at start; all %d acknowledged edits in the latest snapshot: %v",
		kills, len(incs), sent, len(acked), sent-len(acked), len(snaps), checked, recovered, early, len(acked), len(missing) == 0)
}

func notePath(i int) string { return fmt.Sprintf("/n/%03d.md", i) }

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, v)
	}
	return n
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var snapshotLine = regexp.MustCompile(`^time=(\S+) level=INFO msg=snapshot .* seq=(\d+) `)

// snapshotLog returns the snapshots a serve log reports, with their times.
func snapshotLog(t *testing.T, path string) ([]uint64, []time.Time) {
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	var seqs []uint64
	var times []time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := snapshotLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		tm, err1 := time.Parse(time.RFC3339Nano, m[1])
		seq, err2 := strconv.ParseUint(m[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		seqs = append(seqs, seq)
		times = append(times, tm)
	}
	return seqs, times
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
