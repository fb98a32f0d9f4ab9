package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"

	"github.com/relay-git-sync/relay-git-sync/internal/gitpath"
	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Result is how one push attempt of one connector went.
type Result struct {
	Folder    store.FolderID
	Connector string // connector id (see ConnectorID)
	URL       string // without credentials
	Branch    string
	Prefix    string

	// Seq is the snapshot the branch now carries, in Commit (zero when
	// the folder has no snapshot yet).
	Seq    uint64
	Commit plumbing.Hash
	// Commits is the number of commits sent (snapshot commits, plus the
	// merge when the branch had moved); Objects the number of objects.
	Commits, Objects int
	// Merged reports that the branch had commits that were not ours, kept
	// by a merge commit.
	Merged bool
	// UpToDate reports that there was nothing to push.
	UpToDate bool
	// Fetched reports that the remote branch had to be fetched.
	Fetched bool
	// Held is the folder's first held snapshot (zero: none): it and every
	// later one wait for `relay-git-sync held release` or `drop`; Seq is
	// at most the one before it.
	Held uint64
	Took time.Duration
	Err  error
}

// maxRounds bounds the connect–build–push rounds of one attempt: a round
// ends early when the remote branch must be fetched first, or when the
// push was rejected because someone pushed meanwhile.
const maxRounds = 6

// ancestryLimit bounds the commits read to decide whether the remote
// branch already contains our last commit; past it a merge is made (which
// can be redundant, never wrong).
const ancestryLimit = 20000

// sessionIdle is how long a receive-pack session may wait for the pack
// while commits are built before a fresh one is taken (a variable for
// tests).
var sessionIdle = 10 * time.Second

// walkBatch is how many snapshots are taken from the store per read
// transaction while building commits.
const walkBatch = 256

// plan is what build made: the commit to push and the state it leaves.
type plan struct {
	head    plumbing.Hash
	seq     uint64
	linear  bool
	owned   map[string]bool // empty prefix: every path the folder has had
	commits int
	merged  bool
	// contained: the remote branch already holds head (up to date).
	contained bool
}

