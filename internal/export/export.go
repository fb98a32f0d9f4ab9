// Package export writes a snapshot of a shared folder out as a directory
// or as a .tar, .tar.gz or .zip archive. Output appears whole or not at
// all: it is written under a temporary name and renamed into place.
package export

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/gitpath"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// BlobReader reads file contents by id; every source.Source is one (a
// data dir or a running server's read API).
type BlobReader interface {
	Blob(ctx context.Context, id store.BlobID) ([]byte, error)
}

// Progress is told how many of the snapshot's bytes are written.
type Progress func(done, total int64)

// Format is an output format, chosen from the output path's extension.
type Format int

// The formats.
const (
	Dir Format = iota
	Tar
	TarGz
	Zip
)

// otherArchives are extensions of archives and compressed files that
// cannot be written: a name ending in one is refused rather than made a
// directory, which is not what its user asked for.
var otherArchives = []string{
	".7z", ".rar", ".gz", ".bz2", ".tbz", ".tbz2", ".xz", ".txz", ".zst", ".tzst", ".lz", ".lzma", ".tlz", ".lz4", ".z", ".br",
}

// FormatOf picks the format for an output path from its extension: .tar,
// .tar.gz or .tgz, .zip, and a directory for any other name. The name of
// an archive or compressed file of another kind (.7z, .tar.bz2, .gz, …) is
// an error.
func FormatOf(p string) (Format, error) {
	l := strings.ToLower(p)
	switch {
	case strings.HasSuffix(l, ".tar.gz"), strings.HasSuffix(l, ".tgz"):
		return TarGz, nil
	case strings.HasSuffix(l, ".tar"):
		return Tar, nil
	case strings.HasSuffix(l, ".zip"):
		return Zip, nil
	}
	ext := ""
	if i := strings.LastIndex(l, ".tar."); i >= 0 && !strings.ContainsAny(l[i:], `/\`) {
		ext = p[i:]
	}
	for _, a := range otherArchives {
		if ext == "" && strings.HasSuffix(l, a) {
			ext = p[len(p)-len(a):]
		}
	}
	if ext != "" {
		return Dir, fmt.Errorf("export: cannot write %s files (%s): name a .tar, .tar.gz, .tgz or .zip archive, or a directory (a name without an archive extension)", ext, p)
	}
	return Dir, nil
}

// Write writes snap's files to out in the format its extension names. out
// must not exist yet.
func Write(ctx context.Context, snap *store.Snapshot, blobs BlobReader, out string, progress Progress) error {
	format, err := FormatOf(out)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("export: %s already exists; choose a new path or remove it", out)
	}
	for _, f := range snap.Files {
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return fmt.Errorf("export: refusing unsafe path %q in snapshot %d", f.Path, snap.Seq)
		}
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	var total int64
	for _, f := range snap.Files {
		total += f.Size
	}
	w := &writer{ctx: ctx, snap: snap, blobs: blobs, progress: progress, total: total}
	dir, base := filepath.Split(out)
	if dir == "" {
		dir = "."
	}
	if format == Dir {
		tmp, err := os.MkdirTemp(dir, "."+base+".tmp-")
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := w.toDir(tmp); err != nil {
			os.RemoveAll(tmp)
			return err
		}
		if err := os.Rename(tmp, out); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("export: %w", err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	err = w.toArchive(tmp, format)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), out)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

type writer struct {
	ctx         context.Context
	snap        *store.Snapshot
	blobs       BlobReader
	progress    Progress
	done, total int64
}

// each calls fn with every file's content, in path order.
func (w *writer) each(fn func(f store.File, data []byte) error) error {
	for _, f := range w.snap.Files {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		data, err := w.blobs.Blob(w.ctx, f.Blob)
		if err != nil {
			return fmt.Errorf("export: reading %s (%s): %w", f.Path, f.Blob, err)
		}
		if err := fn(f, data); err != nil {
			return fmt.Errorf("export: writing %s: %w", f.Path, err)
		}
		w.done += int64(len(data))
		w.progress(w.done, w.total)
	}
	return nil
}

func (w *writer) toDir(root string) error {
	mtime := w.snap.Time
	dirs := map[string]bool{}
	// Names over 255 bytes get gitpath's shortened names, as in git trees.
	local := gitpath.Rename(w.snap.Files, func(f store.File) string { return f.Path }, gitpath.Local)
	err := w.each(func(f store.File, data []byte) error {
		name := f.Path
		if l, ok := local[name]; ok {
			name = l
		}
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		dirs[filepath.Dir(p)] = true
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	})
	if err != nil {
		return err
	}
	for d := range dirs {
		os.Chtimes(d, mtime, mtime)
	}
	return os.Chmod(root, 0o755)
}

func (w *writer) toArchive(f *os.File, format Format) error {
	bw := bufio.NewWriterSize(f, 1<<20)
	var err error
	switch format {
	case Zip:
		err = w.toZip(bw)
	case TarGz:
		gz := gzip.NewWriter(bw)
		if err = w.toTar(gz); err == nil {
			err = gz.Close()
		}
	default:
		err = w.toTar(bw)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// dirsOf returns the parent directories of p, outermost first.
func dirsOf(p string) []string {
	var out []string
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

func (w *writer) toTar(out io.Writer) error {
	tw := tar.NewWriter(out)
	mtime := w.snap.Time.Truncate(time.Second)
	made := map[string]bool{}
	err := w.each(func(f store.File, data []byte) error {
		for _, d := range dirsOf(f.Path) {
			if made[d] {
				continue
			}
			made[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func (w *writer) toZip(out io.Writer) error {
	zw := zip.NewWriter(out)
	err := w.each(func(f store.File, data []byte) error {
		h := &zip.FileHeader{Name: f.Path, Method: zip.Deflate, Modified: w.snap.Time}
		h.SetMode(0o644)
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		_, err = fw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return zw.Close()
}
