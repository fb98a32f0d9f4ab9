// Package server owns the HTTP layer of `relay-git-sync serve`: the Relay
// Server's webhooks (authentication, body limits, parsing and validation,
// durable hand-off to an EventSink before answering 2xx), the health, public
// key, metrics and API documentation endpoints, and the authenticated
// read-only API that the remote helper, the mount and export use to read the
// snapshot store of a running server.
//
// It knows nothing about ingest, and reads the store only through a
// source.Source: the serve command connects it to them through the
// EventSink and Source interfaces and a few functions in Config. The read
// API's JSON shapes are internal/readapi's, which its client shares. The
// HTTP API is described by the embedded openapi.yaml, served at
// /openapi.yaml and rendered by the embedded Swagger UI at /docs.
//
// gin runs in release mode and never writes to stdout; everything is logged
// through the configured slog.Logger, and secrets, signatures and request
// bodies are never logged.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Event is one accepted "document.updated" webhook.
type Event struct {
	ID         string    // dedupe key: webhook-id/svix-id header if present, else body eventId, else "" (no dedupe)
	Relay      string    // lower-case relay UUID (validated)
	Doc        string    // lower-case document UUID (the last UUID of the compound id)
	Time       time.Time // payload.timestamp, else top-level timestamp, else receive time (UTC)
	TimeSource string    // "payload" | "envelope" | "received"
	User       string    // payload.user when a string
	Received   time.Time
}

// Event.TimeSource values.
const (
	TimeFromPayload  = "payload"
	TimeFromEnvelope = "envelope"
	TimeReceived     = "received"
)

// EventSink makes an event durable. Enqueue returns only once the event is committed (a 2xx may then be sent);
// duplicate is true when an event with the same non-empty ID was accepted before.
type EventSink interface {
	Enqueue(ctx context.Context, ev Event) (duplicate bool, err error)
}

// ErrNoSSHKey is returned by Config.PublicKey when SSH_PRIVATE_KEY is not
// set; /api/pubkey answers 400.
var ErrNoSSHKey = errors.New("SSH_PRIVATE_KEY environment variable not configured")

// DefaultMaxBodyBytes is the webhook body limit when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// Config configures New. Events is required; everything else has a default.
type Config struct {
	WebhookSecret  string // WEBHOOK_SECRET: "whsec_…" = Standard Webhooks HMAC; other non-empty = shared secret (Bearer)
	InsecureNoAuth bool   // accept unauthenticated webhooks (only with an empty secret)
	APIToken       string // read API bearer token (RELAY_GIT_API_TOKEN); "" = read API disabled (401 always)
	MaxBodyBytes   int64  // default 1 MiB -> 413
	Events         EventSink
	Source         source.Source                   // what the read API serves (source.FromStore); required when APIToken is set
	Health         func(ctx context.Context) error // /health checks the store; nil = always healthy
	// Cluster, on a shared NATS store, says which instance this is and
	// how many folder leases it holds (shown by /health).
	Cluster func() ClusterStatus
	// DiskSpace reports the data dir's free bytes and the store's reserve;
	// a non-nil error means writes are refused for lack of space (/health
	// answers 503 with it). It also feeds the data dir metrics. nil = none.
	DiskSpace func() (free, reserve uint64, err error)
	PublicKey func() (pub string, err error) // /api/pubkey; ErrNoSSHKey when SSH_PRIVATE_KEY unset; nil = ErrNoSSHKey
	Logger    *slog.Logger                   // nil = discard
	Registry  *prometheus.Registry           // metrics registered here; /metrics serves it (nil = a new registry)
	// Metrics, when non-nil, must have been created by NewMetrics(Registry);
	// the serve command creates them first so that the store and ingest can
	// update them. nil = New creates them on Registry.
	Metrics *Metrics
	Now     func() time.Time // tests; nil = time.Now
	// Held lists, releases and drops the mass-deletion guard's holds
	// (GET /api/v1/held, POST …/held/release and …/held/drop, with the API
	// token) and feeds relay_git_sync_held_folders; nil = 404.
	Held HeldAdmin

	// Backup writes a point-in-time backup of the whole store to w
	// (GET /api/v1/backup); nil = 404.
	Backup func(ctx context.Context, w io.Writer) error

	// WriteToken is the token the write routes take (RELAY_GIT_WRITE_TOKEN);
	// Restore does what POST …/restore asks (serve --allow-writes). Without
	// either every write route answers 403.
	WriteToken string
	Restore    func(ctx context.Context, f store.FolderID, req readapi.RestoreRequest) (*readapi.RestoreResult, error)
	// Changes writes what POST …/changes asks (git push relay::…); set
	// with Restore (serve --allow-writes), else 403.
	Changes func(ctx context.Context, f store.FolderID, req readapi.ChangesRequest) (*readapi.ChangesResult, error)

	// Packs gives GET …/pack the pack kept of a folder's history
	// (remotehelper.PackCache): nil, nil when there is none yet (404, the
	// client synthesizes the history itself). nil = always 404.
	Packs func(ctx context.Context, f store.FolderID) (*FolderPack, error)

	// UI serves the history browser's pages under /ui/ (package webui,
	// which signs people in itself); nil = no /ui/ routes.
	UI http.Handler
}

