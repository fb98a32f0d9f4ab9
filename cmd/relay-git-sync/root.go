package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/relay-git-sync/relay-git-sync/internal/daemon"
	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
)

// Environment variables read by the global flags; names match the original
// Python relay-git-sync so existing deployments keep working.
const (
	envDataDir           = "RELAY_GIT_DATA_DIR"
	envRelayServerURL    = "RELAY_SERVER_URL"
	envRelayServerAPIKey = "RELAY_SERVER_API_KEY"
	envStore             = "RELAY_GIT_STORE"

	defaultConnectorsFile = "git_connectors.toml"
)

// globalOptions holds the global flags, resolved against the environment, and
// is passed to every command constructor. Fields are valid once the root's
// PersistentPreRunE has run, i.e. inside any command's RunE.
type globalOptions struct {
	DataDir           string
	GitConfigFile     string
	RelayServerURL    string
	RelayServerAPIKey string
	// Store is a NATS cluster URL shared by several serve instances; ""
	// is the Badger store in DataDir.
	Store   string
	Verbose bool

	// Logger writes to stderr (stdout may be a protocol or data channel), at
	// debug level with --verbose.
	Logger *slog.Logger

	getenv func(string) string // injected so tests need not touch the process env
	stdout io.Writer
	stderr io.Writer
}

func newGlobalOptions(getenv func(string) string, stdout, stderr io.Writer) *globalOptions {
	return &globalOptions{getenv: getenv, stdout: stdout, stderr: stderr}
}

func newRootCmd(opts *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "relay-git-sync",
		Short: "Give Relay shared folders a real git history",
		Long: `relay-git-sync records every change to Relay (Obsidian) shared folders as
timestamped snapshots and turns them into git commits pushed to your remotes.`,
		// Runtime errors are reported once, as one line, by main; usage is only
		// worth printing for mistakes on the command line (see SetFlagErrorFunc).
		SilenceUsage:      true,
		SilenceErrors:     true,
		RunE:              requireSubcommand,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return opts.resolve(cmd.Flags()) },
	}
	root.SetOut(opts.stdout)
	root.SetErr(opts.stderr)
	// --version prints what the version command prints.
	root.Version = version
	root.SetVersionTemplate(versionString())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if hint := serveFlagHint(cmd, err); hint != "" {
			return fmt.Errorf("%w; %s", err, hint)
		}
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})

	// Defaults that depend on the environment are applied in resolve rather
	// than as flag defaults: --help must not print the API key from the env.
	pf := root.PersistentFlags()
	pf.StringVar(&opts.DataDir, "data-dir", ".", "data directory (env "+envDataDir+")")
	pf.StringVar(&opts.Store, "store", "", "keep snapshots in this NATS JetStream cluster, shared by several serve instances: nats://host:4222[,host2:4222…] (env "+envStore+"; credentials from NATS_CREDS, NATS_NKEY or NATS_TOKEN[_FILE]); default: Badger in the data dir")
	pf.BoolVarP(&opts.Verbose, "verbose", "v", false, "debug logging on stderr")
	pf.StringVar(&opts.GitConfigFile, "git-config-file", "", "git connectors file (default <data-dir>/"+defaultConnectorsFile+")")
	pf.StringVar(&opts.RelayServerURL, "relay-server-url", "", "Relay Server base URL (env "+envRelayServerURL+")")
	pf.StringVar(&opts.RelayServerAPIKey, "relay-server-api-key", "", "Relay Server API key (env "+envRelayServerAPIKey+"); "+shownInPS)

	root.AddCommand(
		newVersionCmd(),
		newInspectCmd(opts),
		newServeCmd(opts),
		newSyncCmd(opts),
		newSnapshotsCmd(opts),
		newHeldCmd(opts),
		newExportCmd(opts),
		newRestoreCmd(opts),
		newBackupCmd(opts),
		newRestoreBackupCmd(opts),
		newMountCmd(opts),
		newSSHCmd(opts),
		newShowPubkeyCmd(opts, "show-pubkey"),
		newWebhookCmd(opts),
		newConnectorsCmd(opts),
		newGenerateCmd(opts),
		newDemoCmd(opts),
		newCheckCmd(opts),
		newStoreCmd(opts),
	)
	return root
}

