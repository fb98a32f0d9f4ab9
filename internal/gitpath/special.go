package gitpath

import (
	"strings"
	"unicode/utf8"
)

// gitSpecial reports whether git's fsck (receive.fsckObjects) or checkout
// treats name as ".git", ".gitmodules" or ".gitattributes", as git's
// is_hfs_dot* and is_ntfs_dot* do, also for the parts of a name split on
// backslashes.
func gitSpecial(name string) bool {
	for part := name; ; {
		if hfsDot(part, "git") || ntfsDotGit(part) ||
			hfsDot(part, "gitmodules") || ntfsDot(part, "gitmodules", "gi7eba") ||
			hfsDot(part, "gitattributes") || ntfsDot(part, "gitattributes", "gi7d29") {
			return true
		}
		i := strings.IndexByte(part, '\\')
		if i < 0 {
			return false
		}
		part = part[i+1:]
	}
}

// hfsIgnored are the code points HFS+ ignores in names.
func hfsIgnored(r rune) bool {
	switch r {
	case 0x200c, 0x200d, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e,
		0x206a, 0x206b, 0x206c, 0x206d, 0x206e, 0x206f, 0xfeff:
		return true
	}
	return false
}

// hfsDot reports whether name is "." + needle on HFS+ (case-insensitive,
// ignorable code points skipped).
func hfsDot(name, needle string) bool {
	want := "." + needle
	i := 0
	for _, r := range name {
		if r == utf8.RuneError || hfsIgnored(r) {
			if r == utf8.RuneError {
				return false
			}
			continue
		}
		if i >= len(want) || r > 127 || lower(byte(r)) != want[i] {
			return false
		}
		i++
	}
	return i == len(want)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// onlySpacesAndPeriods reports whether rest is spaces and periods up to its
// end or a ':' (an NTFS stream).
func onlySpacesAndPeriods(rest string) bool {
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case ':':
			return true
		case ' ', '.':
		default:
			return false
		}
	}
	return true
}

// ntfsDotGit is git's is_ntfs_dotgit.
func ntfsDotGit(name string) bool {
	var rest string
	switch {
	case len(name) >= 5 && strings.EqualFold(name[:5], "git~1"):
		rest = name[5:]
	case len(name) >= 4 && strings.EqualFold(name[:4], ".git"):
		rest = name[4:]
	default:
		return false
	}
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '/', '\\':
			return true
		case '.', ' ':
		default:
			return false
		}
	}
	return true
}

// ntfsDot is git's is_ntfs_dot_generic: "." + needle, its 8.3 short names
// ("gitmod~1") and the fall-back short names built on shortPrefix.
func ntfsDot(name, needle, shortPrefix string) bool {
	if len(name) > len(needle) && name[0] == '.' && strings.EqualFold(name[1:1+len(needle)], needle) {
		return onlySpacesAndPeriods(name[1+len(needle):])
	}
	if len(name) >= 8 && strings.EqualFold(name[:6], needle[:6]) && name[6] == '~' && name[7] >= '1' && name[7] <= '4' {
		return onlySpacesAndPeriods(name[8:])
	}
	if len(name) == len(needle)+1 && name[0] == '.' && strings.EqualFold(name[1:], needle) {
		return true
	}
	sawTilde := false
	i := 0
	for ; i < 8; i++ {
		if i >= len(name) {
			return false
		}
		c := name[i]
		switch {
		case sawTilde:
			if c < '0' || c > '9' {
				return false
			}
		case c == '~':
			i++
			if i >= len(name) || name[i] < '1' || name[i] > '9' {
				return false
			}
			sawTilde = true
		case i >= 6, c&0x80 != 0, lower(c) != shortPrefix[i]:
			return false
		}
	}
	return onlySpacesAndPeriods(name[i:])
}

// validWindows is the per-name part of git's is_valid_win32_path, with the
// backslash (a separator there) refused too.
func validWindows(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || strings.IndexByte(`<>:"|?*\`, c) >= 0 {
			return false
		}
	}
	if name != "." && name != ".." && name != "" {
		if c := name[len(name)-1]; c == '.' || c == ' ' {
			return false
		}
	}
	l := strings.ToLower(name)
	for _, r := range []string{"conin$", "conout$", "con", "prn", "aux", "nul"} {
		if rest, ok := strings.CutPrefix(l, r); ok && reservedTail(rest) {
			return false
		}
	}
	for _, r := range []string{"com", "lpt"} {
		if rest, ok := strings.CutPrefix(l, r); ok && rest != "" && rest[0] >= '1' && rest[0] <= '9' && reservedTail(rest[1:]) {
			return false
		}
	}
	return true
}

// reservedTail: what may follow a reserved device name and keep it
// reserved: spaces, then the end, an extension or a stream.
func reservedTail(rest string) bool {
	rest = strings.TrimLeft(rest, " ")
	return rest == "" || rest[0] == '.' || rest[0] == ':'
}