// Webhook authentication modes.
type authMode int

const (
	authNone   authMode = iota // --insecure-no-webhook-auth
	authShared                 // Authorization: Bearer <secret>
	authHMAC                   // Standard Webhooks / Svix signatures
)

func (m authMode) String() string {
	switch m {
	case authShared:
		return "shared secret (Authorization: Bearer)"
	case authHMAC:
		return "Standard Webhooks signature (whsec_)"
	}
	return "disabled (--insecure-no-webhook-auth)"
}

type server struct {
	cfg        Config
	log        *slog.Logger
	metrics    *Metrics
	now        func() time.Time
	maxBody    int64
	auth       authMode
	secret     [sha256.Size]byte // SHA-256 of the shared secret
	hmacKey    []byte            // decoded whsec_ key
	apiToken   [sha256.Size]byte // SHA-256 of the API token
	writeToken [sha256.Size]byte // SHA-256 of the write token
	docs       *docsAssets
}

// New builds the HTTP handler of `relay-git-sync serve` (a gin engine in
// release mode). It fails when no webhook secret is configured and
// InsecureNoAuth is false, when a whsec_ secret is not valid base64, when
// Events is nil, or when APIToken is set without a Source.
func New(cfg Config) (http.Handler, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	return s.engine(), nil
}

