// Command webhookload measures how fast `relay-git-sync serve` acknowledges
// webhooks durably, against a no-op gin handler measured in the same run on
// the same machine. See bench/README.md.
//
// It starts, on 127.0.0.1 only:
//
//   - the fake Relay Server (internal/relaytest) with one shared folder of
//     notes, in this process;
//   - `relay-git-sync serve` as a subprocess on a new data dir (the real
//     binary with its real Badger store, SyncWrites on: a 2xx means the
//     event is committed to disk), following that folder; a fresh one for
//     each phase (-same-serve: one for both);
//   - a no-op gin handler as a subprocess (this program re-executed with
//     -noop-server): POST /webhooks reads the body and answers 200
//     {"status":"received"}, nothing else.
//
// Then, for each target, two phases, every request a fresh signed
// document.updated webhook for one of the folder's notes with its own event
// id (so none is a duplicate):
//
//	(a) throughput: -c senders in a closed loop for -duration: acknowledged
//	    (2xx) webhooks per second;
//	(b) latency: an open-loop schedule of -rate requests per second for
//	    -rate-duration; each request's latency is measured from its
//	    scheduled time (so a stall counts for every request it delays),
//	    at most -max-inflight in flight: p50, p99, max.
//
// With -cluster (e.g. 1,2,3) it also measures serve on a NATS JetStream
// cluster (-nats-nodes nats-server processes on loopback, replicas
// min(nodes, 3); a fresh cluster for each phase) with that many instances
// sharing it, each request sent to the next instance in turn; serve on
// Badger is then the reference of the ratios. Then it times failovers
// (-failovers): of two instances, the folder's lease holder is killed with
// SIGKILL while edits keep coming to the other, until the other's read API
// shows a snapshot of an edit made after the kill (cluster.go).
//
// Everything is bounded: at most -max-requests requests per phase. After
// each phase, serve's own count of accepted webhooks (summed over the
// instances) must equal the 2xx answers the senders saw. On Linux it also
// reports each server's CPU time per acknowledged webhook (from
// /proc/PID/stat; serve's instances and the nats-server nodes together),
// the steadiest figure on a machine shared with other work.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/relay-git-sync/relay-git-sync/bench/internal/benchproc"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
)

var (
	binFlag      = flag.String("bin", "", "relay-git-sync binary (default: build it with go build -tags nomsgpack)")
	concurrency  = flag.Int("c", 64, "concurrent senders in the throughput phase")
	duration     = flag.Duration("duration", 10*time.Second, "length of the throughput phase")
	rate         = flag.Int("rate", 1000, "requests per second in the latency phase")
	rateDuration = flag.Duration("rate-duration", 10*time.Second, "length of the latency phase")
	maxRequests  = flag.Int("max-requests", 300_000, "upper bound on requests per phase")
	maxInflight  = flag.Int("max-inflight", 2000, "upper bound on requests in flight in the latency phase")
	whsec        = flag.Bool("whsec", false, "sign webhooks with a Standard Webhooks whsec_ secret (default: shared secret, Bearer)")
	unknownDocs  = flag.Bool("unknown-docs", false, "send webhooks for documents of a folder serve does not follow")
	notes        = flag.Int("notes", 20, "notes in the followed folder (webhooks cycle over them)")
	keep         = flag.Bool("keep", false, "keep the data dir and serve's log")
	serveArgs    = flag.String("serve-args", "", "extra arguments for serve, space-separated (e.g. \"--commit-interval 10 --max-delay 2m\")")
	sameServe    = flag.Bool("same-serve", false, "run both phases against one serve (the latency phase then starts with the throughput phase's backlog)")
	drainWait    = flag.Duration("drain", 0, "after each phase, wait up to this long for serve to handle every queued webhook, and report how long it took")
	cluster      = flag.String("cluster", "", "also measure serve on a NATS JetStream cluster with these numbers of instances, comma-separated (e.g. 1,2,3); serve on Badger is then the reference")
	natsNodes    = flag.Int("nats-nodes", 3, "with -cluster: nodes of the NATS cluster (streams get min(nodes, 3) replicas)")
	natsServer   = flag.String("nats-server", "", "with -cluster: the nats-server binary (default: nats-server in PATH, else /usr/sbin/nats-server)")
	leaseTTL     = flag.Duration("lease-ttl", 2*time.Second, "with -cluster: serve's --lease-ttl")
	failovers    = flag.Int("failovers", 3, "with -cluster: times the folder's lease holder (of 2 instances) is killed and the handover timed")
	editEvery    = flag.Duration("failover-every", 500*time.Millisecond, "with -cluster: an edit and its webhook this often during the failover runs")
	noopServer   = flag.Bool("noop-server", false, "internal: run the no-op gin handler on 127.0.0.1:0 and print its address")
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	if *noopServer {
		runNoop()
		return
	}
	if err := run(); err != nil {
		log.Fatalf("webhookload: %v", err)
	}
}

