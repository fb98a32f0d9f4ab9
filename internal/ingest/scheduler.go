package ingest

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Queue is the durable event queue the scheduler drains; *store.Store is one.
type Queue interface {
	PendingEvents() ([]store.QueuedEvent, error)
	AckEvents(keys []uint64) error
}

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	Syncer *Syncer
	Store  *store.Store
	Queue  Queue
	// Quiet is how long a folder must see no webhook before its snapshot
	// is cut (the original's --commit-interval); MaxDelay bounds the wait
	// under continuous editing.
	Quiet, MaxDelay time.Duration
	// Reconcile is the interval of full sweeps that catch webhooks the
	// Relay Server dropped; 0 disables the periodic sweep (one still runs
	// at start).
	Reconcile time.Duration
	// Workers bounds folders synced at once; default 2.
	Workers int
	// OnSnapshot is called after each recorded snapshot.
	OnSnapshot func(ctx context.Context, snap *store.Snapshot)
	// OnSync is told how each sync went, for metrics.
	OnSync func(f store.FolderID, took time.Duration, res *Result, err error)
	// OnDepth is told the number of unacknowledged events.
	OnDepth func(n int)
	// OnReconcile is told how each reconcile sweep went (at start and
	// every Reconcile): err is non-nil when the folders could not be
	// listed. The folders' syncs are reported to OnSync as usual.
	OnReconcile func(err error)
	Logger      *slog.Logger
}

// Scheduler coalesces webhook events per folder into one sync after a
// quiet period, acknowledges events once their change is in a snapshot,
// retries failures with backoff, and reconciles every folder periodically.
type Scheduler struct {
	cfg    SchedulerConfig
	log    *slog.Logger
	notify chan store.QueuedEvent

	mu      sync.Mutex
	pending map[store.FolderID]*window
	running map[store.FolderID]bool
	owner   map[string]store.FolderID // doc id (and folder id) -> folder
	// known is every followed folder; true once owner holds its documents
	// (documents stored at start, or a sync succeeded in this run).
	known   map[store.FolderID]bool
	unacked int
	// drop are keys of events for documents of no followed folder, acked
	// in one batch per tick rather than one synced write per event.
	drop []uint64
}

// window is what a folder has accumulated since its last sync.
type window struct {
	docs        map[string]bool
	keys        []uint64
	users       []string
	newest      time.Time // newest webhook time: the snapshot's time
	first, last time.Time // when the window opened and last grew
	full        bool      // reconcile: fetch every document
	attempts    int
	notBefore   time.Time // retry backoff
}

// NewScheduler returns a scheduler; Run starts it.
func NewScheduler(cfg SchedulerConfig) *Scheduler {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.MaxDelay < cfg.Quiet {
		cfg.MaxDelay = cfg.Quiet
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		cfg: cfg, log: log, notify: make(chan store.QueuedEvent, 1024),
		pending: map[store.FolderID]*window{}, running: map[store.FolderID]bool{}, owner: map[string]store.FolderID{},
		known: map[store.FolderID]bool{},
	}
}

// Notify hands the scheduler an event that is already durable in the queue.
func (s *Scheduler) Notify(ev store.QueuedEvent) { s.notify <- ev }

// Run drains events until ctx ends: first the events left in the queue by
// an earlier run and a reconcile of every folder, then webhooks as they
// come. It returns after in-flight syncs finish.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.refreshOwners(); err != nil {
		return err
	}
	left, err := s.cfg.Queue.PendingEvents()
	if err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	for _, ev := range left {
		s.addLocked(ev, now)
	}
	s.mu.Unlock()
	s.reconcileAll(now)

	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, s.cfg.Workers)
	tick := time.NewTicker(tickInterval(s.cfg.Quiet))
	defer tick.Stop()
	var reconcile <-chan time.Time
	if s.cfg.Reconcile > 0 {
		t := time.NewTicker(s.cfg.Reconcile)
		defer t.Stop()
		reconcile = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.notify:
			s.mu.Lock()
			s.addLocked(ev, time.Now())
			s.mu.Unlock()
		case now := <-reconcile:
			s.reconcileAll(now)
		case now := <-tick.C:
			s.ackDropped()
		start:
			for _, f := range s.due(now) {
				// Never wait for a worker here: the loop must keep
				// taking Notify calls (webhook handlers block on a full
				// channel). Folders left over start on a later tick.
				select {
				case sem <- struct{}{}:
				default:
					break start
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					s.syncOne(ctx, f)
				}()
			}
		}
	}
}

