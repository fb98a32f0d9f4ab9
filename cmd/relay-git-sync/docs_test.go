package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The committed command reference must be what the commands generate:
// run `make docs` after changing a command's flags or help.
func TestReferenceUpToDate(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	root := newRootCmd(newGlobalOptions(func(string) string { return "" }, &out, &out))
	root.SetArgs([]string{"generate", "--markdown", dir})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	have, _ := filepath.Glob("../../docs/reference/*.md")
	if len(want) != len(have) {
		t.Errorf("docs/reference has %d pages, the commands make %d: run `make docs`", len(have), len(want))
	}
	for _, w := range want {
		name := filepath.Base(w)
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join("../../docs/reference", name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("docs/reference/%s is out of date: run `make docs`", name)
		}
	}
}

func TestGenerateManAndCompletion(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := execute(t, nil, "generate", "--man", dir, "--bash-completion", filepath.Join(dir, "bash"), "--zsh-completion", filepath.Join(dir, "zsh"), "--fish-completion", filepath.Join(dir, "fish")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"relay-git-sync.1", "relay-git-sync-serve.1", "bash", "zsh", "fish"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if _, _, _, err := execute(t, nil, "generate"); err == nil {
		t.Error("generate without flags succeeded")
	}
}
