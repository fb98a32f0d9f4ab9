// Package ingest turns the state of a Relay shared folder into snapshots:
// it fetches the folder document and the documents and attachments that
// changed, decodes them, builds the folder's file tree, and records a
// snapshot in the store when the tree differs from the last one.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

// Fetcher reads documents and attachments from a Relay Server;
// *relay.Client is one.
type Fetcher interface {
	FetchDoc(ctx context.Context, relayID, docID string) ([]byte, error)
	FetchFile(ctx context.Context, relayID, fileID, hash string, w io.Writer) (int64, error)
}

// Config configures a Syncer.
type Config struct {
	Store store.Backend
	Relay Fetcher
	// Concurrency bounds parallel fetches per folder; default 8.
	Concurrency int
	// MaxFileBytes bounds one attachment; default 256 MiB.
	MaxFileBytes int64
	Logger       *slog.Logger
}

// Syncer records snapshots of shared folders. Syncs of one folder are
// serialized; different folders may sync concurrently.
type Syncer struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex
	locks map[store.FolderID]*sync.Mutex
}

// New returns a Syncer.
func New(cfg Config) *Syncer {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = 256 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syncer{cfg: cfg, log: log, locks: map[store.FolderID]*sync.Mutex{}}
}

// Request asks for one folder to be synced.
type Request struct {
	Folder store.FolderID
	// Time is the snapshot's time (the newest webhook's); zero means now.
	Time time.Time
	// Users are the Relay users seen since the last snapshot.
	Users []string
	// Dirty, when not nil, lists the document ids known to have changed;
	// other documents whose content is already stored are not fetched.
	// Nil (without Sweep) fetches every document and compares.
	Dirty map[string]bool
	// Sweep, when not nil, makes this sync one slice of a reconcile.
	Sweep *Sweep
	// Origin is recorded with the snapshot, if this sync records one:
	// what write of relay-git-sync itself it records (see Write).
	Origin store.Origin
	// Events are the webhook events behind this sync, by queue key. The
	// snapshot records those of documents of this folder that were
	// fetched (see store.Snapshot.Events): an event whose document failed
	// stays to be retried, and one of another folder's document is that
	// folder's to record.
	Events map[uint64]EventRef
}

// EventRef is what a sync knows of a webhook event: its document and
// the sender's id of the event.
type EventRef struct{ Doc, ID string }

// Sweep is one slice of a reconcile: documents whose content is stored
// and that are not in Done are re-fetched and compared, in document id
// order, until Max are done or Yield fires. What the slice checked is
// recorded; the rest keeps its stored content and is left to the next
// slice, so a reconcile that yields resumes where it stopped. Documents
// the store has no content for (new ones, or in Dirty) are always
// fetched: a slice never records a snapshot missing them.
type Sweep struct {
	// Done are the documents already checked in this reconcile.
	Done map[string]bool
	// Max bounds the documents checked by this slice (0 = no bound).
	Max int
	// Concurrency bounds the checks in flight; default 2, so that a slow
	// Relay Server never has more than that many reconcile requests
	// queued ahead of a webhook's.
	Concurrency int
	// Yield, once closed, stops the slice: no check starts, and checks in
	// flight are abandoned (they count as not done).
	Yield <-chan struct{}
	// Wait, when set, is called before each check: the reconcile's rate
	// limit. An error stops the slice like Yield.
	Wait func(ctx context.Context) error
}

// Problem is a part of the folder that could not be synced this time. The
// snapshot keeps the previous content for it, if there was any.
type Problem struct {
	Path  string // filemeta key
	DocID string
	Err   error
}

func (p Problem) Error() string {
	if p.DocID != "" {
		return fmt.Sprintf("%s (%s): %v", p.Path, p.DocID, p.Err)
	}
	return fmt.Sprintf("%s: %v", p.Path, p.Err)
}

// Result says what a sync did.
type Result struct {
	// Snapshot is the snapshot recorded, or nil when nothing changed.
	Snapshot *store.Snapshot
	// Skipped are filemeta entries left out as invalid (hostile paths,
	// bad ids or hashes); Failed are documents that could not be fetched
	// or decoded. Both keep their previous content where there was some.
	Skipped, Failed []Problem
	// Fetched counts documents and attachments downloaded; Unchanged
	// those whose downloaded bytes matched what is stored.
	Fetched, Unchanged int
	// Checked are the documents (not attachments) fetched and compared,
	// by id: their content is now known to be current.
	Checked []string
	// Unchecked counts, in a sweep slice, the documents left for later
	// slices; 0 means the reconcile has covered the whole folder.
	Unchecked int
}

