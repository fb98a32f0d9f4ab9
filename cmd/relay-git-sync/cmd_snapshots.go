package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// snapshotJSON is the --json form of a snapshot listing entry; scripts
// rely on these field names.
type snapshotJSON struct {
	Seq     uint64       `json:"seq"`
	Time    time.Time    `json:"time"`
	Files   int          `json:"files"`
	Users   []string     `json:"users"`
	Changes []changeJSON `json:"changes"`
	// Restored is the snapshot a restore brought back; PushedCommit the
	// commit a git push wrote (see store.Origin).
	Restored     uint64 `json:"restored,omitempty"`
	PushedCommit string `json:"pushed_commit,omitempty"`
}

type changeJSON struct {
	Kind    string `json:"kind"`
	Path    string `json:"path"`
	OldPath string `json:"old_path,omitempty"`
	DocID   string `json:"doc_id"`
}

func newSnapshotsCmd(opts *globalOptions) *cobra.Command {
	var asJSON bool
	var serverURL string
	cmd := &cobra.Command{
		Use:   "snapshots RELAY/FOLDER",
		Short: "List a folder's snapshots, newest first",
		Long: `List the snapshots recorded for a shared folder, newest first: sequence
number, time (UTC, RFC 3339), number of files and what changed.

With --json, print one JSON array of objects with the fields seq, time,
files, users and changes (kind, path, old_path, doc_id).

` + readFromHelp,
		Example: `  relay-git-sync snapshots 6ba7b810-9dad-11d1-80b4-00c04fd430c8/f47ac10b-58cc-4372-a567-0e02b2c3d479
  RELAY_GIT_TOKEN=… relay-git-sync snapshots --server http://127.0.0.1:8000 $RELAY/$FOLDER`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFolderArg(args[0])
			if err != nil {
				return err
			}
			src, _, err := opts.openSource(cmd, serverURL)
			if err != nil {
				return err
			}
			defer src.Close()
			infos, err := src.Snapshots(cmd.Context(), f, 0)
			if err != nil {
				return err
			}
			slices.Reverse(infos)
			if asJSON {
				out := make([]snapshotJSON, 0, len(infos))
				for _, in := range infos {
					out = append(out, toSnapshotJSON(in))
				}
				enc := json.NewEncoder(opts.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if len(infos) == 0 {
				return fmt.Errorf("%s: %w", f, errNoSnapshots)
			}
			tw := tabwriter.NewWriter(opts.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tFILES\tCHANGES")
			for _, in := range infos {
				summary := changeSummary(in.Changes)
				if o := originSummary(in.Origin); o != "" {
					summary = o + ": " + summary
				}
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", in.Seq, in.Time.UTC().Format(timeFormat), in.NumFiles, summary)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	addServerFlag(cmd, &serverURL)
	return cmd
}

func toSnapshotJSON(in store.SnapshotInfo) snapshotJSON {
	s := snapshotJSON{Seq: in.Seq, Time: in.Time.UTC(), Files: in.NumFiles, Users: in.Users, Changes: []changeJSON{}}
	if s.Users == nil {
		s.Users = []string{}
	}
	for _, c := range in.Changes {
		s.Changes = append(s.Changes, changeJSON{Kind: c.Kind.String(), Path: c.Path, OldPath: c.OldPath, DocID: c.DocID})
	}
	s.Restored = in.Origin.Restored
	if p := in.Origin.Pushed; p != nil {
		s.PushedCommit = hex.EncodeToString(p.Commit[:])
	}
	return s
}

// originSummary says which write of relay-git-sync made a snapshot ("" for
// edits made in Relay).
func originSummary(o store.Origin) string {
	var parts []string
	if o.Restored != 0 {
		parts = append(parts, fmt.Sprintf("restore of #%d", o.Restored))
	}
	if p := o.Pushed; p != nil {
		parts = append(parts, "git push of "+hex.EncodeToString(p.Commit[:])[:12])
	}
	return strings.Join(parts, ", ")
}
