package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/fusefs"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
)

// Environment of the commands that read a running server's read API (the
// mount here, git-remote-relay too).
const (
	envReadURL   = "RELAY_GIT_URL"
	envReadToken = source.TokenEnv // RELAY_GIT_TOKEN
)

func newMountCmd(opts *globalOptions) *cobra.Command {
	var (
		serverURL    string
		allowOther   bool
		foreground   bool
		timeTemplate string
		pollInterval time.Duration
		debugFUSE    bool
	)
	cmd := &cobra.Command{
		Use:   "mount RELAY/FOLDER MOUNTPOINT",
		Short: "Mount a folder's live files and its history as a read-only file system",
		Long: `Mount a shared folder read-only with FUSE: MOUNTPOINT shows the folder's
current files (its latest snapshot) and follows new snapshots within about
a second; MOUNTPOINT/.snapshots holds the history:

  .snapshots/2026-01-31T18:00:00Z/   one directory per snapshot, named by its time
  .snapshots/latest                  a link to the newest one
  .snapshots/by-seq/42/              the same snapshots by sequence number

Directories carry their snapshot's time as mtime, and each file the time of
the snapshot that last changed it. Writing, creating, renaming and deleting
fail with "Read-only file system".

` + readFromHelp + ` If the server becomes unreachable while
mounted, the mount stays up, serves what it has already read, and says so in
the log.

The command stays in the foreground, like restic mount, and serves until
Ctrl-C or SIGTERM, which unmount cleanly (a mountpoint still in use is
detached lazily). To run it in the background use your shell (&), nohup or a
systemd unit; ` + "`fusermount3 -u MOUNTPOINT`" + ` also ends it. --foreground=false is
refused rather than silently ignored.

MOUNTPOINT must be an existing empty directory. Needs FUSE: /dev/fuse, and
for users other than root the fuse3 package (apt-get install fuse3).`,
		Example: `  mkdir -p ~/notes
  RELAY_GIT_TOKEN=… relay-git-sync mount --server http://127.0.0.1:8000 $RELAY/$FOLDER ~/notes
  relay-git-sync --data-dir /var/lib/relay-git-sync mount $RELAY/$FOLDER ~/notes`,
		Annotations: stopsOnSignal(),
		Args:        cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFolderArg(args[0])
			if err != nil {
				return err
			}
			if !foreground {
				return errors.New("--foreground=false: relay-git-sync mount always runs in the foreground (like restic mount); use your shell's &, nohup or a systemd unit to run it in the background")
			}
			if pollInterval <= 0 {
				return fmt.Errorf("--poll-interval %v: must be positive", pollInterval)
			}
			if timeTemplate == "" {
				return errors.New("--time-template must not be empty")
			}
			mnt, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			if err := fusefs.CheckMountpoint(mnt); err != nil {
				return err
			}
			src, from, err := opts.openSource(cmd, serverURL)
			if err != nil {
				return err
			}
			defer src.Close()

			ctx := cmd.Context()
			fsys, err := fusefs.Mount(ctx, mnt, src, f, fusefs.Options{
				TimeTemplate: timeTemplate,
				PollInterval: pollInterval,
				AllowOther:   allowOther,
				Logger:       opts.Logger,
				Debug:        debugFUSE,
			})
			if err != nil {
				return err
			}
			seq := "no snapshots yet"
			if s := fsys.Seq(); s != 0 {
				seq = fmt.Sprintf("snapshot %d", s)
			}
			fmt.Fprintf(opts.stderr, "Mounted %s (%s, from %s) at %s; history in %s. Press Ctrl-C to unmount.\n",
				f, seq, from, mnt, filepath.Join(mnt, fusefs.DefaultHistoryDir))

			select {
			case <-ctx.Done():
			case <-fsys.Done():
				fmt.Fprintf(opts.stderr, "%s was unmounted\n", mnt)
				return nil
			}
			if err := fsys.Unmount(); err != nil {
				return err
			}
			fmt.Fprintf(opts.stderr, "Unmounted %s\n", mnt)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&serverURL, "server", "", "read from the relay-git-sync serve at this URL (env "+envReadURL+"; token from env "+envReadToken+"); default: the data dir")
	fl.BoolVar(&allowOther, "allow-other", false, "let other users read the mount (non-root users need user_allow_other in /etc/fuse.conf)")
	fl.BoolVar(&foreground, "foreground", true, "stay in the foreground until Ctrl-C (the only mode: background it with your shell or systemd)")
	fl.StringVar(&timeTemplate, "time-template", fusefs.DefaultTimeTemplate, "Go time layout naming the snapshot directories (UTC)")
	fl.DurationVar(&pollInterval, "poll-interval", fusefs.DefaultPollInterval, "how often to look for new snapshots")
	fl.BoolVar(&debugFUSE, "debug-fuse", false, "log every FUSE request (with --verbose)")
	_ = fl.MarkHidden("debug-fuse")
	return cmd
}
