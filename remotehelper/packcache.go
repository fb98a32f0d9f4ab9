package remotehelper

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Kept packs. Synthesizing a whole history costs every clone the same
// work; a pack of it made once and kept serves every later clone, which
// then synthesizes only the snapshots after it (as a fetch does). Kept packs
// live in a directory of the data dir (PackDirName), one per folder:
//
//	packs/<relay>/<folder>/pack-<sum>.pack, .idx   the pack and its index
//	packs/<relay>/<folder>/kept.json               which one, up to which snapshot, with which history config
//
// `serve` keeps them (PackCache, GET …/pack) and rebuilds one in the
// background when the folder has moved on by more than KeptPackLag
// snapshots; a clone from a data dir no server holds links the pack it made
// there, for the next clone. A pack made with another history config (the
// commit ids differ) is never used.

// PackDirName is the kept packs' directory inside a data dir.
const PackDirName = "packs"

// KeptPackLag is how many snapshots a kept pack may lag the folder before
// it is rebuilt (server) or passed over (data dir): each clone synthesizes
// those itself.
const KeptPackLag = 256

// keptMeta is kept.json.
type keptMeta struct {
	Seq    uint64 `json:"seq"`
	Commit string `json:"commit"`
	Config string `json:"config"` // configKey of the history config
	Pack   string `json:"pack"`   // pack-<sum>
}

func keptDir(root string, f store.FolderID) string { return filepath.Join(root, f.Relay, f.Folder) }

func (m *keptMeta) paths(root string, f store.FolderID) (pack, idx string) {
	base := filepath.Join(keptDir(root, f), m.Pack)
	return base + ".pack", base + ".idx"
}

