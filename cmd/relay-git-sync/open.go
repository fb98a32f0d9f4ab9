package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// storeDirName is the Badger database's directory inside the data dir.
const storeDirName = "db"

// openStore opens the data dir's snapshot store, creating it if needed.
func (o *globalOptions) openStore() (*store.Store, error) {
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	return store.Open(filepath.Join(o.DataDir, storeDirName), store.Options{Logger: o.Logger})
}

// relayClient returns a client for the configured Relay Server.
func (o *globalOptions) relayClient() (*relay.Client, error) {
	if o.RelayServerURL == "" {
		return nil, errors.New("no Relay Server: set --relay-server-url or " + envRelayServerURL)
	}
	return relay.NewClient(relay.ClientOptions{BaseURL: o.RelayServerURL, APIKey: o.RelayServerAPIKey, Logger: o.Logger})
}

// parseFolderArg reads a RELAY/FOLDER argument.
func parseFolderArg(s string) (store.FolderID, error) {
	f, err := store.ParseFolderID(strings.ToLower(s))
	if err != nil {
		return store.FolderID{}, fmt.Errorf("%q is not RELAY_ID/FOLDER_ID (two UUIDs separated by a slash)", s)
	}
	return f, nil
}
