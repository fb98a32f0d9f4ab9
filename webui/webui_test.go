package webui

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// TestSignIn: a wrong token is refused without a session; the read token
// gets a session cookie with the safe flags (Secure behind a TLS proxy);
// pages without a session send the browser to the sign-in page; signing
// out ends the session.
func TestSignIn(t *testing.T) {
	v := newVault(t)
	v.commit(edit{set: map[string]string{"a.md": "# A\n"}})
	e := newEnv(t, v, nil)

	c := e.client()
	if code, _, h := e.get(c, "/ui/"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login?next=") {
		t.Fatalf("without a session: %d %q, want a redirect to sign in", code, h.Get("Location"))
	}
	for _, bad := range []string{"", "wrong", readToken + "x", strings.ToUpper(readToken)} {
		resp := e.login(c, bad)
		if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
			t.Errorf("token %q: %s with cookies %v, want 401 and none", bad, resp.Status, resp.Cookies())
		}
	}
	if code, _, _ := e.get(c, "/ui/"); code != http.StatusSeeOther {
		t.Fatalf("a refused sign-in opened a session: %d", code)
	}

	resp := e.login(c, readToken)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("read token: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	ck := resp.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/ui/" || ck[0].Secure || len(ck[0].Value) < 40 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, not Secure over plain HTTP, a long random id", ck)
	}
	if strings.Contains(ck[0].Value, readToken) {
		t.Fatal("the session cookie carries the token")
	}
	code, body, _ := e.get(c, "/ui/")
	if code != http.StatusOK || !strings.Contains(body, testFolder.Folder) || !strings.Contains(body, "read only") {
		t.Fatalf("folders page: %d\n%s", code, body)
	}

	// Behind a TLS-terminating proxy the cookie is Secure.
	req, _ := http.NewRequest("POST", e.srv.URL+"/ui/login", strings.NewReader(url.Values{"token": {readToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	tlsResp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tlsResp.Body.Close()
	if ck := tlsResp.Cookies(); len(ck) != 1 || !ck[0].Secure {
		t.Fatalf("behind https: cookie %+v, want Secure", ck)
	}

	// A foreign next= is not followed.
	resp2, err := e.client().PostForm(e.srv.URL+"/ui/login", url.Values{"token": {readToken}, "next": {"//evil.example/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if loc := resp2.Header.Get("Location"); loc != "/ui/" {
		t.Errorf("next=//evil.example: redirected to %q", loc)
	}

	// Sign out needs the CSRF token, then the session is gone.
	if code, _ := e.post(c, "/ui/logout", url.Values{}, nil); code != http.StatusForbidden {
		t.Fatalf("sign out without CSRF: %d, want 403", code)
	}
	if code, _ := e.post(c, "/ui/logout", url.Values{"csrf": {csrfOf(t, body)}}, nil); code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", code)
	}
	// The old cookie value is dead even if a browser kept it.
	c2 := e.client()
	u, _ := url.Parse(e.srv.URL + "/ui/")
	c2.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: ck[0].Value, Path: "/ui/"}})
	if code, _, _ := e.get(c2, "/ui/"); code != http.StatusSeeOther {
		t.Fatalf("a signed-out session still works: %d", code)
	}
}

// TestRestoreNeedsWriteTokenAndCSRF: a read session sees no restore
// button and gets 403 for the preview and the POST; a write session needs
// the CSRF token and the same origin; only then does the restore run.
func TestRestoreNeedsWriteTokenAndCSRF(t *testing.T) {
	v := newVault(t)
	seq := v.commit(edit{set: map[string]string{"a.md": "# A\n"}})
	e := newEnv(t, v, nil)
	file := fmt.Sprintf("%ss/%d/file?path=a.md", folderURL(), seq)
	restoreURL := folderURL() + "restore"

	r := e.signedIn(readToken)
	_, page, _ := e.get(r, file)
	if strings.Contains(page, "Restore") {
		t.Error("a read session's file page offers a restore")
	}
	if code, _, _ := e.get(r, fmt.Sprintf("%s?seq=%d&path=a.md", restoreURL, seq)); code != http.StatusForbidden {
		t.Errorf("read session, preview: %d, want 403", code)
	}
	form := url.Values{"csrf": {csrfOf(t, page)}, "seq": {fmt.Sprint(seq)}, "path": {"a.md"}}
	if code, _ := e.post(r, restoreURL, form, nil); code != http.StatusForbidden {
		t.Errorf("read session, restore with its CSRF token: %d, want 403", code)
	}
	if len(e.restores) != 0 {
		t.Fatalf("a read session reached Restore: %+v", e.restores)
	}

	w := e.signedIn(writeToken)
	_, page, _ = e.get(w, file)
	if !strings.Contains(page, "Restore this version") {
		t.Fatal("a write session's file page has no restore link")
	}
	code, preview, _ := e.get(w, fmt.Sprintf("%s?seq=%d&path=a.md", restoreURL, seq))
	if code != 200 || !strings.Contains(preview, "Restore now") || len(e.restores) != 1 || !e.restores[0].DryRun {
		t.Fatalf("preview: %d %+v\n%s", code, e.restores, preview)
	}
	form = url.Values{"seq": {fmt.Sprint(seq)}, "path": {"a.md"}}
	if code, _ := e.post(w, restoreURL, form, nil); code != http.StatusForbidden {
		t.Errorf("restore without CSRF: %d, want 403", code)
	}
	form.Set("csrf", csrfOf(t, page)+"x")
	if code, _ := e.post(w, restoreURL, form, nil); code != http.StatusForbidden {
		t.Errorf("restore with a wrong CSRF token: %d, want 403", code)
	}
	form.Set("csrf", csrfOf(t, preview))
	if code, _ := e.post(w, restoreURL, form, map[string]string{"Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Errorf("restore from another origin: %d, want 403", code)
	}
	if len(e.restores) != 1 {
		t.Fatalf("a refused POST reached Restore: %+v", e.restores)
	}
	code, done := e.post(w, restoreURL, form, map[string]string{"Origin": e.srv.URL})
	if code != 200 || len(e.restores) != 2 || e.restores[1].DryRun || e.restores[1].Seq != seq || fmt.Sprint(e.restores[1].Paths) != "[a.md]" {
		t.Fatalf("restore: %d %+v\n%s", code, e.restores, done)
	}

	// A whole snapshot: the snapshot page's link, a preview and a POST
	// without paths.
	_, snapPage, _ := e.get(w, fmt.Sprintf("%ss/%d/", folderURL(), seq))
	if !strings.Contains(snapPage, fmt.Sprintf(`href="%s?seq=%d">Restore this snapshot`, restoreURL, seq)) {
		t.Fatal("the snapshot page has no restore link")
	}
	code, preview, _ = e.get(w, fmt.Sprintf("%s?seq=%d", restoreURL, seq))
	if code != 200 || !strings.Contains(preview, "Every file of") || len(e.restores[2].Paths) != 0 || !e.restores[2].DryRun {
		t.Fatalf("whole-snapshot preview: %d %+v", code, e.restores)
	}
	form = url.Values{"csrf": {csrfOf(t, preview)}, "seq": {fmt.Sprint(seq)}, "path": {""}}
	if code, _ := e.post(w, restoreURL, form, nil); code != 200 || len(e.restores) != 4 || len(e.restores[3].Paths) != 0 || e.restores[3].DryRun {
		t.Fatalf("whole-snapshot restore: %d %+v", code, e.restores)
	}
}

// TestHostileContent: markdown and file names written by someone else
// cannot put script, event handlers or javascript: links into a page.
func TestHostileContent(t *testing.T) {
	v := newVault(t)
	evilName := `<img src=x onerror=alert(1)>"&'.md`
	note := "# Hi <script>alert(1)</script>\n\n" +
		"[click](javascript:alert(2)) [ok](https://example.com/)\n\n" +
		"<img src=x onerror=alert(3)>\n\n<iframe src=\"https://evil.example\"></iframe>\n\n" +
		"[ref][r]\n\n[r]: JaVaScRiPt:alert(4)\n\n<a href=\"javascript:alert(5)\">raw</a>\n"
	seq := v.commit(edit{users: []string{"<b>u</b>"}, set: map[string]string{"note.md": note, evilName: "x", "page.html": "<script>alert(6)</script>"}})
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)

	check := func(what, body string) {
		t.Helper()
		if err := unsafeHTML(body); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if strings.Contains(body, "<b>u</b>") {
			t.Errorf("%s: a user id is not escaped", what)
		}
	}
	for _, p := range []string{
		folderURL(),
		fmt.Sprintf("%ss/%d/", folderURL(), seq),
		fmt.Sprintf("%ss/%d/file?path=note.md", folderURL(), seq),
		fmt.Sprintf("%ss/%d/file?path=note.md&view=source", folderURL(), seq),
		fmt.Sprintf("%ss/%d/file?path=%s", folderURL(), seq, url.QueryEscape(evilName)),
		fmt.Sprintf("%ss/%d/file?path=page.html", folderURL(), seq),
		fmt.Sprintf("%shistory?path=%s", folderURL(), url.QueryEscape(evilName)),
	} {
		code, body, h := e.get(c, p)
		if code != 200 {
			t.Fatalf("%s: %d\n%s", p, code, body)
		}
		check(p, body)
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
	}
	_, rendered, _ := e.get(c, fmt.Sprintf("%ss/%d/file?path=note.md", folderURL(), seq))
	if !strings.Contains(rendered, `<a href="https://example.com/">ok</a>`) || !strings.Contains(rendered, "<h1>Hi") {
		t.Errorf("the safe parts of the note are not rendered:\n%s", rendered)
	}
	_, src, _ := e.get(c, fmt.Sprintf("%ss/%d/file?path=note.md&view=source", folderURL(), seq))
	if !strings.Contains(src, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the source view does not show the note's text escaped:\n%s", src)
	}

	// The raw route never serves HTML inline.
	_, _, h := e.get(c, fmt.Sprintf("%ss/%d/raw?path=page.html", folderURL(), seq))
	if h.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("raw HTML served as %q, %q, CSP %q", h.Get("Content-Type"), h.Get("Content-Disposition"), h.Get("Content-Security-Policy"))
	}
}

