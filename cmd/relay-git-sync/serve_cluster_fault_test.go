package main

// Fault tests of serve on a shared NATS JetStream store (--store nats://…):
// real serve processes and real nats-server processes, killed with SIGKILL
// under a steady webhook load.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

const (
	faultFolders = 4
	faultNotes   = 3
	// faultSeed seeds the fake Relay Server's ids: the replay's server,
	// made the same way, has the same relay, folder and document ids.
	faultSeed = 15
	// faultStepGap spaces the webhook times of a folder's steps: step k
	// is dated base + (k+1)·faultStepGap, in both runs.
	faultStepGap = 100 * time.Millisecond
	// faultPace is the shortest time between two steps of a folder: the
	// folders that a fault does not stop must not run so many steps that
	// the replay takes long.
	faultPace = 250 * time.Millisecond
	// faultWait bounds every wait of a step (a webhook acknowledged, its
	// snapshot seen): generous, since a failover alone takes up to two
	// lease times.
	faultWait = time.Minute
)

// TestServeClusterKill runs three `serve` processes (instances s1, s2, s3,
// --lease-ttl 2s) on one three-node nats-server cluster, each with its own
// data dir, and the fake Relay Server in this process. Every folder runs a
// sequence of steps, the folders concurrently: a step appends a marker line
// to one note, sends its signed webhook, dated base + step, to a random
// live instance (again to another one until one answers 200), and waits
// until the step's snapshot is served and its event has left the shared
// queue. Under that load:
//
//   - fault 1: the instance holding the most folder leases is killed with
//     SIGKILL; webhooks go on to the other two, which take its folders
//     once its leases expire (the failover time is logged, not asserted);
//   - fault 2: the nats-server node leading the store log (RGS_LOG) is
//     killed with SIGKILL, the load goes on, and the node is restarted.
//
// Then: every step was acknowledged and became exactly one snapshot, with
// the step's time, user and change, after the single snapshot of the
// initial reconcile (however many instances ran it); no snapshot was
// logged twice; the queue is empty; the live instances serve the same
// history, and `git clone relay::…` from two of them gives the same commit
// ids as a single Badger serve that was given the same edits and webhooks.
//
// Waiting for the event to leave the queue before the next step keeps the
// windows of both runs alike: an instance killed after writing a snapshot
// but before acknowledging its event leaves the event queued, and the
// instance that takes the folder over must handle it alone (and record
// nothing, the change being in the history already) rather than add its
// user to the next step's snapshot.
func TestServeClusterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: builds the binaries, runs a nats-server cluster and kills processes (skipped with -short)")
	}
	testreq.NATSServer(t)
	t0 := time.Now()
	bt := newBinTool(t) // relay-git-sync and git-remote-relay; needs go and git
	built := time.Now()
	cluster := natstest.StartCluster(t, 3)
	nc, err := nats.Connect(cluster.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	must(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	must(t, err)

	fr := newFaultRelay(t)
	secret := newWhsec(t)
	tmp := t.TempDir()
	var servers []*faultServe
	for _, name := range []string{"s1", "s2", "s3"} {
		servers = append(servers, startFaultServe(t, bt, fr, secret, name, filepath.Join(tmp, name),
			[]string{"--store", cluster.URL()}, []string{"--instance", name, "--lease-ttl", "2s"}))
	}
	// Every instance reconciles at start; the folders get one snapshot.
	waitReconciled(t, fr, servers)
	// The store as the load starts, for the replay on Badger.
	token := []string{"RELAY_GIT_TOKEN=" + testAPIToken}
	initial := filepath.Join(tmp, "initial.backup")
	bt.ok(token, "relay-git-sync", "backup", "--server", servers[0].api.url, "--output", initial)
	ctx := context.Background()
	queue, err := js.Stream(ctx, "RGS_QUEUE")
	must(t, err)

	base := time.Now().UTC().Truncate(time.Millisecond)
	load := newFaultLoad(t, fr, secret, queue, servers)
	for f := range faultFolders {
		rng := rand.New(rand.NewPCG(uint64(f), uint64(time.Now().UnixNano())))
		texts := make([]string, faultNotes)
		for n := range texts {
			texts[n] = faultNoteText(f, n)
		}
		load.run(f, rng, faultPace, func(k int) *faultStep {
			if load.stopping() {
				return nil
			}
			n := k % faultNotes
			texts[n] += fmt.Sprintf("marker f%d-k%04d\n", f, k)
			return &faultStep{
				folder: f, k: k, note: n, doc: fr.docs[f][n], text: texts[n],
				at:   base.Add(time.Duration(k+1) * faultStepGap),
				user: fmt.Sprintf("u-f%d-k%04d", f, k), event: fmt.Sprintf("evt_f%dk%04d", f, k),
			}
		})
	}
	started := time.Now()
	t.Logf("setup: %v to build the binaries, %v for the nats-server cluster, the three serves, their reconcile and the backup",
		built.Sub(t0).Round(time.Millisecond), started.Sub(built).Round(time.Millisecond))
	load.waitProgress(started, 5)

	// Fault 1: SIGKILL the instance holding the most leases.
	victim, leases := mostLeases(t, servers)
	kv, err := js.KeyValue(ctx, "rgs_leases")
	must(t, err)
	var affected []string // folders (relay/folder) whose lease the victim holds
	for _, f := range fr.folders {
		if e, err := kv.Get(ctx, f.RelayID()+"."+f.ID()); err == nil && string(e.Value()) == victim.name {
			affected = append(affected, f.RelayID()+"/"+f.ID())
		}
	}
	load.remove(victim)
	killAt := time.Now()
	victim.kill()
	pendingAtKill := load.pendingSteps()
	t.Logf("fault 1: SIGKILL of %s at %s (%d leases by /health, %d by the lease bucket) after %v of load; %d events queued at the kill, %d of them already in a snapshot",
		victim.name, killAt.Format(time.RFC3339Nano), leases, len(affected), killAt.Sub(started).Round(time.Millisecond), len(pendingAtKill), countSeen(pendingAtKill))
	if leases == 0 || len(affected) == 0 {
		t.Errorf("the instance killed held no folder lease (%d by /health, %v in the bucket): the kill tests no failover", leases, affected)
	}
	load.waitProgress(killAt, 3)
	t.Logf("fault 1: longest pause of a folder's steps after the kill: %v", load.pause(killAt, killAt).Round(time.Millisecond))

	// Fault 2: SIGKILL the nats-server leading the store log, then
	// restart it.
	si, err := js.Stream(ctx, "RGS_LOG")
	must(t, err)
	info, err := si.Info(ctx)
	must(t, err)
	var node *natstest.Node
	for _, nd := range cluster.Nodes {
		if info.Cluster != nil && nd.Name == info.Cluster.Leader {
			node = nd
		}
	}
	if node == nil {
		t.Fatalf("no node leads RGS_LOG: %+v", info.Cluster)
	}
	natsKillAt := time.Now()
	node.Kill()
	load.waitProgress(natsKillAt, 3)
	restartAt := time.Now()
	node.Restart(t)
	upAt := time.Now()
	load.waitProgress(upAt, 3)
	load.finish()
	// The schedulers re-read the queue (Rescan) in their loops: a re-read
	// that failed during the fault may have held its loop up until it
	// gave up, which the pause shows.
	var rescans []string
	for _, s := range servers {
		for _, l := range logLinesAfter(t, s.logPath, `msg="re-reading the event queue"`, natsKillAt) {
			rescans = append(rescans, s.name+": "+l)
		}
	}
	t.Logf("fault 2: SIGKILL of nats-server %s (RGS_LOG leader) at %s, restarted after %v (up in %v); longest pause of a folder's steps %v; failed queue re-reads of the schedulers meanwhile: %d\n%s",
		node.Name, natsKillAt.Format(time.RFC3339Nano), restartAt.Sub(natsKillAt).Round(time.Millisecond), upAt.Sub(restartAt).Round(time.Millisecond),
		load.pause(natsKillAt, restartAt).Round(time.Millisecond), len(rescans), strings.Join(rescans, "\n"))
	if t.Failed() {
		t.FailNow()
	}
	steps := load.recorded()

	live := []*faultServe{}
	for _, s := range servers {
		if s != victim {
			live = append(live, s)
		}
	}
	// Who logged which snapshot.
	logged := map[string]map[uint64][]string{} // folder -> seq -> instances
	for _, s := range servers {
		for _, ev := range faultLogEvents(t, s.logPath) {
			if ev.msg == "snapshot" {
				if logged[ev.folder] == nil {
					logged[ev.folder] = map[uint64][]string{}
				}
				logged[ev.folder][ev.seq] = append(logged[ev.folder][ev.seq], s.name)
			}
		}
	}
	// The live instances converge on the same history, one snapshot per
	// step after the initial one.
	for f, fo := range fr.folders {
		want := 1 + len(steps[f])
		var snaps [][]apiSnapshot
		deadline := time.Now().Add(30 * time.Second)
		for {
			snaps = snaps[:0]
			for _, s := range live {
				ss, err := s.api.snapshots(fo)
				if err != nil {
					ss = nil
				}
				snaps = append(snaps, ss)
			}
			if len(snaps[0]) >= want && slices.EqualFunc(snaps[0], snaps[1], sameSnapshot) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("folder %d: the live instances do not agree on %d snapshots: %s has %d, %s has %d",
					f, want, live[0].name, len(snaps[0]), live[1].name, len(snaps[1]))
			}
			time.Sleep(50 * time.Millisecond)
		}
		checkFaultHistory(t, f, snaps[0], steps[f], func(seq uint64) []string { return logged[fo.RelayID()+"/"+fo.ID()][seq] })
	}
	// Every event was acknowledged.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		queued, err := queuedEvents(queue)
		if err == nil && len(queued) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue still holds %d events (%v) after the load", len(queued), err)
		}
	}
	// The latest snapshot holds every edit.
	for f, fo := range fr.folders {
		files, _, err := live[f%2].api.tree(fo, 0)
		must(t, err)
		for n := range faultNotes {
			want := faultNoteText(f, n)
			for _, st := range steps[f] {
				if st.note == n {
					want = st.text
				}
			}
			if got := files[strings.TrimPrefix(notePath(n), "/")]; got != want {
				t.Errorf("folder %d, note %d in the latest snapshot:\n%s\nwant:\n%s", f, n, got, want)
			}
		}
	}

	// What the logs say: no snapshot was written twice, who wrote what,
	// and how long the failover took.
	var failover []string
	for f, fo := range fr.folders {
		id := fo.RelayID() + "/" + fo.ID()
		by := map[string]int{}
		for seq, who := range logged[id] {
			if len(who) > 1 {
				t.Errorf("folder %d: snapshot %d logged %d times, by %v", f, seq, len(who), who)
			}
			by[who[0]]++
		}
		t.Logf("folder %d: %d steps, snapshots logged by %v", f, len(steps[f]), by)
	}
	for _, id := range affected {
		var taken, snap time.Time
		for _, s := range live {
			for _, ev := range faultLogEvents(t, s.logPath) {
				if ev.folder != id || !ev.at.After(killAt) {
					continue
				}
				if ev.msg == "folder lease taken" && (taken.IsZero() || ev.at.Before(taken)) {
					taken = ev.at
				}
				if ev.msg == "snapshot" && (snap.IsZero() || ev.at.Before(snap)) {
					snap = ev.at
				}
			}
		}
		if snap.IsZero() {
			t.Errorf("folder %s, whose lease %s held, has no snapshot by another instance after the kill", id, victim.name)
			continue
		}
		tookLease := "?"
		if !taken.IsZero() {
			tookLease = taken.Sub(killAt).Round(time.Millisecond).String()
		}
		failover = append(failover, fmt.Sprintf("%s: lease taken after %s, first snapshot after %v",
			id[len(id)-8:], tookLease, snap.Sub(killAt).Round(time.Millisecond)))
	}
	t.Logf("failover after the SIGKILL of %s (lease time 2s): %s", victim.name, strings.Join(failover, "; "))

	// The replay: a single serve on Badger, from the store as the load
	// started (the backup), given the same edits and webhooks by a fake
	// Relay Server with the same ids. The commit ids depend on the
	// snapshots' files (paths and content), times, users and changes,
	// on the Relay-Snapshot trailer (relay and folder ids, sequence
	// number) and on the parents, so the initial snapshot, dated when the
	// reconcile ran, must be the cluster's own: hence the backup.
	replayAt := time.Now()
	replayDir := filepath.Join(tmp, "badger")
	bt.ok(nil, "relay-git-sync", "--data-dir", replayDir, "restore-backup", initial)
	fr2 := newFaultRelay(t)
	for f := range fr.folders {
		if fr2.folders[f].ID() != fr.folders[f].ID() || !slices.Equal(fr2.docs[f], fr.docs[f]) {
			t.Fatalf("the replay's fake Relay Server has other ids than the first (relaytest.Options.Seed)")
		}
	}
	single := startFaultServe(t, bt, fr2, secret, "badger", replayDir, nil, nil)
	waitReconciled(t, fr2, []*faultServe{single})
	replay := newFaultLoad(t, fr2, secret, nil, []*faultServe{single})
	for f := range faultFolders {
		rng := rand.New(rand.NewPCG(uint64(f), 1))
		replay.run(f, rng, 0, func(k int) *faultStep {
			if k >= len(steps[f]) {
				return nil
			}
			st := *steps[f][k]
			st.seq, st.tries, st.acked, st.seen = 0, 0, time.Time{}, time.Time{}
			return &st
		})
	}
	replay.finish()
	if t.Failed() {
		t.FailNow()
	}
	cloneAt := time.Now()
	for f, fo := range fr.folders {
		path := "/" + fo.RelayID() + "/" + fo.ID()
		want := cloneIDs(bt, token, "relay::"+single.api.url+path)
		if len(want) != 2+len(steps[f]) { // HEAD, then 1 + steps commits
			t.Errorf("folder %d: the Badger replay has %d commits, want %d", f, len(want)-1, 1+len(steps[f]))
		}
		for _, s := range live {
			if got := cloneIDs(bt, token, "relay::"+s.api.url+path); !slices.Equal(got, want) {
				t.Errorf("folder %d: a clone from %s gives HEAD %s and %d commits, the Badger replay HEAD %s and %d commits;\nfrom %s: %v\nreplay: %v",
					f, s.name, got[0], len(got)-1, want[0], len(want)-1, s.name, got[1:], want[1:])
			}
		}
	}
	total, tries := 0, 0
	for _, ss := range steps {
		for _, st := range ss {
			total++
			tries += st.tries
		}
	}
	t.Logf("%d steps over %d folders, %d webhook deliveries (%d to an instance that did not answer 200); the load ran %v, the replay on Badger %v, the clones %v",
		total, faultFolders, tries, tries-total, replayAt.Sub(started).Round(time.Millisecond),
		cloneAt.Sub(replayAt).Round(time.Millisecond), time.Since(cloneAt).Round(time.Millisecond))
}

