package server

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
)

// GET /api/v1/backup: a point-in-time backup of the whole store, streamed
// as Config.Backup writes it (`relay-git-sync backup --server` saves it,
// `restore-backup` reads it).
func (s *server) backup(c *gin.Context) {
	if s.cfg.Backup == nil {
		c.JSON(http.StatusNotFound, errBody("backups are not served here"))
		return
	}
	// A backup of a big store takes longer than the server's ReadTimeout,
	// and net/http cancels the request's context when the read deadline
	// passes, even after the request was read: lift it for this answer.
	// (A recorder in tests cannot, which does not matter there.)
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})
	c.Header("Content-Type", readapi.BackupContentType)
	c.Header("Content-Disposition", `attachment; filename="relay-git-sync-`+s.now().UTC().Format("20060102T150405Z")+`.backup"`)
	start := s.now()
	w := &countingWriter{w: c.Writer}
	err := s.cfg.Backup(c.Request.Context(), w)
	switch {
	case err == nil:
		s.log.Info("backup sent", "bytes", w.n, "took", s.now().Sub(start).Round(time.Millisecond).String(), "remote", c.ClientIP())
	case w.n == 0:
		s.log.Error("backup failed", "err", err)
		c.Header("Content-Disposition", "")
		c.Header("Content-Type", "application/json; charset=utf-8") // c.JSON keeps a type already set
		c.JSON(http.StatusInternalServerError, errBody("backup failed: "+err.Error()))
	default:
		// The status line is gone: cut the connection so that the client
		// sees an incomplete answer (the file's missing end record says
		// so too).
		if !errors.Is(err, c.Request.Context().Err()) {
			s.log.Error("backup failed while streaming", "err", err, "bytes", w.n)
		} else {
			s.log.Warn("backup stopped: the client went away", "bytes", w.n)
		}
		panic(http.ErrAbortHandler)
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}
