package relay

// This file is the write side of the Relay Server client (relay-protocol.md
// §3; relay-server HEAD d7ebd315 crates/relay/src/server.rs): a Yjs update
// into a document, attachment uploads, and the list of an attachment's
// stored versions.
//
// Retries. Writes are retried like reads (5xx, 408, 429, timeouts, network
// errors, never other 4xx), including after an ambiguous failure where the
// write may already have landed. That is safe only because every write here
// is idempotent: applying a Yjs update the document already holds changes
// nothing (its structs are skipped by clock, its deletions are already
// deletions), creating a document that exists is a no-op (get_or_create),
// and an upload stores the same bytes under the same content-addressed key.
// Do not add a write that is not idempotent without changing this.
//
// Restoring a deleted note as the Relay plugin creates one (No-Instructions/
// Relay 67e2ee65), for the callers (internal/writeback):
//
//   - The note's own document "{relay}-{guid}": root Y.Text "contents"
//     holding the text (Document.ts getText("contents")). A canvas
//     (Canvas.ts, one transaction): root Y.Maps "nodes" and "edges", key =
//     the node/edge id, value = the object as Obsidian's .canvas JSON has
//     it, as a plain Any object (a text node keeps its "text" field too);
//     and for each node of type "text" a root Y.Text named after the node
//     id holding that text (replaceYTextContent).
//     guid is the old id when the server still has that document (FetchDoc
//     succeeds; PushUpdate then merges into it), else a new UUIDv4
//     (SyncStore.new mints uuidv4()). The document is written first (the
//     plugin uploads content before it publishes the entry).
//   - Then the folder document "{relay}-{folder}", in one update (one
//     transaction in SyncStore.set): root Y.Map "filemeta_v0" key = the
//     virtual path ("/" + path in the folder) set to a plain object (Any,
//     not a nested Y.Map): makeDocumentMeta = {version: 0, id: guid, type:
//     "markdown"}; makeCanvasMeta = {version: 0, id, type: "canvas"};
//     makeFolderMeta = {version: 0, id, type: "folder"} for every missing
//     parent directory; makeFileMeta = {version: 0, id, type: "image" |
//     "pdf" | "audio" | "video" | "base" | "file", mimetype, synctime: ms
//     since the epoch, hash: lower-case SHA-256 hex} for attachments (after
//     UploadFile when FileHistory lacks the hash). For a markdown entry the
//     same transaction also sets the legacy root Y.Map "docs": path -> guid
//     (SyncStore.legacyIds).
//   - A rename deletes the old key and sets the new key to the same object
//     (same id), in both maps for markdown.
//
// Every update is made against the state FetchDoc returned, with a fresh
// client id, holding only the new structs, so it merges with concurrent
// edits as any Relay client's edit does.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// FileTokenFunc issues a file token for uploading one attachment version:
// attachment fileID of relay relayID with content hash (SHA-256 hex),
// sent as mimetype, of length bytes. The Relay control plane issues these
// to the plugin; relay-server signs nothing for a server token.
type FileTokenFunc func(ctx context.Context, relayID, fileID, hash, mimetype string, length int64) (string, error)

// Errors wrapped by the write methods (besides ErrNotFound and
// ErrUnauthorized). Test with errors.Is.
var (
	// ErrNeedFileToken: the Relay Server refused to upload with the
	// server token. relay-server accepts uploads only with a file token
	// (ClientOptions.FileToken).
	ErrNeedFileToken = errors.New("the Relay Server accepts attachment uploads only with a file token, not with the server token (RELAY_SERVER_API_KEY): set " + EnvFileTokenCommand + " to a command that signs one with the server's key, such as relay-server's own `relay sign --auth <private key>`")
	// ErrTooLarge: the Relay Server refused the body as too large (HTTP
	// 413); relay-server takes updates of at most 2 MiB.
	ErrTooLarge = errors.New("the Relay Server refused the request as too large")
)

// uploadMimetype is the content type uploads are sent (and their file
// tokens asked for) with: the attachment's type lives in its filemeta_v0
// entry, and readers use the bytes only.
const uploadMimetype = "application/octet-stream"