// serveFlagHint points to serve when err is an unknown flag that serve
// has: the original ran the server as `app.py --port 8000`, so
// `relay-git-sync --port 8000` is a likely first try.
func serveFlagHint(cmd *cobra.Command, err error) string {
	var notExist *pflag.NotExistError
	if !errors.As(err, &notExist) {
		return ""
	}
	var serve *cobra.Command
	for _, c := range cmd.Root().Commands() {
		if c.Name() == "serve" {
			serve = c
		}
	}
	if serve == nil || cmd == serve {
		return ""
	}
	var flag *pflag.Flag
	if notExist.GetSpecifiedShortnames() != "" {
		flag = serve.Flags().ShorthandLookup(notExist.GetSpecifiedName())
	} else {
		flag = serve.Flags().Lookup(notExist.GetSpecifiedName())
	}
	if flag == nil {
		return ""
	}
	value := " …"
	if flag.Value.Type() == "bool" {
		value = ""
	}
	return fmt.Sprintf("it is a flag of serve: did you mean `%s serve --%s%s`?", cmd.Root().Name(), flag.Name, value)
}

// resolve fills what the command line left unset from the environment and
// derived defaults, then builds the logger. Subcommands must not define their
// own PersistentPreRun(E): cobra would then skip this one.
func (o *globalOptions) resolve(flags *pflag.FlagSet) error {
	fromEnv := func(flag, env string, dst *string) {
		if !flags.Changed(flag) {
			if v := o.getenv(env); v != "" {
				*dst = v
			}
		}
	}
	fromEnv("data-dir", envDataDir, &o.DataDir)
	fromEnv("relay-server-url", envRelayServerURL, &o.RelayServerURL)
	fromEnv("relay-server-api-key", envRelayServerAPIKey, &o.RelayServerAPIKey)
	fromEnv("store", envStore, &o.Store)
	if o.Store != "" && !natsstore.IsURL(o.Store) {
		return fmt.Errorf("--store %q is not a NATS URL: give nats://host:4222[,host2:4222…], or leave it out for the data dir", natsstore.Redact(o.Store))
	}

	// An explicit empty value is most likely an unset shell variable
	// (--data-dir "$DIR"); writing into the working directory instead would
	// be a surprise.
	if o.DataDir == "" {
		return errors.New("--data-dir must not be empty")
	}
	if o.GitConfigFile == "" {
		if flags.Changed("git-config-file") {
			return errors.New("--git-config-file must not be empty")
		}
		o.GitConfigFile = filepath.Join(o.DataDir, defaultConnectorsFile)
	}

	level := slog.LevelInfo
	if o.Verbose {
		level = slog.LevelDebug
	}
	o.Logger = slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

// daemonConfig is what serve and sync hand to the daemon: the global
// settings and the --authors-file.
func (o *globalOptions) daemonConfig(authorsFile string) daemon.Config {
	return daemon.Config{
		DataDir:           o.DataDir,
		ConnectorsFile:    o.GitConfigFile,
		RelayServerURL:    o.RelayServerURL,
		RelayServerAPIKey: o.RelayServerAPIKey,
		AuthorsFile:       authorsFile,
		Getenv:            o.getenv,
		Logger:            o.Logger,
		Store:             o.Store,
	}
}

const authorsFlagHelp = `TOML file mapping Relay user ids to git identities for Co-authored-by trailers:
a table per user id with name and email (default <data-dir>/` + daemon.DefaultAuthorsFile + ` when present)`

// requireSubcommand is the RunE of group commands (root, inspect): called
// without a subcommand they print usage and fail, as the original CLI did.
func requireSubcommand(cmd *cobra.Command, _ []string) error {
	fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
	if !cmd.HasParent() {
		return errors.New("missing command")
	}
	return fmt.Errorf("%s: missing subcommand", strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "))
}
