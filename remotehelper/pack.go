package remotehelper

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/klauspost/compress/zlib"
)

// The helper hands git its objects as one pack written straight into the
// repository's objects/pack directory, with the .idx git needs to read it:
// no `git index-pack`, which would inflate and hash every object again (it
// takes longer than building the history). Every id in the pack is already
// known: blob ids are the store's (checked against the content when it was
// read), tree and commit ids are computed by internal/history.
//
// Pack format: git's pack v2 (Documentation/gitformat-pack.txt): "PACK",
// version 2, object count, then per object a type-and-size header and the
// zlib-compressed content, or for an OFS_DELTA the distance back to its base
// and a compressed delta; a SHA-1 of everything before it ends the file. The
// index is version 2: fan-out table, sorted ids, CRC-32s, offsets.

// Pack object types.
const (
	objCommit   = 1
	objTree     = 2
	objBlob     = 3
	objOfsDelta = 6
)

type packObj struct {
	id  plumbing.Hash
	off uint64
	crc uint32
}

// packWriter writes a pack into a temporary file of a pack directory; finish
// names it and writes its index, abort removes it.
type packWriter struct {
	dir   string
	f     *os.File
	w     *bufio.Writer
	off   uint64
	objs  []packObj
	index map[plumbing.Hash]int
	hdr   []byte
}

func newPackWriter(dir string) (*packWriter, error) {
	f, err := os.CreateTemp(dir, "tmp_relay_*.pack")
	if err != nil {
		return nil, fmt.Errorf("creating a pack in %s: %w", dir, err)
	}
	p := &packWriter{dir: dir, f: f, w: bufio.NewWriterSize(f, 1<<20), index: make(map[plumbing.Hash]int)}
	// The object count is patched in by finish.
	if _, err := p.w.Write([]byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00")); err != nil {
		p.abort()
		return nil, err
	}
	p.off = 12
	return p, nil
}

// has reports whether the pack holds object id.
func (p *packWriter) has(id plumbing.Hash) bool {
	_, ok := p.index[id]
	return ok
}

// offset returns where object id starts in the pack.
func (p *packWriter) offset(id plumbing.Hash) (uint64, bool) {
	i, ok := p.index[id]
	if !ok {
		return 0, false
	}
	return p.objs[i].off, true
}

func (p *packWriter) count() int { return len(p.objs) }

// write appends one object: typ and size (the length of its content) with
// its zlib-compressed content, or, when baseOff is not 0, an OFS_DELTA
// against the object at baseOff with size the length of the delta and
// payload the compressed delta. An id already in the pack is skipped.
func (p *packWriter) write(id plumbing.Hash, typ int, size int, baseOff uint64, payload []byte) error {
	if p.has(id) {
		return nil
	}
	if baseOff != 0 {
		typ = objOfsDelta
	}
	h := p.header(typ, int64(size), baseOff)
	crc := crc32.Update(crc32.ChecksumIEEE(h), crc32.IEEETable, payload)
	if _, err := p.w.Write(h); err != nil {
		return fmt.Errorf("writing pack: %w", err)
	}
	if _, err := p.w.Write(payload); err != nil {
		return fmt.Errorf("writing pack: %w", err)
	}
	p.index[id] = len(p.objs)
	p.objs = append(p.objs, packObj{id: id, off: p.off, crc: crc})
	p.off += uint64(len(h) + len(payload))
	return nil
}

