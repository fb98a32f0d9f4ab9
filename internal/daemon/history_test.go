package daemon

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

func TestHistoryConfigFromEnvAndAuthors(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GIT_AUTHOR_NAME": "Notes Bot", "GIT_AUTHOR_EMAIL": "bot@example.com"}
	getenv := func(k string) string { return env[k] }

	cfg, err := HistoryConfig(getenv, dir, "")
	want := history.Config{Author: history.Identity{Name: "Notes Bot", Email: "bot@example.com"},
		Committer: history.Identity{Name: "Notes Bot", Email: "bot@example.com"}}
	if err != nil || !reflect.DeepEqual(cfg, want) {
		t.Fatalf("without authors file: %+v, %v", cfg, err)
	}
	// <data-dir>/authors.toml is read when present.
	if err := os.WriteFile(filepath.Join(dir, "authors.toml"), []byte("[\"u-1\"]\nname = \"Ada\"\nemail = \"ada@example.com\"\n\n[u-2]\nname = \"Bob\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = HistoryConfig(getenv, dir, "")
	want.Authors = map[string]history.Identity{"u-1": {Name: "Ada", Email: "ada@example.com"}, "u-2": {Name: "Bob"}}
	if err != nil || !reflect.DeepEqual(cfg, want) {
		t.Fatalf("with authors.toml: %+v, %v", cfg, err)
	}
	// An explicit file must exist, and mistakes are reported with where.
	if _, err := HistoryConfig(getenv, dir, filepath.Join(dir, "nope.toml")); err == nil {
		t.Error("a missing --authors-file was accepted")
	}
	for content, msg := range map[string]string{
		"[u]\nname = \"A\"\nmail = \"x\"\n": "unknown key",
		"[u]\n":                             "both empty",
		"[u\n":                              "line 1",
	} {
		p := filepath.Join(dir, "bad.toml")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := HistoryConfig(getenv, dir, p); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", content, err, msg)
		}
	}
}

func TestRecordHistoryConfig(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a := history.Config{Author: history.Identity{Name: "A", Email: "a@example.com"}}
	for range 2 {
		if err := RecordHistoryConfig(st, a, log); err != nil {
			t.Fatal(err)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("warned without a change: %s", logs.String())
	}
	if err := RecordHistoryConfig(st, history.Config{}, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "history config changed") {
		t.Errorf("no warning for a change: %q", logs.String())
	}
	raw, err := st.HistoryConfig()
	var got history.Config
	if err != nil || json.Unmarshal(raw, &got) != nil || !reflect.DeepEqual(got, history.Config{}) {
		t.Errorf("recorded %s, %v", raw, err)
	}
}