// runNoop serves the baseline: the same route, the same answer, no work.
func runNoop() {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.POST("/webhooks", func(c *gin.Context) {
		_, _ = io.Copy(io.Discard, c.Request.Body)
		c.Data(http.StatusOK, "application/json; charset=utf-8", []byte(`{"status":"received"}`))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Fatal(srv.Serve(ln))
}

// target is where a system under test takes webhooks: each request goes
// to the next of its instances' URLs in turn.
type target struct {
	name string
	urls []string // http://127.0.0.1:PORT/webhooks of each instance
	next atomic.Uint64
}

func (t *target) url() string { return t.urls[(t.next.Add(1)-1)%uint64(len(t.urls))] }

// system is one server setup measured: the no-op handler, serve on Badger,
// serve instances on a NATS cluster. start brings up a fresh one in dir.
type system struct {
	name  string
	start func(dir string) (*deployment, error)
}

// deployment is a started system.
type deployment struct {
	target *target
	serves []*serveProc // whose accepted webhooks are checked; none for the no-op
	pids   []int        // processes whose CPU time counts: serves, and nats-server nodes
	store  []int        // of pids, the nats-server nodes
	acked  int64        // 2xx answers seen, to check against serve's metrics
	// backlog, when set, counts the events still queued (not yet
	// handled and acknowledged by serve).
	backlog func() (int, error)
	stop    func()
}

func run() error {
	loadStart := loadavg()
	tmp, cleanup, err := benchproc.Workdir("webhookload", *keep)
	if err != nil {
		return err
	}
	defer cleanup()
	bin, err := benchproc.Binary(*binFlag, tmp)
	if err != nil {
		return err
	}
	instances, err := parseCluster(*cluster)
	if err != nil {
		return err
	}
	natsBin := ""
	if len(instances) > 0 {
		if natsBin, err = findNATSServer(*natsServer); err != nil {
			return err
		}
	}

	// The fake Relay Server and the followed folder.
	const relayKey = "bench-relay-key"
	srv := relaytest.NewServer(relaytest.Options{APIKey: relayKey})
	defer srv.Close()
	relayID := srv.NewRelay()
	followed := srv.NewFolder(relayID)
	var docs []string
	for i := range *notes {
		id, err := followed.AddMarkdown(notePath(i), fmt.Sprintf("# note %d\n", i))
		if err != nil {
			return err
		}
		docs = append(docs, relay.CompoundID(relayID, id))
	}
	note0 := docs[0] // the note the failover runs edit
	if *unknownDocs {
		other := srv.NewFolder(relayID)
		docs = docs[:0]
		for i := range *notes {
			id, err := other.AddMarkdown(fmt.Sprintf("/other/note-%02d.md", i), "x\n")
			if err != nil {
				return err
			}
			docs = append(docs, relay.CompoundID(relayID, id))
		}
	}
	secret := randomSecret(*whsec)
	conn := fmt.Sprintf("[[git_connector]]\nshared_folder_id = %q\nrelay_id = %q\nurl = \"git@git.example.invalid:bench.git\"\n", followed.ID(), relayID)
	env := append(os.Environ(), "RELAY_SERVER_URL="+srv.URL(), "RELAY_SERVER_API_KEY="+relayKey, "WEBHOOK_SECRET="+secret)

	// The no-op handler, one process for the whole run.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	noop := exec.Command(self, "-noop-server")
	noop.Stderr = os.Stderr
	out, err := noop.StdoutPipe()
	if err != nil {
		return err
	}
	if err := noop.Start(); err != nil {
		return err
	}
	defer func() { _ = noop.Process.Kill(); _ = noop.Wait() }()
	noopAddr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no-op server: %w", err)
	}
	noopDep := &deployment{target: &target{name: "no-op gin", urls: []string{"http://" + strings.TrimSpace(noopAddr) + "/webhooks"}},
		pids: []int{noop.Process.Pid}, stop: func() {}}

	gen := &generator{secret: secret, docs: docs, hc: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: *maxInflight, MaxIdleConnsPerHost: *maxInflight,
			IdleConnTimeout: time.Minute, DisableCompression: true,
		},
	}}
	mode := "shared secret (Authorization: Bearer)"
	if *whsec {
		mode = "Standard Webhooks (whsec_ HMAC)"
	}
	log.Printf("auth: %s; docs: %s; no-op on %s", mode,
		map[bool]string{false: "a followed folder's notes", true: "an unfollowed folder's notes"}[*unknownDocs], noopDep.target.urls[0])

	// The systems, in the order they are measured; ref is the one the
	// others are compared with.
	badger := "serve"
	if len(instances) > 0 {
		badger = "serve, Badger"
	}
	systems := []system{
		{"no-op gin", func(string) (*deployment, error) { return noopDep, nil }},
		{badger, func(dir string) (*deployment, error) {
			sp, err := startServe(bin, dir, conn, env, nil)
			if err != nil {
				return nil, err
			}
			log.Printf("serve on %s, log %s", sp.addr, sp.logPath)
			depth := func() (int, error) {
				n, err := metric("http://"+sp.addr+"/metrics", "relay_git_sync_queue_depth")
				return int(n), err
			}
			return &deployment{target: &target{name: badger, urls: []string{sp.webhookURL()}},
				serves: []*serveProc{sp}, pids: []int{sp.cmd.Process.Pid}, backlog: depth, stop: sp.stop}, nil
		}},
	}
	ref := 0
	if len(instances) > 0 {
		ref = 1
	}
	for _, n := range instances {
		name := fmt.Sprintf("NATS, %d serve", n)
		systems = append(systems, system{name, func(dir string) (*deployment, error) {
			return startNATSDeployment(name, natsBin, bin, dir, n, conn, env)
		}})
	}

	// phase runs one measurement against each system in turn: a fresh
	// one (unless -same-serve) after a second of warm-up, stopped once
	// measured; serve's count of accepted webhooks must match the 2xx
	// answers seen.
	running := make([]*deployment, len(systems))
	defer func() {
		for _, d := range running {
			if d != nil {
				d.stop()
			}
		}
	}()
	phase := func(name string, measure func(*target) result) ([]result, error) {
		var res []result
		for i, sys := range systems {
			d := running[i]
			if d == nil {
				dir := filepath.Join(tmp, fmt.Sprintf("%s-sys%d", name, i))
				if d, err = sys.start(dir); err != nil {
					return nil, fmt.Errorf("(%s) starting %s: %w", name, sys.name, err)
				}
				running[i] = d
			}
			for _, u := range d.target.urls {
				if !strings.HasPrefix(u, "http://127.0.0.1:") {
					return nil, fmt.Errorf("refusing a non-loopback target %s", u)
				}
			}
			w := gen.closedLoop(d.target, 8, time.Second)
			if w.ok == 0 {
				return nil, fmt.Errorf("%s: warm-up failed: %v", sys.name, w.lastErr)
			}
			d.acked += w.ok
			before, storeBefore := cpuOf(d.pids), cpuOf(d.store)
			r := measure(d.target)
			r.cpu, r.storeCPU = cpuOf(d.pids)-before, cpuOf(d.store)-storeBefore
			d.acked += r.ok
			var accepted float64
			for _, sp := range d.serves {
				a, err := metric("http://"+sp.addr+"/metrics", `relay_git_sync_webhooks_total{outcome="accepted"}`)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", sys.name, err)
				}
				accepted += a
			}
			if len(d.serves) > 0 && int64(accepted) != d.acked {
				return nil, fmt.Errorf("%s: serve counted %.0f accepted webhooks but %d were acknowledged", sys.name, accepted, d.acked)
			}
			r.queued = -1
			if d.backlog != nil {
				if r.queued, err = drain(name, sys.name, d); err != nil {
					return nil, err
				}
			}
			if !*sameServe {
				d.stop()
				running[i] = nil
			}
			res = append(res, r)
		}
		return res, nil
	}

	a, err := phase("a", func(tg *target) result {
		r := gen.closedLoop(tg, *concurrency, *duration)
		log.Printf("(a) %-16s %d senders, %s: %d acked, %d failed: %.0f acks/s (%s)", tg.name, *concurrency,
			r.elapsed.Round(time.Millisecond), r.ok, r.errs, r.perSecond(), r.lastErrString())
		return r
	})
	if err != nil {
		return err
	}
	b, err := phase("b", func(tg *target) result {
		r := gen.openLoop(tg, *rate, *rateDuration)
		log.Printf("(b) %-16s %d req/s for %s: %d acked, %d failed, %d not sent (in-flight bound): p50 %s p99 %s max %s (%s)",
			tg.name, *rate, *rateDuration, r.ok, r.errs, r.skipped, ms(r.p(0.50)), ms(r.p(0.99)), ms(r.p(1)), r.lastErrString())
		return r
	})
	if err != nil {
		return err
	}
	var handovers []failoverResult
	if len(instances) > 0 && *failovers > 0 {
		fo := failoverRun{natsBin: natsBin, bin: bin, dir: filepath.Join(tmp, "failover"), conn: conn, env: env,
			gen: gen, folder: followed, note: note0}
		if handovers, err = fo.run(*failovers); err != nil {
			return err
		}
	}

	fmt.Println()
	fresh := "a fresh server for each phase"
	if *sameServe {
		fresh = "one server for both phases"
	}
	fmt.Printf("webhookload: %s; %d senders; %d req/s open loop; %s\n", mode, *concurrency, *rate, fresh)
	if len(instances) > 0 {
		fmt.Printf("NATS: %d-node JetStream cluster (replicas %d), one for each instance count (and phase, as serve); webhooks round-robin over the instances; --lease-ttl %s\n",
			*natsNodes, min(*natsNodes, 3), *leaseTTL)
	}
	if loadStart != "" {
		fmt.Printf("load average (/proc/loadavg) at the start: %s; at the end: %s\n", loadStart, loadavg())
	}
	row := func(label string, f func(i int) string) {
		fmt.Printf("%-34s", label)
		for i := range systems {
			fmt.Printf(" %16s", f(i))
		}
		fmt.Println()
	}
	row("", func(i int) string { return systems[i].name })
	row("(a) acked webhooks/s", func(i int) string { return fmt.Sprintf("%.0f", a[i].perSecond()) })
	for _, q := range []struct {
		label string
		q     float64
	}{{"p50", 0.5}, {"p99", 0.99}, {"max", 1}} {
		row(fmt.Sprintf("(b) %s latency at %d req/s", q.label, *rate), func(i int) string { return ms(b[i].p(q.q)) })
	}
	queued := func(r result) string {
		if r.queued < 0 {
			return "-"
		}
		return strconv.Itoa(r.queued)
	}
	row("still queued at the end of (a)", func(i int) string { return queued(a[i]) })
	row("still queued at the end of (b)", func(i int) string { return queued(b[i]) })
	row("failed requests (a)+(b)", func(i int) string { return strconv.FormatInt(a[i].errs+b[i].errs+b[i].skipped, 10) })
	cpuKnown := true
	for i := range systems {
		cpuKnown = cpuKnown && a[i].cpu > 0 && b[i].cpu > 0
	}
	if cpuKnown {
		// Steadier than the rates on a shared machine: what each answer
		// cost the server's processes, whatever share of the cores they got.
		row("(a) server CPU per acked webhook", func(i int) string { return us(a[i].cpuPerAck()) })
		row("(b) server CPU per acked webhook", func(i int) string { return us(b[i].cpuPerAck()) })
		if len(instances) > 0 {
			store := func(r result) string {
				if r.storeCPU == 0 {
					return "-"
				}
				return us(r.storeCPUPerAck())
			}
			row("  of which nats-server, (a)", func(i int) string { return store(a[i]) })
			row("  of which nats-server, (b)", func(i int) string { return store(b[i]) })
		}
	}
	fmt.Printf("ratios against %s:\n", systems[ref].name)
	ratioRow := func(label string, f func(r []result, i int) float64, rs []result) {
		row(label, func(i int) string {
			if i == ref {
				return "1"
			}
			return fmt.Sprintf("%.2f", f(rs, i)/f(rs, ref))
		})
	}
	ratioRow("(a) acks/s", func(r []result, i int) float64 { return r[i].perSecond() }, a)
	ratioRow("(b) p50", func(r []result, i int) float64 { return float64(r[i].p(0.5)) }, b)
	ratioRow("(b) p99", func(r []result, i int) float64 { return float64(r[i].p(0.99)) }, b)
	if cpuKnown {
		ratioRow("(a) CPU per ack", func(r []result, i int) float64 { return float64(r[i].cpuPerAck()) }, a)
		ratioRow("(b) CPU per ack", func(r []result, i int) float64 { return float64(r[i].cpuPerAck()) }, b)
	}
	if len(handovers) > 0 {
		fmt.Printf("failover, 2 instances, lease holder killed (SIGKILL) until the other's first new snapshot: %s\n", durations(handovers))
	}
	pass := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	s, sl := a[1], b[1]
	fmt.Printf("targets (%s): >= 2000 durable acks/s: %s (%.0f); p99 < 50 ms at %d req/s: %s (%s)\n", systems[1].name,
		pass(s.perSecond() >= 2000), s.perSecond(), *rate, pass(sl.p(0.99) < 50*time.Millisecond), ms(sl.p(0.99)))
	return nil
}

