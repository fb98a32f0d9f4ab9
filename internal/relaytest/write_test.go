package relaytest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

// yjsEdits is run by the real yjs (tools/yjsoracle): each edit forks the
// base state in its own client and makes one text change; the answer holds
// each fork's update (only its change: encodeStateAsUpdate against the
// base's state vector), what their merge reads in yjs, and what yjs reads
// from each of the given states.
const yjsEdits = `
import * as Y from 'yjs'
import fs from 'node:fs'
const inp = JSON.parse(fs.readFileSync(0, 'utf8'))
const b64 = (u) => Buffer.from(u).toString('base64')
const base = Buffer.from(inp.base || '', 'base64')
const out = { updates: [], reads: [] }
out.baseGC = base.length > 0 && Y.decodeUpdate(base).structs.some((s) => s instanceof Y.GC || s.content instanceof Y.ContentDeleted)
;(inp.edits || []).forEach((e, i) => {
  const d = new Y.Doc()
  d.clientID = 7000 + i
  if (base.length) Y.applyUpdate(d, base)
  const sv = Y.encodeStateVector(d)
  const t = d.getText('contents')
  if (e.del) t.delete(e.index, e.del)
  if (e.insert) t.insert(e.index, e.insert)
  out.updates.push(b64(Y.encodeStateAsUpdate(d, sv)))
})
const m = new Y.Doc()
if (base.length) Y.applyUpdate(m, base)
for (const u of out.updates) Y.applyUpdate(m, Buffer.from(u, 'base64'))
out.merged = m.getText('contents').toString()
for (const s of inp.read || []) {
  const d = new Y.Doc()
  Y.applyUpdate(d, Buffer.from(s, 'base64'))
  out.reads.push(d.getText('contents').toString())
}
process.stdout.write(JSON.stringify(out))
`

type yjsEdit struct {
	Index  int    `json:"index"` // UTF-16 code units
	Del    int    `json:"del,omitempty"`
	Insert string `json:"insert,omitempty"`
}

type yjsAnswer struct {
	BaseGC  bool     `json:"baseGC"` // the base state holds garbage-collected content (GC or ContentDeleted)
	Updates []string `json:"updates"`
	Merged  string   `json:"merged"`
	Reads   []string `json:"reads"`
}

func runYjs(t *testing.T, base []byte, edits []yjsEdit, read ...[]byte) (updates [][]byte, merged string, reads []string) {
	t.Helper()
	a := runYjsAnswer(t, base, edits, read...)
	for _, u := range a.Updates {
		b, _ := base64.StdEncoding.DecodeString(u)
		updates = append(updates, b)
	}
	return updates, a.Merged, a.Reads
}

func runYjsAnswer(t *testing.T, base []byte, edits []yjsEdit, read ...[]byte) yjsAnswer {
	t.Helper()
	dir := testreq.YjsOracle(t)
	in := map[string]any{"base": base64.StdEncoding.EncodeToString(base), "edits": edits}
	var rs []string
	for _, r := range read {
		rs = append(rs, base64.StdEncoding.EncodeToString(r))
	}
	in["read"] = rs
	inb, _ := json.Marshal(in)
	cmd := exec.Command("node", "--input-type=module", "-e", yjsEdits)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(inb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var a yjsAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("node answer %q: %v", out, err)
	}
	return a
}

