package ingest

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Queue is the durable event queue the scheduler drains; a store.Backend is one.
type Queue interface {
	PendingEvents() ([]store.QueuedEvent, error)
	AckEvents(keys []uint64) error
}

// recorder is a queue shared by several instances (internal/natsstore),
// which knows the events a snapshot in its log records already, by key
// or by the sender's id (the queue may hold one event under two keys).
type recorder interface {
	Recorded(key uint64, id string) bool
}

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	Syncer *Syncer
	Store  store.Backend
	Queue  Queue
	// Quiet is how long a folder must see no webhook before its snapshot
	// is cut (the original's --commit-interval); MaxDelay bounds the wait
	// under continuous editing.
	Quiet, MaxDelay time.Duration
	// Reconcile is the interval of full sweeps that catch webhooks the
	// Relay Server dropped; 0 disables the periodic sweep (one still runs
	// at start). A sweep re-fetches every document, so it runs below
	// webhook work: in slices that yield to any webhook window that is
	// due, at ReconcileRate, resuming where it stopped. A sweep still
	// running when the next is due simply continues.
	Reconcile time.Duration
	// ReconcileRate bounds the documents sweeps re-fetch per second, over
	// all folders (each costs the Relay Server two requests); default 50.
	// Negative means no bound.
	ReconcileRate float64
	// Workers bounds folders synced at once; default 2. Sweeps use at
	// most Workers-1 of them (at least one), so webhook work always finds
	// a worker.
	Workers int
	// OnSnapshot is called after each recorded snapshot.
	OnSnapshot func(ctx context.Context, snap *store.Snapshot)
	// OnSync is told how each sync went, for metrics.
	OnSync func(f store.FolderID, took time.Duration, res *Result, err error)
	// OnDepth is told the number of unacknowledged events.
	OnDepth func(n int)
	// OnReconcile is told each time sweeps are started (at start and
	// every Reconcile): err is non-nil when the folders could not be
	// listed. The sweeps' slices are reported to OnSync as syncs.
	OnReconcile func(err error)
	Logger      *slog.Logger

	// Owns, when set, says whether this process may sync folder f now:
	// several serve instances share one store, and only the holder of
	// f's lease syncs it (Owns takes a free lease). The due window of a
	// folder another instance owns is dropped unacknowledged: that
	// instance sees the same events and acknowledges them, and Rescan
	// brings them back here if it dies first.
	Owns func(ctx context.Context, f store.FolderID) bool
	// Rescan, when positive, re-reads the queue this often and takes the
	// events no window or sync of this process holds (those an instance
	// that died left behind).
	Rescan time.Duration
}

// ErrNotOwner is returned by Write for a folder another instance syncs.
var ErrNotOwner = errors.New("another serve instance syncs this folder now: send the request to it, or retry once its lease moves")

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
	// queued are the keys of the events in a window or a running sync,
	// so an event seen twice (Notify and Rescan) is taken once.
	queued map[uint64]bool
	// drop are events for documents of no followed folder, acked in one
	// batch per tick rather than one synced write per event.
	drop []store.QueuedEvent
	// acked are the keys acknowledged while a rescan reads the queue
	// (nil when none does); rescanning is set while one runs.
	acked      map[uint64]bool
	rescanning atomic.Bool
	// sweeps are the reconciles under way, by folder.
	sweeps map[store.FolderID]*sweep
	pace   *pacer
}

// sweep is a reconcile of one folder, run as a series of slices.
type sweep struct {
	started time.Time
	// done are the documents fetched since the sweep started, by a slice
	// or by a webhook's sync: they need no check in this sweep.
	done      map[string]bool
	running   bool
	yield     chan struct{} // closed to stop the running slice
	yielded   bool
	slices    int
	attempts  int
	notBefore time.Time
}

// Slices are bounded so that what a sweep finds is recorded every so
// often: about sliceTime of checks at the configured rate.
const (
	sliceTime      = 10 * time.Second
	unpacedSlice   = 1000 // documents per slice without a rate limit
	defaultRecRate = 50
)

// window is what a folder has accumulated since its last sync.
type window struct {
	docs        map[string]bool
	events      map[uint64]windowEvent // by queue key: acknowledged once synced
	newest      time.Time              // newest webhook time: the snapshot's time
	first, last time.Time              // when the window opened and last grew
	attempts    int
	notBefore   time.Time // retry backoff
}

// windowEvent is what a window keeps of each of its webhook events.
type windowEvent struct{ doc, user, id string }

