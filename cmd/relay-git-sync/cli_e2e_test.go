package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
)

// TestSyncSnapshotsExport drives the one-shot commands as a newcomer would:
// sync a folder from a Relay Server, list its snapshots, export them.
func TestSyncSnapshotsExport(t *testing.T) {
	srv := relaytest.NewServer(relaytest.Options{APIKey: "k"})
	defer srv.Close()
	f := srv.NewFolder(srv.NewRelay())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.AddMarkdown("/notes/plan.md", "# Plan\nÜber 😀\n")
	must(err)
	_, err = f.AddFile("/img/logo.png", "image", "image/png", []byte("\x89PNG\x00\x01"))
	must(err)
	dataDir := t.TempDir()
	env := map[string]string{"RELAY_SERVER_URL": srv.URL(), "RELAY_SERVER_API_KEY": "k", "RELAY_GIT_DATA_DIR": dataDir}
	folderArg := f.RelayID() + "/" + f.ID()

	_, out, _, err := execute(t, env, "sync", "--relay-id", f.RelayID(), "--folder-id", f.ID())
	must(err)
	if !strings.Contains(out, "snapshot 1") || !strings.Contains(out, "added    notes/plan.md") {
		t.Errorf("sync output:\n%s", out)
	}
	// A second sync finds nothing; then an edit and a rename.
	_, out, _, err = execute(t, env, "sync", "--relay-id", f.RelayID(), "--folder-id", f.ID())
	must(err)
	if !strings.Contains(out, "no changes") {
		t.Errorf("second sync output:\n%s", out)
	}
	must(f.EditMarkdown("/notes/plan.md", "# Plan v2\n"))
	must(f.Rename("/img/logo.png", "/img/brand.png"))
	// Without --folder-id, every known folder of the relay is synced.
	_, out, _, err = execute(t, env, "sync", "--relay-id", f.RelayID())
	must(err)
	if !strings.Contains(out, "snapshot 2") || !strings.Contains(out, "renamed  img/logo.png -> img/brand.png") {
		t.Errorf("third sync output:\n%s", out)
	}

	_, out, _, err = execute(t, env, "snapshots", folderArg)
	must(err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "2 ") || !strings.HasPrefix(lines[2], "1 ") {
		t.Errorf("snapshots (newest first):\n%s", out)
	}
	_, out, _, err = execute(t, env, "snapshots", folderArg, "--json")
	must(err)
	var snaps []struct {
		Seq     int
		Time    string
		Files   int
		Changes []struct{ Kind, Path, OldPath string }
	}
	must(json.Unmarshal([]byte(out), &snaps))
	if len(snaps) != 2 || snaps[0].Seq != 2 || snaps[0].Files != 2 || len(snaps[0].Changes) != 2 {
		t.Errorf("snapshots --json: %s", out)
	}

	outDir := t.TempDir()
	want1 := map[string]string{"notes/plan.md": "# Plan\nÜber 😀\n", "img/logo.png": "\x89PNG\x00\x01"}
	want2 := map[string]string{"notes/plan.md": "# Plan v2\n", "img/brand.png": "\x89PNG\x00\x01"}
	for _, c := range []struct {
		name string
		args []string
		want map[string]string
	}{
		{"latest", nil, want2},
		{"first.tar", []string{"--snapshot", "1"}, want1},
		{"first.tar.gz", []string{"--at", snaps[1].Time}, want1},
		{"latest.zip", []string{"--at", "2999-01-01T00:00:00Z"}, want2},
	} {
		p := filepath.Join(outDir, c.name)
		_, _, _, err := execute(t, env, append([]string{"export", folderArg, "--output", p}, c.args...)...)
		must(err)
		if got := readExport(t, p); !equalMaps(got, c.want) {
			t.Errorf("export %s = %v, want %v", c.name, got, c.want)
		}
	}
	// Errors a user can act on, and nothing left behind.
	for _, args := range [][]string{
		{"export", folderArg, "--output", filepath.Join(outDir, "latest")},                 // exists
		{"export", folderArg, "--output", filepath.Join(outDir, "x"), "--snapshot", "9"},   // no such snapshot
		{"export", folderArg, "--output", filepath.Join(outDir, "y"), "--at", "yesterday"}, // bad time
		{"export", "not-a-folder", "--output", filepath.Join(outDir, "z")},
		{"sync", "--relay-id", "nope"},
	} {
		if _, _, _, err := execute(t, env, args...); err == nil {
			t.Errorf("%v: no error", args)
		} else {
			t.Logf("%v: %v", args, err)
		}
	}
	entries, _ := os.ReadDir(outDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "first.tar,first.tar.gz,latest,latest.zip" {
		t.Errorf("output dir holds %v", names)
	}
}

func TestSyncUnreachableServer(t *testing.T) {
	env := map[string]string{"RELAY_SERVER_URL": "http://127.0.0.1:1", "RELAY_GIT_DATA_DIR": t.TempDir()}
	_, out, _, err := execute(t, env, "sync", "--relay-id", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "--folder-id", "f47ac10b-58cc-4372-a567-0e02b2c3d479")
	if err == nil || !strings.Contains(out, "failed") {
		t.Fatalf("err %v, output %q", err, out)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func readExport(t *testing.T, p string) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch {
	case strings.HasSuffix(p, ".zip"):
		zr, err := zip.OpenReader(p)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			out[f.Name] = string(b)
		}
	case strings.HasSuffix(p, ".tar"), strings.HasSuffix(p, ".tar.gz"):
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = bytes.NewReader(raw)
		if strings.HasSuffix(p, ".gz") {
			if r, err = gzip.NewReader(r); err != nil {
				t.Fatal(err)
			}
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				out[h.Name] = string(b)
			}
		}
	default:
		filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(path)
				rel, _ := filepath.Rel(p, path)
				out[filepath.ToSlash(rel)] = string(b)
			}
			return nil
		})
	}
	return out
}
