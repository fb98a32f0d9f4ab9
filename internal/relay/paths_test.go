package relay

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizePathPythonOracle(t *testing.T) {
	// §5.4 test table (tests/test_path_sanitization.py and
	// tests/test_persistence.py::TestPathSanitization), base-relative.
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{"test.txt", "test.txt", nil},
		{"subdir/test.txt", "subdir/test.txt", nil},
		{"/test.txt", "test.txt", nil},
		{"///subdir/test.txt", "subdir/test.txt", nil},
		{"folder/file with dots....md", "folder/file with dots....md", nil},
		{"normal/file.txt", "normal/file.txt", nil},
		{"/folder/file.txt", "folder/file.txt", nil},
		{"../etc/passwd", "", ErrPathTraversal},
		{"../../../etc/passwd", "", ErrPathTraversal},
		{"subdir/../../etc/passwd", "", ErrPathTraversal},
		{"/../etc/passwd", "", ErrPathTraversal},
		{"valid/../../invalid", "", ErrPathTraversal},
		{"../evil.txt", "", ErrPathTraversal},
		{"folder/../../../evil.txt", "", ErrPathTraversal},
		{"../../etc/passwd", "", ErrPathTraversal},
		{"", "", ErrEmptyPath},
		{".", "", ErrPathEscapes},
		// Operation-level tests.
		{"/testdir", "testdir", nil},
		{"/deep/nested/path/test.md", "deep/nested/path/test.md", nil},
		{"../outside/important.txt", "", ErrPathTraversal},
		{"../../../tmp/malicious", "", ErrPathTraversal},
		// Derived outcomes that are safe and kept.
		{"/", "", ErrPathEscapes},
		{"./", "", ErrPathEscapes},
		{"//./", "", ErrPathEscapes},
		{"a/./b", "a/b", nil},
		{"a//b", "a/b", nil},
		{"a/b/", "a/b", nil},
		{"./a", "a", nil},
		{"..", "", ErrPathTraversal},
		{"a/..", "", ErrPathTraversal},
		{".../x", ".../x", nil},
		{"~/x", "~/x", nil},
		{"a/ ../b", "a/ ../b", nil},
		{"a/.. /b", "a/.. /b", nil},
		{"a\\b", "a\\b", nil}, // backslash is an ordinary character
		{"/notes/a.md", "notes/a.md", nil},
		{"/Projects", "Projects", nil},
		{"/img/a.png", "img/a.png", nil},
		{"/.obsidian/app.json", ".obsidian/app.json", nil},
		{"/.gitignore", ".gitignore", nil},
		{"/.github/workflows/x.yml", ".github/workflows/x.yml", nil},
		{"/a/.gitkeep", "a/.gitkeep", nil},
		{"/git~10", "git~10", nil},
		{"/.git-notes/x", ".git-notes/x", nil},
		{"/x.git", "x.git", nil},
		{"/x/D:/y", "x/D:/y", nil}, // a drive letter only matters first
		{"/Ünïcödé/日本語.md", "Ünïcödé/日本語.md", nil},
		{"/emoji 😀.md", "emoji 😀.md", nil},
		{"/a\u200cb", "a\u200cb", nil},
	}
	for _, tt := range tests {
		got, err := SanitizePath(tt.in)
		if tt.err == nil {
			if err != nil || got != tt.want {
				t.Errorf("SanitizePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("SanitizePath(%q) = %q, %v; want error %v", tt.in, got, err, tt.err)
			continue
		}
		var pe *PathError
		if !errors.As(err, &pe) || pe.Path != tt.in || pe.What != "path" {
			t.Errorf("SanitizePath(%q) error %#v is not a *PathError for the input", tt.in, err)
		}
		if got != "" {
			t.Errorf("SanitizePath(%q) returned %q with an error", tt.in, got)
		}
	}
}

func TestSanitizePathHostile(t *testing.T) {
	long := strings.Repeat("a/", MaxPathBytes/2) + "x"
	tests := []struct {
		in  string
		err error
	}{
		{"../x", ErrPathTraversal},
		{"/../../etc/passwd", ErrPathTraversal},
		{"a/../../b", ErrPathTraversal},
		{"a/b/../c", ErrPathTraversal}, // stays inside, still refused (Python parity)
		{`C:\x`, ErrPathAbsolute},
		{`C:/x`, ErrPathAbsolute},
		{`/C:/Windows/System32`, ErrPathAbsolute},
		{`c:foo`, ErrPathAbsolute},
		{`z:`, ErrPathAbsolute},
		{`\x`, ErrPathAbsolute},
		{`/\\server\share\x`, ErrPathAbsolute},
		{`a\..\b`, ErrPathTraversal},
		{`..\x`, ErrPathTraversal},
		{`a/b\..`, ErrPathTraversal},
		{`a\..`, ErrPathTraversal},
		{"\x00", ErrPathNUL},
		{"a\x00b", ErrPathNUL},
		{"/a.md\x00.png", ErrPathNUL},
		{"a\nb", ErrPathControl},
		{"a\rb", ErrPathControl},
		{"a\tb", ErrPathControl},
		{"\x1b[31mred", ErrPathControl},
		{"a\x7fb", ErrPathControl},
		{"a\xffb", ErrPathInvalidUTF8},
		{"a\xed\xa0\x80b", ErrPathInvalidUTF8}, // encoded surrogate
		{".git/config", ErrPathDotGit},
		{"/.git/config", ErrPathDotGit},
		{".git", ErrPathDotGit},
		{"a/.GIT/hooks", ErrPathDotGit},
		{"a/.Git/hooks/pre-commit", ErrPathDotGit},
		{"a/.git", ErrPathDotGit},
		{"a/.git/", ErrPathDotGit},
		{"a/./.git/x", ErrPathDotGit},
		{".git./config", ErrPathDotGit},
		{".git. . ./config", ErrPathDotGit},
		{".git /config", ErrPathDotGit},
		{".git::$INDEX_ALLOCATION/config", ErrPathDotGit},
		{"GIT~1/config", ErrPathDotGit},
		{"git~1", ErrPathDotGit},
		{".g\u200cit/config", ErrPathDotGit},
		{"\ufeff.git/config", ErrPathDotGit},
		{".gi\u200dt\u202e/hooks", ErrPathDotGit},
		{`a\.git\config`, ErrPathDotGit},
		{`.git\config`, ErrPathDotGit},
		{long, ErrPathTooLong},
		{strings.Repeat("x", MaxComponentBytes+1), ErrPathTooLong},
		{"/" + strings.Repeat("x", MaxComponentBytes+1) + "/y", ErrPathTooLong},
		{strings.Repeat("../", 10000), ErrPathTooLong},
	}
	for _, tt := range tests {
		got, err := SanitizePath(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("SanitizePath(%q) = %q, %v; want %v", trunc(tt.in), got, err, tt.err)
			continue
		}
		msg := err.Error()
		if len(msg) > 400 {
			t.Errorf("error message for %q is %d bytes", trunc(tt.in), len(msg))
		}
		if !strings.Contains(msg, tt.err.Error()) || !strings.HasPrefix(msg, "unsafe path ") {
			t.Errorf("error message %q lacks path or reason", msg)
		}
		if strings.ContainsRune(msg, 0) {
			t.Errorf("error message for %q contains a raw NUL", trunc(tt.in))
		}
	}
	// Limits are inclusive.
	okComp := strings.Repeat("x", MaxComponentBytes)
	if got, err := SanitizePath("/" + okComp); err != nil || got != okComp {
		t.Errorf("component of MaxComponentBytes refused: %v", err)
	}
	okPath := strings.Repeat("abcdefg/", MaxPathBytes/8)[:MaxPathBytes-1] + "z"
	if _, err := SanitizePath(okPath); err != nil {
		t.Errorf("path of MaxPathBytes refused: %v", err)
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func TestVirtualPathRoundTrip(t *testing.T) {
	for _, p := range []string{"/a.md", "/x/y/z.canvas", "/.obsidian/x"} {
		rel, err := SanitizePath(p)
		if err != nil {
			t.Fatal(err)
		}
		if VirtualPath(rel) != p {
			t.Errorf("VirtualPath(SanitizePath(%q)) = %q", p, VirtualPath(rel))
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{"", "", nil},
		{".", "", nil},
		{"./", "", nil},
		{"docs", "docs", nil},
		{"docs/", "docs", nil},
		{"docs///", "docs", nil},
		{"a//./b/", "a/b", nil},
		{"vault/notes", "vault/notes", nil},
		{".obsidian-sync", ".obsidian-sync", nil},
		{"/", "", ErrPathAbsolute},
		{"/docs", "", ErrPathAbsolute},
		{"//docs", "", ErrPathAbsolute},
		{`C:\repo`, "", ErrPathAbsolute},
		{`\docs`, "", ErrPathAbsolute},
		{"..", "", ErrPathTraversal},
		{"../x", "", ErrPathTraversal},
		{"a/../b", "", ErrPathTraversal},
		{"a/..", "", ErrPathTraversal},
		{`a\..\..\b`, "", ErrPathTraversal},
		{".git", "", ErrPathDotGit},
		{"x/.GIT/", "", ErrPathDotGit},
		{"a\x00", "", ErrPathNUL},
		{"a\nb", "", ErrPathControl},
	}
	for _, tt := range tests {
		got, err := ValidatePrefix(tt.in)
		if tt.err == nil {
			if err != nil || got != tt.want {
				t.Errorf("ValidatePrefix(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		var pe *PathError
		if !errors.Is(err, tt.err) || !errors.As(err, &pe) || pe.What != "prefix" {
			t.Errorf("ValidatePrefix(%q) = %q, %v; want prefix error %v", tt.in, got, err, tt.err)
		}
	}
}

func TestJoinAndUnderPrefix(t *testing.T) {
	if got := JoinPrefix("", "a/b.md"); got != "a/b.md" {
		t.Errorf("JoinPrefix root = %q", got)
	}
	if got := JoinPrefix("docs/x", "a/b.md"); got != "docs/x/a/b.md" {
		t.Errorf("JoinPrefix = %q", got)
	}
	tests := []struct {
		prefix, p string
		rel       string
		ok        bool
	}{
		{"", "README.md", "README.md", true},
		{"", "", "", false},
		{"docs", "docs/a.md", "a.md", true},
		{"docs", "docs/x/a.md", "x/a.md", true},
		{"docs", "docs", "", false},
		{"docs", "docs/", "", false},
		{"docs", "docsx/a.md", "", false},
		{"docs", "doc", "", false},
		{"docs", "README.md", "", false},
		{"a/b", "a/b/c", "c", true},
		{"a/b", "a/bc/d", "", false},
	}
	for _, tt := range tests {
		rel, ok := UnderPrefix(tt.prefix, tt.p)
		if rel != tt.rel || ok != tt.ok {
			t.Errorf("UnderPrefix(%q, %q) = %q, %v; want %q, %v", tt.prefix, tt.p, rel, ok, tt.rel, tt.ok)
		}
	}
}

func TestIsDotGit(t *testing.T) {
	yes := []string{".git", ".GIT", ".gIt", ".git.", ".git..", ".git ", ".git . ", ".git:", ".git::$DATA",
		`.git\x`, "git~1", "GIT~1", "git~1.", "git~1 :x", ".\u200cgit", "\u206a.git\u206f", ".g\ufeffit."}
	no := []string{"", ".", "..", "git", ".gi", ".gitx", ".git.x", ".git x", ".gitignore", ".github",
		"git~2", "git~10", "agit~1", "x.git", "..git", " .git", ".gît", ".g\u200bit"}
	for _, s := range yes {
		if !isDotGit(s) {
			t.Errorf("isDotGit(%q) = false", s)
		}
	}
	for _, s := range no {
		if isDotGit(s) {
			t.Errorf("isDotGit(%q) = true", s)
		}
	}
}

func FuzzSanitizePath(f *testing.F) {
	for _, s := range []string{
		"test.txt", "/notes/a.md", "///subdir/test.txt", "../x", "/../../etc/passwd", "a/../../b",
		`C:\x`, "\x00", ".git/config", "a/.GIT/hooks", "a/./b//c/", ".", "/", `a\..\b`, "git~1/x",
		".g\u200cit/x", "/emoji 😀.md", "a/.. /b", "x/D:/y", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := SanitizePath(in)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Path != in {
				t.Fatalf("SanitizePath(%q): error %v is not a *PathError", in, err)
			}
			if got != "" {
				t.Fatalf("SanitizePath(%q) = %q with error", in, got)
			}
			return
		}
		if got == "" || strings.HasPrefix(got, "/") || strings.HasSuffix(got, "/") {
			t.Fatalf("SanitizePath(%q) = %q: empty or not relative", in, got)
		}
		if path.Clean(got) != got || path.IsAbs(got) {
			t.Fatalf("SanitizePath(%q) = %q: not clean", in, got)
		}
		if !utf8.ValidString(got) || len(got) > MaxPathBytes {
			t.Fatalf("SanitizePath(%q) = %q: invalid UTF-8 or too long", in, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] == 0x7f {
				t.Fatalf("SanitizePath(%q) = %q: control character", in, got)
			}
		}
		if isWindowsAbs(got) {
			t.Fatalf("SanitizePath(%q) = %q: Windows-absolute", in, got)
		}
		for _, c := range strings.FieldsFunc(got, func(r rune) bool { return r == '/' || r == '\\' }) {
			if c == ".." || strings.EqualFold(c, ".git") || isDotGit(c) {
				t.Fatalf("SanitizePath(%q) = %q: component %q", in, got, c)
			}
		}
		// Joined under a base, the result stays strictly inside it.
		const base = "/base/dir"
		if j := path.Join(base, got); !strings.HasPrefix(j, base+"/") {
			t.Fatalf("SanitizePath(%q) = %q escapes: %q", in, got, j)
		}
		// Idempotent.
		if again, err := SanitizePath(got); err != nil || again != got {
			t.Fatalf("SanitizePath(%q) = %q, but SanitizePath(%q) = %q, %v", in, got, got, again, err)
		}
		// Also fine as a prefix.
		if p, err := ValidatePrefix(got); err != nil || p != got {
			t.Fatalf("ValidatePrefix(%q) = %q, %v", got, p, err)
		}
	})
}
