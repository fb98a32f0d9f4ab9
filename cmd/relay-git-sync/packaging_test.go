package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Docker cannot run here, so the Dockerfile is checked by reading it: a
// multi-stage build of static binaries with the project's build tags, run
// as a non-root user with the data dir as a volume.
func TestDockerfile(t *testing.T) {
	lines := instructions(t, "../../Dockerfile")
	var froms, users, copies []string
	has := map[string]bool{}
	for _, l := range lines {
		op, arg, _ := strings.Cut(l, " ")
		op = strings.ToUpper(op)
		has[op] = true
		switch op {
		case "FROM":
			froms = append(froms, arg)
		case "USER":
			users = append(users, arg)
		case "COPY":
			copies = append(copies, arg)
		case "RUN":
			if strings.Contains(arg, "go build") {
				for _, want := range []string{"CGO_ENABLED=0", "-tags nomsgpack", "main.version=", "./cmd/relay-git-sync", "./cmd/git-remote-relay"} {
					if !strings.Contains(arg, want) {
						t.Errorf("go build step lacks %q", want)
					}
				}
			}
		}
	}
	if len(froms) != 2 || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("want a two-stage build, got FROM %q", froms)
	}
	if len(users) == 0 || users[len(users)-1] == "root" || users[len(users)-1] == "0" {
		t.Errorf("final USER %q must not be root", users)
	}
	for _, op := range []string{"VOLUME", "EXPOSE", "ENTRYPOINT", "ENV"} {
		if !has[op] {
			t.Errorf("no %s instruction", op)
		}
	}
	for _, c := range copies {
		if strings.HasPrefix(c, "--from=") {
			continue
		}
		for _, src := range strings.Fields(c)[:len(strings.Fields(c))-1] {
			if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
				t.Errorf("COPY source %s: %v", src, err)
			}
		}
	}
}

// instructions joins continuation lines and drops comments.
func instructions(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		out = append(out, strings.Join(strings.Fields(cur+l), " "))
		cur = ""
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/relay-git-sync.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"[Unit]", "[Service]", "[Install]", "ExecStart=/usr/local/bin/relay-git-sync serve", "NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes", "StateDirectory=relay-git-sync"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	for i, l := range strings.Split(unit, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "[") && !strings.Contains(l, "=") {
			t.Errorf("line %d is neither a section, a comment nor key=value: %q", i+1, l)
		}
	}
}