// faultRelay is the fake Relay Server of the fault test: one relay,
// faultFolders folders of faultNotes notes each, made in one fixed order
// with faultSeed, so that a second one has the same ids.
type faultRelay struct {
	srv     *relaytest.Server
	folders []*relaytest.Folder
	docs    [][]string // compound id of each folder's notes
}

func newFaultRelay(t *testing.T) *faultRelay {
	t.Helper()
	srv := relaytest.NewServer(relaytest.Options{APIKey: fakeRelayKey, Seed: faultSeed})
	t.Cleanup(srv.Close)
	r := &faultRelay{srv: srv}
	rid := srv.NewRelay()
	for f := range faultFolders {
		fo := srv.NewFolder(rid)
		var docs []string
		for n := range faultNotes {
			id, err := fo.AddMarkdown(notePath(n), faultNoteText(f, n))
			must(t, err)
			docs = append(docs, relay.CompoundID(rid, id))
		}
		r.folders = append(r.folders, fo)
		r.docs = append(r.docs, docs)
	}
	return r
}

// faultNoteText is note n of folder f before the steps.
func faultNoteText(f, n int) string { return fmt.Sprintf("# folder %d, note %d\n", f, n) }

// faultServe is a `serve` subprocess. Its log goes to a file, which
// survives SIGKILL.
type faultServe struct {
	name    string
	logPath string
	api     *serveProc // url and token, for the read API helpers
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startFaultServe starts the built serve on dataDir (following every
// folder of r) with global flags before "serve" and serve's flags after
// it, and waits until /health answers 200.
func startFaultServe(t *testing.T, bt *binTool, r *faultRelay, secret, name, dataDir string, global, flags []string) *faultServe {
	t.Helper()
	writeConnectors(t, dataDir, r.folders...)
	port := freePort(t)
	s := &faultServe{name: name, logPath: dataDir + ".log", exited: make(chan struct{}),
		api: &serveProc{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), apiToken: testAPIToken}}
	logf, err := os.Create(s.logPath)
	must(t, err)
	defer logf.Close()
	args := append(slices.Clone(global), "serve", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--commit-interval", "0.05", "--max-delay", "1s", "--reconcile-interval", "0")
	s.cmd = exec.Command(filepath.Join(bt.bin, "relay-git-sync"), append(args, flags...)...)
	s.cmd.Env = append(slices.Clone(bt.env), "RELAY_SERVER_URL="+r.srv.URL(), "RELAY_SERVER_API_KEY="+fakeRelayKey,
		"RELAY_GIT_DATA_DIR="+dataDir, "WEBHOOK_SECRET="+secret, "RELAY_GIT_API_TOKEN="+testAPIToken)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	must(t, s.cmd.Start())
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			log, _ := os.ReadFile(s.logPath)
			lines := slices.DeleteFunc(strings.Split(string(log), "\n"), func(l string) bool {
				return strings.Contains(l, `msg="push failed"`) // the connectors' URLs are not reachable, by design
			})
			// Everything but the snapshots (leases, warnings, errors),
			// then the last lines as they came.
			var events []string
			for _, l := range lines {
				if !strings.Contains(l, "msg=snapshot ") {
					events = append(events, l)
				}
			}
			t.Logf("log of serve %s without snapshots and push failures:\n%s\nits last lines:\n%s", name,
				tail(strings.Join(events, "\n"), 150), tail(strings.Join(lines, "\n"), 20))
		}
	})
	for deadline := time.Now().Add(faultWait); ; time.Sleep(20 * time.Millisecond) {
		if code, _, err := s.api.get("/health"); err == nil && code == http.StatusOK {
			return s
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(s.logPath)
			t.Fatalf("serve %s exited at start:\n%s", name, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.logPath)
			t.Fatalf("serve %s not healthy after %v:\n%s", name, faultWait, log)
		}
	}
}

