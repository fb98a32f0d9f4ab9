package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// The read API (/api/v1/…): folders, snapshots with their trees, and blobs,
// for the remote helper, the mount and export against a running server.

const (
	msgAPIDisabled   = "Read API disabled: set RELAY_GIT_API_TOKEN (or --api-token) on the server to enable it"
	msgAPIAuthNeeded = "Authentication required: send Authorization: Bearer <RELAY_GIT_API_TOKEN>"
	msgAPIBadToken   = "Authentication failed: invalid API token"
)

// requireAPIToken guards the read API: "Authorization: Bearer <token>"
// (scheme in any case, RFC 9110), compared in constant time.
func (s *server) requireAPIToken(c *gin.Context) {
	c.Header("Cache-Control", "no-store") // overridden by immutable answers
	if s.cfg.APIToken == "" {
		s.apiUnauthorized(c, msgAPIDisabled, "read API disabled")
		return
	}
	token, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok || token == "" {
		s.apiUnauthorized(c, msgAPIAuthNeeded, "no bearer token")
		return
	}
	if !equalSecret(token, &s.apiToken) {
		s.apiUnauthorized(c, msgAPIBadToken, "invalid API token")
		return
	}
	c.Next()
}

func (s *server) apiUnauthorized(c *gin.Context, msg, reason string) {
	c.Header("WWW-Authenticate", `Bearer realm="relay-git-sync"`)
	c.AbortWithStatusJSON(http.StatusUnauthorized, errBody(msg))
	s.log.Warn("read API request rejected", "reason", reason, "path", c.Request.URL.Path, "remote", c.ClientIP())
}

// GET /api/v1/folders
func (s *server) folders(c *gin.Context) {
	list, err := s.cfg.Source.Folders(c.Request.Context())
	if err != nil {
		s.readerError(c, err, "listing folders")
		return
	}
	out := readapi.Folders{Folders: make([]readapi.Folder, len(list))}
	for i, f := range list {
		out.Folders[i] = readapi.NewFolder(f.ID(), f.LatestSeq, f.LatestTime)
	}
	c.JSON(http.StatusOK, out)
}

// folderParams validates and lower-cases the :relay and :folder UUIDs.
func folderParams(c *gin.Context) (f store.FolderID, ok bool) {
	relayID, err := relay.NormalizeUUID(c.Param("relay"))
	if err != nil {
		c.JSON(http.StatusBadRequest, errBody("invalid relay id: must be a UUID"))
		return f, false
	}
	folder, err := relay.NormalizeUUID(c.Param("folder"))
	if err != nil {
		c.JSON(http.StatusBadRequest, errBody("invalid folder id: must be a UUID"))
		return f, false
	}
	return store.FolderID{Relay: relayID, Folder: folder}, true
}

// afterParam reads the optional ?after=N sequence number, answering 400
// itself when it is not one.
func afterParam(c *gin.Context) (uint64, bool) {
	a, present := c.GetQuery("after")
	if !present {
		return 0, true
	}
	after, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		c.JSON(http.StatusBadRequest, errBody("invalid after: must be a snapshot sequence number (0 or more)"))
		return 0, false
	}
	return after, true
}

// GET /api/v1/folders/:relay/:folder/snapshots?after=N
func (s *server) snapshots(c *gin.Context) {
	f, ok := folderParams(c)
	if !ok {
		return
	}
	after, ok := afterParam(c)
	if !ok {
		return
	}
	list, err := s.cfg.Source.Snapshots(c.Request.Context(), f, after)
	if err != nil {
		s.readerError(c, err, "listing snapshots", "folder", f)
		return
	}
	out := readapi.Snapshots{Relay: f.Relay, Folder: f.Folder, Snapshots: make([]readapi.SnapshotInfo, len(list))}
	for i, in := range list {
		out.Snapshots[i] = readapi.NewSnapshotInfo(in)
	}
	c.JSON(http.StatusOK, out)
}

// GET /api/v1/folders/:relay/:folder/snapshots/:seq (seq "latest" allowed)
func (s *server) snapshot(c *gin.Context) {
	f, ok := folderParams(c)
	if !ok {
		return
	}
	var seq uint64
	if p := c.Param("seq"); p != "latest" {
		var err error
		if seq, err = strconv.ParseUint(p, 10, 64); err != nil || seq == 0 {
			c.JSON(http.StatusBadRequest, errBody(`invalid seq: must be a snapshot sequence number (1 or more) or "latest"`))
			return
		}
	}
	snap, err := s.cfg.Source.Snapshot(c.Request.Context(), f, seq)
	if err != nil {
		s.readerError(c, err, "reading snapshot", "folder", f, "seq", seq)
		return
	}
	c.JSON(http.StatusOK, readapi.NewSnapshot(snap))
}

// GET /api/v1/folders/:relay/:folder/history?after=N — the snapshots after
// N as newline-delimited JSON, each tree given as a difference from the one
// before (readapi.HistoryEncoder), so that a whole history costs
// O(changes): what git-remote-relay reads to synthesize commits.
func (s *server) history(c *gin.Context) {
	f, ok := folderParams(c)
	if !ok {
		return
	}
	after, ok := afterParam(c)
	if !ok {
		return
	}
	enc := json.NewEncoder(c.Writer)
	enc.SetEscapeHTML(false)
	var lines readapi.HistoryEncoder
	started := false
	start := func() {
		if !started {
			started = true
			c.Header("Content-Type", readapi.HistoryContentType)
			c.Status(http.StatusOK)
		}
	}
	var sent int
	err := s.cfg.Source.History(c.Request.Context(), f, after, func(snap *store.Snapshot) error {
		start()
		sent++
		return enc.Encode(lines.Line(snap))
	})
	if err != nil && !started {
		s.readerError(c, err, "reading history", "folder", f, "after", after)
		return
	}
	if err != nil {
		// The status is sent: say so on the stream, and leave out the end line.
		s.log.Error("read API: history cut short", "folder", f, "after", after, "sent", sent, "err", err)
		_ = enc.Encode(errBody("Internal server error: history cut short"))
		return
	}
	start()
	_ = enc.Encode(lines.End())
}