// ErrFolderNotFound means the Relay Server has no such folder document.
var ErrFolderNotFound = errors.New("shared folder not found on the Relay Server")

func (s *Syncer) folderLock(f store.FolderID) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locks[f]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[f] = l
	}
	return l
}

// SyncFolder fetches the folder's current state and records a snapshot if
// it differs from the last one. An error means no snapshot was recorded;
// per-document failures are reported in the Result instead, so that one
// broken document does not hold up the rest of the folder.
func (s *Syncer) SyncFolder(ctx context.Context, req Request) (*Result, error) {
	l := s.folderLock(req.Folder)
	l.Lock()
	defer l.Unlock()
	return s.sync(ctx, req)
}

// Write runs write while no sync of folder f runs and, when it returns a
// request (for f), syncs with it before any other sync can. A write of
// relay-git-sync itself (a restore, a push) so becomes a snapshot of its
// own, with the request's Origin, and the webhooks it causes find nothing
// left to record. A write that failed half way may return a request with
// its error: what it wrote is recorded, and its error returned. The Result
// is nil when write returned no request.
func (s *Syncer) Write(ctx context.Context, f store.FolderID, write func(context.Context) (*Request, error)) (*Result, error) {
	l := s.folderLock(f)
	l.Lock()
	defer l.Unlock()
	req, werr := write(ctx)
	if req == nil {
		return nil, werr
	}
	if req.Folder != f {
		return nil, errors.Join(werr, fmt.Errorf("ingest: a write to folder %s asked to sync folder %s", f, req.Folder))
	}
	res, err := s.sync(ctx, *req)
	if werr != nil {
		if err != nil {
			s.log.Warn("recording what a failed write wrote", "folder", f.String(), "err", err)
		}
		return res, werr
	}
	return res, err
}

