package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
)

// POST /api/v1/folders/:relay/:folder/changes (after requireWriteToken):
// the changes of a `git push relay::…`.
func (s *server) changes(c *gin.Context) {
	if s.cfg.Changes == nil {
		c.JSON(http.StatusForbidden, errBody(msgWritesOff))
		return
	}
	f, ok := folderParams(c)
	if !ok {
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, readapi.MaxChangesBody)
	var req readapi.ChangesRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			c.JSON(http.StatusRequestEntityTooLarge, errBody("the changes are larger than the server takes in one request (256 MiB): push fewer files at a time"))
			return
		}
		c.JSON(http.StatusBadRequest, errBody("the body is not a changes request: "+err.Error()))
		return
	}
	res, err := s.cfg.Changes(c.Request.Context(), f, req)
	switch {
	case err == nil:
		s.log.Info("changes written", "folder", f.String(), "dry_run", res.DryRun, "actions", len(res.Actions), "written", len(res.Written))
		c.JSON(http.StatusOK, res)
	case errors.Is(err, readapi.ErrStale):
		c.JSON(http.StatusConflict, errBody(err.Error()))
	case errors.Is(err, ingest.ErrNotOwner):
		// Several instances on one store: the folder's lease holder
		// writes it; the lease moves within the lease time if it died.
		c.Header("Retry-After", "5")
		c.JSON(http.StatusServiceUnavailable, errBody(err.Error()))
	case errors.Is(err, store.ErrNotFound):
		c.JSON(http.StatusNotFound, errBody(err.Error()))
	case errors.Is(err, writeback.ErrRefused):
		c.JSON(http.StatusUnprocessableEntity, errBody(err.Error()))
	default:
		s.log.Error("writing changes failed", "folder", f.String(), "err", err)
		out := readapi.ChangesResult{Actions: []readapi.RestoreAction{}, Written: []string{}, Error: err.Error()}
		if res != nil {
			out.Actions, out.Written = res.Actions, res.Written
		}
		if len(out.Written) > 0 {
			out.Error += "; written before the failure: " + strings.Join(out.Written, ", ") + " (pushing again writes only what is missing)"
		}
		c.JSON(http.StatusBadGateway, out)
	}
}
