package daemon

import (
	"log/slog"

	"github.com/relay-git-sync/relay-git-sync/internal/mirror"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// heldAdmin is what the server's held routes act on: the store's holds,
// and a push of the folder once a hold is released or dropped.
type heldAdmin struct {
	st      store.Backend
	mirrors *mirror.Manager
}

func (h heldAdmin) Holds() ([]store.Hold, error) { return h.st.Holds() }

func (h heldAdmin) ReleaseHold(f store.FolderID) (*store.Hold, error) {
	hold, err := h.st.ReleaseHold(f)
	if err == nil {
		h.mirrors.Notify(f)
	}
	return hold, err
}

func (h heldAdmin) DropHold(f store.FolderID) (*store.Hold, store.SeqRange, error) {
	hold, r, err := h.st.DropHold(f)
	if err == nil {
		h.mirrors.Notify(f)
	}
	return hold, r, err
}

// logHold warns when snap is a mass deletion the store held, and reports
// whether it was.
func logHold(log *slog.Logger, st store.Backend, snap *store.Snapshot) bool {
	h, err := st.Held(snap.Folder)
	if err != nil {
		log.Error("reading the folder's hold", "folder", snap.Folder.String(), "err", err)
		return false
	}
	if h == nil || h.From != snap.Seq {
		return false
	}
	log.Warn("mass deletion held: this snapshot and later ones are recorded but not pushed to the connectors; "+
		"check the folder in Relay, then run `relay-git-sync held release` (push it) or `held drop` (never push it)",
		"folder", snap.Folder.String(), "snapshot", snap.Seq, "deleted", h.Deleted, "of", h.BaseFiles, "compared_with", h.Base)
	return true
}

// warnHeld reminds at start of the folders still held.
func warnHeld(log *slog.Logger, st store.Backend) {
	list, err := st.Holds()
	if err != nil {
		log.Error("listing held folders", "err", err)
		return
	}
	for _, h := range list {
		log.Warn("snapshots held since a mass deletion are waiting for `relay-git-sync held release` or `held drop`",
			"folder", h.Folder.String(), "from_snapshot", h.From, "deleted", h.Deleted, "of", h.BaseFiles)
	}
}