// sync is SyncFolder with the folder's lock held.
func (s *Syncer) sync(ctx context.Context, req Request) (*Result, error) {
	f := req.Folder
	raw, err := s.cfg.Relay.FetchDoc(ctx, f.Relay, f.Folder)
	if err != nil {
		if errors.Is(err, relay.ErrNotFound) {
			return nil, fmt.Errorf("folder %s: %w", f, ErrFolderNotFound)
		}
		return nil, fmt.Errorf("folder %s: fetching the folder document: %w", f, err)
	}
	doc := yjs.NewDoc()
	if err := doc.ApplyUpdate(raw); err != nil {
		return nil, fmt.Errorf("folder %s: decoding the folder document: %w", f, err)
	}
	meta, _ := doc.GetMap(relay.FileMetaKey).ToJSON().(map[string]any)
	entries, problems := relay.ParseFileMeta(meta)

	prev, err := s.cfg.Store.Latest(f)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	states, err := s.cfg.Store.DocStates(f)
	if err != nil {
		return nil, err
	}
	prevByDoc := map[string]store.File{}
	if prev != nil {
		for _, pf := range prev.Files {
			prevByDoc[pf.DocID] = pf
		}
	}

	res := &Result{}
	for _, p := range problems {
		res.Skipped = append(res.Skipped, Problem{Path: p.Path, DocID: p.Entry.ID, Err: p.Err})
		s.log.Warn("skipping filemeta entry", "folder", f.String(), "path", p.Path, "err", p.Err)
	}

	jobs := make([]*job, 0, len(entries))
	for _, e := range entries {
		if e.Kind() == relay.KindFolder {
			continue
		}
		jobs = append(jobs, &job{entry: e, state: states[e.ID], hasState: hasState(states, e.ID), last: prevByDoc[e.ID]})
	}
	res.Unchecked = s.runJobs(ctx, f, jobs, req)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	files := make([]store.File, 0, len(jobs))
	newStates := map[string]store.DocState{}
	seen := map[string]bool{}
	for _, j := range jobs {
		switch {
		case j.err != nil:
			res.Failed = append(res.Failed, Problem{Path: j.entry.Path, DocID: j.entry.ID, Err: j.err})
			s.log.Warn("document not synced", "folder", f.String(), "path", j.entry.Path, "doc", j.entry.ID, "err", j.err)
			// Keep what we had, at the document's new path: the rename is
			// known from filemeta even when the content is not.
			if pf, ok := prevByDoc[j.entry.ID]; ok {
				pf.Path = j.entry.RelPath
				files = append(files, pf)
				seen[j.entry.ID] = true
			}
			continue
		case j.fetched:
			res.Fetched++
			if j.unchanged {
				res.Unchanged++
			}
			if j.entry.Kind() != relay.KindFile {
				res.Checked = append(res.Checked, j.entry.ID)
			}
		}
		files = append(files, store.File{Path: j.entry.RelPath, Blob: j.blob, Size: j.size, DocID: j.entry.ID, Kind: string(j.entry.Kind())})
		// Only states that changed are written: rewriting every state of
		// a folder of 50,000 documents cost each sync about 0.15 s.
		st := store.DocState{Hash: j.hash, Blob: j.blob, Path: j.entry.RelPath}
		if old, ok := states[j.entry.ID]; !ok || old != st {
			newStates[j.entry.ID] = st
		}
		seen[j.entry.ID] = true
	}
	// Entries skipped as invalid keep their previous file where the
	// document is known, so a bad edit to filemeta never deletes content.
	for _, p := range problems {
		if pf, ok := prevByDoc[p.Entry.ID]; ok && p.Entry.ID != "" && !seen[p.Entry.ID] {
			files = append(files, pf)
			seen[p.Entry.ID] = true
		}
	}
	files = dedupePaths(files)
	var drop []string
	for id := range states {
		if !seen[id] {
			drop = append(drop, id)
		}
	}
	sort.Strings(drop)

	var prevFiles []store.File
	if prev != nil {
		prevFiles = prev.Files
	}
	changes := Diff(prevFiles, files)
	// A pushed commit that changes no file is still a snapshot: its
	// commit must be in the history, or the pusher's branch is ahead of it.
	if len(changes) == 0 && req.Origin.Pushed == nil {
		if len(newStates) > 0 || len(drop) > 0 {
			// Nothing to snapshot, but remember what was fetched.
			if err := s.cfg.Store.PutDocStates(f, newStates, drop); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	t := req.Time
	if t.IsZero() {
		t = time.Now()
	}
	snap := &store.Snapshot{Folder: f, Time: t.UTC(), Users: normalizeUsers(req.Users), Changes: changes, Files: files, Origin: req.Origin}
	snap.Events, snap.EventIDs = recordedEvents(f, req.Events, seen, res.Failed)
	if err := s.addSnapshot(prev, snap, newStates, drop); err != nil {
		return nil, fmt.Errorf("folder %s: recording snapshot: %w", f, err)
	}
	res.Snapshot = snap
	return res, nil
}

// recordedEvents are the keys and ids of the events a snapshot records:
// those of the folder's own document or of a document of the folder in
// the snapshot (seen), unless that document failed to sync.
func recordedEvents(f store.FolderID, events map[uint64]EventRef, seen map[string]bool, failed []Problem) ([]uint64, []string) {
	bad := map[string]bool{}
	for _, p := range failed {
		bad[p.DocID] = true
	}
	var keys []uint64
	for k, ev := range events {
		if (ev.Doc == f.Folder || seen[ev.Doc]) && !bad[ev.Doc] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var ids []string
	for _, k := range keys {
		if id := events[k].ID; id != "" {
			ids = append(ids, id)
		}
	}
	return keys, ids
}

// afterAdder is a store shared by several instances (internal/natsstore),
// which records a snapshot only while the folder's latest is still the
// one it was computed from, else returns store.ErrConflict.
type afterAdder interface {
	AddSnapshotAfter(base uint64, snap *store.Snapshot, docs map[string]store.DocState, dropDocs []string) (uint64, error)
}

// addSnapshot records snap, computed from prev (nil: the folder had none).
func (s *Syncer) addSnapshot(prev, snap *store.Snapshot, docs map[string]store.DocState, drop []string) error {
	a, ok := s.cfg.Store.(afterAdder)
	if !ok {
		_, err := s.cfg.Store.AddSnapshot(snap, docs, drop)
		return err
	}
	var base uint64
	if prev != nil {
		base = prev.Seq
	}
	_, err := a.AddSnapshotAfter(base, snap, docs, drop)
	return err
}

func hasState(states map[string]store.DocState, id string) bool {
	_, ok := states[id]
	return ok
}

func normalizeUsers(users []string) []string {
	set := map[string]bool{}
	var out []string
	for _, u := range users {
		if u != "" && !set[u] {
			set[u] = true
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// dedupePaths keeps one file per path (the first, in filemeta order) and
// returns the files sorted by path. Two paths can meet when a kept
// previous file sits where a new entry now is.
func dedupePaths(files []store.File) []store.File {
	sort.SliceStable(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	out := files[:0]
	for i, f := range files {
		if i > 0 && f.Path == files[i-1].Path {
			continue
		}
		out = append(out, f)
	}
	return out
}

// job is the work for one filemeta entry.
type job struct {
	entry    relay.Entry
	state    store.DocState
	hasState bool
	last     store.File // the document's file in the last snapshot, if any

	blob      store.BlobID
	size      int64
	hash      [32]byte
	fetched   bool
	unchanged bool
	err       error
}

// runJobs fills every job: from the stored state where that is enough,
// else by fetching. In a sweep slice it returns how many documents were
// left unchecked.
func (s *Syncer) runJobs(ctx context.Context, f store.FolderID, jobs []*job, req Request) (unchecked int) {
	var must, checks []*job
	for _, j := range jobs {
		switch {
		case !j.hasState:
			must = append(must, j)
		case j.entry.Kind() == relay.KindFile:
			// Content-addressed: a matching hash needs no fetch.
			if hex.EncodeToString(j.state.Hash[:]) != j.entry.Hash || !s.fromState(j) {
				must = append(must, j)
			}
		case req.Dirty[j.entry.ID] || (req.Dirty == nil && req.Sweep == nil):
			must = append(must, j)
		case !s.fromState(j):
			must = append(must, j)
		case req.Sweep != nil && !req.Sweep.Done[j.entry.ID]:
			checks = append(checks, j)
		}
	}
	s.fetchAll(ctx, f, must, s.cfg.Concurrency)
	if req.Sweep == nil || len(checks) == 0 || ctx.Err() != nil {
		return len(checks)
	}
	return len(checks) - s.check(ctx, f, checks, req.Sweep)
}

func (s *Syncer) fetchAll(ctx context.Context, f store.FolderID, jobs []*job, concurrency int) {
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if ctx.Err() != nil {
				j.err = ctx.Err()
				return
			}
			j.err = s.fetch(ctx, f, j)
		}()
	}
	wg.Wait()
}

// check re-fetches documents of a sweep slice in id order until sw stops
// it, and returns how many it checked (failures included: they are
// reported, not retried by this reconcile). Jobs not checked keep what
// fromState filled in.
func (s *Syncer) check(ctx context.Context, f store.FolderID, jobs []*job, sw *Sweep) int {
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].entry.ID < jobs[b].entry.ID })
	yctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if sw.Yield != nil {
		go func() {
			select {
			case <-sw.Yield:
				cancel()
			case <-yctx.Done():
			}
		}()
	}
	conc := sw.Concurrency
	if conc <= 0 {
		conc = 2
	}
	sem := make(chan struct{}, conc)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		abandoned int
	)
	started := 0
	for _, j := range jobs {
		if (sw.Max > 0 && started >= sw.Max) || yctx.Err() != nil {
			break
		}
		if sw.Wait != nil && sw.Wait(yctx) != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-yctx.Done():
		}
		if yctx.Err() != nil {
			break
		}
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			saved := *j
			err := s.fetch(yctx, f, j)
			if err != nil && errors.Is(err, context.Canceled) && yctx.Err() != nil && ctx.Err() == nil {
				// Abandoned by Yield: back to the stored state.
				*j = saved
				mu.Lock()
				abandoned++
				mu.Unlock()
				return
			}
			j.err = err
		}()
	}
	wg.Wait()
	return started - abandoned
}

