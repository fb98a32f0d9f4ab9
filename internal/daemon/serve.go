package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/sshkey"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/remotehelper"
	"github.com/relay-git-sync/relay-git-sync/server"
	"github.com/relay-git-sync/relay-git-sync/webui"
)

// MinWebhookSecretLen is the length under which a webhook secret (for a
// whsec_ secret, its key part) draws a warning at start: short secrets can
// be guessed.
const MinWebhookSecretLen = 16

// ServeConfig is the long-running service: webhooks in, snapshots, pushes,
// and the read API.
type ServeConfig struct {
	Config
	Host string
	Port int // 0 = any free port (see Ready)
	// CommitInterval is how long a folder must be quiet before its snapshot
	// is cut; MaxDelay bounds the wait under continuous editing.
	CommitInterval, MaxDelay time.Duration
	// ReconcileInterval is the period of full checks of every folder; 0
	// checks only at start.
	ReconcileInterval time.Duration
	// WebhookSecret is a shared secret, or a "whsec_" Standard Webhooks
	// signing secret. Empty is refused unless InsecureNoAuth.
	WebhookSecret  string
	InsecureNoAuth bool
	// APIToken is the read API's bearer token; "" disables the read API.
	APIToken string
	// AllowWrites turns on the routes that write into Relay (restore),
	// which take WriteToken, never the read token.
	AllowWrites bool
	WriteToken  string
	// ShutdownTimeout bounds the wait for in-flight work once ctx ends.
	ShutdownTimeout time.Duration
	// Ready, when set, is called with the listening address once the
	// server accepts connections.
	Ready func(addr string)
}

// check refuses a configuration serve cannot run safely with, before
// anything is opened or created.
func (c *ServeConfig) check() error {
	switch {
	case c.WebhookSecret == "" && !c.InsecureNoAuth:
		return errors.New("no webhook secret configured: set WEBHOOK_SECRET or --webhook-secret-file (see `relay-git-sync webhook keygen`), or pass --insecure-no-webhook-auth")
	case c.WebhookSecret != "" && strings.TrimSpace(c.WebhookSecret) == "":
		// HTTP trims white space around header values: no request could
		// ever carry this secret.
		return errors.New("the webhook secret is only white space, which no webhook can carry: set WEBHOOK_SECRET to a real secret (see `relay-git-sync webhook keygen`)")
	case c.CommitInterval < 0:
		return errors.New("--commit-interval must not be negative")
	case c.AllowWrites && strings.TrimSpace(c.WriteToken) == "":
		return errors.New("--allow-writes needs a write token: set RELAY_GIT_WRITE_TOKEN or --write-token-file (a token of its own, not the read API token)")
	case c.AllowWrites && c.WriteToken == c.APIToken:
		return errors.New("the write token equals the read API token: give writes a token of their own (RELAY_GIT_WRITE_TOKEN)")
	}
	return nil
}

// warnings are the settings serve starts with but an operator should fix.
func (c *ServeConfig) warnings() []string {
	var out []string
	if c.WebhookSecret == "" {
		out = append(out, "webhook authentication is DISABLED (--insecure-no-webhook-auth): anyone who can reach this port can trigger syncs")
	} else if n := len(strings.TrimPrefix(c.WebhookSecret, "whsec_")); n < MinWebhookSecretLen {
		out = append(out, fmt.Sprintf("the webhook secret is only %d characters long, which can be guessed: use at least %d (`relay-git-sync webhook keygen` makes one)", n, MinWebhookSecretLen))
	}
	if c.RelayServerAPIKey == "" {
		out = append(out, "RELAY_SERVER_API_KEY is empty: a Relay Server that requires its server token will refuse every fetch (401)")
	}
	if c.WriteToken != "" && !c.AllowWrites {
		out = append(out, "a write token is set but writes are off: restore requests get 403 until serve runs with --allow-writes")
	}
	return out
}