// waitReconciled waits until the reconcile at start has finished on every
// folder (on the instance holding its lease): a step made before could be
// seen by the reconcile first and recorded without its webhook.
func waitReconciled(t *testing.T, r *faultRelay, servers []*faultServe) {
	t.Helper()
	for deadline := time.Now().Add(faultWait); ; time.Sleep(50 * time.Millisecond) {
		done := map[string]bool{}
		for _, s := range servers {
			for _, ev := range faultLogEvents(t, s.logPath) {
				if ev.msg == "reconcile done" {
					done[ev.folder] = true
				}
			}
		}
		missing := 0
		for _, f := range r.folders {
			if !done[f.RelayID()+"/"+f.ID()] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reconcile at start has not finished on %d folders after %v", missing, faultWait)
		}
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (s *faultServe) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// mostLeases returns the server whose /health reports the most leases.
func mostLeases(t *testing.T, servers []*faultServe) (*faultServe, int) {
	t.Helper()
	var best *faultServe
	most := -1
	for _, s := range servers {
		var h struct {
			Cluster struct {
				Instance string `json:"instance"`
				Leases   int    `json:"leases"`
			} `json:"cluster"`
		}
		if err := s.api.getJSON("/health", &h); err != nil {
			t.Fatalf("/health of %s: %v", s.name, err)
		}
		if h.Cluster.Instance != s.name {
			t.Errorf("/health of %s names instance %q", s.name, h.Cluster.Instance)
		}
		if h.Cluster.Leases > most {
			best, most = s, h.Cluster.Leases
		}
	}
	return best, most
}

// faultStep is one edit of one note and its webhook.
type faultStep struct {
	folder, k, note int
	doc             string // the note's compound id
	text            string // the note's text after the edit
	at              time.Time
	user, event     string

	tries int       // deliveries tried
	acked time.Time // when a webhook was answered 200
	seen  time.Time // when its snapshot was served
	seq   uint64
}

// faultLoad runs the steps of every folder, each folder in a goroutine of
// its own, against the live servers.
type faultLoad struct {
	t      *testing.T
	relay  *faultRelay
	secret string
	queue  jetstream.Stream // the shared queue (nil on Badger)
	stop   chan struct{}    // no new steps
	abort  chan struct{}    // give up now (the test ends)
	wg     sync.WaitGroup

	mu    sync.Mutex
	live  []*faultServe
	steps [][]*faultStep
}

func newFaultLoad(t *testing.T, r *faultRelay, secret string, q jetstream.Stream, live []*faultServe) *faultLoad {
	l := &faultLoad{t: t, relay: r, secret: secret, queue: q, stop: make(chan struct{}), abort: make(chan struct{}),
		live: slices.Clone(live), steps: make([][]*faultStep, faultFolders)}
	var once sync.Once
	t.Cleanup(func() { // before the servers' cleanups: registered after them
		once.Do(func() { close(l.abort) })
		l.wg.Wait()
	})
	return l
}

// run runs folder f's steps, next(k) giving step k (nil: no more), in a
// goroutine: edit, deliver, await its snapshot; a step begins pace after
// the one before at the earliest.
func (l *faultLoad) run(f int, rng *rand.Rand, pace time.Duration, next func(k int) *faultStep) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		after := uint64(1) // snapshot 1 is the initial reconcile's
		for k := 0; ; k++ {
			begin := time.Now()
			st := next(k)
			if st == nil {
				return
			}
			if err := l.relay.folders[f].EditMarkdown(notePath(st.note), st.text); err != nil {
				l.t.Errorf("folder %d, step %d: editing the note: %v", f, k, err)
				return
			}
			l.mu.Lock()
			l.steps[f] = append(l.steps[f], st)
			l.mu.Unlock()
			if !l.deliver(st, rng) || !l.await(st, rng, after) {
				return
			}
			after = st.seq
			if !l.sleep(time.Until(begin.Add(pace))) {
				return
			}
		}
	}()
}

