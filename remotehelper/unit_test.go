package remotehelper

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

func TestParseURL(t *testing.T) {
	const r, f = "6BA7B810-9dad-11d1-80b4-00c04fd430c8", "f47ac10b-58cc-4372-a567-0e02b2c3d479"
	folder := store.FolderID{Relay: strings.ToLower(r), Folder: f}
	server := func() string { return "https://sync.example.com/base/" }
	cases := []struct {
		url  string
		want Target
		err  string
	}{
		{r + "/" + f, Target{Folder: folder, Server: "https://sync.example.com/base"}, ""},
		{"relay::" + r + "/" + f + "/", Target{Folder: folder, Server: "https://sync.example.com/base"}, ""},
		{"https://h.example:8443/" + r + "/" + f, Target{Folder: folder, Server: "https://h.example:8443"}, ""},
		{"http://127.0.0.1:8000/prefix/x/" + r + "/" + f, Target{Folder: folder, Server: "http://127.0.0.1:8000/prefix/x"}, ""},
		{"/srv/relay data/" + r + "/" + f, Target{Folder: folder, DataDir: "/srv/relay data"}, ""},
		{"file:///srv/data/" + r + "/" + f, Target{Folder: folder, DataDir: "/srv/data"}, ""},
		{"file://localhost/srv/data/" + r + "/" + f, Target{Folder: folder, DataDir: "/srv/data"}, ""},
		{"../data/" + r + "/" + f, Target{Folder: folder, DataDir: "/home/u/data", relative: true}, ""},
		{"/" + r + "/" + f, Target{Folder: folder, DataDir: "/"}, ""},
		{"", Target{}, "empty"},
		{r, Target{}, "want <relay-id>/<folder-id>"},
		{r + "/nope", Target{}, "not a UUID"},
		{"https:///" + r + "/" + f, Target{}, "no host"},
		{"https://u:p@h/" + r + "/" + f, Target{}, "credentials"},
		{"https://h/" + r + "/" + f + "?x=1", Target{}, "query"},
		{"https://h/" + f, Target{}, "not a UUID"},
		{"file://host/srv/" + r + "/" + f, Target{}, "local path"},
		{"file:///" + r + "/" + f, Target{}, "no data dir"},
		{"ssh://h/" + r + "/" + f, Target{}, "unknown scheme"},
	}
	for _, c := range cases {
		got, err := ParseURL(c.url, server, "/home/u/work")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error with %q", c.url, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.url, got, err, c.want)
		}
	}
	// Credentials in a URL are refused and never repeated.
	for _, raw := range []string{"relay::https://alice:s3cret@h/" + r + "/" + f, "https://s3cret@h/" + r + "?x"} {
		if _, err := ParseURL(raw, server, "/"); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: %v", raw, err)
		}
	}
	if _, err := ParseURL(r+"/"+f, func() string { return "https://alice:s3cret@h" }, "/"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("default server with credentials: %v", err)
	}
	// A bad default server is reported as such.
	if _, err := ParseURL(r+"/"+f, func() string { return "sync.example.com" }, "/"); err == nil || !strings.Contains(err.Error(), "relay.url") {
		t.Errorf("bad default server: %v", err)
	}
	// The key of a target is stable and ref-safe.
	a, _ := ParseURL("https://h/"+r+"/"+f, nil, "/")
	b, _ := ParseURL("https://h/"+strings.ToUpper(r)+"/"+f+"/", nil, "/")
	if a.key() != b.key() || len(a.key()) != 16 || a.String() != "https://h/"+folder.String() {
		t.Errorf("keys %q %q, string %q", a.key(), b.key(), a.String())
	}
}

