package webui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Server time of the pages the issue sets a budget for (100 ms each):
// run with go test -tags nomsgpack -run '^$' -bench . ./webui/

// benchHandler is the UI over v with a signed-in session cookie.
func benchHandler(b *testing.B, v *vault) (http.Handler, *http.Cookie) {
	h, err := New(Config{Source: v.source(), APIToken: readToken})
	if err != nil {
		b.Fatal(err)
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/ui/login", strings.NewReader(url.Values{"token": {readToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(w, req)
	ck := w.Result().Cookies()
	if len(ck) != 1 {
		b.Fatalf("sign-in: %d", w.Code)
	}
	return h, ck[0]
}

func benchGet(b *testing.B, h http.Handler, ck *http.Cookie, p string) {
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", p, nil)
		req.AddCookie(ck)
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%s: %d %s", p, w.Code, w.Body)
		}
	}
}

var (
	bigOnce  sync.Once
	bigVault *vault
)

// BenchmarkTimelineFirstPage: a folder of 100 notes with 20,000 snapshots,
// each editing one or two notes.
func BenchmarkTimelineFirstPage(b *testing.B) {
	benchGet(b, bigTimeline(b), bigCookie, folderURL())
}

// BenchmarkTimelineOldPage: the page of the oldest 50 of those snapshots,
// once the folder's list is cached (after the first such page).
func BenchmarkTimelineOldPage(b *testing.B) {
	benchGet(b, bigTimeline(b), bigCookie, folderURL()+"?before=51")
}

// BenchmarkTimelineOldPageCold: the same page as the first one a server
// shows after its start, which reads the whole list (a new handler each
// time, with its sign-in).
func BenchmarkTimelineOldPageCold(b *testing.B) {
	bigTimeline(b)
	b.ReportAllocs()
	for b.Loop() {
		h, ck := benchHandler(b, bigVault)
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", folderURL()+"?before=51", nil)
		req.AddCookie(ck)
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkTimelineFiltered: the first page of those snapshots that
// touched one note (the folder's list cached).
func BenchmarkTimelineFiltered(b *testing.B) {
	benchGet(b, bigTimeline(b), bigCookie, folderURL()+"?path=n042.md")
}

var bigCookie *http.Cookie

func bigTimeline(b *testing.B) http.Handler {
	bigOnce.Do(func() {
		bigVault = openVault(b)
		set := map[string]string{}
		for i := range 100 {
			set[fmt.Sprintf("notes/n%03d.md", i)] = "start"
		}
		bigVault.commit(edit{set: set})
		for i := 1; i < 20000; i++ {
			bigVault.commit(edit{users: []string{"u-ada"}, set: map[string]string{
				fmt.Sprintf("notes/n%03d.md", i%100):     fmt.Sprint("v", i),
				fmt.Sprintf("notes/n%03d.md", (i*7)%100): fmt.Sprint("w", i),
			}})
		}
	})
	h, ck := benchHandler(b, bigVault)
	bigCookie = ck
	return h
}

// BenchmarkFileHistory1000: the history page of a note with 1,000
// versions (in a folder with 2,000 snapshots; the list cached after the
// first run).
func BenchmarkFileHistory1000(b *testing.B) {
	v := newVault(b)
	v.commit(edit{set: map[string]string{"n.md": "0", "other.md": "0"}})
	for i := 1; i < 2000; i++ {
		p := "other.md"
		if i%2 == 0 {
			p = "n.md"
		}
		v.commit(edit{users: []string{"u-ada"}, set: map[string]string{p: fmt.Sprint(i)}})
	}
	h, ck := benchHandler(b, v)
	benchGet(b, h, ck, folderURL()+"history?path=n.md")
}

// BenchmarkDiff1MB: the diff page of two 1 MB versions of a note (20,000
// lines of 50 bytes) that differ in every 100th line.
func BenchmarkDiff1MB(b *testing.B) {
	var a, c strings.Builder
	for i := range 20000 {
		line := fmt.Sprintf("line %05d of the note, with some words to diff ok\n", i)
		a.WriteString(line)
		if i%100 == 50 {
			line = fmt.Sprintf("line %05d of the note, with other words to diff ok\n", i)
		}
		c.WriteString(line)
	}
	v := newVault(b)
	s1 := v.commit(edit{set: map[string]string{"big.md": a.String()}})
	s2 := v.commit(edit{set: map[string]string{"big.md": c.String()}})
	h, ck := benchHandler(b, v)
	b.SetBytes(int64(a.Len() + c.Len()))
	benchGet(b, h, ck, fmt.Sprintf("%sdiff?a=%d:big.md&b=%d:big.md", folderURL(), s1, s2))
}