// docToken asks the fake for a document token (authorization "full" or
// "read-only").
func docToken(t *testing.T, s *relaytest.Server, cid, authorization string) string {
	t.Helper()
	resp, body := do(t, "POST", s.URL()+"/doc/"+cid+"/auth", key, strings.NewReader(`{"authorization":"`+authorization+`"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("auth: %d %s", resp.StatusCode, body)
	}
	var ct struct {
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(body), &ct)
	return ct.Token
}

func textOf(t *testing.T, upd []byte) string {
	t.Helper()
	d := yjs.NewDoc()
	if err := d.ApplyUpdate(upd); err != nil {
		t.Fatal(err)
	}
	return d.GetText("contents").String()
}

// asUpdate reads a document as relay-git-sync does, over HTTP.
func asUpdate(t *testing.T, s *relaytest.Server, cid string) []byte {
	t.Helper()
	resp, body := do(t, "GET", s.URL()+"/d/"+cid+"/as-update", key, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("as-update: %d %s", resp.StatusCode, body)
	}
	return []byte(body)
}

func TestUpdateRouteMergesYjsUpdates(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key})
	rc := &receiver{secret: "hook-secret"}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	s.AddWebhook(relaytest.WebhookConfig{URL: hook.URL, Secret: rc.secret})
	r := s.NewRelay()
	f := s.NewFolder(r)
	// Deleted and garbage-collected content before the writes.
	id, _ := f.AddMarkdown("/n.md", "héllo 😀 gone wörld 中文")
	if err := f.EditMarkdown("/n.md", "héllo 😀 wörld 中文"); err != nil {
		t.Fatal(err)
	}
	cid := relay.CompoundID(r, id)
	base := asUpdate(t, s, cid)

	// Two yjs clients edit the same state concurrently, around the emoji
	// and the CJK (offsets in UTF-16 units: "héllo " is 6, the emoji 2).
	edits := []yjsEdit{
		{Index: 6, Insert: "A😎"},        // before the emoji
		{Index: 8, Del: 1, Insert: "_"}, // the space after it
		{Index: 16, Insert: "字"},        // between the CJK characters
	}
	a := runYjsAnswer(t, base, edits)
	if !a.BaseGC {
		t.Fatal("the base state holds no garbage-collected content")
	}
	updates, merged, _ := runYjs(t, base, edits)
	if merged != "héllo A😎😀_wörld 中字文" {
		t.Fatalf("yjs merged %q", merged)
	}
	tok := docToken(t, s, cid, "full")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.WaitWebhooks(ctx)
	before := len(bodiesOf(rc))
	for i, u := range updates {
		resp, body := do(t, "POST", s.URL()+"/d/"+cid+"/update", tok, bytes.NewReader(u))
		if resp.StatusCode != 200 || body != "" {
			t.Fatalf("update %d: %d %q", i, resp.StatusCode, body)
		}
	}
	got := asUpdate(t, s, cid)
	if txt := textOf(t, got); txt != merged {
		t.Fatalf("after the updates the fake serves %q, yjs merges to %q", txt, merged)
	}
	// The real yjs reads the served state the same way.
	_, _, reads := runYjs(t, nil, nil, got)
	if reads[0] != merged {
		t.Fatalf("yjs reads the served state as %q, want %q", reads[0], merged)
	}
	// One webhook per update that changed the document, as relay-server.
	s.WaitWebhooks(ctx)
	hooks := bodiesOf(rc)[before:]
	if len(hooks) != len(updates) {
		t.Fatalf("%d webhooks after %d updates", len(hooks), len(updates))
	}
	for _, b := range hooks {
		if !bytes.Contains(b, []byte(`"doc_id":"`+cid+`"`)) {
			t.Fatalf("webhook %s is not for %s", b, cid)
		}
	}
	// The same update again (a retried write) changes nothing and sends
	// no webhook.
	resp, _ := do(t, "POST", s.URL()+"/d/"+cid+"/update", tok, bytes.NewReader(updates[0]))
	if resp.StatusCode != 200 || !bytes.Equal(asUpdate(t, s, cid), got) {
		t.Fatalf("a repeated update changed the document (%d)", resp.StatusCode)
	}
	s.WaitWebhooks(ctx)
	if n := len(bodiesOf(rc)) - before; n != len(updates) {
		t.Fatalf("a repeated update sent a webhook (%d webhooks)", n)
	}
	if w := s.WrittenUpdates(r, id); len(w) != len(updates)+1 || !bytes.Equal(w[0], updates[0]) {
		t.Fatalf("WrittenUpdates: %d updates", len(w))
	}
}

func bodiesOf(rc *receiver) [][]byte {
	b, _ := rc.received()
	return b
}

// A Go client (internal/yjs) and a yjs client edit the same state
// concurrently; the Go client sends its whole forked state as the update.
func TestUpdateRouteMergesGoUpdate(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key})
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/n.md", "one two three")
	cid := relay.CompoundID(r, id)
	base := asUpdate(t, s, cid)

	g := yjs.NewDoc()
	g.ClientID = 4242
	if err := g.ApplyUpdate(base); err != nil {
		t.Fatal(err)
	}
	txt := g.GetText("contents")
	if err := txt.Delete(4, 4); err != nil { // "two "
		t.Fatal(err)
	}
	if err := txt.Insert(0, "zero "); err != nil {
		t.Fatal(err)
	}
	goUpdate, err := g.EncodeStateAsUpdate()
	if err != nil {
		t.Fatal(err)
	}
	jsUpdates, _, _ := runYjs(t, base, []yjsEdit{{Index: 13, Insert: " four"}})

	// The yjs user's edit arrives first (as over its websocket), then the
	// Go client's write, on the deprecated route.
	if err := s.ApplyUpdate(r, id, jsUpdates[0]); err != nil {
		t.Fatal(err)
	}
	tok := docToken(t, s, cid, "full")
	if resp, body := do(t, "POST", s.URL()+"/doc/"+cid+"/update", tok, bytes.NewReader(goUpdate)); resp.StatusCode != 200 {
		t.Fatalf("update: %d %s", resp.StatusCode, body)
	}
	if w := s.WrittenUpdates(r, id); len(w) != 1 || !bytes.Equal(w[0], goUpdate) {
		t.Fatalf("WrittenUpdates holds %d updates, want only the route's one", len(w))
	}
	if err := s.ApplyUpdate(r, id, []byte{0xff}); err == nil {
		t.Fatal("ApplyUpdate took a malformed update")
	}
	const want = "zero one three four"
	got := asUpdate(t, s, cid)
	if txt := textOf(t, got); txt != want {
		t.Fatalf("Go reads %q, want %q", txt, want)
	}
	if _, _, reads := runYjs(t, nil, nil, got); reads[0] != want {
		t.Fatalf("yjs reads %q, want %q", reads[0], want)
	}
}

func TestUpdateRouteRefusals(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key})
	r := s.NewRelay()
	f := s.NewFolder(r)
	id, _ := f.AddMarkdown("/n.md", "keep")
	other, _ := f.AddMarkdown("/o.md", "other")
	cid := relay.CompoundID(r, id)
	u := s.URL() + "/d/" + cid + "/update"
	g := yjs.NewDoc()
	g.ClientID = 99
	g.GetText("contents").Insert(0, "new ")
	valid, _ := g.EncodeStateAsUpdate()
	state := asUpdate(t, s, cid)

	check := func(auth string, body []byte, code int, wantBody string) {
		t.Helper()
		resp, got := do(t, "POST", u, auth, bytes.NewReader(body))
		if resp.StatusCode != code || (wantBody != "" && got != wantBody) {
			t.Fatalf("%d %q, want %d %q", resp.StatusCode, got, code, wantBody)
		}
		if now := asUpdate(t, s, cid); code != 200 && !bytes.Equal(now, state) {
			t.Fatal("a refused update changed the document")
		}
	}
	check("", valid, 401, "Something went wrong: No token provided.")
	check("forged", valid, 401, "Something went wrong: Invalid token")
	check(docToken(t, s, relay.CompoundID(r, other), "full"), valid, 401, "Something went wrong: Token not valid for this document")
	check(docToken(t, s, cid, "read-only"), valid, 403, "Something went wrong: Unauthorized.")
	check(key, []byte{1, 2, 3, 0xff, 0xff}, 500, "")
	check(key, make([]byte, relaytest.MaxUpdateBytes+1), 413, "Failed to buffer the request body: length limit exceeded")
	s.InjectFault(relaytest.RouteUpdate, id, relaytest.Fault{Status: 503, Times: 1})
	check(key, valid, 503, "Something went wrong: injected fault")
	if n := len(s.WrittenUpdates(r, id)); n != 0 {
		t.Fatalf("%d refused updates recorded as written", n)
	}
	check(key, valid, 200, "")
	if txt := textOf(t, asUpdate(t, s, cid)); !strings.Contains(txt, "keep") || !strings.Contains(txt, "new ") {
		t.Fatalf("text %q", txt)
	}

	// Drop: the write lands, the answer is lost.
	g.GetText("contents").Insert(0, "more ")
	second, _ := g.EncodeStateAsUpdate()
	s.InjectFault(relaytest.RouteUpdate, id, relaytest.Fault{Drop: true, Times: 1})
	req, _ := http.NewRequest("POST", u, bytes.NewReader(second))
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a dropped answer arrived: %d", resp.StatusCode)
	}
	if txt := textOf(t, asUpdate(t, s, cid)); !strings.Contains(txt, "more ") {
		t.Fatalf("the dropped write did not land: %q", txt)
	}

	// The update route loads or creates a document, as relay-server's.
	fresh := relay.CompoundID(r, "11111111-2222-4333-8444-555555555555")
	if resp, body := do(t, "POST", s.URL()+"/d/"+fresh+"/update", key, bytes.NewReader(valid)); resp.StatusCode != 200 {
		t.Fatalf("update of a new document: %d %s", resp.StatusCode, body)
	}
	if txt := textOf(t, asUpdate(t, s, fresh)); txt != "new " {
		t.Fatalf("new document %q", txt)
	}
}

func TestNewDoc(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key})
	r := s.NewRelay()
	cid := relay.CompoundID(r, "11111111-2222-4333-8444-555555555555")
	post := func(auth, ctype, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URL()+"/doc/new", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp, b.String()
	}
	body := `{"docId":"` + cid + `"}`
	for _, c := range []struct {
		auth, ctype, body string
		code              int
	}{
		{key, "", body, 415},
		{"", "application/json", body, 401},
		{"forged", "application/json", body, 401},
		{key, "application/json", `{"docId":"a/b"}`, 400},
	} {
		if resp, got := post(c.auth, c.ctype, c.body); resp.StatusCode != c.code {
			t.Fatalf("%+v: %d %s", c, resp.StatusCode, got)
		}
	}
	resp, _ := do(t, "POST", s.URL()+"/doc/"+cid+"/auth", key, strings.NewReader("{}"))
	if resp.StatusCode != 404 {
		t.Fatalf("auth before creation: %d", resp.StatusCode)
	}
	for range 2 { // creating an existing document is a no-op
		resp, got := post(key, "application/json", body)
		if resp.StatusCode != 200 || got != body {
			t.Fatalf("new doc: %d %s", resp.StatusCode, got)
		}
	}
	if tok := docToken(t, s, cid, "full"); tok == "" {
		t.Fatal("no token for the created document")
	}
}

func TestUploadAndHistory(t *testing.T) {
	for _, store := range []string{"s3", "filesystem"} {
		t.Run(store, func(t *testing.T) {
			s := newServer(t, relaytest.Options{APIKey: key, FileStore: store})
			r := s.NewRelay()
			f := s.NewFolder(r)
			old := []byte("old version")
			fid, _ := f.AddFile("/a.png", "image", "image/png", old)
			fcid := relay.CompoundID(r, fid)
			data := []byte("\x89PNG new version \x00\x01")
			h := hex.EncodeToString(sha256Sum(data))
			uu := s.URL() + "/f/" + fcid + "/upload-url"

			// relay-server uploads only with a file token.
			resp, body := do(t, "POST", uu+"?hash="+h, key, nil)
			if resp.StatusCode != 400 || body != "Something went wrong: Token is not a file token" {
				t.Fatalf("server token: %d %q", resp.StatusCode, body)
			}
			mdID, _ := f.AddMarkdown("/n.md", "x")
			if resp, body := do(t, "POST", uu, docToken(t, s, relay.CompoundID(r, mdID), "full"), nil); resp.StatusCode != 401 {
				t.Fatalf("another document's token: %d %q", resp.StatusCode, body)
			}
			if resp, _ := do(t, "POST", uu, s.IssueFileToken(r, mdID, h, "", -1), nil); resp.StatusCode != 401 {
				t.Fatalf("another file's token: %d", resp.StatusCode)
			}
			ftok := s.IssueFileToken(r, fid, h, "image/png", int64(len(data)))
			resp, body = do(t, "POST", uu, ftok, nil)
			var up struct {
				UploadURL string `json:"uploadUrl"`
			}
			if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &up) != nil || up.UploadURL == "" {
				t.Fatalf("upload-url: %d %q", resp.StatusCode, body)
			}
			put := func(ctype string, b []byte) (int, string) {
				req, _ := http.NewRequest("PUT", up.UploadURL, bytes.NewReader(b))
				req.Header.Set("Content-Type", ctype)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var out bytes.Buffer
				out.ReadFrom(resp.Body)
				return resp.StatusCode, out.String()
			}
			// What the token does not allow is refused: other content
			// (the filesystem store checks the hash, S3 the signed length).
			if code, msg := put("image/png", []byte("other content, same nothing")); code == 200 {
				t.Fatalf("other content uploaded: %s", msg)
			}
			if store == "s3" {
				if code, _ := put("text/plain", data); code != 403 {
					t.Fatalf("wrong content type: %d", code)
				}
			}
			if code, msg := put("image/png", data); code != 200 {
				t.Fatalf("upload: %d %s", code, msg)
			}

			// The bytes come back through download-url.
			resp, body = do(t, "GET", s.URL()+"/f/"+fcid+"/download-url?hash="+h, key, nil)
			var du struct {
				DownloadURL string `json:"downloadUrl"`
			}
			json.Unmarshal([]byte(body), &du)
			if resp.StatusCode != 200 {
				t.Fatalf("download-url: %d %s", resp.StatusCode, body)
			}
			if resp, got := do(t, "GET", du.DownloadURL, "", nil); resp.StatusCode != 200 || got != string(data) {
				t.Fatalf("download: %d %q", resp.StatusCode, got)
			}

			// History lists both versions, with the server, doc or file token.
			resp, body = do(t, "GET", s.URL()+"/f/"+fcid+"/history", key, nil)
			var hist struct {
				Files []relaytest.FileVersion `json:"files"`
			}
			if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &hist) != nil {
				t.Fatalf("history: %d %s", resp.StatusCode, body)
			}
			sizes := map[string]uint64{}
			for _, v := range hist.Files {
				sizes[v.Hash] = v.Size
				if v.CreatedAt == 0 {
					t.Errorf("no createdAt in %+v", v)
				}
			}
			if len(sizes) != 2 || sizes[h] != uint64(len(data)) || sizes[hex.EncodeToString(sha256Sum(old))] != uint64(len(old)) {
				t.Fatalf("history %s", body)
			}
			if resp, _ := do(t, "GET", s.URL()+"/f/"+fcid+"/history", ftok, nil); resp.StatusCode != 200 {
				t.Fatalf("history with the file token: %d", resp.StatusCode)
			}
			for _, bad := range []string{"", "forged"} {
				if resp, _ := do(t, "GET", s.URL()+"/f/"+fcid+"/history", bad, nil); resp.StatusCode != 401 {
					t.Fatalf("history with %q: %d", bad, resp.StatusCode)
				}
			}
		})
	}
}

func TestServerTokenUploadsOption(t *testing.T) {
	s := newServer(t, relaytest.Options{APIKey: key, ServerTokenUploads: true})
	r := s.NewRelay()
	fid := "11111111-2222-4333-8444-555555555555"
	fcid := relay.CompoundID(r, fid)
	data := []byte("bytes")
	h := hex.EncodeToString(sha256Sum(data))
	resp, body := do(t, "POST", s.URL()+"/f/"+fcid+"/upload-url?hash="+h, key, nil)
	var up struct {
		UploadURL string `json:"uploadUrl"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &up) != nil {
		t.Fatalf("upload-url: %d %s", resp.StatusCode, body)
	}
	if resp, got := do(t, "PUT", up.UploadURL, "", bytes.NewReader(data)); resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, got)
	}
	resp, body = do(t, "GET", s.URL()+"/f/"+fcid+"/history", key, nil)
	if !strings.Contains(body, fmt.Sprintf(`{"hash":"%s","size":5,`, h)) {
		t.Fatalf("history: %d %s", resp.StatusCode, body)
	}
}
