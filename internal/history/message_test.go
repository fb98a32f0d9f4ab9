package history

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

var testFolder = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}

const trailer = "Relay-Snapshot: 6ba7b810-9dad-11d1-80b4-00c04fd430c8/f47ac10b-58cc-4372-a567-0e02b2c3d479#7\n"

func ch(kind store.ChangeKind, p string) store.Change { return store.Change{Kind: kind, Path: p} }

func TestMessage(t *testing.T) {
	long := "projects/2025/quarterly-planning/engineering/infrastructure/migration/very-long-document-name-about-things.md"
	cases := []struct {
		name    string
		changes []store.Change
		files   int
		want    string
	}{
		{"add", []store.Change{ch(store.ChangeAdded, "notes/plan.md")}, 1,
			"Add notes/plan.md\n\n" + trailer},
		{"update", []store.Change{ch(store.ChangeModified, "notes/plan.md")}, 1,
			"Update notes/plan.md\n\n" + trailer},
		{"delete", []store.Change{ch(store.ChangeDeleted, "x.md")}, 1,
			"Delete x.md\n\n" + trailer},
		{"rename", []store.Change{{Kind: store.ChangeRenamed, Path: "b.md", OldPath: "a.md"}}, 1,
			"Rename a.md to b.md\n\n" + trailer},
		{"move", []store.Change{{Kind: store.ChangeRenamed, Path: "archive/2024/a.md", OldPath: "notes/a.md"}}, 1,
			"Rename notes/a.md to archive/2024/a.md\n\n" + trailer},
		{"several in a directory", []store.Change{ch(store.ChangeModified, "notes/b.md"), ch(store.ChangeModified, "notes/a.md"), ch(store.ChangeAdded, "notes/x/c.md")}, 3,
			"Update 3 files in notes/\n\nmodified: notes/a.md\nmodified: notes/b.md\nadded:    notes/x/c.md\n\n" + trailer},
		{"several at the root", []store.Change{ch(store.ChangeModified, "notes/b.md"), ch(store.ChangeModified, "todo.md")}, 3,
			"Update 2 files\n\nmodified: notes/b.md\nmodified: todo.md\n\n" + trailer},
		{"all added", []store.Change{ch(store.ChangeAdded, "a/b/c.md"), ch(store.ChangeAdded, "a/b/d/e.md")}, 2,
			"Add 2 files in a/b/\n\nadded:    a/b/c.md\nadded:    a/b/d/e.md\n\n" + trailer},
		{"all deleted", []store.Change{ch(store.ChangeDeleted, "a/x.md"), ch(store.ChangeDeleted, "a/y.md")}, 2,
			"Delete 2 files in a/\n\ndeleted:  a/x.md\ndeleted:  a/y.md\n\n" + trailer},
		{"rename counts its old path", []store.Change{{Kind: store.ChangeRenamed, Path: "n/a/x.md", OldPath: "m/x.md"}, ch(store.ChangeModified, "n/a/y.md")}, 2,
			"Update 2 files\n\nrenamed:  m/x.md -> n/a/x.md\nmodified: n/a/y.md\n\n" + trailer},
		{"common prefix is not a directory", []store.Change{ch(store.ChangeModified, "notes/a.md"), ch(store.ChangeModified, "notes2/b.md")}, 2,
			"Update 2 files\n\nmodified: notes/a.md\nmodified: notes2/b.md\n\n" + trailer},
		{"bootstrap without changes", nil, 12, "Snapshot of 12 files\n\n" + trailer},
		{"one file, no change", nil, 1, "Snapshot of 1 file\n\n" + trailer},
		{"empty folder", nil, 0, "Snapshot of 0 files\n\n" + trailer},
		{"long path shortened, listed in the body", []store.Change{ch(store.ChangeModified, long)}, 1,
			"Update projects/…/migration/very-long-document-name-about-things.md\n\nmodified: " + long + "\n\n" + trailer},
		{"odd path quoted", []store.Change{ch(store.ChangeAdded, "new\nline.md")}, 1,
			"Add \"new\\nline.md\"\n\n" + trailer},
		{"arrow quoted", []store.Change{{Kind: store.ChangeRenamed, Path: "a -> b.md", OldPath: " x"}}, 1,
			"Rename \" x\" to \"a -> b.md\"\n\n" + trailer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := &store.Snapshot{Folder: testFolder, Seq: 7, Changes: c.changes, Files: make([]store.File, c.files)}
			got := Message(snap, nil)
			if got != c.want {
				t.Errorf("Message:\n%s\nwant:\n%s", got, c.want)
			}
			checkMessageShape(t, got)
		})
	}
}