// drain logs how many webhooks are still queued at the end of a phase
// and, with -drain, how long serve then takes to handle them all.
func drain(phase, name string, d *deployment) (queued int, err error) {
	start := time.Now()
	n, err := d.backlog()
	if err != nil {
		return 0, fmt.Errorf("%s: counting the queued webhooks: %w", name, err)
	}
	log.Printf("(%s) %-16s %d of the %d acknowledged webhooks still queued at the end", phase, name, n, d.acked)
	for left := n; left > 0 && *drainWait > 0; {
		if time.Since(start) > *drainWait {
			log.Printf("(%s) %-16s %d still queued after %s (-drain)", phase, name, left, *drainWait)
			return n, nil
		}
		time.Sleep(250 * time.Millisecond)
		if left, err = d.backlog(); err != nil {
			return 0, fmt.Errorf("%s: counting the queued webhooks: %w", name, err)
		}
		if left == 0 {
			log.Printf("(%s) %-16s queue drained in %s", phase, name, time.Since(start).Round(10*time.Millisecond))
		}
	}
	return n, nil
}

// loadavg returns the 1, 5 and 15 minute load averages ("" if unknown):
// the machine's other load, which the figures depend on.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// notePath is the path of the followed folder's note i.
func notePath(i int) string { return fmt.Sprintf("/bench/note-%02d.md", i) }

