package relaytest

// The write side of the fake (relay-protocol.md §3, relay-server HEAD
// d7ebd315 crates/relay/src/server.rs): update_doc, new_doc,
// handle_file_upload_url, handle_file_upload_raw, handle_file_history and
// an S3-style presigned PUT.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

const (
	// MaxUpdateBytes is the largest update body the update route accepts:
	// relay-server's update_doc takes the body as axum Bytes, whose default
	// limit (axum 0.7 DefaultBodyLimit) is 2 MiB; a larger body gets 413.
	MaxUpdateBytes = 2 << 20
	// maxUploadBytes is relay-server's limit on direct (filesystem)
	// uploads, DefaultBodyLimit::max(250 MiB).
	maxUploadBytes = 250 << 20
)

// fileToken is what the Relay control plane signs for the plugin to upload
// or download one attachment version (y-sweet-core Permission::File).
type fileToken struct {
	cid, hash, mimetype string
	length              int64 // -1 = no length in the token
	exp                 time.Time
	readOnly            bool
}

// IssueFileToken returns a file token for attachment fileID of relay
// relayID with content hash (SHA-256 hex), valid for an hour: what the Relay
// control plane issues to a signed-in plugin, and the only token
// relay-server accepts for uploads. mimetype "" and length < 0 leave them
// out of the token (then the upload is not checked against them).
func (s *Server) IssueFileToken(relayID, fileID, hash, mimetype string, length int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := "file." + base64.RawURLEncoding.EncodeToString(randomBytes(24))
	if length < 0 {
		length = -1
	}
	s.ftokens[tok] = fileToken{
		cid: relay.CompoundID(relayID, fileID), hash: strings.ToLower(hash),
		mimetype: mimetype, length: length, exp: s.now().Add(time.Hour),
	}
	return tok
}

// FileTokens returns a relay.FileTokenFunc that issues file tokens as
// IssueFileToken does, for relay.ClientOptions.FileToken.
func (s *Server) FileTokens() relay.FileTokenFunc {
	return func(_ context.Context, relayID, fileID, hash, mimetype string, length int64) (string, error) {
		return s.IssueFileToken(relayID, fileID, hash, mimetype, length), nil
	}
}

// SignCommand is a shell command for relay.EnvFileTokenCommand that gets
// file tokens from this server as relay-server's `relay sign --auth <private key>` signs
// them: the request on stdin is posted (with node, which the tests have) to
// POST /_control/sign with $RELAY_SERVER_API_KEY as the bearer token, a
// stand-in for the server's signing key, and the answer printed.
func (s *Server) SignCommand() string {
	return `node -e 'let b="";process.stdin.on("data",d=>b+=d).on("end",async()=>{` +
		`const r=await fetch("` + s.URL() + `/_control/sign",{method:"POST",body:b,headers:{authorization:"Bearer "+process.env.RELAY_SERVER_API_KEY}});` +
		`const t=await r.text();if(!r.ok){console.error(t);process.exit(1)}process.stdout.write(t)})'`
}

// handleSign is the route behind SignCommand: relay-server's sign input
// ({"type":"file","docId","fileHash","authorization"}) in, its output
// ({"token",…}) out.
func (s *Server) handleSign(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok || !s.isServerToken(tok) {
		http.Error(w, "sign needs the server's key", http.StatusUnauthorized)
		return
	}
	var in struct {
		Type, DocID, FileHash, Authorization string
	}
	err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&struct {
		Type          *string `json:"type"`
		DocID         *string `json:"docId"`
		FileHash      *string `json:"fileHash"`
		Authorization *string `json:"authorization"`
	}{&in.Type, &in.DocID, &in.FileHash, &in.Authorization})
	relayID, fileID, idErr := relay.ParseCompoundID(in.DocID)
	switch {
	case err != nil:
		http.Error(w, "bad sign input: "+err.Error(), http.StatusBadRequest)
		return
	case in.Type != "file" || in.Authorization != "full" || idErr != nil || !relay.IsSHA256Hex(in.FileHash):
		http.Error(w, "this fake signs full file tokens for <relay>-<file> and a SHA-256 only", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"token": s.IssueFileToken(relayID, fileID, in.FileHash, "", -1), "docId": in.DocID,
		"fileHash": in.FileHash, "authorization": "full", "type": "file",
	})
}

