package yjs

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The write-back suite: yjs (tools/yjsoracle/steps.mjs) builds documents,
// Go reads them, edits and writes an update against yjs's state vector,
// and yjs must read that update as the Go side meant.

type step map[string]any

type stepJob struct {
	Steps []step `json:"steps"`
}

// runSteps runs jobs in one node process and returns each job's outputs.
func runSteps(t testing.TB, dir string, jobs []stepJob) []map[string]any {
	t.Helper()
	f := filepath.Join(t.TempDir(), "jobs.json")
	raw, err := json.Marshal(jobs)
	must(t, err)
	must(t, os.WriteFile(f, raw, 0o644))
	var res []struct {
		Out map[string]any `json:"out"`
	}
	if err := json.Unmarshal(runNode(t, dir, "steps.mjs", f), &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != len(jobs) {
		t.Fatalf("steps.mjs ran %d jobs, want %d", len(res), len(jobs))
	}
	out := make([]map[string]any, len(res))
	for i, r := range res {
		out[i] = r.Out
	}
	return out
}

func readFile(t testing.TB, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	must(t, err)
	return b
}

func writeFile(t testing.TB, f string, b []byte) {
	t.Helper()
	must(t, os.WriteFile(f, b, 0o644))
}

type textCase struct {
	name, old, new string
	gc             bool
	clients, chunk int
}

func textCases() []textCase {
	cs := []textCase{
		{name: "insert word", old: "Hello world", new: "Hello there world"},
		{name: "between emoji", old: "a😀b😀c", new: "a😀X😀c"},
		{name: "emoji for emoji", old: "😀😀😀", new: "😀👍🏽😀"},
		// 😀 and 😁 share their high surrogate: a UTF-16 diff would keep it
		// and replace only the low half.
		{name: "same high surrogate", old: "x😀y", new: "x😁y"},
		{name: "astral and CJK", old: "𝄞漢字", new: "𝄞漢字𝄞"},
		{name: "CJK word", old: "漢字かな交じり文です。", new: "漢字カナ交じり文でした。"},
		{name: "combining mark", old: "cafe\u0301 au lait", new: "cafe\u0300 au lait"},
		{name: "delete all", old: "gone 😀 漢字", new: ""},
		{name: "from empty", old: "", new: "new note 😀\n"},
		{name: "no change", old: "same 😀", new: "same 😀"},
		{name: "markdown lines",
			old: "# Plan\n\n- buy milk 🥛\n- call 妈妈\n- write report\n\nNotes: 👍🏽 done\n",
			new: "# Plan for today\n\n- buy oat milk 🥛\n- write report 📄\n\nNotes: 👍🏽 done, 漢字 ok\n"},
	}
	big := strings.Repeat("Line of a long note with 😀 emoji and 漢字 here.\n", 6000)
	cs = append(cs,
		textCase{name: "large doc one word", old: big, new: strings.Replace(big, "long note with 😀", "long note, with 👍🏽", 1), chunk: 3000},
		textCase{name: "large doc many spots", old: big, new: strings.ReplaceAll(big[:len(big)/2], "emoji and 漢字", "emoji or 字") + big[len(big)/2:] + "the end 𝄞", chunk: 3000},
	)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 24 {
		old := randomText(rng, rng.IntN(80))
		cs = append(cs, textCase{name: fmt.Sprintf("random %d", i), old: old, new: mutate(rng, old)})
	}
	for i := range cs {
		c := &cs[i]
		c.gc = i%3 != 2
		c.clients = 1 + i%3
		if c.chunk == 0 {
			c.chunk = 6
		}
	}
	return cs
}

// TestOracleApplyDiff: yjs builds a note through a history with deleted
// and collected content, Go reads it, applies the diff to the new text and
// writes both kinds of update against yjs's state vector; yjs applying
// either to its state must show the new text.
func TestOracleApplyDiff(t *testing.T) {
	dir := oracleDir(t)
	tmp := t.TempDir()
	cases := textCases()
	file := func(i int, what string) string { return filepath.Join(tmp, fmt.Sprintf("%d-%s.bin", i, what)) }
	var build []stepJob
	for i, c := range cases {
		build = append(build, stepJob{[]step{
			{"op": "new", "doc": "a", "client": 1000 + i, "gc": c.gc},
			{"op": "history", "doc": "a", "root": "contents", "text": c.old, "seed": i + 1, "clients": c.clients, "chunk": c.chunk},
			{"op": "saveState", "doc": "a", "file": file(i, "base")},
			{"op": "saveSV", "doc": "a", "file": file(i, "sv")},
		}})
	}
	runSteps(t, dir, build)
	var apply []stepJob
	var collected [2]int
	for i, c := range cases {
		d := readBack(t, readFile(t, file(i, "base")))
		if got := d.GetText("contents").String(); got != c.old {
			t.Fatalf("%s: Go reads %q from yjs's state, yjs built %q", c.name, trim(got), trim(c.old))
		}
		gcs, dels := countCollected(d)
		collected[0] += gcs
		collected[1] += dels
		d.SetRandomClientID()
		if err := d.GetText("contents").ApplyDiff(c.new); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sv := readFile(t, file(i, "sv"))
		local, err := d.EncodeLocalChanges(sv)
		must(t, err)
		diff, err := d.EncodeDiff(sv)
		must(t, err)
		if (c.old == c.new) != IsEmptyUpdate(local) {
			t.Errorf("%s: the change wrote %d bytes", c.name, len(local))
		}
		writeFile(t, file(i, "local"), local)
		writeFile(t, file(i, "diff"), diff)
		apply = append(apply, stepJob{[]step{
			{"op": "new", "doc": "l"},
			{"op": "apply", "doc": "l", "file": file(i, "base")},
			{"op": "apply", "doc": "l", "file": file(i, "local")},
			{"op": "text", "doc": "l", "root": "contents", "name": "local"},
			{"op": "pending", "doc": "l", "name": "localPending"},
			{"op": "new", "doc": "d"},
			{"op": "apply", "doc": "d", "file": file(i, "base")},
			{"op": "apply", "doc": "d", "file": file(i, "diff")},
			{"op": "text", "doc": "d", "root": "contents", "name": "diff"},
			{"op": "pending", "doc": "d", "name": "diffPending"},
		}})
	}
	if collected[0] == 0 || collected[1] == 0 {
		t.Errorf("documents read from yjs hold %d GC structs and %d collected items: the histories no longer make garbage", collected[0], collected[1])
	}
	for i, out := range runSteps(t, dir, apply) {
		c := cases[i]
		for _, k := range []string{"local", "diff"} {
			if out[k] != c.new {
				t.Errorf("%s: yjs applying Go's %s update shows %q, want %q", c.name, k, trim(fmt.Sprint(out[k])), trim(c.new))
			}
			if out[k+"Pending"] != false {
				t.Errorf("%s: yjs keeps part of Go's %s update pending", c.name, k)
			}
		}
	}
}

// countCollected counts GC structs and items whose content was dropped
// (ContentDeleted): what yjs's garbage collection leaves.
func countCollected(d *Doc) (gcs, dels int) {
	for _, c := range d.store.clients {
		structs := c.structs
		for _, it := range structs {
			if it.kind == kindGC {
				gcs++
			} else if _, ok := it.content.(*contentDeleted); ok {
				dels++
			}
		}
	}
	return gcs, dels
}

func trim(s string) string {
	if len(s) > 120 {
		return s[:60] + "…" + s[len(s)-60:]
	}
	return s
}

// TestOracleDiffCutsItem: Go's EncodeDiff against a yjs state vector that
// ends inside an item, and yjs's diff against Go's state vector.
func TestOracleDiffCutsItem(t *testing.T) {
	dir := oracleDir(t)
	tmp := t.TempDir()
	f := func(n string) string { return filepath.Join(tmp, n) }
	runSteps(t, dir, []stepJob{{[]step{
		{"op": "new", "doc": "a", "client": 9},
		{"op": "insert", "doc": "a", "root": "t", "index": 0, "text": "hello 😀"},
		{"op": "saveState", "doc": "a", "file": f("half.bin")},
		{"op": "saveSV", "doc": "a", "file": f("half.sv")},
		{"op": "insert", "doc": "a", "root": "t", "index": 8, "text": " world 漢字"},
		{"op": "saveState", "doc": "a", "file": f("full.bin")},
	}}})
	full := readBack(t, readFile(t, f("full.bin")))
	if n := len(full.store.structs(9)); n != 1 {
		t.Fatalf("yjs's state holds %d structs for the typed text, want 1 merged item to cut", n)
	}
	u, err := full.EncodeDiff(readFile(t, f("half.sv")))
	must(t, err)
	writeFile(t, f("go-diff.bin"), u)
	half := readBack(t, readFile(t, f("half.bin")))
	writeFile(t, f("go.sv"), half.EncodeStateVector())
	out := runSteps(t, dir, []stepJob{{[]step{
		{"op": "new", "doc": "h"},
		{"op": "apply", "doc": "h", "file": f("half.bin")},
		{"op": "apply", "doc": "h", "file": f("go-diff.bin")},
		{"op": "text", "doc": "h", "root": "t", "name": "text"},
		{"op": "new", "doc": "a"},
		{"op": "apply", "doc": "a", "file": f("full.bin")},
		{"op": "saveDiff", "doc": "a", "sv": f("go.sv"), "file": f("yjs-diff.bin")},
	}}})
	if want := "hello 😀 world 漢字"; out[0]["text"] != want {
		t.Errorf("yjs with half the text and Go's diff shows %q, want %q", out[0]["text"], want)
	}
	if len(u) >= len(readFile(t, f("full.bin"))) {
		t.Errorf("diff of %d bytes is not smaller than the full state (%d)", len(u), len(readFile(t, f("full.bin"))))
	}
	must(t, half.ApplyUpdate(readFile(t, f("yjs-diff.bin"))))
	if got := half.GetText("t").String(); got != "hello 😀 world 漢字" {
		t.Errorf("yjs's diff against Go's state vector gives %q in Go", got)
	}
}

// utf16Index returns the UTF-16 offset of the n-th (from 0) occurrence of
// sub in s, and fails if there is none.
func utf16Index(t testing.TB, s, sub string, n int) int {
	t.Helper()
	off := 0
	for range n + 1 {
		i := strings.Index(s[off:], sub)
		if i < 0 {
			t.Fatalf("%q not found %d times", sub, n+1)
		}
		off += i + len(sub)
	}
	return UTF16Len(s[:off-len(sub)])
}

// TestOracleConcurrentEdit: between Go's read and Go's write a yjs client
// types in the same note, near the Go edit and far from it. yjs applying
// both updates in either order must show every character that client typed
// and the Go change, and Go must agree with it.
func TestOracleConcurrentEdit(t *testing.T) {
	dir := oracleDir(t)
	tmp := t.TempDir()
	far := strings.Repeat("Filler line with 漢字 and 😀.\n", 50)
	base := "The quick brown 🦊 jumps over the lazy 🐶.\n漢字😀かな\n" + far + "The end.\n"
	type ins struct {
		at   int // UTF-16 offset in the old text
		text string
	}
	// The concurrent client types only these characters, found in neither
	// text, so what it typed can be taken out of the merged text again.
	const marks = "①②③④★☆"
	cases := []struct {
		name string
		new  string
		typ  []ins
	}{
		{"inside the replaced word", strings.Replace(base, "brown", "red", 1),
			[]ins{{utf16Index(t, base, "own", 0), "①②"}, {utf16Index(t, base, "The end", 0), "★☆"}}},
		{"at the insertion point", strings.Replace(base, "quick brown", "quick, very brown", 1),
			[]ins{{utf16Index(t, base, " brown", 0), "③"}, {utf16Index(t, base, "Filler", 30), "★"}}},
		{"inside a deleted range", strings.Replace(base, "jumps over the lazy 🐶", "sleeps", 1),
			[]ins{{utf16Index(t, base, "the lazy", 0), "④④"}, {UTF16Len(base), "☆"}}},
		{"between emoji and CJK", strings.Replace(base, "漢字😀かな", "漢字😀カナ", 1),
			[]ins{{utf16Index(t, base, "かな", 0), "①"}, {utf16Index(t, base, "😀かな", 0), "②"}, {0, "③"}}},
		{"replaced emoji", strings.Replace(base, "🦊", "🐺", 1),
			[]ins{{utf16Index(t, base, "🦊", 0), "★"}, {utf16Index(t, base, " jumps", 0), "☆"}}},
	}
	file := func(i int, what string) string { return filepath.Join(tmp, fmt.Sprintf("%d-%s.bin", i, what)) }
	var build []stepJob
	for i, c := range cases {
		s := []step{
			{"op": "new", "doc": "a", "client": 500 + i},
			{"op": "history", "doc": "a", "root": "contents", "text": base, "seed": 40 + i, "clients": 2, "chunk": 20},
			{"op": "saveState", "doc": "a", "file": file(i, "base")},
			{"op": "saveSV", "doc": "a", "file": file(i, "sv")},
			// The concurrent client starts from the same state.
			{"op": "new", "doc": "c", "client": 7777},
			{"op": "apply", "doc": "c", "file": file(i, "base")},
		}
		// Insert from the end so earlier offsets stay valid.
		typ := append([]ins(nil), c.typ...)
		for j := range typ {
			for k := j + 1; k < len(typ); k++ {
				if typ[k].at > typ[j].at {
					typ[j], typ[k] = typ[k], typ[j]
				}
			}
		}
		for _, x := range typ {
			for k, r := range []rune(x.text) { // typed one key at a time
				s = append(s, step{"op": "insert", "doc": "c", "root": "contents", "index": x.at + k, "text": string(r)})
			}
		}
		s = append(s, step{"op": "saveDiff", "doc": "c", "sv": file(i, "sv"), "file": file(i, "typed")})
		build = append(build, stepJob{s})
	}
	runSteps(t, dir, build)
	var apply []stepJob
	goSide := make([]string, len(cases))
	for i, c := range cases {
		d := readBack(t, readFile(t, file(i, "base")))
		d.SetRandomClientID()
		must(t, d.GetText("contents").ApplyDiff(c.new))
		u, err := d.EncodeLocalChanges(readFile(t, file(i, "sv")))
		must(t, err)
		writeFile(t, file(i, "go"), u)
		g := readBack(t, readFile(t, file(i, "base")), u, readFile(t, file(i, "typed")))
		goSide[i] = g.GetText("contents").String()
		apply = append(apply, stepJob{[]step{
			{"op": "new", "doc": "x"},
			{"op": "apply", "doc": "x", "file": file(i, "base")},
			{"op": "apply", "doc": "x", "file": file(i, "typed")},
			{"op": "apply", "doc": "x", "file": file(i, "go")},
			{"op": "text", "doc": "x", "root": "contents", "name": "typedFirst"},
			{"op": "new", "doc": "y"},
			{"op": "apply", "doc": "y", "file": file(i, "base")},
			{"op": "apply", "doc": "y", "file": file(i, "go")},
			{"op": "apply", "doc": "y", "file": file(i, "typed")},
			{"op": "text", "doc": "y", "root": "contents", "name": "goFirst"},
		}})
	}
	for i, out := range runSteps(t, dir, apply) {
		c := cases[i]
		a, b := out["typedFirst"].(string), out["goFirst"].(string)
		if a != b {
			t.Errorf("%s: yjs differs by order of arrival:\n%q\n%q", c.name, trim(a), trim(b))
		}
		if goSide[i] != a {
			t.Errorf("%s: Go merges to %q, yjs to %q", c.name, trim(goSide[i]), trim(a))
		}
		for _, x := range c.typ {
			if !strings.Contains(a, x.text) {
				t.Errorf("%s: the concurrently typed %q is lost: %q", c.name, x.text, trim(a))
			}
		}
		without := strings.Map(func(r rune) rune {
			if strings.ContainsRune(marks, r) {
				return -1
			}
			return r
		}, a)
		if without != c.new {
			t.Errorf("%s: without the concurrent typing yjs shows %q, want Go's new text %q", c.name, trim(without), trim(c.new))
		}
	}
}

// TestOracleMapEdits: Go sets, overwrites and deletes keys of a
// filemeta_v0-like map of JSON objects and adds a nested map, as a
// canvas does; yjs reads the update as Go sees it, also with a concurrent
// yjs edit of another key and of a key Go sets, applied in either order.
func TestOracleMapEdits(t *testing.T) {
	dir := oracleDir(t)
	tmp := t.TempDir()
	f := func(n string) string { return filepath.Join(tmp, n) }
	meta := func(id, typ string) map[string]any {
		return map[string]any{"id": id, "type": typ, "version": 0.0}
	}
	steps := []step{{"op": "new", "doc": "a", "client": 31}}
	for i, p := range []string{"/a.md", "/b.md", "/dir", "/c.canvas", "/img 😀.png", "/漢字.md"} {
		steps = append(steps, step{"op": "mapSet", "doc": "a", "root": "filemeta_v0", "key": p, "value": meta(fmt.Sprintf("id-%d", i), "markdown")})
	}
	steps = append(steps,
		step{"op": "mapSet", "doc": "a", "root": "filemeta_v0", "key": "/a.md", "value": meta("id-a2", "markdown")},
		step{"op": "mapDelete", "doc": "a", "root": "filemeta_v0", "key": "/dir"},
		step{"op": "saveState", "doc": "a", "file": f("base.bin")},
		step{"op": "saveSV", "doc": "a", "file": f("sv.bin")},
		step{"op": "new", "doc": "c", "client": 32},
		step{"op": "apply", "doc": "c", "file": f("base.bin")},
		step{"op": "mapSet", "doc": "c", "root": "filemeta_v0", "key": "/typed.md", "value": meta("id-t", "markdown")},
		// The same key Go sets: one of the two values wins, the same everywhere.
		step{"op": "mapSet", "doc": "c", "root": "filemeta_v0", "key": "/b.md", "value": meta("id-b-concurrent", "markdown")},
		step{"op": "saveDiff", "doc": "c", "sv": f("sv.bin"), "file": f("typed.bin")},
	)
	runSteps(t, dir, []stepJob{{steps}})

	d := readBack(t, readFile(t, f("base.bin")))
	d.SetRandomClientID()
	m := d.GetMap("filemeta_v0")
	must(t, m.Set("/new 漢字.md", meta("id-new", "markdown")))
	must(t, m.Set("/b.md", meta("id-b2", "markdown")))
	m.DeleteKey("/c.canvas")
	m.DeleteKey("/漢字.md")
	must(t, m.Set("/dir", map[string]any{"id": "id-dir", "type": "folder"}))
	nodes, err := m.SetType("nodes", KindMap)
	must(t, err)
	must(t, nodes.Set("n1", map[string]any{"x": 1.5, "text": "node 😀"}))
	u, err := d.EncodeLocalChanges(readFile(t, f("sv.bin")))
	must(t, err)
	writeFile(t, f("go.bin"), u)
	want := canonicalJSON(t, d.GetMap("filemeta_v0").ToJSON())

	must(t, d.ApplyUpdate(readFile(t, f("typed.bin"))))
	wantMerged := canonicalJSON(t, d.GetMap("filemeta_v0").ToJSON())
	if _, ok := wantMerged.(map[string]any)["/typed.md"]; !ok {
		t.Fatalf("Go lost the concurrent key: %s", show(wantMerged))
	}
	out := runSteps(t, dir, []stepJob{{[]step{
		{"op": "new", "doc": "g"},
		{"op": "apply", "doc": "g", "file": f("base.bin")},
		{"op": "apply", "doc": "g", "file": f("go.bin")},
		{"op": "map", "doc": "g", "root": "filemeta_v0", "name": "go"},
		{"op": "apply", "doc": "g", "file": f("typed.bin")},
		{"op": "map", "doc": "g", "root": "filemeta_v0", "name": "goFirst"},
		{"op": "new", "doc": "t"},
		{"op": "apply", "doc": "t", "file": f("base.bin")},
		{"op": "apply", "doc": "t", "file": f("typed.bin")},
		{"op": "apply", "doc": "t", "file": f("go.bin")},
		{"op": "map", "doc": "t", "root": "filemeta_v0", "name": "typedFirst"},
	}}})[0]
	if got := canonicalJSON(t, out["go"]); !reflect.DeepEqual(got, want) {
		t.Errorf("yjs reads Go's update as\n%s\nwant\n%s", show(got), show(want))
	}
	for _, k := range []string{"goFirst", "typedFirst"} {
		if got := canonicalJSON(t, out[k]); !reflect.DeepEqual(got, wantMerged) {
			t.Errorf("%s: yjs merges to\n%s\nwant\n%s", k, show(got), show(wantMerged))
		}
	}
}

// BenchmarkRestoreOneWord restores a one-word change in a 1 MB note read
// from yjs: read the state, diff, encode against yjs's state vector. It
// reports the bytes written per byte of text changed (update-B/changed-B)
// for EncodeLocalChanges, and the size of EncodeDiff's update (with the
// note's whole delete set) for comparison. yjs checks the update once.
func BenchmarkRestoreOneWord(b *testing.B) {
	dir := oracleDir(b)
	tmp := b.TempDir()
	line := "A line of a long note about 😀 and 漢字, with enough words to fill it.\n"
	old := strings.Repeat(line, (1<<20)/len(line))
	i := len(old) / 2
	i += strings.Index(old[i:], "words")
	newText := old[:i] + "lines" + old[i+len("words"):]
	const changed = len("words") + len("lines")
	base, sv := filepath.Join(tmp, "base.bin"), filepath.Join(tmp, "sv.bin")
	runSteps(b, dir, []stepJob{{[]step{
		{"op": "new", "doc": "a", "client": 3},
		{"op": "history", "doc": "a", "root": "contents", "text": old, "seed": 5, "clients": 2, "chunk": 2000},
		{"op": "saveState", "doc": "a", "file": base},
		{"op": "saveSV", "doc": "a", "file": sv},
	}}})
	state, svb := readFile(b, base), readFile(b, sv)
	restore := func() (local, diff []byte) {
		d := NewDoc()
		must(b, d.ApplyUpdate(state))
		d.SetRandomClientID()
		must(b, d.GetText("contents").ApplyDiff(newText))
		local, err := d.EncodeLocalChanges(svb)
		must(b, err)
		diff, err = d.EncodeDiff(svb)
		must(b, err)
		return local, diff
	}
	local, diff := restore()
	upd := filepath.Join(tmp, "go.bin")
	writeFile(b, upd, local)
	out := runSteps(b, dir, []stepJob{{[]step{
		{"op": "new", "doc": "y"},
		{"op": "apply", "doc": "y", "file": base},
		{"op": "apply", "doc": "y", "file": upd},
		{"op": "text", "doc": "y", "root": "contents", "name": "text"},
	}}})
	if out[0]["text"] != newText {
		b.Fatal("yjs applying the restore update does not show the new text")
	}
	b.ResetTimer()
	for b.Loop() {
		local, diff = restore()
	}
	b.ReportMetric(float64(len(local)), "update-B")
	b.ReportMetric(float64(len(local))/float64(changed), "update-B/changed-B")
	b.ReportMetric(float64(len(diff)), "diff-with-delete-set-B")
	b.ReportMetric(float64(len(old)), "note-B")
}

// TestOracleCanvasEdits: a canvas as the plugin keeps it (maps "nodes" and
// "edges" of plain objects, one root text per text node, named by the node
// id) brought back key by key and text by diff; yjs must read it as Go.
func TestOracleCanvasEdits(t *testing.T) {
	dir := oracleDir(t)
	tmp := t.TempDir()
	f := func(n string) string { return filepath.Join(tmp, n) }
	node := func(id string, x float64) map[string]any {
		return map[string]any{"id": id, "type": "text", "x": x, "y": 0.0, "width": 250.0, "height": 60.0}
	}
	runSteps(t, dir, []stepJob{{[]step{
		{"op": "new", "doc": "a", "client": 61},
		{"op": "mapSet", "doc": "a", "root": "nodes", "key": "n1", "value": node("n1", 0)},
		{"op": "mapSet", "doc": "a", "root": "nodes", "key": "n2", "value": node("n2", 300)},
		{"op": "mapSet", "doc": "a", "root": "edges", "key": "e1", "value": map[string]any{"id": "e1", "fromNode": "n1", "toNode": "n2"}},
		{"op": "history", "doc": "a", "root": "n1", "text": "first card 😀 漢字", "seed": 3, "clients": 2, "chunk": 3},
		{"op": "mapDelete", "doc": "a", "root": "edges", "key": "e1"},
		{"op": "saveState", "doc": "a", "file": f("base.bin")},
		{"op": "saveSV", "doc": "a", "file": f("sv.bin")},
	}}})
	d := readBack(t, readFile(t, f("base.bin")))
	d.SetRandomClientID()
	must(t, d.GetMap("edges").Set("e1", map[string]any{"id": "e1", "fromNode": "n1", "toNode": "n3"}))
	must(t, d.GetMap("nodes").Set("n3", node("n3", 600)))
	must(t, d.GetMap("nodes").Set("n1", node("n1", 10)))
	d.GetMap("nodes").DeleteKey("n2")
	must(t, d.GetText("n1").ApplyDiff("first card 👍🏽 漢字 again"))
	must(t, d.GetText("n3").ApplyDiff("new card"))
	u, err := d.EncodeLocalChanges(readFile(t, f("sv.bin")))
	must(t, err)
	writeFile(t, f("go.bin"), u)
	out := runSteps(t, dir, []stepJob{{[]step{
		{"op": "new", "doc": "g"},
		{"op": "apply", "doc": "g", "file": f("base.bin")},
		{"op": "apply", "doc": "g", "file": f("go.bin")},
		{"op": "map", "doc": "g", "root": "nodes", "name": "nodes"},
		{"op": "map", "doc": "g", "root": "edges", "name": "edges"},
		{"op": "text", "doc": "g", "root": "n1", "name": "n1"},
		{"op": "text", "doc": "g", "root": "n3", "name": "n3"},
	}}})[0]
	for _, root := range []string{"nodes", "edges"} {
		if got, want := canonicalJSON(t, out[root]), canonicalJSON(t, d.GetMap(root).ToJSON()); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: yjs reads\n%s\nwant\n%s", root, show(got), show(want))
		}
	}
	for _, root := range []string{"n1", "n3"} {
		if out[root] != d.GetText(root).String() {
			t.Errorf("text %s: yjs reads %q, want %q", root, out[root], d.GetText(root).String())
		}
	}
}

// TestOracleNewNote: a note created in Go from nothing (a server document
// that is empty or new) reads in yjs as the text written.
func TestOracleNewNote(t *testing.T) {
	dir := oracleDir(t)
	f := filepath.Join(t.TempDir(), "new.bin")
	const text = "# New note 😀\n\n漢字 and 👍🏽.\n"
	d := NewDoc()
	d.SetRandomClientID()
	must(t, d.GetText("contents").ApplyDiff(text))
	u, err := d.EncodeLocalChanges(NewDoc().EncodeStateVector())
	must(t, err)
	writeFile(t, f, u)
	out := runSteps(t, dir, []stepJob{{[]step{
		{"op": "new", "doc": "n"},
		{"op": "apply", "doc": "n", "file": f},
		{"op": "text", "doc": "n", "root": "contents", "name": "text"},
	}}})
	if out[0]["text"] != text {
		t.Errorf("yjs reads the new note as %q, want %q", out[0]["text"], text)
	}
}
