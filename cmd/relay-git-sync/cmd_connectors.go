package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
	"github.com/relay-git-sync/relay-git-sync/internal/mirror"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// newConnectorsCmd is `connectors` (the original's `git` group):
// list, validate, init and status of git_connectors.toml.
func newConnectorsCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "connectors",
		Aliases: []string{"git"},
		Short:   "Inspect git_connectors.toml and how pushing goes",
		Long: `A connector sends a Relay shared folder to a git branch: git_connectors.toml
(--git-config-file, default <data-dir>/git_connectors.toml) lists them, with
the original relay-git-sync's schema. "serve" and "sync" push each folder's
snapshots to its connectors, never forcing: when a branch has commits of its
own, they are merged, and files the folder never had are kept.

Credentials come from the environment and stay in memory:
  SSH_PRIVATE_KEY           key for ssh:// and git@host:path urls (see
                            'relay-git-sync ssh show-pubkey'); host keys are
                            checked against <data-dir>/known_hosts (created
                            with github.com, gitlab.com and bitbucket.org) and
                            the connector's known_hosts file
  RELAY_GIT_HTTPS_TOKEN     token sent as the password to https:// urls
  RELAY_GIT_HTTPS_USERNAME  user name sent with it (default x-access-token)
A local path or file:// url pushes to a bare repository on this machine.`,
		Args: cobra.NoArgs,
		RunE: requireSubcommand,
	}
	cmd.AddCommand(newConnectorsListCmd(opts), newConnectorsValidateCmd(opts), newConnectorsInitCmd(opts), newConnectorsStatusCmd(opts))
	return cmd
}

func newConnectorsListCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the connectors",
		Long: `List the connectors of git_connectors.toml, one per line (credentials in
URLs are hidden). Entries that cannot be used are reported on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conns, problems, err := connectors.Load(opts.GitConfigFile)
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintf(opts.stderr, "skipped: %s\n", p.Error())
			}
			if len(conns) == 0 {
				if _, err := os.Stat(opts.GitConfigFile); errors.Is(err, os.ErrNotExist) {
					fmt.Fprintf(opts.stdout, "No connectors: %s does not exist (create one with `relay-git-sync connectors init`).\n", opts.GitConfigFile)
				} else {
					fmt.Fprintf(opts.stdout, "No connectors in %s.\n", opts.GitConfigFile)
				}
				return nil
			}
			tw := tabwriter.NewWriter(opts.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LINE\tFOLDER\tURL\tBRANCH\tPREFIX\tREMOTE\tKNOWN_HOSTS")
			for _, c := range conns {
				prefix := c.Prefix
				if prefix == "" {
					prefix = "(root)"
				}
				kh := c.KnownHosts
				if kh == "" {
					kh = "-"
				}
				fmt.Fprintf(tw, "%d\t%s/%s\t%s\t%s\t%s\t%s\t%s\n", c.Line, c.RelayID, c.SharedFolderID, connectors.Redact(c.URL), c.Branch, prefix, c.RemoteName, kh)
			}
			return tw.Flush()
		},
	}
}

func newConnectorsValidateCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check git_connectors.toml; exit 1 on problems",
		Long: `Check every entry of git_connectors.toml and print each problem with its
line: missing or empty keys, ids that are not UUIDs, unsafe prefixes, urls
that cannot be pushed to (ssh, https, http, file:// or an absolute path are
accepted), invalid branch names, unreadable known_hosts files, unknown keys,
duplicates, and connectors that would write the same paths of one branch.
Warnings point out what is valid but most likely a mistake: the example ids
and urls that "connectors init" writes, and urls on example domains.
Everything is printed in line order. Exits with status 1 when there is any
problem (warnings alone do not fail).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name := opts.GitConfigFile
			data, err := os.ReadFile(name)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s does not exist (create one with `relay-git-sync connectors init`)", name)
			}
			if err != nil {
				return err
			}
			conns, problems, err := connectors.ParseAll(name, data)
			if err != nil {
				fmt.Fprintln(opts.stdout, err)
				return errors.New("the connectors file is not valid TOML")
			}
			problems = append(problems, connectors.Validate(name, conns)...)
			errs := len(problems)
			problems = append(problems, connectors.Warnings(name, conns)...)
			connectors.SortByLine(problems)
			for _, p := range problems {
				fmt.Fprintln(opts.stdout, p.Error())
			}
			warnings := ""
			if n := len(problems) - errs; n > 0 {
				warnings = fmt.Sprintf(", %d warning(s)", n)
			}
			if errs > 0 {
				return fmt.Errorf("%d problem(s)%s in %s", errs, warnings, name)
			}
			fmt.Fprintf(opts.stdout, "%s: %d connector(s), no problems%s\n", name, len(conns), warnings)
			return nil
		},
	}
}

func newConnectorsInitCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Write an example git_connectors.toml",
		Long: `Write a commented example git_connectors.toml at --git-config-file (default
<data-dir>/git_connectors.toml). An existing file is never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := opts.GitConfigFile
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s already exists; not overwriting it", path)
			}
			if err != nil {
				return err
			}
			if _, err := f.WriteString(connectors.Example); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(opts.stdout, "Wrote %s: replace its example ids and url with yours, then run `relay-git-sync connectors validate`.\n", path)
			return nil
		},
	}
}

func newConnectorsStatusCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show how pushing to each connector goes",
		Long: `Show, for each connector, the last commit pushed (and the snapshot it holds),