func (l *faultLoad) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// finish lets every folder complete its step under way and stops the load.
func (l *faultLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// sleep waits d, or reports false when the test gives up.
func (l *faultLoad) sleep(d time.Duration) bool {
	select {
	case <-l.abort:
		return false
	case <-time.After(d):
		return true
	}
}

func (l *faultLoad) pick(rng *rand.Rand) *faultServe {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live[rng.IntN(len(l.live))]
}

// remove stops sending anything to s.
func (l *faultLoad) remove(s *faultServe) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.live = slices.DeleteFunc(l.live, func(x *faultServe) bool { return x == s })
}

// deliver sends st's webhook to random live instances until one answers
// 200, as a Relay Server retries; every try has the same event id, so the
// queue keeps one copy.
func (l *faultLoad) deliver(st *faultStep, rng *rand.Rand) bool {
	deadline := time.Now().Add(faultWait)
	for {
		s := l.pick(rng)
		code, body, err := l.relay.srv.SendWebhook(context.Background(), s.api.webhookURL(), l.secret,
			relaytest.Webhook{DocID: st.doc, Time: st.at, User: st.user, EventID: st.event})
		l.mu.Lock()
		st.tries++
		if err == nil && code == http.StatusOK {
			st.acked = time.Now()
		}
		l.mu.Unlock()
		if err == nil && code == http.StatusOK {
			return true
		}
		if time.Now().After(deadline) {
			l.t.Errorf("folder %d, step %d: no instance acknowledged the webhook within %v; last, %s: HTTP %d %s %v",
				st.folder, st.k, faultWait, s.name, code, body, err)
			return false
		}
		if !l.sleep(100 * time.Millisecond) {
			return false
		}
	}
}

