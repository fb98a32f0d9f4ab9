// Package daemon builds the pipeline that owns a data dir: the snapshot
// store, the Relay Server client, ingest, the scheduler, the mirrors that
// push to connectors, and the webhook and read API server. `serve` runs all
// of it (Serve), `sync` the one-shot part (Sync); the commands only turn
// their flags into a Config and print what comes back.
package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/mirror"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/sshkey"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Config is what every process that owns a data dir needs.
type Config struct {
	DataDir string
	// ConnectorsFile is git_connectors.toml; a missing file means no
	// connectors.
	ConnectorsFile    string
	RelayServerURL    string
	RelayServerAPIKey string
	// AuthorsFile maps Relay users to git identities; "" reads
	// <DataDir>/authors.toml when it exists.
	AuthorsFile string
	// HoldDeletions is the mass-deletion guard: snapshots that delete
	// more of a folder's files are recorded but not pushed until an
	// operator releases them (store.HoldPolicy; zero: off).
	HoldDeletions store.HoldPolicy
	// Getenv reads SSH_PRIVATE_KEY, git's identity variables and the
	// connectors' HTTPS tokens (injected so tests need not touch the
	// process environment).
	Getenv func(string) string
	Logger *slog.Logger
	// Store is a NATS JetStream cluster ("nats://host:4222,host2:4222")
	// that several serve instances share; "" keeps everything in DataDir
	// (Badger, the default). Credentials come from NATS_CREDS, NATS_NKEY
	// or NATS_TOKEN[_FILE] (natsstore.Connect).
	Store string
	// Instance names this process in the folder leases of a NATS store
	// (default host:pid); LeaseTTL is how long the folders of an instance
	// that died wait before another takes them (default 10 s).
	Instance string
	LeaseTTL time.Duration
}

// withDefaults fills what a caller may leave unset.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	return c
}

// pipeline is what serve and sync share: the open store, with the history
// config recorded, the followed connectors, their mirrors and the syncer
// that records snapshots from the Relay Server.
type pipeline struct {
	store   store.Backend
	nc      func() // closes the NATS connection (nil for Badger)
	conns   []connectors.Connector
	mirrors *mirror.Manager
	syncer  *ingest.Syncer
	relay   *relay.Client
}

// open builds the pipeline from c (withDefaults applied). Everything that can be checked without
// touching the data dir is checked first, so a mistake creates nothing.
// durable makes every store write fsync before it returns (serve, which
// acknowledges webhooks only once they are on disk).
func open(c Config, durable bool) (*pipeline, error) {
	log := c.Logger
	if c.RelayServerURL == "" {
		return nil, errors.New("no Relay Server: set --relay-server-url or RELAY_SERVER_URL")
	}
	client, err := relay.NewClient(relay.ClientOptions{BaseURL: c.RelayServerURL, APIKey: c.RelayServerAPIKey, Logger: log, FileToken: relay.FileTokensFromEnv(c.Getenv)})
	if err != nil {
		return nil, err
	}
	conns, problems, err := connectors.Load(c.ConnectorsFile)
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		log.Warn("skipping connector", "problem", p.Error())
	}
	hcfg, err := HistoryConfig(c.Getenv, c.DataDir, c.AuthorsFile)
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	st, closeConn, err := openBackend(c, durable)
	if err != nil {
		return nil, err
	}
	p := &pipeline{store: st, nc: closeConn, conns: conns, relay: client, syncer: ingest.New(ingest.Config{Store: st, Relay: client, Logger: log})}
	if err := RecordHistoryConfig(st, hcfg, log); err != nil {
		p.close()
		return nil, err
	}
	if p.mirrors, err = newMirrors(c, st, conns, hcfg); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// close releases the mirror repositories and closes the store.
func (p *pipeline) close() error {
	if p.mirrors != nil {
		p.mirrors.Close()
	}
	err := p.store.Close()
	if p.nc != nil {
		p.nc()
	}
	return err
}

// newMirrors builds the push machinery: every connector, the SSH key from
// SSH_PRIVATE_KEY (kept in memory), HTTPS tokens from the environment, and
// the history config that the data dir records (so that pushed commits
// carry the ids relay:: clones see).
func newMirrors(c Config, st store.Backend, conns []connectors.Connector, hcfg history.Config) (*mirror.Manager, error) {
	key, keyErr := sshkey.FromEnv(c.Getenv)
	if keyErr != nil && !errors.Is(keyErr, sshkey.ErrNotConfigured) {
		c.Logger.Warn("SSH_PRIVATE_KEY is not usable; SSH connectors will fail", "err", keyErr)
	}
	return mirror.New(mirror.Config{
		Store: st, DataDir: c.DataDir, Connectors: conns, History: hcfg,
		SSHKey: key, SSHKeyErr: keyErr, Getenv: c.Getenv, Logger: c.Logger,
	})
}
