package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
)

// Serve refuses what it cannot run safely with before anything exists in
// the data dir.
func TestServeRefusesBadConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  ServeConfig
		want string
	}{
		"no secret":         {ServeConfig{}, "--insecure-no-webhook-auth"},
		"white space only":  {ServeConfig{WebhookSecret: " \t "}, "only white space"},
		"negative interval": {ServeConfig{WebhookSecret: "a-long-enough-secret", CommitInterval: -1}, "--commit-interval"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			tc.cfg.DataDir, tc.cfg.RelayServerURL = dir, "http://127.0.0.1:1"
			err := Serve(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Serve: %v, want an error naming %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data dir was created before refusing: %v", err)
			}
		})
	}
}

func TestServeWarnings(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  ServeConfig
		want []string
	}{
		"short secret":       {ServeConfig{WebhookSecret: "x", Config: Config{RelayServerAPIKey: "k"}}, []string{"only 1 characters"}},
		"short whsec key":    {ServeConfig{WebhookSecret: "whsec_abcd", Config: Config{RelayServerAPIKey: "k"}}, []string{"only 4 characters"}},
		"empty relay key":    {ServeConfig{WebhookSecret: "0123456789abcdef"}, []string{"RELAY_SERVER_API_KEY is empty"}},
		"insecure":           {ServeConfig{InsecureNoAuth: true, Config: Config{RelayServerAPIKey: "k"}}, []string{"DISABLED"}},
		"good configuration": {ServeConfig{WebhookSecret: "0123456789abcdef", Config: Config{RelayServerAPIKey: "k"}}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			got := tc.cfg.warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q lacks %q", got[i], w)
				}
			}
		})
	}
}

// Sync reports each folder, records it in the store, and syncs every known
// folder of the relay when none is named.
func TestSync(t *testing.T) {
	srv := relaytest.NewServer(relaytest.Options{APIKey: "k"})
	defer srv.Close()
	f := srv.NewFolder(srv.NewRelay())
	if _, err := f.AddMarkdown("/a.md", "a\n"); err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: t.TempDir(), RelayServerURL: srv.URL(), RelayServerAPIKey: "k", Getenv: func(string) string { return "" }}
	cfg.ConnectorsFile = filepath.Join(cfg.DataDir, "git_connectors.toml")

	// No folder known yet.
	err := Sync(context.Background(), SyncConfig{Config: cfg, Relay: f.RelayID()})
	if err == nil || !strings.Contains(err.Error(), "no known folders") {
		t.Fatalf("sync of a relay with no known folder: %v", err)
	}
	var reports []FolderReport
	report := func(r FolderReport) { reports = append(reports, r) }
	if err := Sync(context.Background(), SyncConfig{Config: cfg, Relay: f.RelayID(), Folder: f.ID(), Report: report}); err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].Err != nil || reports[0].Result.Snapshot == nil || reports[0].Result.Snapshot.Seq != 1 {
		t.Fatalf("first sync: %+v", reports)
	}
	// The folder is known now: a sync of the relay finds it, unchanged.
	reports = nil
	if err := Sync(context.Background(), SyncConfig{Config: cfg, Relay: f.RelayID(), Report: report}); err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].Folder.Folder != f.ID() || reports[0].Result.Snapshot != nil {
		t.Fatalf("second sync: %+v", reports)
	}
	// A folder the Relay Server does not have fails, and says so.
	reports = nil
	other := "00000000-0000-4000-8000-000000000000"
	err = Sync(context.Background(), SyncConfig{Config: cfg, Relay: f.RelayID(), Folder: other, Report: report})
	if err == nil || !strings.Contains(err.Error(), "1 of 1 folders not fully synced") || len(reports) != 1 || reports[0].Err == nil {
		t.Fatalf("sync of an unknown folder: %v, %+v", err, reports)
	}
}
