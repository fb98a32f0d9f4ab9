package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/sshkey"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Packer names how packs are encoded (Config.Packer).
const (
	// PackerAuto uses `git pack-objects` for pushes of many objects when
	// git is installed, and go-git otherwise (see BenchmarkPushLongHistory
	// and the package documentation for the figures behind the choice).
	PackerAuto = ""
	// PackerGoGit always uses go-git's encoder (pure Go).
	PackerGoGit = "go-git"
	// PackerGit always uses `git pack-objects` (fails without git).
	PackerGit = "git"
)

// gitPackThreshold is the number of objects from which PackerAuto hands
// the pack to C git: below it go-git is as fast (no process to start).
const gitPackThreshold = 2000

// Config configures a Manager.
type Config struct {
	Store   store.Backend
	DataDir string // mirrors live in <DataDir>/mirrors, known_hosts in <DataDir>
	// Connectors to push (duplicates of one target are pushed once).
	Connectors []connectors.Connector
	// History decides the commits; it must be the one the remote helper
	// uses, so that pure pushes carry the same commit ids.
	History history.Config
	// SSHKey authenticates SSH remotes (nil: SSH connectors fail with
	// SSHKeyErr, or sshkey.ErrNotConfigured).
	SSHKey    *sshkey.Key
	SSHKeyErr error
	// Getenv reads RELAY_GIT_HTTPS_TOKEN and RELAY_GIT_HTTPS_USERNAME
	// (default os.Getenv).
	Getenv func(string) string
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the delay before retrying a failed
	// push (doubling from MinBackoff; defaults 5 s and 10 min).
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one push attempt (default 30 min: a first push
	// of a long history to a slow remote takes a while).
	AttemptTimeout time.Duration
	// Workers bounds attempts running at once (default 4).
	Workers int
	// Packer chooses the pack encoder (PackerAuto by default).
	Packer string
	// OnResult, when set, is told how every attempt went (metrics, tests).
	OnResult func(Result)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Owns, when set, says whether this process may push folder f now
	// (several serve instances on one shared store: only the holder of
	// f's lease pushes). A folder it does not own is skipped until the
	// next Notify; the new holder is notified when it takes the lease.
	Owns func(f store.FolderID) bool
}

// Manager pushes the snapshots of followed folders to their connectors.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	conns    []*connector
	byFolder map[store.FolderID][]*connector
	sem      chan struct{}
	deps     remoteDeps
	gitBin   string // "" when git is not installed

	statusMu sync.Mutex
	status   map[string]Status // by connector key (folder + id)

	khMu sync.Mutex // guards deps.knownHosts
}

// connector is one connector's push machinery and worker state.
type connector struct {
	m       *Manager
	conn    connectors.Connector
	id      string
	folder  store.FolderID
	dir     string // mirror repository
	display string // url without credentials

	mu      sync.Mutex // one attempt at a time
	repo    *repo
	synth   *history.Synthesizer
	remote  *remote
	written map[plumbing.Hash]bool

	wake chan struct{}
	held uint64 // Result.Held of the last successful attempt (status file)

	// beforeSend and afterBuild, when set (tests), run just before the
	// pack is sent and just after the commits are built.
	beforeSend, afterBuild func()
}

// ConnectorID is the id under which a connector's push state and mirror
// repository are kept: a hash of its url, branch and prefix (so editing
// any of them starts afresh, while reordering the file does not).
func ConnectorID(c connectors.Connector) string {
	sum := sha256.Sum256([]byte(c.URL + "\x00" + c.Branch + "\x00" + c.Prefix))
	return hex.EncodeToString(sum[:8])
}

// MirrorPath is where the mirror repository of connector c lives.
func MirrorPath(dataDir string, c connectors.Connector) string {
	return filepath.Join(dataDir, "mirrors", c.RelayID, c.SharedFolderID, ConnectorID(c)+".git")
}