func checkMessageShape(t *testing.T, msg string) {
	t.Helper()
	if !strings.HasSuffix(msg, "\n") || strings.HasSuffix(msg, "\n\n") {
		t.Errorf("message must end with exactly one newline: %q", msg)
	}
	lines := strings.Split(strings.TrimSuffix(msg, "\n"), "\n")
	if n := utf8.RuneCountInString(lines[0]); n > MaxSubject {
		t.Errorf("subject has %d characters: %q", n, lines[0])
	}
	if len(lines) < 2 || lines[1] != "" {
		t.Errorf("no blank line after the subject: %q", msg)
	}
	for _, l := range lines {
		if strings.TrimRight(l, " \t") != l {
			t.Errorf("trailing white space: %q", l)
		}
	}
	if strings.Contains(msg, "Auto-sync") {
		t.Errorf("the original's message: %q", msg)
	}
}

func TestMessageSubjectAlwaysFits(t *testing.T) {
	dir := strings.Repeat("directory-name/", 8)
	names := []string{
		strings.Repeat("x", 200) + ".md",
		dir + strings.Repeat("y", 100) + ".canvas",
		strings.Repeat("日本語", 40) + "/" + strings.Repeat("ノート", 40) + ".md",
		dir + "short.md",
		"a/" + strings.Repeat("b", 71),
		strings.Repeat("c", 72),
	}
	for _, a := range names {
		for _, b := range names {
			for _, changes := range [][]store.Change{
				{{Kind: store.ChangeRenamed, OldPath: a, Path: b}},
				{ch(store.ChangeModified, a)},
				{ch(store.ChangeAdded, a), ch(store.ChangeAdded, dir+"z.md")},
				{ch(store.ChangeModified, dir+"a.md"), ch(store.ChangeModified, dir+"b.md")},
			} {
				msg := Message(&store.Snapshot{Folder: testFolder, Seq: 1, Changes: changes}, nil)
				checkMessageShape(t, msg)
				checkMessageShape(t, Message(&store.Snapshot{Folder: testFolder, Seq: 12345, Changes: changes, Origin: store.Origin{Restored: 12344}}, nil))
				subject, _, _ := strings.Cut(msg, "\n")
				if len(changes) == 1 && subject != "Update "+a && !strings.Contains(msg, "\n\n"+kindLabel(changes[0].Kind)) {
					t.Errorf("shortened subject without the list: %q", msg)
				}
			}
		}
	}
	if s, _ := subjectLine([]store.Change{{Kind: store.ChangeRenamed, OldPath: dir + "old-name.md", Path: dir + "new-name.md"}}, 1, 0); s != "Rename …/directory-name/old-name.md to …/directory-name/new-name.md" {
		t.Errorf("rename subject %q", s)
	}
}

