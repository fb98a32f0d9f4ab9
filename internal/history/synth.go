package history

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Config is what, besides the snapshots, decides the commits. Everything in
// it is part of every commit id.
type Config struct {
	// Author and Committer of every commit. An empty field falls back to
	// DefaultIdentity (Author) or to the author's (Committer). Both are
	// cleaned as git cleans identities (see IdentityFromEnv).
	Author, Committer Identity
	// Authors maps Relay user ids to identities for Co-authored-by trailers.
	// Users without an identity (or without an e-mail address) are listed
	// in a Relay-Users trailer instead.
	Authors map[string]Identity
}

// Synthesizer writes snapshots as git objects into a storer. It caches the
// last tree it built (see the package documentation), so reuse one per
// folder. It is safe for concurrent use, but concurrent callers serialize.
type Synthesizer struct {
	author, committer Identity
	authors           map[string]Identity
	objects           storer.EncodedObjectStorer

	mu      sync.Mutex
	root    *dirNode  // tree of the last files given to tree(); nil = none
	prev    []fileRef // those files, sorted by path
	removed []string
	upserts []upsert
	buf     []byte
	known   map[plumbing.Hash]struct{} // objects known to be in the storer

	packs       PackReader
	pushedTrees map[plumbing.Hash]plumbing.Hash // pushed commits written, and their trees
}

// maxKnown bounds the memory of Synthesizer.known; past it the set is
// cleared (it is only a shortcut for HasEncodedObject).
const maxKnown = 1 << 20

// New returns a Synthesizer that writes into objects, with cfg (which it
// copies).
func New(cfg Config, objects storer.EncodedObjectStorer) *Synthesizer {
	author := cfg.Author.withDefaults(DefaultIdentity)
	return &Synthesizer{
		author:    author,
		committer: cfg.Committer.withDefaults(author),
		authors:   maps.Clone(cfg.Authors),
		objects:   objects,
		known:     make(map[plumbing.Hash]struct{}),
	}
}

// Author returns the author identity in use (after defaults and cleaning).
func (s *Synthesizer) Author() Identity { return s.author }

// Committer returns the committer identity in use.
func (s *Synthesizer) Committer() Identity { return s.committer }

// CommitMeta is a commit without its tree and parents, in the exact form git
// stores it. A fast-import stream that writes
//
//	commit <ref>
//	author <Author>
//	committer <Committer>
//	data <len(Message)>
//	<Message>
//
// with the snapshot's files produces the same commit id as Commit.
type CommitMeta struct {
	Author    string // "Name <email> <unix seconds> +0000"
	Committer string
	Message   string
}

// Meta returns the author and committer lines and the message of snap's
// commit. The date is snap.Time truncated to whole seconds, in UTC (times
// before 1970 are written as 0, as go-git does).
func (s *Synthesizer) Meta(snap *store.Snapshot) CommitMeta {
	secs := snap.Time.Unix()
	if secs < 0 {
		secs = 0
	}
	when := " " + strconv.FormatInt(secs, 10) + " +0000"
	return CommitMeta{
		Author:    s.author.String() + when,
		Committer: s.committer.String() + when,
		Message:   Message(snap, s.authors),
	}
}

// Commit writes the commit of snap with the given parents (none for a root
// commit) and tree, and returns its id. For a snapshot written by a push
// that builds on exactly these parents, that is the pushed commit (see
// ReadPacksWith).
func (s *Synthesizer) Commit(snap *store.Snapshot, parents []plumbing.Hash, tree plumbing.Hash) (plumbing.Hash, error) {
	if tree.IsZero() {
		return plumbing.ZeroHash, fmt.Errorf("history: commit of snapshot %s#%d: zero tree", snap.Folder, snap.Seq)
	}
	for i, p := range parents {
		if p.IsZero() {
			return plumbing.ZeroHash, fmt.Errorf("history: commit of snapshot %s#%d: zero parent", snap.Folder, snap.Seq)
		}
		for _, q := range parents[:i] {
			if p == q {
				return plumbing.ZeroHash, fmt.Errorf("history: commit of snapshot %s#%d: parent %s given twice", snap.Folder, snap.Seq, p)
			}
		}
	}
	m := s.Meta(snap)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := snap.Origin.Pushed; p != nil && buildsOn(p, parents) {
		c, ctree, err := s.pushedCommit(p)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("history: commit of snapshot %s#%d: %w", snap.Folder, snap.Seq, err)
		}
		if ctree == tree {
			return c, nil
		}
		parents = []plumbing.Hash{c}
	}
	b := s.buf[:0]
	b = append(b, "tree "...)
	b = append(b, tree.String()...)
	b = append(b, '\n')
	for _, p := range parents {
		b = append(b, "parent "...)
		b = append(b, p.String()...)
		b = append(b, '\n')
	}
	b = append(b, "author "...)
	b = append(b, m.Author...)
	b = append(b, "\ncommitter "...)
	b = append(b, m.Committer...)
	b = append(b, "\n\n"...)
	b = append(b, m.Message...)
	s.buf = b
	h, err := s.write(plumbing.CommitObject, b)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("history: commit of snapshot %s#%d: %w", snap.Folder, snap.Seq, err)
	}
	return h, nil
}

