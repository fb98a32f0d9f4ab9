// Package natstest starts real nats-server processes with JetStream for
// tests: one node (Start) or a cluster on loopback (StartCluster). Nodes
// can be killed with SIGKILL and restarted on the same ports and store, to
// test what a client sees when a server dies.
//
// The processes die with the test. Each node's log goes to a file in the
// test's temporary directory and is printed when the test fails.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// readyWait bounds how long a server or cluster may take to come up. It is
// generous because the machine may be busy; it is not what tests measure.
const readyWait = 90 * time.Second

// startAttempts is how often a start is retried when a port picked as free
// was taken by someone else before the server bound it.
const startAttempts = 5

// Cluster is a set of running nats-server nodes.
type Cluster struct {
	Nodes []*Node
}

// Node is one nats-server process.
type Node struct {
	Name        string
	Port        int // client port
	ClusterPort int // 0 for a single node started by Start
	StoreDir    string
	LogFile     string

	bin  string
	args []string
	js   bool // cluster-wide JetStream readiness is checked by the cluster

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start starts one nats-server with JetStream on a free loopback port.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return start(t, 0)
}

// StartCluster starts n clustered nats-server nodes with JetStream on
// loopback and returns once JetStream is usable cluster-wide (a stream
// with n replicas can be created).
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: StartCluster(%d): need at least one node", n)
	}
	return start(t, n)
}

// start starts a single node (clustered == 0) or a cluster of clustered nodes.
func start(t testing.TB, clustered int) *Cluster {
	t.Helper()
	bin := testreq.NATSServer(t)
	// TempDir before Cleanup: the directory is removed after the processes
	// are killed and their logs printed (cleanups run last-in first-out).
	root := t.TempDir()
	c := &Cluster{}
	t.Cleanup(func() { c.stop(t) })
	for attempt := 1; ; attempt++ {
		dir := filepath.Join(root, fmt.Sprintf("attempt%d", attempt))
		err := c.launch(bin, dir, clustered)
		if err == nil {
			break
		}
		c.killAll()
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			t.Fatalf("natstest: %v", err)
		}
	}
	if clustered > 0 {
		if err := c.waitClusterJS(clustered); err != nil {
			t.Fatalf("natstest: %v", err)
		}
	}
	return c
}

var (
	errPortTaken = errors.New("port taken")
	errExited    = errors.New("nats-server exited") // poll gives up at once
)

// launch starts the nodes in dir and waits until each accepts clients.
func (c *Cluster) launch(bin, dir string, clustered int) error {
	n := max(clustered, 1)
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	c.Nodes = nil
	for i := range n {
		nd := &Node{
			Name:     fmt.Sprintf("n%d", i+1),
			Port:     ports[i],
			StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			LogFile:  filepath.Join(dir, fmt.Sprintf("n%d.log", i+1)),
			bin:      bin,
			js:       clustered == 0,
		}
		nd.args = []string{"-js", "-sd", nd.StoreDir, "-a", "127.0.0.1", "-p", strconv.Itoa(nd.Port), "-n", nd.Name}
		if clustered > 0 {
			nd.ClusterPort = ports[n+i]
			var routes []string
			for j := range n {
				if j != i {
					routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(ports[n+j]))
				}
			}
			nd.args = append(nd.args, "--cluster_name", "natstest",
				"--cluster", "nats://127.0.0.1:"+strconv.Itoa(nd.ClusterPort),
				"--routes", strings.Join(routes, ","))
		}
		if err := os.MkdirAll(nd.StoreDir, 0o755); err != nil {
			return err
		}
		c.Nodes = append(c.Nodes, nd)
	}
	for _, nd := range c.Nodes {
		if err := nd.start(); err != nil {
			return err
		}
	}
	for _, nd := range c.Nodes {
		if err := nd.waitUp(); err != nil {
			return err
		}
	}
	return nil
}

// freePorts returns n distinct ports that were free a moment ago; all are
// held open together so that they differ from one another.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// URL returns every node's client URL, comma-separated, as nats.Connect
// accepts them.
func (c *Cluster) URL() string {
	var us []string
	for _, nd := range c.Nodes {
		us = append(us, nd.URL())
	}
	return strings.Join(us, ",")
}