// applyDelta applies a git delta (patch-delta.c), to check makeDelta.
func applyGitDelta(t *testing.T, base, delta []byte) []byte {
	t.Helper()
	size := func() int {
		n, shift := 0, 0
		for {
			c := delta[0]
			delta = delta[1:]
			n |= int(c&0x7f) << shift
			shift += 7
			if c&0x80 == 0 {
				return n
			}
		}
	}
	if size() != len(base) {
		t.Fatal("delta: wrong base size")
	}
	want := size()
	var out []byte
	for len(delta) > 0 {
		c := delta[0]
		delta = delta[1:]
		if c&0x80 != 0 {
			off, n := 0, 0
			for k := 0; k < 4; k++ {
				if c&(1<<k) != 0 {
					off |= int(delta[0]) << (8 * k)
					delta = delta[1:]
				}
			}
			for k := 0; k < 3; k++ {
				if c&(0x10<<k) != 0 {
					n |= int(delta[0]) << (8 * k)
					delta = delta[1:]
				}
			}
			if n == 0 {
				n = 0x10000
			}
			out = append(out, base[off:off+n]...)
		} else if c != 0 {
			out = append(out, delta[:c]...)
			delta = delta[c:]
		} else {
			t.Fatal("delta: opcode 0")
		}
	}
	if len(out) != want {
		t.Fatalf("delta: %d bytes, header says %d", len(out), want)
	}
	return out
}

func TestDeltas(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return b
	}
	made := 0
	for i := range 300 {
		base := rnd(64 + r.IntN(20000))
		target := slices.Clone(base)
		switch i % 4 {
		case 0: // typing in the middle
			p := r.IntN(len(target))
			target = slices.Insert(target, p, rnd(1+r.IntN(300))...)
		case 1: // appended
			target = append(target, rnd(r.IntN(1000))...)
		case 2: // a region replaced
			p := r.IntN(len(target))
			copy(target[p:], rnd(r.IntN(len(target)-p)))
		case 3: // unrelated
			target = rnd(len(base))
		}
		d := makeDelta(base, target)
		if d == nil {
			continue
		}
		made++
		if got := applyGitDelta(t, base, d); !bytes.Equal(got, target) {
			t.Fatalf("case %d: delta does not rebuild the target", i)
		}
	}
	if made < 200 {
		t.Errorf("only %d deltas of 300 edits", made)
	}

	// Trees: entries changed far apart are still a small delta.
	tree := func(ids map[string]byte, dirs ...string) []byte {
		var names []string
		for n := range ids {
			names = append(names, n)
		}
		slices.SortFunc(names, func(a, b string) int {
			return compareEntries(treeEntry{name: []byte(a), dir: slices.Contains(dirs, a)}, treeEntry{name: []byte(b), dir: slices.Contains(dirs, b)})
		})
		var b bytes.Buffer
		for _, n := range names {
			mode := "100644"
			if slices.Contains(dirs, n) {
				mode = "40000"
			}
			fmt.Fprintf(&b, "%s %s\x00", mode, n)
			b.Write(bytes.Repeat([]byte{ids[n]}, 20))
		}
		return b.Bytes()
	}
	ids := map[string]byte{}
	for i := range 60 {
		ids[fmt.Sprintf("note %03d.md", i)] = byte(i)
	}
	ids["a"], ids["a.b"], ids["a-b"] = 1, 2, 3
	base := tree(ids, "a")
	ids["note 001.md"], ids["note 058.md"] = 99, 98
	delete(ids, "note 030.md")
	ids["note 030b.md"] = 7
	target := tree(ids, "a")
	d := makeTreeDelta(base, target)
	if d == nil || len(d) > 160 {
		t.Fatalf("tree delta of %d bytes for three changed entries", len(d))
	}
	if got := applyGitDelta(t, base, d); !bytes.Equal(got, target) {
		t.Fatal("tree delta does not rebuild the target")
	}
	if makeTreeDelta(base, []byte("garbage that is not a tree but long enough to try a delta on it.....")) != nil {
		t.Error("a delta to a non-tree")
	}
}

