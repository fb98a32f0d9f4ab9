package yjs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// The differential suite: the real yjs (tools/yjsoracle) generates
// documents and says what they contain; this package must agree exactly.

var (
	flagSessions  = flag.Int("yjs.sessions", 200, "random yjs editing sessions to check against the oracle")
	flagRoundTrip = flag.Int("yjs.roundtrips", 100, "random Go-edited documents to check in yjs")
)

// oracleDir returns tools/yjsoracle with its dependencies installed. Without
// node or the packages the test is skipped, or fails under CI (testreq).
func oracleDir(t testing.TB) string {
	t.Helper()
	return testreq.YjsOracle(t)
}

func runNode(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	out, err := node(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// node runs a script of the oracle and returns its stdout; its error
// carries the script's stderr.
func node(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("node", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

type session struct {
	Roots       map[string]any    `json:"roots"`
	RootTypes   map[string]string `json:"rootTypes"`
	GC          bool              `json:"gc"`
	Merged      string            `json:"mergedUpdate"`
	Updates     []string          `json:"updatesV1"`
	SkipUpdate  string            `json:"skipUpdate"`
	SkipMissing string            `json:"skipMissing"`
	SkipRoots   map[string]any    `json:"skipRoots"`
	// OtherRoots holds, by artifact ("mergedUpdate", "updatesV1",
	// "skipUpdate + skipMissing"), what yjs shows where it differs from
	// Roots: after edits inside an emoji yjs's replicas may differ.
	OtherRoots map[string]map[string]any `json:"otherRoots"`
	Stats      struct {
		SplitEdits int `json:"splitEdits"`
	} `json:"stats"`
}

// want returns what yjs shows for the artifact.
func (s *session) want(artifact string) map[string]any {
	if r, ok := s.OtherRoots[artifact]; ok {
		return r
	}
	return s.Roots
}

// generateSessions runs gen-sessions.mjs in parallel batches.
func generateSessions(t *testing.T, n int) string {
	dir := oracleDir(t)
	out := t.TempDir()
	const batches = 2
	errs := make(chan error, batches)
	for b := range batches {
		count := n / batches
		if b == 0 {
			count += n % batches
		}
		go func() {
			_, err := node(dir, "gen-sessions.mjs", "--seed", fmt.Sprint(1000+b), "--count", fmt.Sprint(count), "--out", out)
			errs <- err
		}()
	}
	for range batches {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func TestOracleSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("oracle sessions are slow; run without -short")
	}
	dir := generateSessions(t, *flagSessions)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != *flagSessions {
		t.Fatalf("oracle wrote %d sessions, want %d", len(files), *flagSessions)
	}
	sort.Strings(files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			t.Parallel()
			runSession(t, f)
		})
	}
}

// TestFixtureSessions checks the oracle sessions committed under
// testdata, so that part of the differential suite runs without node.
// Among them must be edits inside emoji, including a session where yjs's
// replicas came out different (see session.OtherRoots).
func TestFixtureSessions(t *testing.T) {
	files, _ := filepath.Glob("testdata/sessions/*.json")
	if len(files) == 0 {
		t.Fatal("no fixtures in testdata/sessions")
	}
	var split, replaced, diverged int
	for _, f := range files {
		s := checkSession(t, f)
		if s == nil {
			continue
		}
		if s.Stats.SplitEdits > 0 {
			split++
		}
		if raw, _ := json.Marshal(s.Roots); strings.Contains(string(raw), "\uFFFD") || strings.Contains(string(raw), "\ufffd") {
			replaced++
		}
		if len(s.OtherRoots) > 0 {
			diverged++
		}
	}
	t.Logf("%d fixtures: %d with edits inside emoji, %d showing U+FFFD, %d where yjs replicas diverged", len(files), split, replaced, diverged)
	if split == 0 || replaced == 0 || diverged == 0 {
		t.Errorf("the fixtures must cover edits inside emoji (%d), their U+FFFD (%d) and diverging replicas (%d): regenerate them (testdata/sessions/README.md)", split, replaced, diverged)
	}
}

// checkSession checks the session in file f in a subtest named after it
// and returns the session, or nil if it could not be read.
func checkSession(t *testing.T, f string) *session {
	var s *session
	t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) { s = runSession(t, f) })
	return s
}

