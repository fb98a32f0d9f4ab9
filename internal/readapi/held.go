package readapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Held is one folder whose snapshots are held by the mass-deletion guard
// (GET /api/v1/held): from snapshot HeldFrom on, nothing is pushed.
type Held struct {
	Relay    string `json:"relay"`
	Folder   string `json:"folder"`
	HeldFrom uint64 `json:"held_from"`
	// ComparedWith is the snapshot HeldFrom was compared with, which had
	// Files files; Deleted of them are gone in HeldFrom.
	ComparedWith uint64    `json:"compared_with"`
	Files        int       `json:"files"`
	Deleted      int       `json:"deleted"`
	Time         time.Time `json:"time"`
}

// HeldList is the answer of GET /api/v1/held.
type HeldList struct {
	Held []Held `json:"held"`
}

// HeldAction is the answer of POST …/held/release and …/held/drop.
type HeldAction struct {
	Held
	// Action is "released" or "dropped".
	Action string `json:"action"`
	// DroppedThrough is the last dropped snapshot (drop only): snapshots
	// HeldFrom..DroppedThrough are never pushed.
	DroppedThrough uint64 `json:"dropped_through,omitempty"`
}

// NewHeld is the wire form of a hold.
func NewHeld(h store.Hold) Held {
	return Held{Relay: h.Folder.Relay, Folder: h.Folder.Folder, HeldFrom: h.From, ComparedWith: h.Base,
		Files: h.BaseFiles, Deleted: h.Deleted, Time: h.Time.UTC()}
}

// Holds lists the folders held by the mass-deletion guard.
func (c *Client) Holds(ctx context.Context) ([]Held, error) {
	var out HeldList
	if err := c.getJSON(ctx, "/api/v1/held", "the held folders", &out); err != nil {
		return nil, err
	}
	return out.Held, nil
}

// ReleaseHold lets folder f's held snapshots be pushed.
func (c *Client) ReleaseHold(ctx context.Context, f store.FolderID) (*HeldAction, error) {
	return c.heldAction(ctx, f, "release")
}

// DropHold drops folder f's held snapshots: they are never pushed.
func (c *Client) DropHold(ctx context.Context, f store.FolderID) (*HeldAction, error) {
	return c.heldAction(ctx, f, "drop")
}

// heldAction posts …/held/<action>. A folder that is not held is
// store.ErrNotHeld.
func (c *Client) heldAction(ctx context.Context, f store.FolderID, action string) (*HeldAction, error) {
	what := action + " of the held snapshots of " + f.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+folderPath(f)+"/held/"+action, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	resp, err := c.send(ctx, req, what)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("%w by %s (%s): set %s to the server's RELAY_GIT_API_TOKEN", ErrUnauthorized, c.base, errorMessage(resp), TokenEnv)
	case http.StatusNotFound:
		if err := c.checkType(resp, what, "application/json"); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s on %s: %w", f, c.base, store.ErrNotHeld)
	default:
		return nil, fmt.Errorf("%s: %s answered %s: %s", what, c.base, resp.Status, errorMessage(resp))
	}
	if err := c.checkType(resp, what, "application/json"); err != nil {
		return nil, err
	}
	var out HeldAction
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading the answer to the %s from %s: %w", what, c.base, err)
	}
	return &out, nil
}