// unsafeHTML parses a page as a browser would and reports the first thing
// that could run script: a script element other than our own app.js, an
// event handler attribute, a frame, or a URL attribute with a scheme that
// runs code.
func unsafeHTML(page string) error {
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() == io.EOF {
				return nil
			}
			return z.Err()
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "iframe", "object", "embed", "frame", "base":
				return fmt.Errorf("a <%s> element", tok.Data)
			case "script":
				if len(tok.Attr) != 2 || tok.Attr[0].Val != "/ui/static/app.js" {
					return fmt.Errorf("a script element %v", tok.Attr)
				}
			}
			for _, a := range tok.Attr {
				v := strings.ToLower(strings.Join(strings.Fields(a.Val), ""))
				switch {
				case strings.HasPrefix(a.Key, "on"):
					return fmt.Errorf("an event handler %s=%q on <%s>", a.Key, a.Val, tok.Data)
				case (a.Key == "href" || a.Key == "src" || a.Key == "action" || a.Key == "formaction") &&
					(strings.HasPrefix(v, "javascript:") || strings.HasPrefix(v, "vbscript:") || strings.HasPrefix(v, "data:text/html")):
					return fmt.Errorf("%s=%q on <%s>", a.Key, a.Val, tok.Data)
				}
			}
		}
	}
}

