package natsstore

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// ErrConflict means another instance wrote the folder since this replica
// last saw it: its lease moved. The write was not made; the folder's new
// holder carries on.
var ErrConflict = store.ErrConflict

// Kinds of write in the log.
const (
	opFolder byte = iota + 1
	opSnapshot
	opDocStates
	opPush
	opRelease
	opDrop
	opConfig
)

// op is one write, as published (gob, then zstd). A snapshot carries
// its tree as a delta against the folder's previous snapshot, as the
// Badger records do, so a one-file edit of a 20,000-file folder is small.
type op struct {
	Kind   byte
	Folder store.FolderID
	Seq    uint64 // opSnapshot: the sequence it gets (a replica checks)

	Time    time.Time
	Users   []string
	Changes []store.Change
	Origin  store.Origin
	Put     []store.File // files added or changed
	Del     []string     // paths removed
	// Hold is the writer's mass-deletion policy: every replica holds
	// what the writer held, whatever it was given itself.
	Hold store.HoldPolicy
	// Events are the queue keys of the webhook events the snapshot
	// records (Store.PendingEvents leaves them out), in the queue created
	// at Queue: keys of a queue deleted and made again mean other events.
	Events   []uint64
	EventIDs []string
	Queue    time.Time

	Docs map[string]store.DocState
	Drop []string

	Conn     string
	Push     *store.PushState
	Owned    []string
	OwnedSet bool // Owned replaces the paths, even when empty

	Config []byte
}

// Large ops (the first snapshot of a big folder) go to the object store
// and the log carries their name: NATS messages are at most 1 MB.
const (
	maxInlineOp = 512 << 10
	hdrOpObject = "Rgs-Op-Object"
)

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
)

func encodeOp(o *op) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(o); err != nil {
		return nil, err
	}
	return zenc.EncodeAll(b.Bytes(), nil), nil
}

func decodeOp(data []byte) (*op, error) {
	raw, err := zdec.DecodeAll(data, nil)
	if err != nil {
		return nil, err
	}
	o := &op{}
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(o); err != nil {
		return nil, err
	}
	return o, nil
}

// subject is folder f's subject in RGS_LOG.
func subject(f store.FolderID) string {
	return "rgs.log." + f.Relay + "." + f.Folder
}

func (s *Store) subjLock(subj string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.subj[subj]
	if m == nil {
		m = &sync.Mutex{}
		s.subj[subj] = m
	}
	return m
}

// follow starts applying RGS_LOG, in order, to the replica: the log as
// it is now through an ordered consumer (fast: the server streams it),
// then, from where that ends, each new write read by sequence from the
// stream leader, woken by the headers the stream republishes on
// rgs.logged.> and by a poll that catches wake-ups lost in a reconnect.
// The tail uses no consumer because on nats-server 2.9 a new consumer may
// be placed on a node that just died, and making it then hangs until the
// cluster notices; a replay that fails that way carries on the same way.
// Following never gives up while the store is open.
func (s *Store) follow(ctx context.Context) error {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	wake := make(chan struct{}, 1)
	sub, err := s.nc.Subscribe(loggedSubjects, func(*nats.Msg) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		cancel()
		return fmt.Errorf("natsstore: following %s: %w", logStream, err)
	}
	info, err := s.logs.Info(ctx)
	if err != nil {
		cancel()
		sub.Unsubscribe()
		return fmt.Errorf("natsstore: following %s: %w", logStream, err)
	}
	s.stopFollow = cancel
	s.followDone = make(chan struct{})
	go func() {
		defer close(s.followDone)
		defer sub.Unsubscribe()
		if err := s.replay(fctx, info.State.LastSeq); err != nil && fctx.Err() == nil {
			s.log.Warn("replaying the store log through a consumer failed; reading it write by write", "err", err)
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			s.tail(fctx)
			select {
			case <-fctx.Done():
				return
			case <-wake:
			case <-tick.C:
			}
		}
	}()
	return nil
}

