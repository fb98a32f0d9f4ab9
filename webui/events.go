package webui

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// maxStream bounds one event stream; the browser's EventSource reconnects
// by itself, so this only recycles long-lived connections.
const maxStream = 10 * time.Minute

// events streams server-sent events to the timeline page: a "snapshot"
// event with the folder's latest seq whenever it passes ?after (checked
// every Poll), so that the page can offer the new snapshots.
func (u *ui) events(w http.ResponseWriter, r *http.Request, s *session) {
	f, ok := u.folderOf(w, r, s)
	if !ok {
		return
	}
	after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if err != nil {
		http.Error(w, "after must be a snapshot number", http.StatusBadRequest)
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseUint(id, 10, 64); err == nil && n > after {
			after = n
		}
	}
	ctx := r.Context()
	if _, err := u.cfg.Source.Folder(ctx, f.ID); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// The first line tells the browser how soon to reconnect.
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", (2 * u.cfg.Poll).Milliseconds()); err != nil {
		return
	}
	_ = rc.Flush()
	tick := time.NewTicker(u.cfg.Poll)
	defer tick.Stop()
	end := time.NewTimer(maxStream)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.cfg.Done:
			return
		case <-end.C:
			return
		case <-tick.C:
		}
		fo, err := u.cfg.Source.Folder(ctx, f.ID)
		if err != nil {
			u.log.Warn("event stream: reading the folder", "folder", f.ID.String(), "err", err)
			continue
		}
		if fo.LatestSeq <= after {
			continue
		}
		after = fo.LatestSeq
		if _, err := fmt.Fprintf(w, "id: %d\nevent: snapshot\ndata: {\"latest\":%d}\n\n", after, after); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
