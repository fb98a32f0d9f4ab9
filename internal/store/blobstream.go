package store

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/zstd"
)

// Streaming large blobs.
//
// A blob over streamMin (an attachment) never exists in memory whole:
// PutBlobFrom spools it to a temporary file (its git id needs its size
// before its content, and its record's keys need the id), then writes the
// same record PutBlob would (raw, or one zstd frame) part by part, a few
// parts per commit; OpenBlob reads it back part by part. Smaller blobs go
// through PutBlob and Blob as before (deltas and the cache need them whole).
// The on-disk format is unchanged, so records written either way read
// either way.
const (
	// streamMin: larger blobs are streamed. Blobs this size or smaller may
	// be delta bases or deltas (maxDeltaInput) and are handled whole.
	streamMin = maxDeltaInput
	// streamWindow bounds the zstd window of streamed frames, and with it
	// the encoder's and decoder's memory.
	streamWindow = 2 << 20
	// partsPerCommit: parts written per write batch. Badger keeps a
	// batch's values in memory until it commits.
	partsPerCommit = 4
)

// PutBlobFrom stores the content read from r and returns its id and size.
// size is the content's length when known (a mismatch is an error), or -1.
// base is as for PutBlob (used only for blobs of streamMin bytes or less,
// which are read whole and stored by PutBlob). Content of unknown or
// larger size is spooled to an unlinked temporary file next to the
// database, and large content is stored from there in parts, so memory
// stays bounded (a few MiB) whatever the size. An error from r is returned
// and nothing is stored.
func (s *Store) PutBlobFrom(r io.Reader, size int64, base BlobID) (BlobID, int64, error) {
	if size > maxBlobSize {
		return BlobID{}, 0, fmt.Errorf("store: blob of %d bytes is over the %d byte limit", size, maxBlobSize)
	}
	if size >= 0 && size <= streamMin {
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return BlobID{}, 0, fmt.Errorf("store: reading a blob of %d bytes: %w", size, err)
		}
		if err := expectEOF(r); err != nil {
			return BlobID{}, 0, err
		}
		id, err := s.PutBlob(data, base)
		return id, size, err
	}
	sp, err := s.spool(r, size)
	if err != nil {
		return BlobID{}, 0, err
	}
	if sp.size <= streamMin { // size was unknown: small after all
		defer sp.f.Close()
		data := make([]byte, sp.size)
		if _, err := sp.f.ReadAt(data, 0); err != nil && err != io.EOF {
			return BlobID{}, 0, fmt.Errorf("store: reading back a blob's temporary file: %w", err)
		}
		id, err := s.PutBlob(data, base)
		return id, sp.size, err
	}
	defer sp.f.Close()
	if err := s.putSpooled(sp); err != nil {
		return BlobID{}, 0, fmt.Errorf("store: blob %s: %w", sp.id, err)
	}
	return sp.id, sp.size, nil
}

// expectEOF fails if r has more to read.
func expectEOF(r io.Reader) error {
	var b [1]byte
	n, err := io.ReadFull(r, b[:])
	if n > 0 {
		return errors.New("store: the blob is longer than its announced size")
	}
	if err != io.EOF && err != io.ErrUnexpectedEOF {
		return fmt.Errorf("store: reading a blob: %w", err)
	}
	return nil
}

// spooled is a blob's content in a temporary file (already unlinked).
type spooled struct {
	f    *os.File
	size int64
	id   BlobID
}

// spool copies r to an unlinked temporary file in the data directory (the
// system's temporary directory for an in-memory store) and computes the
// content's git blob id.
func (s *Store) spool(r io.Reader, size int64) (*spooled, error) {
	dir := os.TempDir()
	if s.space != nil {
		dir = s.space.dir
	}
	f, err := os.CreateTemp(dir, ".blob-spool-*")
	if err != nil {
		return nil, fmt.Errorf("store: creating a temporary file for a large blob: %w", err)
	}
	// Unlinked at once: a crash leaves nothing behind.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: temporary file for a large blob: %w", err)
	}
	sp := &spooled{f: f, size: size}
	var h hash.Hash
	w := io.Writer(f)
	if size >= 0 { // hashed while spooling
		h = blobHasher(size)
		w = io.MultiWriter(f, h)
	}
	n, err := io.Copy(w, io.LimitReader(r, maxBlobSize+1))
	switch {
	case err != nil:
		err = fmt.Errorf("store: reading a blob: %w", err)
	case n > maxBlobSize:
		err = fmt.Errorf("store: blob over the %d byte limit", maxBlobSize)
	case size >= 0 && n != size:
		err = fmt.Errorf("store: blob of %d bytes announced, %d read", size, n)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if size < 0 {
		sp.size = n
		h = blobHasher(n)
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, n)); err != nil {
			f.Close()
			return nil, fmt.Errorf("store: reading back a large blob's temporary file: %w", err)
		}
	}
	copy(sp.id[:], h.Sum(nil))
	return sp, nil
}

