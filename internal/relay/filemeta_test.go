package relay

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	id1 = "11111111-1111-4111-8111-111111111111"
	id2 = "22222222-2222-4222-8222-222222222222"
	id3 = "33333333-3333-4333-8333-333333333333"
	id4 = "44444444-4444-4444-8444-444444444444"
	id5 = "55555555-5555-4555-8555-555555555555"
	id6 = "66666666-6666-4666-8666-666666666666"
	id7 = "77777777-7777-4777-8777-777777777777"
)

func TestKindOf(t *testing.T) {
	tests := map[string]EntryKind{
		"folder": KindFolder, "markdown": KindMarkdown, "document": KindMarkdown, "canvas": KindCanvas,
		"image": KindFile, "pdf": KindFile, "audio": KindFile, "video": KindFile, "file": KindFile,
		"base": KindFile, "": KindFile, "Folder": KindFile, "something-new": KindFile,
	}
	for typ, want := range tests {
		if got := KindOf(typ); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", typ, got, want)
		}
	}
	for k, want := range map[EntryKind]string{KindFolder: "folder", KindMarkdown: "document", KindCanvas: "canvas", KindFile: "file"} {
		if got := k.ResourceType(); got != want {
			t.Errorf("%q.ResourceType() = %q, want %q", k, got, want)
		}
	}
}

func TestParseFileMetaValid(t *testing.T) {
	pngMeta := map[string]any{"id": id3, "type": "image", "hash": strings.ToUpper(sha), "mimetype": "image/png",
		"synctime": 1700000000123.0, "version": 0.0}
	m := map[string]any{
		"/notes/a.md":     map[string]any{"id": id1, "type": "markdown", "version": 0.0},
		"/notes":          map[string]any{"id": id2, "type": "folder", "version": 0.0},
		"/img/a.png":      pngMeta,
		"/board.canvas":   map[string]any{"id": strings.ToUpper(id4), "type": "canvas", "version": 0.0},
		"/tasks.base":     map[string]any{"id": id5, "type": "base", "hash": sha, "mimetype": "application/vnd.obsidian.base+yaml", "synctime": int64(42)},
		"/legacy.md":      map[string]any{"id": id6, "type": "document", "hash": "not-a-hash", "synctime": "soon"},
		"/untyped.bin":    map[string]any{"id": id7, "hash": sha, "extra": []any{1.0}},
		"/notes/sub/b.md": map[string]any{"id": "88888888-8888-4888-8888-888888888888", "type": "markdown", "hash": sha},
	}
	entries, problems := ParseFileMeta(m)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	want := []Entry{
		{Path: "/board.canvas", RelPath: "board.canvas", ID: id4, Type: "canvas"},
		{Path: "/img/a.png", RelPath: "img/a.png", ID: id3, Type: "image", Hash: sha, MimeType: "image/png", SyncTime: 1700000000123},
		{Path: "/legacy.md", RelPath: "legacy.md", ID: id6, Type: "document"},
		{Path: "/notes", RelPath: "notes", ID: id2, Type: "folder"},
		{Path: "/notes/a.md", RelPath: "notes/a.md", ID: id1, Type: "markdown"},
		{Path: "/notes/sub/b.md", RelPath: "notes/sub/b.md", ID: "88888888-8888-4888-8888-888888888888", Type: "markdown", Hash: sha},
		{Path: "/tasks.base", RelPath: "tasks.base", ID: id5, Type: "base", Hash: sha, MimeType: "application/vnd.obsidian.base+yaml", SyncTime: 42},
		{Path: "/untyped.bin", RelPath: "untyped.bin", ID: id7, Hash: sha},
	}
	if len(entries) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i := range want {
		got := entries[i]
		if got.Raw == nil || !reflect.DeepEqual(got.Raw, m[got.Path]) {
			t.Errorf("entry %q: Raw not the input object", got.Path)
		}
		got.Raw = nil
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got, want[i])
		}
	}
	kinds := []EntryKind{KindCanvas, KindFile, KindMarkdown, KindFolder, KindMarkdown, KindMarkdown, KindFile, KindFile}
	for i, e := range entries {
		if e.Kind() != kinds[i] {
			t.Errorf("%q.Kind() = %q, want %q", e.Path, e.Kind(), kinds[i])
		}
	}
}

