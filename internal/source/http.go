package source

import (
	"context"
	"fmt"
	"net/http"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// TokenEnv is the environment variable the readers take the read API token
// from (the server's RELAY_GIT_API_TOKEN).
const TokenEnv = readapi.TokenEnv

// HTTPOption configures NewHTTP.
type HTTPOption = readapi.Option

// WithHTTPClient makes the source use c (tests, custom TLS or proxies).
func WithHTTPClient(c *http.Client) HTTPOption { return readapi.WithHTTPClient(c) }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) HTTPOption { return readapi.WithUserAgent(ua) }

// NewHTTP returns a Source reading the read API of `relay-git-sync serve` at
// baseURL (http or https, optionally with a path prefix behind a reverse
// proxy), authenticating with "Authorization: Bearer token" (see
// readapi.New: it does not contact the server, and never sends the token
// to another origin).
func NewHTTP(baseURL, token string, opts ...HTTPOption) (Source, error) {
	c, err := readapi.New(baseURL, token, opts...)
	if err != nil {
		return nil, err
	}
	return &httpSource{c}, nil
}

var _ Source = (*httpSource)(nil)

// httpSource is the client, whose methods are the Source's but for the
// folders (the wire's, with a null time) and Close.
type httpSource struct{ *readapi.Client }

func (s *httpSource) Folders(ctx context.Context) ([]Folder, error) {
	list, err := s.Client.Folders(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Folder, len(list))
	for i, f := range list {
		out[i] = Folder{Relay: f.Relay, Folder: f.Folder, LatestSeq: f.LatestSeq}
		if f.LatestTime != nil {
			out[i].LatestTime = *f.LatestTime
		}
	}
	return out, nil
}

// Folder finds f in the list of folders (the API has no call for one).
func (s *httpSource) Folder(ctx context.Context, f store.FolderID) (Folder, error) {
	list, err := s.Folders(ctx)
	if err != nil {
		return Folder{}, err
	}
	for _, g := range list {
		if g.ID() == f {
			return g, nil
		}
	}
	return Folder{}, fmt.Errorf("%s does not follow folder %s (GET %s/api/v1/folders lists the folders it has): %w", s.Base(), f, s.Base(), ErrNotFound)
}

func (s *httpSource) Close() error {
	s.Client.Close()
	return nil
}