// Serve runs the service until ctx ends, then stops accepting webhooks,
// lets in-flight requests finish and stops the scheduler and the pushes
// within ShutdownTimeout. Events not yet in a snapshot stay in the queue
// for the next start. It returns nil after such a stop.
func Serve(ctx context.Context, cfg ServeConfig) error {
	if err := cfg.check(); err != nil {
		return err
	}
	cfg.Config = cfg.Config.withDefaults()
	log := cfg.Logger
	p, err := open(cfg.Config, true)
	if err != nil {
		return err
	}
	defer p.close()
	st := p.store
	for _, c := range p.conns {
		if err := st.AddFolder(store.FolderID{Relay: c.RelayID, Folder: c.SharedFolderID}); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		return err
	}
	// On a shared NATS store, folders are synced and pushed by their
	// lease holder, and events come from every instance.
	var cl *cluster
	var (
		owns   func(context.Context, store.FolderID) bool
		rescan time.Duration
	)
	health := func(context.Context) error { _, err := st.Folders(); return err }
	if ns, ok := st.(*natsstore.Store); ok {
		if cl, err = newCluster(ctx, cfg.Config, ns, metrics); err != nil {
			return err
		}
		cl.mirrors = p.mirrors
		p.mirrors.SetOwns(func(f store.FolderID) bool { return cl.owns(context.Background(), f) })
		owns, rescan = cl.owns, cfg.LeaseTTL
		health = ns.Ping
	}
	sched := ingest.NewScheduler(ingest.SchedulerConfig{
		Owns: owns, Rescan: rescan,
		Syncer: p.syncer, Store: st, Queue: st,
		Quiet: cfg.CommitInterval, MaxDelay: cfg.MaxDelay, Reconcile: cfg.ReconcileInterval,
		Logger:  log,
		OnDepth: func(n int) { metrics.QueueDepth.Set(float64(n)) },
		// Pushing runs in the mirrors' own goroutines: Notify never blocks.
		OnSnapshot: func(_ context.Context, snap *store.Snapshot) {
			if logHold(log, st, snap) {
				metrics.SnapshotsHeld.Inc()
			}
			p.mirrors.Notify(snap.Folder)
		},
		OnReconcile: func(err error) {
			result := "ok"
			if err != nil {
				result = "error"
			}
			metrics.Reconciles.WithLabelValues(result).Inc()
		},
		OnSync: func(f store.FolderID, took time.Duration, res *ingest.Result, err error) {
			if err != nil {
				metrics.RelayFetchErrors.Inc()
				return
			}
			metrics.RelayFetchErrors.Add(float64(len(res.Failed)))
			if res.Snapshot != nil {
				metrics.Snapshots.Inc()
				metrics.SnapshotLatency.Observe(took.Seconds())
			}
		},
	})

	ui, err := webui.New(webui.Config{
		Source: source.FromStore(st), APIToken: cfg.APIToken, WriteToken: cfg.writeToken(),
		Restore: cfg.restore(p, st, sched), Done: ctx.Done(), Logger: log,
	})
	if err != nil {
		return err
	}
	// Packs of each folder's history, built once and handed to every clone.
	packs := remotehelper.NewPackCache(filepath.Join(cfg.DataDir, remotehelper.PackDirName), source.FromStore(st), log)
	defer packs.Close()
	handler, err := server.New(server.Config{
		WebhookSecret:  cfg.WebhookSecret,
		InsecureNoAuth: cfg.InsecureNoAuth,
		APIToken:       cfg.APIToken,
		Events:         eventSink{st: st, sched: sched, notify: cl == nil},
		Source:         source.FromStore(st),
		Health:         health,
		Cluster:        clusterStatus(cl),
		DiskSpace:      st.DiskSpace,
		Held:           heldAdmin{st: st, mirrors: p.mirrors},
		Backup:         st.Backup,
		WriteToken:     cfg.writeToken(),
		Restore:        cfg.restore(p, st, sched),
		Changes:        cfg.changes(p, st, sched),
		UI:             ui,
		Packs: func(ctx context.Context, f store.FolderID) (*server.FolderPack, error) {
			seq, commit, pack, idx, err := packs.Open(ctx, f)
			if err != nil || pack == nil {
				return nil, err
			}
			return &server.FolderPack{Seq: seq, Commit: commit, Pack: pack, Index: idx}, nil
		},
		PublicKey: func() (string, error) {
			k, err := sshkey.FromEnv(cfg.Getenv)
			if errors.Is(err, sshkey.ErrNotConfigured) {
				return "", server.ErrNoSSHKey
			}
			if err != nil {
				return "", err
			}
			return k.AuthorizedKey(), nil
		},
		Logger: log, Registry: reg, Metrics: metrics,
	})
	if err != nil {
		return err
	}
	for _, w := range cfg.warnings() {
		log.Warn(w)
	}
	warnHeld(log, st)
	noteOriginalLayout(log, cfg.DataDir)
	if _, err := sshkey.FromEnv(cfg.Getenv); err != nil && needsSSH(p.conns) {
		log.Warn("no usable SSH key; pushes over SSH will fail", "err", err)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listening on port %d: %w", cfg.Port, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	schedDone := make(chan error, 1)
	go func() { schedDone <- sched.Run(schedCtx) }()
	if cl != nil {
		go cl.run(schedCtx)
		if err := cl.st.WatchEvents(schedCtx, sched.Notify); err != nil {
			stopSched()
			return err
		}
	}
	// Pushes start with a catch-up of every connector, then follow snapshots.
	mirrorsDone := make(chan error, 1)
	go func() { mirrorsDone <- p.mirrors.Run(schedCtx) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "folders", len(p.conns), "data_dir", cfg.DataDir)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-schedDone:
		if err == nil {
			err = errors.New("scheduler stopped")
		}
	}
	// Stop accepting, let in-flight requests finish, then stop the
	// scheduler; unprocessed events stay in the queue for the next start.
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil && err == nil {
		err = serr
	}
	stopSched()
	select {
	case <-schedDone:
	case <-shutCtx.Done():
		log.Warn("scheduler did not stop in time")
	}
	select {
	case <-mirrorsDone:
	case <-shutCtx.Done():
		log.Warn("pushes did not stop in time")
	}
	if cl != nil {
		cl.release(shutCtx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// eventSink makes webhook events durable, then hands them to the
// scheduler (on a NATS store, the queue's watch hands every instance's
// events to it instead: notify is false).
type eventSink struct {
	st     store.Backend
	sched  *ingest.Scheduler
	notify bool
}

func (s eventSink) Enqueue(_ context.Context, ev server.Event) (bool, error) {
	q, dup, err := s.st.Enqueue(store.QueuedEvent{ID: ev.ID, Relay: ev.Relay, Doc: ev.Doc, Time: ev.Time, User: ev.User, Received: ev.Received})
	if err != nil || dup || !s.notify {
		return dup, err
	}
	s.sched.Notify(q)
	return false, nil
}

// clusterStatus is /health's cluster part (nil on Badger).
func clusterStatus(cl *cluster) func() server.ClusterStatus {
	if cl == nil {
		return nil
	}
	return cl.status
}