// PushUpdate applies update (a Yjs v1 update) to document docID of relay
// relayID: POST /doc/{relay-doc}/auth for a full document token, then POST
// {baseUrl}/update with the update as the body. When the server has no such
// document it is created first (POST /doc/new {"docId"}), so a deleted
// note's document can be re-created under its old id.
//
// The update merges as Yjs merges: text anyone typed meanwhile stays. Each
// step is retried (see the file comment: an update is idempotent). Errors
// start with "writing document <relay>-<doc>" and wrap ErrUnauthorized (a
// refused key, or a read-only token: 403), ErrTooLarge, a *StatusError (a
// 500 is also what relay-server answers to an update it cannot decode) or
// the context's error; they never contain a token.
func (c *Client) PushUpdate(ctx context.Context, relayID, docID string, update []byte) error {
	if !IsUUID(relayID) || !IsUUID(docID) {
		return fmt.Errorf("writing document %.80q-%.80q: %w", relayID, docID, ErrInvalidUUID)
	}
	cid := CompoundID(relayID, docID)
	op := "writing document " + cid
	if len(update) == 0 {
		return fmt.Errorf("%s: the update is empty (an update that changes nothing is 2 zero bytes)", op)
	}
	sc := c.newScrubber()
	const full = `{"authorization":"full"}`
	docBase, token, err := c.docToken(ctx, op, cid, full, sc)
	if errors.Is(err, ErrNotFound) {
		if err = c.createDoc(ctx, op, cid, sc); err == nil {
			docBase, token, err = c.docToken(ctx, op, cid, full, sc)
		}
	}
	if err != nil {
		return sc.wrap(op, err)
	}
	u := *docBase
	u.Path = strings.TrimRight(u.Path, "/") + "/update"
	u.RawPath = ""
	reqOp := "POST /d/" + cid + "/update"
	err = c.retry(ctx, op, sc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(update))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		_, err = c.doRead(ctx, req, reqOp, 1<<20, sc)
		return err
	})
	if err != nil {
		return sc.wrap(op, tooLarge(err, fmt.Sprintf("the update is %d bytes", len(update))))
	}
	return nil
}

// tooLarge adds ErrTooLarge to a 413 answer.
func tooLarge(err error, what string) error {
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusRequestEntityTooLarge {
		return fmt.Errorf("%w (%s): %w", ErrTooLarge, what, err)
	}
	return err
}

// createDoc is POST /doc/new {"docId": cid} with the API key; the server
// creates the document unless it exists.
func (c *Client) createDoc(ctx context.Context, op, cid string, sc *scrubber) error {
	body, _ := json.Marshal(map[string]string{"docId": cid})
	u := c.endpoint("doc", "new")
	return c.retry(ctx, op, sc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		c.setAPIKey(req)
		_, err = c.doRead(ctx, req, "POST /doc/new", 1<<20, sc)
		return err
	})
}

// FileVersion is one stored version of an attachment (GET /f/{id}/history).
type FileVersion struct {
	Hash      string    // SHA-256 hex: the storage key files/{relay-file}/{hash}
	Size      int64     // bytes
	CreatedAt time.Time // when the store last wrote it
}