func TestParseFileMetaProblems(t *testing.T) {
	m := map[string]any{
		"/ok.md":             map[string]any{"id": id1, "type": "markdown"},
		"/not-object.md":     "just a string",
		"/nil.md":            nil,
		"/array.md":          []any{id1},
		"/no-id.md":          map[string]any{"type": "markdown"},
		"/bad-id.md":         map[string]any{"id": "../../etc", "type": "markdown"},
		"/num-id.md":         map[string]any{"id": 5.0, "type": "markdown"},
		"/compound-id.md":    map[string]any{"id": uRelay + "-" + uDoc, "type": "markdown"},
		"/folder-no-id":      map[string]any{"type": "folder"},
		"/img/no-hash.png":   map[string]any{"id": id2, "type": "image"},
		"/img/short.png":     map[string]any{"id": id2, "type": "image", "hash": "abc"},
		"/img/numhash.png":   map[string]any{"id": id2, "type": "pdf", "hash": 1.0},
		"/base-no-hash.base": map[string]any{"id": id2, "type": "base"},
		"/untyped":           map[string]any{"id": id2},
		"/../escape.md":      map[string]any{"id": id3, "type": "markdown"},
		"/.git/config":       map[string]any{"id": id3, "type": "file", "hash": sha},
		"/sub/.GIT/hooks/x":  map[string]any{"id": id3, "type": "file", "hash": sha},
		"/nul\x00.md":        map[string]any{"id": id3, "type": "markdown"},
		"":                   map[string]any{"id": id3, "type": "markdown"},
		"/":                  map[string]any{"id": id3, "type": "folder"},
	}
	entries, problems := ParseFileMeta(m)
	if len(entries) != 1 || entries[0].Path != "/ok.md" {
		t.Fatalf("entries = %+v", entries)
	}
	wantErr := map[string]error{
		"/not-object.md":     ErrEntryNotObject,
		"/nil.md":            ErrEntryNotObject,
		"/array.md":          ErrEntryNotObject,
		"/no-id.md":          ErrEntryID,
		"/bad-id.md":         ErrEntryID,
		"/num-id.md":         ErrEntryID,
		"/compound-id.md":    ErrEntryID,
		"/folder-no-id":      ErrEntryID,
		"/img/no-hash.png":   ErrEntryHash,
		"/img/short.png":     ErrEntryHash,
		"/img/numhash.png":   ErrEntryHash,
		"/base-no-hash.base": ErrEntryHash,
		"/untyped":           ErrEntryHash,
		"/../escape.md":      ErrPathTraversal,
		"/.git/config":       ErrPathDotGit,
		"/sub/.GIT/hooks/x":  ErrPathDotGit,
		"/nul\x00.md":        ErrPathNUL,
		"":                   ErrEmptyPath,
		"/":                  ErrPathEscapes,
	}
	if len(problems) != len(wantErr) {
		t.Fatalf("got %d problems, want %d: %v", len(problems), len(wantErr), problems)
	}
	for i, p := range problems {
		if i > 0 && problems[i-1].Path >= p.Path {
			t.Errorf("problems not sorted: %q before %q", problems[i-1].Path, p.Path)
		}
		want, ok := wantErr[p.Path]
		if !ok {
			t.Errorf("unexpected problem %v", p)
			continue
		}
		if !errors.Is(p, want) || !errors.Is(p.Err, want) {
			t.Errorf("problem for %q = %v, want %v", p.Path, p.Err, want)
		}
		if p.Entry.Path != p.Path {
			t.Errorf("problem entry path %q != %q", p.Entry.Path, p.Path)
		}
		if !strings.HasPrefix(p.Error(), "filemeta entry ") {
			t.Errorf("problem message %q", p.Error())
		}
	}
	// Partial entries carry what could be decoded.
	for _, p := range problems {
		if p.Path == "/img/short.png" && (p.Entry.ID != id2 || p.Entry.Type != "image" || p.Entry.RelPath != "img/short.png") {
			t.Errorf("partial entry = %+v", p.Entry)
		}
	}
}

func TestParseFileMetaDuplicatesAndConflicts(t *testing.T) {
	md := func(id string) map[string]any { return map[string]any{"id": id, "type": "markdown"} }
	m := map[string]any{
		// Same RelPath "a.md": the canonical key wins even though "//a.md" sorts first.
		"//a.md":  md(id1),
		"/a.md":   md(id2),
		"/./a.md": md(id3),
		// No canonical key for "b.md": the smallest key wins.
		"/b.md/":   md(id4),
		"/./b.md/": md(id5),
		// "x" is a markdown file, but "x/y.md" needs x to be a directory.
		"/x":      md(id6),
		"/x/y.md": md(id7),
		// "f" is an explicit folder and also has a child: no conflict.
		"/f":      map[string]any{"id": id1, "type": "folder"},
		"/f/g.md": md(id2),
		// A file whose path is the parent of a folder entry.
		"/p":   md(id3),
		"/p/q": map[string]any{"id": id4, "type": "folder"},
	}
	entries, problems := ParseFileMeta(m)
	var gotPaths []string
	for _, e := range entries {
		gotPaths = append(gotPaths, e.Path)
	}
	wantPaths := []string{"/./b.md/", "/a.md", "/f", "/f/g.md", "/p/q", "/x/y.md"}
	if !reflect.DeepEqual(gotPaths, wantPaths) {
		t.Fatalf("entries = %q, want %q", gotPaths, wantPaths)
	}
	wantProblems := map[string]error{
		"//a.md":  ErrEntryDuplicate,
		"/./a.md": ErrEntryDuplicate,
		"/b.md/":  ErrEntryDuplicate,
		"/x":      ErrEntryConflict,
		"/p":      ErrEntryConflict,
	}
	if len(problems) != len(wantProblems) {
		t.Fatalf("problems = %v", problems)
	}
	for _, p := range problems {
		if !errors.Is(p, wantProblems[p.Path]) {
			t.Errorf("problem %q = %v, want %v", p.Path, p.Err, wantProblems[p.Path])
		}
	}
}

func TestParseFileMetaEmpty(t *testing.T) {
	for _, m := range []map[string]any{nil, {}} {
		entries, problems := ParseFileMeta(m)
		if len(entries) != 0 || len(problems) != 0 {
			t.Errorf("ParseFileMeta(%v) = %v, %v", m, entries, problems)
		}
	}
}

func TestAnyToInt64(t *testing.T) {
	tests := []struct {
		in   any
		want int64
	}{
		{nil, 0}, {"5", 0}, {true, 0}, {5.0, 5}, {5.9, 5}, {-5.9, -5}, {int64(1 << 60), 1 << 60},
		{1e300, 0}, {-1e300, 0}, {0x1p63, 0}, {-0x1p63, -1 << 63}, {1700000000000.0, 1700000000000},
	}
	for _, tt := range tests {
		if got := anyToInt64(tt.in); got != tt.want {
			t.Errorf("anyToInt64(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
