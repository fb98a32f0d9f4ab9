package remotehelper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Synthesis: a folder's snapshots become commits (internal/history's
// Synthesizer, with the server's Config, so the ids are the server's) whose
// objects go into one pack. Four stages run concurrently:
//
//   - the walker reads the snapshots (one pass: Source.History, which is
//     store.Walk or GET …/history)
//     and finds the blobs each one adds — only those not already in the pack
//     or in the repository;
//   - workers read those blobs (the store decodes them; over HTTP they are
//     downloaded in parallel), delta them against the previous version of the
//     same document and compress them;
//   - the main goroutine runs the Synthesizer, which hands each snapshot's
//     trees and commit to
//   - the writer, which appends each snapshot's blobs (as their workers
//     finish), then its trees (as deltas against the previous version of
//     the same directory) and commit to the pack.
//
// With a base (the commit this repository already has for snapshot N), the
// walk starts at N: the Synthesizer is first fed snapshot N with every
// object counted as present, which primes its tree cache and must give back
// exactly the base commit (else the server's history changed — another
// identity, say — and everything is synthesized afresh). Only later
// snapshots are written: a fetch costs O(new snapshots).

// blobWorkers is how many blobs are read at once: downloads are
// latency-bound, and from a data dir the store's decoding is CPU work that
// the Go scheduler spreads over the cores.
const blobWorkers = 8

type synthesis struct {
	src    source.Source
	folder store.FolderID
	cfg    history.Config
	base   *localTip   // nil: from the folder's first snapshot
	pack   *packWriter // nil: compute the ids only
	repo   *localRepo  // with a base: to skip blobs the repository has
	prog   *progress
}

type synthResult struct {
	tip      plumbing.Hash // zero when the folder has no snapshots
	seq      uint64
	commits  int
	blobs    int  // blobs written into the pack
	mismatch bool // the base is not part of the server's history
}

// errMismatch: the server's history does not have the repository's last
// commit.
var errMismatch = errors.New("the server's history does not have this repository's last commit")

type walkItem struct {
	snap *store.Snapshot
	seed bool // the base snapshot
	jobs []*blobJob
}

// packEntry is one object for the pack writer: a blob job, or a tree or
// commit the Synthesizer made.
type packEntry struct {
	blob *blobJob
	id   plumbing.Hash
	typ  plumbing.ObjectType
	data []byte
}

func (s *synthesis) run(parent context.Context) (synthResult, error) {
	var res synthResult
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)

	items := make(chan walkItem, 256)
	jobs := make(chan *blobJob, 4096)
	var wg sync.WaitGroup
	var walkErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(items)
		defer close(jobs)
		walkErr = s.walk(ctx, items, jobs)
	}()
	var entries chan packEntry
	type writerResult struct {
		blobs int
		err   error
	}
	writerDone := make(chan writerResult, 1)
	if s.pack != nil {
		for range blobWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					j.run(ctx, s.src)
				}
			}()
		}
		entries = make(chan packEntry, 1024)
		go func() {
			blobs, err := s.writeLoop(ctx, entries)
			if err != nil {
				cancel(err)
			}
			writerDone <- writerResult{blobs, err}
		}()
	} else {
		writerDone <- writerResult{}
	}
	// On any return, stop everything and wait for every goroutine.
	closed := false
	defer func() {
		cancel(nil)
		if !closed && entries != nil {
			close(entries)
		}
		for range items {
		}
		wg.Wait()
		if !closed {
			<-writerDone
		}
	}()

	sink := &objectSink{ctx: ctx, entries: entries, sent: make(map[plumbing.Hash]struct{})}
	syn := history.New(s.cfg, sink).ReadPacksWith(func(id store.BlobID) ([]byte, error) { return s.src.Blob(ctx, id) })
	var tip plumbing.Hash
	for it := range items {
		if it.seed {
			sink.seeding = true
			tree, err := syn.Tree(it.snap.Files)
			parents := s.base.parents
			if p := it.snap.Origin.Pushed; p != nil && plumbing.Hash(p.Commit) == s.base.commit {
				// The base is a pushed commit: the snapshot's commit if
				// it continues from the push's parent.
				parents = nil
				if p.Parent != ([20]byte{}) {
					parents = []plumbing.Hash{plumbing.Hash(p.Parent)}
				}
			}
			if err == nil {
				tip, err = syn.Commit(it.snap, parents, tree)
			}
			sink.seeding = false
			if err != nil {
				return res, err
			}
			if tip != s.base.commit {
				res.mismatch = true
				return res, nil
			}
			res.tip, res.seq = tip, it.snap.Seq
			continue
		}
		for _, j := range it.jobs {
			select {
			case entries <- packEntry{blob: j}:
			case <-ctx.Done():
				return res, context.Cause(ctx)
			}
		}
		var err error
		if tip, err = syn.Append(it.snap, tip); err != nil {
			if c := context.Cause(ctx); c != nil {
				err = c
			}
			return res, err
		}
		res.tip, res.seq = tip, it.snap.Seq
		res.commits++
		s.prog.add(1)
	}
	if entries != nil {
		close(entries)
	}
	closed = true
	w := <-writerDone
	wg.Wait()
	res.blobs = w.blobs
	switch {
	case errors.Is(walkErr, errMismatch) || (walkErr == nil && s.base != nil && res.tip.IsZero()):
		// The base snapshot is not there (or nothing at all is).
		return synthResult{mismatch: true}, nil
	case walkErr != nil:
		return res, walkErr
	case w.err != nil:
		return res, w.err
	}
	return res, parent.Err()
}

