package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
)

// A data dir copied to a NATS cluster (store copy) reads the same through
// every reader given --store (snapshots, export, check, backup), and copied back
// to a data dir clones with the same commit ids. Mistakes are refused
// before anything is written.
func TestStoreCopyAndReadersOnNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs nats-server (skipped with -short)")
	}
	bt := newBinTool(t)
	cluster := natstest.Start(t)
	url := cluster.URL()
	srv := relaytest.NewServer(relaytest.Options{APIKey: fakeRelayKey})
	defer srv.Close()
	f := srv.NewFolder(srv.NewRelay())
	_, err := f.AddMarkdown("/notes/plan.md", "# Plan\n")
	must(t, err)
	_, err = f.AddFile("/img/logo.png", "image", "image/png", []byte("\x89PNG\x00\x01"))
	must(t, err)
	dataDir := t.TempDir()
	relayEnv := []string{"RELAY_SERVER_URL=" + srv.URL(), "RELAY_SERVER_API_KEY=" + fakeRelayKey}
	folderArg := f.RelayID() + "/" + f.ID()
	syncArgs := []string{"--data-dir", dataDir, "sync", "--relay-id", f.RelayID(), "--folder-id", f.ID()}
	bt.ok(relayEnv, "relay-git-sync", syncArgs...)
	must(t, f.EditMarkdown("/notes/plan.md", "# Plan v2\n"))
	must(t, f.Rename("/img/logo.png", "/img/brand.png"))
	bt.ok(relayEnv, "relay-git-sync", syncArgs...)

	// Readers refuse a cluster without a store, and a URL that is not NATS.
	if e := bt.fails(nil, "relay-git-sync", "--store", url, "snapshots", folderArg); !strings.Contains(e, "holds no relay-git-sync store") {
		t.Errorf("snapshots on an empty cluster: %s", e)
	}
	if e := bt.fails(nil, "relay-git-sync", "--store", "http://127.0.0.1:1", "snapshots", folderArg); !strings.Contains(e, "not a NATS URL") {
		t.Errorf("snapshots with an HTTP --store: %s", e)
	}

	out := bt.ok(nil, "relay-git-sync", "store", "copy", "--from", dataDir, "--to", url)
	if !strings.Contains(out, "copied 1 folders, 2 snapshots") {
		t.Errorf("store copy: %s", out)
	}
	if e := bt.fails(nil, "relay-git-sync", "store", "copy", "--from", dataDir, "--to", url); !strings.Contains(e, "already holds 1 folder") {
		t.Errorf("a second copy into the cluster: %s", e)
	}

	// Every reader gives on the cluster what it gives on the data dir.
	for _, args := range [][]string{
		{"snapshots", folderArg},
		{"snapshots", folderArg, "--json"},
	} {
		want := bt.ok(nil, "relay-git-sync", append([]string{"--data-dir", dataDir}, args...)...)
		got := bt.ok(nil, "relay-git-sync", append([]string{"--store", url}, args...)...)
		if got != want || want == "" {
			t.Errorf("%v on the cluster:\n%s\non the data dir:\n%s", args, got, want)
		}
	}
	outDir := t.TempDir()
	for _, at := range []string{"1", "2"} {
		a, b := filepath.Join(outDir, "dir-"+at+".tar"), filepath.Join(outDir, "nats-"+at+".tar")
		bt.ok(nil, "relay-git-sync", "--data-dir", dataDir, "export", folderArg, "--snapshot", at, "--output", a)
		bt.ok([]string{"RELAY_GIT_STORE=" + url}, "relay-git-sync", "export", folderArg, "--snapshot", at, "--output", b)
		if !sameFile(t, a, b) {
			t.Errorf("export of snapshot %s differs between the data dir and the cluster", at)
		}
	}
	if out := bt.ok(nil, "relay-git-sync", "--store", url, "check", "--read-data"); !strings.Contains(out, "checking the NATS store at "+url) || !strings.Contains(out, "2 snapshots") || !strings.Contains(out, "no errors were found") {
		t.Errorf("check on the cluster: %s", out)
	}

	// And back: a data dir that clones with the same commit ids.
	back := t.TempDir()
	must(t, os.Remove(back))
	bt.ok(nil, "relay-git-sync", "store", "copy", "--from", url, "--to", back)
	if e := bt.fails(nil, "relay-git-sync", "store", "copy", "--from", url, "--to", back); !strings.Contains(e, "already has a store") {
		t.Errorf("a copy into a data dir with a store: %s", e)
	}
	want := bt.commits(nil, "relay::"+dataDir+"/"+folderArg)
	got := bt.commits(nil, "relay::"+back+"/"+folderArg)
	if !slices.Equal(got, want) || len(want) != 2 {
		t.Errorf("commits after the round trip %v, want %v", got, want)
	}

	// A backup of the cluster restores into a data dir with the same ids.
	backup := filepath.Join(t.TempDir(), "nats.backup")
	bt.ok(nil, "relay-git-sync", "--store", url, "backup", "--output", backup)
	restored := filepath.Join(t.TempDir(), "restored")
	bt.ok(nil, "relay-git-sync", "--data-dir", restored, "restore-backup", backup)
	if got := bt.commits(nil, "relay::"+restored+"/"+folderArg); !slices.Equal(got, want) {
		t.Errorf("commits of the cluster's backup %v, want %v", got, want)
	}
}
