package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// errDamaged is wrapped by the error of a check that found problems, so
// that the exit status is 1 (see main.go).
var errDamaged = errors.New("the store is damaged")

func newCheckCmd(opts *globalOptions) *cobra.Command {
	var readData bool
	var serverURL string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the snapshot store for damage",
		Long: `Check that the snapshot store is sound, as restic's check does for a
repository: every folder's snapshots decode and their trees rebuild (each
snapshot's changes replayed from the first, checked against the stored
checkpoints), every file's blob is stored with the file's size and its delta
chain resolves, and the doc states, queued webhook events, push states,
mass-deletion holds and history config decode and refer to what exists.
With --read-data every blob is also decoded and hashed against its git blob
id (this reads all content).

Every problem is printed on its own line with the folder, snapshot, file and
blob it concerns; the check goes on past damage. The last line says "no
errors were found" or how many problems were found; the exit status is 1
when there are any.

The data dir (--data-dir) is checked directly, all of it, when no serve
holds it. With --server (or ` + envReadURL + `) the check goes through a
running serve's read API instead: every folder's history must stream and
every snapshot must be readable, and with --read-data every blob must be
fetchable and hash to its id. The queue, push states, doc states and
mass-deletion records are checked only on the data dir.

Opening the data dir replays Badger's log as serve does; to keep a damaged
store byte for byte, check a copy.`,
		Example: `  relay-git-sync --data-dir /var/lib/relay-git-sync check
  relay-git-sync --data-dir /var/lib/relay-git-sync check --read-data
  RELAY_GIT_TOKEN=… relay-git-sync check --read-data --server http://127.0.0.1:8000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if serverURL == "" {
				serverURL = opts.getenv(envReadURL)
			}
			var problems int
			var err error
			if serverURL != "" {
				problems, err = checkThroughServer(cmd, opts, serverURL, readData)
			} else {
				problems, err = checkDataDir(cmd, opts, readData)
			}
			if err != nil {
				return err
			}
			if problems == 0 {
				fmt.Fprintln(opts.stdout, "no errors were found")
				return nil
			}
			fmt.Fprintf(opts.stdout, "%s found\n", plural(problems, "problem"))
			return fmt.Errorf("%w: %s (listed above)", errDamaged, plural(problems, "problem"))
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "also decode every blob and check it against its id (reads all content)")
	cmd.Flags().StringVar(&serverURL, "server", "", "check through the read API of the relay-git-sync serve at this URL (env "+envReadURL+"; token from env "+envReadToken+" or git's credential helper); default: the data dir")
	return cmd
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// checkDataDir runs store.Check on the data dir's store.
func checkDataDir(cmd *cobra.Command, opts *globalOptions, readData bool) (int, error) {
	st, err := opts.openExistingStore(cmd.Root(), true) // read-write: it reads what serve would, the log replayed
	var inUse *storeInUseError
	if errors.As(err, &inUse) {
		inUse.todo = "pass --server URL (or set " + envReadURL + ") to check through it, or stop it to check everything"
	}
	if err != nil {
		return 0, err
	}
	defer st.Close()
	fmt.Fprintf(opts.stdout, "checking %s\n", opts.storeName())
	stats, err := st.Check(cmd.Context(), store.CheckOptions{ReadData: readData}, func(f store.Finding) {
		fmt.Fprintln(opts.stdout, f)
	})
	if err != nil {
		return 0, err
	}
	blobs := plural(stats.Blobs, "blob")
	if readData {
		blobs += fmt.Sprintf(" (%d read, %s)", stats.BlobsRead, humanBytes(stats.BytesRead))
	}
	fmt.Fprintf(opts.stdout, "checked %s, %s, %s, %s, %s, %s, %s, %s\n",
		plural(stats.Folders, "folder"), plural(stats.Snapshots, "snapshot"), plural(stats.Checkpoints, "checkpoint"), blobs,
		plural(stats.DocStates, "doc state"), plural(stats.Events, "queued event"), plural(stats.PushStates, "push record"),
		plural(stats.Held, "held record"))
	return stats.Problems, nil
}

// blobRef is where a blob is first used: the snapshot and file a finding
// about it names.
type blobRef struct {
	seq  uint64
	path string
	size int64
}

// serverCheck checks what a running serve's read API gives.
type serverCheck struct {
	ctx      context.Context
	src      source.Source
	out      io.Writer
	readData bool
	problems int
	fetched  map[store.BlobID]bool // blobs fetched, across folders

	snapshots, blobs int
	bytes            int64
}

func (c *serverCheck) add(f store.Finding) {
	c.problems++
	fmt.Fprintln(c.out, f)
}

// fatal tells an error that stops the check (the server is gone, the
// token is wrong, the user interrupted) from one about damage.
func (c *serverCheck) fatal(err error) bool {
	return c.ctx.Err() != nil || errors.Is(err, source.ErrUnreachable) || errors.Is(err, source.ErrUnauthorized)
}

func checkThroughServer(cmd *cobra.Command, opts *globalOptions, serverURL string, readData bool) (int, error) {
	src, from, err := opts.openSource(cmd, serverURL)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	c := &serverCheck{ctx: cmd.Context(), src: src, out: opts.stdout, readData: readData, fetched: map[store.BlobID]bool{}}
	fmt.Fprintf(opts.stdout, "checking through %s\n", from)
	folders, err := src.Folders(c.ctx)
	if err != nil && !c.fatal(err) {
		return 0, fmt.Errorf("listing the folders of %s: %w (a folder whose latest snapshot cannot be read makes the whole list fail: stop serve and check the data dir to see which)", from, err)
	}
	if err != nil {
		return 0, err
	}
	for _, f := range folders {
		if err := c.folder(f); err != nil {
			return 0, err
		}
	}
	blobs := "blobs not read (--read-data fetches and verifies them)"
	if readData {
		blobs = fmt.Sprintf("%s read (%s)", plural(c.blobs, "blob"), humanBytes(c.bytes))
	}
	fmt.Fprintf(opts.stdout, "checked %s, %s, %s; the queue, push states, doc states and held records are checked only on the data dir\n",
		plural(len(folders), "folder"), plural(c.snapshots, "snapshot"), blobs)
	return c.problems, nil
}

// folder reads f's history in one stream; where the server cannot rebuild
// a snapshot, it reads the following snapshots one by one until one reads,
// and streams on from there. Then, with readData, it fetches every blob the
// history refers to.
func (c *serverCheck) folder(f source.Folder) error {
	id := f.ID()
	refs := map[store.BlobID]blobRef{}
	seen := func(s *store.Snapshot) {
		c.snapshots++
		for _, file := range s.Files {
			if _, ok := refs[file.Blob]; !ok {
				refs[file.Blob] = blobRef{seq: s.Seq, path: file.Path, size: file.Size}
			}
		}
	}
	var after uint64
	for after < f.LatestSeq {
		err := c.src.History(c.ctx, id, after, func(s *store.Snapshot) error {
			if s.Seq != after+1 {
				c.add(store.Finding{Record: "snapshot", Folder: id, Seq: after + 1,
					Problem: fmt.Sprintf("the history skips to snapshot %d", s.Seq)})
			}
			after = s.Seq
			seen(s)
			return nil
		})
		if err == nil {
			if after < f.LatestSeq {
				c.add(store.Finding{Record: "snapshot", Folder: id, Seq: after + 1,
					Problem: fmt.Sprintf("the history ends at snapshot %d, but the latest is %d", after, f.LatestSeq)})
			}
			break
		}
		if c.fatal(err) {
			return err
		}
		first, lastErr := after+1, err
		for after++; after <= f.LatestSeq; after++ {
			s, err := c.src.Snapshot(c.ctx, id, after)
			if err == nil {
				seen(s)
				break
			}
			if c.fatal(err) {
				return err
			}
			lastErr = err
		}
		// Snapshots first to after-1 did not read (after is the one that
		// did, or past the latest).
		switch last := after - 1; {
		case last < first:
			c.add(store.Finding{Record: "snapshot", Folder: id, Seq: first,
				Problem: fmt.Sprintf("the history cannot be streamed from here (clones and exports fail), though the snapshot reads alone: %v", lastErr)})
		case last == first:
			c.add(store.Finding{Record: "snapshot", Folder: id, Seq: first, Problem: fmt.Sprintf("snapshot %d cannot be read through the server: %v", first, lastErr)})
		default:
			c.add(store.Finding{Record: "snapshot", Folder: id, Seq: first, Problem: fmt.Sprintf("snapshots %d to %d cannot be read through the server: %v", first, last, lastErr)})
		}
	}
	if !c.readData {
		return nil
	}
	for blob, ref := range refs {
		if c.fetched[blob] {
			continue
		}
		c.fetched[blob] = true
		data, err := c.src.Blob(c.ctx, blob)
		if err != nil && c.fatal(err) {
			return err
		}
		at := store.Finding{Record: "snapshot", Folder: id, Seq: ref.seq, Path: ref.path, Blob: blob}
		switch {
		case err != nil:
			at.Problem = fmt.Sprintf("the file's content cannot be fetched: %v", err)
			c.add(at)
		case int64(len(data)) != ref.size:
			at.Problem = fmt.Sprintf("the file is %d bytes, its blob %d", ref.size, len(data))
			c.add(at)
		default:
			c.blobs++
			c.bytes += int64(len(data))
		}
	}
	return nil
}