// writeLoop writes the entries into the pack, in order: blobs as their jobs
// finish, trees as deltas against the previous version of the same
// directory when that is much smaller, commits whole.
func (s *synthesis) writeLoop(ctx context.Context, entries <-chan packEntry) (blobs int, err error) {
	trees := make(map[string]*deltaBase)
	for e := range entries {
		if j := e.blob; j != nil {
			select {
			case <-j.done:
			case <-ctx.Done():
				return blobs, context.Cause(ctx)
			}
			if j.err != nil {
				return blobs, j.err
			}
			if _, ok := s.pack.offset(plumbing.Hash(j.id)); ok {
				continue // came in the pack of a pushed commit
			}
			var baseOff uint64
			if j.delta != nil {
				var ok bool
				if baseOff, ok = s.pack.offset(plumbing.Hash(j.delta.id)); !ok {
					return blobs, fmt.Errorf("internal error: delta base %s of blob %s is not in the pack", j.delta.id, j.id)
				}
			}
			if j.stream {
				if err := s.writeStreamed(ctx, j.id); err != nil {
					return blobs, err
				}
				blobs++
				continue
			}
			if err := s.pack.write(plumbing.Hash(j.id), objBlob, j.size, baseOff, j.payload); err != nil {
				return blobs, err
			}
			j.payload = nil
			blobs++
			continue
		}
		switch e.typ {
		case plumbing.CommitObject:
			if err := s.pack.write(e.id, objCommit, len(e.data), 0, compress(e.data)); err != nil {
				return blobs, err
			}
			continue
		case plumbing.BlobObject: // from the pack of a pushed commit
			if _, ok := s.pack.offset(e.id); !ok {
				if err := s.pack.write(e.id, objBlob, len(e.data), 0, compress(e.data)); err != nil {
					return blobs, err
				}
			}
			continue
		}
		// A directory's trees are found again by their first entry (mode
		// and name), which rarely changes; a wrong guess only costs a
		// bigger pack.
		key := string(e.data[:max(0, bytes.IndexByte(e.data, 0))])
		off := s.pack.off
		b := trees[key]
		if b != nil && b.depth < maxDeltaDepth {
			if d := makeTreeDelta(b.data, e.data); d != nil {
				if err := s.pack.write(e.id, objTree, len(d), b.off, compress(d)); err != nil {
					return blobs, err
				}
				trees[key] = &deltaBase{data: e.data, off: off, depth: b.depth + 1}
				continue
			}
		}
		if err := s.pack.write(e.id, objTree, len(e.data), 0, compress(e.data)); err != nil {
			return blobs, err
		}
		trees[key] = &deltaBase{data: e.data, off: off}
	}
	return blobs, nil
}

// writeStreamed copies blob id from the source into the pack as a stream
// (source.OpenBlob: the store's and the read API's blobs stream).
func (s *synthesis) writeStreamed(ctx context.Context, id store.BlobID) error {
	rc, size, err := source.OpenBlob(ctx, s.src, id)
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", id, err)
	}
	defer rc.Close()
	return s.pack.writeFrom(plumbing.Hash(id), objBlob, size, rc)
}

