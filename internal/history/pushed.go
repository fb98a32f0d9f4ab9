package history

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// A snapshot written by `git push relay::` carries the pushed commit
// (store.Pushed). Wherever the history reaches that snapshot from the
// commit the push built on, the pushed commit takes the snapshot's place:
// as it is when the snapshot's tree is the commit's tree, else (Relay was
// edited at the same time) as the parent of the snapshot's own commit. So
// the pusher's branch fast-forwards on the next fetch, and no edit is
// hidden. Elsewhere (a mirror under a prefix) the snapshot's commit is
// synthesized as any other.

// PackReader returns the content of a pushed commit's pack
// (store.Pushed.Pack).
type PackReader func(store.BlobID) ([]byte, error)

// ReadPacksWith sets how s reads the packs of pushed commits; without it
// a snapshot with a pushed commit is an error. It returns s.
func (s *Synthesizer) ReadPacksWith(fn PackReader) *Synthesizer {
	s.mu.Lock()
	s.packs = fn
	s.mu.Unlock()
	return s
}

// pushedCommit writes the objects of p's pack into the storer (once per
// Synthesizer) and returns the pushed commit and its tree. s.mu must be
// held.
func (s *Synthesizer) pushedCommit(p *store.Pushed) (commit, tree plumbing.Hash, err error) {
	commit = plumbing.Hash(p.Commit)
	if t, ok := s.pushedTrees[commit]; ok {
		return commit, t, nil
	}
	if s.packs == nil {
		return commit, tree, errors.New("history: a snapshot has a pushed commit, and the Synthesizer has no PackReader")
	}
	pack, err := s.packs(p.Pack)
	if err != nil {
		return commit, tree, fmt.Errorf("history: reading the pack of pushed commit %s: %w", commit, err)
	}
	objs, tree, err := ParsePushPack(pack, commit)
	if err != nil {
		return commit, tree, err
	}
	for _, o := range objs {
		if _, err := s.write(o.Type, o.Data); err != nil {
			return commit, tree, fmt.Errorf("history: pushed commit %s: %w", commit, err)
		}
	}
	if s.pushedTrees == nil {
		s.pushedTrees = map[plumbing.Hash]plumbing.Hash{}
	}
	s.pushedTrees[commit] = tree
	return commit, tree, nil
}

// PackObject is one object of a push's pack.
type PackObject struct {
	ID   plumbing.Hash
	Type plumbing.ObjectType
	Data []byte
}

// ParsePushPack reads a push's pack (as `git pack-objects` writes it) and
// checks that it holds commit, whose tree it returns. What the pack leaves out is reachable from
// the commit the push built on (an empty commit's tree, an old file
// brought back), which every history that continues from it has.
// Objects come back in the order trees and blobs before commits, so
// storers that check connectivity as they go take them.
func ParsePushPack(pack []byte, commit plumbing.Hash) ([]PackObject, plumbing.Hash, error) {
	st := memory.NewStorage()
	if err := packfile.UpdateObjectStorage(st, bytes.NewReader(pack)); err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("history: the pack of pushed commit %s is unreadable: %w", commit, err)
	}
	c, ok := st.Objects[commit]
	if !ok || c.Type() != plumbing.CommitObject {
		return nil, plumbing.ZeroHash, fmt.Errorf("history: the pack of pushed commit %s does not hold that commit", commit)
	}
	dec := &object.Commit{}
	if err := dec.Decode(c); err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("history: pushed commit %s: %w", commit, err)
	}
	var out, commits []PackObject
	for h, o := range st.Objects {
		r, err := o.Reader()
		if err != nil {
			return nil, plumbing.ZeroHash, err
		}
		data := bytes.NewBuffer(make([]byte, 0, o.Size()))
		_, err = data.ReadFrom(r)
		r.Close()
		if err != nil {
			return nil, plumbing.ZeroHash, err
		}
		po := PackObject{ID: h, Type: o.Type(), Data: data.Bytes()}
		if po.Type == plumbing.CommitObject {
			commits = append(commits, po)
		} else {
			out = append(out, po)
		}
	}
	byID := func(a, b PackObject) int { return bytes.Compare(a.ID[:], b.ID[:]) }
	slices.SortFunc(out, byID)
	slices.SortFunc(commits, byID)
	return append(out, commits...), dec.TreeHash, nil
}