// waitClusterJS waits until a stream replicated on n nodes can be created:
// then the cluster has a JetStream meta leader and every node is a peer.
func (c *Cluster) waitClusterJS(n int) error {
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connecting to the cluster at %s: %w", c.URL(), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cfg := jetstream.StreamConfig{Name: "NATSTEST_READY", Subjects: []string{"natstest.ready"}, Replicas: n, Storage: jetstream.MemoryStorage}
	return poll("JetStream to be ready on the whole cluster", func(ctx context.Context) error {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return err
		}
		return js.DeleteStream(ctx, cfg.Name)
	})
}

// poll calls try until it succeeds or readyWait has passed.
func poll(what string, try func(ctx context.Context) error) error {
	deadline := time.Now().Add(readyWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := try(ctx)
		cancel()
		if err == nil || errors.Is(err, errExited) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up waiting for %s after %v: %w", what, readyWait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// URL is the node's client URL.
func (nd *Node) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(nd.Port) }

func (nd *Node) start() error {
	log, err := os.OpenFile(nd.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "natstest: starting %s %s\n", nd.bin, strings.Join(nd.args, " "))
	cmd := exec.Command(nd.bin, nd.args...)
	cmd.Stdout, cmd.Stderr = log, log
	err = cmd.Start()
	log.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("starting nats-server %s: %w", nd.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	nd.mu.Lock()
	nd.cmd, nd.exited = cmd, exited
	nd.mu.Unlock()
	return nil
}

// waitUp waits until the node accepts client connections (and, for a
// single node, JetStream requests), or reports why it exited.
func (nd *Node) waitUp() error {
	nd.mu.Lock()
	exited := nd.exited
	nd.mu.Unlock()
	return poll("nats-server "+nd.Name+" to accept clients", func(ctx context.Context) error {
		select {
		case <-exited:
			return nd.exitErr()
		default:
		}
		nc, err := nats.Connect(nd.URL(), nats.Timeout(time.Second), nats.NoReconnect())
		if err != nil {
			return err
		}
		defer nc.Close()
		if !nd.js {
			return nil
		}
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		_, err = js.AccountInfo(ctx)
		return err
	})
}

// exitErr describes a server that exited while starting; errPortTaken
// when it could not bind a port, so the caller can retry on others.
func (nd *Node) exitErr() error {
	b, _ := os.ReadFile(nd.LogFile)
	if strings.Contains(string(b), "address already in use") {
		return fmt.Errorf("%w: %s: %w (log %s)", errExited, nd.Name, errPortTaken, nd.LogFile)
	}
	return fmt.Errorf("%w while starting: %s; its log %s:\n%s", errExited, nd.Name, nd.LogFile, b)
}

// Kill kills the node with SIGKILL and waits until it is gone. Killing a
// node that is not running does nothing.
func (nd *Node) Kill() {
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// Restart starts a killed node again on the same ports with the same store
// and waits until it accepts clients. In a cluster, JetStream on the node
// may need a little longer to catch up with its peers.
func (nd *Node) Restart(t testing.TB) {
	t.Helper()
	nd.Kill()
	if err := nd.start(); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	if err := nd.waitUp(); err != nil {
		t.Fatalf("natstest: restarting %s: %v", nd.Name, err)
	}
}

func (c *Cluster) killAll() {
	for _, nd := range c.Nodes {
		nd.Kill()
	}
}

// stop kills every node and, if the test failed, prints their logs.
func (c *Cluster) stop(t testing.TB) {
	c.killAll()
	if !t.Failed() {
		return
	}
	for _, nd := range c.Nodes {
		b, err := os.ReadFile(nd.LogFile)
		if err != nil {
			t.Logf("natstest: reading the log of nats-server %s: %v", nd.Name, err)
			continue
		}
		t.Logf("natstest: log of nats-server %s (%s):\n%s", nd.Name, nd.LogFile, b)
	}
}
