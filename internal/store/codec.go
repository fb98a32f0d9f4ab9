package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Record formats. Every value starts with one of these bytes; see keys.go
// for which key holds which record.
const (
	// formatParts marks a value too big for one Badger value: it is
	// followed by nonce[8], uvarint(number of parts) and uvarint(total
	// length), and the parts are under partKey(key, nonce, i). Any record
	// type can be split.
	formatParts = 0xff

	// Blob records (key 'b'):
	//	format   byte     blobRaw | blobZstd | blobDelta
	//	size     uvarint  length of the blob's data
	//	blobRaw:   data
	//	blobZstd:  a zstd frame without its 4-byte magic number
	//	blobDelta: base[20] gen(uvarint) depth(uvarint) prefix(uvarint)
	//	           suffix(uvarint) mode(byte) middle
	// A delta's data is base[:prefix] + middle + base[len(base)-suffix:];
	// middle is stored per mode (midRaw, midZstd: a frame without magic,
	// midDict: the same with base[prefix:len(base)-suffix] as a raw
	// dictionary). gen and depth drive the skip-delta choice (blob.go).
	blobRaw   = 1
	blobZstd  = 2
	blobDelta = 3

	// Snapshot record (key 's'): snapV1 followed by the body, or snapV1Z
	// followed by the body as a zstd frame without magic (large bodies,
	// which would otherwise land uncompressed in the value log). Body:
	//	time       varint seconds since the Unix epoch, uvarint nanoseconds
	//	numFiles   uvarint  size of the tree after this snapshot
	//	removed    uvarint n, n front-coded paths (sorted)
	//	upserted   uvarint n, n files (sorted by path, see appendFiles)
	//	users      uvarint n, n packed ids
	//	changes    uvarint n, n × (kind byte, path ref, old path ref if
	//	           renamed, doc ref). A path ref is uvarint: 0 = a string
	//	           follows, i in 1..len(upserted) = upserted[i-1].Path,
	//	           len(upserted)+j = removed[j-1]. A doc ref is 0 + a
	//	           packed id, or i = upserted[i-1].DocID.
	//	origin     optional (records written before it end with changes):
	//	           flags byte (originRestored, originPushed), then
	//	           uvarint restored seq if originRestored, then commit[20]
	//	           parent[20] pack[20] if originPushed.
	snapV1  = 1
	snapV1Z = 2

	// Checkpoint record (key 'c'): ckptV1 followed by a zstd frame without
	// magic of: uvarint n, n files (appendFiles).
	ckptV1 = 1

	// DocState record (key 'd'): docV1, hash[32], blob[20], path string.
	docV1 = 1

	// Folder record (key 'f'): folderV1 alone.
	folderV1 = 1
)

var errCorrupt = errors.New("corrupt record")

// enc appends the primitive encodings.
type enc struct{ b []byte }

func (e *enc) byte(c byte)       { e.b = append(e.b, c) }
func (e *enc) raw(p []byte)      { e.b = append(e.b, p...) }
func (e *enc) uvarint(v uint64)  { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)      { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) packedID(s string) { e.b = appendPackedID(e.b, s) }

func (e *enc) time(t time.Time) {
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
}

// appendPackedID appends 0x00 + 16 bytes for a lower-case canonical UUID,
// else 0x01 + uvarint length + the bytes. (In keys the id is last, but the
// length is kept so the same decoder works everywhere.)
func appendPackedID(b []byte, s string) []byte {
	if isLowerUUID(s) {
		b = append(b, 0)
		var u [16]byte
		packUUID(u[:], s)
		return append(b, u[:]...)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// dec reads what enc wrote. The first error sticks; later reads return
// zero values, so callers check d.err once at the end.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *dec) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) raw(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail()
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a uvarint used as an element count; each element takes at
// least min bytes, which bounds allocations on corrupt input.
func (d *dec) count(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *dec) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	return string(d.raw(int(n)))
}

func (d *dec) packedID() string {
	switch d.byte() {
	case 0:
		return unpackUUID(d.raw(16))
	case 1:
		return d.str()
	default:
		d.fail()
		return ""
	}
}

func (d *dec) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *dec) blobID() (id BlobID) {
	copy(id[:], d.raw(len(id)))
	return id
}

// File kinds as stored.
var kindCodes = map[string]byte{"markdown": 0, "canvas": 1, "file": 2}
var kindNames = [...]string{"markdown", "canvas", "file"}

