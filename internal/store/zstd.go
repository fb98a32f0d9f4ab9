package store

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// zstdMagic starts every zstd frame. Records store frames without it (4
// bytes saved per record) and put it back before decoding.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// zcodec holds the zstd encoders and decoders of one Store.
//
// Full copies share one encoder and one decoder (EncodeAll and DecodeAll
// are safe for concurrent use). Deltas need the base as a raw dictionary,
// which is an option of the encoder or decoder itself, so those come from a
// small free list and are re-armed with ResetWithOptions for each use.
//
// A dictionary encoder's window must reach from the end of its input back
// to the start of the dictionary, and the library allocates history and
// hash tables for the whole window when an encoder is created; reusing an
// encoder only re-indexes the new dictionary. So dictionary encoders are
// pooled by window size class (64 KiB up to 8 MiB) and never dropped back
// to no dictionary (which would make the library rebuild them).
type zcodec struct {
	full    *zstd.Encoder
	dec     *zstd.Decoder
	dictEnc [numWindowClasses]chan *zstd.Encoder
	dictDec chan *zstd.Decoder
}

const (
	minWindowLog     = 16 // 64 KiB
	numWindowClasses = 8  // up to 8 MiB: room for a 4 MiB dictionary and 4 MiB of input
)

// windowClass returns the pool index whose window covers n bytes, or -1.
func windowClass(n int) int {
	for c := 0; c < numWindowClasses; c++ {
		if n <= 1<<(minWindowLog+c) {
			return c
		}
	}
	return -1
}

// Levels: full copies are written once and read often, so they get the
// better (slower) level; deltas are small and frequent. Neither frame
// carries a checksum: blobs are verified against their id when decoded.
const (
	fullLevel = zstd.SpeedBetterCompression
	dictLevel = zstd.SpeedFastest
	poolSize  = 2 // per window class
)

func newZcodec() (*zcodec, error) {
	full, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(fullLevel), zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(maxRecordSize))
	if err != nil {
		full.Close()
		return nil, err
	}
	z := &zcodec{full: full, dec: dec, dictDec: make(chan *zstd.Decoder, 2*poolSize)}
	for i := range z.dictEnc {
		z.dictEnc[i] = make(chan *zstd.Encoder, poolSize)
	}
	return z, nil
}

func (z *zcodec) close() {
	z.full.Close()
	z.dec.Close()
	for _, ch := range z.dictEnc {
		for len(ch) > 0 {
			(<-ch).Close()
		}
	}
	for len(z.dictDec) > 0 {
		(<-z.dictDec).Close()
	}
}

// compress returns src as a zstd frame without the magic number.
func (z *zcodec) compress(src []byte) []byte {
	out := z.full.EncodeAll(src, make([]byte, 0, len(src)/3+16))
	return out[len(zstdMagic):]
}

// decompress undoes compress; the result may not exceed limit bytes.
func (z *zcodec) decompress(frame []byte, limit int) ([]byte, error) {
	src := make([]byte, 0, len(zstdMagic)+len(frame))
	src = append(append(src, zstdMagic...), frame...)
	out, err := z.dec.DecodeAll(src, nil)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if len(out) > limit {
		return nil, errors.New("zstd: output too large")
	}
	return out, nil
}

// compressDict compresses src with dict as a raw dictionary (dict id 0, so
// the frame header names no dictionary) and drops the magic number. The
// dictionary and src together may not exceed 8 MiB.
func (z *zcodec) compressDict(src, dict []byte) ([]byte, error) {
	c := windowClass(len(src) + len(dict))
	if c < 0 {
		return nil, fmt.Errorf("zstd: delta of %d bytes against %d is too big", len(src), len(dict))
	}
	var e *zstd.Encoder
	select {
	case e = <-z.dictEnc[c]:
		if err := e.ResetWithOptions(nil, zstd.WithEncoderDictRaw(0, dict)); err != nil {
			e.Close()
			return nil, err
		}
	default:
		var err error
		e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(dictLevel), zstd.WithEncoderCRC(false),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true),
			zstd.WithWindowSize(1<<(minWindowLog+c)), zstd.WithEncoderDictRaw(0, dict))
		if err != nil {
			return nil, err
		}
	}
	out := e.EncodeAll(src, make([]byte, 0, len(src)/2+16))
	// The pooled encoder keeps a reference to dict until its next use;
	// bounded by the pool size.
	select {
	case z.dictEnc[c] <- e:
	default:
		e.Close()
	}
	return out[len(zstdMagic):], nil
}

// decompressDict undoes compressDict; the result must be exactly size bytes.
func (z *zcodec) decompressDict(frame, dict []byte, size int) ([]byte, error) {
	var d *zstd.Decoder
	select {
	case d = <-z.dictDec:
	default:
		var err error
		d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(maxRecordSize))
		if err != nil {
			return nil, err
		}
	}
	if err := d.ResetWithOptions(nil, zstd.WithDecoderDictRaw(0, dict)); err != nil {
		d.Close()
		return nil, err
	}
	src := make([]byte, 0, len(zstdMagic)+len(frame))
	src = append(append(src, zstdMagic...), frame...)
	out, err := d.DecodeAll(src, make([]byte, 0, size))
	if rerr := d.ResetWithOptions(nil, zstd.WithDecoderDictDelete()); rerr != nil {
		d.Close()
	} else {
		select {
		case z.dictDec <- d:
		default:
			d.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if len(out) != size {
		return nil, fmt.Errorf("zstd: decoded %d bytes, want %d", len(out), size)
	}
	return out, nil
}