func TestRenderMarkdownDropsDangerousURLs(t *testing.T) {
	for _, src := range []string{
		"[x](javascript:alert(1))", "[x](  javascript:alert(1))", "[x](vbscript:msgbox)", "![x](javascript:alert(1))",
		"<javascript:alert(1)>", "[x](data:text/html;base64,PHNjcmlwdD4=)", "<script>alert(1)</script>", "<a href='javascript:x'>y</a>",
	} {
		out, err := renderMarkdown([]byte(src), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := unsafeHTML(string(out)); err != nil {
			t.Errorf("%q rendered as %q: %v", src, out, err)
		}
	}
}

// TestTimelinePages: 120 snapshots in pages of 50, newest first, with
// older and newer links that cover every snapshot once.
func TestTimelinePages(t *testing.T) {
	v := newVault(t)
	for i := 1; i <= 120; i++ {
		v.commit(edit{users: []string{"u-ada"}, set: map[string]string{"n.md": fmt.Sprint(i)}})
	}
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)
	seen := map[int]bool{}
	next := folderURL()
	pages := 0
	for next != "" {
		code, body, _ := e.get(c, next)
		if code != 200 {
			t.Fatalf("%s: %d", next, code)
		}
		pages++
		if pages == 1 && (!strings.Contains(body, `id="live"`) || !strings.Contains(body, "by Ada")) {
			t.Error("the first page has no live notice box or does not name the user")
		}
		n := 0
		prev := 1 << 30
		for _, line := range strings.Split(body, "\n") {
			var seq int
			if _, err := fmt.Sscanf(line, `<li id="s%d">`, &seq); err == nil {
				if seq >= prev || seen[seq] {
					t.Fatalf("%s: snapshot %d out of order or repeated", next, seq)
				}
				prev, seen[seq] = seq, true
				n++
			}
		}
		if n > pageSize || n == 0 {
			t.Fatalf("%s: %d rows", next, n)
		}
		next = ""
		if i := strings.Index(body, `rel="next"`); i >= 0 {
			j := strings.LastIndex(body[:i], `href="`)
			next = strings.ReplaceAll(body[j+6:i-2], "&amp;", "&")
		}
	}
	if pages != 3 || len(seen) != 120 {
		t.Fatalf("%d pages showed %d snapshots, want 3 and 120", pages, len(seen))
	}
	_, body, _ := e.get(c, folderURL()+"?before=71")
	if !strings.Contains(body, `<li id="s70">`) || strings.Contains(body, `<li id="s71">`) || !strings.Contains(body, `rel="prev"`) {
		t.Errorf("?before=71 does not start at 70 with a newer link")
	}
}