// fromState fills j from its stored state; false when the stored blob is
// missing (the document must then be fetched).
func (s *Syncer) fromState(j *job) bool {
	if !j.last.Blob.IsZero() && j.last.Blob == j.state.Blob {
		// In the last snapshot, so stored (AddSnapshot checks every
		// blob), and its size is known: no lookups. Every document a
		// reconcile slice does not check comes here, in every slice.
		j.blob, j.hash, j.size = j.state.Blob, j.state.Hash, j.last.Size
		return true
	}
	has, err := s.cfg.Store.HasBlob(j.state.Blob)
	if err != nil || !has {
		return false
	}
	size, err := s.cfg.Store.BlobSize(j.state.Blob)
	if err != nil {
		return false
	}
	j.blob, j.hash, j.size = j.state.Blob, j.state.Hash, size
	return true
}

func (s *Syncer) fetch(ctx context.Context, f store.FolderID, j *job) error {
	e := j.entry
	var data []byte
	switch e.Kind() {
	case relay.KindFile:
		return s.fetchFile(ctx, f, j)
	default:
		raw, err := s.cfg.Relay.FetchDoc(ctx, f.Relay, e.ID)
		if err != nil {
			return err
		}
		j.hash = sha256.Sum256(raw)
		if j.hasState && j.hash == j.state.Hash {
			if has, err := s.cfg.Store.HasBlob(j.state.Blob); err == nil && has {
				j.fetched, j.unchanged = true, true
				j.blob = j.state.Blob
				j.size, err = s.cfg.Store.BlobSize(j.blob)
				return err
			}
		}
		if data, err = render(e, raw); err != nil {
			return err
		}
	}
	j.fetched = true
	base := store.BlobID{}
	if j.hasState {
		base = j.state.Blob
	}
	id, err := s.cfg.Store.PutBlob(data, base)
	if err != nil {
		return err
	}
	j.blob, j.size = id, int64(len(data))
	j.unchanged = j.hasState && id == j.state.Blob
	return nil
}