func tickInterval(quiet time.Duration) time.Duration {
	return min(max(quiet/4, 10*time.Millisecond), 250*time.Millisecond)
}

// addLocked puts an event into its folder's window. A document not in
// the index may belong to a folder of the same relay whose documents are
// not known yet (a new data dir, before the folder's first sync in this
// run): the event joins the window of every such folder, so the document
// is fetched once the folder's documents are listed (an unknown id in a
// dirty set is ignored). Otherwise it is acknowledged unprocessed: a new
// document also changes its folder's document, and reconcile catches
// anything else.
func (s *Scheduler) addLocked(ev store.QueuedEvent, now time.Time) {
	if f, ok := s.owner[ev.Doc]; ok {
		s.addToLocked(f, ev, now)
		return
	}
	var targets []store.FolderID
	for f, indexed := range s.known {
		if !indexed && f.Relay == ev.Relay {
			targets = append(targets, f)
		}
	}
	if len(targets) == 0 {
		s.log.Debug("webhook for a document of no known folder", "relay", ev.Relay, "doc", ev.Doc)
		s.drop = append(s.drop, ev.Key)
		return
	}
	for _, f := range targets {
		s.addToLocked(f, ev, now)
	}
}

// ackDropped acknowledges the events addLocked set aside.
func (s *Scheduler) ackDropped() {
	s.mu.Lock()
	keys := s.drop
	s.drop = nil
	s.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	if err := s.cfg.Queue.AckEvents(keys); err != nil {
		s.log.Error("acknowledging events of unknown documents", "err", err)
	}
}

func (s *Scheduler) addToLocked(f store.FolderID, ev store.QueuedEvent, now time.Time) {
	w := s.windowLocked(f, now)
	w.docs[ev.Doc] = true
	w.keys = append(w.keys, ev.Key)
	if ev.User != "" {
		w.users = append(w.users, ev.User)
	}
	if ev.Time.After(w.newest) {
		w.newest = ev.Time
	}
	w.last = now
	s.unacked++
	s.reportDepthLocked()
}

func (s *Scheduler) windowLocked(f store.FolderID, now time.Time) *window {
	w := s.pending[f]
	if w == nil {
		w = &window{docs: map[string]bool{}, first: now, last: now}
		s.pending[f] = w
	}
	return w
}

func (s *Scheduler) reportDepthLocked() {
	if s.cfg.OnDepth != nil {
		s.cfg.OnDepth(s.unacked)
	}
}