// Snapshots written by a restore or a push say so in the timeline and on
// their own page.
func TestTimelineShowsOrigin(t *testing.T) {
	v := newVault(t)
	v.commit(edit{set: map[string]string{"n.md": "one"}})
	v.commit(edit{set: map[string]string{"n.md": "two"}})
	v.commit(edit{set: map[string]string{"n.md": "one"}, origin: store.Origin{Restored: 1}})
	pack, err := v.st.PutBlob([]byte("pack"), store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	v.commit(edit{set: map[string]string{"n.md": "three"}, origin: store.Origin{Pushed: &store.Pushed{Commit: [20]byte{0xab, 0xcd, 0xef}, Pack: pack}}})
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)
	restored := `restore of <a href="` + folderURL() + `s/1/">snapshot 1</a>`
	_, body, _ := e.get(c, folderURL())
	for _, want := range []string{restored, "git push of <code>abcdef000000</code>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the timeline lacks %q", want)
		}
	}
	if _, body, _ := e.get(c, folderURL()+"s/3/"); !strings.Contains(body, restored) {
		t.Errorf("snapshot 3's page does not say it restored snapshot 1:\n%s", body)
	}
}

// TestFileHistoryFollowsRenames: a note edited, renamed, edited and
// deleted has every version listed under the path it had, and the diff
// between two of them shows the change with word-level marks.
func TestFileHistoryFollowsRenames(t *testing.T) {
	v := newVault(t)
	s1 := v.commit(edit{set: map[string]string{"a.md": "one\ntwo\nthree\n", "other.md": "x"}})
	s2 := v.commit(edit{set: map[string]string{"a.md": "one\ntwo changed\nthree\n"}})
	v.commit(edit{set: map[string]string{"other.md": "y"}})
	s4 := v.commit(edit{renames: map[string]string{"a.md": "dir/b.md"}})
	s5 := v.commit(edit{set: map[string]string{"dir/b.md": "one\ntwo changed\nthree\nfour\n"}})
	s6 := v.commit(edit{del: []string{"dir/b.md"}})
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)

	code, body, _ := e.get(c, folderURL()+"history?path=dir%2Fb.md")
	if code != 200 {
		t.Fatalf("history: %d\n%s", code, body)
	}
	var got []string
	for _, line := range strings.Split(body, "\n") {
		if i := strings.Index(line, `name="b" value="`); i >= 0 {
			rest := line[i+len(`name="b" value="`):]
			got = append(got, rest[:strings.IndexByte(rest, '"')])
		}
	}
	want := []string{fmt.Sprintf("%d:dir/b.md", s5), fmt.Sprintf("%d:dir/b.md", s4), fmt.Sprintf("%d:a.md", s2), fmt.Sprintf("%d:a.md", s1)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("versions %v, want %v", got, want)
	}
	// The deletion is listed, with a link to the last version.
	if last := fmt.Sprintf(`s/%d/file?path=dir%%2Fb.md">last version</a>`, s5); !strings.Contains(body, "deleted <code>dir/b.md</code>") || !strings.Contains(body, last) {
		t.Errorf("the deletion at %d is not listed with its last version (%s):\n%s", s6, last, body)
	}

	// The compare form starts with the newest content and the one before
	// it, not the deletion's last content twice.
	for _, w := range []string{
		fmt.Sprintf(`name="a" value="%d:dir/b.md" aria-label="compare from snapshot %d" checked`, s4, s4),
		fmt.Sprintf(`name="b" value="%d:dir/b.md" aria-label="compare to snapshot %d" checked`, s5, s5),
	} {
		if strings.Count(body, " checked") != 2 || !strings.Contains(body, w) {
			t.Errorf("history form does not start with %s", w)
		}
	}

	code, body, _ = e.get(c, fmt.Sprintf("%sdiff?a=%d:a.md&b=%d:dir%%2Fb.md", folderURL(), s1, s5))
	if code != 200 {
		t.Fatalf("diff: %d\n%s", code, body)
	}
	for _, w := range []string{"<mark>", "@@ -1,3 &#43;1,4 @@", "four", "+2", "−1"} {
		if !strings.Contains(body, w) {
			t.Errorf("diff page lacks %q:\n%s", w, body)
		}
	}
	code, body, _ = e.get(c, fmt.Sprintf("%sdiff?a=%d:a.md&b=%d:dir%%2Fb.md&view=split", folderURL(), s1, s5))
	if code != 200 || !strings.Contains(body, `class="diff split"`) {
		t.Fatalf("side by side: %d", code)
	}
}

