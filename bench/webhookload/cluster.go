package main

// serve on a NATS JetStream cluster (-cluster): the cluster's nodes,
// started here as nats-server processes on loopback, serve instances
// sharing it, and the failover runs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
)

// parseCluster reads -cluster: instance counts, such as "1,2,3".
func parseCluster(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-cluster %q: want instance counts of at least 1, comma-separated (e.g. 1,2,3)", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func findNATSServer(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server", nil
	}
	return "", errors.New("-cluster needs nats-server (apt-get install nats-server, or pass -nats-server)")
}

// natsCluster is a set of nats-server processes with JetStream, clustered
// on loopback when there are several.
type natsCluster struct {
	url   string // every node's client URL, comma-separated
	nodes []*exec.Cmd
	done  []chan struct{} // closed once a node exited and was waited for
}

// startNATSCluster starts n nodes in dir and returns once a stream with
// min(n, 3) replicas can be created (the cluster has a JetStream meta
// leader and every node is a peer). A node that could not bind the ports
// picked as free makes it try again on others.
func startNATSCluster(bin, dir string, n int) (*natsCluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := launchNATS(bin, filepath.Join(dir, fmt.Sprintf("try%d", attempt)), n)
		if err == nil {
			return c, nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
		log.Printf("NATS cluster: %v; trying other ports", err)
	}
}

