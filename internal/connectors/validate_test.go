package connectors

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestClassifyURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		kind URLKind
	}{
		{"git@github.com:example/repo.git", URLSSH},
		{"github.com:example/repo.git", URLSSH},
		{"deploy@[::1]:repo.git", URLSSH},
		{"ssh://git@example.com:2222/x/y.git", URLSSH},
		{"ssh://example.com/x.git", URLSSH},
		{"https://github.com/example/repo.git", URLHTTPS},
		{"http://127.0.0.1:8080/repo.git", URLHTTP},
		{"file:///srv/backup.git", URLFile},
		{"/srv/backup.git", URLFile},
		{"", URLInvalid},
		{" git@github.com:x.git", URLInvalid},
		{"backup.git", URLInvalid},
		{"./backup.git", URLInvalid},
		{"file://host/srv/x.git", URLInvalid},
		{"file:relative", URLSSH}, // scp-like host "file" (git reads it the same way)
		{"git://example.com/x.git", URLInvalid},
		{"ftp://example.com/x.git", URLInvalid},
		{"git@github.com:", URLInvalid},
		{"ssh://git:secret@example.com/x.git", URLInvalid},
	} {
		got, err := ClassifyURL(tc.url)
		if got != tc.kind {
			t.Errorf("ClassifyURL(%q) = %v, %v; want %v", tc.url, got, err, tc.kind)
		}
		if (got == URLInvalid) != (err != nil) {
			t.Errorf("ClassifyURL(%q): kind %v with error %v", tc.url, got, err)
		}
	}
}