// await polls random live instances until one serves a snapshot after
// seq after with st's user, then (on the cluster) until st's event has
// left the shared queue.
func (l *faultLoad) await(st *faultStep, rng *rand.Rand, after uint64) bool {
	deadline := time.Now().Add(faultWait)
	fo := l.relay.folders[st.folder]
	var lastErr error
	for {
		if st.seq == 0 {
			s := l.pick(rng)
			var out struct {
				Snapshots []apiSnapshot `json:"snapshots"`
			}
			lastErr = s.api.getJSON(folderPath(fo)+"/snapshots?after="+strconv.FormatUint(after, 10), &out)
			for _, sn := range out.Snapshots {
				if slices.Contains(sn.Users, st.user) {
					l.mu.Lock()
					st.seq, st.seen = sn.Seq, time.Now()
					l.mu.Unlock()
					break
				}
			}
		}
		if st.seq != 0 {
			if l.queue == nil {
				return true
			}
			queued, err := queuedEvents(l.queue)
			if lastErr = err; err == nil && !queued[st.event] {
				return true
			}
		}
		if time.Now().After(deadline) {
			what := "no snapshot with its user"
			if st.seq != 0 {
				what = fmt.Sprintf("its snapshot %d was served, but its event is still queued", st.seq)
			}
			l.t.Errorf("folder %d, step %d (user %s, webhook acknowledged at %s): %s after %v (last error: %v)",
				st.folder, st.k, st.user, st.acked.Format(time.RFC3339Nano), what, faultWait, lastErr)
			return false
		}
		if !l.sleep(25 * time.Millisecond) {
			return false
		}
	}
}

