package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/daemon"
	"github.com/relay-git-sync/relay-git-sync/internal/gitcred"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/writeguard"
)

func newRestoreCmd(opts *globalOptions) *cobra.Command {
	var at, serverURL string
	var seq uint64
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "restore RELAY/FOLDER [PATH...] [--snapshot SEQ | --at TIME] [--dry-run]",
		Short: "Put notes, canvases, attachments or a whole folder back into Relay as they were",
		Long: `Write files of a snapshot back into the live Relay shared folder, as the
Relay plugin would write them, so every Obsidian client sees them come back:

  - a note that still exists gets the difference between its current text and
    the old one, as a few insertions and deletions: whatever someone types in
    it meanwhile is kept, as Relay merges any two edits;
  - a note that was deleted comes back as its old document when the Relay
    Server still has it (else as a new one), with its entry in the folder;
  - a renamed or moved file moves back (its document stays the same);
  - canvases come back node by node and edge by edge; attachments get their
    old content, uploaded when the server no longer has it.

PATH is a path as in git (notes/plan.md); a directory restores everything
under it; no PATH restores the whole folder. Files that exist now but not in
the snapshot are left alone. The latest snapshot is used unless --snapshot or
--at names another. --dry-run prints what would be written and writes nothing.

What was written is recorded at once as the folder's next snapshot, whose
commit says "Restore … from snapshot #N"; the webhooks the writes cause find
nothing more to record.

With --server (or ` + envReadURL + `) the running serve does the writing: it must run
with --allow-writes, and the write token comes from ` + readapi.WriteTokenEnv + ` or
git's credential helper (user name ` + gitcred.WriteUser + `). Without --server the
snapshot is read from the data dir (which no serve may hold) and written with
RELAY_SERVER_URL and RELAY_SERVER_API_KEY.

Attachments the Relay Server no longer holds are uploaded, which relay-server
allows only with a file token signed with its key: set ` + relay.EnvFileTokenCommand + `
(for serve, or for this command without --server) to a command that signs
one as relay-server's own "relay sign --auth <private key>" does.`,
		Example: `  relay-git-sync restore $RELAY/$FOLDER notes/plan.md --dry-run
  relay-git-sync restore $RELAY/$FOLDER notes/plan.md --at 2026-01-31T18:00:00Z
  RELAY_GIT_WRITE_TOKEN=… relay-git-sync restore --server http://127.0.0.1:8000 $RELAY/$FOLDER projects`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFolderArg(args[0])
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("snapshot") && seq == 0 {
				return errors.New("--snapshot 0: snapshots are numbered from 1 (leave --snapshot out for the latest)")
			}
			if seq != 0 && at != "" {
				return errors.New("--snapshot and --at cannot be used together")
			}
			req := readapi.RestoreRequest{Seq: seq, Paths: args[1:], DryRun: dryRun}
			if at != "" {
				when, err := time.Parse(time.RFC3339Nano, at)
				if err != nil {
					return fmt.Errorf("--at %q: want RFC 3339, e.g. 2026-01-31T18:00:00Z", at)
				}
				req.At = &when
			}
			ctx := cmd.Context()
			if serverURL == "" {
				serverURL = opts.getenv(envReadURL)
			}
			var res *readapi.RestoreResult
			if serverURL != "" {
				token := opts.getenv(readapi.WriteTokenEnv)
				if token == "" {
					if c, found, err := gitcred.FillAs(ctx, gitcred.Git{}, serverURL, gitcred.WriteUser, false); err == nil && found {
						token = c.Password
					}
				}
				c, err := readapi.New(serverURL, token, readapi.WithUserAgent("relay-git-sync/"+version))
				if err != nil {
					return err
				}
				defer c.Close()
				res, err = c.Restore(ctx, f, req)
				if err != nil {
					return err
				}
			} else {
				if opts.RelayServerURL == "" {
					return errors.New("no Relay Server to write to: set RELAY_SERVER_URL (and RELAY_SERVER_API_KEY), or pass --server URL to restore through a running serve")
				}
				src, _, err := opts.openSourceFor(cmd, "", true)
				if err != nil {
					return err
				}
				defer src.Close()
				rc, err := relay.NewClient(relay.ClientOptions{BaseURL: opts.RelayServerURL, APIKey: opts.RelayServerAPIKey, Logger: opts.Logger, FileToken: relay.FileTokensFromEnv(opts.getenv)})
				if err != nil {
					return err
				}
				res, err = daemon.Restore(ctx, src, rc, writeguard.RecordInto(src, rc, opts.Logger), f, req)
				if res != nil {
					printRestore(opts.stdout, f.String(), res)
				}
				return err
			}
			printRestore(opts.stdout, f.String(), res)
			return nil
		},
	}
	addServerFlag(cmd, &serverURL)
	cmd.Flags().Uint64Var(&seq, "snapshot", 0, "restore from this snapshot (sequence number; default the latest)")
	cmd.Flags().StringVar(&at, "at", "", "restore from the last snapshot at or before this time (RFC 3339)")
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "print what would be written, write nothing")
	return cmd
}

// printRestore prints a restore's actions and what happened.
func printRestore(w io.Writer, folder string, res *readapi.RestoreResult) {
	for _, a := range res.Actions {
		fmt.Fprintln(w, a)
	}
	switch {
	case len(res.Actions) == 0:
		fmt.Fprintf(w, "%s already matches snapshot %d: nothing to write\n", folder, res.Seq)
	case res.DryRun:
		fmt.Fprintf(w, "dry run: %d changes from snapshot %d would be written to %s\n", len(res.Actions), res.Seq, folder)
	default:
		fmt.Fprintf(w, "restored %d paths of %s from snapshot %d\n", len(res.Written), folder, res.Seq)
	}
}