// WrittenUpdates returns the update bodies the update route applied to
// document docID of relay relayID, in order (retried writes included), so
// tests can check them with the real yjs.
func (s *Server) WrittenUpdates(relayID, docID string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, u := range s.written[relay.CompoundID(relayID, docID)] {
		out = append(out, bytes.Clone(u))
	}
	return out
}

// ApplyUpdate applies a Yjs v1 update to document docID of relay relayID
// (creating it if needed) as the update route does, and sends the webhook
// if the document changed: a Relay client's edit arriving over its
// websocket, e.g. a user typing made with the real yjs.
func (s *Server) ApplyUpdate(relayID, docID string, update []byte) error {
	cid := relay.CompoundID(relayID, docID)
	s.mu.Lock()
	changed, err := s.applyLocked(cid, update)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("relaytest: applying an update to %s: %w", cid, err)
	}
	if changed {
		s.emit(cid)
	}
	return nil
}

// applyLocked merges update into document cid (created if missing, as
// relay-server's attach_doc loads or creates it) and reports whether the
// document changed. The update is tried on a copy first, so a rejected
// update leaves the document as it was. s.mu must be held.
func (s *Server) applyLocked(cid string, update []byte) (changed bool, err error) {
	d, ok := s.docs[cid]
	if !ok {
		d = s.newDocLocked(cid)
	}
	before, err := d.EncodeStateAsUpdate()
	if err != nil {
		return false, err
	}
	trial := yjs.NewDoc()
	if err := trial.ApplyUpdate(before); err != nil {
		return false, err
	}
	if err := trial.ApplyUpdate(update); err != nil {
		return false, err
	}
	if err := d.ApplyUpdate(update); err != nil {
		return false, err
	}
	after, err := d.EncodeStateAsUpdate()
	if err != nil {
		return false, err
	}
	// yrs fires its update observer (and so the webhook) only when a
	// transaction added structs or deletions: an update the document
	// already holds (a retried write) sends none.
	return !bytes.Equal(before, after), nil
}

// docTokenCheck authorizes a document route: the server token, or a
// document token for cid that has not expired. It returns whether the
// token is read-only, or the error answer.
func (s *Server) docTokenCheck(r *http.Request, cid string) (readOnly bool, rp *reply) {
	if s.opts.APIKey == "" {
		return false, nil
	}
	tok, ok := bearer(r)
	if !ok {
		return false, errReply(http.StatusUnauthorized, "No token provided.")
	}
	if s.isServerToken(tok) {
		return false, nil
	}
	s.mu.Lock()
	t, found := s.tokens[tok]
	s.mu.Unlock()
	switch {
	case !found:
		return false, errReply(http.StatusUnauthorized, "Invalid token")
	case t.doc != cid:
		return false, errReply(http.StatusUnauthorized, "Token not valid for this document")
	case s.now().After(t.exp):
		return false, errReply(http.StatusUnauthorized, "Token expired")
	}
	return t.readOnly, nil
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request) {
	cid := r.PathValue("id")
	f := s.begin(RouteUpdate, cid)
	s.finish(w, r, RouteUpdate, f, func() *reply {
		// axum reads the body (and enforces its limit) before the handler.
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxUpdateBytes+1))
		if err != nil {
			return textReply(http.StatusBadRequest, "Failed to buffer the request body: "+err.Error())
		}
		if len(body) > MaxUpdateBytes {
			return textReply(http.StatusRequestEntityTooLarge, "Failed to buffer the request body: length limit exceeded")
		}
		readOnly, rp := s.docTokenCheck(r, cid)
		if rp != nil {
			return rp
		}
		if readOnly {
			return errReply(http.StatusForbidden, "Unauthorized.")
		}
		s.mu.Lock()
		changed, err := s.applyLocked(cid, body)
		if err == nil {
			s.written[cid] = append(s.written[cid], body)
		}
		s.mu.Unlock()
		if err != nil {
			return errReply(http.StatusInternalServerError, err.Error())
		}
		if changed {
			s.emit(cid)
		}
		return &reply{status: http.StatusOK, header: http.Header{}}
	})
}