// keys are the queue keys of w's events.
func (w *window) keys() []uint64 { return slices.Collect(maps.Keys(w.events)) }

// NewScheduler returns a scheduler; Run starts it.
func NewScheduler(cfg SchedulerConfig) *Scheduler {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.MaxDelay < cfg.Quiet {
		cfg.MaxDelay = cfg.Quiet
	}
	if cfg.ReconcileRate == 0 {
		cfg.ReconcileRate = defaultRecRate
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		cfg: cfg, log: log, notify: make(chan store.QueuedEvent, 1024),
		pending: map[store.FolderID]*window{}, running: map[store.FolderID]bool{}, owner: map[string]store.FolderID{},
		known: map[store.FolderID]bool{}, sweeps: map[store.FolderID]*sweep{}, queued: map[uint64]bool{},
		pace: newPacer(cfg.ReconcileRate),
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
	var reconcile, rescan <-chan time.Time
	if s.cfg.Reconcile > 0 {
		t := time.NewTicker(s.cfg.Reconcile)
		defer t.Stop()
		reconcile = t.C
	}
	if s.cfg.Rescan > 0 {
		t := time.NewTicker(s.cfg.Rescan)
		defer t.Stop()
		rescan = t.C
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
		case <-rescan:
			if s.rescanning.CompareAndSwap(false, true) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.rescan()
				}()
			}
		case now := <-tick.C:
			s.ackDropped()
			s.dispatch(ctx, now, &wg, sem)
		}
	}
}

// dispatch starts the webhook windows that are due, then sweep slices
// with the workers left. It never waits for a worker: the loop must keep
// taking Notify calls (webhook handlers block on a full channel). A due
// window that cannot start asks a running slice to yield (of its own
// folder, or any when every worker is busy) and starts on a later tick;
// no slice starts while a window waits.
func (s *Scheduler) dispatch(ctx context.Context, now time.Time, wg *sync.WaitGroup, sem chan struct{}) {
	waiting := false
	for _, f := range s.due(now) {
		if s.disown(ctx, f) {
			continue
		}
		if s.yieldSlice(f) {
			waiting = true
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			s.yieldSlice(store.FolderID{})
			waiting = true
			continue
		}
		w := s.claimWindow(f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.syncOne(ctx, f, w)
		}()
	}
	if waiting {
		return
	}
	for _, f := range s.sweepsDue(now) {
		if s.disown(ctx, f) {
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			return
		}
		sw, req := s.claimSweep(f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.sweepOne(ctx, f, sw, req)
		}()
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
	if s.queued[ev.Key] {
		return
	}
	s.queued[ev.Key] = true
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
		s.drop = append(s.drop, ev)
		return
	}
	for _, f := range targets {
		s.addToLocked(f, ev, now)
	}
}

// ackDropped acknowledges the events addLocked set aside. With several
// instances, this one's index may only be behind (the document is new,
// and another instance recorded it): the index is read again from the
// store first, and what it now places is kept.
func (s *Scheduler) ackDropped() {
	s.mu.Lock()
	evs := s.drop
	s.drop = nil
	s.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	if s.cfg.Owns != nil {
		if err := s.refreshOwners(); err != nil {
			s.log.Error("reading the document index", "err", err)
		}
	}
	now := time.Now()
	var keys []uint64
	s.mu.Lock()
	for _, ev := range evs {
		if f, ok := s.owner[ev.Doc]; ok && s.cfg.Owns != nil {
			s.addToLocked(f, ev, now)
			continue
		}
		keys = append(keys, ev.Key)
	}
	s.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	if err := s.cfg.Queue.AckEvents(keys); err != nil {
		s.log.Error("acknowledging events of unknown documents", "err", err)
	}
	s.mu.Lock()
	s.ackedLocked(keys)
	s.mu.Unlock()
}

// rescan takes the queued events no window or sync of this process
// holds: those of an instance that died before acknowledging them. It
// runs beside the loop (a slow cluster must not hold up webhooks), one at
// a time. An event acknowledged while the queue was being read is still
// in what was read, but is not taken again: acked remembers it.
func (s *Scheduler) rescan() {
	defer s.rescanning.Store(false)
	s.mu.Lock()
	s.acked = map[uint64]bool{}
	s.mu.Unlock()
	evs, err := s.cfg.Queue.PendingEvents()
	s.mu.Lock()
	defer s.mu.Unlock()
	acked := s.acked
	s.acked = nil
	if err != nil {
		s.log.Error("re-reading the event queue", "err", err)
		return
	}
	now := time.Now()
	for _, ev := range evs {
		if !acked[ev.Key] {
			s.addLocked(ev, now)
		}
	}
}