func TestDiff(t *testing.T) {
	a := "l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\nl11\nl12\n"
	b := "l1\nl2 new words\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\nl11\nl12\nl13\n"
	res := Diff(a, b)
	if res.Added != 2 || res.Deleted != 1 || len(res.Hunks) != 2 {
		t.Fatalf("+%d -%d in %d hunks, want +2 -1 in 2", res.Added, res.Deleted, len(res.Hunks))
	}
	if h := res.Hunks[0].Header(); h != "@@ -1,5 +1,5 @@" {
		t.Errorf("first hunk %s", h)
	}
	if h := res.Hunks[1].Header(); h != "@@ -10,3 +10,4 @@" {
		t.Errorf("second hunk %s", h)
	}
	var marked []string
	for _, l := range res.Hunks[0].Lines {
		for _, s := range l.Segs {
			if s.Changed {
				marked = append(marked, string(l.Op)+s.Text)
			}
		}
	}
	if fmt.Sprint(marked) != "[+ new words]" {
		t.Errorf("word marks %q", marked)
	}
	// A new file and a file emptied.
	if res := Diff("", "x\ny\n"); len(res.Hunks) != 1 || res.Hunks[0].Header() != "@@ -0,0 +1,2 @@" {
		t.Errorf("added file: %+v", res.Hunks)
	}
	if res := Diff("x\n", ""); len(res.Hunks) != 1 || res.Hunks[0].Header() != "@@ -1,1 +0,0 @@" {
		t.Errorf("emptied file: %+v", res.Hunks)
	}
	// A last line without a newline still diffs.
	if res := Diff("a\nb", "a\nc"); res.Added != 1 || res.Deleted != 1 {
		t.Errorf("no final newline: %+v", res)
	}
}