func TestCheckBranch(t *testing.T) {
	for _, ok := range []string{"main", "relay/notes", "feature-1", "v1.2", "ünïcode"} {
		if err := CheckBranch(ok); err != nil {
			t.Errorf("CheckBranch(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a..b", "a b", "a~1", "x^", "a:b", "a?", "a*", "a[", `a\b`, "/a", "a/", "a.", "a//b",
		".hidden", "a/.b", "x.lock", "a/b.lock/c", "@", "a@{b", "refs/heads/main", "tab\tx"} {
		if err := CheckBranch(bad); err == nil {
			t.Errorf("CheckBranch(%q) accepted", bad)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:tok3n@github.com/x.git": "https://user:***@github.com/x.git",
		"https://tok3n@github.com/x.git":      "https://tok3n@github.com/x.git", // a user name only
		"https://github.com/x@y.git":          "https://github.com/x@y.git",
		"git@github.com:x.git":                "git@github.com:x.git",
		"http://a:b:c@h/p?q=1":                "http://a:***@h/p?q=1",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	goodKH := filepath.Join(dir, "kh")
	os.WriteFile(goodKH, []byte("# c\n[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o644)
	badKH := filepath.Join(dir, "bad")
	os.WriteFile(badKH, []byte("not a known hosts line\n"), 0o644)
	const r, f1, f2 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "f47ac10b-58cc-4372-a567-0e02b2c3d479", "a47ac10b-58cc-4372-a567-0e02b2c3d479"
	file := `[[git_connector]]
relay_id = "` + r + `"
shared_folder_id = "` + f1 + `"
url = "git@github.com:example/repo.git"
prefix = "docs"
known_hosts = "` + goodKH + `"

[[git_connector]]
relay_id = "` + r + `"
shared_folder_id = "` + f1 + `"
url = "git@github.com:example/repo.git"
prefix = "docs"

[[git_connector]]
relay_id = "` + r + `"
shared_folder_id = "` + f2 + `"
url = "git@github.com:example/repo"
prefix = "docs/sub"
perfix = "oops"

[[git_connector]]
relay_id = "` + r + `"
shared_folder_id = "` + f2 + `"
url = "https://bob:hunter2@example.com/x.git"
branch = "bad..branch"
remote_name = "my remote"
known_hosts = "` + badKH + `"

[[git_connector]]
relay_id = "` + r + `"
shared_folder_id = "` + f2 + `"
url = "backup.git"

[[git_connector]]
relay_id = "` + r + `"
shared_folder_id = "` + f2 + `"
url = "/srv/other.git"
known_hosts = "` + filepath.Join(dir, "missing") + `"
`
	cs, problems, err := Parse("c.toml", []byte(file))
	if err != nil || len(problems) != 0 || len(cs) != 6 {
		t.Fatalf("Parse: %d connectors, %v, %v", len(cs), problems, err)
	}
	var msgs []string
	for _, p := range Validate("c.toml", cs) {
		msgs = append(msgs, p.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{
		"c.toml:11: connector 2: duplicate of connector 1 (line 1)",
		`c.toml:19: connector 3: unknown key "perfix"`,
		`c.toml:18: connector 3: writes the same paths as connector 1 (line 1): same url and branch, prefixes "docs" and "docs/sub" overlap`,
		`c.toml:24: connector 4: url "https://bob:***@example.com/x.git" holds a password or token`,
		`c.toml:25: connector 4: branch "bad..branch" is not a valid branch name`,
		`c.toml:26: connector 4: remote_name "my remote"`,
		`c.toml:27: connector 4: known_hosts is only used for SSH urls (this url is https)`,
		`c.toml:27: connector 4: known_hosts "` + badKH + `": line 1:`,
		`c.toml:32: connector 5: url "backup.git": neither a URL`,
		`c.toml:38: connector 6: known_hosts is only used for SSH urls (this url is file)`,
		`c.toml:38: connector 6: known_hosts "` + filepath.Join(dir, "missing") + `": open`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q", want)
		}
	}
	if strings.Contains(got, "hunter2") {
		t.Errorf("a password leaked into the problems:\n%s", got)
	}
	if n := len(msgs); n != 11 {
		t.Errorf("%d problems, want 11:\n%s", n, got)
	}
}

var entryLine = regexp.MustCompile(`^# (\[\[|[a-z_]+ +=)`)

func TestExampleValidates(t *testing.T) {
	cs, problems, err := Parse("example", []byte(Example))
	if err != nil || len(problems) != 0 {
		t.Fatalf("example: %v %v", problems, err)
	}
	if len(cs) != 1 || cs[0].Prefix != "notes" || cs[0].Branch != "main" {
		t.Fatalf("example connectors: %+v", cs)
	}
	if ps := Validate("example", cs); len(ps) != 0 {
		t.Errorf("example has problems: %v", ps)
	}
	// Left as it is, its placeholders are pointed out, on their lines.
	var got []string
	for _, p := range Warnings("example", cs) {
		if !p.Warning {
			t.Errorf("not a warning: %v", p)
		}
		got = append(got, p.Error())
	}
	lines := strings.Split(Example, "\n")
	lineOf := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i + 1
			}
		}
		t.Fatalf("example has no line %q", prefix)
		return 0
	}
	want := []string{
		fmt.Sprintf("example:%d: warning: connector 1: relay_id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\" is the example from `connectors init`: put your relay's id here", lineOf("relay_id")),
		fmt.Sprintf("example:%d: warning: connector 1: shared_folder_id \"f47ac10b-58cc-4372-a567-0e02b2c3d479\" is the example from `connectors init`: put the id of your shared folder here", lineOf("shared_folder_id")),
		fmt.Sprintf("example:%d: warning: connector 1: url \"git@github.com:example/notes.git\" is the example from `connectors init`: put your repository's url here", lineOf("url")),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The commented entries are valid too once uncommented.
	var b strings.Builder
	for _, l := range strings.Split(Example, "\n") {
		if entryLine.MatchString(l) {
			l = strings.TrimPrefix(l, "# ")
		}
		b.WriteString(l + "\n")
	}
	cs, problems, err = Parse("example", []byte(b.String()))
	if err != nil || len(problems) != 0 || len(cs) != 4 {
		t.Fatalf("uncommented example: %d connectors, %v %v", len(cs), problems, err)
	}
	for _, p := range Validate("example", cs) {
		// The example's known_hosts file does not exist here.
		if !strings.Contains(p.Msg, `known_hosts "/data/known_hosts.example": open`) {
			t.Errorf("uncommented example: %v", p)
		}
	}
	// Every entry's ids and url are placeholders.
	if ws := Warnings("example", cs); len(ws) != 4*3 {
		t.Errorf("uncommented example: %d warnings, want 12: %v", len(ws), ws)
	}
}

func TestWarnings(t *testing.T) {
	file := `[[git_connector]]
relay_id = "6BA7B810-9DAD-11D1-80B4-00C04FD430C8"
shared_folder_id = "0b9d0ee4-5c43-4a6b-9f3e-2f4a8f6c1e01"
url = "https://user:tok@git.example.com/x.git"

[[git_connector]]
relay_id = "1d4b7c2e-8f0a-4e55-b6a1-7c3e9d2f4a10"
shared_folder_id = "0b9d0ee4-5c43-4a6b-9f3e-2f4a8f6c1e01"
url = "deploy@EXAMPLE.ORG.:notes.git"

[[git_connector]]
relay_id = "1d4b7c2e-8f0a-4e55-b6a1-7c3e9d2f4a10"
shared_folder_id = "0b9d0ee4-5c43-4a6b-9f3e-2f4a8f6c1e01"
url = "ssh://git@host.invalid/x.git"
prefix = "a"

[[git_connector]]
relay_id = "1d4b7c2e-8f0a-4e55-b6a1-7c3e9d2f4a10"
shared_folder_id = "0b9d0ee4-5c43-4a6b-9f3e-2f4a8f6c1e01"
url = "git@github.com:someone/example.com.git"
prefix = "b"

[[git_connector]]
relay_id = "1d4b7c2e-8f0a-4e55-b6a1-7c3e9d2f4a10"
shared_folder_id = "0b9d0ee4-5c43-4a6b-9f3e-2f4a8f6c1e01"
url = "/srv/example.com/notes.git"
prefix = "c"
`
	cs, problems, err := Parse("c.toml", []byte(file))
	if err != nil || len(problems) != 0 || len(cs) != 5 {
		t.Fatalf("Parse: %d connectors, %v %v", len(cs), problems, err)
	}
	var got []string
	for _, p := range Warnings("c.toml", cs) {
		got = append(got, p.Error())
	}
	want := []string{
		`c.toml:2: warning: connector 1: relay_id "6ba7b810-9dad-11d1-80b4-00c04fd430c8" is the example from ` + "`connectors init`" + `: put your relay's id here`,
		`c.toml:4: warning: connector 1: url "https://user:***@git.example.com/x.git" is on a domain reserved for examples: nothing can be pushed there`,
		`c.toml:9: warning: connector 2: url "deploy@EXAMPLE.ORG.:notes.git" is on a domain reserved for examples: nothing can be pushed there`,
		`c.toml:14: warning: connector 3: url "ssh://git@host.invalid/x.git" is on a domain reserved for examples: nothing can be pushed there`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSortByLine(t *testing.T) {
	ps := []Problem{{Line: 9, Msg: "a"}, {Line: 2, Msg: "b"}, {Msg: "file"}, {Line: 9, Msg: "c", Warning: true}, {Line: 2, Msg: "d"}}
	SortByLine(ps)
	var got []string
	for _, p := range ps {
		got = append(got, p.Msg)
	}
	if strings.Join(got, ",") != "file,b,d,a,c" {
		t.Errorf("sorted: %v", got)
	}
}

// Entries that fail the load-time checks are still checked for everything
// else, so one run of validate reports every problem.
func TestValidateInvalidEntries(t *testing.T) {
	file := `[[git_connector]]
relay_id = "x"
shared_folder_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
url = "ftp://a/b"
perfix = "x"

[[git_connector]]
relay_id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
shared_folder_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
url = ""
branch = ""
`
	all, problems, err := ParseAll("c.toml", []byte(file))
	if err != nil || len(all) != 2 || !all[0].Invalid || !all[1].Invalid {
		t.Fatalf("ParseAll: %+v %v", all, err)
	}
	if cs, _, _ := Parse("c.toml", []byte(file)); len(cs) != 0 {
		t.Errorf("Parse kept invalid entries: %+v", cs)
	}
	problems = append(problems, Validate("c.toml", all)...)
	var msgs []string
	for _, p := range problems {
		msgs = append(msgs, p.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{
		`c.toml:2: connector 1: relay_id "x" is not a UUID`,
		`c.toml:4: connector 1: url "ftp://a/b": unsupported scheme`,
		`c.toml:5: connector 1: unknown key "perfix"`,
		`c.toml:10: connector 2: url must not be empty`,
		`c.toml:11: connector 2: branch must not be empty`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if len(msgs) != 5 {
		t.Errorf("%d problems, want 5 (no duplicates):\n%s", len(msgs), got)
	}
}