how far behind the folder's latest snapshot it is, and the last error with the
number of failed attempts in a row and the next retry.

While "serve" runs it holds the store; the status then comes from the file it
keeps up to date (<data-dir>/mirrors/status.json).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conns, problems, err := connectors.Load(opts.GitConfigFile)
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintf(opts.stderr, "skipped: %s\n", p.Error())
			}
			rows, note, err := connectorStatuses(opts, cmd.Root(), conns)
			if err != nil {
				return err
			}
			if note != "" {
				fmt.Fprintln(opts.stdout, note)
			}
			if len(rows) == 0 {
				fmt.Fprintln(opts.stdout, "No connectors.")
				return nil
			}
			now := time.Now()
			for _, r := range rows {
				printStatus(opts, r, now)
			}
			return nil
		},
	}
}

// statusRow is one connector's status with the folder's latest snapshot
// (0 when unknown) and whether the connector is still configured.
type statusRow struct {
	mirror.Status
	latest     uint64
	configured bool
}

// connectorStatuses reads the push states from the store, or from serve's
// status file when serve holds the store. A data dir without a store is an
// error (and none is created).
func connectorStatuses(opts *globalOptions, root *cobra.Command, conns []connectors.Connector) ([]statusRow, string, error) {
	byKey := map[string]*statusRow{}
	var order []string
	for _, c := range conns {
		f := store.FolderID{Relay: c.RelayID, Folder: c.SharedFolderID}
		key := f.String() + "/" + mirror.ConnectorID(c)
		if _, dup := byKey[key]; dup {
			continue
		}
		byKey[key] = &statusRow{Status: mirror.Status{Folder: f, Connector: mirror.ConnectorID(c), URL: connectors.Redact(c.URL), Branch: c.Branch, Prefix: c.Prefix}, configured: true}
		order = append(order, key)
	}
	add := func(s mirror.Status) {
		key := s.Folder.String() + "/" + s.Connector
		r, ok := byKey[key]
		if !ok {
			r = &statusRow{}
			byKey[key] = r
			order = append(order, key)
		}
		configured := r.configured
		r.Status, r.configured = s, configured
	}
	note := ""
	st, err := opts.openExistingStore(root, false)
	var inUse *storeInUseError
	switch {
	case err == nil:
		defer st.Close()
		states, err := st.PushStates()
		if err != nil {
			return nil, "", err
		}
		for _, s := range states {
			add(mirror.StatusOf(s.Folder, s.Conn, &s.State))
		}
		for _, r := range byKey {
			if latest, err := st.Latest(r.Folder); err == nil {
				r.latest = latest.Seq
			}
			if h, err := st.Held(r.Folder); err == nil && h != nil {
				r.Held = h.From
			}
		}
	case errors.As(err, &inUse):
		snap, ferr := mirror.ReadStatusFile(opts.DataDir)
		if ferr != nil {
			return nil, "", fmt.Errorf("%w (and no status file from a running serve: %v)", err, ferr)
		}
		note = fmt.Sprintf("(the store is in use by %s; status as serve wrote it at %s)", inUse.holder, snap.Updated.Local().Format(time.DateTime))
		for _, s := range snap.Connectors {
			add(s)
		}
	default:
		return nil, "", err
	}
	rows := make([]statusRow, 0, len(order))
	for _, k := range order {
		rows = append(rows, *byKey[k])
	}
	return rows, note, nil
}

func printStatus(opts *globalOptions, r statusRow, now time.Time) {
	w := opts.stdout
	prefix := r.Prefix
	if prefix == "" {
		prefix = "(root)"
	}
	fmt.Fprintf(w, "%s  %s %s  prefix %s\n", r.Folder, r.URL, r.Branch, prefix)
	if !r.configured {
		fmt.Fprintln(w, "  (no longer in the connectors file)")
	}
	switch {
	case r.Commit == "":
		fmt.Fprintln(w, "  pushed:   nothing yet")
	default:
		fmt.Fprintf(w, "  pushed:   snapshot %d as %s, %s\n", r.Seq, short(r.Commit), ago(now, r.PushedAt))
	}
	if r.latest > 0 {
		if r.latest > r.Seq {
			fmt.Fprintf(w, "  pending:  %d snapshot(s), up to %d\n", r.latest-r.Seq, r.latest)
		} else {
			fmt.Fprintln(w, "  pending:  none (up to date)")
		}
	}
	if r.Held != 0 {
		fmt.Fprintf(w, "  held:     snapshot %d and later (a mass deletion): see `relay-git-sync held list`\n", r.Held)
	}
	if r.LastError != "" {
		state := "last error"
		if r.Attempts > 0 {
			state = fmt.Sprintf("failing (%d attempt(s) in a row)", r.Attempts)
		}
		fmt.Fprintf(w, "  %s, %s: %s\n", state, ago(now, r.ErrorAt), strings.TrimSpace(r.LastError))
		if r.Attempts > 0 && !r.NextAttempt.IsZero() {
			fmt.Fprintf(w, "  next try: %s\n", r.NextAttempt.Local().Format(time.DateTime))
		}
	}
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.DateTime), d)
}
