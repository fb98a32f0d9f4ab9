package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/storecopy"
)

func newStoreCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Move the snapshot store between backends",
		Args:  cobra.NoArgs,
		RunE:  requireSubcommand,
	}
	cmd.AddCommand(newStoreCopyCmd(opts))
	return cmd
}

func newStoreCopyCmd(opts *globalOptions) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "copy --from DATA_DIR|nats://… --to nats://…|DATA_DIR",
		Short: "Copy a store to another backend, with the same commit ids",
		Long: `Copy every snapshot, blob, doc state, push state, queued webhook event and the
history settings from one store to another: a data dir (its Badger store in
DATA_DIR/db) or a NATS JetStream cluster (nats://host:4222[,host2:4222…],
credentials from NATS_CREDS, NATS_NKEY or NATS_TOKEN[_FILE]). Snapshots keep
their numbers, times and trees, so git clone relay::… of the copy gives the
same commit ids, and connectors push on from where they were.

The destination must be empty (a data dir without a db/ store, or a cluster
that no serve has used). Stop every serve writing the source first; a store
with held snapshots must have them released or dropped first.`,
		Example: `  relay-git-sync store copy --from /var/lib/relay-git-sync --to nats://n1:4222,n2:4222,n3:4222
  relay-git-sync store copy --from nats://n1:4222 --to /var/lib/relay-git-sync-copy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return errors.New("give both --from and --to (a data dir or a nats:// URL)")
			}
			ctx := cmd.Context()
			src, err := opts.openCopyEnd(ctx, from, false)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			defer src.Close()
			dst, err := opts.openCopyEnd(ctx, to, true)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			st, err := storecopy.Copy(ctx, src, dst, nil)
			if cerr := dst.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("copying the store: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d folders, %d snapshots, %d blobs, %d push states, %d queued events\n",
				st.Folders, st.Snapshots, st.Blobs, st.PushStates, st.Events)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the store to copy: a data dir, or nats://…")
	cmd.Flags().StringVar(&to, "to", "", "the empty store to copy into: a data dir, or nats://…")
	return cmd
}

// openCopyEnd opens one end of a copy: a NATS cluster, or a data dir's
// store (read-only as the source; as the destination created, and only
// where none exists).
func (o *globalOptions) openCopyEnd(ctx context.Context, where string, dest bool) (store.Backend, error) {
	if natsstore.IsURL(where) {
		nc, err := natsstore.Connect(where, o.getenv, o.Logger)
		if err != nil {
			return nil, err
		}
		ns, err := natsstore.Open(ctx, nc, natsstore.Options{Logger: o.Logger, Existing: !dest})
		if err != nil {
			nc.Close()
			return nil, err
		}
		return &natsBacked{Store: ns, nc: nc}, nil
	}
	db := filepath.Join(where, storeDirName)
	if !dest {
		if _, err := os.Stat(filepath.Join(db, "MANIFEST")); err != nil {
			return nil, fmt.Errorf("no snapshot store in %s (no %s)", where, filepath.Join(db, "MANIFEST"))
		}
		return store.OpenReadOnly(db, store.Options{Logger: o.Logger})
	}
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s already has a store (%s): copy into a new data dir", where, db)
	}
	return store.Open(db, store.Options{Logger: o.Logger, SyncWrites: true})
}