// ackedLocked records that the events of keys were acknowledged.
func (s *Scheduler) ackedLocked(keys []uint64) {
	for _, k := range keys {
		delete(s.queued, k)
		if s.acked != nil {
			s.acked[k] = true
		}
	}
}

// disown drops folder f's due window, which another instance owns, and
// reports whether it did. Its events stay queued for that instance.
func (s *Scheduler) disown(ctx context.Context, f store.FolderID) bool {
	if s.cfg.Owns == nil || s.cfg.Owns(ctx, f) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.pending[f]; w != nil {
		s.forgetLocked(w.keys())
		delete(s.pending, f)
	}
	delete(s.sweeps, f)
	return true
}

// forget lets go of events this process will not handle (their folder
// moved to another instance), without acknowledging them.
func (s *Scheduler) forget(keys []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(keys)
}

func (s *Scheduler) forgetLocked(keys []uint64) {
	for _, k := range keys {
		delete(s.queued, k)
	}
	s.unacked -= len(keys)
	s.reportDepthLocked()
}

func (s *Scheduler) addToLocked(f store.FolderID, ev store.QueuedEvent, now time.Time) {
	w := s.windowLocked(f, now)
	w.docs[ev.Doc] = true
	w.events[ev.Key] = windowEvent{doc: ev.Doc, user: ev.User, id: ev.ID}
	if t := s.eventTime(ev, now); t.After(w.newest) {
		w.newest = t
	}
	w.last = now
	s.unacked++
	s.reportDepthLocked()
}

// FutureTolerance is how far after its receipt an event's timestamp may
// lie: the clock skew Standard Webhooks signatures tolerate. A timestamp
// further ahead is a wrong clock or a hostile sender; it would date a
// commit in the future (2999) and put history out of order, so the event
// takes its receive time instead.
const FutureTolerance = 5 * time.Minute

// eventTime is the time event ev stands for: its webhook timestamp, or its
// receive time (now if unknown) when the timestamp is more than
// FutureTolerance after it.
func (s *Scheduler) eventTime(ev store.QueuedEvent, now time.Time) time.Time {
	received := ev.Received
	if received.IsZero() {
		received = now
	}
	if ev.Time.Sub(received) <= FutureTolerance {
		return ev.Time
	}
	s.log.Warn("webhook timestamp too far in the future: using the receive time",
		"relay", ev.Relay, "doc", ev.Doc, "timestamp", ev.Time, "received", received, "tolerance", FutureTolerance)
	return received
}

func (s *Scheduler) windowLocked(f store.FolderID, now time.Time) *window {
	w := s.pending[f]
	if w == nil {
		w = &window{docs: map[string]bool{}, events: map[uint64]windowEvent{}, first: now, last: now}
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
		if sw := s.sweeps[f]; sw != nil {
			s.log.Info("reconcile still running: it continues", "folder", f.String(),
				"since", sw.started, "checked", len(sw.done))
			continue
		}
		s.sweeps[f] = &sweep{started: now, done: map[string]bool{}}
	}
}

// yieldSlice asks the running sweep slice of folder f to stop, or of any
// folder when f is the zero FolderID. It reports whether f's slice runs.
func (s *Scheduler) yieldSlice(f store.FolderID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f != (store.FolderID{}) {
		sw := s.sweeps[f]
		if sw == nil || !sw.running {
			return false
		}
		if !sw.yielded {
			sw.yielded = true
			close(sw.yield)
		}
		return true
	}
	for _, sw := range s.sweeps {
		if sw.running && !sw.yielded {
			sw.yielded = true
			close(sw.yield)
			return false
		}
	}
	return false
}