// runSession decodes an oracle session every way it was delivered — full
// state, merged update, the stream of incremental updates, an update with a
// gap and then the gap — and compares each with what yjs reported.
func runSession(t *testing.T, f string) *session {
	var s session
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".bin")
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, want map[string]any, updates ...[]byte) *Doc {
		t.Helper()
		d := NewDoc()
		for i, u := range updates {
			if err := d.ApplyUpdate(u); err != nil {
				t.Fatalf("%s: update %d: %v", what, i, err)
			}
		}
		compareRoots(t, what, d, s.RootTypes, want)
		return d
	}
	d := check("full state", s.Roots, full)
	if d.Pending() {
		t.Errorf("full state left pending structs")
	}
	for name, kind := range s.RootTypes {
		if r := d.Root(name); r != nil && !isEmpty(s.Roots[name]) && r.Kind().String() != kind {
			t.Errorf("root %q: inferred kind %s, yjs has %s", name, r.Kind(), kind)
		}
	}
	check("merged update", s.want("mergedUpdate"), b64(t, s.Merged))
	var stream [][]byte
	for _, u := range s.Updates {
		stream = append(stream, b64(t, u))
	}
	check("update stream", s.want("updatesV1"), stream...)
	if s.SkipUpdate != "" {
		gapped := check("update with a gap", s.SkipRoots, b64(t, s.SkipUpdate))
		if !gapped.Pending() {
			t.Errorf("update with a gap: nothing pending")
		}
		check("gap filled", s.want("skipUpdate + skipMissing"), b64(t, s.SkipUpdate), b64(t, s.SkipMissing))
	}
	// Re-encoding what was decoded must keep the content.
	re, err := d.EncodeStateAsUpdate()
	if err != nil {
		t.Fatal(err)
	}
	check("re-encoded", s.Roots, re)
	return &s
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compareRoots(t *testing.T, what string, d *Doc, kinds map[string]string, want map[string]any) {
	t.Helper()
	for name, kind := range kinds {
		var r *Type
		switch kind {
		case "text":
			r = d.GetText(name)
		case "map":
			r = d.GetMap(name)
		case "array":
			r = d.GetArray(name)
		default:
			t.Fatalf("unknown root kind %q", kind)
		}
		got := canonicalJSON(t, r.ToJSON())
		exp := canonicalJSON(t, want[name])
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s: root %q differs from yjs\n got: %s\nwant: %s", what, name, show(got), show(exp))
		}
	}
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// canonicalJSON maps a value to the oracle's JSON form: binaries as
// {"$bytes": base64}, numbers as float64.
func canonicalJSON(t *testing.T, v any) any {
	t.Helper()
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case []byte:
			return map[string]any{"$bytes": base64.StdEncoding.EncodeToString(x)}
		case map[string]any:
			o := make(map[string]any, len(x))
			for k, e := range x {
				o[k] = conv(e)
			}
			return o
		case []any:
			o := make([]any, len(x))
			for i, e := range x {
				o[i] = conv(e)
			}
			return o
		case Undefined:
			return nil
		}
		return v
	}
	b, err := json.Marshal(conv(v))
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func show(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// TestOracleRoundTrip edits documents in Go — several clients, concurrent
// edits, syncs through encoded updates — and checks that yjs reads the
// encoded result as the Go side sees it.
func TestOracleRoundTrip(t *testing.T) {
	dir := oracleDir(t)
	out := t.TempDir()
	type entry struct {
		File  string            `json:"file"`
		Roots map[string]string `json:"roots"`
	}
	kinds := map[string]string{"text": "text", "map": "map", "array": "array"}
	var manifest []entry
	want := map[string]*Doc{}
	for i := range *flagRoundTrip {
		d := randomSession(t, uint64(i))
		u, err := d.EncodeStateAsUpdate()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(out, fmt.Sprintf("go-%d.bin", i))
		if err := os.WriteFile(f, u, 0o644); err != nil {
			t.Fatal(err)
		}
		manifest = append(manifest, entry{f, kinds})
		want[f] = d
	}
	mf := filepath.Join(out, "manifest.json")
	raw, _ := json.Marshal(manifest)
	if err := os.WriteFile(mf, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		File  string         `json:"file"`
		Roots map[string]any `json:"roots"`
	}
	if err := json.Unmarshal(runNode(t, dir, "decode.mjs", mf), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(manifest) {
		t.Fatalf("yjs decoded %d documents, want %d", len(got), len(manifest))
	}
	replaced := 0
	for _, g := range got {
		compareRoots(t, filepath.Base(g.File), want[g.File], kinds, g.Roots)
		if strings.Contains(want[g.File].GetText("text").String(), "\uFFFD") {
			replaced++
		}
	}
	// Edits inside emoji leave U+FFFD; yjs must read those documents too.
	if replaced == 0 {
		t.Errorf("no document of the %d has an emoji split by an edit (U+FFFD): the sessions no longer edit inside emoji", len(got))
	}
}

// randomSession runs a random three-client editing session in Go and
// returns the first client's document after a full sync. All clients
// must converge.
func randomSession(t *testing.T, seed uint64) *Doc {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	docs := make([]*Doc, 3)
	for i := range docs {
		docs[i] = NewDoc()
		docs[i].ClientID = uint64(rng.IntN(1<<31)) + 1
		docs[i].GC = rng.IntN(2) == 0
	}
	sync := func(a, b *Doc) {
		u, err := a.EncodeStateAsUpdate()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.ApplyUpdate(u); err != nil {
			t.Fatalf("seed %d: sync: %v", seed, err)
		}
	}
	words := []string{"a", "hello ", "😀", "e\u0301", "漢字", "\n", "👍🏽", "x", "CRDT ", "ß"}
	for step := range 60 + rng.IntN(60) {
		d := docs[rng.IntN(len(docs))]
		switch op := rng.IntN(10); {
		case op < 4:
			tx := d.GetText("text")
			// A quarter of the edits start inside an emoji where there is one.
			split := splitPositions(tx.String())
			pos := func(n int) int {
				if len(split) > 0 && rng.IntN(4) == 0 {
					return split[rng.IntN(len(split))]
				}
				return rng.IntN(n)
			}
			if tx.Len() > 0 && rng.IntN(3) == 0 {
				i := pos(tx.Len())
				must(t, tx.Delete(i, 1+rng.IntN(min(5, tx.Len()-i))))
			} else {
				must(t, tx.Insert(pos(tx.Len()+1), words[rng.IntN(len(words))]))
			}
		case op < 7:
			m := d.GetMap("map")
			key := fmt.Sprintf("k%d", rng.IntN(6))
			switch rng.IntN(5) {
			case 0:
				m.DeleteKey(key)
			case 1:
				nt, err := m.SetType(key, KindArray)
				must(t, err)
				must(t, nt.Push(float64(step), "nested"))
			case 2:
				must(t, m.Set(key, []byte{byte(step), 0, 255}))
			default:
				must(t, m.Set(key, map[string]any{"step": float64(step), "f": 1.5, "s": words[rng.IntN(len(words))], "l": []any{true, nil}}))
			}
		default:
			a := d.GetArray("array")
			if a.Len() > 0 && rng.IntN(3) == 0 {
				i := rng.IntN(a.Len())
				must(t, a.Delete(i, 1+rng.IntN(min(3, a.Len()-i))))
			} else {
				must(t, a.InsertValues(rng.IntN(a.Len()+1), float64(step), words[rng.IntN(len(words))]))
			}
		}
		if rng.IntN(8) == 0 {
			sync(docs[rng.IntN(3)], docs[rng.IntN(3)])
		}
	}
	for range 2 {
		for _, a := range docs {
			for _, b := range docs {
				if a != b {
					sync(a, b)
				}
			}
		}
	}
	want := canonicalJSON(t, docs[0].ToJSON())
	for i, d := range docs[1:] {
		if got := canonicalJSON(t, d.ToJSON()); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: client %d diverged\n got: %s\nwant: %s", seed, i+1, show(got), show(want))
		}
	}
	return docs[0]
}

// splitPositions returns the UTF-16 offsets of s that fall between the
// halves of a surrogate pair.
func splitPositions(s string) []int {
	var ps []int
	off := 0
	for _, r := range s {
		if utf16.RuneLen(r) == 2 {
			ps = append(ps, off+1)
		}
		off += utf16.RuneLen(r)
	}
	return ps
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