// cpuOf sums the CPU time of processes; 0 when any is unknown (not Linux).
func cpuOf(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		c, err := benchproc.CPU(pid)
		if err != nil {
			return 0
		}
		sum += c
	}
	return sum
}

// serveProc is a running `relay-git-sync serve`.
type serveProc struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	done    chan struct{} // closed once it exited and was waited for
}

func (p *serveProc) webhookURL() string { return "http://" + p.addr + "/webhooks" }

// startServe runs serve as a user does, on a new data dir following the
// bench folder; its log goes to a file. extra comes after the defaults
// (a flag given twice takes the later value) and before -serve-args.
func startServe(bin, dataDir, connectors string, env, extra []string) (*serveProc, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dataDir, "git_connectors.toml"), []byte(connectors), 0o644); err != nil {
		return nil, err
	}
	// A restarted instance's data dir is reused; each life gets its own
	// log file, in which its "serving" line is looked for.
	p := &serveProc{done: make(chan struct{})}
	var logf *os.File
	for n := 1; ; n++ {
		p.logPath = dataDir + ".log"
		if n > 1 {
			p.logPath = fmt.Sprintf("%s.%d.log", dataDir, n)
		}
		var err error
		if logf, err = os.OpenFile(p.logPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	defer logf.Close()
	args := []string{"serve", "--host", "127.0.0.1", "--port", "0", "--commit-interval", "1", "--max-delay", "5s"}
	args = append(append(args, extra...), strings.Fields(*serveArgs)...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(env, "RELAY_GIT_DATA_DIR="+dataDir)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var err error
	if p.addr, err = benchproc.WaitServing(ctx, p.logPath); err != nil {
		p.stop()
		return nil, fmt.Errorf("serve did not start (log %s): %w", p.logPath, err)
	}
	return p, nil
}

// stop sends SIGTERM and waits (SIGKILL after 20 s).
func (p *serveProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *serveProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func randomSecret(whsec bool) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	if whsec {
		return "whsec_" + base64.StdEncoding.EncodeToString(b)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func metric(url, series string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("%s not in /metrics", series)
}

// ---- load generation ----

type generator struct {
	secret string
	docs   []string
	hc     *http.Client
	seq    atomic.Int64
}

type result struct {
	ok, errs, skipped int64
	elapsed           time.Duration
	cpu               time.Duration   // the server process's CPU time (user+system) during the phase; 0 = unknown
	lat               []time.Duration // sorted
	lastErr           error
	storeCPU          time.Duration // of cpu, the nats-server nodes'
	queued            int           // webhooks serve had not handled yet when the phase ended; -1 = not counted
}

func (r result) perSecond() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r result) cpuPerAck() time.Duration {
	if r.ok == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.ok)
}

func (r result) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

func (r result) lastErrString() string {
	if r.lastErr == nil {
		return "no errors"
	}
	return "last error: " + r.lastErr.Error()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func (r result) storeCPUPerAck() time.Duration {
	if r.ok == 0 {
		return 0
	}
	return r.storeCPU / time.Duration(r.ok)
}

// do sends one fresh webhook delivery for one of the notes; ok means a
// 2xx answer.
func (g *generator) do(ctx context.Context, url string) error {
	n := g.seq.Add(1)
	return g.send(ctx, url, relaytest.Webhook{
		DocID:   g.docs[int(n)%len(g.docs)],
		Time:    time.Now(),
		User:    "bench-user-" + strconv.Itoa(int(n%7)),
		EventID: fmt.Sprintf("evt_bench%016d", n),
	})
}

// send delivers w, authenticated as relay-server does; ok means a 2xx
// answer.
func (g *generator) send(ctx context.Context, url string, w relaytest.Webhook) error {
	body, err := relaytest.WebhookBody(w)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "y-sweet-webhook/1.0.0")
	if strings.HasPrefix(g.secret, "whsec_") {
		sig, err := relaytest.SignWebhook(g.secret, w.EventID, time.Now(), body)
		if err != nil {
			return err
		}
		req.Header.Set("webhook-id", w.EventID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
		req.Header.Set("webhook-signature", sig)
	} else {
		req.Header.Set("Authorization", "Bearer "+g.secret)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// closedLoop runs senders that each send the next request as soon as the
// previous one is answered, for d (and at most -max-requests requests).
func (g *generator) closedLoop(tg *target, senders int, d time.Duration) result {
	var ok, errs, budget atomic.Int64
	budget.Store(int64(*maxRequests))
	var lastErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && budget.Add(-1) >= 0 {
				if err := g.do(ctx, tg.url()); err != nil {
					errs.Add(1)
					lastErr.Store(err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	r := result{ok: ok.Load(), errs: errs.Load(), elapsed: time.Since(start)}
	if e, _ := lastErr.Load().(error); e != nil {
		r.lastErr = e
	}
	return r
}

// openLoop sends requests on a fixed schedule, whatever the answers do,
// and measures each one from its scheduled time.
func (g *generator) openLoop(tg *target, perSecond int, d time.Duration) result {
	n := min(int(d.Seconds()*float64(perSecond)), *maxRequests)
	interval := time.Second / time.Duration(perSecond)
	lat := make([]time.Duration, n)
	okFlags := make([]bool, n)
	var errs, skipped atomic.Int64
	var lastErr atomic.Value
	sem := make(chan struct{}, *maxInflight)
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		select {
		case sem <- struct{}{}:
		default:
			skipped.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := g.do(ctx, tg.url()); err != nil {
				errs.Add(1)
				lastErr.Store(err)
				return
			}
			lat[i] = time.Since(at)
			okFlags[i] = true
		}()
	}
	wg.Wait()
	r := result{errs: errs.Load(), skipped: skipped.Load(), elapsed: time.Since(start)}
	for i, ok := range okFlags {
		if ok {
			r.ok++
			r.lat = append(r.lat, lat[i])
		}
	}
	slices.Sort(r.lat)
	if e, _ := lastErr.Load().(error); e != nil && !errors.Is(e, context.Canceled) {
		r.lastErr = e
	}
	return r
}
