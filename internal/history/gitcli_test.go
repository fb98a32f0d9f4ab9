package history

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// A synthesized history, written by go-git into a real repository, read back
// with the git CLI: fsck, log, ls-tree, cat-file, trailers.
func TestHistoryReadByGit(t *testing.T) {
	needGit(t)
	dir, st := bareRepo(t)
	g := newGen(11, 40, true)
	snaps := g.history(60)
	putBlobs(t, st, g.blobs)
	s := New(goldenConfig, st)
	ids, err := s.Linear(snaps, plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	setRef(t, st, "refs/heads/main", ids[len(ids)-1])

	git(t, dir, nil, "fsck", "--strict", "--no-dangling", "--no-progress")

	revs := strings.Fields(git(t, dir, nil, "rev-list", "--reverse", "--topo-order", "main"))
	if want := hashStrings(ids); !slices.Equal(revs, want) {
		t.Fatalf("rev-list:\n%v\nwant\n%v", revs, want)
	}
	if roots := strings.Fields(git(t, dir, nil, "rev-list", "--max-parents=0", "main")); !slices.Equal(roots, revs[:1]) {
		t.Fatalf("root commits %v, want %v", roots, revs[:1])
	}

	// One record per commit, fields separated by NUL, records by \x01.
	out := git(t, dir, nil, "log", "--reverse", "--date=iso-strict",
		"--format=%H%x00%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%cd%x00%B%x00%(trailers:key=Relay-Snapshot,valueonly,separator=)%x01", "main")
	records := strings.Split(strings.TrimSuffix(strings.TrimSpace(out), "\x01"), "\x01\n")
	if len(records) != len(snaps) {
		t.Fatalf("git log shows %d commits, want %d", len(records), len(snaps))
	}
	for i, rec := range records {
		snap := snaps[i]
		f := strings.Split(rec, "\x00")
		date := snap.Time.UTC().Format("2006-01-02T15:04:05+00:00")
		want := []string{ids[i].String(), "Ada Lovelace", "ada@example.org", date, "Relay Git Sync", "sync@example.org", date,
			Message(snap, goldenConfig.Authors), fmt.Sprintf("%s#%d", snap.Folder, snap.Seq)}
		if !slices.Equal(f, want) {
			t.Fatalf("commit %d: git log shows\n%q\nwant\n%q", i, f, want)
		}

		lines := gitTreeFiles(t, dir, ids[i])
		var wantLines []string
		for _, file := range snap.Files {
			wantLines = append(wantLines, fmt.Sprintf("100644 blob %s\t%s", file.Blob, file.Path))
		}
		if !slices.Equal(lines, wantLines) {
			t.Fatalf("commit %d: git ls-tree -r:\n%q\nwant\n%q", i, lines, wantLines)
		}
	}

	// The raw commit as git prints it.
	raw := git(t, dir, nil, "cat-file", "-p", ids[1].String())
	tree := strings.TrimSpace(git(t, dir, nil, "rev-parse", ids[1].String()+"^{tree}"))
	m := s.Meta(snaps[1])
	want := "tree " + tree + "\nparent " + ids[0].String() + "\nauthor " + m.Author + "\ncommitter " + m.Committer + "\n\n" + m.Message
	if raw != want {
		t.Fatalf("git cat-file -p:\n%s\nwant\n%s", raw, want)
	}
	if !strings.HasPrefix(m.Author, "Ada Lovelace <ada@example.org> "+strconv.FormatInt(snaps[1].Time.Unix(), 10)+" +0000") {
		t.Fatalf("author line %q", m.Author)
	}
	// git agrees on the trailers.
	tr := git(t, dir, []byte(m.Message), "interpret-trailers", "--parse")
	if want := m.Message[strings.LastIndex(m.Message, "\n\n")+2:]; tr != want || !strings.Contains(tr, "Relay-Snapshot: ") {
		t.Fatalf("git interpret-trailers --parse:\n%s\nwant:\n%s", tr, want)
	}
}

func hashStrings(ids []plumbing.Hash) []string {
	out := make([]string, len(ids))
	for i, h := range ids {
		out[i] = h.String()
	}
	return out
}

// gitQuote quotes a path as git ls-tree does without -z (core.quotePath).
func gitQuote(p string) string {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			var b strings.Builder
			b.WriteByte('"')
			for i := 0; i < len(p); i++ {
				switch c := p[i]; {
				case c == '"' || c == '\\':
					b.WriteByte('\\')
					b.WriteByte(c)
				case c == '\t':
					b.WriteString(`\t`)
				case c == '\n':
					b.WriteString(`\n`)
				case c < 0x20 || c >= 0x7f:
					fmt.Fprintf(&b, "\\%03o", c)
				default:
					b.WriteByte(c)
				}
			}
			b.WriteByte('"')
			return b.String()
		}
	}
	return p
}

// A fast-import stream built from Meta and the snapshots' files (as the
// remote helper's import would) gives git the very same commit ids.
func TestFastImportSameIDs(t *testing.T) {
	needGit(t)
	g := newGen(5, 30, true)
	snaps := g.history(80)
	snaps = append(snaps, &store.Snapshot{Folder: g.folder, Seq: 81, Time: g.t.Add(1e9)}) // everything deleted
	s := New(goldenConfig, memory.NewStorage())
	ids, err := s.Linear(snaps, plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}

	var stream strings.Builder
	data := func(b []byte) { fmt.Fprintf(&stream, "data %d\n%s\n", len(b), b) }
	ids2 := make([]store.BlobID, 0, len(g.blobs))
	for id := range g.blobs {
		ids2 = append(ids2, id)
	}
	slices.SortFunc(ids2, func(a, b store.BlobID) int { return strings.Compare(a.String(), b.String()) })
	for _, id := range ids2 {
		stream.WriteString("blob\n")
		data(g.blobs[id])
	}
	var prev []store.File
	for i, snap := range snaps {
		m := s.Meta(snap)
		fmt.Fprintf(&stream, "commit refs/heads/main\nmark :%d\nauthor %s\ncommitter %s\n", i+1, m.Author, m.Committer)
		data([]byte(m.Message))
		// Only what changed, as an incremental import would send it.
		cur := map[string]store.BlobID{}
		for _, f := range snap.Files {
			cur[f.Path] = f.Blob
		}
		for _, f := range prev {
			if _, ok := cur[f.Path]; !ok {
				fmt.Fprintf(&stream, "D %s\n", gitQuote(f.Path))
			}
		}
		old := map[string]store.BlobID{}
		for _, f := range prev {
			old[f.Path] = f.Blob
		}
		for _, f := range snap.Files {
			if b, ok := old[f.Path]; !ok || b != f.Blob {
				fmt.Fprintf(&stream, "M 100644 %s %s\n", f.Blob, gitQuote(f.Path))
			}
		}
		stream.WriteString("\n")
		prev = snap.Files
	}
	dir, _ := bareRepo(t)
	git(t, dir, []byte(stream.String()), "fast-import", "--quiet")
	revs := strings.Fields(git(t, dir, nil, "rev-list", "--reverse", "main"))
	if want := hashStrings(ids); !slices.Equal(revs, want) {
		t.Fatalf("fast-import ids:\n%v\nwant\n%v", revs, want)
	}
	git(t, dir, nil, "fsck", "--strict", "--no-dangling", "--no-progress")
}