// validDocName is relay-server's validate_doc_name.
func validDocName(id string) bool {
	if id == "" {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Server) handleNewDoc(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req struct {
		DocID *string `json:"docId"`
	}
	jsonErr := json.Unmarshal(body, &req)
	id := ""
	if jsonErr == nil && req.DocID != nil {
		id = *req.DocID
	}
	f := s.begin(RouteNewDoc, id)
	s.finish(w, r, RouteNewDoc, f, func() *reply {
		// axum's Json extractor runs before the handler.
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			return textReply(http.StatusUnsupportedMediaType, "Expected request with `Content-Type: application/json`")
		}
		if jsonErr != nil {
			return textReply(http.StatusBadRequest, "Failed to parse the request body as JSON: "+jsonErr.Error())
		}
		if s.opts.APIKey != "" {
			tok, ok := bearer(r)
			switch {
			case !ok:
				return errReply(http.StatusUnauthorized, "No token provided")
			case s.isServerToken(tok):
			case !s.knownToken(tok):
				return errReply(http.StatusUnauthorized, "Invalid token: the token is not valid")
			case req.DocID == nil:
				return errReply(http.StatusForbidden, "Prefix tokens must specify a docId that matches their prefix")
			default:
				return errReply(http.StatusForbidden, "Only server or prefix tokens can create documents")
			}
		}
		s.mu.Lock()
		if req.DocID == nil {
			id = s.newUUIDLocked()
		} else if !validDocName(id) {
			s.mu.Unlock()
			return errReply(http.StatusBadRequest, "Invalid document name")
		}
		if _, ok := s.docs[id]; !ok {
			s.newDocLocked(id)
		}
		s.mu.Unlock()
		return jsonReply(map[string]string{"docId": id})
	})
}

func (s *Server) knownToken(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, doc := s.tokens[tok]
	_, file := s.ftokens[tok]
	return doc || file
}

// uploadGrant is what an upload may store: one hash under one attachment.
type uploadGrant struct {
	hash, mimetype string
	length         int64
}

// uploadAuth checks the token of upload-url (relay-server
// verify_file_token_for_doc, then a File permission with Full access).
// serverHash is the ?hash= used with the server token under
// Options.ServerTokenUploads.
func (s *Server) uploadAuth(tok, cid, serverHash string, notFile func() *reply) (uploadGrant, *reply) {
	if s.isServerToken(tok) {
		if !s.opts.ServerTokenUploads {
			return uploadGrant{}, notFile()
		}
		if !relay.IsSHA256Hex(serverHash) {
			return uploadGrant{}, errReply(http.StatusBadRequest, "Invalid file hash format in query parameter")
		}
		return uploadGrant{hash: strings.ToLower(serverHash), length: -1}, nil
	}
	s.mu.Lock()
	ft, isFile := s.ftokens[tok]
	dt, isDoc := s.tokens[tok]
	s.mu.Unlock()
	now := s.now()
	switch {
	case isFile && ft.cid == cid && now.After(ft.exp), isDoc && dt.doc == cid && now.After(dt.exp):
		return uploadGrant{}, errReply(http.StatusUnauthorized, "Invalid token: the token has expired")
	case isFile && ft.cid == cid && ft.readOnly, isDoc && dt.doc == cid && dt.readOnly:
		return uploadGrant{}, errReply(http.StatusForbidden, "Insufficient permissions to upload files")
	case isFile && ft.cid == cid:
		return uploadGrant{hash: ft.hash, mimetype: ft.mimetype, length: ft.length}, nil
	case isDoc && dt.doc == cid:
		return uploadGrant{}, notFile()
	}
	return uploadGrant{}, errReply(http.StatusUnauthorized, "Invalid token: the token is not valid for this resource")
}

