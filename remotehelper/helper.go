package remotehelper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
)

// Branch is the one branch a relay:: remote has; HEAD points at it.
const Branch = "refs/heads/main"

// Config is what git gives a remote helper.
type Config struct {
	// Remote is argv[1]: the remote's name, or the URL for an anonymous
	// remote. The private ref is named after the URL, not the remote, so
	// renaming a remote keeps it.
	Remote string
	URL    string // argv[2]: the URL without its "relay::" prefix

	// Getenv reads the environment git runs the helper in (GIT_DIR,
	// RELAY_GIT_URL, RELAY_GIT_TOKEN, GIT_TERMINAL_PROMPT), and Environ is
	// all of it, for the git commands the helper runs.
	Getenv  func(string) string
	Environ []string
	Dir     string // working directory (GIT_DIR may be relative to it)

	Stdin  io.Reader
	Stdout io.Writer // the protocol, and nothing else
	Stderr io.Writer // messages and progress
}

// helper is one run of git-remote-relay.
type helper struct {
	cfg    Config
	target Target
	git    *gitRunner
	repo   *localRepo // nil outside a repository (git ls-remote)
	log    *slog.Logger
	out    *bufio.Writer

	// Options git set.
	progress          bool
	verbosity         int
	checkConnectivity bool
	cloning           bool
	dryRun            bool // git push --dry-run

	// What list found, for fetch and push.
	src     source.Source
	tip     plumbing.Hash
	tipSeq  uint64 // the snapshot tip stands for (0: none)
	listed  bool
	pack    *packWriter // objects to hand over at fetch; nil when none
	whole   bool        // the pack alone holds the whole history
	oldRef  plumbing.Hash
	kept    *installedPack // the kept pack the history starts from
	cfgKey  string         // configKey of the history config
	stats   string
	closing []chan struct{} // sources being closed
}

