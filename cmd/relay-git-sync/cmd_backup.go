package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

func newBackupCmd(opts *globalOptions) *cobra.Command {
	var output, serverURL string
	var progress bool
	cmd := &cobra.Command{
		Use:   "backup --output FILE [--server URL]",
		Short: "Write a point-in-time backup of the whole snapshot store to a file",
		Long: `Write a consistent backup of the whole snapshot store (every folder, snapshot,
blob, queued webhook event, push state and setting) to FILE, as it was when
the backup began, while serve keeps running. restore-backup rebuilds a data
dir from it.

The backup is read from a running ` + "`relay-git-sync serve`" + ` when --server (or
` + envReadURL + `) is given, with the token from ` + envReadToken + ` (the server's
RELAY_GIT_API_TOKEN) or else from git's credential helper; otherwise from the
data dir (--data-dir), which works only while no serve holds it.

FILE is written under FILE.tmp and renamed into place (replacing an older
FILE) only once the whole backup arrived and its checksum matched, so a failed
backup never leaves a partial FILE. "-" writes to standard output. The file
holds everything in the store: keep it as private as the data dir.

Progress goes to standard error every second when it is a terminal, or with
--progress. The data dir's git_connectors.toml and other files outside its
db/ directory are not in the backup.`,
		Example: `  RELAY_GIT_TOKEN=… relay-git-sync backup --server http://127.0.0.1:8000 --output notes-$(date +%F).backup
  relay-git-sync --data-dir /var/lib/relay-git-sync backup --output /backups/notes.backup   # serve stopped`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return errors.New("--output is required: a file name, or - for standard output")
			}
			if serverURL == "" {
				serverURL = opts.getenv(envReadURL)
			}
			ctx := cmd.Context()
			var from string
			var write func(w io.Writer) error
			if serverURL != "" {
				from = serverURL
				c, err := readapi.New(serverURL, opts.readToken(cmd, serverURL), readapi.WithUserAgent("relay-git-sync/"+version))
				if err != nil {
					return err
				}
				defer c.Close()
				write = func(w io.Writer) error { return backupFromServer(ctx, c, w) }
			} else {
				from = opts.storeName()
				if err := opts.checkStore(", or pass --server URL to back up a running serve"); err != nil {
					return err
				}
				st, err := opts.openExistingStore(cmd.Root(), false)
				var inUse *storeInUseError
				if errors.As(err, &inUse) {
					inUse.todo = "pass --server URL (or set " + envReadURL + ") to back up through it, or stop it"
				}
				if err != nil {
					return err
				}
				defer st.Close()
				write = func(w io.Writer) error { return st.Backup(ctx, w) }
			}
			var p *byteProgress
			if progress || isTerminal(opts.stderr) {
				p = startByteProgress(opts.stderr, "backup")
			}
			n, err := writeBackup(output, opts.stdout, p, write)
			p.stop()
			if err != nil {
				return fmt.Errorf("backup of %s: %w", from, err)
			}
			if output != "-" {
				fmt.Fprintf(opts.stderr, "Backed up %s to %s (%s)\n", from, output, humanBytes(n))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write the backup to (- for standard output)")
	cmd.Flags().BoolVar(&progress, "progress", false, "show progress on standard error even when it is not a terminal")
	cmd.Flags().StringVar(&serverURL, "server", "", "back up the relay-git-sync serve at this URL (env "+envReadURL+"; token from env "+envReadToken+" or git's credential helper); default: the data dir")
	return cmd
}

// backupFromServer copies the server's backup to w, checking on the way
// that it arrived whole.
func backupFromServer(ctx context.Context, c *readapi.Client, w io.Writer) error {
	body, err := c.Backup(ctx)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: this server does not serve backups (a relay-git-sync serve older than this command?): upgrade it, or stop it and back up its data dir", err)
		}
		return err
	}
	defer body.Close()
	if err := store.VerifyBackup(io.TeeReader(body, w)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading the backup from %s: %w (the server's log may say why)", c.Base(), err)
	}
	return nil
}

// writeBackup runs write into output ("-": stdout) and returns the bytes
// written. A file is written as output.tmp, synced and renamed into place
// only when write succeeded.
func writeBackup(output string, stdout io.Writer, p *byteProgress, write func(io.Writer) error) (int64, error) {
	cw := &progressWriter{p: p}
	if output == "-" {
		cw.w = stdout
		err := write(cw)
		return cw.n.Load(), err
	}
	tmp := output + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	cw.w = f
	err = write(cw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, output)
	}
	if err != nil {
		os.Remove(tmp)
		return cw.n.Load(), err
	}
	if d, derr := os.Open(filepath.Dir(output)); derr == nil {
		derr = d.Sync()
		d.Close()
		if derr != nil {
			return cw.n.Load(), fmt.Errorf("syncing the directory of %s: %w", output, derr)
		}
	}
	return cw.n.Load(), nil
}

// progressWriter counts what goes through it for a byteProgress.
type progressWriter struct {
	w io.Writer
	n atomic.Int64
	p *byteProgress
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.n.Add(int64(n))
	pw.p.add(int64(n))
	return n, err
}

// byteProgress prints "<what>: N MiB" on one line of w every second until
// stop. A nil *byteProgress does nothing.
type byteProgress struct {
	n    atomic.Int64
	quit chan struct{}
	done chan struct{}
}

func startByteProgress(w io.Writer, what string) *byteProgress {
	p := &byteProgress{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		start := time.Now()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		printed := false
		for {
			select {
			case <-tick.C:
				fmt.Fprintf(w, "\r%s: %s in %s", what, humanBytes(p.n.Load()), time.Since(start).Round(time.Second))
				printed = true
			case <-p.quit:
				if printed {
					fmt.Fprintln(w)
				}
				return
			}
		}
	}()
	return p
}

func (p *byteProgress) add(n int64) {
	if p != nil {
		p.n.Add(n)
	}
}

func (p *byteProgress) stop() {
	if p != nil {
		close(p.quit)
		<-p.done
	}
}
