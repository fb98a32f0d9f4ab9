package server

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// HeldAdmin is what the held routes act on: the mass-deletion guard's
// holds (store.Store has these methods; serve also pushes the folder after
// a release or drop).
type HeldAdmin interface {
	Holds() ([]store.Hold, error)
	ReleaseHold(f store.FolderID) (*store.Hold, error)
	DropHold(f store.FolderID) (*store.Hold, store.SeqRange, error)
}

// registerHeldMetrics registers relay_git_sync_held_folders, read from
// held at every scrape.
func registerHeldMetrics(reg prometheus.Registerer, held HeldAdmin) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "relay_git_sync_held_folders",
		Help: "Folders whose snapshots are held by the mass-deletion guard (not pushed until `relay-git-sync held release` or `drop`).",
	}, func() float64 {
		list, err := held.Holds()
		if err != nil {
			return -1
		}
		return float64(len(list))
	}))
}

// GET /api/v1/held
func (s *server) heldList(c *gin.Context) {
	if s.cfg.Held == nil {
		c.JSON(http.StatusNotFound, errBody("not found"))
		return
	}
	list, err := s.cfg.Held.Holds()
	if err != nil {
		s.readerError(c, err, "listing held folders")
		return
	}
	out := readapi.HeldList{Held: make([]readapi.Held, len(list))}
	for i, h := range list {
		out.Held[i] = readapi.NewHeld(h)
	}
	c.JSON(http.StatusOK, out)
}

// POST /api/v1/folders/:relay/:folder/held/release
func (s *server) heldRelease(c *gin.Context) { s.heldAction(c, false) }

// POST /api/v1/folders/:relay/:folder/held/drop
func (s *server) heldDrop(c *gin.Context) { s.heldAction(c, true) }

func (s *server) heldAction(c *gin.Context, drop bool) {
	f, ok := folderParams(c)
	if !ok {
		return
	}
	if s.cfg.Held == nil {
		c.JSON(http.StatusNotFound, errBody("not found"))
		return
	}
	var h *store.Hold
	var r store.SeqRange
	var err error
	out := readapi.HeldAction{Action: "released"}
	if drop {
		out.Action = "dropped"
		h, r, err = s.cfg.Held.DropHold(f)
	} else {
		h, err = s.cfg.Held.ReleaseHold(f)
	}
	if errors.Is(err, store.ErrNotFound) {
		c.JSON(http.StatusNotFound, errBody("folder "+f.String()+" has no held snapshots"))
		return
	}
	if err != nil {
		s.log.Error("held: "+out.Action, "folder", f.String(), "err", err)
		c.JSON(http.StatusInternalServerError, errBody("Internal server error"))
		return
	}
	out.Held, out.DroppedThrough = readapi.NewHeld(*h), r.Through
	s.log.Warn("held snapshots "+out.Action+" through the API", "folder", f.String(), "from_snapshot", h.From,
		"dropped_through", r.Through, "remote", c.ClientIP())
	c.JSON(http.StatusOK, out)
}
