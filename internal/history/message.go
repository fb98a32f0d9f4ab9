package history

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/gitpath"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// MaxSubject is the longest subject line Message writes, in characters.
const MaxSubject = 72

// Message returns the commit message for snap: a subject that says what
// changed, the list of changes, and trailers naming the Relay users and the
// snapshot. It depends only on its arguments (paths and user ids are sorted
// here, whatever order the snapshot holds them in).
//
// Subject:
//   - one change: "Add p", "Update p", "Rename old to new" (moves too),
//     "Delete p";
//   - several: "<Verb> N files in dir/", dir being the deepest directory that
//     holds every path involved (old paths of renames included), or
//     "<Verb> N files" when that is the root; the verb is Add, Rename or
//     Delete when every change is of that kind, else Update;
//   - none (a bootstrap or a users-only snapshot): "Snapshot of N files";
//   - a restore: "Restore p from snapshot #N" or "Restore N files from
//     snapshot #N".
//
// Paths are shortened with "…" to keep the subject within MaxSubject
// characters. The body lists every change, one per line, sorted by path
// ("added:    p", "modified: p", "renamed:  old -> new", "deleted:  p"),
// whenever there are two or more changes or the subject was shortened. Paths
// and ids that contain control characters, invalid UTF-8, leading or trailing
// spaces, a leading '"' or " -> " are written as Go-quoted strings.
//
// A snapshot written by a push says so in a paragraph of its own (its
// commit is used only where the pushed commit could not be; see
// ReadPacksWith).
//
// Trailers, after a blank line: "Co-authored-by: Name <email>" for each user
// id that authors maps to an identity with an e-mail address (sorted,
// duplicates removed); "Relay-Users: id1, id2" for the other users (sorted);
// and "Relay-Snapshot: <relay>/<folder>#<seq>". The message ends with a
// newline and no line has trailing white space.
func Message(snap *store.Snapshot, authors map[string]Identity) string {
	var b strings.Builder
	changes := sortedChanges(snap.Changes)
	subject, shortened := subjectLine(changes, len(snap.Files), snap.Origin.Restored)
	b.WriteString(subject)
	b.WriteString("\n\n")
	if len(changes) > 1 || shortened {
		for _, c := range changes {
			label := kindLabel(c.Kind)
			b.WriteString(label)
			b.WriteString(strings.Repeat(" ", len("modified: ")-len(label)))
			if c.Kind == store.ChangeRenamed {
				b.WriteString(quotePath(c.OldPath))
				b.WriteString(" -> ")
			}
			b.WriteString(quotePath(c.Path))
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	if p := snap.Origin.Pushed; p != nil {
		// Only where the pushed commit could not take the snapshot's place.
		b.WriteString("Written into Relay by git push of commit ")
		b.WriteString(plumbing.Hash(p.Commit).String())
		b.WriteString(".\n\n")
	}
	writeRenamed(&b, snap, changes)
	writeTrailers(&b, snap, authors)
	return b.String()
}

// writeRenamed notes the paths that git holds under another name (see
// gitpath): those the snapshot adds, changes or renames to, or, for a
// snapshot without changes, all of them. Only snapshots with such a path
// pay for working out the names.
func writeRenamed(b *strings.Builder, snap *store.Snapshot, changes []store.Change) {
	var want []string
	if len(changes) == 0 {
		for _, f := range snap.Files {
			if gitpath.PathChecks(f.Path, gitpath.Tree) {
				want = append(want, f.Path)
			}
		}
	}
	for _, c := range changes {
		if c.Kind != store.ChangeDeleted && gitpath.PathChecks(c.Path, gitpath.Tree) {
			want = append(want, c.Path)
		}
	}
	if len(want) == 0 {
		return
	}
	renamed := gitpath.Rename(snap.Files, func(f store.File) string { return f.Path }, gitpath.Tree)
	slices.Sort(want)
	var lines []string
	for _, p := range slices.Compact(want) {
		if g, ok := renamed[p]; ok {
			lines = append(lines, "  "+quotePath(p)+" -> "+quotePath(g)+"\n")
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("In git under another name (a name git, Windows or a file system cannot take):\n")
	b.WriteString(strings.Join(lines, ""))
	b.WriteByte('\n')
}

func kindLabel(k store.ChangeKind) string {
	switch k {
	case store.ChangeAdded:
		return "added:"
	case store.ChangeModified:
		return "modified:"
	case store.ChangeRenamed:
		return "renamed:"
	case store.ChangeDeleted:
		return "deleted:"
	}
	return "changed:"
}

func kindVerb(k store.ChangeKind) string {
	switch k {
	case store.ChangeAdded:
		return "Add"
	case store.ChangeRenamed:
		return "Rename"
	case store.ChangeDeleted:
		return "Delete"
	}
	return "Update"
}

func sortedChanges(in []store.Change) []store.Change {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b store.Change) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.OldPath, b.OldPath),
			cmp.Compare(a.Kind, b.Kind), strings.Compare(a.DocID, b.DocID))
	})
	return out
}

