package connectors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `# comment
[[git_connector]]
shared_folder_id = "F47AC10B-58CC-4372-A567-0E02B2C3D479"
relay_id         = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
url              = "git@github.com:example/repo.git"
prefix           = "docs/"

[[git_connector]]
shared_folder_id = "another-folder"
relay_id         = "another-relay-uuid-here-12345678"
url              = ""

[[git_connector]]
shared_folder_id = "a47ac10b-58cc-4372-a567-0e02b2c3d479"
relay_id         = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
url              = "/srv/backup.git"
branch           = "notes"
prefix           = "../escape"
`

func TestParse(t *testing.T) {
	cs, problems, err := Parse("git_connectors.toml", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("%d connectors: %+v", len(cs), cs)
	}
	c := cs[0]
	if c.SharedFolderID != "f47ac10b-58cc-4372-a567-0e02b2c3d479" || c.Branch != "main" || c.RemoteName != "origin" || c.Prefix != "docs" || c.Line != 2 {
		t.Errorf("connector %+v", c)
	}
	var msgs []string
	for _, p := range problems {
		msgs = append(msgs, p.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{
		"git_connectors.toml:11: connector 2: url must not be empty",
		`git_connectors.toml:10: connector 2: relay_id "another-relay-uuid-here-12345678" is not a UUID`,
		"git_connectors.toml:18: connector 3: prefix:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

func TestLoadMissingAndBroken(t *testing.T) {
	dir := t.TempDir()
	cs, problems, err := Load(filepath.Join(dir, "none.toml"))
	if cs != nil || problems != nil || err != nil {
		t.Errorf("missing file: %v %v %v", cs, problems, err)
	}
	p := filepath.Join(dir, "bad.toml")
	os.WriteFile(p, []byte("[[git_connector]]\nrelay_id = \n"), 0o644)
	if _, _, err := Load(p); err == nil || !strings.Contains(err.Error(), "bad.toml:2") {
		t.Errorf("broken TOML: %v", err)
	}
	os.WriteFile(p, []byte("git_connector = \"x\"\n"), 0o644)
	if _, _, err := Load(p); err == nil {
		t.Errorf("git_connector not an array accepted")
	}
}
