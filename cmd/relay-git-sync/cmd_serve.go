package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/relay-git-sync/relay-git-sync/internal/daemon"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
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
	webhookSecretFile string
	insecureNoAuth    bool
	apiToken          string
	apiTokenFile      string
	allowWrites       bool
	writeToken        string
	writeTokenFile    string
	shutdownTimeout   time.Duration
	instance          string
	leaseTTL          time.Duration
	authorsFile       string
	holdDeletions     store.HoldPolicy
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
RELAY_GIT_API_TOKEN; /ui/ is a history browser for the same token (and the
write token, which may restore); /metrics serves Prometheus metrics, /docs
the API docs.

Writing into Relay ('relay-git-sync restore --server' and
'git push relay::…', through POST /api/v1/folders/R/F/restore and …/changes)
is off unless --allow-writes is given together with a write token of its
own (RELAY_GIT_WRITE_TOKEN or --write-token-file); the read token never
writes.

With --store nats://… (or RELAY_GIT_STORE) several serve instances share one
NATS JetStream cluster behind a load balancer: any of them accepts any
webhook, each folder is synced and pushed by the instance holding its lease,
and the folders of an instance that dies move to another within --lease-ttl.

SIGTERM or SIGINT stops it cleanly (in-flight requests finish, unprocessed
events stay queued for the next start) with exit status 0.

Secrets given as flags (--webhook-secret, --api-token, --write-token,
--relay-server-api-key) can be read by every user of the machine in the
process list: set them in the environment or name files holding them
(--webhook-secret-file, --api-token-file, --write-token-file) instead.`,
		Example: `  export RELAY_SERVER_URL=https://relay.example.com RELAY_SERVER_API_KEY=…
  export WEBHOOK_SECRET="$(relay-git-sync webhook keygen | head -1)"
  relay-git-sync --data-dir /data serve --port 8000`,
		Annotations: stopsOnSignal(),
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if so.webhookSecret, err = secretSetting(cmd.Flags(), "webhook-secret", so.webhookSecretFile, opts.getenv(envWebhookSecret)); err != nil {
				return err
			}
			if so.apiToken, err = secretSetting(cmd.Flags(), "api-token", so.apiTokenFile, opts.getenv(envAPIToken)); err != nil {
				return err
			}
			if so.writeToken, err = secretSetting(cmd.Flags(), "write-token", so.writeTokenFile, opts.getenv(readapi.WriteTokenEnv)); err != nil {
				return err
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
	f.StringVar(&so.webhookSecret, "webhook-secret", "", "webhook secret (env "+envWebhookSecret+"); whsec_… selects Standard Webhooks signatures; "+shownInPS)
	f.StringVar(&so.webhookSecretFile, "webhook-secret-file", "", "read the webhook secret from this file (one trailing newline is ignored)")
	f.BoolVar(&so.insecureNoAuth, "insecure-no-webhook-auth", false, "accept webhooks without authentication (testing only)")
	f.StringVar(&so.apiToken, "api-token", "", "bearer token for the read API (env "+envAPIToken+"); empty disables it; "+shownInPS)
	f.StringVar(&so.apiTokenFile, "api-token-file", "", "read the read API's bearer token from this file (one trailing newline is ignored)")
	f.BoolVar(&so.allowWrites, "allow-writes", false, "let holders of the write token write into Relay (restore, git push); off by default")
	f.StringVar(&so.writeToken, "write-token", "", "bearer token of the write routes (env "+readapi.WriteTokenEnv+"); needs --allow-writes; "+shownInPS)
	f.StringVar(&so.writeTokenFile, "write-token-file", "", "read the write token from this file (one trailing newline is ignored)")
	f.DurationVar(&so.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to wait for in-flight work on SIGTERM")
	f.StringVar(&so.authorsFile, "authors-file", "", authorsFlagHelp)
	f.StringVar(&so.instance, "instance", "", "this instance's name in the folder leases of a --store cluster (env "+envInstance+"; default host:pid)")
	f.DurationVar(&so.leaseTTL, "lease-ttl", 10*time.Second, "with --store: how long the folders of an instance that died wait before another instance takes them")
	addHoldDeletionsFlag(cmd, &so.holdDeletions)
	return cmd
}

// envInstance names a serve instance in the leases of a shared store.
const envInstance = "RELAY_GIT_INSTANCE"

// runServe turns serve's settings into the daemon's config and runs it.
func runServe(ctx context.Context, opts *globalOptions, so *serveOptions) error {
	cfg := daemon.ServeConfig{
		Config:            opts.daemonConfig(so.authorsFile),
		Host:              so.host,
		Port:              so.port,
		CommitInterval:    time.Duration(so.commitInterval * float64(time.Second)),
		MaxDelay:          so.maxDelay,
		ReconcileInterval: so.reconcileInterval,
		WebhookSecret:     so.webhookSecret,
		InsecureNoAuth:    so.insecureNoAuth,
		APIToken:          so.apiToken,
		AllowWrites:       so.allowWrites,
		WriteToken:        so.writeToken,
		ShutdownTimeout:   so.shutdownTimeout,
	}
	cfg.HoldDeletions = so.holdDeletions
	cfg.Instance, cfg.LeaseTTL = so.instance, so.leaseTTL
	if cfg.Instance == "" {
		cfg.Instance = opts.getenv(envInstance)
	}
	if so.ready != nil {
		cfg.Ready = func(addr string) { so.ready <- addr }
	}
	return daemon.Serve(ctx, cfg)
}

// shownInPS ends the help of flags that take a secret.
const shownInPS = "as a flag it shows in the process list"

// secretSetting resolves a secret given by --NAME, --NAME-file or the
// environment (env), in that order. A file's one trailing newline (as
// editors and `echo` write it) is not part of the secret.
func secretSetting(flags *pflag.FlagSet, name, file, env string) (string, error) {
	switch {
	case file != "" && flags.Changed(name):
		return "", fmt.Errorf("--%s and --%s-file both given: use one", name, name)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--%s-file: %w", name, err)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if s == "" {
			return "", fmt.Errorf("--%s-file %s is empty", name, file)
		}
		return s, nil
	case flags.Changed(name):
		return flags.GetString(name)
	}
	return env, nil
}
