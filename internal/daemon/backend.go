package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// ReplicaDirName is the local replica of a NATS store, in the data dir
// (rebuilt from the cluster at each start).
const ReplicaDirName = "nats-replica"

// openBackend opens the store c names: Badger in the data dir, or the NATS
// cluster of c.Store with its replica in the data dir. closeConn (nil for
// Badger) closes the NATS connection once the store is closed.
func openBackend(c Config, durable bool) (st store.Backend, closeConn func(), err error) {
	if c.Store == "" {
		st, err := store.Open(filepath.Join(c.DataDir, source.StoreDirName), store.Options{SyncWrites: durable, Logger: c.Logger, HoldDeletions: c.HoldDeletions})
		return st, nil, err
	}
	nc, err := natsstore.Connect(c.Store, c.Getenv, c.Logger)
	if err != nil {
		return nil, nil, err
	}
	ns, err := natsstore.Open(context.Background(), nc, natsstore.Options{
		Dir: filepath.Join(c.DataDir, ReplicaDirName), HoldDeletions: c.HoldDeletions, Logger: c.Logger,
	})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("opening the NATS store at %s: %w", natsstore.Redact(c.Store), err)
	}
	c.Logger.Info("store", "nats", natsstore.Redact(c.Store), "servers", len(nc.Servers()))
	return ns, func() { drain(nc) }, nil
}

func drain(nc *nats.Conn) {
	if err := nc.Drain(); err != nil {
		nc.Close()
	}
}

// instanceName names this process in leases: the configured name, else
// host:pid.
func (c Config) instanceName() string {
	if c.Instance != "" {
		return c.Instance
	}
	host, err := os.Hostname()
	if err != nil {
		host = "relay-git-sync"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}
