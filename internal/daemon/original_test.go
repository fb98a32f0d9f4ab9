package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNoteOriginalLayout(t *testing.T) {
	for name, tc := range map[string]struct {
		dirs  []string
		files []string
		want  string // "" = no note
	}{
		"fresh data dir":           {nil, nil, ""},
		"this program's own":       {[]string{"db", "mirrors"}, []string{"git_connectors.toml"}, ""},
		"only an ssh dir":          {[]string{"ssh"}, nil, ""},
		"state as a file":          {nil, []string{"state"}, ""},
		"the original's layout":    {[]string{"state/6ba7b810-9dad-11d1-80b4-00c04fd430c8", "repos/6ba7b810-9dad-11d1-80b4-00c04fd430c8", "ssh"}, []string{"git_connectors.toml"}, `found="[state/ repos/ ssh/]"`},
		"repos left without state": {[]string{"repos"}, nil, "found=[repos/]"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range tc.dirs {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			noteOriginalLayout(slog.New(slog.NewTextHandler(&buf, nil)), dir)
			out := buf.String()
			if tc.want == "" {
				if out != "" {
					t.Errorf("logged %q, want nothing", out)
				}
				return
			}
			for _, want := range []string{"level=INFO", "Python relay-git-sync", "docs/migrating.md", "data_dir=" + dir, tc.want} {
				if !strings.Contains(out, want) {
					t.Errorf("log %q lacks %q", out, want)
				}
			}
		})
	}
}
