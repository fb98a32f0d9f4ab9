package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/sshkey"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
)

const (
	envWebhookSecret = "WEBHOOK_SECRET"
	envAPIToken      = "RELAY_GIT_API_TOKEN"
)

type serveOptions struct {
	host              string
	port              int
	commitInterval    float64
	maxDelay          time.Duration
	reconcileInterval time.Duration
	webhookSecret     string
	insecureNoAuth    bool
	apiToken          string
	shutdownTimeout   time.Duration
	authorsFile       string
	// ready, when set, receives the listening address (tests).
	ready chan<- string
}

func newServeCmd(opts *globalOptions) *cobra.Command {
	so := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Receive Relay webhooks and keep every followed folder's snapshots current",
		Long: `Run the webhook server: receive the Relay Server's "document changed"
webhooks on POST /webhooks, store each accepted event durably, and record a
snapshot of the folder once it has been quiet for --commit-interval seconds
(or after --max-delay under continuous editing). A reconcile sweep at start
and every --reconcile-interval catches webhooks the Relay Server dropped.

Folders to follow come from git_connectors.toml and from folders already in
the data dir (for example added by 'relay-git-sync sync'). Each snapshot is
pushed to its folder's connectors, in the background, with retries (see
'relay-git-sync connectors').

Webhooks must be authenticated: set WEBHOOK_SECRET to a shared secret (sent by
the Relay Server as "Authorization: Bearer <secret>") or to a Standard
Webhooks "whsec_" signing secret. See 'relay-git-sync webhook keygen'.

The read API (/api/v1, used by git-remote-relay and the mount) needs
RELAY_GIT_API_TOKEN; /metrics serves Prometheus metrics, /docs the API docs.`,
		Example: `  export RELAY_SERVER_URL=https://relay.example.com RELAY_SERVER_API_KEY=…
  export WEBHOOK_SECRET="$(relay-git-sync webhook keygen | head -1)"
  relay-git-sync --data-dir /data serve --port 8000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("webhook-secret") {
				so.webhookSecret = opts.getenv(envWebhookSecret)
			}
			if !cmd.Flags().Changed("api-token") {
				so.apiToken = opts.getenv(envAPIToken)
			}
			return runServe(cmd.Context(), opts, so)
		},
	}
	f := cmd.Flags()
	f.StringVar(&so.host, "host", "0.0.0.0", "address to listen on")
	f.IntVar(&so.port, "port", 8000, "port to listen on")
	f.Float64Var(&so.commitInterval, "commit-interval", 10, "seconds a folder must be quiet before its snapshot is cut")
	f.DurationVar(&so.maxDelay, "max-delay", 2*time.Minute, "longest wait for a snapshot under continuous editing")
	f.DurationVar(&so.reconcileInterval, "reconcile-interval", 5*time.Minute, "interval of full checks of every folder (0 = only at start)")
	f.StringVar(&so.webhookSecret, "webhook-secret", "", "webhook secret (env "+envWebhookSecret+"); whsec_… selects Standard Webhooks signatures")
	f.BoolVar(&so.insecureNoAuth, "insecure-no-webhook-auth", false, "accept webhooks without authentication (testing only)")
	f.StringVar(&so.apiToken, "api-token", "", "bearer token for the read API (env "+envAPIToken+"); empty disables it")
	f.DurationVar(&so.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to wait for in-flight work on SIGTERM")
	f.StringVar(&so.authorsFile, "authors-file", "", authorsFlagHelp)
	return cmd
}

func runServe(ctx context.Context, opts *globalOptions, so *serveOptions) error {
	log := opts.Logger
	if so.webhookSecret == "" && !so.insecureNoAuth {
		return errors.New("no webhook secret configured: set " + envWebhookSecret + " (see `relay-git-sync webhook keygen`) or pass --insecure-no-webhook-auth")
	}
	if so.commitInterval < 0 {
		return errors.New("--commit-interval must not be negative")
	}
	client, err := opts.relayClient()
	if err != nil {
		return err
	}
	conns, problems, err := connectors.Load(opts.GitConfigFile)
	if err != nil {
		return err
	}
	for _, p := range problems {
		log.Warn("skipping connector", "problem", p.Error())
	}
	st, err := store.Open(filepath.Join(opts.DataDir, storeDirName), store.Options{SyncWrites: true, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	hcfg, err := opts.historyConfig(so.authorsFile)
	if err != nil {
		return err
	}
	if err := recordHistoryConfig(st, hcfg, log); err != nil {
		return err
	}
	for _, c := range conns {
		if err := st.AddFolder(store.FolderID{Relay: c.RelayID, Folder: c.SharedFolderID}); err != nil {
			return err
		}
	}

	mirrors, err := opts.newMirrors(st, conns, hcfg)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		return err
	}
	syncer := ingest.New(ingest.Config{Store: st, Relay: client, Logger: log})
	quiet := time.Duration(so.commitInterval * float64(time.Second))
	sched := ingest.NewScheduler(ingest.SchedulerConfig{
		Syncer: syncer, Store: st, Queue: st,
		Quiet: quiet, MaxDelay: so.maxDelay, Reconcile: so.reconcileInterval,
		Logger:  log,
		OnDepth: func(n int) { metrics.QueueDepth.Set(float64(n)) },
		// Pushing runs in the mirrors' own goroutines: Notify never blocks.
		OnSnapshot: func(_ context.Context, snap *store.Snapshot) { mirrors.Notify(snap.Folder) },
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

	handler, err := server.New(server.Config{
		WebhookSecret:  so.webhookSecret,
		InsecureNoAuth: so.insecureNoAuth,
		APIToken:       so.apiToken,
		Events:         eventSink{st: st, sched: sched},
		Reader:         storeReader{st},
		Health:         func(context.Context) error { _, err := st.Folders(); return err },
		PublicKey: func() (string, error) {
			k, err := sshkey.FromEnv(opts.getenv)
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
	if so.webhookSecret == "" {
		log.Warn("webhook authentication is DISABLED (--insecure-no-webhook-auth): anyone who can reach this port can trigger syncs")
	}
	if _, err := sshkey.FromEnv(opts.getenv); err != nil {
		log.Warn("no usable SSH key; pushes over SSH will fail", "err", err)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(so.host, strconv.Itoa(so.port)))
	if err != nil {
		return fmt.Errorf("listening on port %d: %w", so.port, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	schedDone := make(chan error, 1)
	go func() { schedDone <- sched.Run(schedCtx) }()
	// Pushes start with a catch-up of every connector, then follow snapshots.
	mirrorsDone := make(chan error, 1)
	go func() { mirrorsDone <- mirrors.Run(schedCtx) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "folders", len(conns), "data_dir", opts.DataDir)
	if so.ready != nil {
		so.ready <- ln.Addr().String()
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
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), so.shutdownTimeout)
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
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// eventSink makes webhook events durable, then hands them to the scheduler.
type eventSink struct {
	st    *store.Store
	sched *ingest.Scheduler
}

func (s eventSink) Enqueue(_ context.Context, ev server.Event) (bool, error) {
	q, dup, err := s.st.Enqueue(store.QueuedEvent{ID: ev.ID, Relay: ev.Relay, Doc: ev.Doc, Time: ev.Time, User: ev.User, Received: ev.Received})
	if err != nil || dup {
		return dup, err
	}
	s.sched.Notify(q)
	return false, nil
}