// New prepares a Manager; nothing is pushed before Run or PushFolder.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("mirror: no store")
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 5 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Minute, cfg.MinBackoff)
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 30 * time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch cfg.Packer {
	case PackerAuto, PackerGoGit, PackerGit:
	default:
		return nil, fmt.Errorf("mirror: unknown packer %q", cfg.Packer)
	}
	m := &Manager{
		cfg: cfg, log: cfg.Logger.With("component", "mirror"),
		byFolder: map[store.FolderID][]*connector{},
		sem:      make(chan struct{}, cfg.Workers),
		status:   map[string]Status{},
	}
	if p, err := exec.LookPath("git"); err == nil {
		m.gitBin = p
	} else if cfg.Packer == PackerGit {
		return nil, errors.New("mirror: packer git: git is not installed")
	}
	m.deps = remoteDeps{
		key: cfg.SSHKey, keyErr: cfg.SSHKeyErr, getenv: cfg.Getenv,
		httpClient: &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 5 * time.Minute,
			IdleConnTimeout:       90 * time.Second,
		}},
	}
	seen := map[string]bool{}
	for _, c := range cfg.Connectors {
		f := store.FolderID{Relay: c.RelayID, Folder: c.SharedFolderID}
		id := ConnectorID(c)
		if seen[f.String()+"/"+id] {
			m.log.Warn("skipping a duplicate connector", "folder", f.String(), "url", connectors.Redact(c.URL), "line", c.Line)
			continue
		}
		seen[f.String()+"/"+id] = true
		k := &connector{
			m: m, conn: c, id: id, folder: f, dir: MirrorPath(cfg.DataDir, c),
			display: connectors.Redact(c.URL), written: map[plumbing.Hash]bool{},
			wake: make(chan struct{}, 1),
		}
		m.conns = append(m.conns, k)
		m.byFolder[f] = append(m.byFolder[f], k)
	}
	return m, nil
}

func (m *Manager) now() time.Time { return m.cfg.Now() }

// packerFor picks the encoder for a pack of n objects.
func (m *Manager) packerFor(n int) packer {
	switch {
	case m.cfg.Packer == PackerGit:
		return gitPacker(m.gitBin)
	case m.cfg.Packer == PackerAuto && m.gitBin != "" && n >= gitPackThreshold:
		return gitPacker(m.gitBin)
	}
	return goGitPacker(PackWindow)
}

// Folders returns the folders that have connectors.
func (m *Manager) Folders() []store.FolderID {
	out := make([]store.FolderID, 0, len(m.byFolder))
	for f := range m.byFolder {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// SetOwns sets Config.Owns before Run (serve learns it after building
// the manager).
func (m *Manager) SetOwns(owns func(f store.FolderID) bool) { m.cfg.Owns = owns }

// Notify tells the Manager that folder f has a new snapshot. It never
// blocks: the folder's connectors push in their own goroutines (see Run),
// and a snapshot that arrives while a push is pending or running is
// included in the next push rather than queued.
func (m *Manager) Notify(f store.FolderID) {
	for _, k := range m.byFolder[f] {
		k.poke()
	}
}

func (k *connector) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Run pushes until ctx ends: every connector once at start (to catch up
// with snapshots recorded while nothing pushed), then after each Notify.
// A failed push is retried with exponential backoff; a connector's
// failure never holds up another's. Run returns when ctx ends and running
// attempts have stopped.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.prepareKnownHosts(); err != nil {
		m.log.Warn("known_hosts", "err", err)
	}
	var wg sync.WaitGroup
	for _, k := range m.conns {
		k.poke()
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.loop(ctx)
		}()
	}
	wg.Wait()
	m.closeRepos()
	return nil
}

// loop is a connector's worker: it waits for a snapshot (or the retry
// time), pushes, and backs off after failures.
func (k *connector) loop(ctx context.Context) {
	m := k.m
	var retry <-chan time.Time
	var timer *time.Timer
	var due time.Time // retry not before (zero: no backoff)
	pending := false
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.wake:
			pending = true
		case <-retry:
			retry = nil
			pending = true
		}
		if !pending {
			continue
		}
		if wait := due.Sub(m.now()); wait > 0 {
			// Backing off: the pending snapshot goes with the retry.
			if retry == nil {
				timer = time.NewTimer(wait)
				retry = timer.C
			}
			continue
		}
		pending = false
		if m.cfg.Owns != nil && !m.cfg.Owns(k.folder) {
			continue
		}
		res, failures := k.attempt(ctx, true)
		if ctx.Err() != nil {
			return
		}
		if res.Err == nil {
			due = time.Time{}
			continue
		}
		delay := m.backoff(failures)
		due = m.now().Add(delay)
		if timer != nil {
			timer.Stop()
		}
		timer = time.NewTimer(delay)
		retry = timer.C
	}
}

// backoff is the delay after n consecutive failures.
func (m *Manager) backoff(n int) time.Duration {
	d := m.cfg.MinBackoff
	for i := 1; i < n && d < m.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, m.cfg.MaxBackoff)
}

