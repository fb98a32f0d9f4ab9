package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

func newSyncCmd(opts *globalOptions) *cobra.Command {
	var relayID, folderID, authorsFile string
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
			client, err := opts.relayClient()
			if err != nil {
				return err
			}
			st, err := opts.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			hcfg, err := opts.historyConfig(authorsFile)
			if err != nil {
				return err
			}
			if err := recordHistoryConfig(st, hcfg, opts.Logger); err != nil {
				return err
			}

			var folders []store.FolderID
			if folderID != "" {
				folders = []store.FolderID{{Relay: relayID, Folder: folderID}}
			} else {
				all, err := st.Folders()
				if err != nil {
					return err
				}
				for _, f := range all {
					if f.Relay == relayID {
						folders = append(folders, f)
					}
				}
				if len(folders) == 0 {
					return fmt.Errorf("no known folders of relay %s in %s; name one with --folder-id", relayID, opts.DataDir)
				}
			}
			conns, problems, err := connectors.Load(opts.GitConfigFile)
			if err != nil {
				return err
			}
			for _, p := range problems {
				opts.Logger.Warn("skipping connector", "problem", p.Error())
			}
			mirrors, err := opts.newMirrors(st, conns, hcfg)
			if err != nil {
				return err
			}
			defer mirrors.Close()
			syncer := ingest.New(ingest.Config{Store: st, Relay: client, Logger: opts.Logger})
			failed, pushFailed := 0, 0
			for _, f := range folders {
				res, err := syncer.SyncFolder(cmd.Context(), ingest.Request{Folder: f})
				if err != nil {
					fmt.Fprintf(opts.stdout, "%s: failed: %v\n", f, err)
					failed++
					continue
				}
				if err := st.AddFolder(f); err != nil {
					return err
				}
				printResult(opts.stdout, f, res)
				if len(res.Failed) > 0 {
					failed++
				}
				// Then push the folder to its connectors, as the original's
				// sync commits and pushes.
				for _, r := range mirrors.PushFolder(cmd.Context(), f) {
					printPush(opts.stdout, r)
					if r.Err != nil {
						pushFailed++
					}
				}
			}
			switch {
			case failed > 0 && pushFailed > 0:
				return fmt.Errorf("%d of %d folders not fully synced, and %d pushes failed", failed, len(folders), pushFailed)
			case failed > 0:
				return fmt.Errorf("%d of %d folders not fully synced", failed, len(folders))
			case pushFailed > 0:
				return fmt.Errorf("%d pushes failed (see `relay-git-sync connectors status`)", pushFailed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&relayID, "relay-id", "", "relay UUID (required)")
	cmd.Flags().StringVar(&folderID, "folder-id", "", "shared folder UUID (default: every known folder of the relay)")
	cmd.Flags().StringVar(&authorsFile, "authors-file", "", authorsFlagHelp)
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

var errNoSnapshots = errors.New("no snapshots yet; run `relay-git-sync sync` or `serve` first")