// replay applies the log up to last through an ordered consumer.
func (s *Store) replay(ctx context.Context, last uint64) error {
	if last == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	cons, err := s.js.OrderedConsumer(cctx, logStream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	cancel()
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() { // Next does not watch ctx
		select {
		case <-ctx.Done():
		case <-done:
		}
		it.Stop()
	}()
	for s.position() < last {
		msg, err := it.Next()
		if err != nil {
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		if err := s.applyFollowed(ctx, msg.Subject(), md.Sequence.Stream, msg.Headers(), msg.Data()); err != nil {
			return err
		}
	}
	return nil
}

// tail applies every write after the replica's position, reading each
// from the stream leader, until there is none or a read fails (the next
// wake-up or poll tries again).
func (s *Store) tail(ctx context.Context) {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, defaultTimeout)
		m, err := s.logs.GetMsg(rctx, s.position()+1, jetstream.WithGetMsgSubject(logSubjects))
		cancel()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgNotFound) && ctx.Err() == nil {
				s.log.Debug("reading the store log", "err", err)
			}
			return
		}
		if s.applyFollowed(ctx, m.Subject, m.Sequence, m.Header, m.Data) != nil {
			return
		}
	}
}

// applyFollowed applies a write the follower read and moves the
// replica's position past it. A write that cannot be applied now (its
// blobs are unreachable) is retried until it is, or ctx ends: skipping it
// would leave this replica behind the others for good.
func (s *Store) applyFollowed(ctx context.Context, subj string, seq uint64, hdr nats.Header, data []byte) error {
	for attempt := 0; ; attempt++ {
		err := s.applyMsg(ctx, subj, seq, hdr, data)
		var refused *refusedError
		if errors.As(err, &refused) {
			s.log.Debug("a write every replica refuses", "subject", subj, "seq", seq, "err", err)
			break
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Error("applying a store write to the local replica; retrying", "subject", subj, "seq", seq, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Second<<min(attempt, 5), 30*time.Second)):
		}
	}
	s.advance(seq)
	return nil
}

// position is the stream sequence the replica has applied up to.
func (s *Store) position() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// advance records that the follower applied everything up to seq.
func (s *Store) advance(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.pos {
		s.pos = seq
		close(s.moved)
		s.moved = make(chan struct{})
	}
}

// waitPos waits until the follower has applied stream sequence seq.
func (s *Store) waitPos(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		pos, moved := s.pos, s.moved
		s.mu.Unlock()
		if pos >= seq {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return fmt.Errorf("natsstore: catching up with the store log (at %d of %d): %w", pos, seq, ctx.Err())
		}
	}
}

// Sync waits until the replica has every write the log had when Sync was
// called.
func (s *Store) Sync(ctx context.Context) error {
	info, err := s.logs.Info(ctx)
	if err != nil {
		return fmt.Errorf("natsstore: reading the store log: %w", err)
	}
	return s.waitPos(ctx, info.State.LastSeq)
}

// CatchUp waits until the replica has every write of folder f the log
// has: a new lease holder calls it before its first write.
func (s *Store) CatchUp(ctx context.Context, f store.FolderID) error {
	m, err := s.logs.GetLastMsgForSubject(ctx, subject(f))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("natsstore: reading folder %s's log: %w", f, err)
	}
	return s.waitPos(ctx, m.Sequence)
}

// applyMsg applies one log message (from the follower, or a write of this
// instance once published); a message applied before is skipped.
func (s *Store) applyMsg(ctx context.Context, subj string, seq uint64, hdr nats.Header, data []byte) error {
	lk := s.subjLock(subj)
	lk.Lock()
	defer lk.Unlock()
	return s.applyLocked(ctx, subj, seq, hdr, data)
}

// refusedError is a write the store refused (a bad path, unsorted owned
// paths). Every replica runs the same checks and refuses it alike, so it
// is passed over, unlike a write whose blobs could not be fetched, which
// is retried.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// applyLocked is applyMsg with subj's lock held.
func (s *Store) applyLocked(ctx context.Context, subj string, seq uint64, hdr nats.Header, data []byte) error {
	s.mu.Lock()
	done := s.applied[subj] >= seq
	s.mu.Unlock()
	if done {
		return nil
	}
	if name := hdr.Get(hdrOpObject); name != "" {
		var err error
		if data, err = s.blobs.GetBytes(ctx, name); err != nil {
			return fmt.Errorf("reading write %d from object %s: %w", seq, name, err)
		}
	}
	o, err := decodeOp(data)
	if err != nil {
		err = &refusedError{fmt.Errorf("decoding write %d of %s: %w", seq, subj, err)}
	} else {
		err = s.apply(ctx, o)
	}
	var refused *refusedError
	if err != nil && !errors.As(err, &refused) {
		return err
	}
	s.mu.Lock()
	s.applied[subj] = seq
	s.mu.Unlock()
	return err
}