// attempt runs one push of k, bounded by AttemptTimeout and by the
// Manager's worker limit, records a failure in the push state (with the
// next retry's time when scheduled), and reports it. It returns the
// number of failed attempts in a row.
func (k *connector) attempt(ctx context.Context, scheduled bool) (Result, int) {
	m := k.m
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		res := k.result()
		res.Err = ctx.Err()
		return res, 0
	}
	defer func() { <-m.sem }()
	ctx, cancel := context.WithTimeout(ctx, m.cfg.AttemptTimeout)
	defer cancel()
	k.mu.Lock()
	defer k.mu.Unlock()
	start := time.Now()
	res := k.pushOnce(ctx)
	res.Took = time.Since(start)
	if res.Err == nil {
		k.maybeRepack()
	}
	switch {
	case res.Err != nil:
		m.log.Warn("push failed", "folder", k.folder.String(), "connector", k.display, "branch", k.conn.Branch, "err", res.Err)
	case res.UpToDate && res.Held != 0:
		m.log.Info("holding back a mass deletion: the branch stays at the last snapshot before it until `relay-git-sync held release` or `held drop`",
			"folder", k.folder.String(), "connector", k.display, "branch", k.conn.Branch, "snapshot", res.Seq, "held_from", res.Held)
	case res.UpToDate:
		m.log.Debug("up to date", "folder", k.folder.String(), "connector", k.display, "branch", k.conn.Branch, "snapshot", res.Seq)
	default:
		m.log.Info("pushed", "folder", k.folder.String(), "connector", k.display, "branch", k.conn.Branch,
			"snapshot", res.Seq, "commit", res.Commit.String(), "commits", res.Commits, "objects", res.Objects,
			"merged", res.Merged, "took", res.Took.Round(time.Millisecond))
	}
	failures := 0
	if res.Err != nil && ctx.Err() == nil {
		// (An attempt cut short by shutdown is no failure of the remote.)
		prev, _ := k.state()
		failures = 1
		if prev != nil {
			failures = prev.Attempts + 1
		}
		var next time.Time
		if scheduled {
			next = m.now().Add(m.backoff(failures))
		}
		k.recordFailure(res.Err, failures, next)
	} else {
		k.updateStatus(res)
	}
	if m.cfg.OnResult != nil {
		m.cfg.OnResult(res)
	}
	return res, failures
}

// recordFailure keeps a failure in the push state (the last pushed commit
// stays as it was).
func (k *connector) recordFailure(err error, attempts int, next time.Time) {
	prev, serr := k.state()
	if serr != nil {
		k.m.log.Error("reading push state", "connector", k.display, "err", serr)
		return
	}
	ps := k.baseState(prev)
	ps.Attempts, ps.LastError, ps.ErrorAt, ps.NextAttempt = attempts, err.Error(), k.m.now(), next
	if serr := k.m.cfg.Store.SetPushState(k.folder, k.id, ps, nil); serr != nil {
		k.m.log.Error("recording push failure", "connector", k.display, "err", serr)
	}
	k.m.setStatus(k, ps)
}

func (k *connector) result() Result {
	return Result{Folder: k.folder, Connector: k.id, URL: k.display, Branch: k.conn.Branch, Prefix: k.conn.Prefix}
}

func (k *connector) getRemote() (*remote, error) {
	if k.remote != nil {
		return k.remote, nil
	}
	if err := k.m.prepareKnownHosts(); err != nil {
		return nil, err
	}
	k.m.khMu.Lock()
	deps := k.m.deps
	k.m.khMu.Unlock()
	r, err := newRemote(k.conn, deps)
	if err != nil {
		return nil, err
	}
	k.remote = r
	return r, nil
}

func (k *connector) getRepo() (*repo, error) {
	if k.repo != nil {
		return k.repo, nil
	}
	r, err := openRepo(k.dir)
	if err != nil {
		return nil, err
	}
	k.repo = r
	k.synth = k.newSynth(r)
	return r, nil
}

// newSynth returns the Synthesizer that writes into r, reading the packs
// of pushed commits from the store.
func (k *connector) newSynth(r *repo) *history.Synthesizer {
	return history.New(k.m.cfg.History, countingStorer{r.st, &r.loose}).ReadPacksWith(k.m.cfg.Store.Blob)
}

// maybeRepack packs the mirror's loose objects when there are many.
func (k *connector) maybeRepack() {
	r := k.repo
	if r == nil || r.loose < repackThreshold {
		return
	}
	start := time.Now()
	n := r.loose
	if err := r.repack(k.m.gitBin); err != nil {
		k.m.log.Warn("packing the mirror repository", "connector", k.display, "err", err)
		return
	}
	r.loose = 0
	// The synthesizer holds the old storage: start a new one on the new.
	k.synth = k.newSynth(r)
	k.m.log.Debug("packed the mirror repository", "connector", k.display, "objects", n, "took", time.Since(start).Round(time.Millisecond))
}