// pushOnce brings the connector's branch up to date with the folder's
// latest snapshot. It is the body of an attempt; k.mu is held.
func (k *connector) pushOnce(ctx context.Context) Result {
	res := k.result()
	st := k.m.cfg.Store
	latest, err := st.Latest(k.folder)
	if errors.Is(err, store.ErrNotFound) {
		res.UpToDate = true
		return res
	}
	if err != nil {
		res.Err = err
		return res
	}
	// A held mass deletion and everything after it waits for the
	// operator; dropped snapshots are skipped (store/held.go).
	upTo := latest.Seq
	hold, err := st.Held(k.folder)
	if err != nil {
		res.Err = err
		return res
	}
	if hold != nil && upTo >= hold.From {
		upTo, res.Held = hold.From-1, hold.From
	}
	dropped, err := st.Dropped(k.folder)
	if err != nil {
		res.Err = err
		return res
	}
	ps, err := k.state()
	if err != nil {
		res.Err = err
		return res
	}
	if !isZero(ps.Commit) && ps.Seq >= upTo || upTo == 0 {
		res.UpToDate, res.Seq, res.Commit = true, ps.Seq, plumbing.Hash(ps.Commit)
		return res
	}
	var owned []string
	if k.conn.Prefix == "" && !isZero(ps.Commit) {
		if owned, err = st.PushOwned(k.folder, k.id); err != nil {
			res.Err = err
			return res
		}
	}
	rem, err := k.getRemote()
	if err != nil {
		res.Err = err
		return res
	}
	r, err := k.getRepo()
	if err != nil {
		res.Err = err
		return res
	}
	branch := plumbing.NewBranchReferenceName(k.conn.Branch)
	var rejected error
	var rejectedAt plumbing.Hash
	for round := 0; round < maxRounds; round++ {
		if err := ctx.Err(); err != nil {
			res.Err = err
			return res
		}
		sess, ar, err := rem.receivePack(ctx)
		if err != nil {
			res.Err = err
			return res
		}
		opened := time.Now()
		remoteHead, haves := advertised(ar, branch)
		if rejected != nil && remoteHead == rejectedAt {
			// Refused although nobody pushed meanwhile: a hook, a
			// protected branch, permissions. Retrying now would not help.
			sess.Close()
			res.Err = rejected
			return res
		}
		if !remoteHead.IsZero() && !r.has(remoteHead) {
			// Someone else pushed (or the branch predates us): fetch it,
			// then start the round again on a fresh session.
			sess.Close()
			if err := rem.fetch(ctx, r.st, k.conn.Branch, refRemote); err != nil {
				res.Err = err
				return res
			}
			res.Fetched = true
			continue
		}
		p, err := k.build(ctx, ps, owned, remoteHead, upTo, dropped)
		if err != nil {
			sess.Close()
			res.Err = err
			return res
		}
		if p.contained || p.head == remoteHead {
			// The branch already holds head (an earlier push whose state
			// was lost, or nothing new): record it, send nothing.
			sess.Close()
			res.UpToDate = true
			res.Seq, res.Commit = p.seq, p.head
			res.Err = k.saveSuccess(p)
			return res
		}
		if k.afterBuild != nil {
			k.afterBuild()
		}
		if time.Since(opened) > sessionIdle {
			// A long build (a first push of a long history): servers drop
			// idle sessions, so take a fresh one; if the branch moved
			// meanwhile, build again (what is built is kept).
			sess.Close()
			if sess, ar, err = rem.receivePack(ctx); err != nil {
				res.Err = err
				return res
			}
			var now plumbing.Hash
			if now, haves = advertised(ar, branch); now != remoteHead {
				sess.Close()
				continue
			}
		}
		objs, err := r.pushObjects(p.head, haves)
		if err != nil {
			sess.Close()
			res.Err = err
			return res
		}
		if err := r.setRef(refHead, p.head); err != nil {
			sess.Close()
			res.Err = err
			return res
		}
		if k.beforeSend != nil {
			k.beforeSend()
		}
		pk := k.m.packerFor(len(objs))
		ofs := supportsOFSDelta(ar)
		pr, err := rem.send(ctx, sess, ar, branch, remoteHead, p.head, func(w io.Writer) error {
			return pk(ctx, w, r, objs, ofs)
		})
		sess.Close()
		if err != nil {
			if pr.rejected {
				rejected, rejectedAt = err, remoteHead
				k.m.log.Info("push rejected; checking whether the branch moved", "connector", k.display, "err", err)
				continue
			}
			res.Err = err
			return res
		}
		res.Seq, res.Commit, res.Commits, res.Objects, res.Merged = p.seq, p.head, p.commits, len(objs), p.merged
		res.Err = k.saveSuccess(p)
		return res
	}
	if rejected != nil {
		res.Err = rejected
	} else {
		res.Err = fmt.Errorf("push to %s: the branch %s kept moving; will retry", k.display, k.conn.Branch)
	}
	return res
}

// advertised returns the remote's value of branch (zero when it has none)
// and every commit the remote advertises (the haves of a push).
func advertised(ar *packp.AdvRefs, branch plumbing.ReferenceName) (plumbing.Hash, []plumbing.Hash) {
	head := ar.References[branch.String()]
	haves := make([]plumbing.Hash, 0, len(ar.References)+1)
	for _, h := range ar.References {
		haves = append(haves, h)
	}
	if ar.Head != nil {
		haves = append(haves, *ar.Head)
	}
	slices.SortFunc(haves, func(a, b plumbing.Hash) int { return strings.Compare(a.String(), b.String()) })
	return head, slices.Compact(haves)
}

func isZero(h [20]byte) bool { return h == [20]byte{} }

// state returns the connector's push state (zero when none).
func (k *connector) state() (*store.PushState, error) {
	ps, err := k.m.cfg.Store.PushState(k.folder, k.id)
	if errors.Is(err, store.ErrNotFound) {
		return &store.PushState{}, nil
	}
	return ps, err
}