// apply makes write o in the replica.
func (s *Store) apply(ctx context.Context, o *op) error {
	switch o.Kind {
	case opFolder:
		return refused(s.Store.AddFolder(o.Folder))
	case opSnapshot:
		files, head, err := s.treeAfter(o)
		if err != nil {
			return err
		}
		// The log orders a folder's writes, and a writer expects the
		// subject's last sequence, so a snapshot follows the one its
		// writer saw. Should two ever both be appended (a server that
		// does not enforce the expectation), every replica keeps the
		// first and refuses the second alike.
		if o.Seq != head+1 {
			return &refusedError{fmt.Errorf("snapshot %d of %s follows snapshot %d: %w", o.Seq, o.Folder, head, ErrConflict)}
		}
		if err := s.fetchBlobs(ctx, o); err != nil {
			return err
		}
		snap := &store.Snapshot{Folder: o.Folder, Time: o.Time, Users: o.Users, Changes: o.Changes, Origin: o.Origin, Files: files}
		seq, err := s.Store.AddSnapshotHolding(snap, o.Docs, o.Drop, o.Hold)
		if err != nil {
			return &refusedError{err}
		}
		if seq != o.Seq {
			return fmt.Errorf("snapshot of %s became %d in this replica, %d in the log: the replica is damaged (restart to rebuild it)", o.Folder, seq, o.Seq)
		}
		if o.Queue.Equal(s.queueMade) {
			s.mu.Lock()
			for _, k := range o.Events {
				s.handled[k] = struct{}{}
			}
			for _, id := range o.EventIDs {
				s.handledIDs[id] = o.Time
			}
			s.mu.Unlock()
		}
		return nil
	}
	return refused(s.applySmall(o))
}

// refused marks an error of the store as a refusal.
func refused(err error) error {
	if err == nil {
		return nil
	}
	return &refusedError{err}
}

// applySmall makes the writes that name no blob.
func (s *Store) applySmall(o *op) error {
	switch o.Kind {
	case opDocStates:
		return s.Store.PutDocStates(o.Folder, o.Docs, o.Drop)
	case opPush:
		owned := o.Owned
		if o.OwnedSet && owned == nil {
			owned = []string{} // gob has no empty slices: "clear" travels as OwnedSet
		}
		return s.Store.SetPushState(o.Folder, o.Conn, o.Push, owned)
	case opRelease:
		_, err := s.Store.ReleaseHold(o.Folder)
		return err
	case opDrop:
		_, _, err := s.Store.DropHold(o.Folder)
		return err
	case opConfig:
		return s.Store.SetHistoryConfig(o.Config)
	}
	return fmt.Errorf("unknown write kind %d (written by a newer relay-git-sync?)", o.Kind)
}

// treeAfter is the tree snapshot op o leaves, the replica's latest tree
// of the folder with o's delta applied, and the latest's sequence.
func (s *Store) treeAfter(o *op) ([]store.File, uint64, error) {
	var (
		files []store.File
		head  uint64
	)
	prev, err := s.Store.Latest(o.Folder)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, 0, err
	default:
		files, head = prev.Files, prev.Seq
	}
	del := map[string]bool{}
	for _, p := range o.Del {
		del[p] = true
	}
	for _, f := range o.Put {
		del[f.Path] = true
	}
	out := make([]store.File, 0, len(files)+len(o.Put))
	for _, f := range files {
		if !del[f.Path] {
			out = append(out, f)
		}
	}
	out = append(out, o.Put...)
	slices.SortFunc(out, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
	return out, head, nil
}

// treeDelta is what o must carry for the tree to go from prev to next.
func treeDelta(prev, next []store.File) (put []store.File, del []string) {
	old := make(map[string]store.File, len(prev))
	for _, f := range prev {
		old[f.Path] = f
	}
	for _, f := range next {
		if o, ok := old[f.Path]; !ok || o != f {
			put = append(put, f)
		}
		delete(old, f.Path)
	}
	for p := range old {
		del = append(del, p)
	}
	slices.Sort(del)
	return put, del
}