// prepareKnownHosts creates the data dir's known_hosts on first use.
func (m *Manager) prepareKnownHosts() error {
	m.khMu.Lock()
	defer m.khMu.Unlock()
	if m.deps.knownHosts != nil {
		return nil
	}
	needSSH := false
	for _, k := range m.conns {
		if kind, _ := connectors.ClassifyURL(k.conn.URL); kind == connectors.URLSSH {
			needSSH = true
		}
	}
	if !needSSH {
		return nil
	}
	path, err := EnsureKnownHosts(m.cfg.DataDir)
	if err != nil {
		return err
	}
	m.deps.knownHosts = []string{path}
	return nil
}

func (m *Manager) closeRepos() {
	for _, k := range m.conns {
		k.mu.Lock()
		if k.repo != nil {
			k.repo.close()
			k.repo, k.synth = nil, nil
		}
		k.mu.Unlock()
	}
}

// Close releases the mirror repositories (after PushFolder; Run closes
// them itself).
func (m *Manager) Close() error {
	m.closeRepos()
	return nil
}

// PushFolder pushes folder f to each of its connectors now, one after the
// other, and returns how each went (none when f has no connector). Failures
// are recorded in the push state as in Run, without a retry.
func (m *Manager) PushFolder(ctx context.Context, f store.FolderID) []Result {
	var out []Result
	for _, k := range m.byFolder[f] {
		res, _ := k.attempt(ctx, false)
		out = append(out, res)
	}
	return out
}

// Status is a connector's push state as `connectors status` shows it.
type Status struct {
	Folder      store.FolderID `json:"folder"`
	Connector   string         `json:"connector"`
	URL         string         `json:"url"`
	Branch      string         `json:"branch"`
	Prefix      string         `json:"prefix"`
	Commit      string         `json:"commit,omitempty"`
	Seq         uint64         `json:"seq,omitempty"`
	PushedAt    time.Time      `json:"pushed_at,omitzero"`
	Attempts    int            `json:"attempts,omitempty"`
	LastError   string         `json:"last_error,omitempty"`
	ErrorAt     time.Time      `json:"error_at,omitzero"`
	NextAttempt time.Time      `json:"next_attempt,omitzero"`
	// Held is the folder's first snapshot held by the mass-deletion guard
	// as of the last attempt (zero: none).
	Held uint64 `json:"held,omitempty"`
}

// StatusOf turns a push state into a Status.
func StatusOf(f store.FolderID, conn string, ps *store.PushState) Status {
	s := Status{Folder: f, Connector: conn, URL: ps.URL, Branch: ps.Branch, Prefix: ps.Prefix, Seq: ps.Seq,
		PushedAt: ps.PushedAt, Attempts: ps.Attempts, LastError: ps.LastError, ErrorAt: ps.ErrorAt, NextAttempt: ps.NextAttempt}
	if !isZero(ps.Commit) {
		s.Commit = plumbing.Hash(ps.Commit).String()
	}
	return s
}

// StatusFile is where a running Manager keeps the status of its
// connectors, for `connectors status` while `serve` holds the store.
func StatusFile(dataDir string) string { return filepath.Join(dataDir, "mirrors", "status.json") }

// StatusSnapshot is the content of the status file.
type StatusSnapshot struct {
	Updated    time.Time `json:"updated"`
	Connectors []Status  `json:"connectors"`
}

func (k *connector) updateStatus(res Result) {
	ps, err := k.state()
	if err != nil {
		return
	}
	k.held = res.Held
	k.m.setStatus(k, ps)
}

func (m *Manager) setStatus(k *connector, ps *store.PushState) {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	s := StatusOf(k.folder, k.id, ps)
	s.Held = k.held
	m.status[k.folder.String()+"/"+k.id] = s
	snap := StatusSnapshot{Updated: m.now().UTC()}
	for _, s := range m.status {
		snap.Connectors = append(snap.Connectors, s)
	}
	sort.Slice(snap.Connectors, func(i, j int) bool {
		a, b := snap.Connectors[i], snap.Connectors[j]
		if a.Folder != b.Folder {
			return a.Folder.String() < b.Folder.String()
		}
		return a.Connector < b.Connector
	})
	if err := writeJSONAtomic(StatusFile(m.cfg.DataDir), snap); err != nil {
		m.log.Debug("writing status file", "err", err)
	}
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".status-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadStatusFile reads the status file a running Manager keeps.
func ReadStatusFile(dataDir string) (*StatusSnapshot, error) {
	data, err := os.ReadFile(StatusFile(dataDir))
	if err != nil {
		return nil, err
	}
	var s StatusSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", StatusFile(dataDir), err)
	}
	return &s, nil
}
