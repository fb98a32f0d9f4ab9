package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// A single node keeps its stream across a SIGKILL and a restart: the store
// directory and port are the same.
func TestSingleNodeRestartKeepsStore(t *testing.T) {
	c := Start(t)
	if len(c.Nodes) != 1 || c.URL() != c.Nodes[0].URL() {
		t.Fatalf("Start: %d nodes, URL %q", len(c.Nodes), c.URL())
	}
	js := connect(t, c.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	c.Nodes[0].Kill()
	c.Nodes[0].Restart(t)
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "kept" {
		t.Fatalf("after restart: %q, want kept", m.Data)
	}
}

// A 3-node cluster is ready for replicated streams when StartCluster
// returns, and keeps a replicated stream writable with one node killed.
func TestClusterSurvivesOneNodeKilled(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	js := connect(t, c.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster info %+v, want a leader and 2 replicas", info.Cluster)
	}
	var leader *Node
	for _, nd := range c.Nodes {
		if nd.Name == info.Cluster.Leader {
			leader = nd
		}
	}
	if leader == nil {
		t.Fatalf("stream leader %q is none of the nodes", info.Cluster.Leader)
	}
	leader.Kill()
	// Until a new leader is elected, a publish fails or times out; the
	// message id makes retrying safe.
	var ack *jetstream.PubAck
	for ack == nil {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		ack, err = js.Publish(actx, "t", []byte("x"), jetstream.WithMsgID("one"))
		acancel()
		if err != nil && ctx.Err() != nil {
			t.Fatalf("publishing with the stream leader %s killed: %v", leader.Name, err)
		}
	}
	leader.Restart(t)
	if ack.Sequence != 1 {
		t.Fatalf("sequence %d, want 1", ack.Sequence)
	}
}
