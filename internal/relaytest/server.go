// Package relaytest owns a faithful in-process fake of the Relay Server (the
// y-sweet fork the Obsidian Relay plugin talks to), for tests, benchmarks and
// demos. It serves the endpoints relay-git-sync reads and writes
// (relay-protocol.md §3):
//
//	POST /doc/{id}/auth             server token -> ClientToken JSON
//	GET  /d/{id}/as-update          doc (or server) token -> Yjs v1 update
//	GET  /doc/{id}/as-update        deprecated alias of the above
//	POST /d/{id}/update             full doc (or server) token, body a Yjs v1 update
//	POST /doc/{id}/update           deprecated alias of the above
//	POST /doc/new                   server token, {"docId"} -> {"docId"}
//	GET  /f/{id}/download-url?hash= server token -> {"downloadUrl": …}
//	GET  /f/{id}/download?hash=&token=   filesystem-store download
//	POST /f/{id}/upload-url         file token -> {"uploadUrl": …}
//	PUT  /f/{id}/upload?token=      filesystem-store upload
//	GET  /f/{id}/history            server, doc or file token -> {"files": […]}
//	GET  /s3/{bucket}/files/{id}/{hash}?X-Amz-…  S3-style presigned download
//	PUT  /s3/{bucket}/files/{id}/{hash}?X-Amz-…  S3-style presigned upload
//	GET  /ready
//
// with the relay server's status codes, plain-text "Something went wrong: …"
// error bodies and a relay-server-version header. Documents are real Yjs
// documents built with internal/yjs; Folder methods change them the way the
// Obsidian Relay plugin does (§4). Faults can be injected per route and id,
// the server can be given a capacity in requests per second (a slow
// server), and webhooks are sent as the relay server sends them (§1),
// optionally signed per Standard Webhooks (§2.2).
//
// The package does not depend on testing: every method returns errors and is
// safe for concurrent use.
package relaytest