func launchNATS(bin, dir string, n int) (*natsCluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &natsCluster{}
	var urls, logs []string
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		sd := filepath.Join(dir, name)
		if err := os.MkdirAll(sd, 0o755); err != nil {
			return nil, err
		}
		// The flags internal/natstest uses, which work with nats-server
		// 2.9 (Debian's) and later.
		args := []string{"-js", "-sd", sd, "-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-n", name}
		if n > 1 {
			var routes []string
			for j := range n {
				if j != i {
					routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(ports[n+j]))
				}
			}
			args = append(args, "--cluster_name", "webhookload", "--cluster", "nats://127.0.0.1:"+strconv.Itoa(ports[n+i]),
				"--routes", strings.Join(routes, ","))
		}
		logPath := sd + ".log"
		logf, err := os.Create(logPath)
		if err != nil {
			c.stop()
			return nil, err
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Start()
		logf.Close() // the child has its own copy
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("starting nats-server: %w", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		c.nodes, c.done = append(c.nodes, cmd), append(c.done, done)
		urls, logs = append(urls, "nats://127.0.0.1:"+strconv.Itoa(ports[i])), append(logs, logPath)
	}
	c.url = strings.Join(urls, ",")
	if err := c.waitReady(min(n, 3), logs); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// waitReady polls until a stream with this many replicas can be created,
// for at most a minute, or a node exits.
func (c *natsCluster) waitReady(replicas int, logs []string) error {
	nc, err := nats.Connect(c.url, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return fmt.Errorf("connecting to the NATS cluster at %s: %w", c.url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cfg := jetstream.StreamConfig{Name: "WEBHOOKLOAD_READY", Subjects: []string{"webhookload.ready"}, Replicas: replicas, Storage: jetstream.MemoryStorage}
	deadline := time.Now().Add(time.Minute)
	for {
		for i, done := range c.done {
			select {
			case <-done:
				b, _ := os.ReadFile(logs[i])
				return fmt.Errorf("nats-server exited while starting; its log %s:\n%s", logs[i], b)
			default:
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		if err == nil {
			err = js.DeleteStream(ctx, cfg.Name)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("JetStream not ready on the NATS cluster after a minute (logs %s): %w", strings.Join(logs, ", "), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queued returns the number of messages in serve's webhook queue, the
// stream RGS_QUEUE (internal/natsstore).
func (c *natsCluster) queued() (int, error) {
	nc, err := nats.Connect(c.url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "RGS_QUEUE")
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int(info.State.Msgs), nil
}

func (c *natsCluster) pids() []int {
	var out []int
	for _, cmd := range c.nodes {
		out = append(out, cmd.Process.Pid)
	}
	return out
}

// stop kills every node: the cluster is thrown away.
func (c *natsCluster) stop() {
	for i, cmd := range c.nodes {
		_ = cmd.Process.Kill()
		<-c.done[i]
	}
}

// freePorts returns n distinct ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close() // held until all are picked, so that they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// natsServeArgs are the flags of serve instance name on cluster c.
func natsServeArgs(c *natsCluster, name string) []string {
	return []string{"--store", c.url, "--instance", name, "--lease-ttl", leaseTTL.String()}
}

// startNATSDeployment starts a fresh cluster in dir and n serve instances
// sharing it, each on its own data dir.
func startNATSDeployment(name, natsBin, bin, dir string, n int, conn string, env []string) (*deployment, error) {
	c, err := startNATSCluster(natsBin, filepath.Join(dir, "nats"), *natsNodes)
	if err != nil {
		return nil, err
	}
	d := &deployment{target: &target{name: name}, store: c.pids(), backlog: c.queued}
	d.stop = func() {
		// Killed, not stopped: the cluster is thrown away with them, and a
		// graceful stop with a backlog waits out --shutdown-timeout.
		for _, sp := range d.serves {
			sp.kill()
		}
		c.stop()
	}
	for i := range n {
		inst := fmt.Sprintf("i%d", i+1)
		sp, err := startServe(bin, filepath.Join(dir, inst), conn, env, natsServeArgs(c, inst))
		if err != nil {
			d.stop()
			return nil, err
		}
		log.Printf("%s: instance %s on %s, log %s", name, inst, sp.addr, sp.logPath)
		d.serves = append(d.serves, sp)
		d.target.urls = append(d.target.urls, sp.webhookURL())
		d.pids = append(d.pids, sp.cmd.Process.Pid)
	}
	d.pids = append(d.pids, d.store...)
	return d, nil
}

// failoverRun times the handover of the folder when its lease holder dies:
// two instances on a fresh cluster, the fake Relay Server's note edited
// and a webhook sent every -failover-every (to the instances in turn, then
// only to the survivor), serve cutting a snapshot once a folder has been
// quiet for half that, so that the figure is the handover and not the
// batching. Each run kills (SIGKILL) the holder named by /health, then
// polls the survivor's read API for the first snapshot holding an edit
// made after the kill (its time, the newest webhook time of its window,
// is after the kill); the killed instance is started again for the next.
type failoverRun struct {
	natsBin, bin, dir, conn string
	env                     []string
	gen                     *generator
	folder                  *relaytest.Folder
	note                    string // the compound id of the note edited
}

// failoverResult is one handover: from the kill until the survivor's
// log says it took the lease, and until its read API shows the snapshot.
type failoverResult struct {
	leaseTaken, snapshot time.Duration
}

func (fr failoverRun) run(times int) ([]failoverResult, error) {
	token := randomSecret(false)
	env := append(fr.env, "RELAY_GIT_API_TOKEN="+token)
	c, err := startNATSCluster(fr.natsBin, filepath.Join(fr.dir, "nats"), *natsNodes)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	names := []string{"f1", "f2"}
	procs := make([]*serveProc, 2)
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.stop()
			}
		}
	}()
	startInst := func(i int) error {
		extra := append(natsServeArgs(c, names[i]), "--commit-interval", strconv.FormatFloat(editEvery.Seconds()/2, 'f', -1, 64))
		p, err := startServe(fr.bin, filepath.Join(fr.dir, names[i]), fr.conn, env, extra)
		if err != nil {
			return err
		}
		procs[i] = p
		return nil
	}
	for i := range procs {
		if err := startInst(i); err != nil {
			return nil, err
		}
	}

	// The sender: an edit and its webhook every -failover-every, to the
	// URLs in dest, in turn.
	var dest atomic.Pointer[[]string]
	setDest := func(ps ...*serveProc) {
		var us []string
		for _, p := range ps {
			us = append(us, p.webhookURL())
		}
		dest.Store(&us)
	}
	setDest(procs...)
	var sendErrs atomic.Int64
	var lastErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(*editEvery)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := fr.folder.EditMarkdown(notePath(0), fmt.Sprintf("# note 0\nfailover edit %d\n", n))
			if err == nil {
				us := *dest.Load()
				w := relaytest.Webhook{DocID: fr.note, Time: time.Now().UTC().Truncate(time.Microsecond), User: "failover",
					EventID: fmt.Sprintf("evt_failover%012d", n)}
				err = fr.gen.send(ctx, us[n%len(us)], w)
			}
			if err != nil && ctx.Err() == nil {
				sendErrs.Add(1)
				lastErr.Store(err)
			}
		}
	}()

	var out []failoverResult
	for run := 1; run <= times; run++ {
		for i, p := range procs {
			if p == nil {
				if err := startInst(i); err != nil {
					return nil, err
				}
			}
		}
		setDest(procs...)
		// Both up and following; one of them holds the folder.
		time.Sleep(max(2*time.Second, 4**editEvery))
		holder, err := waitHolder(procs, 60*time.Second)
		if err != nil {
			return nil, err
		}
		survivor := procs[1-holder]
		setDest(survivor)
		base, err := latestSeq(fr.gen.hc, survivor, fr.folder, token)
		if err != nil {
			return nil, err
		}
		killAt := time.Now()
		procs[holder].kill()
		procs[holder] = nil
		snap, err := waitNewSnapshot(fr.gen.hc, survivor, fr.folder, token, base, killAt, 60*time.Second)
		if err != nil {
			return nil, fmt.Errorf("failover %d: %w (survivor's log %s)", run, err, survivor.logPath)
		}
		r := failoverResult{snapshot: snap}
		if t, ok := logTime(survivor.logPath, `msg="folder lease taken"`, killAt); ok {
			r.leaseTaken = t.Sub(killAt)
		}
		log.Printf("failover %d: %s held the folder and was killed; %s took the lease after %s and served a new snapshot after %s",
			run, names[holder], names[1-holder], r.leaseTaken.Round(time.Millisecond), r.snapshot.Round(time.Millisecond))
		out = append(out, r)
	}
	if n := sendErrs.Load(); n > 0 {
		log.Printf("failover: %d edits or webhooks failed (last: %v)", n, lastErr.Load())
	}
	return out, nil
}

// health is what serve's /health says of the cluster.
type health struct {
	Cluster *struct {
		Instance string `json:"instance"`
		Leases   int    `json:"leases"`
	} `json:"cluster"`
}

// waitHolder returns the index of the one instance whose /health reports
// a lease.
func waitHolder(procs []*serveProc, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	var last []string
	for {
		holder, n := -1, 0
		last = last[:0]
		for i, p := range procs {
			var h health
			err := getJSON(http.DefaultClient, "http://"+p.addr+"/health", "", &h)
			switch {
			case err != nil:
				last = append(last, err.Error())
			case h.Cluster == nil:
				last = append(last, p.addr+": /health has no cluster part")
			default:
				last = append(last, fmt.Sprintf("%s: %d leases", h.Cluster.Instance, h.Cluster.Leases))
				if h.Cluster.Leases > 0 {
					holder, n = i, n+1
				}
			}
		}
		if n == 1 {
			return holder, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no single lease holder after %s: %s", timeout, strings.Join(last, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type apiSnapshot struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
}

func snapshotsAfter(hc *http.Client, p *serveProc, f *relaytest.Folder, token string, after uint64) ([]apiSnapshot, error) {
	var out struct {
		Snapshots []apiSnapshot `json:"snapshots"`
	}
	u := fmt.Sprintf("http://%s/api/v1/folders/%s/%s/snapshots?after=%d", p.addr, f.RelayID(), f.ID(), after)
	err := getJSON(hc, u, token, &out)
	return out.Snapshots, err
}

func latestSeq(hc *http.Client, p *serveProc, f *relaytest.Folder, token string) (uint64, error) {
	snaps, err := snapshotsAfter(hc, p, f, token, 0)
	if err != nil || len(snaps) == 0 {
		return 0, err
	}
	return snaps[len(snaps)-1].Seq, nil
}

// waitNewSnapshot polls p's read API every 10 ms until a snapshot after
// base whose time is not before since appears; it returns the time since
// since. Edits are sent with times truncated to the microsecond, as since
// is compared here.
func waitNewSnapshot(hc *http.Client, p *serveProc, f *relaytest.Folder, token string, base uint64, since time.Time, timeout time.Duration) (time.Duration, error) {
	floor := since.Truncate(time.Microsecond)
	var lastErr error
	for time.Since(since) < timeout {
		snaps, err := snapshotsAfter(hc, p, f, token, base)
		if err != nil {
			lastErr = err
		}
		for _, s := range snaps {
			if !s.Time.Before(floor) {
				return time.Since(since), nil
			}
			base = s.Seq
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("no new snapshot on %s within %s of the kill (last error: %v)", p.addr, timeout, lastErr)
}

func getJSON(hc *http.Client, url, token string, v any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

var logTimeField = regexp.MustCompile(`^time=(\S+)`)

// logTime returns the time of the first line of serve's log at path that
// holds msg and is not before since (serve logs milliseconds).
func logTime(path, msg string, since time.Time) (time.Time, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		m := logTimeField.FindStringSubmatch(line)
		if m == nil || !strings.Contains(line, msg) {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && !t.Before(since.Truncate(time.Millisecond)) {
			return t, true
		}
	}
	return time.Time{}, false
}

// durations formats handover times for the summary.
func durations(rs []failoverResult) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%.2f s (lease taken at %.2f s)", r.snapshot.Seconds(), r.leaseTaken.Seconds()))
	}
	return strings.Join(parts, ", ")
}
