package readapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Limits on what POST …/changes takes (git push relay:: refuses a push
// that breaks one before writing anything).
const (
	// MaxDocumentBytes is the largest note or canvas: the Relay Server
	// takes updates of at most 2 MiB, and a new document's update is its
	// text plus a little framing.
	MaxDocumentBytes = 2_000_000
	// MaxAttachmentBytes is the largest attachment.
	MaxAttachmentBytes = 50 << 20
	// MaxChangesBody is the largest request body (the contents are in
	// it, base64-encoded).
	MaxChangesBody = 256 << 20
)

// WriteChange is one path of a folder as it should become (writeback.Change on
// the wire).
type WriteChange struct {
	// Path is folder-relative and slash-separated, as in snapshots.
	Path string `json:"path"`
	// Delete removes Path's entry.
	Delete bool `json:"delete,omitempty"`
	// From, for a rename, is the current path whose entry (and document
	// id) moves to Path.
	From string `json:"from,omitempty"`
	// Kind is "markdown", "canvas" or "file".
	Kind string `json:"kind,omitempty"`
	// Data is the content (base64 in JSON): a note's UTF-8 text, a canvas
	// as relay-git-sync exports it, an attachment's bytes.
	Data []byte `json:"data,omitempty"`
}

// ChangesRequest is the body of POST …/changes: the changes of a push,
// made against snapshot ExpectSeq of the folder (0: the folder has none).
type ChangesRequest struct {
	Changes   []WriteChange `json:"changes"`
	ExpectSeq uint64        `json:"expect_seq"`
	DryRun    bool          `json:"dry_run,omitempty"`
	// Commit is the pushed commit the changes come from: the snapshot
	// that records them is recorded as that commit (see store.Pushed).
	Commit *PushCommit `json:"commit,omitempty"`
}

// PushCommit is a pushed commit with the objects it brings.
type PushCommit struct {
	ID     string `json:"id"`               // 40-hex commit id
	Parent string `json:"parent,omitempty"` // the commit of snapshot ExpectSeq (none when 0)
	// Pack is a git pack (base64 in JSON) of every object ID reaches and
	// Parent does not, as `git pack-objects --revs` writes it.
	Pack []byte `json:"pack"`
}

// ChangesResult is the answer of POST …/changes. Error is set (with HTTP
// 502) when the Relay Server failed after Written was written.
type ChangesResult struct {
	DryRun  bool            `json:"dry_run"`
	Actions []RestoreAction `json:"actions"`
	Written []string        `json:"written"`
	Error   string          `json:"error,omitempty"`
}

// Errors of WriteChanges besides those of the read API.
var (
	// ErrStale means the folder has changed since the snapshot the
	// changes were made against (HTTP 409): fetch, then push again. The
	// server's messages start with its text.
	ErrStale = errors.New("fetch first")
	// ErrChangeRefused means Relay cannot hold a change (HTTP 422):
	// nothing was written.
	ErrChangeRefused = errors.New("change refused")
)

// CheckChange says whether c is a change POST …/changes takes: a clean
// relative path, a known kind, a size within the limits. The error names
// the path.
func CheckChange(c WriteChange) error {
	paths := []string{c.Path}
	if c.From != "" {
		paths = append(paths, c.From)
	}
	for _, p := range paths {
		if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
			return fmt.Errorf("%q: not a folder-relative path", p)
		}
	}
	if c.Delete {
		return nil
	}
	switch c.Kind {
	case "markdown", "canvas":
		if len(c.Data) > MaxDocumentBytes {
			return fmt.Errorf("%s: %d bytes, more than the %d a note or canvas may have (the Relay Server takes updates of at most 2 MiB): keep it in git only, or split it", c.Path, len(c.Data), MaxDocumentBytes)
		}
		if !utf8.Valid(c.Data) {
			return fmt.Errorf("%s: not UTF-8 text, which a Relay note or canvas holds: convert it to UTF-8", c.Path)
		}
		var obj map[string]any
		if c.Kind == "canvas" && json.Unmarshal(c.Data, &obj) != nil {
			return fmt.Errorf("%s: not a canvas (a JSON object with nodes and edges)", c.Path)
		}
	case "file":
		if len(c.Data) > MaxAttachmentBytes {
			return fmt.Errorf("%s: %d bytes, more than the %d MiB an attachment may have", c.Path, len(c.Data), MaxAttachmentBytes>>20)
		}
	default:
		return fmt.Errorf("%s: unknown kind %q (want markdown, canvas or file)", c.Path, c.Kind)
	}
	return nil
}

// WriteChanges asks the server to write changes into Relay (serve
// --allow-writes; the client's token must be the write token). Errors wrap
// ErrStale, ErrChangeRefused, ErrWriteRefused or ErrUnauthorized when the
// server said so; a write that failed half way returns the result (with
// what was written) and an error.
func (c *Client) WriteChanges(ctx context.Context, f store.FolderID, req ChangesRequest) (*ChangesResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	what := "writing changes to " + f.String()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+folderPath(f)+"/changes", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.send(ctx, hreq, what)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusBadGateway:
		var res ChangesResult
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return nil, fmt.Errorf("%s: reading the answer of %s (%s): %w", what, c.base, resp.Status, err)
		}
		if resp.StatusCode != http.StatusOK {
			return &res, fmt.Errorf("%s: %s", what, res.Error)
		}
		return &res, nil
	}
	msg := errorMessage(resp)
	switch resp.StatusCode {
	case http.StatusConflict:
		return nil, fmt.Errorf("%w: %s", ErrStale, strings.TrimPrefix(msg, ErrStale.Error()+": "))
	case http.StatusUnprocessableEntity:
		return nil, fmt.Errorf("%w: %s", ErrChangeRefused, msg)
	case http.StatusUnauthorized:
		hint := "set " + WriteTokenEnv + " to the server's write token"
		if c.token == "" {
			hint = "no write token given: " + hint
		}
		return nil, fmt.Errorf("%s: %w by %s (%s): %s", what, ErrUnauthorized, c.base, msg, hint)
	case http.StatusForbidden:
		return nil, fmt.Errorf("%s: %w by %s: %s", what, ErrWriteRefused, c.base, msg)
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w on %s: %s", what, store.ErrNotFound, c.base, msg)
	}
	return nil, fmt.Errorf("%s: %s answered %s: %s", what, c.base, resp.Status, msg)
}