import (
	"bytes"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

// Options configures NewServer. The zero value is a server without auth and
// an S3-style file store.
type Options struct {
	// APIKey is the server token clients must send as "Authorization:
	// Bearer". "" = the server has no authenticator: /doc/{id}/auth issues
	// no token, as-update needs none, and the file endpoints answer 401
	// ("Authentication is required for file operations"), as the real
	// server does.
	APIKey string
	// FileStore is "s3" (default: presigned-style URLs on /s3/… with an
	// expiring HMAC signature) or "filesystem" (download URL
	// {base}/f/{id}/download?hash=…&token=<the bearer token>, §3.3).
	FileStore string
	// Version is the relay-server-version header (default "0.0.0-relaytest").
	Version string
	// PublicURL, when set, is the server's configured public URL: baseUrl,
	// url and download URLs are built from it, as relay-server's `url`
	// setting does (e.g. an http:// URL in front of a TLS listener to test
	// that clients never downgrade). "" = derived from the request's Host
	// and the listener's scheme.
	PublicURL string
	// TLS serves https (httptest.NewTLSServer with HTTP/2); use Client or
	// Certificate to trust it.
	TLS bool
	// Seed makes the generated UUIDs and Yjs client ids deterministic (in
	// call order). 0 means 1.
	Seed uint64
	// PresignExpiry is the S3 URL lifetime (default 1h, as relay-server).
	PresignExpiry time.Duration
	// Now is the clock for synctime, token expiry and webhook times
	// (default time.Now).
	Now func() time.Time
	// WebhookClient sends webhooks (SendWebhook and AddWebhook); nil = a
	// plain http.Client. Set it to reach an https receiver with a test
	// certificate.
	WebhookClient *http.Client
	// RequestsPerSecond, when positive, is the server's capacity: requests
	// of every route kind are answered one after another, at most this
	// many per second, in arrival order (a slow or overloaded server).
	// SetRequestsPerSecond changes it.
	RequestsPerSecond float64
	// ServerTokenUploads makes upload-url accept the server token (with the
	// hash in a ?hash= query, as download-url takes it). relay-server does
	// not (HEAD d7ebd315 answers 400 "Token is not a file token": uploads
	// need a file token from the Relay control plane, see IssueFileToken);
	// this option is for tests of a client's upload path only.
	ServerTokenUploads bool
}

// Route kinds for InjectFault and Requests.
const (
	RouteAuth        = "auth"
	RouteAsUpdate    = "as-update"
	RouteDownloadURL = "download-url"
	RouteDownload    = "download"
	RouteUpdate      = "update"
	RouteNewDoc      = "new-doc"
	RouteUploadURL   = "upload-url"
	RouteUpload      = "upload"
	RouteFileHistory = "file-history"
)

// Fault describes an injected failure. Fields combine: Delay is applied
// first, then Status (a plain-text error answer), else the real answer with
// its body altered by Truncate, Garbage or WrongBytes.
type Fault struct {
	// Status answers with this HTTP status and "Something went wrong:
	// injected fault" instead of the real answer (0 = real answer).
	Status int
	// Times is how many requests the fault affects; 0 = until ClearFaults.
	Times int
	// Delay holds the answer back (aborted when the client goes away).
	Delay time.Duration
	// Truncate sends the headers with the full Content-Length, then only
	// half of the body, and breaks the connection.
	Truncate bool
	// Garbage replaces the body by random bytes of the same length (at
	// least 16): broken JSON, an undecodable Yjs update, wrong file bytes.
	Garbage bool
	// WrongBytes sends well-formed but wrong content: a file with one byte
	// flipped (same length), the update of an empty document for
	// as-update; like Garbage elsewhere.
	WrongBytes bool
	// Drop processes the request (a write lands) and then breaks the
	// connection without an answer: the client cannot know that it
	// succeeded.
	Drop bool
}

type faultRule struct {
	route, id string
	f         Fault
	left      int // remaining uses; <0 = unlimited
}

type blob struct {
	data     []byte
	mimetype string
	created  time.Time
}

type docToken struct {
	doc      string
	exp      time.Time
	readOnly bool
}

// Server is the fake Relay Server. Create it with NewServer; Close it.
type Server struct {
	opts    Options
	ts      *httptest.Server
	now     func() time.Time
	version string
	signKey []byte // S3 presign HMAC key

	mu      sync.Mutex
	ids     *rand.Rand
	docs    map[string]*yjs.Doc // compound id -> document
	folders map[string]*Folder  // compound id -> folder
	blobs   map[string]*blob    // "files/{compound}/{hash}" -> content
	tokens  map[string]docToken
	ftokens map[string]fileToken // file tokens (IssueFileToken)
	written map[string][][]byte  // compound id -> update bodies the update route applied
	faults  []*faultRule
	counts  map[string]int
	byID    map[string]int // route + "\x00" + compound id -> requests
	user    string
	// rate limit (Options.RequestsPerSecond): the next free answer slot.
	slotGap  time.Duration
	nextSlot time.Time

	hooks *hookSet
}

// NewServer starts a fake Relay Server on 127.0.0.1 (an ephemeral port).
func NewServer(o Options) *Server {
	if o.FileStore == "" {
		o.FileStore = "s3"
	}
	if o.Version == "" {
		o.Version = "0.0.0-relaytest"
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.PresignExpiry <= 0 {
		o.PresignExpiry = time.Hour
	}
	s := &Server{
		opts:    o,
		now:     o.Now,
		version: o.Version,
		signKey: randomBytes(32),
		ids:     rand.New(rand.NewPCG(o.Seed, 0x72656c6179)),
		docs:    map[string]*yjs.Doc{},
		folders: map[string]*Folder{},
		blobs:   map[string]*blob{},
		tokens:  map[string]docToken{},
		ftokens: map[string]fileToken{},
		written: map[string][][]byte{},
		counts:  map[string]int{},
		byID:    map[string]int{},
	}
	s.setRateLocked(o.RequestsPerSecond)
	if s.now == nil {
		s.now = time.Now
	}
	s.hooks = newHookSet(s)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /doc/{id}/auth", s.handleAuth)
	mux.HandleFunc("GET /d/{id}/as-update", s.handleAsUpdate)
	mux.HandleFunc("GET /doc/{id}/as-update", s.handleAsUpdate)
	mux.HandleFunc("POST /d/{id}/update", s.handleUpdate)
	mux.HandleFunc("POST /doc/{id}/update", s.handleUpdate)
	mux.HandleFunc("POST /doc/new", s.handleNewDoc)
	mux.HandleFunc("GET /f/{id}/download-url", s.handleDownloadURL)
	mux.HandleFunc("POST /f/{id}/upload-url", s.handleUploadURL)
	mux.HandleFunc("GET /f/{id}/history", s.handleFileHistory)
	if o.FileStore == "filesystem" {
		mux.HandleFunc("GET /f/{id}/download", s.handleFSDownload)
		mux.HandleFunc("PUT /f/{id}/upload", s.handleFSUpload)
	}
	mux.HandleFunc("GET /s3/{bucket}/files/{id}/{hash}", s.handleS3Download)
	mux.HandleFunc("PUT /s3/{bucket}/files/{id}/{hash}", s.handleS3Upload)
	mux.HandleFunc("POST /_control/sign", s.handleSign)
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/s3/") {
			w.Header().Set("relay-server-version", s.version)
		}
		mux.ServeHTTP(w, r)
	})
	if o.TLS {
		s.ts = httptest.NewUnstartedServer(h)
		s.ts.EnableHTTP2 = true
		s.ts.StartTLS()
	} else {
		s.ts = httptest.NewServer(h)
	}
	return s
}

