package relay

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits applied by SanitizePath. They are sanity caps against hostile
// input, not filesystem limits: macOS/Windows allow 255 UTF-16 units per
// name (up to 765 UTF-8 bytes), and git itself has no limit.
const (
	MaxPathBytes      = 4096
	MaxComponentBytes = 1024
)

// Reasons wrapped by *PathError. Test with errors.Is.
var (
	// ErrEmptyPath: "" (Python: "Empty path provided").
	ErrEmptyPath = errors.New("empty path provided")
	// ErrPathTraversal: a ".." component (Python: "contains directory
	// traversal sequences"); also ".." between backslashes.
	ErrPathTraversal = errors.New("contains directory traversal sequences")
	// ErrPathEscapes: the path names the folder itself ("", ".", "/", "./")
	// (Python: "attempts to escape base directory").
	ErrPathEscapes = errors.New("attempts to escape base directory")
	// ErrPathAbsolute: absolute paths where they are not allowed (connector
	// prefixes), Windows drive paths ("C:…") and leading backslashes.
	ErrPathAbsolute = errors.New("is an absolute path")
	// ErrPathDotGit: a component that git (or a case-insensitive, NTFS or
	// HFS+ checkout) would treat as ".git".
	ErrPathDotGit = errors.New("contains a .git component")
	// ErrPathNUL: a NUL byte.
	ErrPathNUL = errors.New("contains a NUL byte")
	// ErrPathControl: another ASCII control character (U+0001–U+001F, U+007F).
	ErrPathControl = errors.New("contains a control character")
	// ErrPathInvalidUTF8: bytes that are not UTF-8.
	ErrPathInvalidUTF8 = errors.New("is not valid UTF-8")
	// ErrPathTooLong: longer than MaxPathBytes, or a component longer than
	// MaxComponentBytes.
	ErrPathTooLong = errors.New("is too long")
)

// PathError reports an unsafe filemeta path or connector prefix.
type PathError struct {
	What string // "path" or "prefix"
	Path string // the input as given
	Err  error  // one of the ErrPath*/ErrEmptyPath reasons
}

func (e *PathError) Error() string {
	return fmt.Sprintf("unsafe %s %s: %v", e.What, quoteTrunc(e.Path), e.Err)
}

func (e *PathError) Unwrap() error { return e.Err }

// SanitizePath turns a filemeta key (a "virtual path" such as
// "/notes/a.md") into a clean relative slash path inside the shared folder
// ("notes/a.md"), or explains why it is unsafe with a *PathError.
//
// It reproduces the outcomes of the Python _sanitize_path (§5.4): all
// leading '/' are stripped (absolute keys are re-rooted, not rejected); any
// ".." component is a traversal error even when it would stay inside the
// folder ("a/../b"); "." components, repeated and trailing '/' are
// dropped; a path naming the folder itself (".", "/", "./") is an escape
// error; backslashes are ordinary characters, names with dots ("....md",
// ".../x"), "~" and spaces are kept as-is.
//
// In addition it rejects, so that no consumer (git trees, a checkout on
// macOS/Windows, FUSE, tar/zip export) is ever handed a dangerous name:
//   - NUL bytes and other ASCII control characters, invalid UTF-8;
//   - any component that is ".git" case-insensitively, including the forms
//     git itself refuses for NTFS/HFS+ checkouts (".git." / ".git " /
//     ".git::$INDEX_ALLOCATION", "git~1", ".g\u200cit") — also when the
//     component is split further on '\';
//   - a ".." between backslashes ("a\..\b", "..\x"), which a Windows
//     extractor would treat as traversal;
//   - Windows absolute forms: a first component starting with a drive
//     letter ("C:", "c:\x") or with '\' ("\x", "\\server\share");
//   - paths longer than MaxPathBytes or with a component longer than
//     MaxComponentBytes.
//
// The result is never empty, never starts with '/', has no empty, "." or
// ".." component, and SanitizePath(result) == result.
// It does not look at the filesystem: callers writing files must still
// refuse to follow symlinks.
func SanitizePath(virtualPath string) (string, error) {
	rel, err := sanitize(virtualPath, false)
	if err != nil {
		return "", &PathError{What: "path", Path: virtualPath, Err: err}
	}
	return rel, nil
}

// VirtualPath is the inverse of SanitizePath for clean paths: the filemeta
// and local_state.json key form, "/" + rel.
func VirtualPath(rel string) string {
	return "/" + rel
}

// ValidatePrefix validates and normalises a connector prefix (§6.8): the
// directory of the git repository that holds the shared folder. "" (and
// ".", "./") mean the repository root and yield "". Trailing and repeated
// '/' and "." components are dropped ("docs/" -> "docs", "a//./b" -> "a/b").
// Absolute prefixes ("/x"), ".." components and every path SanitizePath
// would reject are errors (*PathError with What "prefix").
func ValidatePrefix(prefix string) (string, error) {
	if strings.HasPrefix(prefix, "/") {
		return "", &PathError{What: "prefix", Path: prefix, Err: ErrPathAbsolute}
	}
	if prefix == "" {
		return "", nil
	}
	rel, err := sanitize(prefix, true)
	if err != nil {
		return "", &PathError{What: "prefix", Path: prefix, Err: err}
	}
	return rel, nil
}