// FileHistory lists the stored versions of attachment fileID of relay
// relayID (GET /f/{relay-file}/history with the API key), in the store's
// order. An attachment the server never stored has none (not an error).
// Errors start with "listing file versions of <relay>-<file>".
func (c *Client) FileHistory(ctx context.Context, relayID, fileID string) ([]FileVersion, error) {
	if !IsUUID(relayID) || !IsUUID(fileID) {
		return nil, fmt.Errorf("listing file versions of %.80q-%.80q: %w", relayID, fileID, ErrInvalidUUID)
	}
	cid := CompoundID(relayID, fileID)
	op := "listing file versions of " + cid
	sc := c.newScrubber()
	u := c.endpoint("f", cid, "history")
	var out []FileVersion
	err := c.retry(ctx, op, sc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		c.setAPIKey(req)
		body, err := c.doRead(ctx, req, "GET /f/"+cid+"/history", 16<<20, sc)
		if err != nil {
			return err
		}
		var r struct {
			Files *[]struct {
				Hash      string `json:"hash"`
				Size      int64  `json:"size"`
				CreatedAt int64  `json:"createdAt"`
			} `json:"files"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Files == nil {
			if err == nil {
				err = errors.New("files missing")
			}
			return retryable(fmt.Errorf("GET /f/%s/history: the Relay Server's answer is not a file list: %w", cid, err), 0)
		}
		out = out[:0]
		for _, f := range *r.Files {
			out = append(out, FileVersion{Hash: strings.ToLower(f.Hash), Size: f.Size, CreatedAt: time.UnixMilli(f.CreatedAt).UTC()})
		}
		return nil
	})
	if err != nil {
		return nil, sc.wrap(op, err)
	}
	return out, nil
}

// HasFile reports whether the server stores attachment fileID of relay
// relayID with content hash (from FileHistory).
func (c *Client) HasFile(ctx context.Context, relayID, fileID, hash string) (bool, error) {
	vs, err := c.FileHistory(ctx, relayID, fileID)
	if err != nil {
		return false, err
	}
	for _, v := range vs {
		if strings.EqualFold(v.Hash, hash) {
			return true, nil
		}
	}
	return false, nil
}

// UploadFile stores data as attachment fileID of relay relayID under its
// SHA-256 hash (which must be hash): POST /f/{relay-file}/upload-url?hash=
// with a file token from ClientOptions.FileToken (else the API key), then
// PUT of the bytes to the returned URL (presigned S3, or the filesystem
// store's /f/{id}/upload?token=), without an Authorization header. The
// upload is sent as application/octet-stream.
//
// Both steps are retried (an upload of the same bytes under the same
// content-addressed key is idempotent). Errors start with "uploading file
// <relay>-<file>" and wrap ErrNeedFileToken (no FileToken and the server
// refused the API key for uploads, as relay-server does), ErrUnauthorized,
// ErrTooLarge, a *StatusError or the context's error; neither tokens nor
// the upload URL appear in them.
func (c *Client) UploadFile(ctx context.Context, relayID, fileID, hash string, data []byte) error {
	if !IsUUID(relayID) || !IsUUID(fileID) {
		return fmt.Errorf("uploading file %.80q-%.80q: %w", relayID, fileID, ErrInvalidUUID)
	}
	cid := CompoundID(relayID, fileID)
	op := "uploading file " + cid
	if !IsSHA256Hex(hash) {
		return fmt.Errorf("%s: invalid SHA-256 %.80q", op, hash)
	}
	hash = strings.ToLower(hash)
	op += " (sha256 " + hash[:12] + "…)"
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != hash {
		return fmt.Errorf("%s: the data's SHA-256 is %s, not the hash it is to be stored under", op, got)
	}
	sc := c.newScrubber()

	// Step 1: the upload URL.
	token := c.apiKey
	if c.fileToken != nil {
		t, err := c.fileToken(ctx, relayID, fileID, hash, uploadMimetype, int64(len(data)))
		if err != nil {
			return sc.wrap(op, fmt.Errorf("getting a file token: %w", err))
		}
		if strings.ContainsAny(t, "\r\n") || t == "" {
			return sc.wrap(op, errors.New("getting a file token: the token is empty or malformed"))
		}
		token = t
		sc.add(t)
	}
	u := c.endpoint("f", cid, "upload-url")
	u.RawQuery = "hash=" + hash // for a server token; a file token carries the hash
	upload, err := c.grantURL(ctx, op, sc, http.MethodPost, u, "/f/"+cid+"/upload-url", token, "uploadUrl", "an upload URL")
	if err != nil {
		var se *StatusError
		if c.fileToken == nil && errors.As(err, &se) && se.Code == http.StatusBadRequest && strings.Contains(se.Body, "file token") {
			err = fmt.Errorf("%w: %w", ErrNeedFileToken, err)
		}
		return sc.wrap(op, err)
	}
	sc.addURL(upload)
	target, err := c.serverURL(upload)
	if err != nil {
		return sc.wrap(op, fmt.Errorf("the Relay Server returned an unusable upload URL: %w", err))
	}

	// Step 2: the bytes.
	const putOp = "PUT upload URL"
	err = c.retry(ctx, op, sc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, target.String(), bytes.NewReader(data))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", uploadMimetype)
		_, err = c.doRead(ctx, req, putOp, 1<<20, sc)
		return err
	})
	if err != nil {
		return sc.wrap(op, tooLarge(err, fmt.Sprintf("the attachment is %d bytes", len(data))))
	}
	return nil
}
