package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/export"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

func newExportCmd(opts *globalOptions) *cobra.Command {
	var output, at string
	var seq uint64
	cmd := &cobra.Command{
		Use:   "export RELAY/FOLDER --output PATH [--snapshot SEQ | --at TIME]",
		Short: "Write a folder as it was at a snapshot to a directory or archive",
		Long: `Write the files of a shared folder, as they were at one snapshot, to PATH:
a directory, or a .tar, .tar.gz (.tgz) or .zip archive chosen by PATH's
extension. The latest snapshot is used unless --snapshot names a sequence
number or --at a time (RFC 3339; the last snapshot at or before it).

PATH must not exist. The output is written under a temporary name and renamed
into place, so a failed export leaves nothing behind.`,
		Example: `  relay-git-sync export $RELAY/$FOLDER --output notes.tar.gz
  relay-git-sync export $RELAY/$FOLDER --at 2026-01-31T18:00:00Z --output notes-january`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFolderArg(args[0])
			if err != nil {
				return err
			}
			if output == "" {
				return errors.New("--output is required")
			}
			if seq != 0 && at != "" {
				return errors.New("--snapshot and --at cannot be used together")
			}
			st, err := opts.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			snap, err := pickSnapshot(st, f, seq, at)
			if err != nil {
				return err
			}
			var progress export.Progress
			if isTerminal(opts.stderr) {
				progress = progressBar(opts.stderr)
			}
			if err := export.Write(cmd.Context(), snap, st, output, progress); err != nil {
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
	cmd.Flags().Uint64Var(&seq, "snapshot", 0, "sequence number of the snapshot (default: latest)")
	cmd.Flags().StringVar(&at, "at", "", "time (RFC 3339): the last snapshot at or before it")
	return cmd
}

func pickSnapshot(st *store.Store, f store.FolderID, seq uint64, at string) (*store.Snapshot, error) {
	switch {
	case seq != 0:
		s, err := st.Snapshot(f, seq)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%s has no snapshot %d (see `relay-git-sync snapshots %s`)", f, seq, f)
		}
		return s, err
	case at != "":
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return nil, fmt.Errorf("--at %q: want RFC 3339, e.g. 2026-01-31T18:00:00Z", at)
		}
		infos, err := st.Snapshots(f, 0)
		if err != nil {
			return nil, err
		}
		var pick uint64
		for _, in := range infos {
			if !in.Time.After(t) && in.Seq > pick {
				pick = in.Seq
			}
		}
		if pick == 0 {
			return nil, fmt.Errorf("%s has no snapshot at or before %s", f, t.UTC().Format(timeFormat))
		}
		return st.Snapshot(f, pick)
	}
	s, err := st.Latest(f)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", f, errNoSnapshots)
	}
	return s, err
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
