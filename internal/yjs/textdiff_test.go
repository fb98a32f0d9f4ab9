package yjs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// The alphabet of random texts: ASCII, astral characters (surrogate pairs
// in UTF-16), an emoji with a modifier, combining marks, CJK, newlines.
var diffAlphabet = []string{"a", "b", " ", "\n", "😀", "👍🏽", "𝄞", "漢", "字", "é", "e\u0301", "x", "."}

func randomText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(diffAlphabet[rng.IntN(len(diffAlphabet))])
	}
	return b.String()
}

// mutate changes a few random spots of s, at code point boundaries.
func mutate(rng *rand.Rand, s string) string {
	r := []rune(s)
	for range 1 + rng.IntN(4) {
		i := rng.IntN(len(r) + 1)
		j := min(len(r), i+rng.IntN(6))
		if rng.IntN(3) == 0 {
			j = i
		}
		r = append(r[:i:i], append([]rune(randomText(rng, rng.IntN(5))), r[j:]...)...)
	}
	return string(r)
}

// buildHistory returns a document whose root text "contents" holds s,
// typed in pieces by client 7 with junk typed in between and deleted
// again, so that deleted (and, with gc, collected) items lie between the
// live ones.
func buildHistory(t testing.TB, rng *rand.Rand, s string, gc bool) *Doc {
	t.Helper()
	d := NewDoc()
	d.ClientID, d.GC = 7, gc
	tx := d.GetText("contents")
	type piece struct {
		s    string
		junk bool
	}
	var pieces []piece
	offset := func(k int) int {
		n := 0
		for _, p := range pieces[:k] {
			n += UTF16Len(p.s)
		}
		return n
	}
	rest := s
	for rest != "" || len(pieces) > 0 && hasJunk(pieces, func(p piece) bool { return p.junk }) {
		switch op := rng.IntN(4); {
		case op < 2 && rest != "":
			n := 0
			for range 1 + rng.IntN(8) {
				if n < len(rest) {
					_, size := utf8.DecodeRuneInString(rest[n:])
					n += size
				}
			}
			must(t, tx.Insert(tx.Len(), rest[:n]))
			pieces = append(pieces, piece{rest[:n], false})
			rest = rest[n:]
		case op == 2:
			k := rng.IntN(len(pieces) + 1)
			j := randomText(rng, 1+rng.IntN(4))
			must(t, tx.Insert(offset(k), j))
			pieces = append(pieces[:k], append([]piece{{j, true}}, pieces[k:]...)...)
		default:
			for k, p := range pieces {
				if p.junk {
					must(t, tx.Delete(offset(k), UTF16Len(p.s)))
					pieces = append(pieces[:k], pieces[k+1:]...)
					break
				}
			}
		}
	}
	if got := tx.String(); got != s {
		t.Fatalf("history built %q, want %q", got, s)
	}
	return d
}

func hasJunk[P any](ps []P, junk func(P) bool) bool {
	for _, p := range ps {
		if junk(p) {
			return true
		}
	}
	return false
}

