package readapi

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"hash"
	"io"
	"strconv"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// OpenBlob is Blob as a stream, for large attachments (the mount and the
// remote helper use it through source.BlobOpener): the content is checked
// against its id as it is read, and a mismatch or a short body fails the
// read at its end instead of returning io.EOF. An answer without a
// Content-Length is read whole and checked first. The caller closes the
// reader.
func (c *Client) OpenBlob(ctx context.Context, id store.BlobID) (io.ReadCloser, int64, error) {
	what := "blob " + id.String()
	resp, err := c.get(ctx, "/api/v1/blobs/"+id.String(), what)
	if err != nil {
		return nil, 0, err
	}
	n := resp.ContentLength
	if n > MaxBlobSize {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("reading %s from %s: %d bytes, over the %d-byte limit of a blob", what, c.base, n, MaxBlobSize)
	}
	if n < 0 {
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBlobSize+1))
		if err == nil && len(data) > MaxBlobSize {
			err = fmt.Errorf("over the %d-byte limit of a blob", MaxBlobSize)
		}
		if err == nil && store.BlobIDOf(data) != id {
			err = fmt.Errorf("the content does not match its id (%d bytes)", len(data))
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, ctx.Err()
			}
			return nil, 0, fmt.Errorf("reading %s from %s: %w", what, c.base, err)
		}
		return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}
	h := sha1.New()
	h.Write([]byte("blob " + strconv.FormatInt(n, 10) + "\x00"))
	return &checkedBody{ctx: ctx, body: resp.Body, id: id, left: n, h: h, what: what, base: c.base}, n, nil
}

// checkedBody reads a blob's answer and checks it against the blob's id.
type checkedBody struct {
	ctx        context.Context
	body       io.ReadCloser
	id         store.BlobID
	left       int64
	h          hash.Hash
	what, base string
	err        error
}

func (b *checkedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one more byte shows a body longer than announced
	}
	n, err := b.body.Read(p)
	b.h.Write(p[:n])
	b.left -= int64(n)
	switch {
	case b.left < 0:
		err = fmt.Errorf("reading %s from %s: the answer is longer than its Content-Length", b.what, b.base)
	case err == io.EOF:
		var got store.BlobID
		copy(got[:], b.h.Sum(nil))
		if b.left != 0 {
			err = fmt.Errorf("reading %s from %s: the answer stopped %d bytes short", b.what, b.base, b.left)
		} else if got != b.id {
			err = fmt.Errorf("reading %s from %s: the content does not match its id (got %s)", b.what, b.base, got)
		}
	case err != nil:
		if b.ctx.Err() != nil {
			err = b.ctx.Err()
		} else {
			err = fmt.Errorf("reading %s from %s: %w", b.what, b.base, err)
		}
	}
	b.err = err
	return n, err
}

func (b *checkedBody) Close() error { return b.body.Close() }