// GET /api/v1/history-config — the identity and Relay user map every
// synthesized commit is made with (see internal/history), so that clones
// made through this server have the ids the server's own mirror has.
func (s *server) historyConfig(c *gin.Context) {
	cfg, err := s.cfg.Source.HistoryConfig(c.Request.Context())
	if err != nil {
		s.readerError(c, err, "reading history config")
		return
	}
	c.JSON(http.StatusOK, cfg)
}

// GET /api/v1/blobs/:id — content by git blob id; immutable, so cacheable
// forever, with the id as ETag.
func (s *server) blob(c *gin.Context) {
	id := strings.ToLower(c.Param("id"))
	if !isBlobID(id) {
		c.JSON(http.StatusBadRequest, errBody("invalid blob id: must be 40 hexadecimal digits"))
		return
	}
	etag := `"` + id + `"`
	c.Header("ETag", etag)
	c.Header("Cache-Control", "private, max-age=31536000, immutable")
	if inm := c.GetHeader("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		c.Status(http.StatusNotModified)
		return
	}
	bid, _ := store.ParseBlobID(id) // isBlobID checked it
	if o, ok := s.cfg.Source.(source.BlobOpener); ok {
		// Streamed: an attachment of hundreds of MB is never held whole.
		rc, size, err := o.OpenBlob(c.Request.Context(), bid)
		if err != nil {
			c.Header("Cache-Control", "no-store")
			c.Header("ETag", "")
			s.readerError(c, err, "reading blob", "blob", id)
			return
		}
		defer rc.Close()
		c.Header("Content-Length", strconv.FormatInt(size, 10))
		c.Header("Content-Type", "application/octet-stream")
		c.Status(http.StatusOK)
		if _, err := io.Copy(c.Writer, rc); err != nil {
			// The status is sent: a short body (against Content-Length)
			// is how the client learns that the read failed.
			s.log.Error("read API: streaming blob", "blob", id, "err", err)
			panic(http.ErrAbortHandler)
		}
		return
	}
	data, err := s.cfg.Source.Blob(c.Request.Context(), bid)
	if err != nil {
		c.Header("Cache-Control", "no-store")
		c.Header("ETag", "")
		s.readerError(c, err, "reading blob", "blob", id)
		return
	}
	c.Data(http.StatusOK, "application/octet-stream", data)
}

func isBlobID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// etagMatch reports whether an If-None-Match list names etag (weak or
// strong) or is "*".
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// readerError answers 404 for source.ErrNotFound and 500 (logged) for
// anything else.
func (s *server) readerError(c *gin.Context, err error, what string, attrs ...any) {
	if errors.Is(err, source.ErrNotFound) {
		c.JSON(http.StatusNotFound, errBody("not found"))
		return
	}
	s.log.Error("read API: "+what, append(attrs, "err", err)...)
	c.JSON(http.StatusInternalServerError, errBody("Internal server error"))
}

// FolderPack is a pack of a folder's history up to snapshot Seq, whose
// commit is Commit, with its index. The handler closes both files.
type FolderPack struct {
	Seq         uint64
	Commit      string
	Pack, Index *os.File
}

// GET /api/v1/folders/:relay/:folder/pack — the pack kept of the folder's
// history (Config.Packs), then its index, back to back: a clone downloads
// it instead of every blob, and synthesizes only the snapshots after it.
// 404 when there is none (yet).
func (s *server) pack(c *gin.Context) {
	f, ok := folderParams(c)
	if !ok {
		return
	}
	if s.cfg.Packs == nil {
		c.JSON(http.StatusNotFound, errBody("no pack kept: this server builds none"))
		return
	}
	p, err := s.cfg.Packs(c.Request.Context(), f)
	if err == nil && p == nil {
		c.JSON(http.StatusNotFound, errBody("no pack of this folder yet: synthesize its history from …/history"))
		return
	}
	if err != nil {
		s.readerError(c, err, "reading the folder's pack", "folder", f)
		return
	}
	defer p.Pack.Close()
	defer p.Index.Close()
	pi, err1 := p.Pack.Stat()
	ii, err2 := p.Index.Stat()
	if err := errors.Join(err1, err2); err != nil {
		s.readerError(c, err, "reading the folder's pack", "folder", f)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", readapi.PackContentType)
	h.Set("Content-Length", strconv.FormatInt(pi.Size()+ii.Size(), 10))
	h.Set(readapi.PackSeqHeader, strconv.FormatUint(p.Seq, 10))
	h.Set(readapi.PackCommitHeader, p.Commit)
	h.Set(readapi.PackSizeHeader, strconv.FormatInt(pi.Size(), 10))
	c.Status(http.StatusOK)
	if _, err := io.Copy(c.Writer, io.MultiReader(io.LimitReader(p.Pack, pi.Size()), io.LimitReader(p.Index, ii.Size()))); err != nil {
		s.log.Warn("read API: pack cut short", "folder", f, "err", err)
	}
}
