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
// Everything is bounded: at most -max-requests requests per phase. After
// each phase, serve's own count of accepted webhooks must equal the 2xx
// answers the senders saw. On Linux it also reports each server process's
// CPU time per acknowledged webhook (from /proc/PID/stat), the steadiest
// figure on a machine shared with other work.
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

type target struct {
	name string
	url  string // .../webhooks
}

func run() error {
	tmp, cleanup, err := benchproc.Workdir("webhookload", *keep)
	if err != nil {
		return err
	}
	defer cleanup()
	bin, err := benchproc.Binary(*binFlag, tmp)
	if err != nil {
		return err
	}

	// The fake Relay Server and the followed folder.
	const relayKey = "bench-relay-key"
	srv := relaytest.NewServer(relaytest.Options{APIKey: relayKey})
	defer srv.Close()
	relayID := srv.NewRelay()
	followed := srv.NewFolder(relayID)
	var docs []string
	for i := range *notes {
		id, err := followed.AddMarkdown(fmt.Sprintf("/bench/note-%02d.md", i), fmt.Sprintf("# note %d\n", i))
		if err != nil {
			return err
		}
		docs = append(docs, relay.CompoundID(relayID, id))
	}
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

	// The no-op handler.
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
	noopTarget := target{"no-op gin", "http://" + strings.TrimSpace(noopAddr) + "/webhooks"}

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
		map[bool]string{false: "a followed folder's notes", true: "an unfollowed folder's notes"}[*unknownDocs], noopTarget.url)

	// phase runs one measurement against the no-op handler and a serve
	// (a fresh one on a new data dir, unless -same-serve), after a second
	// of warm-up for both, and checks serve's count of accepted webhooks.
	var sp *serveProc
	defer func() {
		if sp != nil {
			sp.stop()
		}
	}()
	measureCPU := func(pid int, tg target, measure func(target) result) result {
		before, cerr := benchproc.CPU(pid)
		r := measure(tg)
		after, cerr2 := benchproc.CPU(pid)
		if cerr == nil && cerr2 == nil {
			r.cpu = after - before
		}
		return r
	}
	phase := func(name string, measure func(target) result) (serveRes, noopRes result, err error) {
		if sp == nil || !*sameServe {
			if sp != nil {
				sp.stop()
			}
			if sp, err = startServe(bin, filepath.Join(tmp, "data-"+name), conn, env); err != nil {
				return result{}, result{}, err
			}
			log.Printf("(%s) serve on %s, log %s", name, sp.addr, sp.logPath)
		}
		serveTarget := target{"serve", "http://" + sp.addr + "/webhooks"}
		for _, tg := range []target{noopTarget, serveTarget} {
			if !strings.HasPrefix(tg.url, "http://127.0.0.1:") {
				return result{}, result{}, fmt.Errorf("refusing a non-loopback target %s", tg.url)
			}
			w := gen.closedLoop(tg, 8, time.Second)
			if w.ok == 0 {
				return result{}, result{}, fmt.Errorf("%s: warm-up failed: %v", tg.name, w.lastErr)
			}
			if tg.name == "serve" {
				sp.acked += w.ok
			}
		}
		noopRes = measureCPU(noop.Process.Pid, noopTarget, measure)
		serveRes = measureCPU(sp.cmd.Process.Pid, serveTarget, measure)
		sp.acked += serveRes.ok
		accepted, err := metric("http://"+sp.addr+"/metrics", `relay_git_sync_webhooks_total{outcome="accepted"}`)
		if err != nil {
			return result{}, result{}, err
		}
		if int64(accepted) != sp.acked {
			return result{}, result{}, fmt.Errorf("serve counted %.0f accepted webhooks but %d were acknowledged", accepted, sp.acked)
		}
		return serveRes, noopRes, nil
	}

	s, n, err := phase("a", func(tg target) result {
		r := gen.closedLoop(tg, *concurrency, *duration)
		log.Printf("(a) %-9s %d senders, %s: %d acked, %d failed: %.0f acks/s (%s)", tg.name, *concurrency,
			r.elapsed.Round(time.Millisecond), r.ok, r.errs, r.perSecond(), r.lastErrString())
		return r
	})
	if err != nil {
		return err
	}
	sl, nl, err := phase("b", func(tg target) result {
		r := gen.openLoop(tg, *rate, *rateDuration)
		log.Printf("(b) %-9s %d req/s for %s: %d acked, %d failed, %d not sent (in-flight bound): p50 %s p99 %s max %s (%s)",
			tg.name, *rate, *rateDuration, r.ok, r.errs, r.skipped, ms(r.p(0.50)), ms(r.p(0.99)), ms(r.p(1)), r.lastErrString())
		return r
	})
	if err != nil {
		return err
	}

	fmt.Println()
	fresh := "a fresh serve for each phase"
	if *sameServe {
		fresh = "one serve for both phases"
	}
	fmt.Printf("webhookload: %s; %d senders; %d req/s open loop; %s\n", mode, *concurrency, *rate, fresh)
	fmt.Printf("%-34s %14s %14s %10s\n", "", "serve", "no-op gin", "ratio")
	fmt.Printf("%-34s %14.0f %14.0f %10.2f\n", "(a) acked webhooks/s", s.perSecond(), n.perSecond(), s.perSecond()/n.perSecond())
	fmt.Printf("%-34s %14s %14s %10.2f\n", "(b) p50 latency at "+strconv.Itoa(*rate)+" req/s", ms(sl.p(0.5)), ms(nl.p(0.5)), ratio(sl.p(0.5), nl.p(0.5)))
	fmt.Printf("%-34s %14s %14s %10.2f\n", "(b) p99 latency at "+strconv.Itoa(*rate)+" req/s", ms(sl.p(0.99)), ms(nl.p(0.99)), ratio(sl.p(0.99), nl.p(0.99)))
	fmt.Printf("%-34s %14s %14s\n", "(b) max latency", ms(sl.p(1)), ms(nl.p(1)))
	fmt.Printf("%-34s %14d %14d\n", "failed requests (a)+(b)", s.errs+sl.errs+sl.skipped, n.errs+nl.errs+nl.skipped)
	if s.cpu > 0 && n.cpu > 0 {
		// Steadier than the rates on a shared machine: what each answer
		// cost the server's process, whatever share of the cores it got.
		fmt.Printf("%-34s %14s %14s %10.2f\n", "(a) server CPU per acked webhook", us(s.cpuPerAck()), us(n.cpuPerAck()), ratio(s.cpuPerAck(), n.cpuPerAck()))
		fmt.Printf("%-34s %14s %14s %10.2f\n", "(b) server CPU per acked webhook", us(sl.cpuPerAck()), us(nl.cpuPerAck()), ratio(sl.cpuPerAck(), nl.cpuPerAck()))
	}
	pass := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Printf("targets: >= 2000 durable acks/s: %s (%.0f); p99 < 50 ms at %d req/s: %s (%s)\n",
		pass(s.perSecond() >= 2000), s.perSecond(), *rate, pass(sl.p(0.99) < 50*time.Millisecond), ms(sl.p(0.99)))
	return nil
}

