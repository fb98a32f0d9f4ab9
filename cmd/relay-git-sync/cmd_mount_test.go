package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/relay-git-sync/relay-git-sync/internal/natsstore"
	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/storecopy"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
	"github.com/relay-git-sync/relay-git-sync/server"
)

const (
	mountTestFolder = "6ba7b810-9dad-11d1-80b4-00c04fd430c8/f47ac10b-58cc-4372-a567-0e02b2c3d479"
	mountTestToken  = "read-token"
)

// mountTestStore creates a data dir whose store has one snapshot of
// mountTestFolder ("a.md" = "hello\n") and returns it still open.
func mountTestStore(t *testing.T) (dataDir string, st *store.Store) {
	t.Helper()
	dataDir = t.TempDir()
	st, err := store.Open(filepath.Join(dataDir, storeDirName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := store.ParseFolderID(mountTestFolder)
	data := []byte("hello\n")
	id, err := st.PutBlob(data, store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	snap := &store.Snapshot{Folder: f, Time: time.Date(2026, 1, 31, 18, 0, 0, 0, time.UTC),
		Changes: []store.Change{{Kind: store.ChangeAdded, Path: "a.md", DocID: "d1"}},
		Files:   []store.File{{Path: "a.md", Blob: id, Size: int64(len(data)), DocID: "d1", Kind: "markdown"}}}
	if _, err := st.AddSnapshot(snap, nil, nil); err != nil {
		t.Fatal(err)
	}
	return dataDir, st
}

type mountNopSink struct{}

func (mountNopSink) Enqueue(context.Context, server.Event) (bool, error) { return false, nil }

// mountTestServer serves st's read API as `serve` does.
func mountTestServer(t *testing.T, st *store.Store) string {
	t.Helper()
	h, err := server.New(server.Config{InsecureNoAuth: true, APIToken: mountTestToken, Events: mountNopSink{}, Source: source.FromStore(st)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestMountArgumentErrors(t *testing.T) {
	dataDir, st := mountTestStore(t)
	url := mountTestServer(t, st)
	dead := httptest.NewServer(nil)
	deadURL := dead.URL
	dead.Close()

	empty := t.TempDir()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	noStore := t.TempDir()
	unknown := "6ba7b810-9dad-11d1-80b4-00c04fd430c8/00000000-0000-4000-8000-000000000001"

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no arguments", nil, []string{"mount"}, "accepts 2 arg(s)"},
		{"one argument", nil, []string{"mount", mountTestFolder}, "accepts 2 arg(s)"},
		{"bad folder", nil, []string{"mount", "notes", empty}, "is not RELAY_ID/FOLDER_ID"},
		{"background", nil, []string{"mount", "--foreground=false", mountTestFolder, empty}, "always runs in the foreground"},
		{"poll interval", nil, []string{"mount", "--poll-interval", "0s", mountTestFolder, empty}, "--poll-interval 0s: must be positive"},
		{"bad poll interval", nil, []string{"mount", "--poll-interval", "soon", mountTestFolder, empty}, "invalid argument"},
		{"empty time template", nil, []string{"mount", "--time-template", "", mountTestFolder, empty}, "--time-template must not be empty"},
		{"missing mountpoint", nil, []string{"mount", mountTestFolder, filepath.Join(empty, "nope")}, "does not exist: create it first"},
		{"mountpoint is a file", nil, []string{"mount", mountTestFolder, file}, "is not a directory"},
		{"mountpoint not empty", nil, []string{"mount", mountTestFolder, full}, "is not empty"},
		{"mountpoint busy", nil, []string{"mount", mountTestFolder, "/proc"}, "is busy"},
		{"bad server URL", nil, []string{"mount", "--server", "localhost:8000", mountTestFolder, empty}, "invalid server URL"},
		{"server down", nil, []string{"mount", "--server", deadURL, mountTestFolder, empty}, "is `relay-git-sync serve` running at " + deadURL},
		{"server from env", map[string]string{envReadURL: deadURL}, []string{"mount", mountTestFolder, empty}, "is `relay-git-sync serve` running at " + deadURL},
		{"no token", nil, []string{"mount", "--server", url, mountTestFolder, empty}, "no token given: set RELAY_GIT_TOKEN"},
		{"wrong token", map[string]string{envReadToken: "nope"}, []string{"mount", "--server", url, mountTestFolder, empty}, "token rejected"},
		{"unknown folder", map[string]string{envReadToken: mountTestToken}, []string{"mount", "--server", url, unknown, empty}, "not found on " + url},
		{"data dir held by serve", nil, []string{"--data-dir", dataDir, "mount", mountTestFolder, empty}, "is in use by"},
		{"data dir without store", nil, []string{"--data-dir", noStore, "mount", mountTestFolder, empty}, "no snapshot store at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := execute(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
	// Nothing was mounted or left behind.
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("mountpoint touched: %v", ents)
	}
}

// lockedBuffer is a bytes.Buffer safe for a running command and a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runMount runs the mount command until the returned stop function
// cancels it (as Ctrl-C does), then returns its error.
func runMount(t *testing.T, env map[string]string, mnt string, args ...string) (stop func() error, stderr *lockedBuffer) {
	t.Helper()
	stderr = &lockedBuffer{}
	opts := newGlobalOptions(func(k string) string { return env[k] }, &lockedBuffer{}, stderr)
	root := newRootCmd(opts)
	root.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- root.ExecuteContext(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(20 * time.Second):
				t.Fatal("mount did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	// Wait until it is mounted (or failed).
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "Mounted ") {
		select {
		case err := <-errc:
			t.Fatalf("mount failed: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted after 20s:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stop, stderr
}

func TestMountCommand(t *testing.T) {
	testreq.FUSE(t)
	dataDir, st := mountTestStore(t)
	url := mountTestServer(t, st)

	check := func(t *testing.T, mnt string, stop func() error, stderr *lockedBuffer) {
		got, err := os.ReadFile(filepath.Join(mnt, "a.md"))
		if err != nil || string(got) != "hello\n" {
			t.Errorf("a.md: %q %v", got, err)
		}
		if l, err := os.Readlink(filepath.Join(mnt, ".snapshots", "latest")); err != nil || l != "2026-01-31T18:00:00Z" {
			t.Errorf("latest: %q %v", l, err)
		}
		if err := stop(); err != nil {
			t.Errorf("mount returned %v after Ctrl-C", err)
		}
		if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 0 {
			t.Errorf("after Ctrl-C the mountpoint shows %v, %v; want it unmounted and empty", ents, err)
		}
		if !strings.Contains(stderr.String(), "Unmounted "+mnt) {
			t.Errorf("stderr:\n%s", stderr.String())
		}
	}

	t.Run("server", func(t *testing.T) {
		mnt := t.TempDir()
		stop, stderr := runMount(t, map[string]string{envReadURL: url, envReadToken: mountTestToken}, mnt, "mount", mountTestFolder, mnt)
		if !strings.Contains(stderr.String(), "from "+url) {
			t.Errorf("stderr:\n%s", stderr.String())
		}
		check(t, mnt, stop, stderr)
	})

	t.Run("nats store", func(t *testing.T) {
		url := natstest.Start(t).URL()
		nc, err := nats.Connect(url)
		must(t, err)
		defer nc.Close()
		ns, err := natsstore.Open(context.Background(), nc, natsstore.Options{})
		must(t, err)
		_, err = storecopy.Copy(context.Background(), st, ns, nil)
		must(t, err)
		must(t, ns.Close())
		mnt := t.TempDir()
		stop, stderr := runMount(t, map[string]string{envStore: url}, mnt, "mount", "--time-template", "2006-01-02T15:04:05Z07:00", mountTestFolder, mnt)
		if !strings.Contains(stderr.String(), "the NATS store at "+url) {
			t.Errorf("stderr:\n%s", stderr.String())
		}
		check(t, mnt, stop, stderr)
	})

	t.Run("data dir", func(t *testing.T) {
		if err := st.Close(); err != nil { // as if serve had stopped
			t.Fatal(err)
		}
		mnt := t.TempDir()
		stop, stderr := runMount(t, nil, mnt, "--data-dir", dataDir, "mount", "--time-template", "2006-01-02T15:04:05Z07:00", mountTestFolder, mnt)
		check(t, mnt, stop, stderr)
	})
}
