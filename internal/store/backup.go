package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
)

// Backups: Badger's own backup stream (DB.Backup's format, read back by
// DB.Load) wrapped in a small container so that a truncated or damaged file
// is told apart from a complete one. Badger's stream alone cannot tell: it
// is a sequence of length-prefixed lists, and a file cut at a list boundary
// loads as a smaller store without complaint.
//
// Container (format 1):
//
//	magic[8] "RGSBAK\x00\x01"   the last byte is the container format
//	layout[1]                   the store's layoutVersion
//	frames: len[4] big-endian, len bytes of the Badger stream (len > 0)
//	end:    len[4] = 0, SHA-256[32] of every byte before it
//
// Nothing may follow the end.

var backupMagic = [8]byte{'R', 'G', 'S', 'B', 'A', 'K', 0, 1}

const (
	// backupFrame is the largest frame written (Badger's stream is buffered
	// into frames of this size).
	backupFrame = 1 << 20
	// maxBackupFrame bounds what a reader accepts, so that a damaged
	// length cannot make it allocate gigabytes.
	maxBackupFrame = 64 << 20
	// backupBatch bounds one batch of Badger's stream (its default is
	// 100 MiB, all in memory).
	backupBatch = 4 << 20
)

// ErrBackupDamaged is returned (wrapped) when a backup is not a complete,
// intact backup made by Backup: truncated, altered, or not a backup at all.
var ErrBackupDamaged = errors.New("backup damaged")

// ErrStoreNotEmpty is returned (wrapped) by Restore when the target already
// holds a store.
var ErrStoreNotEmpty = errors.New("store is not empty")

// Backup writes a consistent point-in-time copy of the whole store (every
// folder, snapshot, blob, doc state, queued event, push state and setting)
// to w, while the store stays in use. Everything committed before Backup is
// called is in it; nothing committed after its read transaction began is.
// A write error or the end of ctx stops it; what was written is then not a
// valid backup (Restore refuses it).
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	fw := &frameWriter{w: w, h: sha256.New(), ctx: ctx}
	if err := fw.writeRaw(append(backupMagic[:], layoutVersion)); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	bw := bufio.NewWriterSize(fw, backupFrame)
	stream := s.db.NewStream()
	stream.LogPrefix = "relay-git-sync backup"
	// One producer, so one read transaction: every key is read at the same
	// timestamp. (Each producer opens its own transaction, and with more
	// than one a commit could land between their timestamps.)
	stream.NumGo = 1
	stream.MaxSize = backupBatch
	if _, err := stream.Backup(bw, 0); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	if err := fw.end(); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	return nil
}

// frameWriter writes the container: each Write becomes frames, and end
// writes the checksum.
type frameWriter struct {
	w   io.Writer
	h   hash.Hash
	ctx context.Context
}

// writeRaw writes p to w and the checksum.
func (fw *frameWriter) writeRaw(p []byte) error {
	if err := fw.ctx.Err(); err != nil {
		return err
	}
	fw.h.Write(p)
	_, err := fw.w.Write(p)
	return err
}

func (fw *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), backupFrame)]
		if err := fw.writeRaw(binary.BigEndian.AppendUint32(nil, uint32(len(chunk)))); err != nil {
			return n, err
		}
		if err := fw.writeRaw(chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (fw *frameWriter) end() error {
	if err := fw.writeRaw([]byte{0, 0, 0, 0}); err != nil {
		return err
	}
	_, err := fw.w.Write(fw.h.Sum(nil))
	return err
}

// frameReader reads the container and returns the Badger stream inside. It
// returns io.EOF only after the end record's checksum matched and nothing
// followed it; any other ending is an error wrapping ErrBackupDamaged.
type frameReader struct {
	r    *bufio.Reader
	h    hash.Hash
	left int // bytes left in the current frame
	done bool
	n    int64 // container bytes read, for messages
}

func newFrameReader(r io.Reader) (*frameReader, error) {
	fr := &frameReader{r: bufio.NewReaderSize(r, 64<<10), h: sha256.New()}
	head := make([]byte, len(backupMagic)+1)
	if err := fr.full(head); err != nil {
		return nil, err
	}
	if !bytes.Equal(head[:len(backupMagic)-1], backupMagic[:len(backupMagic)-1]) {
		return nil, fmt.Errorf("%w: not a relay-git-sync backup (it does not start as `relay-git-sync backup` writes one)", ErrBackupDamaged)
	}
	if got := head[len(backupMagic)-1]; got != backupMagic[len(backupMagic)-1] {
		return nil, fmt.Errorf("backup container format %d, this build reads %d: restore it with the release that made it", got, backupMagic[len(backupMagic)-1])
	}
	if got := head[len(backupMagic)]; got != layoutVersion {
		return nil, fmt.Errorf("backup of store layout version %d, this build reads %d: restore it with the release that made it", got, layoutVersion)
	}
	return fr, nil
}

// full reads exactly len(p) bytes into p and the checksum.
func (fr *frameReader) full(p []byte) error {
	n, err := io.ReadFull(fr.r, p)
	fr.n += int64(n)
	fr.h.Write(p[:n])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the file ends after %d bytes, before the backup's end (truncated: a backup that did not finish or an incomplete copy)", ErrBackupDamaged, fr.n)
	}
	return err
}