// build makes the commits that bring the branch, whose remote head is
// remoteHead (zero: no such branch), to snapshot upTo, skipping the
// dropped snapshots.
//
// Our side continues from the last pushed commit P: one commit per new
// snapshot. Without a prefix and while the branch has only the folder's
// own commits, these are exactly history.Linear's commits (Append); else
// each commit's tree is its parent's with the folder's paths replaced
// (Overlay). Then, if the remote branch does not contain P (someone pushed,
// or the branch existed before), a merge commit with parents (remote head,
// our last commit) and the remote's tree overlaid with the latest snapshot
// joins both lines, so that the push is a fast-forward. Without a P (first
// push), the commits start on the remote head directly.
//
// A dropped snapshot makes no commit: the next snapshot's commit has the
// last commit before it as parent, so the remote never sees the dropped
// trees. From there on the commits are no longer history.Linear's (whose
// every snapshot has a commit): they are made as with a prefix (Overlay).
func (k *connector) build(ctx context.Context, ps *store.PushState, storedOwned []string, remoteHead plumbing.Hash, upTo uint64, dropped []store.SeqRange) (*plan, error) {
	r := k.repo
	prefix := k.conn.Prefix
	p := &plan{seq: ps.Seq, linear: ps.Linear}
	if prefix == "" {
		p.owned = make(map[string]bool, len(storedOwned))
		for _, path := range storedOwned {
			p.owned[path] = true
		}
	}
	base := plumbing.Hash(ps.Commit)
	startedOnRemote := false
	if !base.IsZero() && !r.has(base) {
		k.m.log.Warn("the last pushed commit is missing from the mirror repository; starting again from the remote branch",
			"connector", k.display, "commit", base.String(), "mirror", r.path)
		base = plumbing.ZeroHash
	}
	if base.IsZero() {
		p.seq, p.linear = 0, prefix == ""
		clear(p.owned)
		if !remoteHead.IsZero() {
			adopted, err := k.adopt(ctx, p, remoteHead, upTo)
			if err != nil {
				return nil, err
			}
			base = remoteHead
			if !adopted {
				p.linear = false
				startedOnRemote = true
			}
		}
	}
	var baseTree plumbing.Hash
	if !base.IsZero() && !p.linear {
		c, err := r.commit(base)
		if err != nil {
			return nil, err
		}
		baseTree = c.TreeHash
	}
	owns := k.ownsFunc(p)
	var prev map[string]store.BlobID
	var last *store.Snapshot
	for p.seq < upTo {
		batch, err := k.snapshots(p.seq, upTo)
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			return nil, fmt.Errorf("folder %s: snapshots %d..%d are missing from the store", k.folder, p.seq+1, upTo)
		}
		for _, snap := range batch {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if isDropped(dropped, snap.Seq) {
				if p.linear {
					p.linear = false
					if !base.IsZero() {
						c, err := r.commit(base)
						if err != nil {
							return nil, err
						}
						baseTree = c.TreeHash
					}
				}
				p.seq = snap.Seq
				continue
			}
			if err := k.writeBlobs(snap.Files, prev); err != nil {
				return nil, err
			}
			prev = make(map[string]store.BlobID, len(snap.Files))
			for _, f := range snap.Files {
				prev[f.Path] = f.Blob
			}
			ownFiles(p.owned, snap.Files)
			var c plumbing.Hash
			if p.linear {
				c, err = k.synth.Append(snap, base)
			} else {
				var tree plumbing.Hash
				if tree, err = k.synth.Overlay(baseTree, prefix, owns, snap.Files); err == nil {
					c, err = k.synth.Commit(snap, parentsOf(base), tree)
				}
				baseTree = tree
			}
			if err != nil {
				return nil, err
			}
			base = c
			p.seq = snap.Seq
			p.commits++
			last = snap
		}
	}
	p.head = base
	if remoteHead.IsZero() || remoteHead == base || startedOnRemote || remoteHead == plumbing.Hash(ps.Commit) {
		return p, nil
	}
	// The branch moved since we last pushed. If it moved back to one of
	// our commits, there is nothing to merge; if an earlier push of this
	// same head went through but its state was lost, nothing to push.
	// Both walks are only tried when they can succeed (the walk over a
	// long history is not free): a merge that turns out redundant would
	// lose nothing either.
	rc, err := r.commit(remoteHead)
	if err != nil {
		return nil, err
	}
	if f, _, ok := history.SnapshotOf(rc.Message); ok && f == k.folder {
		if ok, err := r.isAncestor(remoteHead, p.head, ancestryLimit); err != nil && !errors.Is(err, errWalkLimit) {
			return nil, err
		} else if ok {
			return p, nil
		}
	}
	if tried, err := r.ref(refHead); err == nil && tried == p.head {
		if ok, err := r.isAncestor(p.head, remoteHead, ancestryLimit); err != nil && !errors.Is(err, errWalkLimit) {
			return nil, err
		} else if ok {
			p.contained = true
			return p, nil
		}
	}
	if last == nil {
		// Nothing new of ours: leave the branch as it is.
		p.contained = true
		return p, nil
	}
	tree, err := k.synth.Overlay(rc.TreeHash, prefix, owns, last.Files)
	if err != nil {
		return nil, err
	}
	m, err := k.mergeCommit(last, remoteHead, p.head, tree)
	if err != nil {
		return nil, err
	}
	p.head, p.linear, p.merged = m, false, true
	p.commits++
	return p, nil
}