func (s *Server) handleUploadURL(w http.ResponseWriter, r *http.Request) {
	cid := r.PathValue("id")
	f := s.begin(RouteUploadURL, cid)
	s.finish(w, r, RouteUploadURL, f, func() *reply {
		if s.opts.APIKey == "" {
			return errReply(http.StatusUnauthorized, "Authentication is required for file operations")
		}
		tok, ok := bearer(r)
		if !ok {
			return errReply(http.StatusUnauthorized, "No token provided")
		}
		g, rp := s.uploadAuth(tok, cid, r.URL.Query().Get("hash"), func() *reply {
			return errReply(http.StatusBadRequest, "Token is not a file token")
		})
		if rp != nil {
			return rp
		}
		if !relay.IsSHA256Hex(g.hash) {
			return errReply(http.StatusBadRequest, "Invalid file hash format in token")
		}
		base := s.publicBase(r)
		if s.opts.FileStore == "filesystem" {
			// relay-server appends the caller's token to the store's
			// relative upload path.
			u := base + "/f/" + cid + "/upload?token=" + url.QueryEscape(tok)
			if s.isServerToken(tok) {
				u += "&hash=" + g.hash
			}
			return jsonReply(map[string]string{"uploadUrl": u})
		}
		return jsonReply(map[string]string{"uploadUrl": base + s.presignPut(cid, g)})
	})
}

// presignPut is the S3 presigned PUT of files/{cid}/{hash}: like presign,
// with the method, and the content type and length from the file token as
// signed headers (relay-server's S3 store signs both).
func (s *Server) presignPut(cid string, g uploadGrant) string {
	path := "/s3/" + s3Bucket + "/files/" + cid + "/" + g.hash
	date := s.now().UTC().Format("20060102T150405Z")
	exp := strconv.Itoa(max(1, int(s.opts.PresignExpiry/time.Second)))
	signed := []string{"host"}
	length := ""
	if g.length >= 0 {
		signed = append(signed, "content-length")
		length = strconv.FormatInt(g.length, 10)
	}
	if g.mimetype != "" {
		signed = append(signed, "content-type")
	}
	sort.Strings(signed)
	sh := strings.Join(signed, ";")
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", "RELAYTESTKEY/"+date[:8]+"/auto/s3/aws4_request")
	q.Set("X-Amz-Date", date)
	q.Set("X-Amz-Expires", exp)
	q.Set("X-Amz-SignedHeaders", sh)
	q.Set("X-Amz-Signature", s.putSignature(path, date, exp, sh, g.mimetype, length))
	return path + "?" + q.Encode()
}