// Run speaks the remote helper protocol (gitremote-helpers(7)) on cfg's
// stdin and stdout until git is done, and returns an error that says what
// went wrong in terms a user can act on.
func Run(ctx context.Context, cfg Config) (err error) {
	h := &helper{cfg: cfg, verbosity: 1,
		log: slog.New(slog.NewTextHandler(cfg.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		out: bufio.NewWriter(cfg.Stdout)}
	h.git = &gitRunner{env: append([]string(nil), cfg.Environ...), dir: cfg.Dir}
	if gd := cfg.Getenv("GIT_DIR"); gd != "" { // "" for git ls-remote outside a repository
		if !filepath.IsAbs(gd) {
			gd = filepath.Join(cfg.Dir, gd)
			h.git.env = append(h.git.env, "GIT_DIR="+gd)
		}
		h.repo = &localRepo{git: h.git, gitDir: gd}
	}
	defer h.cleanup()

	h.target, err = ParseURL(cfg.URL, func() string { return h.defaultServer(ctx) }, cfg.Dir)
	if err != nil {
		return err
	}

	in := bufio.NewReader(cfg.Stdin)
	for {
		line, err := in.ReadString('\n')
		switch {
		case errors.Is(err, io.EOF) && line == "":
			return nil // git closed the pipe: done
		case err != nil && !errors.Is(err, io.EOF):
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return nil
		case line == "capabilities":
			h.printf("fetch\noption\npush\ncheck-connectivity\n\n")
		case strings.HasPrefix(line, "option "):
			h.printf("%s\n", h.option(strings.TrimPrefix(line, "option ")))
		case line == "list", line == "list for-push":
			if err := h.list(ctx, line == "list for-push"); err != nil {
				return err
			}
		case strings.HasPrefix(line, "push "):
			cmds := []string{line}
			for {
				l, err := in.ReadString('\n')
				if err != nil {
					return fmt.Errorf("reading git's push commands: %w", err)
				}
				l = strings.TrimSuffix(l, "\n")
				if l == "" {
					break
				}
				cmds = append(cmds, l)
			}
			if err := h.push(ctx, cmds); err != nil {
				return err
			}
		case strings.HasPrefix(line, "fetch "):
			refs := []string{line}
			for {
				l, err := in.ReadString('\n')
				if err != nil {
					return fmt.Errorf("reading git's fetch commands: %w", err)
				}
				l = strings.TrimSuffix(l, "\n")
				if l == "" {
					break
				}
				refs = append(refs, l)
			}
			if err := h.fetch(ctx, refs); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unsupported remote helper command %q (git too new?)", line)
		}
		if err := h.out.Flush(); err != nil {
			return err
		}
	}
}

func (h *helper) printf(format string, a ...any) { fmt.Fprintf(h.out, format, a...) }

// defaultServer is where relay::<relay>/<folder> goes: git config
// relay.url, else $RELAY_GIT_URL, else DefaultServer.
func (h *helper) defaultServer(ctx context.Context) string {
	if out, err := h.git.output(ctx, nil, "config", "--get", "relay.url"); err == nil {
		if s := strings.TrimSpace(string(out)); s != "" {
			return s
		}
	}
	if s := h.cfg.Getenv(EnvServerURL); s != "" {
		return s
	}
	return DefaultServer
}

func (h *helper) option(opt string) string {
	name, value, _ := strings.Cut(opt, " ")
	switch name {
	case "progress":
		h.progress = value == "true"
	case "verbosity":
		n, err := strconv.Atoi(value)
		if err != nil {
			return "error invalid verbosity"
		}
		h.verbosity = n
	case "check-connectivity":
		h.checkConnectivity = value == "true"
	case "cloning":
		h.cloning = value == "true"
	case "dry-run":
		h.dryRun = value == "true"
	case "followtags":
	default:
		return "unsupported"
	}
	return "ok"
}

// privateRef is where the helper records the last commit it fetched into
// this repository for the target.
func (h *helper) privateRef() string { return "refs/relay/" + h.target.key() + "/heads/main" }

// list synthesizes the history up to the latest snapshot (writing the
// objects this repository lacks into a pending pack) and lists the branch.
// For a push nothing is written, and the source stays open for the push.
func (h *helper) list(ctx context.Context, forPush bool) error {
	start := time.Now()
	if h.pack != nil { // a second list: start over
		h.pack.abort()
		h.pack = nil
	}
	h.tip, h.tipSeq, h.oldRef, h.whole, h.stats = plumbing.ZeroHash, 0, plumbing.ZeroHash, false, ""
	if h.kept != nil {
		h.kept.remove()
		h.kept = nil
	}
	if h.src != nil { // left open by a list for push: a data dir must be let go before it is opened again
		h.src.Close()
		h.src = nil
	}
	// What the repository has, read while the source opens (a data dir's
	// store takes a while): both are on every fetch's path.
	type tipResult struct {
		base *localTip
		err  error
	}
	var tipDone chan tipResult
	if h.repo != nil {
		tipDone = make(chan tipResult, 1)
		go func() {
			base, err := h.localTip(ctx)
			if base != nil && err == nil && !forPush {
				h.repo.startBatch(ctx) // for the walk's hasObject
			}
			tipDone <- tipResult{base, err}
		}()
	}
	src, cfg, err := h.connect(ctx, forPush)
	var base *localTip
	if tipDone != nil {
		r := <-tipDone
		if err == nil {
			base, err = r.base, r.err
		}
	}
	if err != nil {
		if src != nil {
			src.Close()
		}
		return err
	}
	h.src = src
	h.cfgKey = configKey(cfg)
	if !forPush {
		defer h.closeSource()
	}
	f := h.target.Folder
	for {
		var after uint64
		if base != nil {
			after = base.seq
		}
		head, err := src.Folder(ctx, f)
		if err != nil {
			return err
		}
		latest := head.LatestSeq
		if base == nil && h.kept == nil && h.repo != nil && !forPush && latest > 0 {
			// A first fetch: start from the kept pack, if there is one.
			if h.kept = h.installKeptPack(ctx, src, cfg, latest); h.kept != nil {
				base = h.kept.tip
				continue
			}
		}
		if base != nil && base.seq > latest {
			// The server's history is shorter than this repository's
			// (a rebuilt data dir): start afresh.
			base = nil
			continue
		}
		if latest == 0 {
			h.listed = true
			h.printf("\n") // no snapshots yet: an empty repository
			return nil
		}
		s := &synthesis{src: src, folder: f, cfg: cfg, base: base}
		if base != nil {
			s.repo = h.repo
		}
		if h.repo != nil && latest > after && !forPush {
			dir, err := h.repo.packDir(h.cfg.Getenv)
			if err != nil {
				return err
			}
			if s.pack, err = newPackWriter(dir); err != nil {
				return err
			}
			h.pack = s.pack
		}
		if h.progress && h.verbosity > 0 && !forPush {
			switch {
			case h.kept != nil: // the kept pack's snapshots count as imported
				s.prog = newProgress(h.cfg.Stderr, "Importing snapshots", latest)
				s.prog.add(after)
			case latest > after:
				s.prog = newProgress(h.cfg.Stderr, "Importing snapshots", latest-after)
			}
		}
		res, err := s.run(ctx)
		if err != nil {
			return err
		}
		if res.mismatch {
			// Another history: the server's identity changed, or its
			// store was rebuilt. Synthesize all of it.
			if h.verbosity > 0 && h.kept == nil {
				fmt.Fprintf(h.cfg.Stderr, "relay: the server's history no longer has this repository's last commit (%s); fetching all of it\n", base.commit)
			}
			if s.pack != nil {
				s.pack.abort()
				h.pack = nil
			}
			if h.kept != nil {
				h.kept.remove()
				h.kept = nil
			}
			base = nil
			continue
		}
		s.prog.done()
		if base != nil && h.kept == nil {
			h.oldRef = base.commit
		}
		h.tip, h.tipSeq, h.whole = res.tip, res.seq, base == nil
		h.stats = fmt.Sprintf("%d new snapshots, %d blobs, %d objects in %.2fs", res.commits, res.blobs, h.packCount(), time.Since(start).Seconds())
		break
	}
	h.listed = true
	h.printf("%s %s\n@%s HEAD\n\n", h.tip, Branch, Branch)
	return nil
}

func (h *helper) packCount() int {
	if h.pack == nil {
		return 0
	}
	return h.pack.count()
}

// localTip returns what this repository already has of the target: the
// commit of the helper's private ref and its snapshot, or nil.
func (h *helper) localTip(ctx context.Context) (*localTip, error) {
	id, parents, msg, err := h.repo.commitAt(ctx, h.privateRef())
	if err != nil || id.IsZero() {
		return nil, err
	}
	return h.repo.tipAt(ctx, h.target.Folder, id, parents, msg)
}

// fetch hands git the pending pack and records the new tip.
func (h *helper) fetch(ctx context.Context, cmds []string) error {
	for _, c := range cmds {
		f := strings.Fields(c)
		if len(f) < 3 || f[0] != "fetch" {
			return fmt.Errorf("malformed fetch command %q", c)
		}
		if h.tip.IsZero() || f[1] != h.tip.String() {
			return fmt.Errorf("git asked for %s %s, which this remote did not list", f[1], f[2])
		}
	}
	var keep string
	if h.pack != nil {
		var err error
		if h.pack.count() > 0 {
			if keep, err = h.pack.finish(); err != nil {
				return fmt.Errorf("writing the pack: %w", err)
			}
		} else {
			h.pack.abort()
		}
		h.pack = nil
	}
	if h.repo != nil && h.tip != h.oldRef {
		// Only a shortcut for the next fetch (which starts from an older
		// commit, or from scratch, without it): not worth failing this one,
		// nor waiting for before git goes on (cleanup waits for it).
		done := make(chan struct{})
		h.closing = append(h.closing, done)
		ref, tip, old := h.privateRef(), h.tip, h.oldRef
		go func() {
			defer close(done)
			if err := h.repo.updateRef(context.WithoutCancel(ctx), ref, tip, old); err != nil {
				h.log.Warn("could not record the fetched commit; the next fetch will redo some work", "ref", ref, "err", err)
			}
		}()
	}
	if h.cloning && h.target.relative && h.repo != nil {
		h.absoluteRemoteURL(ctx)
	}
	if h.verbosity > 1 && h.stats != "" {
		fmt.Fprintf(h.cfg.Stderr, "relay: %s\n", h.stats)
	}
	if keep != "" && h.target.DataDir != "" && h.whole {
		// The whole history, synthesized: kept in the data dir for the
		// next clone (a hard link; nothing lost if it fails).
		m := keptMeta{Seq: h.tipSeq, Commit: h.tip.String(), Config: h.cfgKey}
		if err := keepPack(filepath.Join(h.target.DataDir, PackDirName), h.target.Folder, m, strings.TrimSuffix(keep, ".keep")+".pack"); err != nil {
			h.log.Debug("could not keep the pack in the data dir", "err", err)
		}
	}
	if keep != "" {
		h.printf("lock %s\n", keep)
	}
	// The pack holds everything the new commits reach that the repository
	// lacks: what the base commit reaches (the kept pack, or a ref points
	// at it) is there, every other tree and blob is in the pack. So git
	// need not walk the new objects to check.
	if (keep != "" || h.kept != nil) && h.checkConnectivity {
		h.printf("connectivity-ok\n")
	}
	h.kept = nil // fetched: stays
	h.printf("\n")
	return nil
}

// absoluteRemoteURL makes the URL of a remote cloned from a relative data
// dir path absolute (as git does for a clone from a relative path), so that
// later fetches, run from the repository, find the data dir.
func (h *helper) absoluteRemoteURL(ctx context.Context) {
	key := "remote." + h.cfg.Remote + ".url"
	out, err := h.git.output(ctx, nil, "config", "--get", key)
	if err != nil || strings.TrimSpace(string(out)) != "relay::"+h.cfg.URL {
		return // an anonymous remote, or not ours
	}
	abs := "relay::" + h.target.DataDir + "/" + h.target.Folder.String()
	if _, err := h.git.output(ctx, nil, "config", key, abs); err != nil {
		h.log.Warn("could not make the remote's URL absolute", "remote", h.cfg.Remote, "err", err)
	}
}

// closeSource closes the source in the background: everything list
// needs is read by then, and closing a data dir's store takes a while
// (Badger flushes and stops its compactors), time git spends meanwhile
// checking and updating its refs.
func (h *helper) closeSource() {
	if h.src == nil {
		return
	}
	src, done := h.src, make(chan struct{})
	h.src = nil
	h.closing = append(h.closing, done)
	go func() {
		defer close(done)
		if err := src.Close(); err != nil {
			h.log.Warn("closing the data dir", "err", err)
		}
	}()
}

func (h *helper) cleanup() {
	if h.pack != nil {
		h.pack.abort()
	}
	if h.kept != nil { // listed, never fetched
		h.kept.remove()
	}
	h.closeSource()
	for _, done := range h.closing {
		<-done
	}
	if h.repo != nil {
		h.repo.close()
	}
	h.out.Flush()
}
