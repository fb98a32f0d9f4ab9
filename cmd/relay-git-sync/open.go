package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/gitcred"
	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// storeDirName is the Badger database's directory inside the data dir.
const storeDirName = "db"

// errNoStore is wrapped by the error of a read-only command whose data dir
// has no snapshot store.
var errNoStore = errors.New("no snapshot store")

// checkStore fails, without creating anything, when the data dir holds no
// snapshot store: a mistyped --data-dir must not get an empty one. hint
// says what else the user could do.
func (o *globalOptions) checkStore(hint string) error {
	if o.Store != "" {
		return nil // a NATS store: opening it says whether it holds one
	}
	db := filepath.Join(o.DataDir, storeDirName)
	// Badger's MANIFEST is the first file it writes: a db/ without one is
	// not a store (and opening it would make one).
	_, err := os.Stat(filepath.Join(db, "MANIFEST"))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w at %s (no %s): check --data-dir or %s, or run `relay-git-sync serve` or `sync` with it first%s",
			errNoStore, o.DataDir, filepath.Join(db, "MANIFEST"), envDataDir, hint)
	}
	if err != nil {
		return fmt.Errorf("snapshot store at %s: %w", o.DataDir, err)
	}
	return nil
}

// storeInUseError is the error of opening a store that another process
// holds (Badger allows one process per store): it names the holder and
// says what to do.
type storeInUseError struct {
	dataDir, holder, todo string
}

func (e *storeInUseError) Error() string {
	return fmt.Sprintf("data dir %s is in use by %s: %s", e.dataDir, e.holder, e.todo)
}

func (o *globalOptions) inUseError(root *cobra.Command, todo string) error {
	return &storeInUseError{dataDir: o.DataDir, holder: lockHolder(root, filepath.Join(o.DataDir, storeDirName)), todo: todo}
}

// openExistingStore opens the data dir's store for a command, creating
// nothing: read-only (no byte of it changes) unless write. A store held by
// another process is a *storeInUseError.
func (o *globalOptions) openExistingStore(root *cobra.Command, write bool) (store.Backend, error) {
	if o.Store != "" {
		return o.openNATS(root.Context())
	}
	if err := o.checkStore(""); err != nil {
		return nil, err
	}
	open := store.OpenReadOnly
	if write {
		open = store.Open
	}
	st, err := open(filepath.Join(o.DataDir, storeDirName), store.Options{Logger: o.Logger})
	// Badger formats the flock error into its message (y.Wrap keeps no
	// chain), so only the text tells.
	if err != nil && strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return nil, o.inUseError(root, "stop it to read the store directly")
	}
	return st, err
}

// addServerFlag defines --server on a read-only command.
func addServerFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "server", "", "read from the relay-git-sync serve at this URL (env "+envReadURL+"; token from env "+envReadToken+" or git's credential helper); default: the data dir")
}

// readFromHelp is the paragraph of help text on where a read-only command
// reads from.
const readFromHelp = `The folder is read from a running ` + "`relay-git-sync serve`" + ` when --server (or
` + envReadURL + `) is given, with the token from ` + envReadToken + ` (the server's
RELAY_GIT_API_TOKEN) or else from git's credential helper, as for
git clone relay::URL; otherwise from the data dir (--data-dir), which works
only while no serve holds it. Nothing is created in the data dir.`

// openSource opens what a read-only command reads: the read API at
// serverURL (or $RELAY_GIT_URL), else the data dir's store, which must
// exist and not be held by another process. from describes it for
// messages.
func (o *globalOptions) openSource(cmd *cobra.Command, serverURL string) (src source.Source, from string, err error) {
	return o.openSourceFor(cmd, serverURL, false)
}