// readBack decodes updates into a fresh document.
func readBack(t testing.TB, updates ...[]byte) *Doc {
	t.Helper()
	d := NewDoc()
	for i, u := range updates {
		if err := d.ApplyUpdate(u); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if d.Pending() {
		t.Fatalf("updates left structs pending")
	}
	return d
}

// TestApplyDiffProperty: for random old and new texts with astral
// characters, ApplyDiff on a document read from another writer gives the
// new text, and the update it sends gives it to that writer too.
func TestApplyDiffProperty(t *testing.T) {
	for seed := range uint64(400) {
		rng := rand.New(rand.NewPCG(seed, 42))
		old := randomText(rng, rng.IntN(60))
		newText := mutate(rng, old)
		if rng.IntN(8) == 0 {
			newText = randomText(rng, rng.IntN(60))
		}
		src := buildHistory(t, rng, old, seed%2 == 0)
		state, err := src.EncodeStateAsUpdate()
		must(t, err)
		sv := src.EncodeStateVector()

		d := readBack(t, state)
		d.SetRandomClientID()
		tx := d.GetText("contents")
		if err := tx.ApplyDiff(newText); err != nil {
			t.Fatalf("seed %d: %q -> %q: %v", seed, old, newText, err)
		}
		if got := tx.String(); got != newText {
			t.Fatalf("seed %d: ApplyDiff gave %q, want %q", seed, got, newText)
		}
		local, err := d.EncodeLocalChanges(sv)
		must(t, err)
		diff, err := d.EncodeDiff(sv)
		must(t, err)
		for name, u := range map[string][]byte{"local changes": local, "diff": diff} {
			if got := readBack(t, state, u).GetText("contents").String(); got != newText {
				t.Fatalf("seed %d: %s applied to the old state gives %q, want %q", seed, name, got, newText)
			}
			// The writer applies it to the state it has.
			must(t, src.ApplyUpdate(u))
		}
		if got := src.GetText("contents").String(); got != newText {
			t.Fatalf("seed %d: the old writer has %q, want %q", seed, got, newText)
		}
		if (old == newText) != IsEmptyUpdate(local) {
			t.Fatalf("seed %d: %q -> %q gave an update of %d bytes", seed, old, newText, len(local))
		}
	}
}

// TestApplyDiffIsMinimal: a change in the middle of a text inserts and
// deletes only around it, never the whole text, and splits no emoji.
func TestApplyDiffIsMinimal(t *testing.T) {
	old := strings.Repeat("漢字 😀 hello 👍🏽 world\n", 200)
	newText := strings.Replace(old, "hello 👍🏽 world", "hello 👍🏽 there", 1)
	d := readBack(t, encode(t, buildHistory(t, rand.New(rand.NewPCG(1, 2)), old, true)))
	sv := d.EncodeStateVector()
	d.SetRandomClientID()
	must(t, d.GetText("contents").ApplyDiff(newText))
	u, err := d.EncodeLocalChanges(sv)
	must(t, err)
	if len(u) > 60 {
		t.Errorf("changing one word of %d bytes wrote %d bytes", len(old), len(u))
	}
	// The deleted "world" and the inserted "there" are the only content.
	if bytes.Contains(u, []byte("hello")) || !bytes.Contains(u, []byte("there")) {
		t.Errorf("update carries more than the changed word: %q", u)
	}
	if bytes.Contains(u, []byte("\xef\xbf\xbd")) {
		t.Errorf("update holds U+FFFD: an emoji was split")
	}
}

func encode(t testing.TB, d *Doc) []byte {
	t.Helper()
	u, err := d.EncodeStateAsUpdate()
	must(t, err)
	return u
}

func TestApplyDiffRefuses(t *testing.T) {
	d := NewDoc()
	tx := d.GetText("contents")
	must(t, tx.Insert(0, "abc"))
	if err := tx.ApplyDiff("a\xffb"); err == nil {
		t.Error("invalid UTF-8 was accepted")
	}
	if err := d.GetMap("m").ApplyDiff("x"); err == nil {
		t.Error("ApplyDiff on a map was accepted")
	}
	if got := tx.String(); got != "abc" {
		t.Errorf("refused diffs changed the text to %q", got)
	}
}

// TestEncodeDiffCutsFirstStruct: a peer that has the first half of an item
// gets only the second half, with the unit before as its origin.
func TestEncodeDiffCutsFirstStruct(t *testing.T) {
	a := NewDoc()
	tx := a.GetText("t")
	must(t, tx.Insert(0, "hello😀"))
	half := encode(t, a)
	sv := a.EncodeStateVector()
	must(t, tx.Insert(tx.Len(), " world"))
	if n := len(a.store.structs(1)); n != 1 {
		t.Fatalf("typing on merged into %d structs, want 1 (the test needs one item to cut)", n)
	}
	u, err := a.EncodeDiff(sv)
	must(t, err)
	if bytes.Contains(u, []byte("hello")) || !bytes.Contains(u, []byte(" world")) {
		t.Errorf("diff is not cut at the peer's clock: %q", u)
	}
	if got := readBack(t, half, u).GetText("t").String(); got != "hello😀 world" {
		t.Errorf("peer has %q", got)
	}
	if full, err := a.EncodeDiff(nil); err != nil || !bytes.Equal(full, encode(t, a)) {
		t.Errorf("EncodeDiff(nil) differs from EncodeStateAsUpdate (%v)", err)
	}
	if IsEmptyUpdate(u) {
		t.Errorf("a diff with content counts as empty")
	}
	if u, err := a.EncodeDiff(a.EncodeStateVector()); err != nil || !IsEmptyUpdate(u) {
		t.Errorf("diff against the same state is %v (%v), want the empty update", u, err)
	}
}

func TestStateVectorRoundTrip(t *testing.T) {
	d := readBack(t, encode(t, randomSession(t, 3)))
	got, err := DecodeStateVector(d.EncodeStateVector())
	must(t, err)
	if want := d.StateVector(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
	for _, bad := range [][]byte{{1}, {1, 5}, {0, 9}, {2, 1, 1}} {
		if _, err := DecodeStateVector(bad); err == nil {
			t.Errorf("state vector %v was accepted", bad)
		}
	}
}

func TestSetRandomClientIDAvoidsUsedIDs(t *testing.T) {
	d := NewDoc()
	must(t, d.GetText("t").Insert(0, "x"))
	for range 100 {
		if id := d.SetRandomClientID(); id == 1 || id > 1<<32-1 {
			t.Fatalf("picked client id %d", id)
		}
	}
}

// TestLocalChangesCarryMapOverwrites: overwriting and deleting keys sends
// the deletion of the old values, so a peer that gets the update in any
// order with a concurrent one ends up like the writer.
func TestLocalChangesCarryMapOverwrites(t *testing.T) {
	src := NewDoc()
	src.ClientID = 5
	m := src.GetMap("filemeta_v0")
	must(t, m.Set("/a.md", map[string]any{"id": "A", "type": "markdown"}))
	must(t, m.Set("/b.md", map[string]any{"id": "B", "type": "markdown"}))
	state := encode(t, src)
	d := readBack(t, state)
	sv := d.EncodeStateVector()
	d.SetRandomClientID()
	dm := d.GetMap("filemeta_v0")
	must(t, dm.Set("/a.md", map[string]any{"id": "A2", "type": "markdown"}))
	dm.DeleteKey("/b.md")
	nt, err := dm.SetType("canvas", KindText)
	must(t, err)
	must(t, nt.Insert(0, "node 😀"))
	u, err := d.EncodeLocalChanges(sv)
	must(t, err)
	got := canonicalJSON(t, readBack(t, state, u).ToJSON())
	want := canonicalJSON(t, d.ToJSON())
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("peer has %s, want %s", show(got), show(want))
	}
	if r := readDS(t, u); len(r) != 1 {
		t.Errorf("delete set of the update covers clients %v, want only client 5's overwritten entries", r)
	}
}

// readDS returns the delete set of a v1 update.
func readDS(t *testing.T, u []byte) deleteSet {
	t.Helper()
	r := &reader{buf: u}
	if _, err := NewDoc().readStructs(r); err != nil {
		t.Fatal(err)
	}
	ds, err := readDeleteSet(r)
	must(t, err)
	return ds
}

// FuzzApplyDiff: any valid old and new text, with a deleted item inside
// the old one, ends as the new text in the writer and in a peer that
// applies the update against the old state.
func FuzzApplyDiff(f *testing.F) {
	f.Add("Hello world", "Hello there world", uint8(3))
	f.Add("a😀b", "a😁b", uint8(1))
	f.Add("漢字👍🏽", "", uint8(9))
	f.Add("", "𝄞e\u0301", uint8(0))
	f.Fuzz(func(t *testing.T, old, newText string, cut uint8) {
		if !utf8.ValidString(old) || !utf8.ValidString(newText) {
			return
		}
		src := NewDoc()
		tx := src.GetText("contents")
		must(t, tx.Insert(0, old))
		// A deleted item at a code point boundary of the old text.
		r := []rune(old)
		at := UTF16Len(string(r[:int(cut)%(len(r)+1)]))
		must(t, tx.Insert(at, "😀junk"))
		must(t, tx.Delete(at, UTF16Len("😀junk")))
		state := encode(t, src)
		d := readBack(t, state)
		sv := d.EncodeStateVector()
		d.SetRandomClientID()
		if err := d.GetText("contents").ApplyDiff(newText); err != nil {
			t.Fatalf("%q -> %q: %v", old, newText, err)
		}
		if got := d.GetText("contents").String(); got != newText {
			t.Fatalf("ApplyDiff gave %q, want %q", got, newText)
		}
		u, err := d.EncodeLocalChanges(sv)
		must(t, err)
		if got := readBack(t, state, u).GetText("contents").String(); got != newText {
			t.Fatalf("the peer has %q, want %q", got, newText)
		}
	})
}