// appendFiles writes files (sorted by path) with front-coded paths: each
// path is uvarint(bytes shared with the previous path) + the rest as a
// string, then blob[20], uvarint size, kind byte, packed doc id.
func appendFiles(e *enc, files []File) {
	e.uvarint(uint64(len(files)))
	prev := ""
	for _, f := range files {
		appendFrontCoded(e, prev, f.Path)
		prev = f.Path
		e.raw(f.Blob[:])
		e.uvarint(uint64(f.Size))
		e.byte(kindCodes[f.Kind])
		e.packedID(f.DocID)
	}
}

func readFiles(d *dec) []File {
	n := d.count(24)
	if n == 0 {
		return nil
	}
	files := make([]File, n)
	prev := ""
	for i := range files {
		f := &files[i]
		f.Path = readFrontCoded(d, prev)
		prev = f.Path
		f.Blob = d.blobID()
		f.Size = int64(d.uvarint())
		k := d.byte()
		if int(k) >= len(kindNames) {
			d.fail()
			return nil
		}
		f.Kind = kindNames[k]
		f.DocID = d.packedID()
	}
	if d.err != nil {
		return nil
	}
	return files
}

func appendFrontCoded(e *enc, prev, s string) {
	n := 0
	for n < len(prev) && n < len(s) && prev[n] == s[n] {
		n++
	}
	e.uvarint(uint64(n))
	e.str(s[n:])
}

func readFrontCoded(d *dec, prev string) string {
	n := d.uvarint()
	if n > uint64(len(prev)) {
		d.fail()
		return ""
	}
	return prev[:n] + d.str()
}

func appendPaths(e *enc, paths []string) {
	e.uvarint(uint64(len(paths)))
	prev := ""
	for _, p := range paths {
		appendFrontCoded(e, prev, p)
		prev = p
	}
}

func readPaths(d *dec) []string {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	prev := ""
	for i := range out {
		out[i] = readFrontCoded(d, prev)
		prev = out[i]
	}
	return out
}

// snapRecord is a decoded snapshot record: the snapshot's own fields and
// its tree delta against the previous snapshot.
type snapRecord struct {
	Time     time.Time
	NumFiles int
	Removed  []string // sorted
	Upserted []File   // sorted by path
	Users    []string
	Changes  []Change
	Origin   Origin
}

// Flags of a snapshot record's origin.
const (
	originRestored = 1 << iota
	originPushed
)

// bigBodyZstd is the body size above which a snapshot record is compressed
// by us: Badger compresses LSM blocks, but values above the value
// threshold go to the value log as they are.
const bigBodyZstd = 16 << 10

func (s *Store) encodeSnapRecord(r *snapRecord) []byte {
	e := &enc{b: make([]byte, 0, 64+len(r.Upserted)*64)}
	e.time(r.Time)
	e.uvarint(uint64(r.NumFiles))
	appendPaths(e, r.Removed)
	appendFiles(e, r.Upserted)
	e.uvarint(uint64(len(r.Users)))
	for _, u := range r.Users {
		e.packedID(u)
	}
	upPath := make(map[string]int, len(r.Upserted)+len(r.Removed))
	upDoc := make(map[string]int, len(r.Upserted))
	for i, f := range r.Upserted {
		upPath[f.Path] = i + 1
		if _, ok := upDoc[f.DocID]; !ok {
			upDoc[f.DocID] = i + 1
		}
	}
	for j, p := range r.Removed {
		upPath[p] = len(r.Upserted) + j + 1
	}
	pathRef := func(p string) {
		if i, ok := upPath[p]; ok {
			e.uvarint(uint64(i))
			return
		}
		e.uvarint(0)
		e.str(p)
	}
	e.uvarint(uint64(len(r.Changes)))
	for _, c := range r.Changes {
		e.byte(byte(c.Kind))
		pathRef(c.Path)
		if c.Kind == ChangeRenamed {
			pathRef(c.OldPath)
		}
		if i, ok := upDoc[c.DocID]; ok {
			e.uvarint(uint64(i))
		} else {
			e.uvarint(0)
			e.packedID(c.DocID)
		}
	}
	if o := r.Origin; !o.IsZero() {
		var flags byte
		if o.Restored != 0 {
			flags |= originRestored
		}
		if o.Pushed != nil {
			flags |= originPushed
		}
		e.byte(flags)
		if o.Restored != 0 {
			e.uvarint(o.Restored)
		}
		if p := o.Pushed; p != nil {
			e.raw(p.Commit[:])
			e.raw(p.Parent[:])
			e.raw(p.Pack[:])
		}
	}
	if len(e.b) > bigBodyZstd {
		return append([]byte{snapV1Z}, s.z.compress(e.b)...)
	}
	return append([]byte{snapV1}, e.b...)
}

