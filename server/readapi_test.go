package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

const snapPath = "/api/v1/folders/" + testRelay + "/" + testDoc + "/snapshots"

var readPaths = []string{
	"/api/v1/folders",
	snapPath,
	snapPath + "?after=1",
	snapPath + "/latest",
	snapPath + "/1",
	"/api/v1/blobs/ce013625030ba8dba906f756967f9e9ca394464a",
	histPath,
	histPath + "?after=1",
	"/api/v1/history-config",
}

// unknownPath is a folder the store does not follow.
const unknownPath = "/api/v1/folders/" + testRelay + "/0f8e1c7a-1111-4222-8333-444455556666"

const histPath = "/api/v1/folders/" + testRelay + "/" + testDoc + "/history"

func TestReadAPIAuth(t *testing.T) {
	const needed = `{"error":"Authentication required: send Authorization: Bearer \u003cRELAY_GIT_API_TOKEN\u003e"}`
	const bad = `{"error":"Authentication failed: invalid API token"}`
	cases := []struct {
		name, header string
		status       int
		body         string
	}{
		{"missing", "", 401, needed},
		{"basic", "Basic " + testToken, 401, needed},
		{"empty token", "Bearer ", 401, needed},
		{"no scheme", testToken, 401, needed},
		{"wrong", "Bearer nope", 401, bad},
		{"prefix", "Bearer " + testToken[:4], 401, bad},
		{"Bearer Bearer", "Bearer Bearer " + testToken, 401, bad},
		{"webhook secret is not the token", "Bearer " + testSecret, 401, bad},
		{"ok", "Bearer " + testToken, 200, ""},
		{"lower-case scheme ok", "bearer " + testToken, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil)
			for _, p := range readPaths {
				hdr := map[string]string{}
				if tc.header != "" {
					hdr["Authorization"] = tc.header
				}
				w := env.do("GET", p, nil, hdr)
				if tc.status == 200 {
					if w.Code != 200 {
						t.Errorf("%s: %d %s", p, w.Code, w.Body)
					}
					continue
				}
				expectJSON(t, w, tc.status, tc.body)
				if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="relay-git-sync"` {
					t.Errorf("%s: WWW-Authenticate %q", p, got)
				}
			}
			if tc.status != 200 && len(env.rd.calls) != 0 {
				t.Errorf("reader called without authentication: %v", env.rd.calls)
			}
		})
	}
}

func TestReadAPIDisabledWithoutToken(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.APIToken = "" })
	for _, p := range readPaths {
		for _, hdr := range []map[string]string{nil, bearer(""), bearer("anything")} {
			w := env.do("GET", p, nil, hdr)
			if w.Code != 401 || !strings.Contains(w.Body.String(), "RELAY_GIT_API_TOKEN") {
				t.Errorf("%s: %d %s", p, w.Code, w.Body)
			}
		}
	}
	if len(env.rd.calls) != 0 {
		t.Errorf("reader called: %v", env.rd.calls)
	}
	// A nil Source is fine when the API is disabled.
	if _, err := New(Config{WebhookSecret: "x", Events: &fakeSink{}}); err != nil {
		t.Fatal(err)
	}
}

func TestReadAPIFolders(t *testing.T) {
	env := newEnv(t, nil)
	w := env.do("GET", "/api/v1/folders", nil, bearer(testToken))
	expectJSON(t, w, 200, `{"folders":[`+
		`{"relay":"`+testRelay+`","folder":"`+testDoc+`","latest_seq":2,"latest_time":"2026-03-03T21:59:48.123456789Z"},`+
		`{"relay":"`+testRelay+`","folder":"`+testMiddle+`","latest_seq":0,"latest_time":null}]}`)
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	empty, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	env = newEnv(t, func(c *Config) { c.Source = source.FromStore(empty) })
	expectJSON(t, env.do("GET", "/api/v1/folders", nil, bearer(testToken)), 200, `{"folders":[]}`)
}

func TestReadAPISnapshots(t *testing.T) {
	env := newEnv(t, nil)
	s1 := `{"seq":1,"time":"2026-03-03T21:58:48.123456789Z","users":["alice"],"changes":[{"kind":"added","path":"notes/a.md","doc_id":"` + testDoc + `"}],"num_files":1}`
	s2 := `{"seq":2,"time":"2026-03-03T21:59:48.123456789Z","users":[],"changes":[{"kind":"renamed","path":"notes/b.md","old_path":"notes/a.md","doc_id":"` + testDoc + `"}],"num_files":1}`
	head := `{"relay":"` + testRelay + `","folder":"` + testDoc + `","snapshots":[`
	expectJSON(t, env.do("GET", snapPath, nil, bearer(testToken)), 200, head+s1+","+s2+"]}")
	expectJSON(t, env.do("GET", snapPath+"?after=0", nil, bearer(testToken)), 200, head+s1+","+s2+"]}")
	expectJSON(t, env.do("GET", snapPath+"?after=1", nil, bearer(testToken)), 200, head+s2+"]}")
	expectJSON(t, env.do("GET", snapPath+"?after=2", nil, bearer(testToken)), 200, head+"]}")

	// Upper-case ids are normalized before reaching the reader.
	up := "/api/v1/folders/" + strings.ToUpper(testRelay) + "/" + strings.ToUpper(testDoc) + "/snapshots?after=1"
	expectJSON(t, env.do("GET", up, nil, bearer(testToken)), 200, head+s2+"]}")

	for _, q := range []string{"?after=-1", "?after=x", "?after=", "?after=1.5", "?after=99999999999999999999"} {
		w := env.do("GET", snapPath+q, nil, bearer(testToken))
		if w.Code != 400 || !strings.Contains(w.Body.String(), "invalid after") {
			t.Errorf("%s: %d %s", q, w.Code, w.Body)
		}
	}
	// A followed folder without snapshots has none; an unknown one is 404.
	expectJSON(t, env.do("GET", "/api/v1/folders/"+testRelay+"/"+testMiddle+"/snapshots", nil, bearer(testToken)), 200,
		`{"relay":"`+testRelay+`","folder":"`+testMiddle+`","snapshots":[]}`)
	expectJSON(t, env.do("GET", unknownPath+"/snapshots", nil, bearer(testToken)), 404, `{"error":"not found"}`)
}

func TestReadAPISnapshot(t *testing.T) {
	env := newEnv(t, nil)
	want2 := `{"relay":"` + testRelay + `","folder":"` + testDoc + `",` +
		`"seq":2,"time":"2026-03-03T21:59:48.123456789Z","users":[],"changes":[{"kind":"renamed","path":"notes/b.md","old_path":"notes/a.md","doc_id":"` + testDoc + `"}],"num_files":1,` +
		`"files":[{"path":"notes/b.md","blob":"ce013625030ba8dba906f756967f9e9ca394464a","size":6,"kind":"markdown","doc_id":"` + testDoc + `"}]}`
	expectJSON(t, env.do("GET", snapPath+"/latest", nil, bearer(testToken)), 200, want2)
	expectJSON(t, env.do("GET", snapPath+"/2", nil, bearer(testToken)), 200, want2)
	w := env.do("GET", snapPath+"/1", nil, bearer(testToken))
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got["seq"] != float64(1) || got["users"].([]any)[0] != "alice" {
		t.Errorf("snapshot 1: %v %s", err, w.Body)
	}
	expectJSON(t, env.do("GET", snapPath+"/3", nil, bearer(testToken)), 404, `{"error":"not found"}`)
	expectJSON(t, env.do("GET", "/api/v1/folders/"+testRelay+"/"+testMiddle+"/snapshots/latest", nil, bearer(testToken)), 404, `{"error":"not found"}`)
	for _, seq := range []string{"0", "-1", "x", "LATEST", "1.0", "18446744073709551616"} {
		w := env.do("GET", snapPath+"/"+seq, nil, bearer(testToken))
		if w.Code != 400 || !strings.Contains(w.Body.String(), "invalid seq") {
			t.Errorf("seq %s: %d %s", seq, w.Code, w.Body)
		}
	}
	want := []string{
		"Snapshot " + testRelay + "/" + testDoc + " 0",
		"Snapshot " + testRelay + "/" + testDoc + " 2",
	}
	for i, c := range want {
		if env.rd.calls[i] != c {
			t.Errorf("call %d: %q, want %q", i, env.rd.calls[i], c)
		}
	}
}

func TestReadAPIBadIDs(t *testing.T) {
	env := newEnv(t, nil)
	cases := map[string]string{
		"/api/v1/folders/not-a-uuid/" + testDoc + "/snapshots":                "invalid relay id",
		"/api/v1/folders/" + testRelay + "/" + testDoc + "x/snapshots/latest": "invalid folder id",
		"/api/v1/folders/" + testRelay + "x/" + testDoc + "/snapshots/1":      "invalid relay id",
		"/api/v1/folders/" + testRelay + "/%2E%2E/snapshots":                  "invalid folder id",
		"/api/v1/folders/" + testRelay + "/" + testDoc + "/snapshots/%2E%2E":  "invalid seq",
		"/api/v1/blobs/ce013625030ba8dba906f756967f9e9ca394464":               "invalid blob id",
		"/api/v1/blobs/ce013625030ba8dba906f756967f9e9ca394464aa":             "invalid blob id",
		"/api/v1/blobs/ge013625030ba8dba906f756967f9e9ca394464a":              "invalid blob id",
		"/api/v1/blobs/%2E%2E": "invalid blob id",
		// An encoded slash makes a path with more segments: no route.
		"/api/v1/folders/" + testRelay + "/..%2F..%2Fetc/snapshots": "",
		"/api/v1/blobs/" + strings.Repeat("0", 39) + "%2F":          "",
	}
	for p, want := range cases {
		w := env.do("GET", p, nil, bearer(testToken))
		if want == "" {
			expectJSON(t, w, 404, `{"error":"not found"}`)
			continue
		}
		if w.Code != 400 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: %d %s", p, w.Code, w.Body)
		}
	}
	if len(env.rd.calls) != 0 {
		t.Errorf("reader called with invalid ids: %v", env.rd.calls)
	}
}

func TestReadAPIBlob(t *testing.T) {
	env := newEnv(t, nil)
	const id = "ce013625030ba8dba906f756967f9e9ca394464a"
	w := env.do("GET", "/api/v1/blobs/"+id, nil, bearer(testToken))
	if w.Code != 200 || w.Body.String() != "hello\n" {
		t.Fatalf("blob: %d %q", w.Code, w.Body)
	}
	for k, v := range map[string]string{
		"Content-Type":  "application/octet-stream",
		"ETag":          `"` + id + `"`,
		"Cache-Control": "private, max-age=31536000, immutable",
	} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	// Upper-case id accepted and normalized.
	if w := env.do("GET", "/api/v1/blobs/"+strings.ToUpper(id), nil, bearer(testToken)); w.Code != 200 || w.Body.String() != "hello\n" {
		t.Errorf("upper-case id: %d", w.Code)
	}
	// Empty blob.
	if w := env.do("GET", "/api/v1/blobs/e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", nil, bearer(testToken)); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("empty blob: %d %q", w.Code, w.Body)
	}
	// Conditional requests.
	for _, inm := range []string{`"` + id + `"`, `W/"` + id + `"`, `"other", "` + id + `"`, `*`} {
		hdr := bearer(testToken)
		hdr["If-None-Match"] = inm
		w := env.do("GET", "/api/v1/blobs/"+id, nil, hdr)
		if w.Code != 304 || w.Body.Len() != 0 {
			t.Errorf("If-None-Match %s: %d", inm, w.Code)
		}
	}
	hdr := bearer(testToken)
	hdr["If-None-Match"] = `"other"`
	if w := env.do("GET", "/api/v1/blobs/"+id, nil, hdr); w.Code != 200 {
		t.Errorf("non-matching If-None-Match: %d", w.Code)
	}
	w = env.do("GET", "/api/v1/blobs/"+strings.Repeat("a", 40), nil, bearer(testToken))
	expectJSON(t, w, 404, `{"error":"not found"}`)
	if w.Header().Get("ETag") != "" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("404 cacheable: %v", w.Header())
	}
}

func TestReadAPIStoreErrors(t *testing.T) {
	env := newEnv(t, nil)
	env.rd.err = errFakeStore
	for _, p := range readPaths {
		expectJSON(t, env.do("GET", p, nil, bearer(testToken)), 500, `{"error":"Internal server error"}`)
	}
	if !strings.Contains(env.logs.String(), errFakeStore.Error()) {
		t.Error("store error not logged")
	}
	env.rd.err = nil
	env.rd.panic = true
	expectJSON(t, env.do("GET", "/api/v1/folders", nil, bearer(testToken)), 500, `{"error":"Internal server error"}`)
	if !strings.Contains(env.logs.String(), "panic in HTTP handler") {
		t.Error("panic not logged")
	}
}

func TestReadAPIHistory(t *testing.T) {
	env := newEnv(t, nil)
	w := env.do("GET", histPath, nil, bearer(testToken))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("history: %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	s1 := `{"seq":1,"time":"2026-03-03T21:58:48.123456789Z","users":["alice"],"changes":[{"kind":"added","path":"notes/a.md","doc_id":"` + testDoc + `"}],"num_files":1,` +
		`"files":[{"path":"notes/a.md","blob":"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391","size":0,"kind":"markdown","doc_id":"` + testDoc + `"}]}`
	s2delta := `{"seq":2,"time":"2026-03-03T21:59:48.123456789Z","users":[],"changes":[{"kind":"renamed","path":"notes/b.md","old_path":"notes/a.md","doc_id":"` + testDoc + `"}],"num_files":1,` +
		`"set":[{"path":"notes/b.md","blob":"ce013625030ba8dba906f756967f9e9ca394464a","size":6,"kind":"markdown","doc_id":"` + testDoc + `"}],"deleted":["notes/a.md"]}`
	s2full := `{"seq":2,"time":"2026-03-03T21:59:48.123456789Z","users":[],"changes":[{"kind":"renamed","path":"notes/b.md","old_path":"notes/a.md","doc_id":"` + testDoc + `"}],"num_files":1,` +
		`"files":[{"path":"notes/b.md","blob":"ce013625030ba8dba906f756967f9e9ca394464a","size":6,"kind":"markdown","doc_id":"` + testDoc + `"}]}`
	if got, want := w.Body.String(), s1+"\n"+s2delta+"\n"+`{"end":true,"count":2}`+"\n"; got != want {
		t.Errorf("history:\n%s\nwant\n%s", got, want)
	}
	// After 1, snapshot 2 comes first, so with its whole tree.
	w = env.do("GET", histPath+"?after=1", nil, bearer(testToken))
	if got, want := w.Body.String(), s2full+"\n"+`{"end":true,"count":1}`+"\n"; got != want {
		t.Errorf("history after 1:\n%s\nwant\n%s", got, want)
	}
	// Nothing new: just the end line.
	w = env.do("GET", histPath+"?after=2", nil, bearer(testToken))
	if w.Code != 200 || w.Body.String() != `{"end":true,"count":0}`+"\n" {
		t.Errorf("history after 2: %d %s", w.Code, w.Body)
	}
	if w := env.do("GET", "/api/v1/folders/"+testRelay+"/"+testMiddle+"/history", nil, bearer(testToken)); w.Code != 200 || w.Body.String() != `{"end":true,"count":0}`+"\n" {
		t.Errorf("history of a folder without snapshots: %d %s", w.Code, w.Body)
	}
	expectJSON(t, env.do("GET", unknownPath+"/history", nil, bearer(testToken)), 404, `{"error":"not found"}`)
	if w := env.do("GET", histPath+"?after=x", nil, bearer(testToken)); w.Code != 400 || !strings.Contains(w.Body.String(), "invalid after") {
		t.Errorf("after=x: %d %s", w.Code, w.Body)
	}
	// A failure once the answer has started: an error line and no end line.
	env.rd.failHistoryAfter = 1
	w = env.do("GET", histPath, nil, bearer(testToken))
	if want := s1 + "\n" + `{"error":"Internal server error: history cut short"}` + "\n"; w.Code != 200 || w.Body.String() != want {
		t.Errorf("failing history: %d\n%s\nwant\n%s", w.Code, w.Body, want)
	}
	if !strings.Contains(env.logs.String(), "history cut short") {
		t.Error("failure not logged")
	}
}

func TestReadAPIHistoryConfig(t *testing.T) {
	env := newEnv(t, nil)
	expectJSON(t, env.do("GET", "/api/v1/history-config", nil, bearer(testToken)), 200,
		`{"author":{"name":"Notes Bot","email":"bot@example.com"},"committer":{"name":"","email":""}}`)
}
