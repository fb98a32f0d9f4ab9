package source

import (
	"bytes"
	"context"
	"io"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// BlobOpener is implemented by sources that can stream a blob instead of
// returning it whole: readers of large attachments (the read API, the
// mount, git) use it when present, so a file of hundreds of MB is never
// held in memory.
type BlobOpener interface {
	// OpenBlob returns a reader of blob id's content and its length. The
	// content is checked against the id as it is read: a mismatch fails
	// the read at its end rather than returning io.EOF. The caller closes
	// the reader.
	OpenBlob(ctx context.Context, id store.BlobID) (io.ReadCloser, int64, error)
}

// OpenBlob streams blob id from the store (store.Store.OpenBlob).
func (s *storeSource) OpenBlob(ctx context.Context, id store.BlobID) (io.ReadCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return s.st.OpenBlob(id)
}

// OpenBlob streams blob id from src when src is a BlobOpener, and otherwise
// reads it whole (Source.Blob) and returns a reader over it.
func OpenBlob(ctx context.Context, src Source, id store.BlobID) (io.ReadCloser, int64, error) {
	if o, ok := src.(BlobOpener); ok {
		return o.OpenBlob(ctx, id)
	}
	data, err := src.Blob(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
}