// sweepsDue returns the folders whose sweep may run a slice now, within
// the sweeps' share of the workers.
func (s *Scheduler) sweepsDue(now time.Time) []store.FolderID {
	s.mu.Lock()
	defer s.mu.Unlock()
	room := max(1, s.cfg.Workers-1)
	var out []store.FolderID
	for f, sw := range s.sweeps {
		if sw.running {
			room--
			continue
		}
		if s.running[f] || now.Before(sw.notBefore) {
			continue
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out[:max(0, min(room, len(out)))]
}

// claimSweep marks folder f's sweep (one sweepsDue returned) as running
// a slice and returns the slice's request. Only the Run loop claims, so
// what due and sweepsDue saw still holds.
func (s *Scheduler) claimSweep(f store.FolderID) (*sweep, Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := s.sweeps[f]
	sw.running, sw.yielded, sw.yield = true, false, make(chan struct{})
	sw.slices++
	return sw, Request{Folder: f, Sweep: &Sweep{
		Done: maps.Clone(sw.done), Max: s.sliceDocs(), Yield: sw.yield, Wait: s.pace.wait,
	}}
}

// sweepOne runs one slice of folder f's sweep.
func (s *Scheduler) sweepOne(ctx context.Context, f store.FolderID, sw *sweep, req Request) {
	start := time.Now()
	res, err := s.cfg.Syncer.SyncFolder(ctx, req)
	if s.cfg.OnSync != nil {
		s.cfg.OnSync(f, time.Since(start), res, err)
	}
	// The sweep stays running until its bookkeeping is done: a slice
	// claimed in between would run beside this one and share sw.done.
	if ctx.Err() != nil || errors.Is(err, store.ErrConflict) {
		s.mu.Lock()
		sw.running = false
		if err != nil { // the folder's new holder reconciles it
			delete(s.sweeps, f)
		}
		s.mu.Unlock()
		return
	}
	if err != nil {
		s.mu.Lock()
		sw.running = false
		sw.attempts++
		attempts := sw.attempts
		sw.notBefore = time.Now().Add(backoff(sw.attempts))
		s.mu.Unlock()
		s.log.Warn("reconcile failed; will retry", "folder", f.String(), "attempt", attempts, "err", err)
		return
	}
	s.recorded(ctx, f, res)
	failed := map[string]bool{}
	for _, p := range res.Failed {
		failed[p.DocID] = true
	}
	s.mu.Lock()
	sw.running = false
	sw.attempts = 0
	for _, id := range res.Checked {
		sw.done[id] = true
	}
	// Failed documents are retried like a webhook's, with backoff, not by
	// this sweep again.
	for id := range failed {
		sw.done[id] = true
	}
	finished := res.Unchecked == 0
	if finished {
		delete(s.sweeps, f)
	}
	docs, slices, yielded := len(sw.done), sw.slices, sw.yielded
	s.mu.Unlock()
	if len(failed) > 0 {
		s.retry(f, &window{}, failed)
	}
	if finished {
		s.log.Info("reconcile done", "folder", f.String(), "documents", docs,
			"slices", slices, "took", time.Since(sw.started).Round(time.Millisecond))
	} else {
		s.log.Debug("reconcile slice done", "folder", f.String(), "checked", len(res.Checked),
			"left", res.Unchecked, "yielded", yielded)
	}
}

// sliceDocs is the number of documents a slice checks at most.
func (s *Scheduler) sliceDocs() int {
	if s.cfg.ReconcileRate < 0 {
		return unpacedSlice
	}
	return max(1, int(s.cfg.ReconcileRate*sliceTime.Seconds()))
}

// Write runs a write of relay-git-sync itself into folder f and records
// its snapshot (see Syncer.Write), which is then reported as any other.
func (s *Scheduler) Write(ctx context.Context, f store.FolderID, write func(context.Context) (*Request, error)) (*Result, error) {
	if s.cfg.Owns != nil && !s.cfg.Owns(ctx, f) {
		return nil, ErrNotOwner
	}
	start := time.Now()
	res, err := s.cfg.Syncer.Write(ctx, f, write)
	if res != nil {
		if s.cfg.OnSync != nil {
			s.cfg.OnSync(f, time.Since(start), res, nil)
		}
		s.recorded(ctx, f, res)
	}
	return res, err
}

// recorded updates the index after a successful sync and reports its
// snapshot.
func (s *Scheduler) recorded(ctx context.Context, f store.FolderID, res *Result) {
	s.mu.Lock()
	if res.Snapshot != nil {
		for _, file := range res.Snapshot.Files {
			s.owner[file.DocID] = f
		}
	}
	// The folder's documents are indexed now: those of the last snapshot
	// (or already indexed when nothing changed).
	s.known[f] = true
	s.mu.Unlock()
	if res.Snapshot != nil {
		s.log.Info("snapshot", "folder", f.String(), "seq", res.Snapshot.Seq, "changes", len(res.Snapshot.Changes), "files", len(res.Snapshot.Files))
		if s.cfg.OnSnapshot != nil {
			s.cfg.OnSnapshot(ctx, res.Snapshot)
		}
	}
}

// pacer spaces out reconcile checks: a token bucket of one second's
// worth, shared by all folders.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration // 0 = no limit
	burst    time.Duration
	next     time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate), burst: time.Second}
}