func (fr *frameReader) Read(p []byte) (int, error) {
	if fr.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	for fr.left == 0 {
		var l [4]byte
		if err := fr.full(l[:]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(l[:])
		if n == 0 {
			return 0, fr.end()
		}
		if n > maxBackupFrame {
			return 0, fmt.Errorf("%w: bad frame length %d at byte %d", ErrBackupDamaged, n, fr.n-4)
		}
		fr.left = int(n)
	}
	if len(p) > fr.left {
		p = p[:fr.left]
	}
	if err := fr.full(p); err != nil {
		return 0, err
	}
	fr.left -= len(p)
	return len(p), nil
}

// end checks the checksum and that nothing follows it: io.EOF when intact.
func (fr *frameReader) end() error {
	want := fr.h.Sum(nil)
	got := make([]byte, len(want))
	n, err := io.ReadFull(fr.r, got)
	fr.n += int64(n)
	if err != nil {
		return fmt.Errorf("%w: the file ends inside its checksum (truncated)", ErrBackupDamaged)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: checksum mismatch (the file was altered or damaged after it was written)", ErrBackupDamaged)
	}
	if _, err := fr.r.ReadByte(); err != io.EOF {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: data after the backup's end", ErrBackupDamaged)
	}
	fr.done = true
	return io.EOF
}

// VerifyBackup reads a whole backup from r and checks that it is complete
// and intact (its framing and checksum), without loading it.
func VerifyBackup(r io.Reader) error {
	fr, err := newFrameReader(r)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, fr)
	return err
}

// Restore rebuilds a store in dir (a store directory, as given to Open)
// from a backup made by Backup. dir must not exist or be empty (else the
// error wraps ErrStoreNotEmpty and nothing is touched). The store is built
// in dir+".tmp" and renamed to dir only once the whole backup loaded and its
// checksum matched, so a damaged backup (ErrBackupDamaged) or a failure
// leaves no store behind. A dir+".tmp" left by an interrupted Restore is
// removed first. It returns the number of backup bytes read.
func Restore(dir string, r io.Reader, o Options) (int64, error) {
	if dir == "" {
		return 0, errors.New("store: restore: no data directory given")
	}
	if err := checkEmptyDir(dir); err != nil {
		return 0, err
	}
	fr, err := newFrameReader(r)
	if err != nil {
		return 0, fmt.Errorf("store: restore: %w", err)
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, fmt.Errorf("store: restore: removing %s left by an earlier restore: %w", tmp, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return 0, fmt.Errorf("store: restore: %w", err)
	}
	if err := load(tmp, fr, o); err != nil {
		_ = os.RemoveAll(tmp)
		return fr.n, fmt.Errorf("store: restore: %w", err)
	}
	if err := syncTree(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return fr.n, fmt.Errorf("store: restore: %w", err)
	}
	// Checked again: something may have created the store meanwhile.
	if err := checkEmptyDir(dir); err != nil {
		_ = os.RemoveAll(tmp)
		return fr.n, err
	}
	// os.Rename refuses to replace even an empty directory; os.Remove
	// removes only an empty one.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = os.RemoveAll(tmp)
		return fr.n, fmt.Errorf("store: restore: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return fr.n, fmt.Errorf("store: restore: %w", err)
	}
	return fr.n, syncDir(filepath.Dir(dir))
}

// load opens a new Badger database in dir, loads the stream from fr into
// it, checks that it is a store of this layout, and closes it.
func load(dir string, fr *frameReader, o Options) (err error) {
	db, err := badger.Open(badgerOptions(dir, Options{Logger: o.Logger}))
	if err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing %s: %w", dir, cerr)
		}
	}()
	// 16 batches in flight, as Badger's own restore tool uses.
	if err := db.Load(fr, 16); err != nil {
		if errors.Is(err, ErrBackupDamaged) {
			return err
		}
		return fmt.Errorf("loading the backup (at byte %d): %w", fr.n, err)
	}
	if !fr.done {
		// Badger stopped before the end record, which it should not.
		return fmt.Errorf("%w: the backup stream ended before the end record", ErrBackupDamaged)
	}
	return db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(versionKey())
		if err != nil {
			return fmt.Errorf("%w: it holds no store layout version (%v)", ErrBackupDamaged, err)
		}
		return item.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != layoutVersion {
				return fmt.Errorf("%w: store layout version %v inside, %d in its header", ErrBackupDamaged, v, layoutVersion)
			}
			return nil
		})
	})
}

// checkEmptyDir fails unless dir is missing or an empty directory.
func checkEmptyDir(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return fmt.Errorf("store: restore: %s: %w", dir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("store: restore: %w: %s already holds files (%s…); restore into a new data dir, or move this store away first", ErrStoreNotEmpty, dir, names[0])
	}
	return nil
}

// syncTree fsyncs every file in dir and dir itself, so that the renamed
// store is on disk whatever Badger left to the page cache at Close.
func syncTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("syncing %s: %w", f.Name(), err)
		}
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: restore: syncing %s: %w", dir, err)
	}
	return nil
}