// URL is the server's base URL, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.ts.URL }

// Close stops the server and the webhook senders (queued events are lost,
// as with the real server).
func (s *Server) Close() {
	s.hooks.close()
	s.ts.Close()
}

// SetPublicURL changes Options.PublicURL ("" = derive from the request),
// e.g. to an http:// URL naming the TLS listener itself.
func (s *Server) SetPublicURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.PublicURL = u
}

// Client returns an *http.Client that trusts the server (its TLS
// certificate when Options.TLS).
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Certificate returns the TLS certificate (nil without Options.TLS).
func (s *Server) Certificate() *x509.Certificate {
	if !s.opts.TLS {
		return nil
	}
	return s.ts.Certificate()
}

// TLSConfig returns a client TLS configuration trusting the server (nil
// without Options.TLS).
func (s *Server) TLSConfig() *tls.Config {
	c := s.Certificate()
	if c == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &tls.Config{RootCAs: pool}
}

// newUUIDLocked returns the next deterministic v4 UUID. s.mu must be held.
func (s *Server) newUUIDLocked() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], s.ids.Uint64())
	binary.BigEndian.PutUint64(b[8:], s.ids.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newDocLocked creates an empty document with a fresh Yjs client id.
func (s *Server) newDocLocked(cid string) *yjs.Doc {
	d := yjs.NewDoc()
	d.ClientID = uint64(s.ids.Uint32()) | 1 // yjs client ids are random uint32
	s.docs[cid] = d
	return d
}

// NewRelay returns a new relay UUID. Relays need no other setup.
func (s *Server) NewRelay() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newUUIDLocked()
}

// NewFolder creates a shared-folder document (root Y.Map "filemeta_v0", and
// the plugin's legacy "docs" map) in relay relayID.
func (s *Server) NewFolder(relayID string) *Folder {
	s.mu.Lock()
	id := s.newUUIDLocked()
	cid := relay.CompoundID(relayID, id)
	d := s.newDocLocked(cid)
	d.GetMap(relay.FileMetaKey)
	d.GetMap(legacyDocsKey)
	f := &Folder{s: s, relayID: relayID, id: id, cid: cid}
	s.folders[cid] = f
	s.mu.Unlock()
	s.emit(cid)
	return f
}

// Folder returns a folder made by NewFolder.
func (s *Server) Folder(relayID, folderID string) (*Folder, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.folders[relay.CompoundID(relayID, folderID)]
	return f, ok
}

// DocUpdate returns the current full state of document docID of relay
// relayID as a Yjs v1 update (what as-update serves).
func (s *Server) DocUpdate(relayID, docID string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cid := relay.CompoundID(relayID, docID)
	d, ok := s.docs[cid]
	if !ok {
		return nil, fmt.Errorf("relaytest: no document %s", cid)
	}
	return d.EncodeStateAsUpdate()
}