func (s *Server) putSignature(path, date, exp, signedHeaders, contentType, length string) string {
	m := hmac.New(sha256.New, s.signKey)
	io.WriteString(m, "PUT\n"+path+"\n"+date+"\n"+exp+"\n"+signedHeaders+"\n"+contentType+"\n"+length)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) handleS3Upload(w http.ResponseWriter, r *http.Request) {
	cid, hash := r.PathValue("id"), r.PathValue("hash")
	f := s.begin(RouteUpload, cid)
	s.finish(w, r, RouteUpload, f, func() *reply {
		if r.PathValue("bucket") != s3Bucket {
			return s3Error(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		}
		q := r.URL.Query()
		date, exp, sh, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature")
		// The signed headers must be sent with the signed values.
		ct, length := "", ""
		for _, h := range strings.Split(sh, ";") {
			switch h {
			case "content-type":
				ct = r.Header.Get("Content-Type")
			case "content-length":
				length = strconv.FormatInt(r.ContentLength, 10)
			}
		}
		want := s.putSignature(r.URL.Path, date, exp, sh, ct, length)
		if sig == "" || !hmac.Equal([]byte(sig), []byte(want)) {
			return s3Error(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		}
		t, err := time.Parse("20060102T150405Z", date)
		n, err2 := strconv.Atoi(exp)
		if err != nil || err2 != nil || s.now().After(t.Add(time.Duration(n)*time.Second)) {
			return s3Error(http.StatusForbidden, "AccessDenied", "Request has expired")
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, maxUploadBytes+1))
		if err != nil {
			return s3Error(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
		}
		if len(data) > maxUploadBytes {
			return s3Error(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
		}
		// S3 does not check the content against the key's hash: what a
		// client stores under a wrong hash fails the reader's check.
		s.storeBlob(cid, hash, r.Header.Get("Content-Type"), data)
		h := http.Header{}
		sum := sha256.Sum256(data)
		h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
		return &reply{status: http.StatusOK, header: h}
	})
}

// handleFSUpload is the filesystem store's raw upload
// (handle_file_upload_raw): the file token comes in the query, and the
// server checks the content's length and hash against it.
func (s *Server) handleFSUpload(w http.ResponseWriter, r *http.Request) {
	cid := r.PathValue("id")
	f := s.begin(RouteUpload, cid)
	s.finish(w, r, RouteUpload, f, func() *reply {
		q := r.URL.Query()
		if !q.Has("token") {
			return textReply(http.StatusBadRequest, "Failed to deserialize query string: missing field `token`")
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, maxUploadBytes+1))
		if err != nil {
			return textReply(http.StatusBadRequest, "Failed to buffer the request body: "+err.Error())
		}
		if len(data) > maxUploadBytes {
			return textReply(http.StatusRequestEntityTooLarge, "Failed to buffer the request body: length limit exceeded")
		}
		g, rp := s.uploadAuth(q.Get("token"), cid, q.Get("hash"), func() *reply {
			return errReply(http.StatusBadRequest, "Token must be a file token")
		})
		if rp != nil {
			if rp.status == http.StatusUnauthorized {
				return errReply(http.StatusUnauthorized, "Invalid token")
			}
			return rp
		}
		if g.length >= 0 && int64(len(data)) != g.length {
			return errReply(http.StatusBadRequest, fmt.Sprintf("Content-Length mismatch: expected %d, got %d", g.length, len(data)))
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != g.hash {
			return errReply(http.StatusBadRequest, fmt.Sprintf("File hash mismatch: expected %s, got %s", g.hash, got))
		}
		mt := g.mimetype
		if mt == "" {
			mt = r.Header.Get("Content-Type")
		}
		s.storeBlob(cid, g.hash, mt, data)
		return &reply{status: http.StatusOK, header: http.Header{}}
	})
}

func (s *Server) storeBlob(cid, hash, mimetype string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[blobKey(cid, hash)] = &blob{data, mimetype, s.now()}
}

// FileVersion is one entry of GET /f/{id}/history.
type FileVersion struct {
	Hash      string `json:"hash"`
	Size      uint64 `json:"size"`
	CreatedAt uint64 `json:"createdAt"` // ms since the epoch
}

func (s *Server) handleFileHistory(w http.ResponseWriter, r *http.Request) {
	cid := r.PathValue("id")
	f := s.begin(RouteFileHistory, cid)
	s.finish(w, r, RouteFileHistory, f, func() *reply {
		if s.opts.APIKey != "" {
			tok, ok := bearer(r)
			if !ok {
				return errReply(http.StatusUnauthorized, "No token provided")
			}
			if !s.isServerToken(tok) {
				// verify_file_token_for_doc: doc and file tokens of this id.
				s.mu.Lock()
				ft, isFile := s.ftokens[tok]
				dt, isDoc := s.tokens[tok]
				s.mu.Unlock()
				now := s.now()
				okFile := isFile && ft.cid == cid && !now.After(ft.exp)
				okDoc := isDoc && dt.doc == cid && !now.After(dt.exp)
				if !okFile && !okDoc {
					return errReply(http.StatusUnauthorized, "Invalid token: the token is not valid for this resource")
				}
			}
		}
		prefix := "files/" + cid + "/"
		s.mu.Lock()
		files := []FileVersion{}
		for k, b := range s.blobs {
			if h, ok := strings.CutPrefix(k, prefix); ok {
				files = append(files, FileVersion{Hash: h, Size: uint64(len(b.data)), CreatedAt: uint64(b.created.UnixMilli())})
			}
		}
		s.mu.Unlock()
		// S3 lists keys in lexicographic order.
		sort.Slice(files, func(i, j int) bool { return files[i].Hash < files[j].Hash })
		return jsonReply(map[string]any{"files": files})
	})
}
