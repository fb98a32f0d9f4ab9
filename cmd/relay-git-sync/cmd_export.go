package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/export"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
)

func newExportCmd(opts *globalOptions) *cobra.Command {
	var output, at, serverURL string
	var seq uint64
	cmd := &cobra.Command{
		Use:   "export RELAY/FOLDER --output PATH [--snapshot SEQ | --at TIME]",
		Short: "Write a folder as it was at a snapshot to a directory or archive",
		Long: `Write the files of a shared folder, as they were at one snapshot, to PATH:
a .tar, .tar.gz (.tgz) or .zip archive chosen by PATH's extension, or a
directory for a name without an archive extension (other archive names, such
as .7z or .tar.bz2, are refused). The latest snapshot is used unless
--snapshot names a sequence number (from 1) or --at a time (RFC 3339; the
last snapshot at or before it).

PATH must not exist. The output is written under a temporary name and renamed
into place, so a failed export leaves nothing behind.

` + readFromHelp,
		Example: `  relay-git-sync export $RELAY/$FOLDER --output notes.tar.gz
  relay-git-sync export $RELAY/$FOLDER --at 2026-01-31T18:00:00Z --output notes-january
  RELAY_GIT_TOKEN=… relay-git-sync export $RELAY/$FOLDER --server http://127.0.0.1:8000 -o notes.zip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFolderArg(args[0])
			if err != nil {
				return err
			}
			if output == "" {
				return errors.New("--output is required")
			}
			if _, err := export.FormatOf(output); err != nil {
				return err
			}
			if cmd.Flags().Changed("snapshot") && seq == 0 {
				return errors.New("--snapshot 0: snapshots are numbered from 1 (leave --snapshot out for the latest)")
			}
			if seq != 0 && at != "" {
				return errors.New("--snapshot and --at cannot be used together")
			}
			var when time.Time
			if at != "" {
				if when, err = time.Parse(time.RFC3339Nano, at); err != nil {
					return fmt.Errorf("--at %q: want RFC 3339, e.g. 2026-01-31T18:00:00Z", at)
				}
			}
			src, _, err := opts.openSource(cmd, serverURL)
			if err != nil {
				return err
			}
			defer src.Close()
			ctx := cmd.Context()
			snap, err := source.Pick(ctx, src, f, seq, when)
			if err != nil {
				return err
			}
			var progress export.Progress
			if isTerminal(opts.stderr) {
				progress = progressBar(opts.stderr)
			}
			if err := export.Write(ctx, snap, src, output, progress); err != nil {
				return err
			}
			if progress != nil {
				fmt.Fprintln(opts.stderr)
			}
			fmt.Fprintf(opts.stdout, "exported snapshot %d (%s, %d files) to %s\n", snap.Seq, snap.Time.Format(timeFormat), len(snap.Files), output)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "directory, .tar, .tar.gz or .zip to write (required)")
	cmd.Flags().Uint64Var(&seq, "snapshot", 0, "sequence number of the snapshot, from 1 (default: latest)")
	cmd.Flags().StringVar(&at, "at", "", "time (RFC 3339): the last snapshot at or before it")
	addServerFlag(cmd, &serverURL)
	return cmd
}

// isTerminal reports whether w is a character device, where a progress
// bar makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws a one-line bar, redrawn at most ten times a second.
func progressBar(w io.Writer) export.Progress {
	var last time.Time
	return func(done, total int64) {
		if now := time.Now(); now.Sub(last) < 100*time.Millisecond && done < total {
			return
		} else {
			last = now
		}
		pct := 100.0
		if total > 0 {
			pct = float64(done) * 100 / float64(total)
		}
		const width = 30
		n := int(pct / 100 * width)
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = ' '
			if i < n {
				bar[i] = '='
			}
		}
		fmt.Fprintf(w, "\r[%s] %5.1f%% %s / %s", bar, pct, humanBytes(done), humanBytes(total))
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