// EditDoc runs fn on document docID of relay relayID (creating an empty
// document if needed) under the server lock, then sends webhooks for it.
// For changes the Folder methods do not cover. fn must not call Server
// methods.
func (s *Server) EditDoc(relayID, docID string, fn func(*yjs.Doc) error) error {
	s.mu.Lock()
	cid := relay.CompoundID(relayID, docID)
	d, ok := s.docs[cid]
	if !ok {
		d = s.newDocLocked(cid)
	}
	err := fn(d)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("relaytest: editing %s: %w", cid, err)
	}
	s.emit(cid)
	return nil
}

// DeleteDoc removes a document from the server (the auth endpoint then
// answers 404 for it).
func (s *Server) DeleteDoc(relayID, docID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cid := relay.CompoundID(relayID, docID)
	delete(s.docs, cid)
	delete(s.folders, cid)
}

// PutBlob stores an attachment under files/{relay-file}/{sha256} and returns
// the hash, without touching any folder document.
func (s *Server) PutBlob(relayID, fileID, mimetype string, data []byte) string {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[blobKey(relay.CompoundID(relayID, fileID), h)] = &blob{append([]byte(nil), data...), mimetype, s.now()}
	return h
}

// DeleteBlob removes a stored attachment version.
func (s *Server) DeleteBlob(relayID, fileID, hash string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blobs, blobKey(relay.CompoundID(relayID, fileID), hash))
}

func blobKey(cid, hash string) string { return "files/" + cid + "/" + hash }

// SetEditingUser sets the user id carried by automatically sent webhooks
// ("" = null), like the user in a client's token.
func (s *Server) SetEditingUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = user
}

// InjectFault makes requests of a route kind (RouteAuth, RouteAsUpdate,
// RouteDownloadURL, RouteDownload, RouteUpdate, RouteNewDoc,
// RouteUploadURL, RouteUpload, RouteFileHistory) fail as f says. A Status
// fault on a write route writes nothing. id limits the fault to one
// document or file: a compound id or the plain doc/file UUID ("" = any).
// Faults are matched in the order they were injected; the first match
// applies.
func (s *Server) InjectFault(route, id string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := f.Times
	if left <= 0 {
		left = -1
	}
	s.faults = append(s.faults, &faultRule{route: route, id: id, f: f, left: left})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns how many requests of a route kind the server received
// (faulted ones included).
func (s *Server) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[route]
}

// RequestsFor returns how many requests of a route kind the server
// received for one document or file: a compound id or the plain doc/file
// UUID.
func (s *Server) RequestsFor(route, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	prefix := route + "\x00"
	for k, c := range s.byID {
		if cid, ok := strings.CutPrefix(k, prefix); ok && faultIDMatches(id, cid) {
			n += c
		}
	}
	return n
}

// ResetRequests zeroes the request counters.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
	clear(s.byID)
}

// SetRequestsPerSecond changes Options.RequestsPerSecond (0 = no limit).
func (s *Server) SetRequestsPerSecond(r float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setRateLocked(r)
}

func (s *Server) setRateLocked(r float64) {
	s.slotGap = 0
	if r > 0 {
		s.slotGap = time.Duration(float64(time.Second) / r)
	}
}

// begin counts a request and picks the fault that applies to it. Under a
// rate limit the request also takes the next answer slot: the wait is
// added to the fault's Delay.
func (s *Server) begin(route, cid string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[route]++
	s.byID[route+"\x00"+cid]++
	f := s.faultLocked(route, cid)
	if s.slotGap > 0 {
		now := time.Now()
		at := s.nextSlot
		if at.Before(now) {
			at = now
		}
		s.nextSlot = at.Add(s.slotGap)
		if wait := at.Sub(now); wait > 0 {
			if f == nil {
				f = &Fault{}
			}
			f.Delay += wait
		}
	}
	return f
}