func isDropped(dropped []store.SeqRange, seq uint64) bool {
	for _, r := range dropped {
		if r.Contains(seq) {
			return true
		}
	}
	return false
}

// ownsFunc returns the Overlay ownership test: nil (everything under the
// prefix) with a prefix, else the paths the folder has ever had.
func (k *connector) ownsFunc(p *plan) func(string) bool {
	if k.conn.Prefix != "" {
		return nil
	}
	return func(path string) bool { return p.owned[path] }
}

// ownFiles adds to owned (nil: nothing to do) the paths files have in git
// trees: the Overlay asks about tree paths, and a file git holds under
// another name (gitpath) must be found there when it goes away.
func ownFiles(owned map[string]bool, files []store.File) {
	if owned == nil {
		return
	}
	renamed := gitpath.Rename(files, func(f store.File) string { return f.Path }, gitpath.Tree)
	for _, f := range files {
		if g, ok := renamed[f.Path]; ok {
			owned[g] = true
		} else {
			owned[f.Path] = true
		}
	}
}

func parentsOf(h plumbing.Hash) []plumbing.Hash {
	if h.IsZero() {
		return nil
	}
	return []plumbing.Hash{h}
}

// adopt handles a first push (no state) to a branch whose head is one of
// this folder's commits — the push state was lost after a push, or the
// same history arrived another way: it continues from that commit
// instead of stacking the whole history on top of it again. It reports
// whether it adopted remoteHead; p is updated when it did.
func (k *connector) adopt(ctx context.Context, p *plan, remoteHead plumbing.Hash, latestSeq uint64) (bool, error) {
	rc, err := k.repo.commit(remoteHead)
	if err != nil {
		return false, err
	}
	f, seq, ok := history.SnapshotOf(rc.Message)
	if !ok || f != k.folder || seq == 0 || seq > latestSeq {
		return false, nil
	}
	// Rebuild what the state would hold: the owned paths and, without a
	// prefix, whether remoteHead is the folder's pure history.
	linear := k.conn.Prefix == ""
	var head plumbing.Hash
	var done uint64
	for done < seq {
		batch, err := k.snapshots(done, seq)
		if err != nil {
			return false, err
		}
		if len(batch) == 0 {
			return false, nil
		}
		for _, snap := range batch {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			ownFiles(p.owned, snap.Files)
			if linear {
				if head, err = k.synth.Append(snap, head); err != nil {
					return false, err
				}
			}
			done = snap.Seq
		}
	}
	p.seq = seq
	p.linear = linear && head == remoteHead
	k.m.log.Info("the remote branch already carries this folder's history; continuing from it",
		"connector", k.display, "snapshot", seq, "linear", p.linear)
	return true, nil
}