// write publishes o on subj, expecting the replica's last write of subj
// to be the log's last (else ErrConflict), then applies it. check runs
// first, under the subject's lock, to refuse what the replica would.
func (s *Store) write(subj string, o *op, check func() error) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	lk := s.subjLock(subj)
	lk.Lock()
	if check != nil {
		if err := check(); err != nil {
			lk.Unlock()
			return 0, err
		}
	}
	data, err := encodeOp(o)
	if err != nil {
		lk.Unlock()
		return 0, fmt.Errorf("natsstore: encoding a write: %w", err)
	}
	hdr := nats.Header{}
	if len(data) > s.maxInline {
		name := fmt.Sprintf("op.%s.%s", strings.TrimPrefix(subj, "rgs.log."), nats.NewInbox()[len(nats.InboxPrefix):])
		if _, err := s.blobs.PutBytes(ctx, name, data); err != nil {
			lk.Unlock()
			return 0, fmt.Errorf("natsstore: storing a large write: %w", err)
		}
		hdr.Set(hdrOpObject, name)
		data = nil
	}
	s.mu.Lock()
	last := s.applied[subj]
	s.mu.Unlock()
	// The message id makes a retry after a lost acknowledgement a
	// duplicate (answered with the first's sequence) rather than a
	// conflict with itself.
	hdr.Set(jetstream.MsgIDHeader, nats.NewInbox()[len(nats.InboxPrefix):])
	msg := &nats.Msg{Subject: subj, Header: hdr, Data: data}
	ack, err := s.publish(ctx, msg, jetstream.WithExpectLastSequencePerSubject(last))
	// The lock is held until the write is applied: the next writer of
	// the subject expects it as the last.
	defer lk.Unlock()
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, ErrConflict
		}
		return 0, fmt.Errorf("natsstore: publishing a write of %s: %w", strings.TrimPrefix(subj, "rgs.log."), err)
	}
	if err := s.applyLocked(ctx, subj, ack.Sequence, hdr, data); err != nil {
		var refused *refusedError
		if errors.As(err, &refused) {
			return 0, refused.err // every replica refuses it: nothing was written (ErrConflict for a write that lost a race)
		}
		return ack.Sequence, fmt.Errorf("natsstore: the write is in the cluster but this replica could not apply it (restart to rebuild it): %w", err)
	}
	return ack.Sequence, nil
}

// canon returns f in the canonical (lower-case) form the store keeps,
// which names its subject.
func canon(f store.FolderID) (store.FolderID, error) {
	c, err := store.ParseFolderID(f.String())
	if err != nil {
		return f, fmt.Errorf("natsstore: %w", err)
	}
	return c, nil
}

// AddFolder follows folder f (idempotent: nothing is published for a
// folder the replica knows).
func (s *Store) AddFolder(f store.FolderID) error {
	f, err := canon(f)
	if err != nil {
		return err
	}
	known, err := s.Store.Folders()
	if err != nil {
		return err
	}
	if slices.Contains(known, f) {
		return nil
	}
	_, err = s.write(subject(f), &op{Kind: opFolder, Folder: f}, nil)
	if errors.Is(err, ErrConflict) { // another instance added it first
		return s.CatchUp(context.Background(), f)
	}
	return err
}

// AddSnapshot records snap as folder snap.Folder's next snapshot.
func (s *Store) AddSnapshot(snap *store.Snapshot, docs map[string]store.DocState, dropDocs []string) (uint64, error) {
	return s.addSnapshot(snap, docs, dropDocs, nil)
}

// AddSnapshotAfter is AddSnapshot only while the folder's latest snapshot
// is still base (0: none), the one snap was computed from; else it
// returns ErrConflict. An ingest that read the folder before its lease
// moved must not record a tree that would undo the new holder's writes.
func (s *Store) AddSnapshotAfter(base uint64, snap *store.Snapshot, docs map[string]store.DocState, dropDocs []string) (uint64, error) {
	return s.addSnapshot(snap, docs, dropDocs, &base)
}