func newServer(cfg Config) (*server, error) {
	s := &server{cfg: cfg, log: cfg.Logger, now: cfg.Now, maxBody: cfg.MaxBodyBytes}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case s.maxBody == 0:
		s.maxBody = DefaultMaxBodyBytes
	case s.maxBody < 0:
		return nil, fmt.Errorf("server: MaxBodyBytes %d is negative", s.maxBody)
	}
	if cfg.Events == nil {
		return nil, errors.New("server: Config.Events (the durable event queue) is required")
	}
	if cfg.APIToken != "" && cfg.Source == nil {
		return nil, errors.New("server: an API token is set but Config.Source is nil")
	}

	switch {
	case cfg.WebhookSecret == "":
		if !cfg.InsecureNoAuth {
			return nil, errors.New("no webhook secret configured: set WEBHOOK_SECRET (see `relay-git-sync webhook keygen`) or pass --insecure-no-webhook-auth")
		}
		s.auth = authNone
	case strings.HasPrefix(cfg.WebhookSecret, whsecPrefix):
		key, err := decodeWhsec(cfg.WebhookSecret)
		if err != nil {
			return nil, err
		}
		s.auth, s.hmacKey = authHMAC, key
	default:
		s.auth, s.secret = authShared, sha256.Sum256([]byte(cfg.WebhookSecret))
	}
	if cfg.WebhookSecret != "" && cfg.InsecureNoAuth {
		s.log.Warn("a webhook secret is configured: --insecure-no-webhook-auth is ignored")
	}
	s.apiToken = sha256.Sum256([]byte(cfg.APIToken))
	s.writeToken = sha256.Sum256([]byte(cfg.WriteToken))
	if cfg.WriteToken != "" && cfg.WriteToken == cfg.APIToken {
		return nil, errors.New("the write token equals the read API token: give writes a token of their own (RELAY_GIT_WRITE_TOKEN)")
	}

	if s.cfg.Registry == nil {
		if cfg.Metrics != nil {
			return nil, errors.New("server: Config.Metrics is set without the Registry it is registered on")
		}
		s.cfg.Registry = prometheus.NewRegistry()
	}
	s.metrics = cfg.Metrics
	if s.metrics == nil {
		m, err := NewMetrics(s.cfg.Registry)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	docs, err := loadDocs()
	if err != nil {
		return nil, err
	}
	s.docs = docs
	if cfg.DiskSpace != nil {
		if err := registerDiskMetrics(s.cfg.Registry, cfg.DiskSpace); err != nil {
			return nil, err
		}
	}
	if cfg.Held != nil {
		if err := registerHeldMetrics(s.cfg.Registry, cfg.Held); err != nil {
			return nil, err
		}
	}

	s.log.Info("webhook authentication", "mode", s.auth.String())
	if cfg.APIToken == "" {
		s.log.Info("read API disabled: set RELAY_GIT_API_TOKEN (--api-token) to enable it")
	}
	return s, nil
}

// engine builds the gin engine and registers every route. The routes are
// exactly the paths of openapi.yaml (a test checks both ways).
func (s *server) engine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	// Unknown paths are 404 and wrong methods 405, with no redirects, so
	// every answer is one the OpenAPI document describes.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	// No proxy is trusted: ClientIP is the TCP peer.
	_ = e.SetTrustedProxies(nil)
	e.Use(s.recoverer, s.observe)
	e.NoRoute(func(c *gin.Context) {
		// /docs/ is not a route (kin's router, in the contract test, would
		// confuse it with /docs); it redirects to the page.
		if c.Request.URL.Path == "/docs/" && c.Request.Method == http.MethodGet {
			s.docsSlash(c)
			return
		}
		c.JSON(http.StatusNotFound, errBody("not found"))
	})
	e.NoMethod(func(c *gin.Context) { c.JSON(http.StatusMethodNotAllowed, errBody("method not allowed")) })

	e.POST("/webhooks", s.webhook)
	e.GET("/health", s.health)
	e.HEAD("/health", s.health)
	e.GET("/api/pubkey", s.pubkey)
	e.GET("/docs", s.docsPage)
	e.GET("/docs/:file", s.docsAsset)
	e.GET("/openapi.yaml", s.openapi)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	})))

	if s.cfg.UI != nil {
		// HTML pages for people, not API operations: not in openapi.yaml.
		e.Any("/ui/*path", gin.WrapH(s.cfg.UI))
		e.GET("/ui", gin.WrapH(s.cfg.UI))
	}

	api := e.Group("/api/v1", s.requireAPIToken)
	api.GET("/folders", s.folders)
	api.GET("/folders/:relay/:folder/snapshots", s.snapshots)
	api.GET("/folders/:relay/:folder/snapshots/:seq", s.snapshot)
	api.GET("/folders/:relay/:folder/history", s.history)
	api.GET("/folders/:relay/:folder/pack", s.pack)
	api.GET("/blobs/:id", s.blob)
	api.GET("/history-config", s.historyConfig)
	api.GET("/held", s.heldList)
	api.POST("/folders/:relay/:folder/held/release", s.heldRelease)
	api.POST("/folders/:relay/:folder/held/drop", s.heldDrop)
	api.GET("/backup", s.backup)
	e.POST("/api/v1/folders/:relay/:folder/restore", s.requireWriteToken, s.restore)
	e.POST("/api/v1/folders/:relay/:folder/changes", s.requireWriteToken, s.changes)
	return e
}