// subjectLine returns the subject and whether a path in it was shortened.
// restored is the snapshot a restore brought back (0: not a restore).
func subjectLine(changes []store.Change, numFiles int, restored uint64) (string, bool) {
	if restored != 0 && len(changes) > 0 {
		from := " from snapshot #" + strconv.FormatUint(restored, 10)
		if len(changes) > 1 {
			return "Restore " + plural(len(changes), "file") + from, false
		}
		p, s := shortenPath(quotePath(changes[0].Path), MaxSubject-len("Restore ")-len(from))
		return "Restore " + p + from, s
	}
	switch len(changes) {
	case 0:
		return "Snapshot of " + plural(numFiles, "file"), false
	case 1:
		c := changes[0]
		verb := kindVerb(c.Kind)
		if c.Kind == store.ChangeRenamed {
			oldP, newP := quotePath(c.OldPath), quotePath(c.Path)
			budget := MaxSubject - len("Rename  to ")
			oldMax, newMax := splitBudget(budget, runeLen(oldP), runeLen(newP))
			o, s1 := shortenPath(oldP, oldMax)
			n, s2 := shortenPath(newP, newMax)
			return verb + " " + o + " to " + n, s1 || s2
		}
		p, s := shortenPath(quotePath(c.Path), MaxSubject-len(verb)-1)
		return verb + " " + p, s
	}
	verb := kindVerb(changes[0].Kind)
	for _, c := range changes[1:] {
		if c.Kind != changes[0].Kind {
			verb = "Update"
			break
		}
	}
	head := verb + " " + plural(len(changes), "file")
	dir := commonDir(changes)
	if dir == "" {
		return head, false
	}
	d, s := shortenPath(quotePath(dir), MaxSubject-len(head)-len(" in /"))
	return head + " in " + d + "/", s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// commonDir is the deepest directory holding every path of changes ("" for
// the root).
func commonDir(changes []store.Change) string {
	dir := parentDir(changes[0].Path)
	for _, c := range changes {
		dir = commonPrefixDir(dir, parentDir(c.Path))
		if c.Kind == store.ChangeRenamed {
			dir = commonPrefixDir(dir, parentDir(c.OldPath))
		}
		if dir == "" {
			break
		}
	}
	return dir
}

func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// commonPrefixDir returns the longest directory that is a or an ancestor of a
// and also b or an ancestor of b.
func commonPrefixDir(a, b string) string {
	for a != "" && !(b == a || strings.HasPrefix(b, a+"/")) {
		a = parentDir(a)
	}
	return a
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// splitBudget shares budget characters between two strings of lengths a and
// b: the shorter keeps its length when it fits in half the budget.
func splitBudget(budget, a, b int) (int, int) {
	if a+b <= budget {
		return a, b
	}
	half := budget / 2
	switch {
	case a <= half:
		return a, budget - a
	case b <= budget-half:
		return budget - b, b
	}
	return half, budget - half
}

const ellipsis = "…"

// shortenPath fits p into max characters: it keeps the first directory and
// as many of the last components as fit ("notes/…/deep/plan.md"), else only
// the last components ("…/deep/plan.md"), else cuts the file name in its
// middle, keeping its extension ("…/a-very-lo…ng-name.md").
func shortenPath(p string, max int) (string, bool) {
	if runeLen(p) <= max {
		return p, false
	}
	if max < 1 {
		max = 1
	}
	parts := strings.Split(p, "/")
	last := len(parts) - 1
	if last > 0 {
		for k := last; k >= 1; k-- { // keep parts[len-k:]
			tail := strings.Join(parts[len(parts)-k:], "/")
			if k < last {
				if s := parts[0] + "/" + ellipsis + "/" + tail; runeLen(s) <= max {
					return s, true
				}
			}
			if s := ellipsis + "/" + tail; runeLen(s) <= max {
				return s, true
			}
		}
	}
	prefix := ""
	if last > 0 {
		prefix = ellipsis + "/"
	}
	name := parts[last]
	room := max - runeLen(prefix)
	if room < 3 {
		prefix, room = "", max
	}
	return prefix + cutMiddle(name, room), true
}

// cutMiddle shortens s to max characters by replacing its middle with "…".
func cutMiddle(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	if max <= 1 {
		return ellipsis
	}
	keep := max - 1
	tail := keep / 2
	if ext := strings.LastIndexByte(s, '.'); ext > 0 {
		if e := runeLen(s[ext:]); e <= keep/2 && e > tail {
			tail = e
		}
	}
	head := keep - tail
	return string(r[:head]) + ellipsis + string(r[len(r)-tail:])
}

// quotePath returns p, or p as a Go-quoted string when writing it as is
// would make a message line ambiguous or unsafe.
func quotePath(p string) string {
	if needsQuote(p) || strings.Contains(p, " -> ") {
		return strconv.Quote(p)
	}
	return p
}

func needsQuote(s string) bool {
	if s == "" || !utf8.ValidString(s) || s[0] == '"' || s[0] == ' ' || s[len(s)-1] == ' ' {
		return true
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			return true
		}
	}
	return false
}

func writeTrailers(b *strings.Builder, snap *store.Snapshot, authors map[string]Identity) {
	var coauthors, unmapped []string
	for _, u := range snap.Users {
		if u == "" {
			continue
		}
		if id, ok := authors[u]; ok {
			email := sanitizeIdent(id.Email)
			if email != "" {
				name := sanitizeIdent(id.Name)
				if name == "" {
					name = sanitizeIdent(u)
				}
				if name != "" {
					coauthors = append(coauthors, name+" <"+email+">")
					continue
				}
			}
		}
		if needsQuote(u) || strings.ContainsAny(u, ", ") {
			u = strconv.Quote(u)
		}
		unmapped = append(unmapped, u)
	}
	slices.Sort(coauthors)
	slices.Sort(unmapped)
	for _, c := range slices.Compact(coauthors) {
		b.WriteString("Co-authored-by: ")
		b.WriteString(c)
		b.WriteByte('\n')
	}
	if unmapped = slices.Compact(unmapped); len(unmapped) > 0 {
		b.WriteString("Relay-Users: ")
		b.WriteString(strings.Join(unmapped, ", "))
		b.WriteByte('\n')
	}
	b.WriteString("Relay-Snapshot: ")
	b.WriteString(strings.ToLower(snap.Folder.Relay))
	b.WriteByte('/')
	b.WriteString(strings.ToLower(snap.Folder.Folder))
	b.WriteByte('#')
	b.WriteString(strconv.FormatUint(snap.Seq, 10))
	b.WriteByte('\n')
}

// SnapshotOf reads the Relay-Snapshot trailer of a commit message written by
// Message: the folder and sequence number of the snapshot the commit was made
// from. ok is false for other messages (foreign commits, merges written by
// someone else).
func SnapshotOf(message string) (folder store.FolderID, seq uint64, ok bool) {
	msg := strings.TrimRight(message, "\n")
	para := msg[strings.LastIndex(msg, "\n\n")+1:]
	for line := range strings.SplitSeq(para, "\n") {
		v, found := strings.CutPrefix(line, "Relay-Snapshot: ")
		if !found {
			continue
		}
		ids, num, found := strings.Cut(v, "#")
		relay, fold, found2 := strings.Cut(ids, "/")
		n, err := strconv.ParseUint(num, 10, 64)
		if !found || !found2 || err != nil || relay == "" || fold == "" || strings.Contains(fold, "/") {
			return store.FolderID{}, 0, false
		}
		return store.FolderID{Relay: relay, Folder: fold}, n, true
	}
	return store.FolderID{}, 0, false
}
