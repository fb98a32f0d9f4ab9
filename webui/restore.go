package webui

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
)

type restoreData struct {
	Seq     uint64
	Path    string // "" = the whole snapshot
	Result  *readapi.RestoreResult
	Done    bool
	Failure string
}

// mayRestore answers 403 unless the session signed in with the write token
// and serve restores.
func (u *ui) mayRestore(w http.ResponseWriter, r *http.Request, s *session) bool {
	if s.CanEdit && u.cfg.Restore != nil {
		return true
	}
	msg := "Restoring needs the write token: sign out and sign in with RELAY_GIT_WRITE_TOKEN."
	if u.cfg.Restore == nil {
		msg = "This server does not write into Relay: start serve with --allow-writes and a write token (RELAY_GIT_WRITE_TOKEN)."
	}
	u.log.Warn("web restore refused", "path", r.URL.Path, "remote", r.RemoteAddr, "writes_on", u.cfg.Restore != nil)
	u.fail(w, r, s, http.StatusForbidden, msg, nil)
	return false
}

// restoreRequest reads seq and path (optional) from the query or form.
func (u *ui) restoreRequest(w http.ResponseWriter, r *http.Request, s *session) (restoreData, bool) {
	seq, ok := u.seqOf(w, r, s, "seq", r.FormValue("seq"))
	if !ok {
		return restoreData{}, false
	}
	return restoreData{Seq: seq, Path: r.FormValue("path")}, true
}

func (d restoreData) req(dry bool) readapi.RestoreRequest {
	req := readapi.RestoreRequest{Seq: d.Seq, DryRun: dry}
	if d.Path != "" {
		req.Paths = []string{d.Path}
	}
	return req
}

// restorePreview shows what a restore would write (the restore route's
// dry run), with the button that confirms it.
func (u *ui) restorePreview(w http.ResponseWriter, r *http.Request, s *session) {
	f, ok := u.folderOf(w, r, s)
	if !ok || !u.mayRestore(w, r, s) {
		return
	}
	d, ok := u.restoreRequest(w, r, s)
	if !ok {
		return
	}
	res, err := u.cfg.Restore(r.Context(), f.ID, d.req(true))
	if err != nil {
		u.restoreFailed(w, r, s, f, d, err)
		return
	}
	d.Result = res
	u.render(w, r, http.StatusOK, "restore", &page{Title: "Restore: preview", Session: s, Folder: f, Data: d})
}

// restore writes (after the CSRF check in signedIn).
func (u *ui) restore(w http.ResponseWriter, r *http.Request, s *session) {
	f, ok := u.folderOf(w, r, s)
	if !ok || !u.mayRestore(w, r, s) {
		return
	}
	d, ok := u.restoreRequest(w, r, s)
	if !ok {
		return
	}
	res, err := u.cfg.Restore(r.Context(), f.ID, d.req(false))
	if err != nil {
		if res != nil && len(res.Written) > 0 {
			err = fmt.Errorf("%w; written before the failure: %s (restoring again writes only what is missing)", err, strings.Join(res.Written, ", "))
		}
		u.restoreFailed(w, r, s, f, d, err)
		return
	}
	u.log.Info("web restore", "folder", f.ID.String(), "seq", res.Seq, "path", d.Path, "written", len(res.Written))
	d.Result, d.Done = res, true
	u.render(w, r, http.StatusOK, "restore", &page{Title: "Restore: done", Session: s, Folder: f, Data: d})
}

func (u *ui) restoreFailed(w http.ResponseWriter, r *http.Request, s *session, f *folderRef, d restoreData, err error) {
	status := http.StatusBadGateway // Relay refused or failed
	switch {
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, writeback.ErrRefused):
		status = http.StatusUnprocessableEntity
	}
	u.log.Warn("web restore failed", "folder", f.ID.String(), "seq", d.Seq, "err", err)
	d.Failure = err.Error()
	u.render(w, r, status, "restore", &page{Title: "Restore failed", Session: s, Folder: f, Data: d})
}