func (s *Store) addSnapshot(snap *store.Snapshot, docs map[string]store.DocState, dropDocs []string, base *uint64) (uint64, error) {
	if err := store.ValidateSnapshot(snap, docs, dropDocs); err != nil {
		return 0, err
	}
	f, err := canon(snap.Folder)
	if err != nil {
		return 0, err
	}
	o := &op{Kind: opSnapshot, Folder: f, Time: snap.Time.UTC(), Users: snap.Users, Changes: snap.Changes, Origin: snap.Origin, Docs: docs, Drop: dropDocs, Hold: s.hold, Events: snap.Events, EventIDs: snap.EventIDs, Queue: s.queueMade}
	check := func() error {
		var prev []store.File
		o.Seq = 1
		switch p, err := s.Store.Latest(f); {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			prev, o.Seq = p.Files, p.Seq+1
		}
		if base != nil && *base+1 != o.Seq {
			return fmt.Errorf("natsstore: folder %s is at snapshot %d, the ingest read %d: %w", f, o.Seq-1, *base, ErrConflict)
		}
		o.Put, o.Del = treeDelta(prev, snap.Files)
		return s.uploadBlobs(f, o)
	}
	if _, err := s.write(subject(f), o, check); err != nil {
		return 0, err
	}
	snap.Seq, snap.Folder = o.Seq, f
	return o.Seq, nil
}

// PutDocStates updates folder f's doc states without a snapshot.
func (s *Store) PutDocStates(f store.FolderID, docs map[string]store.DocState, dropDocs []string) error {
	f, err := canon(f)
	if err != nil {
		return err
	}
	_, err = s.write(subject(f), &op{Kind: opDocStates, Folder: f, Docs: docs, Drop: dropDocs}, nil)
	return err
}

// SetPushState records a connector's push state of folder f.
func (s *Store) SetPushState(f store.FolderID, conn string, ps *store.PushState, owned []string) error {
	f, err := canon(f)
	if err != nil {
		return err
	}
	_, err = s.write(subject(f), &op{Kind: opPush, Folder: f, Conn: conn, Push: ps, Owned: owned, OwnedSet: owned != nil}, nil)
	return err
}

// ReleaseHold lets folder f's held snapshots be pushed.
func (s *Store) ReleaseHold(f store.FolderID) (*store.Hold, error) {
	f, err := canon(f)
	if err != nil {
		return nil, err
	}
	var h *store.Hold
	_, err = s.write(subject(f), &op{Kind: opRelease, Folder: f}, func() (err error) {
		h, err = s.Store.Held(f)
		if err == nil && h == nil {
			err = fmt.Errorf("natsstore: folder %s has no held snapshots: %w", f, store.ErrNotFound)
		}
		return err
	})
	return h, err
}

// DropHold drops folder f's held snapshots from the history: from the
// hold's first to the latest.
func (s *Store) DropHold(f store.FolderID) (*store.Hold, store.SeqRange, error) {
	f, err := canon(f)
	if err != nil {
		return nil, store.SeqRange{}, err
	}
	var (
		h    *store.Hold
		head uint64
	)
	_, err = s.write(subject(f), &op{Kind: opDrop, Folder: f}, func() (err error) {
		if h, err = s.Store.Held(f); err == nil && h == nil {
			err = fmt.Errorf("natsstore: folder %s has no held snapshots: %w", f, store.ErrNotFound)
		}
		if err == nil {
			head, _, err = s.Store.Head(f)
		}
		return err
	})
	if err != nil {
		return nil, store.SeqRange{}, err
	}
	return h, store.SeqRange{From: h.From, Through: head}, nil
}

// SetHistoryConfig records the history settings every instance uses.
func (s *Store) SetHistoryConfig(cfg []byte) error {
	cur, err := s.Store.HistoryConfig()
	if err == nil && bytes.Equal(cur, cfg) {
		return nil
	}
	_, err = s.write(settingsSubj, &op{Kind: opConfig, Config: cfg}, nil)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("natsstore: another instance changed the history settings at the same time: %w", err)
	}
	return err
}

// publish publishes msg, trying again while the cluster cannot answer (a
// leader being elected after a node died), until ctx ends.
func (s *Store) publish(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	for {
		ack, err := s.js.PublishMsg(ctx, msg, opts...)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return ack, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