// TestDownloads: an image is served inline with its type, any file as an
// attachment on ?download=1, the snapshot as a zip of its files.
func TestDownloads(t *testing.T) {
	v := newVault(t)
	png := "\x89PNG\r\n\x1a\n" + strings.Repeat("p", 50)
	seq := v.commit(edit{set: map[string]string{"img/p.png": png, "notes/a.md": "# A\n", "x y\".md": "q"}})
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)
	base := fmt.Sprintf("%ss/%d/", folderURL(), seq)

	code, body, h := e.get(c, base+"raw?path=img%2Fp.png")
	if code != 200 || body != png || h.Get("Content-Type") != "image/png" || h.Get("Content-Disposition") != "" {
		t.Errorf("image: %d %q %q", code, h.Get("Content-Type"), h.Get("Content-Disposition"))
	}
	code, body, h = e.get(c, base+"raw?path=x+y%22.md&download=1")
	if code != 200 || body != "q" || h.Get("Content-Disposition") != `attachment; filename="x y\".md"` {
		t.Errorf("download: %d %q", code, h.Get("Content-Disposition"))
	}
	code, body, h = e.get(c, base+"zip")
	if code != 200 || h.Get("Content-Type") != "application/zip" {
		t.Fatalf("zip: %d %q", code, h.Get("Content-Type"))
	}
	zr, err := zip.NewReader(bytes.NewReader([]byte(body)), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		got[f.Name] = string(b)
	}
	if got["img/p.png"] != png || got["notes/a.md"] != "# A\n" || len(got) != 3 {
		t.Errorf("zip holds %v", got)
	}
	if code, _, _ := e.get(c, base+"raw?path=missing.md"); code != 404 {
		t.Errorf("missing file: %d", code)
	}
	if code, _, _ := e.get(c, "/ui/f/not-a-uuid/x/"); code != 404 {
		t.Errorf("bad folder: %d", code)
	}
}

// TestEvents: the timeline's event stream announces a snapshot added
// after the page was made.
func TestEvents(t *testing.T) {
	v := newVault(t)
	seq := v.commit(edit{set: map[string]string{"a.md": "1"}})
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)
	resp, err := c.Get(fmt.Sprintf("%s%sevents?after=%d", e.srv.URL, folderURL(), seq))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	next := v.commit(edit{set: map[string]string{"a.md": "2"}})
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			if want := fmt.Sprintf(`data: {"latest":%d}`, next); sc.Text() != want {
				t.Fatalf("event %q, want %q", sc.Text(), want)
			}
			return
		}
	}
	t.Fatalf("the stream ended without an event: %v", sc.Err())
}

// TestTimelineFilter: by author (name or id), by path, by day, paged with
// the filter kept.
func TestTimelineFilter(t *testing.T) {
	v := newVault(t)
	for i := 1; i <= 120; i++ {
		user, p := "u-ada", "notes/n.md"
		if i%2 == 0 {
			user, p = "u-bob", "other.md"
		}
		v.commit(edit{users: []string{user}, set: map[string]string{p: fmt.Sprint(i)}})
	}
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)
	rows := func(body string) []int {
		var out []int
		for _, line := range strings.Split(body, "\n") {
			var seq int
			if _, err := fmt.Sscanf(line, `<li id="s%d">`, &seq); err == nil {
				out = append(out, seq)
			}
		}
		return out
	}
	older := func(body string) string {
		i := strings.Index(body, `rel="next"`)
		if i < 0 {
			return ""
		}
		j := strings.LastIndex(body[:i], `href="`)
		return strings.ReplaceAll(body[j+6:i-2], "&amp;", "&")
	}

	_, body, _ := e.get(c, folderURL()+"?user=ADA")
	got := rows(body)
	if len(got) != 50 || got[0] != 119 || got[49] != 21 || strings.Contains(body, `id="live"`) {
		t.Fatalf("user=ADA, first page: %v", got)
	}
	next := older(body)
	if !strings.Contains(next, "user=ADA") || !strings.Contains(next, "before=21") {
		t.Fatalf("older link %q does not keep the filter", next)
	}
	_, body, _ = e.get(c, next)
	if got := rows(body); len(got) != 10 || got[0] != 19 || got[9] != 1 || older(body) != "" {
		t.Fatalf("user=ADA, second page: %v, older %q", got, older(body))
	}
	_, body, _ = e.get(c, folderURL()+"?user=u-bob&path=OTHER")
	if got := rows(body); len(got) != 50 || got[0] != 120 {
		t.Fatalf("user=u-bob&path=OTHER: %v", got)
	}
	_, body, _ = e.get(c, folderURL()+"?path=nothing-like-this")
	if len(rows(body)) != 0 || !strings.Contains(body, "No snapshot matches") {
		t.Fatal("a filter that matches nothing")
	}
	// The vault's snapshots are one minute apart from t0 (seq 1 at t0).
	_, body, _ = e.get(c, folderURL()+"?from=2026-03-01&to=2026-03-01")
	if got := rows(body); len(got) != 50 || got[0] != 120 {
		t.Fatalf("the day of every snapshot: %v", got)
	}
	_, body, _ = e.get(c, folderURL()+"?to=2026-02-28")
	if len(rows(body)) != 0 {
		t.Fatal("a day before every snapshot matches some")
	}
	if code, _, _ := e.get(c, folderURL()+"?from=yesterday"); code != 400 {
		t.Errorf("from=yesterday: %d, want 400", code)
	}
}

