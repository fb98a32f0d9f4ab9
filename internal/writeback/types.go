package writeback

import (
	"crypto/rand"
	"fmt"
	"path"
	"strings"
)

// The plugin's type registry: the filemeta "type" and "mimetype" an
// attachment gets from its extension (SyncTypes.ts).
var fileTypes = map[string][2]string{
	"png": {"image", "image/png"}, "jpg": {"image", "image/jpeg"}, "jpeg": {"image", "image/jpeg"},
	"gif": {"image", "image/gif"}, "svg": {"image", "image/svg+xml"}, "webp": {"image", "image/webp"},
	"avif": {"image", "image/avif"}, "bmp": {"image", "image/bmp"},
	"pdf": {"pdf", "application/pdf"},
	"mp3": {"audio", "audio/mpeg"}, "wav": {"audio", "audio/wav"}, "flac": {"audio", "audio/flac"},
	"m4a": {"audio", "audio/x-m4a"}, "ogg": {"audio", "audio/ogg"}, "opus": {"audio", "audio/opus"},
	"mp4": {"video", "video/mp4"}, "webm": {"video", "video/webm"}, "ogv": {"video", "video/ogg"},
	"mov": {"video", "video/quicktime"}, "mkv": {"video", "video/x-matroska"},
	"base": {"base", "application/vnd.obsidian.base+yaml"},
}

// KindOf is the store kind a pushed path gets from its extension: notes
// (.md) are markdown, .canvas canvases, everything else an attachment.
func KindOf(p string) string {
	switch strings.ToLower(path.Ext(p)) {
	case ".md":
		return "markdown"
	case ".canvas":
		return "canvas"
	}
	return "file"
}

// entryType is the filemeta type for a path of kind: the one it has when
// it exists, else the plugin's.
func entryType(kind, p, existing string) string {
	if existing != "" {
		return existing
	}
	switch kind {
	case "markdown":
		return "markdown"
	case "canvas":
		return "canvas"
	}
	if t, ok := fileTypes[strings.ToLower(strings.TrimPrefix(path.Ext(p), "."))]; ok {
		return t[0]
	}
	return "file"
}

func mimeType(p, existing string) string {
	if existing != "" {
		return existing
	}
	if t, ok := fileTypes[strings.ToLower(strings.TrimPrefix(path.Ext(p), "."))]; ok {
		return t[1]
	}
	return "application/octet-stream"
}

// newID is a random (version 4) UUID, as the plugin gives new documents.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: it crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
