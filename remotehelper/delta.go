package remotehelper

import (
	"bytes"
	"encoding/binary"
	"hash/adler32"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// Deltas. A new version of a note or a directory differs from the previous
// one in one region (typing, one changed tree entry), so a git delta that
// copies the common prefix, inserts the middle and copies the common suffix
// is almost as small as what `git repack` finds, and costs two comparisons.
// The pack then stays close to the size of a packed repository, and git
// reads it without the work index-pack does for a thin pack.

// maxDeltaDepth bounds delta chains (git's default pack.depth is 50): the
// next version after that is stored whole.
const maxDeltaDepth = 50

// makeDelta returns a git delta that turns base into target, or nil when it
// would not be much smaller than target itself.
func makeDelta(base, target []byte) []byte {
	if len(target) < 64 || len(base) == 0 {
		return nil
	}
	p := 0
	for n := min(len(base), len(target)); p < n && base[p] == target[p]; p++ {
	}
	s := 0
	for n := min(len(base), len(target)) - p; s < n && base[len(base)-1-s] == target[len(target)-1-s]; s++ {
	}
	ins := target[p : len(target)-s]
	// Each 127 inserted bytes cost one more; copies at most 5 per 64 KiB.
	size := 20 + len(ins) + len(ins)/127 + (p+s)/0x10000*8
	if size >= len(target)/2 {
		return nil
	}
	d := make([]byte, 0, size)
	d = appendDeltaSize(d, len(base))
	d = appendDeltaSize(d, len(target))
	d = appendCopy(d, 0, p)
	for len(ins) > 0 {
		n := min(len(ins), 127)
		d = append(d, byte(n))
		d = append(d, ins[:n]...)
		ins = ins[n:]
	}
	return appendCopy(d, len(base)-s, s)
}

// makeTreeDelta is makeDelta for tree objects, whose changes are spread
// out (a snapshot that touches two directories changes two entries of their
// parent, far apart): every entry of target that base has byte for byte
// (mode, name, id) is copied from base, runs of them as one copy, and the
// others are inserted. Both trees are in git's order, so one merge pass
// finds them. It returns nil when that is not much smaller than target, or
// when base or target is not a well-formed tree.
func makeTreeDelta(base, target []byte) []byte {
	if d := makeDelta(base, target); d != nil || len(base) == 0 || len(target) < 64 {
		return d // one changed entry: prefix and suffix are enough
	}
	d := appendDeltaSize(make([]byte, 0, 64), len(base))
	d = appendDeltaSize(d, len(target))
	copyOff, copyLen := 0, 0 // pending copy from base
	insStart, insEnd := 0, 0 // pending insert from target
	flushCopy := func() {
		d = appendCopy(d, copyOff, copyLen)
		copyLen = 0
	}
	flushInsert := func() {
		for ins := target[insStart:insEnd]; len(ins) > 0; {
			n := min(len(ins), 127)
			d = append(d, byte(n))
			d = append(d, ins[:n]...)
			ins = ins[n:]
		}
		insStart, insEnd = 0, 0
	}
	bo := 0
	var be treeEntry
	bok := false
	if bo < len(base) {
		if be, bok = parseTreeEntry(base, bo); !bok {
			return nil
		}
	}
	for off := 0; off < len(target); {
		te, ok := parseTreeEntry(target, off)
		if !ok {
			return nil
		}
		// Skip the entries of base that sort before this one.
		for bok && compareEntries(be, te) < 0 {
			bo = be.end
			be, bok = treeEntry{}, false
			if bo < len(base) {
				if be, bok = parseTreeEntry(base, bo); !bok {
					return nil
				}
			}
		}
		if bok && bytes.Equal(base[bo:be.end], target[off:te.end]) {
			flushInsert()
			if copyLen > 0 && copyOff+copyLen == bo {
				copyLen += te.end - off
			} else {
				flushCopy()
				copyOff, copyLen = bo, te.end-off
			}
		} else {
			flushCopy()
			if insEnd == 0 {
				insStart = off
			}
			insEnd = te.end
		}
		off = te.end
		if len(d) >= len(target)/2 {
			return nil
		}
	}
	flushCopy()
	flushInsert()
	if len(d) >= len(target)/2 {
		return nil
	}
	return d
}

// treeEntry is one entry of a tree object: "<mode> <name>\0" and a 20-byte
// id, ending at end.
type treeEntry struct {
	name []byte
	dir  bool
	end  int
}

func parseTreeEntry(b []byte, off int) (treeEntry, bool) {
	sp := bytes.IndexByte(b[off:], ' ')
	nul := bytes.IndexByte(b[off:], 0)
	if sp < 0 || nul < sp || off+nul+21 > len(b) {
		return treeEntry{}, false
	}
	return treeEntry{name: b[off+sp+1 : off+nul], dir: string(b[off:off+sp]) == "40000", end: off + nul + 21}, true
}

// compareEntries orders entries as git does: by name, a directory's name
// compared as if it ended with '/'.
func compareEntries(a, b treeEntry) int {
	n := min(len(a.name), len(b.name))
	if c := bytes.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	next := func(e treeEntry) int {
		switch {
		case len(e.name) > n:
			return int(e.name[n])
		case e.dir:
			return '/'
		}
		return -1
	}
	return next(a) - next(b)
}

func appendDeltaSize(d []byte, n int) []byte {
	for n >= 0x80 {
		d = append(d, byte(n)|0x80)
		n >>= 7
	}
	return append(d, byte(n))
}

// appendCopy appends copy instructions for base[off:off+size], in pieces of
// at most 64 KiB as git writes them.
func appendCopy(d []byte, off, size int) []byte {
	for size > 0 {
		n := min(size, 0x10000)
		i := len(d)
		d = append(d, 0x80)
		for k := 0; k < 4; k++ {
			if b := byte(off >> (8 * k)); b != 0 {
				d[i] |= 1 << k
				d = append(d, b)
			}
		}
		for k := 0; k < 3; k++ {
			if b := byte(n >> (8 * k)); b != 0 {
				d[i] |= 0x10 << k
				d = append(d, b)
			}
		}
		off += n
		size -= n
	}
	return d
}

// storedMax: payloads up to this size are written as zlib streams of stored
// (uncompressed) deflate blocks. Building Huffman tables costs more than a
// small entry takes to write, and most entries are small deltas; measured on
// a 20,000-snapshot history, compressing everything at the fastest level
// took 40% of a clone's CPU time for a pack only 10% smaller.
const storedMax = 2048

// compressor deflates the larger entries, at the fastest level, with
// klauspost/compress (already in the build for the store's zstd): about a
// third faster than compress/zlib on notes of a few KB.
type compressor struct {
	buf bytes.Buffer
	zw  *zlib.Writer
}

var compressors = sync.Pool{New: func() any {
	c := &compressor{}
	c.zw, _ = zlib.NewWriterLevel(&c.buf, zlib.BestSpeed)
	return c
}}

// compress returns the zlib stream of data in a new slice.
func compress(data []byte) []byte {
	if len(data) <= storedMax {
		return zlibStored(data)
	}
	c := compressors.Get().(*compressor)
	defer compressors.Put(c)
	c.buf.Reset()
	c.zw.Reset(&c.buf)
	c.zw.Write(data)
	c.zw.Close()
	return bytes.Clone(c.buf.Bytes())
}

// zlibStored returns data as a zlib stream of one stored deflate block
// (RFC 1950, RFC 1951 §3.2.4); len(data) must be under 64 KiB.
func zlibStored(data []byte) []byte {
	n := len(data)
	out := make([]byte, 0, n+11)
	out = append(out, 0x78, 0x01, 0x01, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, adler32.Checksum(data))
}
