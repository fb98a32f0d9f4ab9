package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pelletier/go-toml/v2"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// The history config (author/committer identity and the Relay user →
// identity map) is part of every synthesized commit id. The processes that
// own the data dir (serve, sync) decide it, from git's identity variables
// (GIT_AUTHOR_NAME, GIT_AUTHOR_EMAIL, GIT_COMMITTER_NAME,
// GIT_COMMITTER_EMAIL) and the --authors-file, and record it in the store;
// git-remote-relay and the mirror read it from there (or from the read API),
// so a clone and a connector agree on ids whatever their own environment.

// DefaultAuthorsFile is read from the data dir when no authors file is named.
const DefaultAuthorsFile = "authors.toml"

// HistoryConfig builds the config from the environment and the authors file
// ("" = <dataDir>/authors.toml if it exists).
func HistoryConfig(getenv func(string) string, dataDir, authorsFile string) (history.Config, error) {
	author, committer := history.IdentityFromEnv(getenv)
	cfg := history.Config{Author: author, Committer: committer}
	explicit := authorsFile != ""
	if !explicit {
		authorsFile = filepath.Join(dataDir, DefaultAuthorsFile)
	}
	data, err := os.ReadFile(authorsFile)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("reading authors file: %w", err)
	}
	authors, err := parseAuthors(data)
	if err != nil {
		return cfg, fmt.Errorf("authors file %s: %w", authorsFile, err)
	}
	cfg.Authors = authors
	return cfg, nil
}

// parseAuthors reads
//
//	["<relay user id>"]
//	name = "Ada Lovelace"
//	email = "ada@example.com"
func parseAuthors(data []byte) (map[string]history.Identity, error) {
	var raw map[string]struct {
		Name  string `toml:"name"`
		Email string `toml:"email"`
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return nil, fmt.Errorf("unknown key (want name and email per user):\n%s", sm.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d, column %d: %s", row, col, de.Error())
		}
		return nil, err
	}
	out := make(map[string]history.Identity, len(raw))
	for id, a := range raw {
		if a.Name == "" && a.Email == "" {
			return nil, fmt.Errorf("user %q: name and email are both empty", id)
		}
		out[id] = history.Identity{Name: a.Name, Email: a.Email}
	}
	return out, nil
}

// RecordHistoryConfig stores cfg as the data dir's history config, warning
// when it replaces a different one (every commit id changes with it).
func RecordHistoryConfig(st store.Backend, cfg history.Config, log *slog.Logger) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	old, err := st.HistoryConfig()
	switch {
	case err == nil && bytes.Equal(old, b):
		return nil
	case err == nil:
		log.Warn("the history config changed: every synthesized commit id changes with it (relay:: clones see a forced update)",
			"old", string(old), "new", string(b))
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	return st.SetHistoryConfig(b)
}