// TestNoteLinks: a note's relative links and images, and Obsidian's
// [[links]] and ![[embeds]], point at the files of the same snapshot; the
// images load through the raw route.
func TestNoteLinks(t *testing.T) {
	v := newVault(t)
	png := "\x89PNG\r\n\x1a\n" + strings.Repeat("p", 20)
	seq := v.commit(edit{set: map[string]string{
		"notes/a.md":      "![pic](../img/p.png) ![[p.png]] [[b]] [[b|the B note]] [md](b.md) [web](https://example.com/x) [[missing]]\n",
		"notes/b.md":      "# B\n",
		"img/p.png":       png,
		"other/b copy.md": "x",
	}})
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)
	_, body, _ := e.get(c, fmt.Sprintf("%ss/%d/file?path=notes%%2Fa.md", folderURL(), seq))
	snap := fmt.Sprintf("%ss/%d/", folderURL(), seq)
	for _, w := range []string{
		`<img src="` + snap + `raw?path=img%2Fp.png" alt="pic"`,
		`<img src="` + snap + `raw?path=img%2Fp.png" alt="p.png"`,
		`<a href="` + snap + `file?path=notes%2Fb.md">b</a>`,
		`<a href="` + snap + `file?path=notes%2Fb.md">the B note</a>`,
		`<a href="` + snap + `file?path=notes%2Fb.md">md</a>`,
		`<a href="https://example.com/x">web</a>`,
		`<a href="missing">missing</a>`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("the note lacks %s", w)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// TestCanvas: a canvas is drawn as boxes and arrows and listed, with its
// text escaped.
func TestCanvas(t *testing.T) {
	v := newVault(t)
	canvas := `{"nodes":[
		{"id":"g","type":"group","x":-50,"y":-50,"width":600,"height":300,"label":"Group"},
		{"id":"a","type":"text","x":0,"y":0,"width":200,"height":60,"text":"<script>alert(1)</script> first card\nsecond line"},
		{"id":"b","type":"file","x":300,"y":100,"width":200,"height":60,"file":"notes/b.md"}],
		"edges":[{"id":"e","fromNode":"a","fromSide":"right","toNode":"b","toSide":"left","label":"next"},{"id":"x","fromNode":"a","toNode":"gone"}]}`
	seq := v.commit(edit{set: map[string]string{"board.canvas": canvas, "broken.canvas": "{"}})
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)
	_, body, _ := e.get(c, fmt.Sprintf("%ss/%d/file?path=board.canvas", folderURL(), seq))
	if err := unsafeHTML(body); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`<svg class="canvas" viewBox="0 0 640.0 340.0"`,
		`<g class="group"><rect x="20.0" y="20.0" width="600.0" height="300.0"`,
		`<rect x="70.0" y="70.0" width="200.0" height="60.0"`,
		`<line x1="270.0" y1="100.0" x2="370.0" y2="200.0" marker-end="url(#arrow)"/>`,
		`&lt;script&gt;alert(1)&lt;/scr…`, // the caption cut to the card's width
		`a → b: next`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("canvas page lacks %s", w)
		}
	}
	if n := strings.Count(body, "<line "); n != 1 {
		t.Errorf("%d arrows drawn, want 1 (one edge ends at a missing card)", n)
	}
	if t.Failed() {
		t.Log(body)
	}
	_, body, _ = e.get(c, fmt.Sprintf("%ss/%d/file?path=broken.canvas", folderURL(), seq))
	if !strings.Contains(body, "not valid JSON") || strings.Contains(body, "<svg") {
		t.Error("a broken canvas is not shown as its source")
	}
}

