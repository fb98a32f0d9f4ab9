package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// holdPolicyFlag is --hold-deletions (serve, sync).
type holdPolicyFlag struct{ p *store.HoldPolicy }

func (f holdPolicyFlag) String() string { return f.p.String() }
func (f holdPolicyFlag) Type() string   { return "share" }
func (f holdPolicyFlag) Set(s string) error {
	p, err := store.ParseHoldPolicy(s)
	if err != nil {
		return err
	}
	*f.p = p
	return nil
}

// addHoldDeletionsFlag defines --hold-deletions on serve and sync.
func addHoldDeletionsFlag(cmd *cobra.Command, dst *store.HoldPolicy) {
	*dst = store.DefaultHoldPolicy
	cmd.Flags().Var(holdPolicyFlag{dst}, "hold-deletions", fmt.Sprintf(
		"hold back from the connectors a snapshot that deletes more than this share of a folder's files (folders of %d files or more), as 50%% or 0.5; 0 turns it off (see 'relay-git-sync held')",
		store.DefaultHoldMinFiles))
}

const heldHelp = `A snapshot that deletes more than --hold-deletions of a folder's files (by
default more than half of a folder of at least 10 files; renames are not
deletions) is recorded like any other — clone, mount and export show it —
but it and every later snapshot of the folder are held: nothing is pushed
to the folder's connectors until an operator decides.

  held list            the held folders
  held release R/F     push the held snapshots, the deletion included
  held drop R/F        never push the held snapshots; the next snapshot is
                       compared with the last one before them (and held
                       again if the folder is still emptied), and once
                       pushed its commit follows the last pushed one

The commands talk to a running ` + "`relay-git-sync serve`" + ` when --server (or
` + envReadURL + `) is given, with the token from ` + envReadToken + ` (the server's
RELAY_GIT_API_TOKEN) or else from git's credential helper; serve then
pushes at once. Otherwise they change the data dir (--data-dir), which works
only while no serve holds it; the next serve or sync pushes.`