// JoinPrefix places a sanitized relative path under a validated prefix
// ("" = repository root). Both arguments must already have been through
// ValidatePrefix and SanitizePath; nothing is re-checked.
func JoinPrefix(prefix, rel string) string {
	if prefix == "" {
		return rel
	}
	return prefix + "/" + rel
}

// UnderPrefix is the ownership test for a repository path p and a
// validated prefix: it reports whether p lies strictly inside the prefix
// directory and returns p relative to it. With the empty prefix every
// non-empty p is inside. (The Python's test breaks on trailing slashes;
// validated prefixes have none.)
func UnderPrefix(prefix, p string) (rel string, ok bool) {
	if p == "" {
		return "", false
	}
	if prefix == "" {
		return p, true
	}
	if len(p) > len(prefix)+1 && p[len(prefix)] == '/' && strings.HasPrefix(p, prefix) {
		return p[len(prefix)+1:], true
	}
	return "", false
}

// sanitize implements SanitizePath; allowEmpty (for prefixes) turns a path
// naming the root into "" instead of ErrPathEscapes.
func sanitize(p string, allowEmpty bool) (string, error) {
	if p == "" {
		return "", ErrEmptyPath
	}
	if len(p) > MaxPathBytes {
		return "", ErrPathTooLong
	}
	if !utf8.ValidString(p) {
		return "", ErrPathInvalidUTF8
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == 0:
			return "", ErrPathNUL
		case c < 0x20 || c == 0x7f:
			return "", ErrPathControl
		}
	}
	comps := strings.Split(strings.TrimLeft(p, "/"), "/")
	// Python order: traversal is decided on the raw components, before
	// normalisation, so "a/../b" is refused even though it stays inside.
	for _, c := range comps {
		if c == ".." {
			return "", ErrPathTraversal
		}
	}
	kept := comps[:0]
	for _, c := range comps {
		if c != "" && c != "." {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		if allowEmpty {
			return "", nil
		}
		return "", ErrPathEscapes
	}
	if isWindowsAbs(kept[0]) {
		return "", ErrPathAbsolute
	}
	for _, c := range kept {
		if len(c) > MaxComponentBytes {
			return "", ErrPathTooLong
		}
		for piece := range strings.SplitSeq(c, `\`) {
			if piece == ".." {
				return "", ErrPathTraversal
			}
			if isDotGit(piece) {
				return "", ErrPathDotGit
			}
		}
	}
	return strings.Join(kept, "/"), nil
}

// isWindowsAbs reports whether a first path component would make the path
// absolute or drive-relative on Windows: a drive letter followed by ':'
// ("C:", "C:\x", "c:foo") or a leading backslash ("\x", "\\server\share").
func isWindowsAbs(c string) bool {
	if strings.HasPrefix(c, `\`) {
		return true
	}
	return len(c) >= 2 && c[1] == ':' && (('a' <= c[0] && c[0] <= 'z') || ('A' <= c[0] && c[0] <= 'Z'))
}

// isDotGit reports whether a single path component would be taken for the
// ".git" directory by git on any platform: a port of git's is_ntfs_dotgit
// (".git" or "git~1", case-insensitive, followed only by dots/spaces and
// optionally ':' + anything, e.g. an NTFS stream name) applied after
// removing the code points HFS+ ignores (git's is_hfs_dotgit).
func isDotGit(c string) bool {
	if c == "" {
		return false
	}
	if strings.ContainsFunc(c, isHFSIgnorable) {
		c = strings.Map(func(r rune) rune {
			if isHFSIgnorable(r) {
				return -1
			}
			return r
		}, c)
	}
	var rest string
	switch {
	case len(c) >= 4 && c[0] == '.' && strings.EqualFold(c[1:4], "git"):
		rest = c[4:]
	case len(c) >= 5 && strings.EqualFold(c[:3], "git") && c[3:5] == "~1":
		rest = c[5:]
	default:
		return false
	}
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case ':', '\\', '/':
			return true
		case '.', ' ':
		default:
			return false
		}
	}
	return true
}

// isHFSIgnorable lists the code points HFS+ ignores in names (git's
// next_hfs_char): zero-width joiners and directional marks, deprecated
// format characters and the byte-order mark.
func isHFSIgnorable(r rune) bool {
	switch {
	case r == 0x200c, r == 0x200d, r == 0x200e, r == 0x200f:
		return true
	case 0x202a <= r && r <= 0x202e:
		return true
	case 0x206a <= r && r <= 0x206f:
		return true
	case r == 0xfeff:
		return true
	}
	return false
}
