// Package gitpath owns the names a folder's paths take where they cannot be
// written as they are: in git trees (names git refuses or reads itself,
// names a Windows checkout cannot hold, names over 255 bytes) and in
// directory exports (names over 255 bytes). The snapshot always keeps the
// original name; the mapping is a pure function of the names in one
// directory, so every clone and mirror agrees on it.
//
// A name that breaks a rule becomes "<stem>~<12 hex><ext>": the stem with
// the characters Windows refuses replaced by '_' and cut so that the whole
// name fits in 255 bytes, a hash of the original name, and its extension
// when that is short and alphanumeric (".gitmodules" → ".gitmodules~…",
// "aux.md" → "aux~….md", "what?.md" → "what_~….md"). Names that break no
// rule never change.
package gitpath

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxName is the longest name, in bytes, that common file systems hold.
const MaxName = 255

// Rules is a set of rules a name must keep.
type Rules uint8

// The rules.
const (
	// Long: at most MaxName bytes.
	Long Rules = 1 << iota
	// Git: not a name git refuses (".git") or reads from a tree
	// (".gitmodules", ".gitattributes"), in any case, HFS+ or NTFS spelling.
	Git
	// Windows: a name a Windows checkout can hold (no reserved device
	// name, no <>:"|?*\ or control character, no trailing dot or space).
	Windows

	// Tree is what git trees keep to.
	Tree = Long | Git | Windows
	// Local is what directory exports keep to.
	Local = Long
)

// Check returns the rules of rules that name breaks (0: none).
func Check(name string, rules Rules) Rules {
	var out Rules
	if rules&Long != 0 && len(name) > MaxName {
		out |= Long
	}
	if rules&Git != 0 && gitSpecial(name) {
		out |= Git
	}
	if rules&Windows != 0 && !validWindows(name) {
		out |= Windows
	}
	return out
}

// PathChecks reports whether any component of the slash path p breaks rules.
func PathChecks(p string, rules Rules) bool {
	for c := range strings.SplitSeq(p, "/") {
		if Check(c, rules) != 0 {
			return true
		}
	}
	return false
}

// mapped is the k-th candidate name for name.
func mapped(name string, k int) string {
	seed := "gitpath\x00" + name
	if k > 0 {
		seed += "\x00" + strconv.Itoa(k)
	}
	sum := sha256.Sum256([]byte(seed))
	tag := "~" + hex.EncodeToString(sum[:6])
	ext := ""
	if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i >= 2 && len(name)-i <= 17 && alnum(name[i+1:]) {
		ext = name[i:]
	}
	stem := []byte(name[:len(name)-len(ext)])
	for i, c := range stem {
		if c < 0x20 || strings.IndexByte(`<>:"/\|?*`, c) >= 0 {
			stem[i] = '_'
		}
	}
	if room := MaxName - len(tag) - len(ext); len(stem) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(stem[cut]) {
			cut--
		}
		stem = stem[:cut]
	}
	out := string(stem) + tag + ext
	if Check(out, Tree) != 0 {
		out = "_" + tag + ext
	}
	return out
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Siblings returns the names that the distinct names of one directory take
// under rules: names that keep the rules stay, the others are mapped, in
// byte order of the originals, each to its first candidate that no other
// name of the directory has taken. The result depends only on the set of
// names.
func Siblings(names []string, rules Rules) []string {
	out := make([]string, len(names))
	var bad []int
	taken := make(map[string]bool, len(names))
	for i, n := range names {
		if Check(n, rules) != 0 {
			bad = append(bad, i)
			continue
		}
		out[i] = n
		taken[n] = true
	}
	slices.SortFunc(bad, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	for _, i := range bad {
		for k := 0; ; k++ {
			if m := mapped(names[i], k); !taken[m] {
				out[i], taken[m] = m, true
				break
			}
		}
	}
	return out
}

// Rename returns, for the distinct slash paths of items (read with path)
// that rules make change, the path they take (nil when none changes).
func Rename[T any](items []T, path func(T) string, rules Rules) map[string]string {
	var hit bool
	for _, it := range items {
		if PathChecks(path(it), rules) {
			hit = true
			break
		}
	}
	if !hit {
		return nil
	}
	// The names in each directory, by directory.
	kids := map[string]map[string]bool{}
	for _, it := range items {
		p := path(it)
		dir := ""
		for c := range strings.SplitSeq(p, "/") {
			if kids[dir] == nil {
				kids[dir] = map[string]bool{}
			}
			kids[dir][c] = true
			if dir == "" {
				dir = c
			} else {
				dir += "/" + c
			}
		}
	}
	names := map[string]map[string]string{} // dir → name → new name
	for dir, set := range kids {
		list := make([]string, 0, len(set))
		for n := range set {
			list = append(list, n)
		}
		got := Siblings(list, rules)
		for i, n := range list {
			if got[i] != n {
				if names[dir] == nil {
					names[dir] = map[string]string{}
				}
				names[dir][n] = got[i]
			}
		}
	}
	out := map[string]string{}
	for _, it := range items {
		p := path(it)
		if !PathChecks(p, rules) {
			continue
		}
		var b strings.Builder
		dir := ""
		for c := range strings.SplitSeq(p, "/") {
			if dir != "" {
				b.WriteByte('/')
			}
			if m, ok := names[dir][c]; ok {
				b.WriteString(m)
			} else {
				b.WriteString(c)
			}
			if dir == "" {
				dir = c
			} else {
				dir += "/" + c
			}
		}
		out[p] = b.String()
	}
	return out
}