type errorBody struct {
	Error string `json:"error"`
}

func errBody(msg string) errorBody { return errorBody{Error: msg} }

// recoverer turns a panic in a handler into a logged 500.
func (s *server) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("panic in HTTP handler", "route", c.FullPath(), "method", c.Request.Method,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				c.AbortWithStatusJSON(http.StatusInternalServerError, errBody("Internal server error"))
			} else {
				c.Abort()
			}
		}
	}()
	c.Next()
}

// observe counts every answer by route template and status, and sets the
// headers common to every answer.
func (s *server) observe(c *gin.Context) {
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.metrics.HTTPRequests.WithLabelValues(route, strconv.Itoa(c.Writer.Status())).Inc()
}

// ClusterStatus is an instance's part in a shared NATS store: /health
// reports it once the cluster has answered (else /health is 503).
type ClusterStatus struct {
	Instance string `json:"instance"`
	// Leases is the number of folders this instance syncs and pushes.
	Leases int `json:"leases"`
}

// health answers GET and HEAD /health: 200 when Config.Health reports no
// error within 5 seconds, else 503.
func (s *server) health(c *gin.Context) {
	if s.cfg.DiskSpace != nil {
		if _, _, err := s.cfg.DiskSpace(); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unhealthy", "error": err.Error()})
			return
		}
	}
	if s.cfg.Health != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
		defer cancel()
		if err := s.cfg.Health(ctx); err != nil {
			s.log.Warn("health check failed", "err", err)
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unhealthy", "error": err.Error()})
			return
		}
	}
	out := gin.H{"status": "healthy"}
	if s.cfg.Cluster != nil {
		out["cluster"] = s.cfg.Cluster()
	}
	if s.cfg.Held != nil {
		// Held snapshots need an operator, but nothing is broken.
		if list, err := s.cfg.Held.Holds(); err == nil && len(list) > 0 {
			out["held_folders"] = len(list)
		}
	}
	c.JSON(http.StatusOK, out)
}

// pubkey answers GET /api/pubkey (§7).
func (s *server) pubkey(c *gin.Context) {
	get := s.cfg.PublicKey
	if get == nil {
		get = func() (string, error) { return "", ErrNoSSHKey }
	}
	pub, err := get()
	switch {
	case errors.Is(err, ErrNoSSHKey):
		c.JSON(http.StatusBadRequest, errBody("SSH_PRIVATE_KEY environment variable not configured"))
		return
	case err != nil:
		s.log.Error("reading the SSH public key", "err", err)
		c.JSON(http.StatusInternalServerError, errBody("Failed to retrieve public key: "+err.Error()))
		return
	}
	pub = strings.TrimSpace(pub)
	c.JSON(http.StatusOK, gin.H{"public_key": pub, "key_type": keyType(pub)})
}

// keyType classifies an authorized_keys line as the original does.
func keyType(pub string) string {
	switch {
	case strings.HasPrefix(pub, "ssh-rsa"):
		return "ssh-rsa"
	case strings.HasPrefix(pub, "ssh-ed25519"):
		return "ssh-ed25519"
	case strings.HasPrefix(pub, "ecdsa-sha2-"):
		return "ecdsa"
	}
	return "unknown"
}

// equalSecret compares a presented credential with the SHA-256 of the
// configured one in constant time (hashing first hides the length too).
func equalSecret(presented string, want *[sha256.Size]byte) bool {
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// baseURL is the request's base URL without a trailing slash, with http
// upgraded to https when X-Forwarded-Proto is https (§7).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https") {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}
