package gitpath

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		want Rules
	}{
		{"notes.md", 0}, {"a b.md", 0}, {".gitignore", 0}, {".mailmap", 0}, {"gitmodules", 0}, {"conference.md", 0},
		{".gitmodules", Git}, {".GitModules", Git}, {".gitmodules.", Git | Windows}, {".gitmodules ", Git | Windows},
		{"gitmod~1", Git}, {"gi7eba~9", Git}, {".g\u200citmodules", Git}, {".gitattributes", Git}, {"gitatt~2", Git},
		{".git", Git}, {".GIT", Git}, {"git~1", Git}, {".g\u200cit", Git}, {".git.", Git | Windows}, {"a\\.git", Git | Windows},
		{"CON", Windows}, {"aux.md", Windows}, {"nul .txt", Windows}, {"COM1", Windows}, {"lpt9.x", Windows}, {"com0", 0},
		{"what?.md", Windows}, {"a:b", Windows}, {"trailing.", Windows}, {"trailing ", Windows},
		{strings.Repeat("L", 300) + ".md", Long}, {strings.Repeat("界", 100) + ".md", Long}, {strings.Repeat("L", 255), 0},
	} {
		if got := Check(c.name, Tree); got != c.want {
			t.Errorf("Check(%q) = %b, want %b", c.name, got, c.want)
		}
	}
}

func TestMappedNamesAreSafe(t *testing.T) {
	for _, n := range []string{".gitmodules", ".git", "git~1", "CON", "aux.md", "what?.md", "x.", strings.Repeat("L", 300) + ".md",
		strings.Repeat("界", 100) + ".md", strings.Repeat("é", 200)} {
		m := Siblings([]string{n}, Tree)[0]
		if m == n || Check(m, Tree) != 0 || !strings.Contains(m, "~") {
			t.Errorf("%q -> %q", n, m)
		}
		if m2 := Siblings([]string{"other", n}, Tree)[1]; m2 != m {
			t.Errorf("%q: not deterministic: %q, %q", n, m, m2)
		}
	}
	if m := Siblings([]string{"aux.md"}, Tree)[0]; !strings.HasPrefix(m, "aux~") || !strings.HasSuffix(m, ".md") {
		t.Errorf("aux.md -> %q", m)
	}
}

// A name equal to another's mapped name does not make both collide.
func TestSiblingsCollision(t *testing.T) {
	m := mapped(".gitmodules", 0)
	got := Siblings([]string{m, ".gitmodules"}, Tree)
	if got[0] != m || got[1] == m || Check(got[1], Tree) != 0 {
		t.Fatalf("%q", got)
	}
}

func TestRename(t *testing.T) {
	long := strings.Repeat("L", 300)
	paths := []string{"a.md", "CON/x.md", "CON/y.md", long + "/" + long + ".md", "ok/.gitmodules"}
	r := Rename(paths, func(s string) string { return s }, Tree)
	if len(r) != 4 || r["a.md"] != "" {
		t.Fatalf("%q", r)
	}
	if d1, d2 := r["CON/x.md"][:strings.IndexByte(r["CON/x.md"], '/')], r["CON/y.md"][:strings.IndexByte(r["CON/y.md"], '/')]; d1 != d2 || d1 == "CON" {
		t.Fatalf("%q", r)
	}
	for _, v := range r {
		if PathChecks(v, Tree) {
			t.Fatalf("unsafe %q", v)
		}
	}
	if Rename(paths, func(s string) string { return s }, Local)["CON/x.md"] != "" {
		t.Fatal("Local renamed a Windows name")
	}
	if Rename([]string{"a", "b/c"}, func(s string) string { return s }, Tree) != nil {
		t.Fatal("renamed safe paths")
	}
}