func TestMessageOfRestoreAndPush(t *testing.T) {
	restored := store.Origin{Restored: 7}
	for _, tc := range []struct {
		snap *store.Snapshot
		want string
	}{
		{&store.Snapshot{Folder: testFolder, Seq: 9, Origin: restored, Changes: []store.Change{ch(store.ChangeAdded, "notes/plan.md")}},
			"Restore notes/plan.md from snapshot #7\n\nRelay-Snapshot: " + testFolder.String() + "#9\n"},
		{&store.Snapshot{Folder: testFolder, Seq: 9, Origin: restored, Changes: []store.Change{ch(store.ChangeAdded, "b.md"), ch(store.ChangeModified, "a.md")}},
			"Restore 2 files from snapshot #7\n\nmodified: a.md\nadded:    b.md\n\nRelay-Snapshot: " + testFolder.String() + "#9\n"},
		{&store.Snapshot{Folder: testFolder, Seq: 9, Origin: store.Origin{Pushed: &store.Pushed{Commit: [20]byte{0xab, 0xcd}}}, Changes: []store.Change{ch(store.ChangeModified, "a.md")}},
			"Update a.md\n\nWritten into Relay by git push of commit abcd000000000000000000000000000000000000.\n\nRelay-Snapshot: " + testFolder.String() + "#9\n"},
	} {
		got := Message(tc.snap, nil)
		checkMessageShape(t, got)
		if got != tc.want {
			t.Errorf("message\n%q\nwant\n%q", got, tc.want)
		}
	}
}

func TestMessageTrailers(t *testing.T) {
	snap := &store.Snapshot{Folder: testFolder, Seq: 7,
		Users:   []string{"u3", "u1", "", "u2", "u5", "u1", "u4", "u6", "odd, id", "u7"},
		Changes: []store.Change{ch(store.ChangeModified, "a.md")}}
	authors := map[string]Identity{
		"u1": {Name: "Zoe <z>", Email: " zoe@example.com\n"},
		"u2": {Name: "Adam", Email: "adam@example.com"},
		"u4": {Name: "Adam", Email: "adam@example.com"}, // same person, two ids
		"u5": {Name: "No Address"},
		"u6": {Email: "nameless@example.com"},
		"u7": {},
	}
	want := "Update a.md\n\n" +
		"Co-authored-by: Adam <adam@example.com>\n" +
		"Co-authored-by: Zoe z <zoe@example.com>\n" +
		"Co-authored-by: u6 <nameless@example.com>\n" +
		"Relay-Users: \"odd, id\", u3, u5, u7\n" + trailer
	if got := Message(snap, authors); got != want {
		t.Errorf("Message:\n%s\nwant:\n%s", got, want)
	}
}

func TestIdentity(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	a, c := IdentityFromEnv(getenv)
	if a != DefaultIdentity || c != DefaultIdentity {
		t.Errorf("empty env: %v, %v", a, c)
	}
	env["GIT_AUTHOR_NAME"] = "Ada"
	a, c = IdentityFromEnv(getenv)
	if want := (Identity{"Ada", DefaultIdentity.Email}); a != want || c != want {
		t.Errorf("author name only: %v, %v", a, c)
	}
	env["GIT_AUTHOR_EMAIL"] = "<ada@example.org>"
	env["GIT_COMMITTER_EMAIL"] = "bot@example.org"
	a, c = IdentityFromEnv(getenv)
	if a != (Identity{"Ada", "ada@example.org"}) || c != (Identity{"Ada", "bot@example.org"}) {
		t.Errorf("got %v, %v", a, c)
	}
	for in, want := range map[string]string{
		"  Ada Lovelace. ": "Ada Lovelace.", `"Quoted"`: "Quoted", "a<b>c": "abc", "multi\nline": "multiline",
		",;:": "", "Zoë": "Zoë", "\x00x\x7f": "x",
	} {
		if got := sanitizeIdent(in); got != want {
			t.Errorf("sanitizeIdent(%q) = %q, want %q", in, got, want)
		}
	}
	s := New(Config{Author: Identity{Name: " ", Email: "a@b"}, Committer: Identity{Name: "C"}}, memory.NewStorage())
	if s.Author() != (Identity{DefaultIdentity.Name, "a@b"}) || s.Committer() != (Identity{"C", "a@b"}) {
		t.Errorf("New: author %v, committer %v", s.Author(), s.Committer())
	}
}