func newHeldCmd(opts *globalOptions) *cobra.Command {
	var serverURL string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "held",
		Short: "List, release or drop snapshots held by the mass-deletion guard",
		Long:  heldHelp,
		Example: `  RELAY_GIT_TOKEN=… relay-git-sync held list --server http://127.0.0.1:8000
  relay-git-sync held release 6ba7b810-9dad-11d1-80b4-00c04fd430c8/f47ac10b-58cc-4372-a567-0e02b2c3d479`,
		Args: cobra.NoArgs,
		RunE: requireSubcommand,
	}
	cmd.PersistentFlags().StringVar(&serverURL, "server", "", "act on the relay-git-sync serve at this URL (env "+envReadURL+"; token from env "+envReadToken+" or git's credential helper); default: the data dir")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the folders whose snapshots are held",
		Long: `List the folders whose snapshots are held: the first held snapshot, how
many files it deletes of how many, and when. With --json, one JSON array of
objects with the fields relay, folder, held_from, compared_with, files,
deleted and time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withHeld(cmd, opts, serverURL, func(b heldBackend) error {
				holds, err := b.list()
				if err != nil {
					return err
				}
				if asJSON {
					if holds == nil {
						holds = []readapi.Held{}
					}
					enc := json.NewEncoder(opts.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(holds)
				}
				if len(holds) == 0 {
					fmt.Fprintln(opts.stdout, "No held folders.")
					return nil
				}
				tw := tabwriter.NewWriter(opts.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "FOLDER\tHELD FROM\tDELETED\tTIME")
				for _, h := range holds {
					fmt.Fprintf(tw, "%s/%s\t%d\t%d of %d files (vs snapshot %d)\t%s\n", h.Relay, h.Folder, h.HeldFrom, h.Deleted, h.Files, h.ComparedWith, h.Time.Format(timeFormat))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	release := &cobra.Command{
		Use:   "release RELAY/FOLDER",
		Short: "Push a folder's held snapshots, the deletion included",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return heldAction(cmd, opts, serverURL, args[0], false)
		},
	}
	drop := &cobra.Command{
		Use:   "drop RELAY/FOLDER",
		Short: "Never push a folder's held snapshots",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return heldAction(cmd, opts, serverURL, args[0], true)
		},
	}
	cmd.AddCommand(list, release, drop)
	return cmd
}

// heldBackend is where the held commands act: a running serve's API or the
// data dir's store.
type heldBackend interface {
	list() ([]readapi.Held, error)
	release(f store.FolderID) (*readapi.HeldAction, error)
	drop(f store.FolderID) (*readapi.HeldAction, error)
	// pushes says when the connectors get what was released.
	pushes() string
}

func heldAction(cmd *cobra.Command, opts *globalOptions, serverURL, arg string, drop bool) error {
	f, err := parseFolderArg(arg)
	if err != nil {
		return err
	}
	return withHeld(cmd, opts, serverURL, func(b heldBackend) error {
		act := b.release
		if drop {
			act = b.drop
		}
		a, err := act(f)
		if errors.Is(err, store.ErrNotHeld) {
			return fmt.Errorf("%s has no held snapshots (see `relay-git-sync held list`)", f)
		}
		if err != nil {
			return err
		}
		if drop {
			fmt.Fprintf(opts.stdout, "%s: dropped snapshots %d–%d (%d of %d files deleted): they are never pushed; the next snapshot is compared with snapshot %d and, unless held again, pushed %s\n",
				f, a.HeldFrom, a.DroppedThrough, a.Deleted, a.Files, a.ComparedWith, b.pushes())
		} else {
			fmt.Fprintf(opts.stdout, "%s: released snapshot %d (%d of %d files deleted) and those after it: pushed to the connectors %s\n",
				f, a.HeldFrom, a.Deleted, a.Files, b.pushes())
		}
		return nil
	})
}

// withHeld runs fn on the backend --server or the data dir names.
func withHeld(cmd *cobra.Command, opts *globalOptions, serverURL string, fn func(heldBackend) error) error {
	if serverURL == "" {
		serverURL = opts.getenv(envReadURL)
	}
	if serverURL != "" {
		c, err := readapi.New(serverURL, opts.readToken(cmd, serverURL), readapi.WithUserAgent("relay-git-sync/"+version))
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(serverHeld{c: c, cmd: cmd})
	}
	if err := opts.checkStore(", or pass --server URL to act through a running serve"); err != nil {
		return err
	}
	st, err := opts.openExistingStore(cmd.Root(), true)
	var inUse *storeInUseError
	if errors.As(err, &inUse) {
		inUse.todo = "pass --server URL (or set " + envReadURL + ") to act through it"
	}
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(storeHeld{st})
}

type serverHeld struct {
	c   *readapi.Client
	cmd *cobra.Command
}

func (s serverHeld) list() ([]readapi.Held, error) { return s.c.Holds(s.cmd.Context()) }
func (s serverHeld) release(f store.FolderID) (*readapi.HeldAction, error) {
	return s.c.ReleaseHold(s.cmd.Context(), f)
}
func (s serverHeld) drop(f store.FolderID) (*readapi.HeldAction, error) {
	return s.c.DropHold(s.cmd.Context(), f)
}
func (serverHeld) pushes() string { return "now, by the server" }

type storeHeld struct{ st store.Backend }

func (s storeHeld) list() ([]readapi.Held, error) {
	holds, err := s.st.Holds()
	if err != nil {
		return nil, err
	}
	out := make([]readapi.Held, len(holds))
	for i, h := range holds {
		out[i] = readapi.NewHeld(h)
	}
	return out, nil
}

func (s storeHeld) release(f store.FolderID) (*readapi.HeldAction, error) {
	h, err := s.st.ReleaseHold(f)
	if err != nil {
		return nil, err
	}
	return &readapi.HeldAction{Held: readapi.NewHeld(*h), Action: "released"}, nil
}

func (s storeHeld) drop(f store.FolderID) (*readapi.HeldAction, error) {
	h, r, err := s.st.DropHold(f)
	if err != nil {
		return nil, err
	}
	return &readapi.HeldAction{Held: readapi.NewHeld(*h), Action: "dropped", DroppedThrough: r.Through}, nil
}

func (storeHeld) pushes() string { return "by the next `relay-git-sync serve` or `sync`" }