// snapshots returns up to walkBatch snapshots after seq, none past last.
func (k *connector) snapshots(after, last uint64) ([]*store.Snapshot, error) {
	var out []*store.Snapshot
	errFull := errors.New("batch full")
	err := k.m.cfg.Store.Walk(k.folder, after, func(s *store.Snapshot) error {
		if s.Seq > last {
			return errFull
		}
		out = append(out, s)
		if len(out) == walkBatch {
			return errFull
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return nil, err
	}
	return out, nil
}

// writeBlobs copies into the mirror the blobs of files that are not in
// prev (the previous snapshot's path → blob) and not stored yet.
func (k *connector) writeBlobs(files []store.File, prev map[string]store.BlobID) error {
	for _, f := range files {
		if prev != nil && prev[f.Path] == f.Blob {
			continue
		}
		h := plumbing.Hash(f.Blob)
		if k.written[h] {
			continue
		}
		if !k.repo.has(h) {
			if err := k.copyBlob(f); err != nil {
				return err
			}
		}
		if len(k.written) >= maxWritten {
			clear(k.written)
		}
		k.written[h] = true
	}
	return nil
}

// copyBlob streams f's blob from the store into the mirror (attachments
// may be hundreds of MB: neither side holds one whole).
func (k *connector) copyBlob(f store.File) error {
	rc, size, err := k.m.cfg.Store.OpenBlob(f.Blob)
	if err != nil {
		return fmt.Errorf("folder %s: content of %s: %w", k.folder, f.Path, err)
	}
	defer rc.Close()
	return k.repo.putBlobFrom(plumbing.Hash(f.Blob), size, rc)
}

// maxWritten bounds the memory of blobs known to be in the mirror.
const maxWritten = 1 << 20

// MergeMessage is the message of the merge commit that joins the remote
// branch (which had commits of its own) and the folder's snapshot seq.
func MergeMessage(folder store.FolderID, seq uint64, branch, prefix string) string {
	where := "The folder's files"
	if prefix != "" {
		where = "The files under " + prefix + "/"
	}
	return fmt.Sprintf("Merge Relay folder snapshot #%d into %s\n\n"+
		"%s are as in the snapshot; everything else on %s\nis kept as it was.\n\n"+
		"Relay-Snapshot: %s/%s#%d\n", seq, branch, where, branch, folder.Relay, folder.Folder, seq)
}

// mergeCommit writes the merge commit of snapshot snap: parents (remote
// head, ours), the given tree, the snapshot's author, committer and time.
func (k *connector) mergeCommit(snap *store.Snapshot, remoteHead, ours, tree plumbing.Hash) (plumbing.Hash, error) {
	meta := k.synth.Meta(snap)
	var b strings.Builder
	b.WriteString("tree " + tree.String() + "\n")
	b.WriteString("parent " + remoteHead.String() + "\n")
	b.WriteString("parent " + ours.String() + "\n")
	b.WriteString("author " + meta.Author + "\n")
	b.WriteString("committer " + meta.Committer + "\n\n")
	b.WriteString(MergeMessage(k.folder, snap.Seq, k.conn.Branch, k.conn.Prefix))
	return k.repo.putRaw(plumbing.CommitObject, []byte(b.String()))
}

// saveSuccess records that the branch holds p.head.
func (k *connector) saveSuccess(p *plan) error {
	commit := p.head
	if err := k.repo.setRef(refPushed, commit); err != nil {
		return err
	}
	if err := k.repo.setRef(refRemote, commit); err != nil {
		return err
	}
	prev, err := k.state()
	if err != nil {
		return err
	}
	ps := k.baseState(prev)
	ps.Commit, ps.Seq, ps.Linear, ps.PushedAt = commit, p.seq, p.linear, k.m.now()
	ps.Attempts, ps.NextAttempt = 0, time.Time{}
	var owned []string
	if p.owned != nil {
		owned = make([]string, 0, len(p.owned))
		for path := range p.owned {
			owned = append(owned, path)
		}
		slices.Sort(owned)
	}
	return k.m.cfg.Store.SetPushState(k.folder, k.id, ps, owned)
}

// baseState copies the fields of prev that an update keeps.
func (k *connector) baseState(prev *store.PushState) *store.PushState {
	ps := *prev
	ps.URL, ps.Branch, ps.Prefix = k.display, k.conn.Branch, k.conn.Prefix
	return &ps
}