// blobHasher returns a hash that gives a git blob id of size bytes once
// fed the content.
func blobHasher(size int64) hash.Hash {
	h := sha1.New()
	h.Write([]byte("blob " + strconv.FormatInt(size, 10) + "\x00"))
	return h
}

// putSpooled writes sp's record (unless the blob is stored already).
func (s *Store) putSpooled(sp *spooled) error {
	if has, err := s.HasBlob(sp.id); err != nil || has {
		return err
	}
	rec := blobRec{format: blobRaw, size: uint64(sp.size)}
	sample := make([]byte, compressSample)
	n, err := sp.f.ReadAt(sample, 0)
	if err != nil && err != io.EOF {
		return fmt.Errorf("reading back its temporary file: %w", err)
	}
	sample = sample[:n]
	if s.compresses(sample) {
		rec.format = blobZstd
	}
	e := &enc{}
	rec.appendHeader(e)
	// The space check reserves the uncompressed size: an upper bound.
	release, err := s.reserveSpace(len(e.b) + int(sp.size))
	if err != nil {
		return err
	}
	defer release()

	key := blobKey(sp.id)
	pw := &partWriter{s: s, key: key, nonce: rand.Uint64(), buf: make([]byte, 0, s.maxValue)}
	defer pw.cancel()
	pw.Write(e.b)
	content := io.NewSectionReader(sp.f, 0, sp.size)
	if rec.format == blobRaw {
		_, err = io.Copy(pw, content)
	} else {
		err = s.compressStream(pw, content)
	}
	if err != nil {
		return err
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(key); err == nil {
			return nil // stored meanwhile
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return pw.finish(txn)
	})
	if err != nil && !errors.Is(err, badger.ErrConflict) { // conflict: the same blob was stored concurrently
		return fmt.Errorf("writing: %w", err)
	}
	return nil
}

// compressStream writes src to w as one zstd frame without the magic
// number (the blobZstd payload).
func (s *Store) compressStream(w io.Writer, src io.Reader) error {
	strip := &skipWriter{w: w, skip: len(zstdMagic)}
	zw, err := zstd.NewWriter(strip, zstd.WithEncoderLevel(fullLevel), zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(streamWindow))
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, src); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// skipWriter drops the first skip bytes written to it.
type skipWriter struct {
	w    io.Writer
	skip int
}