func (s *Server) faultLocked(route, cid string) *Fault {
	for i, r := range s.faults {
		if r.route != route || !faultIDMatches(r.id, cid) {
			continue
		}
		f := r.f
		if r.left > 0 {
			r.left--
			if r.left == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &f
	}
	return nil
}

func faultIDMatches(want, cid string) bool {
	if want == "" || strings.EqualFold(want, cid) {
		return true
	}
	_, res, err := relay.ParseCompoundID(cid)
	return err == nil && strings.EqualFold(want, res)
}

// ---- HTTP plumbing ----

// reply is a handler's answer before faults are applied.
type reply struct {
	status int
	header http.Header
	body   []byte
	// serve, when set, serves the body with http.ServeContent (Range
	// support) if no body fault applies.
	serve   bool
	modTime time.Time
}

func textReply(status int, msg string) *reply {
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	return &reply{status: status, header: h, body: []byte(msg)}
}

// errReply is relay-server's AppError answer.
func errReply(status int, msg string) *reply {
	return textReply(status, "Something went wrong: "+msg)
}

func jsonReply(v any) *reply {
	b, _ := json.Marshal(v)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return &reply{status: http.StatusOK, header: h, body: b}
}

// finish applies the fault f (may be nil) and writes rep.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, route string, f *Fault, rep func() *reply) {
	if f != nil && f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f != nil && f.Status != 0 {
		writeReply(w, r, errReply(f.Status, "injected fault"))
		return
	}
	rp := rep()
	if f != nil && f.Drop {
		panic(http.ErrAbortHandler) // no answer: the client sees a broken connection
	}
	if f == nil || rp.status != http.StatusOK || !(f.Truncate || f.Garbage || f.WrongBytes) {
		writeReply(w, r, rp)
		return
	}
	body := rp.body
	switch {
	case f.WrongBytes && route == RouteDownload && len(body) > 0:
		body = append([]byte(nil), body...)
		body[0] ^= 0xff
	case f.WrongBytes && route == RouteAsUpdate:
		body = []byte{0, 0} // the update of an empty document
	case f.Garbage || f.WrongBytes:
		body = randomBytes(max(16, len(body)))
	}
	for k, v := range rp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if !f.Truncate {
		w.WriteHeader(rp.status)
		w.Write(body)
		return
	}
	w.WriteHeader(rp.status)
	w.Write(body[:len(body)/2])
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	panic(http.ErrAbortHandler) // break the connection (HTTP/1) or reset the stream (HTTP/2)
}

func writeReply(w http.ResponseWriter, r *http.Request, rp *reply) {
	for k, v := range rp.header {
		w.Header()[k] = v
	}
	if rp.serve && rp.status == http.StatusOK {
		http.ServeContent(w, r, "", rp.modTime, bytes.NewReader(rp.body))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(rp.body)))
	w.WriteHeader(rp.status)
	w.Write(rp.body)
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(v[7:]), true
}

func (s *Server) isServerToken(tok string) bool {
	return s.opts.APIKey != "" && hmac.Equal([]byte(tok), []byte(s.opts.APIKey))
}

