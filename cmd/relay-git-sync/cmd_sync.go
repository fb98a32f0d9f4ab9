package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/daemon"
	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

func newSyncCmd(opts *globalOptions) *cobra.Command {
	var relayID, folderID, authorsFile string
	var holdDeletions store.HoldPolicy
	cmd := &cobra.Command{
		Use:   "sync --relay-id RELAY [--folder-id FOLDER]",
		Short: "Sync a shared folder (or every known folder of a relay) once",
		Long: `Fetch the current state of a shared folder from the Relay Server and record
a snapshot if anything changed since the last one. Without --folder-id, every
folder of the relay already in the data dir is synced. Each synced folder is
then pushed to its connectors in git_connectors.toml (--git-config-file).

Exits with status 1 if a folder or any of its documents could not be synced
(documents that failed keep their previous content in the snapshot), or if a
push failed.`,
		Example: `  relay-git-sync sync --relay-server-url https://relay.example.com \
    --relay-id 6ba7b810-9dad-11d1-80b4-00c04fd430c8 \
    --folder-id f47ac10b-58cc-4372-a567-0e02b2c3d479`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			relayID, folderID = strings.ToLower(relayID), strings.ToLower(folderID)
			if !relay.IsUUID(relayID) {
				return fmt.Errorf("--relay-id %q is not a UUID", relayID)
			}
			if folderID != "" && !relay.IsUUID(folderID) {
				return fmt.Errorf("--folder-id %q is not a UUID", folderID)
			}
			cfg := opts.daemonConfig(authorsFile)
			cfg.HoldDeletions = holdDeletions
			return daemon.Sync(cmd.Context(), daemon.SyncConfig{
				Config: cfg,
				Relay:  relayID, Folder: folderID,
				Report: func(r daemon.FolderReport) {
					if r.Err != nil {
						fmt.Fprintf(opts.stdout, "%s: failed: %v\n", r.Folder, r.Err)
						return
					}
					printResult(opts.stdout, r.Folder, r.Result)
					for _, p := range r.Pushes {
						printPush(opts.stdout, p)
					}
				},
			})
		},
	}
	cmd.Flags().StringVar(&relayID, "relay-id", "", "relay UUID (required)")
	cmd.Flags().StringVar(&folderID, "folder-id", "", "shared folder UUID (default: every known folder of the relay)")
	cmd.Flags().StringVar(&authorsFile, "authors-file", "", authorsFlagHelp)
	addHoldDeletionsFlag(cmd, &holdDeletions)
	cmd.MarkFlagRequired("relay-id")
	return cmd
}

// printResult prints what a sync did, one line per change or problem.
func printResult(w io.Writer, f store.FolderID, res *ingest.Result) {
	if res.Snapshot == nil {
		fmt.Fprintf(w, "%s: no changes (%d documents checked)\n", f, res.Fetched)
	} else {
		s := res.Snapshot
		fmt.Fprintf(w, "%s: snapshot %d at %s, %d files, %s\n", f, s.Seq, s.Time.Format(timeFormat), len(s.Files), changeSummary(s.Changes))
		for _, c := range s.Changes {
			fmt.Fprintf(w, "  %s\n", describeChange(c))
		}
	}
	for _, p := range res.Skipped {
		fmt.Fprintf(w, "  skipped  %s\n", p.Error())
	}
	for _, p := range res.Failed {
		fmt.Fprintf(w, "  failed   %s\n", p.Error())
	}
}

const timeFormat = "2006-01-02T15:04:05Z07:00"

func describeChange(c store.Change) string {
	if c.Kind == store.ChangeRenamed {
		return fmt.Sprintf("%-8s %s -> %s", c.Kind, c.OldPath, c.Path)
	}
	return fmt.Sprintf("%-8s %s", c.Kind, c.Path)
}

// changeSummary says what changed in a few words: the change itself when
// there is one, else counts by kind.
func changeSummary(cs []store.Change) string {
	switch len(cs) {
	case 0:
		return "no changes"
	case 1:
		return describeChangeShort(cs[0])
	}
	counts := map[store.ChangeKind]int{}
	for _, c := range cs {
		counts[c.Kind]++
	}
	var parts []string
	for _, k := range []store.ChangeKind{store.ChangeAdded, store.ChangeModified, store.ChangeRenamed, store.ChangeDeleted} {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	return strings.Join(parts, ", ")
}

func describeChangeShort(c store.Change) string {
	if c.Kind == store.ChangeRenamed {
		return fmt.Sprintf("renamed %s -> %s", c.OldPath, c.Path)
	}
	return fmt.Sprintf("%s %s", c.Kind, c.Path)
}

var errNoSnapshots = source.ErrNoSnapshots