func (s *Store) decodeSnapRecord(v []byte) (*snapRecord, error) {
	if len(v) == 0 {
		return nil, errCorrupt
	}
	body := v[1:]
	switch v[0] {
	case snapV1:
	case snapV1Z:
		var err error
		if body, err = s.z.decompress(body, maxRecordSize); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported snapshot record format %d", v[0])
	}
	d := &dec{b: body}
	r := &snapRecord{}
	r.Time = d.time()
	r.NumFiles = int(d.uvarint())
	r.Removed = readPaths(d)
	r.Upserted = readFiles(d)
	if n := d.count(2); n > 0 {
		r.Users = make([]string, n)
		for i := range r.Users {
			r.Users[i] = d.packedID()
		}
	}
	pathRef := func() string {
		i := d.uvarint()
		switch {
		case i == 0:
			return d.str()
		case i <= uint64(len(r.Upserted)):
			return r.Upserted[i-1].Path
		case i-uint64(len(r.Upserted)) <= uint64(len(r.Removed)):
			return r.Removed[i-uint64(len(r.Upserted))-1]
		}
		d.fail()
		return ""
	}
	if n := d.count(3); n > 0 {
		r.Changes = make([]Change, n)
		for i := range r.Changes {
			c := &r.Changes[i]
			c.Kind = ChangeKind(d.byte())
			c.Path = pathRef()
			if c.Kind == ChangeRenamed {
				c.OldPath = pathRef()
			}
			switch j := d.uvarint(); {
			case j == 0:
				c.DocID = d.packedID()
			case j <= uint64(len(r.Upserted)):
				c.DocID = r.Upserted[j-1].DocID
			default:
				d.fail()
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		flags := d.byte()
		if flags == 0 || flags&^(originRestored|originPushed) != 0 {
			d.fail()
		}
		if flags&originRestored != 0 {
			if r.Origin.Restored = d.uvarint(); r.Origin.Restored == 0 {
				d.fail()
			}
		}
		if flags&originPushed != 0 {
			p := &Pushed{}
			copy(p.Commit[:], d.raw(20))
			copy(p.Parent[:], d.raw(20))
			p.Pack = d.blobID()
			r.Origin.Pushed = p
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// maxRecordSize bounds what a corrupt length field can make us allocate
// when decompressing a snapshot record or checkpoint.
const maxRecordSize = 1 << 30

func (s *Store) encodeCheckpoint(files []File) []byte {
	e := &enc{b: make([]byte, 0, 16+len(files)*64)}
	appendFiles(e, files)
	return append([]byte{ckptV1}, s.z.compress(e.b)...)
}

func (s *Store) decodeCheckpoint(v []byte) ([]File, error) {
	if len(v) == 0 {
		return nil, errCorrupt
	}
	if v[0] != ckptV1 {
		return nil, fmt.Errorf("unsupported checkpoint format %d", v[0])
	}
	body, err := s.z.decompress(v[1:], maxRecordSize)
	if err != nil {
		return nil, err
	}
	d := &dec{b: body}
	files := readFiles(d)
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return files, d.err
}

func encodeDocState(st DocState) []byte {
	e := &enc{b: make([]byte, 0, 1+32+20+2+len(st.Path))}
	e.byte(docV1)
	e.raw(st.Hash[:])
	e.raw(st.Blob[:])
	e.str(st.Path)
	return e.b
}

func decodeDocState(v []byte) (DocState, error) {
	var st DocState
	if len(v) == 0 || v[0] != docV1 {
		if len(v) > 0 {
			return st, fmt.Errorf("unsupported doc state format %d", v[0])
		}
		return st, errCorrupt
	}
	d := &dec{b: v[1:]}
	copy(st.Hash[:], d.raw(32))
	st.Blob = d.blobID()
	st.Path = d.str()
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return st, d.err
}

// docIDFromKey decodes the packed doc id at the end of a doc state key.
func docIDFromKey(k []byte) (string, error) {
	d := &dec{b: k[1+32:]}
	id := d.packedID()
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return id, d.err
}
