package daemon

import (
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
)

func TestNeedsSSH(t *testing.T) {
	for _, tc := range []struct {
		urls []string
		want bool
	}{
		{nil, false},
		{[]string{"/srv/git/notes.git", "file:///srv/git/backup.git", "https://git.example.com/notes.git"}, false},
		{[]string{"/srv/git/notes.git", "git@github.com:example/notes.git"}, true},
		{[]string{"ssh://git@git.example.com:2222/notes.git"}, true},
	} {
		var conns []connectors.Connector
		for _, u := range tc.urls {
			conns = append(conns, connectors.Connector{URL: u})
		}
		if got := needsSSH(conns); got != tc.want {
			t.Errorf("needsSSH(%q) = %v, want %v", tc.urls, got, tc.want)
		}
	}
}