// walk reads the snapshots and queues the blobs to write.
func (s *synthesis) walk(ctx context.Context, items chan<- walkItem, jobs chan<- *blobJob) error {
	var after uint64
	if s.base != nil {
		after = s.base.seq - 1
	}
	var prev []store.File
	present := map[store.BlobID]bool{} // in the repository (the base's tree)
	queued := map[store.BlobID]*blobJob{}
	lastOfDoc := map[string]*blobJob{} // the newest version of each document in the pack
	first := true
	send := func(it walkItem) error {
		select {
		case items <- it:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.src.History(ctx, s.folder, after, func(snap *store.Snapshot) error {
		if first && s.base != nil {
			first = false
			if snap.Seq != s.base.seq {
				return errMismatch // the server lacks the repository's last snapshot
			}
			for _, f := range snap.Files {
				present[f.Blob] = true
			}
			prev = snap.Files
			return send(walkItem{snap: snap, seed: true})
		}
		first = false
		it := walkItem{snap: snap}
		if s.pack != nil {
			i := 0 // prev[i] is the first file of prev not before f
			for k := range snap.Files {
				f := &snap.Files[k]
				// Both trees are sorted and mostly equal: the same file at
				// the same place is the common case.
				if i < len(prev) && prev[i].Blob == f.Blob && prev[i].Path == f.Path {
					i++
					continue
				}
				for i < len(prev) && prev[i].Path < f.Path {
					i++
				}
				if i < len(prev) && prev[i].Path == f.Path {
					i++
					if prev[i-1].Blob == f.Blob {
						continue
					}
				}
				doc := f.DocID
				if doc == "" {
					doc = "path:" + f.Path
				}
				if j, ok := queued[f.Blob]; ok {
					lastOfDoc[doc] = j
					continue
				}
				if present[f.Blob] {
					lastOfDoc[doc] = nil
					continue
				}
				if s.repo != nil {
					have, err := s.repo.hasObject(ctx, plumbing.Hash(f.Blob))
					if err != nil {
						return err
					}
					if have {
						present[f.Blob] = true
						lastOfDoc[doc] = nil
						continue
					}
				}
				j := &blobJob{id: f.Blob, base: lastOfDoc[doc], stream: f.Size > streamBlob, done: make(chan struct{})}
				queued[f.Blob] = j
				lastOfDoc[doc] = j
				it.jobs = append(it.jobs, j)
				select {
				case jobs <- j:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		prev = snap.Files
		return send(it)
	})
}

// streamBlob: larger blobs (attachments) are not read by a worker but
// streamed into the pack by the writer (packWriter.writeFrom), whole and
// without a delta: eight workers each holding one would be gigabytes.
const streamBlob = 4 << 20

// blobJob reads one blob and prepares its pack entry.
type blobJob struct {
	id     store.BlobID
	base   *blobJob // the previous version of the same document, if in the pack
	stream bool     // written by writeLoop from the source (streamBlob)
	done   chan struct{}

	// Set by run before done is closed.
	err     error
	size    int    // length of the content, or of the delta
	payload []byte // compressed content or delta
	delta   *blobJob
	depth   int

	mu   sync.Mutex
	data []byte // the content, until the next version takes it
}

func (j *blobJob) run(ctx context.Context, src source.Source) {
	defer close(j.done)
	if j.stream {
		return
	}
	data, err := src.Blob(ctx, j.id)
	if err != nil {
		j.err = fmt.Errorf("reading blob %s: %w", j.id, err)
		return
	}
	if b := j.base; b != nil {
		select {
		case <-b.done:
		case <-ctx.Done():
			j.err = ctx.Err()
			return
		}
		if b.err == nil && b.depth < maxDeltaDepth {
			if bd := b.take(); bd != nil {
				if d := makeDelta(bd, data); d != nil {
					j.delta, j.depth, j.size, j.payload = b, b.depth+1, len(d), compress(d)
				}
			}
		}
	}
	if j.payload == nil {
		j.size, j.payload = len(data), compress(data)
	}
	j.mu.Lock()
	j.data = data
	j.mu.Unlock()
}

// take hands the content to the next version (once).
func (j *blobJob) take() []byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	d := j.data
	j.data = nil
	return d
}

// objectSink is the storer the Synthesizer writes trees and commits into:
// they go to the pack writer, or nowhere when only ids are wanted.
type objectSink struct {
	ctx     context.Context
	entries chan<- packEntry // nil: ids only
	seeding bool             // every object counts as present (priming with the base)
	sent    map[plumbing.Hash]struct{}
}

type deltaBase struct {
	data  []byte
	off   uint64
	depth int
}

var errSinkOnly = errors.New("remotehelper: the object sink is write-only")

func (s *objectSink) NewEncodedObject() plumbing.EncodedObject { return &plumbing.MemoryObject{} }

func (s *objectSink) HasEncodedObject(h plumbing.Hash) error {
	if s.seeding {
		return nil
	}
	if _, ok := s.sent[h]; ok {
		return nil
	}
	return plumbing.ErrObjectNotFound
}

func (s *objectSink) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	h := o.Hash()
	if s.entries == nil {
		return h, nil
	}
	if t := o.Type(); t != plumbing.TreeObject && t != plumbing.CommitObject && t != plumbing.BlobObject {
		return h, fmt.Errorf("remotehelper: unexpected %s object %s", t, h)
	}
	r, err := o.Reader()
	if err != nil {
		return h, err
	}
	data := make([]byte, o.Size())
	_, err = io.ReadFull(r, data)
	r.Close()
	if err != nil {
		return h, err
	}
	select {
	case s.entries <- packEntry{id: h, typ: o.Type(), data: data}:
	case <-s.ctx.Done():
		return h, context.Cause(s.ctx)
	}
	s.sent[h] = struct{}{}
	return h, nil
}

func (s *objectSink) EncodedObject(plumbing.ObjectType, plumbing.Hash) (plumbing.EncodedObject, error) {
	return nil, plumbing.ErrObjectNotFound
}

func (s *objectSink) IterEncodedObjects(plumbing.ObjectType) (storer.EncodedObjectIter, error) {
	return nil, errSinkOnly
}

func (s *objectSink) EncodedObjectSize(plumbing.Hash) (int64, error) {
	return 0, plumbing.ErrObjectNotFound
}

func (s *objectSink) AddAlternate(string) error { return errSinkOnly }