// wait blocks until the next check may start, or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	if earliest := now.Add(-p.burst); p.next.Before(earliest) {
		p.next = earliest
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	p.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// due returns the folders whose window is ready and not already syncing.
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

// claimWindow takes folder f's window (one due returned) and marks the
// folder as syncing.
func (s *Scheduler) claimWindow(f store.FolderID) *window {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.pending[f]
	delete(s.pending, f)
	s.running[f] = true
	return w
}

// syncOne syncs the documents of window w of folder f.
func (s *Scheduler) syncOne(ctx context.Context, f store.FolderID, w *window) {
	defer func() {
		s.mu.Lock()
		delete(s.running, f)
		s.mu.Unlock()
	}()

	req := Request{Folder: f, Time: w.newest, Dirty: w.docs}
	r, _ := s.cfg.Queue.(recorder)
	s.mu.Lock()
	for k, ev := range w.events {
		// An event a snapshot records already (its writer died before
		// acknowledging it) is acknowledged with the others, not recorded
		// again.
		if r != nil && r.Recorded(k, ev.id) {
			continue
		}
		if req.Events == nil {
			req.Events = map[uint64]EventRef{}
		}
		req.Events[k] = EventRef{Doc: ev.doc, ID: ev.id}
		if ev.user != "" {
			req.Users = append(req.Users, ev.user)
		}
	}
	s.mu.Unlock()
	start := time.Now()
	res, err := s.cfg.Syncer.SyncFolder(ctx, req)
	if s.cfg.OnSync != nil {
		s.cfg.OnSync(f, time.Since(start), res, err)
	}
	if ctx.Err() != nil {
		return // events stay in the queue for the next run
	}
	if errors.Is(err, store.ErrConflict) {
		if s.cfg.Owns != nil && s.cfg.Owns(ctx, f) {
			// Still this instance's (the replica was behind): the retry
			// leaves out what the other write recorded.
			s.log.Info("folder written meanwhile by another instance; will retry", "folder", f.String())
			s.retry(f, w, w.docs)
			return
		}
		// Another instance holds the folder now and takes these events
		// from the shared queue.
		s.log.Info("folder written by another instance: its lease moved, this sync is dropped", "folder", f.String())
		s.forget(w.keys())
		return
	}
	if err != nil {
		s.log.Warn("folder sync failed; will retry", "folder", f.String(), "attempt", w.attempts+1, "err", err)
		s.retry(f, w, w.docs)
		return
	}
	s.recorded(ctx, f, res)
	// What this sync fetched needs no check by a sweep that started
	// before it.
	s.mu.Lock()
	if sw := s.sweeps[f]; sw != nil && !sw.started.After(start) {
		for _, id := range res.Checked {
			sw.done[id] = true
		}
	}
	s.mu.Unlock()
	// Events of documents that failed stay queued and are retried.
	failed := map[string]bool{}
	for _, p := range res.Failed {
		failed[p.DocID] = true
	}
	var ack []uint64
	s.mu.Lock()
	keys := w.keys()
	s.mu.Unlock()
	if len(failed) == 0 {
		ack = keys
	}
	if len(ack) > 0 {
		if err := s.cfg.Queue.AckEvents(ack); err != nil {
			s.log.Error("acknowledging events", "folder", f.String(), "err", err)
		}
		s.mu.Lock()
		s.ackedLocked(ack)
		s.unacked -= len(ack)
		s.reportDepthLocked()
		s.mu.Unlock()
	}
	if len(failed) > 0 {
		s.retry(f, w, failed)
	}
}

// retry puts old's events back into folder f's window, with docs to fetch
// again, after an exponential backoff (1 s doubling to 5 min).
func (s *Scheduler) retry(f store.FolderID, old *window, docs map[string]bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.windowLocked(f, now)
	for d := range docs {
		w.docs[d] = true
	}
	maps.Copy(w.events, old.events)
	if old.newest.After(w.newest) {
		w.newest = old.newest
	}
	w.attempts = old.attempts + 1
	w.notBefore = now.Add(backoff(w.attempts))
}

// backoff is the wait before attempt n+1: 1 s doubling to 5 min.
func backoff(attempts int) time.Duration {
	return min(time.Second<<min(attempts-1, 9), 5*time.Minute)
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