// serveProc is a running `relay-git-sync serve`.
type serveProc struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	acked   int64 // 2xx answers seen, to check against its metrics
}

// startServe runs serve as a user does, on a new data dir following the
// bench folder; its log goes to a file.
func startServe(bin, dataDir, connectors string, env []string) (*serveProc, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dataDir, "git_connectors.toml"), []byte(connectors), 0o644); err != nil {
		return nil, err
	}
	p := &serveProc{logPath: dataDir + ".log"}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{"serve", "--host", "127.0.0.1", "--port", "0", "--commit-interval", "1", "--max-delay", "5s"}
	args = append(args, strings.Fields(*serveArgs)...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(env, "RELAY_GIT_DATA_DIR="+dataDir)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p.addr, err = benchproc.WaitServing(ctx, p.logPath); err != nil {
		p.stop()
		return nil, fmt.Errorf("serve did not start (log %s): %w", p.logPath, err)
	}
	return p, nil
}

// stop sends SIGTERM and waits (SIGKILL after 20 s).
func (p *serveProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
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

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// request builds one fresh webhook delivery.
func (g *generator) request(url string) (*http.Request, error) {
	n := g.seq.Add(1)
	w := relaytest.Webhook{
		DocID:   g.docs[int(n)%len(g.docs)],
		Time:    time.Now(),
		User:    "bench-user-" + strconv.Itoa(int(n%7)),
		EventID: fmt.Sprintf("evt_bench%016d", n),
	}
	body, err := relaytest.WebhookBody(w)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "y-sweet-webhook/1.0.0")
	if strings.HasPrefix(g.secret, "whsec_") {
		sig, err := relaytest.SignWebhook(g.secret, w.EventID, time.Now(), body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("webhook-id", w.EventID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
		req.Header.Set("webhook-signature", sig)
	} else {
		req.Header.Set("Authorization", "Bearer "+g.secret)
	}
	return req, nil
}

// do sends one request; ok means a 2xx answer.
func (g *generator) do(ctx context.Context, url string) error {
	req, err := g.request(url)
	if err != nil {
		return err
	}
	resp, err := g.hc.Do(req.WithContext(ctx))
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
func (g *generator) closedLoop(tg target, senders int, d time.Duration) result {
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
				if err := g.do(ctx, tg.url); err != nil {
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
func (g *generator) openLoop(tg target, perSecond int, d time.Duration) result {
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
			if err := g.do(ctx, tg.url); err != nil {
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