func TestCommitDates(t *testing.T) {
	s := New(Config{}, memory.NewStorage())
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 1, 1, 0, 0, 0, 999999999, time.UTC), " 1735689600 +0000"},
		{time.Date(2025, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600)), " 1735689600 +0000"},
		{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), " 0 +0000"},
		{time.Time{}, " 0 +0000"},
	} {
		m := s.Meta(&store.Snapshot{Folder: testFolder, Time: c.t})
		if !strings.HasSuffix(m.Author, c.want) || !strings.HasSuffix(m.Committer, c.want) {
			t.Errorf("%v: author %q, committer %q; want suffix %q", c.t, m.Author, m.Committer, c.want)
		}
	}
}

func TestCommitAndLinearErrors(t *testing.T) {
	s := New(Config{}, memory.NewStorage())
	snap := &store.Snapshot{Folder: testFolder, Seq: 1, Time: time.Unix(1e9, 0), Files: filesOf("a.md")}
	tree, _ := s.Tree(snap.Files)
	p := plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")
	if _, err := s.Commit(snap, nil, plumbing.ZeroHash); err == nil {
		t.Error("zero tree accepted")
	}
	if _, err := s.Commit(snap, []plumbing.Hash{plumbing.ZeroHash}, tree); err == nil {
		t.Error("zero parent accepted")
	}
	if _, err := s.Commit(snap, []plumbing.Hash{p, p}, tree); err == nil {
		t.Error("duplicate parent accepted")
	}
	// A merge commit (what a connector writes when its remote moved).
	q := plumbing.NewHash("89abcdef0123456789abcdef0123456789abcdef")
	h, err := s.Commit(snap, []plumbing.Hash{p, q}, tree)
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := s.objects.EncodedObject(plumbing.CommitObject, h)
	r, _ := obj.Reader()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := r.Read(buf)
	b.Write(buf[:n])
	if !strings.Contains(b.String(), "\nparent "+p.String()+"\nparent "+q.String()+"\n") {
		t.Errorf("merge commit:\n%s", b.String())
	}

	snap2 := *snap
	snap2.Seq = 1
	if _, err := s.Linear([]*store.Snapshot{snap, &snap2}, plumbing.ZeroHash); err == nil {
		t.Error("repeated sequence number accepted")
	}
	snap2.Seq, snap2.Folder.Folder = 2, "other"
	if _, err := s.Linear([]*store.Snapshot{snap, &snap2}, plumbing.ZeroHash); err == nil {
		t.Error("mixed folders accepted")
	}
	bad := *snap
	bad.Files = filesOf("a", "a/b")
	if _, err := s.Append(&bad, plumbing.ZeroHash); err == nil || !strings.Contains(err.Error(), "#1") {
		t.Errorf("bad tree: %v", err)
	}
	// Linear on top of an existing commit.
	ids, err := s.Linear([]*store.Snapshot{snap}, h)
	if err != nil || len(ids) != 1 {
		t.Fatal(ids, err)
	}
	full := New(Config{}, memory.NewStorage())
	all, _ := full.Linear(goldenHistory(), plumbing.ZeroHash)
	rest, _ := New(Config{}, memory.NewStorage()).Linear(goldenHistory()[2:], all[1])
	if all[4] != rest[2] {
		t.Errorf("continuing a history from a parent gives %s, the whole history %s", rest[2], all[4])
	}
}

func TestSnapshotOf(t *testing.T) {
	for _, snap := range goldenHistory() {
		f, seq, ok := SnapshotOf(Message(snap, goldenConfig.Authors))
		if !ok || f != snap.Folder || seq != snap.Seq {
			t.Errorf("SnapshotOf(message of #%d) = %v, %d, %v", snap.Seq, f, seq, ok)
		}
	}
	for _, m := range []string{"", "Merge branch 'main'\n", "x\n\nRelay-Snapshot: nope\n", "Relay-Snapshot: a/b#1\n\nbody\n",
		"x\n\nRelay-Snapshot: a/b/c#1\n", "x\n\nRelay-Snapshot: a/b#-1\n"} {
		if f, seq, ok := SnapshotOf(m); ok {
			t.Errorf("SnapshotOf(%q) = %v, %d, true", m, f, seq)
		}
	}
}
