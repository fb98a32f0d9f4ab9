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

// Messages of the write routes' refusals.
const (
	msgWritesOff       = "writes are off: start serve with --allow-writes and a write token (RELAY_GIT_WRITE_TOKEN)"
	msgNotWriteTok     = "this token may not write: send the write token (RELAY_GIT_WRITE_TOKEN), not the read token"
	msgWriteAuthNeeded = "authentication required: send Authorization: Bearer <the write token, RELAY_GIT_WRITE_TOKEN>"
	msgWriteBadToken   = "invalid write token"
)

// requireWriteToken guards the routes that write into Relay: 403 unless
// serve runs with --allow-writes and a write token, 401 without a token
// or with a wrong one, 403 for the read token.
func (s *server) requireWriteToken(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	if s.cfg.Restore == nil || s.cfg.WriteToken == "" {
		c.AbortWithStatusJSON(http.StatusForbidden, errBody(msgWritesOff))
		s.log.Warn("write request refused", "reason", "writes are off", "path", c.Request.URL.Path, "remote", c.ClientIP())
		return
	}
	token, ok := bearerToken(c.GetHeader("Authorization"))
	switch {
	case !ok || token == "":
		s.apiUnauthorized(c, msgWriteAuthNeeded, "no bearer token")
	case equalSecret(token, &s.writeToken):
		c.Next()
	case s.cfg.APIToken != "" && equalSecret(token, &s.apiToken):
		c.AbortWithStatusJSON(http.StatusForbidden, errBody(msgNotWriteTok))
		s.log.Warn("write request refused", "reason", "read token", "path", c.Request.URL.Path, "remote", c.ClientIP())
	default:
		s.apiUnauthorized(c, msgWriteBadToken, "invalid write token")
	}
}

// POST /api/v1/folders/:relay/:folder/restore
func (s *server) restore(c *gin.Context) {
	f, ok := folderParams(c)
	if !ok {
		return
	}
	var req readapi.RestoreRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		c.JSON(http.StatusBadRequest, errBody("the body is not a restore request: "+err.Error()))
		return
	}
	res, err := s.cfg.Restore(c.Request.Context(), f, req)
	switch {
	case err == nil:
		s.log.Info("restore", "folder", f.String(), "seq", res.Seq, "dry_run", res.DryRun, "actions", len(res.Actions), "written", len(res.Written))
		c.JSON(http.StatusOK, res)
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
		msg := err.Error()
		if res != nil && len(res.Written) > 0 {
			msg += "; written before the failure: " + strings.Join(res.Written, ", ") + " (restoring again writes only what is missing)"
		}
		s.log.Error("restore failed", "folder", f.String(), "err", err)
		c.JSON(http.StatusBadGateway, errBody(msg))
	}
}