// writeFrom appends object id, of type typ and size bytes read from r,
// compressing it as it is read: a large blob is never held whole. A read
// error leaves the pack unusable (the caller aborts it).
func (p *packWriter) writeFrom(id plumbing.Hash, typ int, size int64, r io.Reader) error {
	if p.has(id) {
		return nil
	}
	h := p.header(typ, size, 0)
	crc := crc32.NewIEEE()
	crc.Write(h)
	if _, err := p.w.Write(h); err != nil {
		return fmt.Errorf("writing pack: %w", err)
	}
	cw := &countingWriter{w: io.MultiWriter(p.w, crc)}
	zw, err := zlib.NewWriterLevel(cw, zlib.BestSpeed)
	if err != nil {
		return err
	}
	n, err := io.Copy(zw, r)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, want %d", n, size)
	}
	if err != nil {
		return fmt.Errorf("writing object %s to the pack: %w", id, err)
	}
	p.index[id] = len(p.objs)
	p.objs = append(p.objs, packObj{id: id, off: p.off, crc: crc.Sum32()})
	p.off += uint64(len(h)) + uint64(cw.n)
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// header returns an entry's header (type and size, then the distance back
// to the base for an OFS_DELTA), in a buffer reused by the next call.
func (p *packWriter) header(typ int, size int64, baseOff uint64) []byte {
	h := p.hdr[:0]
	c := byte(typ<<4) | byte(size&0x0f)
	size >>= 4
	for size != 0 {
		h = append(h, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	h = append(h, c)
	if baseOff != 0 {
		// The distance back to the base, big-endian base-128 where each
		// continuation adds one (git's offset encoding).
		n := p.off - baseOff
		var buf [16]byte
		i := len(buf) - 1
		buf[i] = byte(n & 0x7f)
		for n >>= 7; n != 0; n >>= 7 {
			n--
			i--
			buf[i] = 0x80 | byte(n&0x7f)
		}
		h = append(h, buf[i:]...)
	}
	p.hdr = h
	return h
}

// abort removes the temporary pack.
func (p *packWriter) abort() {
	if p.f != nil {
		p.f.Close()
		os.Remove(p.f.Name())
		p.f = nil
	}
}

// finish completes the pack (count, checksum), writes its index and a .keep
// file, and moves them into place as pack-<checksum>.{keep,pack,idx}, the
// index last (git sees a pack once its index exists). It returns the path of
// the .keep file, which protects the pack from a concurrent gc until git has
// updated its refs (the helper reports it with "lock").
func (p *packWriter) finish() (keep string, err error) {
	defer func() {
		if err != nil {
			p.abort()
		}
	}()
	if err := p.w.Flush(); err != nil {
		return "", err
	}
	var count [4]byte
	binary.BigEndian.PutUint32(count[:], uint32(len(p.objs)))
	if _, err := p.f.WriteAt(count[:], 8); err != nil {
		return "", err
	}
	sum := sha1.New()
	if _, err := io.Copy(sum, io.NewSectionReader(p.f, 0, int64(p.off))); err != nil {
		return "", fmt.Errorf("checksumming the pack: %w", err)
	}
	packSum := sum.Sum(nil)
	if _, err := p.f.WriteAt(packSum, int64(p.off)); err != nil {
		return "", err
	}
	if err := p.f.Sync(); err != nil {
		return "", err
	}
	if err := p.f.Close(); err != nil {
		return "", err
	}
	tmpPack := p.f.Name()
	p.f = nil
	defer os.Remove(tmpPack) // a no-op once renamed

	idx, err := os.CreateTemp(p.dir, "tmp_relay_*.idx")
	if err != nil {
		return "", err
	}
	defer os.Remove(idx.Name())
	if _, err := idx.Write(p.indexBytes(packSum)); err != nil {
		idx.Close()
		return "", err
	}
	if err := idx.Sync(); err != nil {
		idx.Close()
		return "", err
	}
	if err := idx.Close(); err != nil {
		return "", err
	}

	base := filepath.Join(p.dir, "pack-"+hex.EncodeToString(packSum))
	keep = base + ".keep"
	if err := os.WriteFile(keep, []byte("git-remote-relay\n"), 0o644); err != nil {
		return "", err
	}
	for _, mv := range [][2]string{{tmpPack, base + ".pack"}, {idx.Name(), base + ".idx"}} {
		if err := os.Chmod(mv[0], 0o444); err != nil {
			os.Remove(keep)
			return "", err
		}
		if err := os.Rename(mv[0], mv[1]); err != nil {
			os.Remove(keep)
			return "", err
		}
	}
	return keep, nil
}

// indexBytes returns the version 2 index of the pack.
func (p *packWriter) indexBytes(packSum []byte) []byte {
	objs := slices.Clone(p.objs)
	slices.SortFunc(objs, func(a, b packObj) int { return bytes.Compare(a.id[:], b.id[:]) })
	var b bytes.Buffer
	b.Grow(8 + 256*4 + len(objs)*28 + 40)
	b.Write([]byte{0xff, 't', 'O', 'c', 0, 0, 0, 2})
	var fan [256]uint32
	for _, o := range objs {
		fan[o.id[0]]++
	}
	var total uint32
	u32 := func(v uint32) { b.Write(binary.BigEndian.AppendUint32(nil, v)) }
	for _, n := range fan {
		total += n
		u32(total)
	}
	for _, o := range objs {
		b.Write(o.id[:])
	}
	for _, o := range objs {
		u32(o.crc)
	}
	var large []uint64
	for _, o := range objs {
		if o.off < 1<<31 {
			u32(uint32(o.off))
		} else {
			u32(1<<31 | uint32(len(large)))
			large = append(large, o.off)
		}
	}
	for _, off := range large {
		b.Write(binary.BigEndian.AppendUint64(nil, off))
	}
	b.Write(packSum)
	sum := sha1.Sum(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}