// openSourceFor is openSource; write opens a data dir read-write (restore
// records its snapshot there), else read-only, so that readers change
// nothing in it and may share it.
func (o *globalOptions) openSourceFor(cmd *cobra.Command, serverURL string, write bool) (src source.Source, from string, err error) {
	if serverURL == "" {
		serverURL = o.getenv(envReadURL)
	}
	if serverURL != "" {
		src, err := source.NewHTTP(serverURL, o.readToken(cmd, serverURL), source.WithUserAgent("relay-git-sync/"+version))
		return src, serverURL, err
	}
	if o.Store != "" {
		st, err := o.openNATS(cmd.Context())
		if err != nil {
			return nil, "", err
		}
		return source.OwnStore(st, o.storeName()), o.storeName(), nil
	}
	if err := o.checkStore(", or pass --server URL to read from a running serve"); err != nil {
		return nil, "", err
	}
	open := source.ReadDataDir
	if write {
		open = source.OpenDataDir
	}
	src, err = open(o.DataDir)
	if errors.Is(err, source.ErrLocked) {
		return nil, "", o.inUseError(cmd.Root(), "pass --server URL (or set "+envReadURL+") to read through it, or stop it")
	}
	return src, "data dir " + o.DataDir, err
}

// readToken is the read API token: $RELAY_GIT_TOKEN, else what git's
// credential helpers hold for serverURL (as git clone relay::URL uses),
// asked without prompting. Without either the server's 401 says what to set.
func (o *globalOptions) readToken(cmd *cobra.Command, serverURL string) string {
	if tok := o.getenv(envReadToken); tok != "" {
		return tok
	}
	c, found, err := gitcred.FillRead(cmd.Context(), gitcred.Git{}, serverURL, false)
	if err != nil || !found {
		return ""
	}
	return c.Password
}

// lockHolder names the process holding the Badger store in db: Badger
// writes its pid into db/LOCK, and /proc/PID/cmdline says what it runs,
// e.g. "`relay-git-sync serve` (pid 1234)". Flags are left out (they may
// carry secrets). Where either is missing it says as much as it knows.
func lockHolder(root *cobra.Command, db string) string {
	b, err := os.ReadFile(filepath.Join(db, "LOCK"))
	if err != nil {
		return "another process"
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return "another process"
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(raw) == 0 {
		return fmt.Sprintf("process %d", pid)
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	name := filepath.Base(argv[0])
	if name == root.Name() {
		// Find skips the flags and their values, leaving the command path.
		if c, _, err := root.Find(argv[1:]); err == nil && c != root {
			name = c.CommandPath()
		}
	}
	return fmt.Sprintf("`%s` (pid %d)", name, pid)
}

// parseFolderArg reads a RELAY/FOLDER argument.
func parseFolderArg(s string) (store.FolderID, error) {
	f, err := store.ParseFolderID(strings.ToLower(s))
	if err != nil {
		return store.FolderID{}, fmt.Errorf("%q is not RELAY_ID/FOLDER_ID (two UUIDs separated by a slash)", s)
	}
	return f, nil
}

// natsBacked is a NATS store opened for one command: closing it closes
// its connection too.
type natsBacked struct {
	*natsstore.Store
	nc *nats.Conn
}

func (s *natsBacked) Close() error {
	err := s.Store.Close()
	s.nc.Close()
	return err
}

// openNATS opens the NATS store of --store for one command: a replica in
// memory, caught up with the cluster (which serve instances may be
// writing meanwhile). A cluster without a store is an error.
func (o *globalOptions) openNATS(ctx context.Context) (store.Backend, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	nc, err := natsstore.Connect(o.Store, o.getenv, o.Logger)
	if err != nil {
		return nil, err
	}
	ns, err := natsstore.Open(ctx, nc, natsstore.Options{Logger: o.Logger, Existing: true})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("opening the NATS store at %s: %w", natsstore.Redact(o.Store), err)
	}
	return &natsBacked{Store: ns, nc: nc}, nil
}

// storeName names the store commands read without --server, for messages.
func (o *globalOptions) storeName() string {
	if o.Store != "" {
		return "the NATS store at " + natsstore.Redact(o.Store)
	}
	return "data dir " + o.DataDir
}