func (s *skipWriter) Write(p []byte) (int, error) {
	n := len(p)
	if s.skip > 0 {
		k := min(s.skip, len(p))
		s.skip -= k
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if _, err := s.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// partWriter writes a record as setValue would split it (parts of
// s.maxValue bytes under partKey(key, nonce, i), then a formatParts marker
// under key, or the record itself when it fits in one value), without
// holding more than partsPerCommit parts in memory.
type partWriter struct {
	s     *Store
	key   []byte
	nonce uint64
	buf   []byte // the part being filled
	wb    *badger.WriteBatch
	inWB  int // parts in wb
	n     int // parts written or in wb
	total uint64
	spare [][]byte // buffers of committed parts, for reuse
	used  [][]byte // buffers of parts in wb
	err   error
}

func (p *partWriter) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n := len(b)
	for len(b) > 0 {
		if len(p.buf) == cap(p.buf) {
			if p.err = p.flushPart(); p.err != nil {
				return 0, p.err
			}
		}
		k := copy(p.buf[len(p.buf):cap(p.buf)], b)
		p.buf = p.buf[:len(p.buf)+k]
		b = b[k:]
	}
	p.total += uint64(n)
	return n, nil
}

// flushPart hands the full buffer to the write batch, committing it every
// partsPerCommit parts.
func (p *partWriter) flushPart() error {
	if p.wb == nil {
		p.wb = p.s.db.NewWriteBatch()
	}
	if err := p.wb.Set(partKey(p.key, p.nonce, p.n), p.buf); err != nil {
		return err
	}
	p.n++
	p.inWB++
	p.used = append(p.used, p.buf)
	if p.inWB == partsPerCommit {
		if err := p.commit(); err != nil {
			return err
		}
	}
	if k := len(p.spare); k > 0 {
		p.buf, p.spare = p.spare[k-1][:0], p.spare[:k-1]
	} else {
		p.buf = make([]byte, 0, p.s.maxValue)
	}
	return nil
}

// commit flushes the write batch; its buffers may then be reused (Badger
// has copied the values into its log or memtable).
func (p *partWriter) commit() error {
	if p.wb == nil {
		return nil
	}
	err := p.wb.Flush()
	p.wb, p.inWB = nil, 0
	p.spare, p.used = append(p.spare, p.used...), p.used[:0]
	p.s.releaseMapped() // what was just written need not stay resident
	return err
}

// finish writes the last part and sets key in txn to the marker (or to the
// record when it fit in one part).
func (p *partWriter) finish(txn *badger.Txn) error {
	if p.err != nil {
		return p.err
	}
	if p.n == 0 {
		return txn.Set(p.key, p.buf)
	}
	if len(p.buf) > 0 {
		if err := p.flushPart(); err != nil {
			return err
		}
	}
	if err := p.commit(); err != nil {
		return err
	}
	marker := []byte{formatParts}
	marker = binary.BigEndian.AppendUint64(marker, p.nonce)
	marker = binary.AppendUvarint(marker, uint64(p.n))
	marker = binary.AppendUvarint(marker, p.total)
	return txn.Set(p.key, marker)
}

func (p *partWriter) cancel() {
	if p.wb != nil {
		p.wb.Cancel()
	}
}

// OpenBlob returns a reader of blob id's content and its size, or an error
// wrapping ErrNotFound. A large blob (over streamMin) is read part by part
// from the database and never held whole; smaller ones are decoded at
// once. The content is verified against the id as it is read: a reader
// whose content does not match fails at its end instead of returning
// io.EOF. The caller must Close the reader.
func (s *Store) OpenBlob(id BlobID) (io.ReadCloser, int64, error) {
	if data, ok := s.cache.get(id); ok {
		return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}
	var (
		rec    blobRec
		marker []byte
	)
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if rec, err = blobHeaderTxn(txn, id); err != nil {
			return err
		}
		item, err := txn.Get(blobKey(id))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) > 0 && v[0] == formatParts {
				marker = bytes.Clone(v)
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: blob %s: %w", id, err)
	}
	if rec.format == blobDelta || marker == nil || rec.size <= streamMin {
		data, err := s.blob(id, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("store: blob %s: %w", id, err)
		}
		return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}
	nonce, n, total, err := parseParts(marker)
	if err != nil {
		return nil, 0, fmt.Errorf("store: blob %s: record damaged: %w", id, err)
	}
	pr := &partReader{s: s, key: blobKey(id), nonce: nonce, n: n, left: total}
	// Skip the record header (it is at the start of part 0).
	hdr := &enc{}
	rec.appendHeader(hdr)
	if _, err := io.CopyN(io.Discard, pr, int64(len(hdr.b))); err != nil {
		return nil, 0, fmt.Errorf("store: blob %s: record damaged: %w", id, err)
	}
	br := &blobReader{id: id, size: int64(rec.size), h: blobHasher(int64(rec.size)), r: pr}
	if rec.format == blobZstd {
		d, err := zstd.NewReader(io.MultiReader(bytes.NewReader(zstdMagic), bufio.NewReaderSize(pr, 64<<10)),
			zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxRecordSize))
		if err != nil {
			return nil, 0, fmt.Errorf("store: blob %s: %w", id, err)
		}
		br.r, br.close = d, d.Close
	}
	return br, int64(rec.size), nil
}

// partReader reads the parts of a split value in order, each in its own
// read transaction (parts are immutable; the caller may read slowly).
type partReader struct {
	s     *Store
	key   []byte
	nonce uint64
	n, i  int    // parts, next part
	left  uint64 // bytes of the value not yet read
	buf   []byte // unread rest of the current part
	space []byte
}

func (p *partReader) Read(b []byte) (int, error) {
	for len(p.buf) == 0 {
		if p.i == p.n {
			if p.left != 0 {
				return 0, fmt.Errorf("%w (parts shorter than their marker says)", errCorrupt)
			}
			return 0, io.EOF
		}
		err := p.s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(partKey(p.key, p.nonce, p.i))
			if err != nil {
				return fmt.Errorf("part %d of %d: %w", p.i, p.n, err)
			}
			p.space, err = item.ValueCopy(p.space[:0])
			return err
		})
		if err != nil {
			return 0, err
		}
		p.buf = p.space
		p.i++
		if p.i%partsPerCommit == 0 {
			p.s.releaseMapped() // what was read need not stay resident
		}
		if uint64(len(p.buf)) > p.left {
			return 0, fmt.Errorf("%w (parts longer than their marker says)", errCorrupt)
		}
		p.left -= uint64(len(p.buf))
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	return n, nil
}

// blobReader checks content against its id while it is read.
type blobReader struct {
	id    BlobID
	size  int64
	read  int64
	h     hash.Hash
	r     io.Reader
	close func()
	err   error
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.read += int64(n)
	if b.read > b.size {
		err = fmt.Errorf("store: blob %s: %w (content longer than its record says)", b.id, errCorrupt)
	} else if err == io.EOF {
		var got BlobID
		copy(got[:], b.h.Sum(nil))
		if b.read != b.size || got != b.id {
			err = fmt.Errorf("store: blob %s: %w (content does not match its id)", b.id, errCorrupt)
		}
	} else if err != nil {
		err = fmt.Errorf("store: blob %s: %w", b.id, err)
	}
	b.err = err
	return n, err
}

func (b *blobReader) Close() error {
	if b.close != nil {
		b.close()
		b.close = nil
	}
	if b.err == nil {
		b.err = errors.New("store: blob reader closed")
	}
	return nil
}