// TestRunInProcess drives Run as git would, in this process (so that the
// race detector sees the synthesis pipeline): a clone, then a fetch of new
// snapshots into the same repository.
func TestRunInProcess(t *testing.T) {
	testreq.Git(t)
	dir, v := newDataDir(t, testFolder, 5, 150, history.Config{})
	gitDir := filepath.Join(t.TempDir(), "repo.git")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_DIR="+gitDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	git("init", "-q", "--bare", gitDir)

	session := func(checkConn bool) (tip string, answer []string) {
		t.Helper()
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		var stderr bytes.Buffer
		done := make(chan error, 1)
		tmp := t.TempDir() // here: TempDir may call t.Fatal, never in the goroutine
		go func() {
			err := Run(context.Background(), Config{Remote: "origin", URL: dir + "/" + testFolder.String(),
				Getenv: func(k string) string {
					if k == "GIT_DIR" {
						return gitDir
					}
					return ""
				},
				Environ: append(os.Environ(), "GIT_DIR="+gitDir), Dir: tmp,
				Stdin: inR, Stdout: outW, Stderr: &stderr})
			outW.Close()
			done <- err
		}()
		out := bufio.NewReader(outR)
		read := func() []string {
			var lines []string
			for {
				l, err := out.ReadString('\n')
				if err != nil {
					t.Fatalf("reading the helper: %v (stderr %s)", err, stderr.String())
				}
				if l == "\n" {
					return lines
				}
				lines = append(lines, strings.TrimSuffix(l, "\n"))
			}
		}
		fmt.Fprintf(inW, "capabilities\n")
		read()
		fmt.Fprintf(inW, "option check-connectivity %v\n", checkConn)
		if l, _ := out.ReadString('\n'); l != "ok\n" {
			t.Fatalf("option: %q", l)
		}
		fmt.Fprintf(inW, "list\n")
		refs := read()
		tip, _, _ = strings.Cut(refs[0], " ")
		fmt.Fprintf(inW, "fetch %s refs/heads/main\n\n", tip)
		answer = read()
		inW.Close()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v\n%s", err, stderr.String())
		}
		return tip, answer
	}

	tip, answer := session(true)
	if len(answer) != 2 || !strings.HasPrefix(answer[0], "lock "+filepath.Join(gitDir, "objects", "pack", "pack-")) || answer[1] != "connectivity-ok" {
		t.Fatalf("fetch answer %q", answer)
	}
	keep := strings.TrimPrefix(answer[0], "lock ")
	if err := os.Remove(keep); err != nil { // as git does once its refs are updated
		t.Fatal(err)
	}
	git("update-ref", "refs/heads/main", tip)
	st := v.reopen(t, dir)
	ids := linearIDs(t, source.FromStore(st), testFolder)
	if tip != ids[len(ids)-1].String() {
		t.Fatalf("tip %s, want %s", tip, ids[len(ids)-1])
	}
	v.grow(t, 25)
	ids = linearIDs(t, source.FromStore(st), testFolder)
	st.Close()

	// An incremental fetch is connected too: the pack has all that the
	// base commit does not reach.
	tip, answer = session(true)
	if tip != ids[len(ids)-1].String() || len(answer) != 2 || !strings.HasPrefix(answer[0], "lock ") || answer[1] != "connectivity-ok" {
		t.Fatalf("second fetch: tip %s (want %s), answer %q", tip, ids[len(ids)-1], answer)
	}
	git("update-ref", "refs/heads/main", tip)
	git("fsck", "--strict", "--no-dangling")
	if n := strings.TrimSpace(git("rev-list", "--count", "main")); n != "175" {
		t.Errorf("%s commits", n)
	}
	st = v.reopen(t, dir)
	v.grow(t, 3)
	ids = linearIDs(t, source.FromStore(st), testFolder)
	st.Close()
	tip, answer = session(false)
	if tip != ids[len(ids)-1].String() || len(answer) != 1 || !strings.HasPrefix(answer[0], "lock ") {
		t.Fatalf("third fetch, without check-connectivity: tip %s (want %s), answer %q", tip, ids[len(ids)-1], answer)
	}
	git("update-ref", "refs/heads/main", tip)
	git("fsck", "--strict", "--no-dangling")
}
