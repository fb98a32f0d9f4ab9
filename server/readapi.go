package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
)

// The read API (/api/v1/…): folders, snapshots with their trees, and blobs,
// for the remote helper, the mount and export against a running server.

const (
	msgAPIDisabled   = "Read API disabled: set RELAY_GIT_API_TOKEN (or --api-token) on the server to enable it"
	msgAPIAuthNeeded = "Authentication required: send Authorization: Bearer <RELAY_GIT_API_TOKEN>"
	msgAPIBadToken   = "Authentication failed: invalid API token"
)

// requireAPIToken guards the read API: "Authorization: Bearer <token>"
// (scheme case-insensitive, RFC 7235), compared in constant time.
func (s *server) requireAPIToken(c *gin.Context) {
	c.Header("Cache-Control", "no-store") // overridden by immutable answers
	if s.cfg.APIToken == "" {
		s.apiUnauthorized(c, msgAPIDisabled, "read API disabled")
		return
	}
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
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

// JSON shapes of the read API (snake_case; times RFC 3339 with nanoseconds, UTC).

type folderJSON struct {
	Relay      string  `json:"relay"`
	Folder     string  `json:"folder"`
	LatestSeq  uint64  `json:"latest_seq"`
	LatestTime *string `json:"latest_time"` // null without snapshots
}

type foldersJSON struct {
	Folders []folderJSON `json:"folders"`
}

type changeJSON struct {
	Kind    string `json:"kind"`
	Path    string `json:"path"`
	OldPath string `json:"old_path,omitempty"`
	DocID   string `json:"doc_id"`
}

type snapshotInfoJSON struct {
	Seq      uint64       `json:"seq"`
	Time     string       `json:"time"`
	Users    []string     `json:"users"`
	Changes  []changeJSON `json:"changes"`
	NumFiles int          `json:"num_files"`
}

type snapshotsJSON struct {
	Relay     string             `json:"relay"`
	Folder    string             `json:"folder"`
	Snapshots []snapshotInfoJSON `json:"snapshots"`
}

type fileJSON struct {
	Path  string `json:"path"`
	Blob  string `json:"blob"`
	Size  int64  `json:"size"`
	Kind  string `json:"kind"`
	DocID string `json:"doc_id"`
}

type snapshotJSON struct {
	Relay  string `json:"relay"`
	Folder string `json:"folder"`
	snapshotInfoJSON
	Files []fileJSON `json:"files"`
}

func jsonTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func toInfoJSON(in SnapshotInfo) snapshotInfoJSON {
	out := snapshotInfoJSON{
		Seq:      in.Seq,
		Time:     jsonTime(in.Time),
		Users:    in.Users,
		Changes:  make([]changeJSON, len(in.Changes)),
		NumFiles: in.NumFiles,
	}
	if out.Users == nil {
		out.Users = []string{}
	}
	for i, ch := range in.Changes {
		out.Changes[i] = changeJSON(ch)
	}
	return out
}

// GET /api/v1/folders
func (s *server) folders(c *gin.Context) {
	list, err := s.cfg.Reader.Folders()
	if err != nil {
		s.readerError(c, err, "listing folders")
		return
	}
	out := foldersJSON{Folders: make([]folderJSON, len(list))}
	for i, f := range list {
		out.Folders[i] = folderJSON{Relay: f.Relay, Folder: f.Folder, LatestSeq: f.LatestSeq}
		if f.LatestSeq != 0 && !f.LatestTime.IsZero() {
			t := jsonTime(f.LatestTime)
			out.Folders[i].LatestTime = &t
		}
	}
	c.JSON(http.StatusOK, out)
}

// folderParams validates and lower-cases the :relay and :folder UUIDs.
func folderParams(c *gin.Context) (relayID, folder string, ok bool) {
	relayID, err := relay.NormalizeUUID(c.Param("relay"))
	if err != nil {
		c.JSON(http.StatusBadRequest, errBody("invalid relay id: must be a UUID"))
		return "", "", false
	}
	folder, err = relay.NormalizeUUID(c.Param("folder"))
	if err != nil {
		c.JSON(http.StatusBadRequest, errBody("invalid folder id: must be a UUID"))
		return "", "", false
	}
	return relayID, folder, true
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
	relayID, folder, ok := folderParams(c)
	if !ok {
		return
	}
	after, ok := afterParam(c)
	if !ok {
		return
	}
	list, err := s.cfg.Reader.Snapshots(relayID, folder, after)
	if err != nil {
		s.readerError(c, err, "listing snapshots", "relay", relayID, "folder", folder)
		return
	}
	out := snapshotsJSON{Relay: relayID, Folder: folder, Snapshots: make([]snapshotInfoJSON, len(list))}
	for i, in := range list {
		out.Snapshots[i] = toInfoJSON(in)
	}
	c.JSON(http.StatusOK, out)
}

// GET /api/v1/folders/:relay/:folder/snapshots/:seq (seq "latest" allowed)
func (s *server) snapshot(c *gin.Context) {
	relayID, folder, ok := folderParams(c)
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
	snap, err := s.cfg.Reader.Snapshot(relayID, folder, seq)
	if err == nil && snap == nil {
		err = ErrNotFound
	}
	if err != nil {
		s.readerError(c, err, "reading snapshot", "relay", relayID, "folder", folder, "seq", seq)
		return
	}
	out := snapshotJSON{Relay: relayID, Folder: folder, snapshotInfoJSON: toInfoJSON(snap.SnapshotInfo),
		Files: make([]fileJSON, len(snap.Files))}
	for i, f := range snap.Files {
		out.Files[i] = fileJSON{Path: f.Path, Blob: f.Blob, Size: f.Size, Kind: f.Kind, DocID: f.DocID}
	}
	c.JSON(http.StatusOK, out)
}

// historyLineJSON is one line of GET …/history: a snapshot with its whole
// tree (files, first line only) or with the difference from the line before
// (set, deleted).
type historyLineJSON struct {
	snapshotInfoJSON
	Files   *[]fileJSON `json:"files,omitempty"`
	Set     []fileJSON  `json:"set,omitempty"`
	Deleted []string    `json:"deleted,omitempty"`
}

// historyEndJSON is the last line of a complete answer; an answer without it
// was cut short (the error, when there is one, is on the line before).
type historyEndJSON struct {
	End   bool   `json:"end"`
	Count uint64 `json:"count"`
}

const ndjson = "application/x-ndjson"

func toFilesJSON(files []File) []fileJSON {
	out := make([]fileJSON, len(files))
	for i, f := range files {
		out[i] = fileJSON{Path: f.Path, Blob: f.Blob, Size: f.Size, Kind: f.Kind, DocID: f.DocID}
	}
	return out
}

// GET /api/v1/folders/:relay/:folder/history?after=N — the snapshots after
// N as newline-delimited JSON, each tree given as a difference from the one
// before, so that a whole history costs O(changes): what git-remote-relay
// reads to synthesize commits.
func (s *server) history(c *gin.Context) {
	relayID, folder, ok := folderParams(c)
	if !ok {
		return
	}
	after, ok := afterParam(c)
	if !ok {
		return
	}
	enc := json.NewEncoder(c.Writer)
	enc.SetEscapeHTML(false)
	var n uint64
	start := func() {
		if n == 0 {
			c.Header("Content-Type", ndjson)
			c.Status(http.StatusOK)
		}
	}
	err := s.cfg.Reader.History(relayID, folder, after, func(e *HistoryEntry) error {
		start()
		line := historyLineJSON{snapshotInfoJSON: toInfoJSON(e.SnapshotInfo), Deleted: e.Deleted}
		if n == 0 {
			files := toFilesJSON(e.Files)
			line.Files = &files
		} else if len(e.Set) > 0 {
			line.Set = toFilesJSON(e.Set)
		}
		n++
		return enc.Encode(line)
	})
	if err != nil && n == 0 {
		s.readerError(c, err, "reading history", "relay", relayID, "folder", folder, "after", after)
		return
	}
	if err != nil {
		// The status is sent: say so on the stream, and leave out the end line.
		s.log.Error("read API: history cut short", "relay", relayID, "folder", folder, "after", after, "sent", n, "err", err)
		_ = enc.Encode(errBody("Internal server error: history cut short"))
		return
	}
	start()
	_ = enc.Encode(historyEndJSON{End: true, Count: n})
}

// GET /api/v1/history-config — the identity and Relay user map every
// synthesized commit is made with (see internal/history), so that clones
// made through this server have the ids the server's own mirror has.
func (s *server) historyConfig(c *gin.Context) {
	b, err := s.cfg.Reader.HistoryConfig()
	if err != nil {
		s.readerError(c, err, "reading history config")
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
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
	data, err := s.cfg.Reader.Blob(id)
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

// readerError answers 404 for ErrNotFound and 500 (logged) for anything else.
func (s *server) readerError(c *gin.Context, err error, what string, attrs ...any) {
	if errors.Is(err, ErrNotFound) {
		c.JSON(http.StatusNotFound, errBody("not found"))
		return
	}
	s.log.Error("read API: "+what, append(attrs, "err", err)...)
	c.JSON(http.StatusInternalServerError, errBody("Internal server error"))
}
