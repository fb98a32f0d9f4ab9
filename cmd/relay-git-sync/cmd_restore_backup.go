package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

func newRestoreBackupCmd(opts *globalOptions) *cobra.Command {
	var progress bool
	cmd := &cobra.Command{
		Use:   "restore-backup FILE --data-dir DIR",
		Short: "Rebuild a data dir's snapshot store from a backup",
		Long: `Rebuild the snapshot store of the data dir given by --data-dir (or ` + envDataDir + `)
from FILE, a backup written by ` + "`relay-git-sync backup`" + ` ("-" reads standard input).

The data dir must hold no store yet: restore-backup refuses to replace one
and then touches nothing. The store is built in DIR/db.tmp and renamed to
DIR/db only once the whole backup loaded and its checksum matched, so a
truncated or damaged file is refused and leaves no store behind.

The backup holds the store only: copy git_connectors.toml (and any key files
the connectors name) into the data dir as well before starting serve on it.
Webhook events that were queued in the backup are processed when serve starts.`,
		Example: `  relay-git-sync restore-backup notes-2026-05-01.backup --data-dir /var/lib/relay-git-sync-restored
  git clone relay::/var/lib/relay-git-sync-restored/$RELAY/$FOLDER`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Restoring into the working directory by default would
			// scatter a store wherever the command happens to run.
			if !cmd.Flags().Changed("data-dir") && opts.getenv(envDataDir) == "" {
				return errors.New("--data-dir DIR is required: the data dir to restore into (a new one, or one without a db/ store)")
			}
			file := args[0]
			var in io.Reader
			if file == "-" {
				in = cmd.InOrStdin()
			} else {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			dir := filepath.Join(opts.DataDir, storeDirName)
			var p *byteProgress
			if progress || isTerminal(opts.stderr) {
				p = startByteProgress(opts.stderr, "restore")
			}
			_, err := store.Restore(dir, &progressReader{r: in, p: p}, store.Options{Logger: opts.Logger})
			p.stop()
			switch {
			case errors.Is(err, store.ErrStoreNotEmpty):
				return fmt.Errorf("data dir %s already holds a snapshot store (%s): restore-backup does not replace one; restore into a new data dir, or stop whatever uses this one and move %s away first", opts.DataDir, dir, dir)
			case errors.Is(err, store.ErrBackupDamaged):
				return fmt.Errorf("%s is not a usable backup, nothing was restored: %w", file, err)
			case err != nil:
				return fmt.Errorf("restoring %s into %s: %w", file, opts.DataDir, err)
			}
			return reportRestored(opts, file, dir)
		},
	}
	cmd.Flags().BoolVar(&progress, "progress", false, "show progress on standard error even when it is not a terminal")
	return cmd
}

// reportRestored says what the restored store holds.
func reportRestored(opts *globalOptions, file, dir string) error {
	st, err := store.Open(dir, store.Options{Logger: opts.Logger})
	if err != nil {
		return fmt.Errorf("opening the restored store: %w", err)
	}
	defer st.Close()
	folders, err := st.Folders()
	if err != nil {
		return err
	}
	pending, err := st.PendingEvents()
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.stdout, "Restored %s into %s: %d folders, %d queued webhook events\n", file, dir, len(folders), len(pending))
	for _, f := range folders {
		seq, at, err := st.Head(f)
		if err != nil {
			return err
		}
		if seq == 0 {
			fmt.Fprintf(opts.stdout, "  %s: no snapshot yet\n", f)
			continue
		}
		fmt.Fprintf(opts.stdout, "  %s: %d snapshots, the last at %s\n", f, seq, at.UTC().Format("2006-01-02 15:04:05Z"))
	}
	return nil
}

// progressReader counts what is read through it for a byteProgress.
type progressReader struct {
	r io.Reader
	p *byteProgress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(int64(n))
	return n, err
}