// configKey identifies a history config (which decides every commit id).
func configKey(cfg history.Config) string {
	b, _ := json.Marshal(cfg)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// readKept returns the kept pack of f, or nil when there is none.
func readKept(root string, f store.FolderID) (*keptMeta, error) {
	b, err := os.ReadFile(filepath.Join(keptDir(root, f), "kept.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m keptMeta
	if err := json.Unmarshal(b, &m); err != nil || m.Seq == 0 || !strings.HasPrefix(m.Pack, "pack-") || strings.ContainsAny(m.Pack, `/\`) {
		return nil, fmt.Errorf("kept pack of %s: malformed kept.json", f)
	}
	return &m, nil
}

// keepPack records pack (an installed pack-<sum>.pack with its .idx, anywhere)
// as f's kept pack: linked (else copied) into root, then kept.json points
// at it, and the pack it replaces is removed.
func keepPack(root string, f store.FolderID, m keptMeta, packPath string) error {
	dir := keptDir(root, f)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m.Pack = strings.TrimSuffix(filepath.Base(packPath), ".pack")
	dstPack, dstIdx := m.paths(root, f)
	srcIdx := strings.TrimSuffix(packPath, ".pack") + ".idx"
	for _, p := range [][2]string{{packPath, dstPack}, {srcIdx, dstIdx}} {
		if p[0] == p[1] {
			continue
		}
		if err := linkOrCopy(p[0], p[1]); err != nil {
			return err
		}
	}
	old, _ := readKept(root, f)
	b, _ := json.Marshal(m)
	tmp, err := os.CreateTemp(dir, "kept-*.json")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, "kept.json"))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if old != nil && old.Pack != m.Pack {
		// A clone reading it keeps its open file.
		op, oi := old.paths(root, f)
		os.Remove(oi)
		os.Remove(op)
	}
	return nil
}

// linkOrCopy makes dst a hard link of src (packs never change), or a copy
// on another file system.
func linkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), "tmp_relay_*")
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(out.Name(), 0o444)
	}
	if err == nil {
		err = os.Rename(out.Name(), dst)
	}
	if err != nil {
		os.Remove(out.Name())
	}
	return err
}

// firstPackWait is PackCache.wait.
const firstPackWait = 60 * time.Second

// PackCache keeps the packs `serve` hands out on GET …/pack.
type PackCache struct {
	root string
	src  source.Source
	log  *slog.Logger

	// wait is how long a request for a folder without a pack waits for the
	// build it starts: a first clone is faster downloading the pack than
	// fetching every blob, unless the history is so long that the build
	// would keep it waiting without a word.
	wait atomic.Int64 // a time.Duration

	mu       sync.Mutex
	building map[store.FolderID]chan struct{} // closed when built
	wg       sync.WaitGroup
	ctx      context.Context
	stop     context.CancelFunc
}

// NewPackCache keeps packs of src's folders under root (a data dir's
// PackDirName).
func NewPackCache(root string, src source.Source, log *slog.Logger) *PackCache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &PackCache{root: root, src: src, log: log, building: map[store.FolderID]chan struct{}{}, ctx: ctx, stop: stop}
	c.wait.Store(int64(firstPackWait))
	return c
}

// Close stops the builds under way and waits for them.
func (c *PackCache) Close() {
	c.stop()
	c.wg.Wait()
}

// Open returns the kept pack of folder f and its index (the caller closes
// them), the snapshot it ends at and that snapshot's commit, or nil files
// when there is none made with the current history config. When there is
// none, or it lags the folder by more than KeptPackLag snapshots, it starts
// building one in the background; when there is none it waits for that
// build for up to a minute.
func (c *PackCache) Open(ctx context.Context, f store.FolderID) (seq uint64, commit string, pack, idx *os.File, err error) {
	seq, commit, pack, idx, built, err := c.open(ctx, f)
	if built == nil {
		return seq, commit, pack, idx, err
	}
	t := time.NewTimer(time.Duration(c.wait.Load()))
	defer t.Stop()
	select {
	case <-built:
		seq, commit, pack, idx, _, err = c.open(ctx, f)
		return seq, commit, pack, idx, err
	case <-t.C:
	case <-ctx.Done():
	}
	return 0, "", nil, nil, nil
}

// open is Open without waiting: built is the build to wait for when there
// is no pack.
func (c *PackCache) open(ctx context.Context, f store.FolderID) (seq uint64, commit string, pack, idx *os.File, built <-chan struct{}, err error) {
	cfg, err := c.src.HistoryConfig(ctx)
	if err != nil {
		return 0, "", nil, nil, nil, err
	}
	head, err := c.src.Folder(ctx, f)
	if err != nil {
		return 0, "", nil, nil, nil, err
	}
	key := configKey(cfg)
	m, err := readKept(c.root, f)
	if err != nil {
		c.log.Warn("kept pack unreadable: rebuilding it", "folder", f, "err", err)
		m = nil
	}
	if m != nil && (m.Config != key || m.Seq > head.LatestSeq) {
		m = nil // another identity, or a rebuilt store
	}
	if head.LatestSeq > 0 && (m == nil || head.LatestSeq-m.Seq > KeptPackLag) {
		built = c.build(f)
	}
	if m == nil {
		return 0, "", nil, nil, built, nil
	}
	pp, ip := m.paths(c.root, f)
	if pack, err = os.Open(pp); err != nil {
		return 0, "", nil, nil, nil, nil // replaced meanwhile: the client synthesizes
	}
	if idx, err = os.Open(ip); err != nil {
		pack.Close()
		return 0, "", nil, nil, nil, nil
	}
	return m.Seq, m.Commit, pack, idx, nil, nil
}

// build synthesizes folder f's whole history into a new kept pack, in the
// background, unless that is under way; the channel is closed when it is
// done (nil when the cache is closed).
func (c *PackCache) build(f store.FolderID) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.building[f]; ok {
		return ch
	}
	if c.ctx.Err() != nil {
		return nil
	}
	ch := make(chan struct{})
	c.building[f] = ch
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.building, f)
			c.mu.Unlock()
			close(ch)
		}()
		if err := c.buildNow(c.ctx, f); err != nil && c.ctx.Err() == nil {
			c.log.Warn("building the kept pack of a folder failed; clones synthesize its history meanwhile", "folder", f, "err", err)
		}
	}()
	return ch
}

func (c *PackCache) buildNow(ctx context.Context, f store.FolderID) error {
	cfg, err := c.src.HistoryConfig(ctx)
	if err != nil {
		return err
	}
	dir := keptDir(c.root, f)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pw, err := newPackWriter(dir)
	if err != nil {
		return err
	}
	s := &synthesis{src: c.src, folder: f, cfg: cfg, pack: pw}
	res, err := s.run(ctx)
	if err != nil || res.tip.IsZero() {
		pw.abort()
		return err
	}
	keepFile, err := pw.finish()
	if err != nil {
		return err
	}
	os.Remove(keepFile) // no git here to protect it from
	packPath := strings.TrimSuffix(keepFile, ".keep") + ".pack"
	return keepPack(c.root, f, keptMeta{Seq: res.seq, Commit: res.tip.String(), Config: configKey(cfg)}, packPath)
}

// receivePack writes a pack and its index (from r: packSize bytes of pack,
// then the index) into packDir as pack-<sum>.{pack,idx}, after checking
// the pack's checksum and that the index is the index of that pack. It
// returns the pack's path.
func receivePack(r io.Reader, packSize int64, packDir string) (string, error) {
	pf, err := os.CreateTemp(packDir, "tmp_relay_*.pack")
	if err != nil {
		return "", err
	}
	defer os.Remove(pf.Name())
	sum := sha1.New()
	_, err = io.Copy(io.MultiWriter(pf, sum), io.LimitReader(r, packSize-20))
	var trailer [20]byte
	if err == nil {
		_, err = io.ReadFull(r, trailer[:])
	}
	if err == nil {
		_, err = pf.Write(trailer[:])
	}
	if cerr := pf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("receiving the pack: %w", err)
	}
	packSum := sum.Sum(nil)
	if string(packSum) != string(trailer[:]) {
		return "", errors.New("receiving the pack: its checksum does not match its content")
	}
	idx, err := io.ReadAll(io.LimitReader(r, 1<<31))
	if err != nil {
		return "", fmt.Errorf("receiving the pack's index: %w", err)
	}
	if n := len(idx); n < 8+256*4+40 || string(idx[n-40:n-20]) != string(packSum) || sha1Of(idx[:n-20]) != string(idx[n-20:]) {
		return "", errors.New("receiving the pack's index: it is not the index of that pack")
	}
	base := filepath.Join(packDir, "pack-"+hex.EncodeToString(packSum))
	if err := os.Chmod(pf.Name(), 0o444); err != nil {
		return "", err
	}
	if err := os.Rename(pf.Name(), base+".pack"); err != nil {
		return "", err
	}
	// The index last: git sees a pack once its index is there.
	if err := os.WriteFile(base+".idx.tmp", idx, 0o444); err != nil {
		return "", err
	}
	if err := os.Rename(base+".idx.tmp", base+".idx"); err != nil {
		os.Remove(base + ".idx.tmp")
		return "", err
	}
	return base + ".pack", nil
}

func sha1Of(b []byte) string {
	s := sha1.Sum(b)
	return string(s[:])
}

// installedPack is a kept pack a clone starts from.
type installedPack struct {
	pack string // its path in the repository
	tip  *localTip
}

func (p *installedPack) remove() {
	os.Remove(strings.TrimSuffix(p.pack, ".pack") + ".idx")
	os.Remove(p.pack)
}

// keptPacker is a source that hands out kept packs (the read API's GET
// …/pack).
type keptPacker interface {
	Pack(ctx context.Context, f store.FolderID) (*readapi.Pack, error)
}

// installKeptPack puts the kept pack of the target (the server's, or the
// data dir's) into the repository, if there is one made with cfg and it is
// not more than KeptPackLag snapshots behind latest; nil when there is none
// (anything going wrong only costs the synthesis it would have saved).
func (h *helper) installKeptPack(ctx context.Context, src source.Source, cfg history.Config, latest uint64) *installedPack {
	dir, err := h.repo.packDir(h.cfg.Getenv)
	if err != nil {
		return nil
	}
	var path, commit string
	var seq uint64
	if t := h.target; t.DataDir != "" {
		root := filepath.Join(t.DataDir, PackDirName)
		m, err := readKept(root, t.Folder)
		if err != nil || m == nil || m.Config != configKey(cfg) || m.Seq > latest || latest-m.Seq > KeptPackLag {
			return nil
		}
		pp, ip := m.paths(root, t.Folder)
		path = filepath.Join(dir, m.Pack+".pack")
		if linkOrCopy(pp, path) != nil {
			return nil
		}
		if linkOrCopy(ip, filepath.Join(dir, m.Pack+".idx")) != nil {
			os.Remove(path)
			return nil
		}
		seq, commit = m.Seq, m.Commit
	} else {
		kp, ok := src.(keptPacker)
		if !ok {
			return nil
		}
		p, err := kp.Pack(ctx, t.Folder)
		if err != nil {
			if !errors.Is(err, source.ErrNotFound) {
				h.log.Warn("downloading the server's pack failed; synthesizing the history instead", "err", err)
			}
			return nil
		}
		defer p.Body.Close()
		if p.Seq > latest {
			return nil
		}
		if path, err = receivePack(p.Body, p.PackSize, dir); err != nil {
			h.log.Warn("the server's pack is unusable; synthesizing the history instead", "err", err)
			return nil
		}
		seq, commit = p.Seq, p.Commit
	}
	ip := &installedPack{pack: path}
	id, parents, msg, err := h.repo.commitAt(ctx, commit)
	var tip *localTip
	if err == nil && id.String() == commit {
		tip, err = h.repo.tipAt(ctx, h.target.Folder, id, parents, msg)
	}
	if err != nil || tip == nil || tip.seq != seq {
		ip.remove()
		return nil
	}
	ip.tip = tip
	return ip
}
