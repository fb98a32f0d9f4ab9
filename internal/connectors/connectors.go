// Package connectors reads git_connectors.toml, the file that maps a Relay
// shared folder to a git remote, branch and prefix. The schema and defaults
// are the original relay-git-sync's, so existing files keep working.
package connectors

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
)

// Connector is one [[git_connector]] entry.
type Connector struct {
	SharedFolderID string `toml:"shared_folder_id"`
	RelayID        string `toml:"relay_id"`
	URL            string `toml:"url"`
	Branch         string `toml:"branch"`
	RemoteName     string `toml:"remote_name"`
	Prefix         string `toml:"prefix"`
	// KnownHosts is a known_hosts file for this connector's SSH host, in
	// addition to the data dir's.
	KnownHosts string `toml:"known_hosts"`

	// Line is where the entry starts in the file (1-based).
	Line int `toml:"-"`
	// Unknown lists keys of the entry that the schema does not have
	// (ignored, as in the original; Validate reports them as likely typos).
	Unknown []string `toml:"-"`

	// Invalid marks an entry that failed the load-time checks (ParseAll
	// only: Load and Parse leave such entries out).
	Invalid bool `toml:"-"`

	// keyLines maps each key of the entry to its line (Validate's messages).
	keyLines map[string]int
	// index is the entry's position in the file (0-based), for messages.
	index int
}

// KeyLine returns the line of key in the connector's entry, or the entry's
// own line when the key is not written in the file.
func (c Connector) KeyLine(key string) int {
	if l, ok := c.keyLines[key]; ok {
		return l
	}
	return c.Line
}

// Problem is something wrong with the file, with the line it is on, or
// with Warning set something that is most likely a mistake but works.
type Problem struct {
	File    string
	Line    int // 0 when unknown
	Msg     string
	Warning bool
}

func (p Problem) Error() string {
	msg := p.Msg
	if p.Warning {
		msg = "warning: " + msg
	}
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, msg)
	}
	return fmt.Sprintf("%s: %s", p.File, msg)
}

// SortByLine orders problems by line, those without a line first, keeping
// the order of problems on one line.
func SortByLine(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
}

type file struct {
	GitConnector []map[string]any `toml:"git_connector"`
}

var headerRE = regexp.MustCompile(`(?m)^[ \t]*\[\[[ \t]*git_connector[ \t]*\]\]`)

// Load reads the connectors file. A missing file means no connectors. An
// entry that fails validation is reported as a problem and left out; the
// others still load, as in the original.
func Load(path string) ([]Connector, []Problem, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return Parse(path, data)
}

// Parse is Load for data already read; name is used in messages.
func Parse(name string, data []byte) ([]Connector, []Problem, error) {
	all, problems, err := ParseAll(name, data)
	if err != nil {
		return nil, nil, err
	}
	var out []Connector
	for _, c := range all {
		if !c.Invalid {
			out = append(out, c)
		}
	}
	return out, problems, nil
}

// ParseAll is Parse keeping the entries that have problems too (marked
// Invalid), so that Validate can check everything else about them.
func ParseAll(name string, data []byte) ([]Connector, []Problem, error) {
	var f file
	if err := toml.Unmarshal(data, &f); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, nil, Problem{File: name, Line: row, Msg: "invalid TOML: " + de.Error()}
		}
		return nil, nil, Problem{File: name, Msg: "invalid TOML (is git_connector an array of tables, [[git_connector]]?): " + err.Error()}
	}
	lines := headerLines(data)
	var out []Connector
	var problems []Problem
	for i, raw := range f.GitConnector {
		line, end := 0, 0
		if i < len(lines) {
			line = lines[i]
			if i+1 < len(lines) {
				end = lines[i+1]
			}
		}
		c, errs := fromMap(raw)
		c.Line = line
		if line > 0 {
			c.keyLines = keyLines(data, line, end)
		}
		for _, e := range errs {
			problems = append(problems, Problem{File: name, Line: c.KeyLine(e.key), Msg: fmt.Sprintf("connector %d: %s", i+1, e.msg)})
		}
		c.Invalid = len(errs) > 0
		c.index = i
		out = append(out, c)
	}
	return out, problems, nil
}

// headerLines returns the line of every [[git_connector]] header.
func headerLines(data []byte) []int {
	var out []int
	for _, loc := range headerRE.FindAllIndex(data, -1) {
		out = append(out, bytes.Count(data[:loc[0]], []byte("\n"))+1)
	}
	return out
}

// keyRE matches a key/value line of a table: a bare or quoted key.
var keyRE = regexp.MustCompile(`^[ \t]*(?:([A-Za-z0-9_-]+)|"([^"\\]*)"|'([^']*)')[ \t]*=`)

// keyLines returns the line of each key written between line from
// (the entry's header) and line to (the next header; 0 = end of file).
func keyLines(data []byte, from, to int) map[string]int {
	out := map[string]int{}
	for i, l := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		if n <= from {
			continue
		}
		if to > 0 && n >= to {
			break
		}
		if bytes.HasPrefix(bytes.TrimSpace(l), []byte("[")) {
			break // a sub-table or another table: the entry ended
		}
		if m := keyRE.FindSubmatch(l); m != nil {
			k := string(m[1]) + string(m[2]) + string(m[3])
			if _, dup := out[k]; !dup {
				out[k] = n
			}
		}
	}
	return out
}

// keyError is a problem with one key of an entry.
type keyError struct{ key, msg string }

// knownKeys are the keys of a [[git_connector]] entry.
var knownKeys = map[string]bool{
	"shared_folder_id": true, "relay_id": true, "url": true, "branch": true,
	"remote_name": true, "prefix": true, "known_hosts": true,
}

func fromMap(m map[string]any) (Connector, []keyError) {
	var errs []keyError
	str := func(key, def string, required bool) string {
		v, ok := m[key]
		if !ok {
			if required {
				errs = append(errs, keyError{key, fmt.Sprintf("%s is required", key)})
			}
			return def
		}
		s, isStr := v.(string)
		if !isStr {
			errs = append(errs, keyError{key, fmt.Sprintf("%s must be a string", key)})
			return def
		}
		if s == "" && key != "prefix" && key != "known_hosts" {
			errs = append(errs, keyError{key, fmt.Sprintf("%s must not be empty", key)})
		}
		return s
	}
	c := Connector{
		SharedFolderID: strings.ToLower(str("shared_folder_id", "", true)),
		RelayID:        strings.ToLower(str("relay_id", "", true)),
		URL:            str("url", "", true),
		Branch:         str("branch", "main", false),
		RemoteName:     str("remote_name", "origin", false),
		Prefix:         str("prefix", "", false),
		KnownHosts:     str("known_hosts", "", false),
	}
	if c.RelayID != "" && !relay.IsUUID(c.RelayID) {
		errs = append(errs, keyError{"relay_id", fmt.Sprintf("relay_id %q is not a UUID", c.RelayID)})
	}
	if c.SharedFolderID != "" && !relay.IsUUID(c.SharedFolderID) {
		errs = append(errs, keyError{"shared_folder_id", fmt.Sprintf("shared_folder_id %q is not a UUID", c.SharedFolderID)})
	}
	if p, err := relay.ValidatePrefix(c.Prefix); err != nil {
		errs = append(errs, keyError{"prefix", fmt.Sprintf("prefix: %v", err)})
	} else {
		c.Prefix = p
	}
	for k := range m {
		if !knownKeys[k] {
			c.Unknown = append(c.Unknown, k)
		}
	}
	sort.Strings(c.Unknown)
	return c, errs
}