// pendingSteps returns the steps whose events are in the shared queue now.
func (l *faultLoad) pendingSteps() []faultStep {
	queued, err := queuedEvents(l.queue)
	if err != nil {
		l.t.Logf("reading the queue: %v", err)
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []faultStep
	for _, ss := range l.steps {
		for _, st := range ss {
			if queued[st.event] {
				out = append(out, *st)
			}
		}
	}
	return out
}

// pause returns the longest time a folder went without completing a step
// from t0 on, up to its first step completed after t1.
func (l *faultLoad) pause(t0, t1 time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	for _, ss := range l.steps {
		prev := t0
		for _, st := range ss {
			if st.seq == 0 || !st.seen.After(t0) {
				continue
			}
			longest = max(longest, st.seen.Sub(prev))
			if prev = st.seen; prev.After(t1) {
				break
			}
		}
	}
	return longest
}

func countSeen(steps []faultStep) int {
	n := 0
	for _, st := range steps {
		if st.seq != 0 {
			n++
		}
	}
	return n
}

// waitProgress waits until every folder has completed n steps since t0.
func (l *faultLoad) waitProgress(t0 time.Time, n int) {
	l.t.Helper()
	deadline := time.Now().Add(faultWait)
	for {
		var behind []string
		l.mu.Lock()
		for f, ss := range l.steps {
			done := 0
			for _, st := range ss {
				if st.seq != 0 && st.seen.After(t0) {
					done++
				}
			}
			if done < n {
				last := "no step"
				if len(ss) > 0 {
					st := ss[len(ss)-1]
					last = fmt.Sprintf("step %d (user %s, event %s) acknowledged at %s, snapshot %d", st.k, st.user, st.event, st.acked.Format(time.RFC3339Nano), st.seq)
				}
				behind = append(behind, fmt.Sprintf("folder %d (%s): %d, last %s", f, l.relay.folders[f].ID(), done, last))
			}
		}
		l.mu.Unlock()
		if len(behind) == 0 {
			return
		}
		if l.t.Failed() || time.Now().After(deadline) {
			l.t.Fatalf("waiting for %d steps of every folder since %s: %s", n, t0.Format(time.RFC3339Nano), strings.Join(behind, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recorded returns the steps run, by folder.
func (l *faultLoad) recorded() [][]*faultStep {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][]*faultStep, len(l.steps))
	for f, ss := range l.steps {
		out[f] = slices.Clone(ss)
	}
	return out
}

func sameSnapshot(a, b apiSnapshot) bool {
	return a.Seq == b.Seq && a.Time.Equal(b.Time) && slices.Equal(a.Users, b.Users) && a.NumFiles == b.NumFiles
}

// checkFaultHistory checks a folder's snapshots against its steps: the
// initial reconcile's, then exactly one per step with its time, its user
// and its note's change. writers names the instances that logged a
// snapshot.
func checkFaultHistory(t *testing.T, f int, snaps []apiSnapshot, steps []*faultStep, writers func(seq uint64) []string) {
	t.Helper()
	if len(snaps) != 1+len(steps) {
		t.Errorf("folder %d: %d snapshots for %d steps, want %d (the initial one and one per step)", f, len(snaps), len(steps), 1+len(steps))
	}
	if len(snaps) == 0 || snaps[0].Seq != 1 || len(snaps[0].Changes) != faultNotes {
		t.Errorf("folder %d: the first snapshot is not the initial reconcile's adding the %d notes: %+v", f, faultNotes, snaps[:min(1, len(snaps))])
	}
	for i := 1; i < len(snaps); i++ {
		a, b := snaps[i-1], snaps[i]
		if a.Time.Equal(b.Time) && slices.Equal(a.Users, b.Users) {
			t.Errorf("folder %d: snapshots %d (logged by %v) and %d (logged by %v) record the same event, %v at %s, and the same change %v: written twice",
				f, a.Seq, writers(a.Seq), b.Seq, writers(b.Seq), b.Users, b.Time.Format(time.RFC3339Nano), b.Changes)
		}
	}
	wrong := 0
	for k, st := range steps {
		if k+1 >= len(snaps) {
			break
		}
		s := snaps[k+1]
		path := strings.TrimPrefix(notePath(st.note), "/")
		if s.Seq == uint64(k+2) && s.Time.Equal(st.at) && slices.Equal(s.Users, []string{st.user}) &&
			len(s.Changes) == 1 && s.Changes[0].Kind == "modified" && s.Changes[0].Path == path {
			continue
		}
		if wrong++; wrong > 3 {
			continue
		}
		hint := ""
		if k > 0 && slices.Contains(s.Users, steps[k-1].user) {
			hint = " (the event of the step before, recorded and acknowledged already, was handled again with this one)"
		}
		t.Errorf("folder %d, step %d: snapshot %+v (logged by %v), want seq %d at %s by [%s] modifying %s%s",
			f, k, s, writers(s.Seq), k+2, st.at.Format(time.RFC3339Nano), st.user, path, hint)
	}
	if wrong > 3 {
		t.Errorf("folder %d: … and %d more steps whose snapshot is not as above", f, wrong-3)
	}
}

// queuedEvents returns the ids of the events in the shared queue (stream
// RGS_QUEUE, a JSON message per event; see natsstore/queue.go). Each read
// is bounded by a second: a request sent while the stream has no leader
// is never answered.
func queuedEvents(queue jetstream.Stream) (map[string]bool, error) {
	ids := map[string]bool{}
	for seq := uint64(1); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := queue.GetMsg(ctx, seq, jetstream.WithGetMsgSubject("rgs.queue"))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.ID == "" {
			return nil, fmt.Errorf("queue message %d has no event id (has the queue's format changed?): %s", m.Sequence, m.Data)
		}
		ids[ev.ID] = true
		seq = m.Sequence + 1
	}
}

// cloneIDs clones url with the real git (git-remote-relay on PATH) and
// returns `git rev-parse HEAD` followed by `git log --format=%H`.
func cloneIDs(bt *binTool, env []string, url string) []string {
	bt.t.Helper()
	dir := filepath.Join(bt.t.TempDir(), "clone")
	bt.ok(env, "git", "clone", "--quiet", url, dir)
	var out []string
	for _, args := range [][]string{{"rev-parse", "HEAD"}, {"log", "--format=%H"}} {
		o, e, code := bt.run(env, dir, "git", args...)
		if code != 0 {
			bt.t.Fatalf("git %s in the clone of %s: %s", strings.Join(args, " "), url, e)
		}
		out = append(out, strings.Fields(o)...)
	}
	return out
}

// faultLogEvent is a "snapshot", "folder lease taken" or "reconcile done"
// line of a serve log.
type faultLogEvent struct {
	at          time.Time
	msg, folder string
	seq         uint64
}

var faultLogLine = regexp.MustCompile(`^time=(\S+) level=INFO msg=(snapshot|"folder lease taken"|"reconcile done") folder=(\S+)(?: seq=(\d+))?`)

// logLinesAfter returns the lines of a serve log holding substr, logged
// after t0.
func logLinesAfter(t *testing.T, path, substr string, t0 time.Time) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, ts); err == nil && at.After(t0) && strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func faultLogEvents(t *testing.T, path string) []faultLogEvent {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	var out []faultLogEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := faultLogLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		seq, _ := strconv.ParseUint(m[4], 10, 64)
		out = append(out, faultLogEvent{at: at, msg: strings.Trim(m[2], `"`), folder: m[3], seq: seq})
	}
	return out
}