// publicBase is the URL documents and files are addressed under (relay-server
// generate_context_aware_urls).
func (s *Server) publicBase(r *http.Request) string {
	s.mu.Lock()
	pub := s.opts.PublicURL
	s.mu.Unlock()
	if pub != "" {
		return strings.TrimRight(pub, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// ---- handlers ----

func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	cid := r.PathValue("id")
	f := s.begin(RouteAuth, cid)
	s.finish(w, r, RouteAuth, f, func() *reply {
		if s.opts.APIKey != "" {
			tok, ok := bearer(r)
			if !ok || !s.isServerToken(tok) {
				return errReply(http.StatusUnauthorized, "Unauthorized.")
			}
		}
		var req struct {
			Authorization   string `json:"authorization"`
			ValidForSeconds *int64 `json:"validForSeconds"`
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				return textReply(http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type: "+err.Error())
			}
		}
		switch req.Authorization {
		case "":
			req.Authorization = "full"
		case "full", "read-only":
		default:
			return textReply(http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type: authorization: unknown variant")
		}
		valid := time.Hour
		if req.ValidForSeconds != nil && *req.ValidForSeconds >= 0 {
			valid = time.Duration(*req.ValidForSeconds) * time.Second
		}
		s.mu.Lock()
		_, exists := s.docs[cid]
		var token string
		if exists && s.opts.APIKey != "" {
			token = "doc." + base64.RawURLEncoding.EncodeToString(randomBytes(24))
			now := s.now()
			if len(s.tokens) > 100000 {
				for k, t := range s.tokens {
					if now.After(t.exp) {
						delete(s.tokens, k)
					}
				}
			}
			s.tokens[token] = docToken{doc: cid, exp: now.Add(valid), readOnly: req.Authorization == "read-only"}
		}
		s.mu.Unlock()
		if !exists {
			return errReply(http.StatusNotFound, "Doc "+cid+" not found")
		}
		base := s.publicBase(r)
		wsBase := "ws" + strings.TrimPrefix(base, "http")
		ct := map[string]any{
			"url":           wsBase + "/d/" + cid + "/ws",
			"baseUrl":       base + "/d/" + cid,
			"docId":         cid,
			"authorization": req.Authorization,
		}
		if token != "" {
			ct["token"] = token
		}
		return jsonReply(ct)
	})
}

func (s *Server) handleAsUpdate(w http.ResponseWriter, r *http.Request) {
	cid := r.PathValue("id")
	f := s.begin(RouteAsUpdate, cid)
	s.finish(w, r, RouteAsUpdate, f, func() *reply {
		// Read-only and full tokens may both read.
		if _, rp := s.docTokenCheck(r, cid); rp != nil {
			return rp
		}
		s.mu.Lock()
		d, ok := s.docs[cid]
		if !ok {
			// relay-server loads-or-creates the document here.
			d = s.newDocLocked(cid)
		}
		upd, err := d.EncodeStateAsUpdate()
		s.mu.Unlock()
		if err != nil {
			return errReply(http.StatusInternalServerError, err.Error())
		}
		h := http.Header{}
		h.Set("Content-Type", "application/octet-stream")
		return &reply{status: http.StatusOK, header: h, body: upd}
	})
}

func (s *Server) handleDownloadURL(w http.ResponseWriter, r *http.Request) {
	cid := r.PathValue("id")
	f := s.begin(RouteDownloadURL, cid)
	s.finish(w, r, RouteDownloadURL, f, func() *reply {
		if s.opts.APIKey == "" {
			return errReply(http.StatusUnauthorized, "Authentication is required for file operations")
		}
		tok, ok := bearer(r)
		if !ok {
			return errReply(http.StatusUnauthorized, "No token provided")
		}
		if !s.isServerToken(tok) {
			s.mu.Lock()
			_, isDoc := s.tokens[tok]
			s.mu.Unlock()
			if isDoc {
				return errReply(http.StatusBadRequest, "Document tokens cannot be used for file operations")
			}
			return errReply(http.StatusUnauthorized, "Invalid token")
		}
		q := r.URL.Query()
		if !q.Has("hash") {
			return errReply(http.StatusBadRequest, "Hash query parameter required when using server token")
		}
		hash := q.Get("hash")
		if !relay.IsSHA256Hex(hash) {
			return errReply(http.StatusBadRequest, "Invalid file hash format in query parameter")
		}
		base := s.publicBase(r)
		if s.opts.FileStore == "filesystem" {
			// The filesystem store does not check existence here.
			return jsonReply(map[string]string{"downloadUrl": base + "/f/" + cid + "/download?hash=" + hash + "&token=" + tok})
		}
		s.mu.Lock()
		_, exists := s.blobs[blobKey(cid, hash)]
		s.mu.Unlock()
		if !exists {
			return errReply(http.StatusNotFound, "File not found")
		}
		return jsonReply(map[string]string{"downloadUrl": base + s.presign(cid, hash)})
	})
}

// S3-style presigning: the fake signs path, date and expiry with a random
// key; the query names follow SigV4 presigned URLs.
const s3Bucket = "relay-files"

func (s *Server) presign(cid, hash string) string {
	path := "/s3/" + s3Bucket + "/files/" + cid + "/" + hash
	date := s.now().UTC().Format("20060102T150405Z")
	exp := strconv.Itoa(int(s.opts.PresignExpiry / time.Second))
	if exp == "0" {
		exp = "1"
	}
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", "RELAYTESTKEY/"+date[:8]+"/auto/s3/aws4_request")
	q.Set("X-Amz-Date", date)
	q.Set("X-Amz-Expires", exp)
	q.Set("X-Amz-SignedHeaders", "host")
	q.Set("X-Amz-Signature", s.signature(path, date, exp))
	return path + "?" + q.Encode()
}

func (s *Server) signature(path, date, exp string) string {
	m := hmac.New(sha256.New, s.signKey)
	io.WriteString(m, path+"\n"+date+"\n"+exp)
	return hex.EncodeToString(m.Sum(nil))
}

func s3Error(status int, code, msg string) *reply {
	h := http.Header{}
	h.Set("Content-Type", "application/xml")
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Error><Code>` + code + `</Code><Message>` + msg + `</Message></Error>`
	return &reply{status: status, header: h, body: []byte(body)}
}

func (s *Server) handleS3Download(w http.ResponseWriter, r *http.Request) {
	cid, hash := r.PathValue("id"), r.PathValue("hash")
	f := s.begin(RouteDownload, cid)
	s.finish(w, r, RouteDownload, f, func() *reply {
		if r.PathValue("bucket") != s3Bucket {
			return s3Error(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		}
		q := r.URL.Query()
		date, exp, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"), q.Get("X-Amz-Signature")
		want := s.signature(r.URL.Path, date, exp)
		if sig == "" || !hmac.Equal([]byte(sig), []byte(want)) {
			return s3Error(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		}
		t, err := time.Parse("20060102T150405Z", date)
		n, err2 := strconv.Atoi(exp)
		if err != nil || err2 != nil || s.now().After(t.Add(time.Duration(n)*time.Second)) {
			return s3Error(http.StatusForbidden, "AccessDenied", "Request has expired")
		}
		s.mu.Lock()
		b := s.blobs[blobKey(cid, hash)]
		s.mu.Unlock()
		if b == nil {
			return s3Error(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		}
		h := http.Header{}
		h.Set("Content-Type", contentType(b.mimetype))
		h.Set("ETag", `"`+hash[:32]+`"`)
		return &reply{status: http.StatusOK, header: h, body: b.data, serve: true, modTime: b.created}
	})
}

// handleFSDownload is the filesystem store's /f/{id}/download. The real
// server at HEAD accepts only file tokens here (a server token gets 400
// "Token must be a file token"); the fake accepts the server token it put
// into the download URL, which is what §3.3 describes.
func (s *Server) handleFSDownload(w http.ResponseWriter, r *http.Request) {
	cid := r.PathValue("id")
	f := s.begin(RouteDownload, cid)
	s.finish(w, r, RouteDownload, f, func() *reply {
		q := r.URL.Query()
		if !q.Has("token") || !q.Has("hash") {
			return textReply(http.StatusBadRequest, "Failed to deserialize query string: missing field `token`")
		}
		if !s.isServerToken(q.Get("token")) {
			return errReply(http.StatusUnauthorized, "Invalid token")
		}
		s.mu.Lock()
		b := s.blobs[blobKey(cid, q.Get("hash"))]
		s.mu.Unlock()
		if b == nil {
			return errReply(http.StatusNotFound, "File not found")
		}
		h := http.Header{}
		h.Set("Content-Type", contentType(b.mimetype))
		return &reply{status: http.StatusOK, header: h, body: b.data, serve: true, modTime: b.created}
	})
}

func contentType(m string) string {
	if m == "" {
		return "application/octet-stream"
	}
	return m
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	crand.Read(b)
	return b
}

// Reasons wrapped by Folder method errors.
var (
	ErrNoEntry     = errors.New("no such filemeta entry")
	ErrEntryExists = errors.New("filemeta entry already exists")
	ErrBadPath     = errors.New("invalid virtual path")
)
