package readapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// WriteTokenEnv is the environment variable the write token comes from,
// on the server (what it accepts) and in clients (what they send).
const WriteTokenEnv = "RELAY_GIT_WRITE_TOKEN"

// RestoreRequest is the body of POST …/restore: which snapshot (Seq, else
// the last at or before At, else the latest) and which paths (as in git;
// a directory means everything under it; none = the whole folder).
type RestoreRequest struct {
	Seq    uint64     `json:"seq,omitempty"`
	At     *time.Time `json:"at,omitempty"`
	Paths  []string   `json:"paths,omitempty"`
	DryRun bool       `json:"dry_run,omitempty"`
}

// RestoreAction is one write of a restore.
type RestoreAction struct {
	Op      string `json:"op"` // edit | create | recreate | rename | upload | delete | folder
	Path    string `json:"path"`
	OldPath string `json:"old_path,omitempty"`
	DocID   string `json:"doc_id,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// String is the action as restore and git push print it, e.g.
// "rename   old.md -> new.md (+3 -1 characters)".
func (a RestoreAction) String() string {
	s := fmt.Sprintf("%-8s %s", a.Op, a.Path)
	if a.OldPath != "" {
		s = fmt.Sprintf("%-8s %s -> %s", a.Op, a.OldPath, a.Path)
	}
	if a.Detail != "" {
		s += " (" + a.Detail + ")"
	}
	return s
}

// RestoreResult is the answer of POST …/restore.
type RestoreResult struct {
	Seq     uint64          `json:"seq"` // the snapshot restored from
	DryRun  bool            `json:"dry_run"`
	Actions []RestoreAction `json:"actions"`
	Written []string        `json:"written"` // paths written (empty on a dry run)
}

// ErrWriteRefused means the server does not write: writes are off, or
// the token is not the write token (HTTP 403).
var ErrWriteRefused = errors.New("writing refused")

// Restore asks the server to write paths of a snapshot back into Relay
// (RestoreRequest). The client's token must be the write token. A restore
// that failed half way answers with what was written and Error set; it is
// returned with a non-nil error.
func (c *Client) Restore(ctx context.Context, f store.FolderID, req RestoreRequest) (*RestoreResult, error) {
	body, _ := json.Marshal(req)
	what := "restore of " + f.String()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+folderPath(f)+"/restore", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.do(ctx, hreq, what)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res RestoreResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return nil, fmt.Errorf("reading the answer to the %s from %s: %w", what, c.base, err)
	}
	return &res, nil
}