// TestSessionExpires: a session ends SessionTTL after sign-in.
func TestSessionExpires(t *testing.T) {
	v := newVault(t)
	v.commit(edit{set: map[string]string{"a.md": "a"}})
	var mu sync.Mutex
	now := t0
	e := newEnv(t, v, func(c *Config) {
		c.SessionTTL = time.Hour
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	c := e.signedIn(readToken)
	if code, _, _ := e.get(c, "/ui/"); code != 200 {
		t.Fatalf("fresh session: %d", code)
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	if code, _, h := e.get(c, "/ui/"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login") {
		t.Fatalf("expired session: %d %q, want a redirect to sign in", code, h.Get("Location"))
	}
}

// TestEventsWithoutSession: an event stream whose session ended gets 204,
// which stops the browser's EventSource from reconnecting.
func TestEventsWithoutSession(t *testing.T) {
	v := newVault(t)
	v.commit(edit{set: map[string]string{"a.md": "a"}})
	e := newEnv(t, v, nil)
	req, _ := http.NewRequest("GET", e.srv.URL+folderURL()+"events?after=1", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("events without a session: %s, want 204", resp.Status)
	}
}

// TestCachedListsSeeNewSnapshots: the pages that read a folder's whole
// list (file history, filters, old timeline pages) show snapshots added
// after it was first read.
func TestCachedListsSeeNewSnapshots(t *testing.T) {
	v := newVault(t)
	for i := 1; i <= 250; i++ {
		v.commit(edit{set: map[string]string{"n.md": fmt.Sprint(i)}})
	}
	e := newEnv(t, v, nil)
	c := e.signedIn(readToken)
	_, body, _ := e.get(c, folderURL()+"history?path=n.md")
	if n := strings.Count(body, `name="b"`); n != 250 {
		t.Fatalf("%d versions, want 250", n)
	}
	if _, body, _ = e.get(c, folderURL()+"?before=3"); !strings.Contains(body, `<li id="s2">`) || !strings.Contains(body, `<li id="s1">`) {
		t.Fatal("an old timeline page lacks its snapshots")
	}
	s := v.commit(edit{set: map[string]string{"n.md": "new", "m.md": "m"}})
	if _, body, _ = e.get(c, folderURL()+"history?path=n.md"); strings.Count(body, `name="b"`) != 251 || !strings.Contains(body, fmt.Sprintf(`value="%d:n.md"`, s)) {
		t.Fatal("the file history does not show the new snapshot")
	}
	if _, body, _ = e.get(c, folderURL()+"?path=m.md"); !strings.Contains(body, fmt.Sprintf(`<li id="s%d">`, s)) {
		t.Fatal("a filter does not find the new snapshot")
	}
}

// Wrong tokens from one address are counted: past maxFailures within a
// minute every sign-in from it is refused (even the right token) until the
// minute has passed.
func TestSignInThrottled(t *testing.T) {
	v := newVault(t)
	v.commit(edit{set: map[string]string{"a.md": "# A\n"}})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	e := newEnv(t, v, func(c *Config) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	c := e.client()
	for i := range maxFailures {
		if resp := e.login(c, fmt.Sprintf("guess-%d", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %s, want 401", i, resp.Status)
		}
	}
	resp := e.login(c, readToken)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || len(resp.Cookies()) != 0 {
		t.Fatalf("sign-in after %d wrong tokens: %s (Retry-After %q, cookies %v), want 429 and no session", maxFailures, resp.Status, resp.Header.Get("Retry-After"), resp.Cookies())
	}
	mu.Lock()
	now = now.Add(failureWindow + time.Second)
	mu.Unlock()
	if resp := e.login(c, readToken); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in once the minute has passed: %s", resp.Status)
	}
}