// reconcileAll asks for a full check of every folder.
func (s *Scheduler) reconcileAll(now time.Time) {
	folders, err := s.cfg.Store.Folders()
	if s.cfg.OnReconcile != nil {
		s.cfg.OnReconcile(err)
	}
	if err != nil {
		s.log.Error("listing folders for reconcile", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range folders {
		s.owner[f.Folder] = f
		if _, ok := s.known[f]; !ok {
			s.known[f] = false
		}
		w := s.windowLocked(f, now)
		w.full = true
		// A reconcile needs no quiet period of its own.
		w.first, w.last = now.Add(-s.cfg.MaxDelay), now.Add(-s.cfg.Quiet)
	}
}

// due returns the folders whose window is ready and not already syncing,
// and takes their windows.
func (s *Scheduler) due(now time.Time) []store.FolderID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.FolderID
	for f, w := range s.pending {
		if s.running[f] || now.Before(w.notBefore) {
			continue
		}
		if now.Sub(w.last) >= s.cfg.Quiet || now.Sub(w.first) >= s.cfg.MaxDelay {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (s *Scheduler) syncOne(ctx context.Context, f store.FolderID) {
	s.mu.Lock()
	w := s.pending[f]
	if w == nil || s.running[f] {
		s.mu.Unlock()
		return
	}
	delete(s.pending, f)
	s.running[f] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, f)
		s.mu.Unlock()
	}()

	req := Request{Folder: f, Time: w.newest, Users: w.users}
	if !w.full {
		req.Dirty = w.docs
	}
	start := time.Now()
	res, err := s.cfg.Syncer.SyncFolder(ctx, req)
	if s.cfg.OnSync != nil {
		s.cfg.OnSync(f, time.Since(start), res, err)
	}
	if ctx.Err() != nil {
		return // events stay in the queue for the next run
	}
	if err != nil {
		s.log.Warn("folder sync failed; will retry", "folder", f.String(), "attempt", w.attempts+1, "err", err)
		s.retry(f, w, w.docs, w.keys, nil)
		return
	}
	if res.Snapshot != nil {
		s.log.Info("snapshot", "folder", f.String(), "seq", res.Snapshot.Seq, "changes", len(res.Snapshot.Changes), "files", len(res.Snapshot.Files))
		s.mu.Lock()
		for _, file := range res.Snapshot.Files {
			s.owner[file.DocID] = f
		}
		s.mu.Unlock()
	}
	// The folder's documents are indexed now: those of the last snapshot
	// (or already indexed when nothing changed).
	s.mu.Lock()
	s.known[f] = true
	s.mu.Unlock()
	if res.Snapshot != nil {
		if s.cfg.OnSnapshot != nil {
			s.cfg.OnSnapshot(ctx, res.Snapshot)
		}
	}
	// Events of documents that failed stay queued and are retried.
	failed := map[string]bool{}
	for _, p := range res.Failed {
		failed[p.DocID] = true
	}
	var ack []uint64
	s.mu.Lock()
	keys := w.keys
	s.mu.Unlock()
	if len(failed) == 0 {
		ack = keys
	}
	if len(ack) > 0 {
		if err := s.cfg.Queue.AckEvents(ack); err != nil {
			s.log.Error("acknowledging events", "folder", f.String(), "err", err)
		}
		s.mu.Lock()
		s.unacked -= len(ack)
		s.reportDepthLocked()
		s.mu.Unlock()
	}
	if len(failed) > 0 {
		s.retry(f, w, failed, keys, res.Failed)
	}
}

// retry puts a window back with exponential backoff (1 s doubling to 5 min).
func (s *Scheduler) retry(f store.FolderID, old *window, docs map[string]bool, keys []uint64, _ []Problem) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.windowLocked(f, now)
	for d := range docs {
		w.docs[d] = true
	}
	w.keys = append(w.keys, keys...)
	w.users = append(w.users, old.users...)
	if old.newest.After(w.newest) {
		w.newest = old.newest
	}
	w.full = w.full || old.full
	w.attempts = old.attempts + 1
	backoff := time.Second << min(w.attempts-1, 9)
	w.notBefore = now.Add(min(backoff, 5*time.Minute))
}

// refreshOwners rebuilds the index from document id to folder.
func (s *Scheduler) refreshOwners() error {
	folders, err := s.cfg.Store.Folders()
	if err != nil {
		return err
	}
	owner := map[string]store.FolderID{}
	known := map[store.FolderID]bool{}
	for _, f := range folders {
		owner[f.Folder] = f
		states, err := s.cfg.Store.DocStates(f)
		if err != nil {
			return err
		}
		for id := range states {
			owner[id] = f
		}
		known[f] = len(states) > 0
	}
	s.mu.Lock()
	s.owner = owner
	s.known = known
	s.mu.Unlock()
	return nil
}