// fetchFile streams attachment j from the Relay Server into the store:
// the download is never held whole (attachments run to hundreds of MB).
func (s *Syncer) fetchFile(ctx context.Context, f store.FolderID, j *job) error {
	e := j.entry
	pr, pw := io.Pipe()
	h := sha256.New()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := &limitWriter{w: io.MultiWriter(pw, h), n: s.cfg.MaxFileBytes}
		_, err := s.cfg.Relay.FetchFile(ctx, f.Relay, e.ID, e.Hash, w)
		// The store sees the end of the content only once FetchFile has
		// checked its hash: a failed or mismatched download stores nothing.
		pw.CloseWithError(err)
	}()
	base := store.BlobID{}
	if j.hasState {
		base = j.state.Blob
	}
	id, size, err := s.cfg.Store.PutBlobFrom(pr, -1, base)
	// Unblocks the download if the store stopped reading; its own error,
	// if any, is the one returned (the pipe returns it to PutBlobFrom).
	pr.CloseWithError(errStoreFailed)
	<-done
	if err != nil {
		return err
	}
	j.fetched = true
	j.hash = [32]byte(h.Sum(nil))
	j.blob, j.size = id, size
	j.unchanged = j.hasState && id == j.state.Blob
	return nil
}

// errStoreFailed ends a download whose content the store stopped reading.
var errStoreFailed = errors.New("storing the attachment failed")

// render turns a markdown or canvas document into the bytes of its file.
func render(e relay.Entry, raw []byte) ([]byte, error) {
	doc := yjs.NewDoc()
	if err := doc.ApplyUpdate(raw); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if e.Kind() == relay.KindCanvas {
		nodes, _ := rootMap(doc, relay.CanvasNodesKey)
		edges, _ := rootMap(doc, relay.CanvasEdgesKey)
		return relay.ExportCanvas(nodes, edges, func(name string) (string, bool) {
			t := doc.Root(name)
			if t == nil || t.Kind() != yjs.KindText {
				return "", false
			}
			return t.String(), true
		})
	}
	return []byte(doc.GetText("contents").String()), nil
}

func rootMap(doc *yjs.Doc, name string) (map[string]any, bool) {
	if doc.Root(name) == nil {
		return nil, false
	}
	m, ok := doc.GetMap(name).ToJSON().(map[string]any)
	return m, ok
}

// limitWriter fails once more than n bytes are written.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, fmt.Errorf("attachment larger than the %d MiB limit", l.n>>20)
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}
