package webui

import (
	"context"
	"encoding/hex"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/export"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// pageSize is how many snapshots one timeline page shows.
const pageSize = 50

func queryEscape(s string) string { return url.QueryEscape(s) }

// people maps Relay user ids to the names the history config gives them.
func (u *ui) people(ctx context.Context) map[string]string {
	cfg, err := u.cfg.Source.HistoryConfig(ctx)
	if err != nil {
		u.log.Warn("reading the history config for user names", "err", err)
		return nil
	}
	out := make(map[string]string, len(cfg.Authors))
	for id, who := range cfg.Authors {
		if who.Name != "" {
			out[id] = who.Name
		}
	}
	return out
}

func names(people map[string]string, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if n, ok := people[id]; ok {
			out[i] = n
		} else {
			out[i] = id
		}
	}
	return out
}

type folderRow struct {
	Ref    *folderRef
	Folder source.Folder
}

func (u *ui) foldersPage(w http.ResponseWriter, r *http.Request, s *session) {
	fs, err := u.cfg.Source.Folders(r.Context())
	if err != nil {
		u.failErr(w, r, s, "Listing the folders", err)
		return
	}
	rows := make([]folderRow, len(fs))
	for i, f := range fs {
		rows[i] = folderRow{Ref: &folderRef{ID: store.FolderID{Relay: f.Relay, Folder: f.Folder}}, Folder: f}
	}
	u.render(w, r, http.StatusOK, "folders", &page{Title: "Folders", Session: s, Data: rows})
}

// snapRow is one snapshot as the timeline and the snapshot page show it.
type snapRow struct {
	Seq      uint64
	Time     time.Time
	Users    []string
	Changes  []store.Change
	More     int // changes not listed
	Summary  string
	NumFiles int
	Restored uint64 // a restore of this snapshot wrote it
	Pushed   string // a git push of this commit (short id) wrote it
}

// maxListedChanges is how many changed paths a timeline row lists.
const maxListedChanges = 8

func newSnapRow(info store.SnapshotInfo, people map[string]string, limit int) snapRow {
	row := snapRow{Seq: info.Seq, Time: info.Time, Users: names(people, info.Users), NumFiles: info.NumFiles, Summary: summary(info.Changes)}
	row.Changes = info.Changes
	row.Restored = info.Origin.Restored
	if p := info.Origin.Pushed; p != nil {
		row.Pushed = hex.EncodeToString(p.Commit[:])[:12]
	}
	if limit > 0 && len(row.Changes) > limit {
		row.More = len(row.Changes) - limit
		row.Changes = row.Changes[:limit]
	}
	return row
}

