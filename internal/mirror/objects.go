package mirror

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// packObject is an object to send, with the path it was found at (a hint
// for C git's choice of delta bases; empty for commits and root trees).
type packObject struct {
	hash plumbing.Hash
	name string
}

const (
	flagNew    = 1 // reachable from the commit being pushed
	flagRemote = 2 // reachable from a commit the remote has
)

// commitQueue orders commits newest first (by committer time), as git's
// revision walk does.
type commitQueue []*object.Commit

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	return q[i].Committer.When.After(q[j].Committer.When)
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(*object.Commit)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// pushObjects returns the objects reachable from head that a remote having
// the commits haves (and everything they reach) lacks, in an order fit for
// a pack (commits first, newest first, then trees and blobs).
//
// It does what `git rev-list --objects head ^haves` does, without go-git's
// revlist.Objects, which reads every object reachable from the haves — the
// remote's whole history — on every push. Commits are walked newest first
// from both sides until no commit that only head reaches is left in the
// queue; each new commit's tree is then compared with its parents' trees,
// and only the subtrees and blobs that differ are sent. An object the remote
// has under another path may be sent again (as git also may): harmless.
// Haves that are not in the mirror are ignored.
func (r *repo) pushObjects(head plumbing.Hash, haves []plumbing.Hash) ([]packObject, error) {
	flags := map[plumbing.Hash]uint8{}
	commits := map[plumbing.Hash]*object.Commit{}
	inQueue := map[plumbing.Hash]bool{}
	var q commitQueue
	newOnly := 0 // queued commits that only head reaches

	mark := func(h plumbing.Hash, f uint8) error {
		old := flags[h]
		if old&f == f {
			return nil
		}
		c := commits[h]
		if c == nil {
			var err error
			c, err = object.GetCommit(r.st, h)
			if errors.Is(err, plumbing.ErrObjectNotFound) && f == flagRemote {
				return nil // the remote has it; we need not know it
			}
			if err != nil {
				return fmt.Errorf("mirror repository %s: commit %s: %w", r.path, h, err)
			}
			commits[h] = c
		}
		flags[h] = old | f
		if inQueue[h] {
			if old == flagNew {
				newOnly-- // it was new-only, and now the remote has it
			}
			return nil
		}
		inQueue[h] = true
		heap.Push(&q, c)
		if flags[h] == flagNew {
			newOnly++
		}
		return nil
	}
	if err := mark(head, flagNew); err != nil {
		return nil, err
	}
	for _, h := range haves {
		if !h.IsZero() && r.has(h) {
			if err := mark(h, flagRemote); err != nil {
				return nil, err
			}
		}
	}
	for q.Len() > 0 && newOnly > 0 {
		c := heap.Pop(&q).(*object.Commit)
		inQueue[c.Hash] = false
		f := flags[c.Hash]
		if f == flagNew {
			newOnly--
		}
		for _, p := range c.ParentHashes {
			pf := flagNew
			if f&flagRemote != 0 {
				pf = flagRemote
			}
			if err := mark(p, uint8(pf)); err != nil {
				return nil, err
			}
		}
	}

	// The new commits, newest first (deterministic order for the pack).
	var news []*object.Commit
	for h, f := range flags {
		if f == flagNew {
			news = append(news, commits[h])
		}
	}
	sortCommits(news)
	out := make([]packObject, 0, len(news)*4)
	sent := map[plumbing.Hash]bool{}
	for _, c := range news {
		out = append(out, packObject{hash: c.Hash})
		sent[c.Hash] = true
	}
	for _, c := range news {
		var olds []plumbing.Hash
		for _, p := range c.ParentHashes {
			pc := commits[p]
			if pc == nil {
				var err error
				if pc, err = object.GetCommit(r.st, p); err != nil {
					continue // not in the mirror: the remote has it
				}
				commits[p] = pc
			}
			olds = append(olds, pc.TreeHash)
		}
		if err := r.collectTree(c.TreeHash, olds, "", sent, &out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sortCommits(cs []*object.Commit) {
	// Insertion-friendly: histories are mostly in order already.
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && lessCommit(cs[j], cs[j-1]); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func lessCommit(a, b *object.Commit) bool {
	if !a.Committer.When.Equal(b.Committer.When) {
		return a.Committer.When.After(b.Committer.When)
	}
	return bytes.Compare(a.Hash[:], b.Hash[:]) < 0
}

// collectTree adds tree t at path dir and what it holds to out, except what
// equals the entry at the same path in one of the old trees (its parents'),
// and what was sent already.
func (r *repo) collectTree(t plumbing.Hash, olds []plumbing.Hash, dir string, sent map[plumbing.Hash]bool, out *[]packObject) error {
	if sent[t] {
		return nil
	}
	for _, o := range olds {
		if o == t {
			return nil
		}
	}
	tree, err := object.GetTree(r.st, t)
	if err != nil {
		return fmt.Errorf("mirror repository %s: tree %s: %w", r.path, t, err)
	}
	sent[t] = true
	*out = append(*out, packObject{hash: t, name: dir})
	var oldTrees []*object.Tree
	for _, o := range olds {
		if ot, err := object.GetTree(r.st, o); err == nil {
			oldTrees = append(oldTrees, ot)
		}
	}
	for _, e := range tree.Entries {
		if e.Mode == filemode.Submodule {
			continue // a commit of another repository
		}
		var subOlds []plumbing.Hash
		same := false
		for _, ot := range oldTrees {
			oe, err := ot.FindEntry(e.Name)
			if err != nil {
				continue
			}
			if oe.Hash == e.Hash {
				same = true
				break
			}
			if oe.Mode == filemode.Dir {
				subOlds = append(subOlds, oe.Hash)
			}
		}
		if same {
			continue
		}
		p := e.Name
		if dir != "" {
			p = dir + "/" + e.Name
		}
		if e.Mode == filemode.Dir {
			if err := r.collectTree(e.Hash, subOlds, p, sent, out); err != nil {
				return err
			}
			continue
		}
		if !sent[e.Hash] {
			sent[e.Hash] = true
			*out = append(*out, packObject{hash: e.Hash, name: p})
		}
	}
	return nil
}

// A packer writes a pack of objs from the mirror to w. ofs says whether
// the remote accepts offset deltas.
type packer func(ctx context.Context, w io.Writer, r *repo, objs []packObject, ofs bool) error

// PackWindow is the delta window go-git's encoder uses here (go-git's
// default for pushes, and git's).
const PackWindow = 10

// goGitPacker encodes with go-git (pure Go).
func goGitPacker(window uint) packer {
	return func(_ context.Context, w io.Writer, r *repo, objs []packObject, ofs bool) error {
		hs := make([]plumbing.Hash, len(objs))
		for i, o := range objs {
			hs[i] = o.hash
		}
		_, err := packfile.NewEncoder(w, r.st, !ofs).Encode(hs, window)
		return err
	}
}

// gitPacker runs `git pack-objects` on the mirror: C git's delta search
// and compression, fed the object list computed here.
func gitPacker(gitBin string) packer {
	return func(ctx context.Context, w io.Writer, r *repo, objs []packObject, ofs bool) error {
		args := []string{"pack-objects", "--stdout", "-q"}
		if ofs {
			args = append(args, "--delta-base-offset")
		}
		cmd := exec.CommandContext(ctx, gitBin, args...)
		cmd.Env = append(os.Environ(), "GIT_DIR="+r.path)
		var in bytes.Buffer
		bw := bufio.NewWriter(&in)
		for _, o := range objs {
			bw.WriteString(o.hash.String())
			if o.name != "" {
				bw.WriteByte(' ')
				bw.WriteString(strings.ReplaceAll(o.name, "\n", " "))
			}
			bw.WriteByte('\n')
		}
		bw.Flush()
		cmd.Stdin = &in
		cmd.Stdout = w
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("git pack-objects: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
}