// Append writes the tree and the commit of snap on top of parent (zero for a
// folder's first snapshot) and returns the commit id. It is the step of
// Linear, for callers that stream snapshots (store.Walk).
func (s *Synthesizer) Append(snap *store.Snapshot, parent plumbing.Hash) (plumbing.Hash, error) {
	s.mu.Lock()
	err := s.tree(snap.Files)
	var tree plumbing.Hash
	if err == nil {
		tree = s.root.hash
	}
	s.mu.Unlock()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("history: tree of snapshot %s#%d: %w", snap.Folder, snap.Seq, err)
	}
	var parents []plumbing.Hash
	if !parent.IsZero() {
		parents = []plumbing.Hash{parent}
	}
	return s.Commit(snap, parents, tree)
}

// Linear synthesizes the history of snaps: commit i has commit i-1 as its
// only parent, and the first has parent (or none when parent is zero). It
// returns the commit ids in order. The snapshots must belong to one folder,
// in increasing sequence order. The result is a pure function of snaps,
// parent and the Config.
func (s *Synthesizer) Linear(snaps []*store.Snapshot, parent plumbing.Hash) ([]plumbing.Hash, error) {
	out := make([]plumbing.Hash, 0, len(snaps))
	for i, snap := range snaps {
		if i > 0 {
			if snap.Folder != snaps[0].Folder {
				return out, fmt.Errorf("history: snapshot %s#%d is not of folder %s", snap.Folder, snap.Seq, snaps[0].Folder)
			}
			if snap.Seq <= snaps[i-1].Seq {
				return out, fmt.Errorf("history: snapshot %s#%d follows #%d: sequence numbers must increase", snap.Folder, snap.Seq, snaps[i-1].Seq)
			}
		}
		h, err := s.Append(snap, parent)
		if err != nil {
			return out, err
		}
		out = append(out, h)
		parent = h
	}
	return out, nil
}

// write stores an object of type t with content b unless the storer already
// has it, and returns its id. s.mu must be held.
func (s *Synthesizer) write(t plumbing.ObjectType, b []byte) (plumbing.Hash, error) {
	h := plumbing.ComputeHash(t, b)
	if _, ok := s.known[h]; ok {
		return h, nil
	}
	if len(s.known) >= maxKnown {
		clear(s.known)
	}
	if err := s.objects.HasEncodedObject(h); err == nil {
		s.known[h] = struct{}{}
		return h, nil
	} else if !errors.Is(err, plumbing.ErrObjectNotFound) {
		return plumbing.ZeroHash, fmt.Errorf("look up %s %s: %w", t, h, err)
	}
	// The object carries its id, so that storers that take the object as is
	// (memory) do not hash it again; the content is copied, b is reused.
	obj := &knownObject{t: t, h: h, data: bytes.Clone(b)}
	got, err := s.objects.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store %s %s: %w", t, h, err)
	}
	if got != h {
		return plumbing.ZeroHash, fmt.Errorf("store %s: storer computed id %s, expected %s", t, got, h)
	}
	s.known[h] = struct{}{}
	return h, nil
}

// knownObject is a plumbing.EncodedObject whose id is already known.
type knownObject struct {
	t    plumbing.ObjectType
	h    plumbing.Hash
	data []byte
}

var errReadOnly = errors.New("history: object is read-only")

func (o *knownObject) Hash() plumbing.Hash             { return o.h }
func (o *knownObject) Type() plumbing.ObjectType       { return o.t }
func (o *knownObject) SetType(plumbing.ObjectType)     {}
func (o *knownObject) Size() int64                     { return int64(len(o.data)) }
func (o *knownObject) SetSize(int64)                   {}
func (o *knownObject) Writer() (io.WriteCloser, error) { return nil, errReadOnly }
func (o *knownObject) Reader() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(o.data)), nil
}

// buildsOn reports whether the push p was made on top of parents.
func buildsOn(p *store.Pushed, parents []plumbing.Hash) bool {
	if p.Parent == ([20]byte{}) {
		return len(parents) == 0
	}
	return len(parents) == 1 && parents[0] == plumbing.Hash(p.Parent)
}