// summary counts changes by kind: "2 added, 1 deleted".
func summary(cs []store.Change) string {
	var n [5]int
	for _, c := range cs {
		if int(c.Kind) < len(n) {
			n[c.Kind]++
		}
	}
	var parts []string
	for _, k := range []store.ChangeKind{store.ChangeAdded, store.ChangeModified, store.ChangeRenamed, store.ChangeDeleted} {
		if n[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
		}
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

type timelineData struct {
	Latest      uint64
	Rows        []snapRow
	Older       string // URL of the next page back, "" on the last
	Newer       string // URL of the page nearer now, "" on the first
	EventsURL   string
	FirstPage   bool
	LatestShown uint64
	Filter      timelineFilter
}

// timelineFilter narrows the timeline: snapshots by a user (id or name,
// any part), touching a path (any part), from and to a day (UTC).
type timelineFilter struct {
	User, Path string
	From, To   string // YYYY-MM-DD as the form sends them
	from, to   time.Time
}

func (tf timelineFilter) Active() bool {
	return tf.User != "" || tf.Path != "" || tf.From != "" || tf.To != ""
}

// query is the filter as URL parameters, with before when non-zero.
func (tf timelineFilter) query(before uint64) string {
	q := url.Values{}
	for k, v := range map[string]string{"user": tf.User, "path": tf.Path, "from": tf.From, "to": tf.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if before != 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

func parseFilter(q url.Values) (timelineFilter, error) {
	tf := timelineFilter{User: strings.TrimSpace(q.Get("user")), Path: strings.TrimSpace(q.Get("path")), From: q.Get("from"), To: q.Get("to")}
	var err error
	if tf.From != "" {
		if tf.from, err = time.Parse(time.DateOnly, tf.From); err != nil {
			return tf, fmt.Errorf("from must be a day (YYYY-MM-DD), not %q", tf.From)
		}
	}
	if tf.To != "" {
		if tf.to, err = time.Parse(time.DateOnly, tf.To); err != nil {
			return tf, fmt.Errorf("to must be a day (YYYY-MM-DD), not %q", tf.To)
		}
		tf.to = tf.to.AddDate(0, 0, 1) // the whole day
	}
	return tf, nil
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func (tf timelineFilter) match(info *store.SnapshotInfo, people map[string]string) bool {
	if !tf.from.IsZero() && info.Time.Before(tf.from) || !tf.to.IsZero() && !info.Time.Before(tf.to) {
		return false
	}
	if tf.User != "" && !slices.ContainsFunc(info.Users, func(id string) bool {
		return containsFold(id, tf.User) || containsFold(people[id], tf.User)
	}) {
		return false
	}
	if tf.Path != "" && !slices.ContainsFunc(info.Changes, func(c store.Change) bool {
		return containsFold(c.Path, tf.Path) || containsFold(c.OldPath, tf.Path)
	}) {
		return false
	}
	return true
}

// timelinePage lists a folder's snapshots newest first, pageSize at a
// time: ?before=SEQ shows those older than SEQ. The first pages read only
// their own snapshots; older pages and filters read the folder's whole
// list of snapshots (never a tree) once, then only what is new (infoCache).
func (u *ui) timelinePage(w http.ResponseWriter, r *http.Request, s *session) {
	f, ok := u.folderOf(w, r, s)
	if !ok {
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	tf, err := parseFilter(q)
	if err != nil {
		u.fail(w, r, s, http.StatusBadRequest, "The filter is not valid: "+err.Error()+".", nil)
		return
	}
	fo, err := u.cfg.Source.Folder(ctx, f.ID)
	if err != nil {
		u.failErr(w, r, s, "Reading folder "+f.ID.String(), err)
		return
	}
	before := fo.LatestSeq + 1
	if v := q.Get("before"); v != "" {
		n, ok := u.seqOf(w, r, s, "before", v)
		if !ok {
			return
		}
		before = min(n, before)
	}
	// The first pages read just their snapshots; older pages and filters
	// go through the cache of the whole list.
	var infos []store.SnapshotInfo
	if recent := fo.LatestSeq+1 <= 4*pageSize || before > fo.LatestSeq+1-4*pageSize; recent && !tf.Active() {
		var after uint64
		if before > pageSize+1 {
			after = before - 1 - pageSize
		}
		infos, err = u.cfg.Source.Snapshots(ctx, f.ID, after)
	} else {
		infos, err = u.infos.all(ctx, u.cfg.Source, f.ID)
	}
	if err != nil {
		u.failErr(w, r, s, "Listing the snapshots of "+f.ID.String(), err)
		return
	}
	people := u.people(ctx)
	d := timelineData{Latest: fo.LatestSeq, Filter: tf, FirstPage: before > fo.LatestSeq,
		EventsURL: f.Base() + "events?after=" + strconv.FormatUint(fo.LatestSeq, 10)}
	more := false
	for i := len(infos) - 1; i >= 0; i-- {
		if infos[i].Seq >= before || !tf.match(&infos[i], people) {
			continue
		}
		if len(d.Rows) == pageSize {
			more = true
			break
		}
		d.Rows = append(d.Rows, newSnapRow(infos[i], people, maxListedChanges))
	}
	if n := len(d.Rows); n > 0 {
		if oldest := d.Rows[n-1].Seq; more || (!tf.Active() && oldest > 1) {
			d.Older = f.Base() + tf.query(oldest)
		}
		d.LatestShown = d.Rows[0].Seq
	}
	if !d.FirstPage {
		if nb := before + pageSize; nb <= fo.LatestSeq && !tf.Active() {
			d.Newer = f.Base() + tf.query(nb)
		} else {
			d.Newer = f.Base() + tf.query(0) // a filtered list restarts from the newest
		}
	}
	title := "Timeline"
	if !d.FirstPage {
		title = fmt.Sprintf("Timeline before snapshot %d", before)
	}
	u.render(w, r, http.StatusOK, "timeline", &page{Title: title, Session: s, Folder: f, Data: d})
}

type snapshotData struct {
	Row   snapRow
	Files []store.File
	Prev  uint64 // 0 = none
	Next  uint64 // 0 = none
}

// loadSnapshot reads snapshot seq; ok false has answered.
func (u *ui) loadSnapshot(w http.ResponseWriter, r *http.Request, s *session) (*folderRef, *store.Snapshot, bool) {
	f, ok := u.folderOf(w, r, s)
	if !ok {
		return nil, nil, false
	}
	seq, ok := u.seqOf(w, r, s, "snapshot", r.PathValue("seq"))
	if !ok {
		return nil, nil, false
	}
	snap, err := u.cfg.Source.Snapshot(r.Context(), f.ID, seq)
	if err != nil {
		u.failErr(w, r, s, fmt.Sprintf("Reading snapshot %d of %s", seq, f.ID), err)
		return nil, nil, false
	}
	return f, snap, true
}

func (u *ui) snapshotPage(w http.ResponseWriter, r *http.Request, s *session) {
	f, snap, ok := u.loadSnapshot(w, r, s)
	if !ok {
		return
	}
	ctx := r.Context()
	fo, err := u.cfg.Source.Folder(ctx, f.ID)
	if err != nil {
		u.failErr(w, r, s, "Reading folder "+f.ID.String(), err)
		return
	}
	info := store.SnapshotInfo{Seq: snap.Seq, Time: snap.Time, Users: snap.Users, Changes: snap.Changes, Origin: snap.Origin, NumFiles: len(snap.Files)}
	d := snapshotData{Row: newSnapRow(info, u.people(ctx), 0), Files: snap.Files}
	if snap.Seq > 1 {
		d.Prev = snap.Seq - 1
	}
	if snap.Seq < fo.LatestSeq {
		d.Next = snap.Seq + 1
	}
	u.render(w, r, http.StatusOK, "snapshot", &page{Title: fmt.Sprintf("Snapshot %d", snap.Seq), Session: s, Folder: f, Data: d})
}

// findFile returns the file at p in snap's tree (sorted by path).
func findFile(snap *store.Snapshot, p string) (store.File, bool) {
	i := sort.Search(len(snap.Files), func(i int) bool { return snap.Files[i].Path >= p })
	if i < len(snap.Files) && snap.Files[i].Path == p {
		return snap.Files[i], true
	}
	return store.File{}, false
}

// loadFile reads the file ?path= of snapshot seq with its content.
func (u *ui) loadFile(w http.ResponseWriter, r *http.Request, s *session) (*folderRef, *store.Snapshot, store.File, []byte, bool) {
	f, snap, ok := u.loadSnapshot(w, r, s)
	if !ok {
		return nil, nil, store.File{}, nil, false
	}
	p := r.URL.Query().Get("path")
	file, ok := findFile(snap, p)
	if !ok {
		u.fail(w, r, s, http.StatusNotFound, fmt.Sprintf("Snapshot %d has no file %q: it may have been added later, renamed or deleted; its history says when.", snap.Seq, p), nil)
		return nil, nil, store.File{}, nil, false
	}
	data, err := u.cfg.Source.Blob(r.Context(), file.Blob)
	if err != nil {
		u.failErr(w, r, s, "Reading "+p, err)
		return nil, nil, store.File{}, nil, false
	}
	return f, snap, file, data, true
}

type fileData struct {
	Seq      uint64
	Time     time.Time
	File     store.File
	Name     string
	Show     string // markdown | text | image | canvas | binary
	Text     string
	Rendered any // template.HTML of the rendered markdown
	Source   bool
	Canvas   *canvasView
}

// maxShownText is the largest file shown inline as text; bigger ones are
// offered for download.
const maxShownText = 2 << 20

func (u *ui) filePage(w http.ResponseWriter, r *http.Request, s *session) {
	f, snap, file, data, ok := u.loadFile(w, r, s)
	if !ok {
		return
	}
	d := fileData{Seq: snap.Seq, Time: snap.Time, File: file, Name: path.Base(file.Path), Source: r.URL.Query().Get("view") == "source"}
	switch {
	case imageType(file.Path) != "":
		d.Show = "image"
	case !isText(data) || len(data) > maxShownText:
		d.Show = "binary"
	case isMarkdown(file):
		d.Show, d.Text = "markdown", string(data)
		if !d.Source {
			html, err := renderMarkdown(data, &noteLinks{f: f, snap: snap, dir: path.Dir(file.Path)})
			if err != nil {
				u.fail(w, r, s, http.StatusInternalServerError, "Rendering "+file.Path+" failed: "+err.Error(), err)
				return
			}
			d.Rendered = html
		}
	case file.Kind == "canvas" || strings.HasSuffix(strings.ToLower(file.Path), ".canvas"):
		d.Show, d.Text = "canvas", string(data)
		d.Canvas = parseCanvas(data)
	default:
		d.Show, d.Text = "text", string(data)
	}
	u.render(w, r, http.StatusOK, "file", &page{Title: fmt.Sprintf("%s at snapshot %d", file.Path, snap.Seq), Session: s, Folder: f, Data: d})
}

// imageTypes are the images shown inline; by extension, since the store
// keeps no content type.
var imageTypes = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
	".webp": "image/webp", ".avif": "image/avif", ".bmp": "image/bmp", ".svg": "image/svg+xml",
}

func imageType(p string) string { return imageTypes[strings.ToLower(path.Ext(p))] }

func isMarkdown(f store.File) bool {
	return f.Kind == "markdown" || strings.EqualFold(path.Ext(f.Path), ".md")
}

// raw answers a file's bytes: images inline with their type (for <img>),
// everything else, and any file with ?download=1, as an attachment. The
// CSP sandbox keeps an SVG opened on its own from running script.
func (u *ui) raw(w http.ResponseWriter, r *http.Request, s *session) {
	_, snap, file, data, ok := u.loadFile(w, r, s)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox")
	h.Set("Cache-Control", "private, max-age=86400") // a snapshot never changes
	ct := imageType(file.Path)
	if ct == "" || r.URL.Query().Get("download") != "" {
		ct = "application/octet-stream"
		h.Set("Content-Disposition", attachment(path.Base(file.Path)))
	}
	h.Set("Content-Type", ct)
	http.ServeContent(w, r, "", snap.Time, strings.NewReader(string(data)))
}

// attachment is a Content-Disposition that saves as name (any characters).
func attachment(name string) string {
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}

// zip answers the whole snapshot as a .zip, written by internal/export to
// a temporary file first so that a failure is an error page, not a broken
// download.
func (u *ui) zip(w http.ResponseWriter, r *http.Request, s *session) {
	f, snap, ok := u.loadSnapshot(w, r, s)
	if !ok {
		return
	}
	dir, err := os.MkdirTemp("", "relay-git-sync-zip-")
	if err != nil {
		u.fail(w, r, s, http.StatusInternalServerError, "Making a temporary directory for the zip failed: "+err.Error(), err)
		return
	}
	defer os.RemoveAll(dir)
	name := fmt.Sprintf("%s-snapshot-%d.zip", f.ID.Folder[:8], snap.Seq)
	out := filepath.Join(dir, name)
	if err := export.Write(r.Context(), snap, u.cfg.Source, out, nil); err != nil {
		u.fail(w, r, s, http.StatusInternalServerError, "Writing the zip failed: "+err.Error(), err)
		return
	}
	zf, err := os.Open(out)
	if err != nil {
		u.fail(w, r, s, http.StatusInternalServerError, "Reading the zip failed: "+err.Error(), err)
		return
	}
	defer zf.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", attachment(name))
	w.Header().Set("Cache-Control", "private, max-age=86400")
	http.ServeContent(w, r, "", snap.Time, zf)
}

// version is one entry of a file's history: the snapshot where it
// changed, and the path it had there.
type version struct {
	Seq     uint64
	Time    time.Time
	Users   []string
	Kind    store.ChangeKind
	Path    string
	OldPath string
	// At is the snapshot that holds this version's content (for a
	// deletion, the last one before it); 0 when there is none.
	At uint64
	// Prev is the version before this one (for "compare with previous"),
	// as snapshot and path; PrevAt 0 = none.
	PrevAt   uint64
	PrevPath string
	// Made once in Go rather than by the template, row by row, for long
	// histories.
	Ref, SnapURL, FileURL, DiffURL string
}

// Pickable: the version has content of its own to view and compare (a
// deletion's last content is the version before it, listed already).
func (v version) Pickable() bool { return v.At != 0 && v.Kind != store.ChangeDeleted }

// fileHistory lists the versions of the file at p in snapshot upTo
// (newest first), following renames back through OldPath. It reads the
// snapshots' change lists only, never a tree.
func fileHistory(infos []store.SnapshotInfo, p string, upTo uint64, people map[string]string) []version {
	var out []version
	cur := p
	for i := len(infos) - 1; i >= 0; i-- {
		info := infos[i]
		if info.Seq > upTo {
			continue
		}
		for _, c := range info.Changes {
			if c.Path != cur {
				continue
			}
			v := version{Seq: info.Seq, Time: info.Time, Users: names(people, info.Users), Kind: c.Kind, Path: c.Path, OldPath: c.OldPath, At: info.Seq}
			if c.Kind == store.ChangeDeleted {
				v.At = 0
				if i > 0 {
					v.At = infos[i-1].Seq
				}
			}
			if c.Kind == store.ChangeRenamed && c.OldPath != "" {
				cur = c.OldPath
			}
			out = append(out, v)
			break
		}
	}
	// Link each version to the one before it.
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Pickable() {
				out[i].PrevAt, out[i].PrevPath = out[j].At, out[j].Path
				break
			}
		}
	}
	return out
}

type historyData struct {
	Path     string
	Seq      uint64
	Versions []version
	// The versions the compare form starts with: the newest and the one
	// before it. -1 = none.
	PickA, PickB int
}

func defaultPicks(vs []version) (a, b int) {
	a, b = -1, -1
	for i, v := range vs {
		switch {
		case !v.Pickable():
		case b < 0:
			b = i
		default:
			return i, b
		}
	}
	return a, b
}

func (u *ui) historyPage(w http.ResponseWriter, r *http.Request, s *session) {
	f, ok := u.folderOf(w, r, s)
	if !ok {
		return
	}
	q := r.URL.Query()
	p := q.Get("path")
	if p == "" {
		u.fail(w, r, s, http.StatusBadRequest, "Which file? The history page needs ?path=.", nil)
		return
	}
	ctx := r.Context()
	upTo := uint64(0)
	if v := q.Get("seq"); v != "" {
		if upTo, ok = u.seqOf(w, r, s, "seq", v); !ok {
			return
		}
	}
	infos, err := u.infos.all(ctx, u.cfg.Source, f.ID)
	if err != nil {
		u.failErr(w, r, s, "Listing the snapshots of "+f.ID.String(), err)
		return
	}
	if upTo == 0 && len(infos) > 0 {
		upTo = infos[len(infos)-1].Seq
	}
	d := historyData{Path: p, Seq: upTo, Versions: fileHistory(infos, p, upTo, u.people(ctx))}
	d.PickA, d.PickB = defaultPicks(d.Versions)
	for i := range d.Versions {
		v := &d.Versions[i]
		v.SnapURL = f.Snap(v.Seq)
		if v.At != 0 {
			v.Ref, v.FileURL = versionRef{v.At, v.Path}.String(), f.File(v.At, v.Path)
		}
		if v.Pickable() && v.PrevAt != 0 {
			v.DiffURL = f.Diff(v.PrevAt, v.PrevPath, v.At, v.Path)
		}
	}
	if len(d.Versions) == 0 {
		u.fail(w, r, s, http.StatusNotFound, fmt.Sprintf("No snapshot up to %d changed %q.", upTo, p), nil)
		return
	}
	u.render(w, r, http.StatusOK, "history", &page{Title: "History of " + p, Session: s, Folder: f, Data: d})
}

// versionRef is one side of a diff: "SEQ:PATH".
type versionRef struct {
	Seq  uint64
	Path string
}

func parseVersionRef(v string) (versionRef, error) {
	n, p, ok := strings.Cut(v, ":")
	seq, err := strconv.ParseUint(n, 10, 64)
	if !ok || err != nil || seq == 0 || p == "" {
		return versionRef{}, fmt.Errorf("%q is not a version (SNAPSHOT:PATH)", v)
	}
	return versionRef{Seq: seq, Path: p}, nil
}

func (v versionRef) String() string { return strconv.FormatUint(v.Seq, 10) + ":" + v.Path }

type diffData struct {
	A, B       versionRef
	Hunks      []hunk
	Binary     bool
	Same       bool
	Added      int
	Deleted    int
	Split      bool
	SplitRows  []splitRow
	Truncated  bool
	SwapURL    string
	UnifiedURL string
	SplitURL   string
}

func (u *ui) diffPage(w http.ResponseWriter, r *http.Request, s *session) {
	f, ok := u.folderOf(w, r, s)
	if !ok {
		return
	}
	q := r.URL.Query()
	a, errA := parseVersionRef(q.Get("a"))
	b, errB := parseVersionRef(q.Get("b"))
	if errA != nil || errB != nil {
		u.fail(w, r, s, http.StatusBadRequest, "Pick two versions to compare (a and b): "+fmt.Sprint(errA, "; ", errB), nil)
		return
	}
	if a.Seq > b.Seq {
		a, b = b, a // older on the left
	}
	ctx := r.Context()
	load := func(v versionRef) ([]byte, bool) {
		snap, err := u.cfg.Source.Snapshot(ctx, f.ID, v.Seq)
		if err != nil {
			u.failErr(w, r, s, fmt.Sprintf("Reading snapshot %d", v.Seq), err)
			return nil, false
		}
		file, ok := findFile(snap, v.Path)
		if !ok {
			u.fail(w, r, s, http.StatusNotFound, fmt.Sprintf("Snapshot %d has no file %q.", v.Seq, v.Path), nil)
			return nil, false
		}
		data, err := u.cfg.Source.Blob(ctx, file.Blob)
		if err != nil {
			u.failErr(w, r, s, "Reading "+v.Path, err)
			return nil, false
		}
		return data, true
	}
	da, ok := load(a)
	if !ok {
		return
	}
	db, ok := load(b)
	if !ok {
		return
	}
	d := diffData{A: a, B: b, Split: q.Get("view") == "split"}
	d.UnifiedURL = f.Diff(a.Seq, a.Path, b.Seq, b.Path)
	d.SplitURL = d.UnifiedURL + "&view=split"
	switch {
	case !isText(da) || !isText(db):
		d.Binary = true
	case string(da) == string(db):
		d.Same = true
	default:
		res := Diff(string(da), string(db))
		d.Hunks, d.Added, d.Deleted, d.Truncated = res.Hunks, res.Added, res.Deleted, res.Truncated
		if d.Split {
			d.SplitRows = splitRows(d.Hunks)
		}
	}
	u.render(w, r, http.StatusOK, "diff", &page{Title: fmt.Sprintf("Changes to %s", b.Path), Session: s, Folder: f, Data: d})
}

// isText: valid UTF-8 without NUL bytes in the first 8 KiB (git's test).
func isText(b []byte) bool {
	head := b[:min(len(b), 8000)]
	return !slices.Contains(head, 0) && utf8Valid(b)
}
