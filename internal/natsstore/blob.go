package natsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Blobs are written to the local replica first (PutBlob and PutBlobFrom
// are the replica's, so deltas are chosen there), and uploaded just
// before the first write that names them is published: a write in the
// log never names a blob the cluster lacks, and a blob no snapshot names
// is never uploaded.
//
// A blob's record (store.BlobRecord: a delta stays a delta) is a message
// on rgs.blob.<id> in RGS_BLOBS; the records of a snapshot are published
// together and their acknowledgements awaited once, so a first import of
// thousands of notes costs about one round trip per window of messages,
// not per blob. Records over a NATS message, and blobs over
// store.MaxRecordBlob (whose content is uploaded instead), go to the
// object store rgs_blobs, whose description says which form it holds.
const (
	formRecord  = "record"
	formContent = "content"
)

func blobSubject(id store.BlobID) string { return "rgs.blob." + id.String() }

// blobsOf are the blobs write o names.
func blobsOf(o *op) []store.BlobID {
	ids := make([]store.BlobID, 0, len(o.Put)+1)
	for _, f := range o.Put {
		ids = append(ids, f.Blob)
	}
	if o.Origin.Pushed != nil {
		ids = append(ids, o.Origin.Pushed.Pack)
	}
	return ids
}

// uploadBlobs makes sure every blob o names, and every delta base they
// need, is in the cluster.
func (s *Store) uploadBlobs(f store.FolderID, o *op) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	var pending []jetstream.PubAckFuture
	var sent []store.BlobID
	maxMsg := int(s.nc.MaxPayload()) - 4096
	for _, id := range blobsOf(o) {
		for depth := 0; ; depth++ {
			if _, ok := s.uploaded.Load(id); ok || depth > 64 {
				break
			}
			size, err := s.Store.BlobSize(id)
			if err != nil {
				return fmt.Errorf("natsstore: snapshot of %s: %w", f, err)
			}
			if size > store.MaxRecordBlob {
				if err := s.uploadContent(ctx, id); err != nil {
					return fmt.Errorf("natsstore: snapshot of %s: %w", f, err)
				}
				break
			}
			rec, base, err := s.Store.BlobRecord(id)
			if err != nil {
				return fmt.Errorf("natsstore: snapshot of %s: %w", f, err)
			}
			if len(rec) > maxMsg {
				meta := jetstream.ObjectMeta{Name: id.String(), Description: formRecord}
				if _, err := s.blobs.Put(ctx, meta, bytes.NewReader(rec)); err != nil {
					return fmt.Errorf("natsstore: uploading blob %s: %w", id, err)
				}
				s.uploaded.Store(id, struct{}{})
			} else {
				fut, err := s.js.PublishAsync(blobSubject(id), rec)
				if err != nil {
					return fmt.Errorf("natsstore: uploading blob %s: %w", id, err)
				}
				pending = append(pending, fut)
				sent = append(sent, id)
				// Marked now so a base two files share is sent once;
				// unmarked below if its acknowledgement fails.
				s.uploaded.Store(id, struct{}{})
			}
			if base.IsZero() {
				break
			}
			id = base
		}
	}
	for i, fut := range pending {
		select {
		case <-fut.Ok():
			continue
		case <-fut.Err():
		case <-ctx.Done():
		}
		// Sent again one by one, waiting out a leader election (publish
		// returns at once when ctx has ended).
		if _, err := s.publish(ctx, fut.Msg()); err != nil {
			s.uploaded.Delete(sent[i])
			return fmt.Errorf("natsstore: uploading blob %s: %w", sent[i], err)
		}
	}
	return nil
}

// uploadContent uploads a large blob's content to the object store.
func (s *Store) uploadContent(ctx context.Context, id store.BlobID) error {
	switch _, err := s.blobs.GetInfo(ctx, id.String()); {
	case err == nil:
		s.uploaded.Store(id, struct{}{})
		return nil
	case !errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("blob %s: %w", id, err)
	}
	r, _, err := s.Store.OpenBlob(id)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := s.blobs.Put(ctx, jetstream.ObjectMeta{Name: id.String(), Description: formContent}, r); err != nil {
		return fmt.Errorf("uploading blob %s: %w", id, err)
	}
	s.uploaded.Store(id, struct{}{})
	return nil
}

// fetchBlobs brings every blob o names that the replica lacks.
func (s *Store) fetchBlobs(ctx context.Context, o *op) error {
	for _, id := range blobsOf(o) {
		if err := s.fetch(ctx, id, 0); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) fetch(ctx context.Context, id store.BlobID, depth int) error {
	if has, err := s.Store.HasBlob(id); err != nil || has {
		return err
	}
	if depth > 64 {
		return fmt.Errorf("blob %s: delta chain too deep", id)
	}
	var rec []byte
	msg, err := s.recs.GetLastMsgForSubject(ctx, blobSubject(id))
	switch {
	case err == nil:
		rec = msg.Data
	case errors.Is(err, jetstream.ErrMsgNotFound):
		if rec, err = s.fetchObject(ctx, id); err != nil || rec == nil {
			return err
		}
	default:
		return fmt.Errorf("fetching blob %s: %w", id, err)
	}
	base, err := store.BlobRecordBase(rec)
	if err != nil {
		return fmt.Errorf("fetching blob %s: %w", id, err)
	}
	if !base.IsZero() {
		if err := s.fetch(ctx, base, depth+1); err != nil {
			return err
		}
	}
	if err := s.Store.PutBlobRecord(id, rec); err != nil {
		return err
	}
	s.uploaded.Store(id, struct{}{})
	return nil
}

// fetchObject reads blob id from the object store: it returns a record,
// or stores a large blob's content itself and returns nil.
func (s *Store) fetchObject(ctx context.Context, id store.BlobID) ([]byte, error) {
	obj, err := s.blobs.Get(ctx, id.String())
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", id, err)
	}
	defer obj.Close()
	info, err := obj.Info()
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", id, err)
	}
	switch info.Description {
	case formContent:
		got, _, err := s.Store.PutBlobFrom(obj, int64(info.Size), store.BlobID{})
		if err != nil {
			return nil, fmt.Errorf("fetching blob %s: %w", id, err)
		}
		if got != id {
			return nil, fmt.Errorf("fetching blob %s: the cluster's object holds blob %s", id, got)
		}
		s.uploaded.Store(id, struct{}{})
		return nil, nil
	case formRecord:
		rec := make([]byte, info.Size)
		if _, err := io.ReadFull(obj, rec); err != nil {
			return nil, fmt.Errorf("fetching blob %s: %w", id, err)
		}
		return rec, nil
	}
	return nil, fmt.Errorf("fetching blob %s: object of unknown form %q", id, info.Description)
}
