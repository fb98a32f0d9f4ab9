package relay

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// FileMetaKey is the name of the shared-folder doc's root Y.Map (§4.1).
const FileMetaKey = "filemeta_v0"

// EntryKind classifies a filemeta entry by what the sync does with it.
type EntryKind string

// Entry kinds. Everything that is not a folder, markdown or canvas is a
// binary file fetched by hash, including unknown types such as "base".
const (
	KindFolder   EntryKind = "folder"
	KindMarkdown EntryKind = "markdown"
	KindCanvas   EntryKind = "canvas"
	KindFile     EntryKind = "file"
)

// KindOf maps a filemeta "type" string to its kind (§4.5): "folder";
// "markdown" and "document" -> markdown; "canvas"; anything else -> file.
func KindOf(typ string) EntryKind {
	switch typ {
	case "folder":
		return KindFolder
	case "markdown", "document":
		return KindMarkdown
	case "canvas":
		return KindCanvas
	}
	return KindFile
}

// ResourceType is the Python's resource type string for the kind, as
// stored in local_state.json: "folder", "document", "canvas" or "file".
func (k EntryKind) ResourceType() string {
	if k == KindMarkdown {
		return "document"
	}
	return string(k)
}

// Entry is one valid entry of a shared folder's filemeta_v0 map.
type Entry struct {
	Path     string // raw filemeta key, e.g. "/notes/a.md" (the local_state.json key)
	RelPath  string // SanitizePath(Path), e.g. "notes/a.md"
	ID       string // lower-cased UUID: the doc/file guid (CompoundID(relay, ID) on the server)
	Type     string // raw "type" value; "" when absent or not a string
	Hash     string // lower-case SHA-256 hex; always set for KindFile, else only if present and valid
	MimeType string // "mimetype"; "" when absent or not a string
	SyncTime int64  // "synctime", ms since the epoch (truncated); 0 when absent or not a number
	Version  int64  // "version" (schema version, 0 today); 0 when absent or not a number
	// Raw is the metadata object exactly as decoded (shared with the input
	// map; do not modify). Useful to re-emit unknown fields, e.g. into
	// shared_folders.json, where Python wrote numbers as floats.
	Raw map[string]any
}

// Kind classifies the entry by its Type (see KindOf).
func (e Entry) Kind() EntryKind { return KindOf(e.Type) }

// Reasons wrapped by EntryProblem.Err besides *PathError. Test with errors.Is.
var (
	ErrEntryNotObject = errors.New("metadata is not an object")
	ErrEntryID        = errors.New("missing or invalid id")
	ErrEntryHash      = errors.New("missing or invalid hash")
	ErrEntryDuplicate = errors.New("same path as another entry")
	ErrEntryConflict  = errors.New("is a file but other entries lie inside it")
)

// EntryProblem reports a filemeta entry that ParseFileMeta left out.
type EntryProblem struct {
	Path  string // raw filemeta key
	Entry Entry  // whatever could be decoded (fields may be empty)
	Err   error  // wraps an ErrEntry* reason or a *PathError
}

func (p EntryProblem) Error() string {
	return fmt.Sprintf("filemeta entry %s: %v", quoteTrunc(p.Path), p.Err)
}

func (p EntryProblem) Unwrap() error { return p.Err }

// ParseFileMeta validates a decoded filemeta_v0 map (values as a Yjs
// decoder yields JSON-like Any content: map[string]any objects, float64
// numbers, int64 bigints, ...). Bad entries do not spoil the map: they are
// left out of entries and reported in problems, so a caller can, e.g., keep
// the previous content for those paths instead of deleting it.
//
// An entry is left out when:
//   - its value is not an object (ErrEntryNotObject);
//   - its key fails SanitizePath (*PathError);
//   - its "id" is missing or not a UUID (ErrEntryID), for every kind
//     (the Python skips id-less files but still mkdirs id-less folders,
//     which have no effect on git);
//   - it is a KindFile entry whose "hash" is missing or not 64 hex digits
//     (ErrEntryHash; upper-case digests are accepted and lower-cased);
//   - its RelPath equals another entry's (ErrEntryDuplicate; e.g. "/a.md"
//     and "//a.md"): the entry whose key is the canonical "/"+RelPath wins,
//     otherwise the smallest key;
//   - it is not a folder but other entries lie below its RelPath
//     (ErrEntryConflict; git cannot hold "a" as both file and directory,
//     so the directory wins).
//
// Other oddities are normalised without a problem: a non-string or missing
// "type" makes the entry a KindFile; an invalid "hash" on a non-file entry
// is dropped; non-numeric "synctime"/"version" become 0.
//
// Both slices are sorted by Path (byte order, i.e. code point order).
func ParseFileMeta(m map[string]any) (entries []Entry, problems []EntryProblem) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	candidates := make([]Entry, 0, len(keys))
	for _, k := range keys {
		e, err := parseEntry(k, m[k])
		if err != nil {
			problems = append(problems, EntryProblem{Path: k, Entry: e, Err: err})
			continue
		}
		candidates = append(candidates, e)
	}

	// Duplicates after sanitization: pick one winner per RelPath.
	winner := make(map[string]int, len(candidates))
	for i, e := range candidates {
		j, seen := winner[e.RelPath]
		if !seen || (e.Path == VirtualPath(e.RelPath) && candidates[j].Path != VirtualPath(e.RelPath)) {
			winner[e.RelPath] = i
		}
	}
	// Directories implied by the entries that survive deduplication.
	dirs := make(map[string]bool)
	for i, e := range candidates {
		if winner[e.RelPath] != i {
			continue
		}
		if e.Kind() == KindFolder {
			dirs[e.RelPath] = true
		}
		for p := e.RelPath; ; {
			j := strings.LastIndexByte(p, '/')
			if j < 0 {
				break
			}
			p = p[:j]
			if dirs[p] {
				break // ancestors already recorded
			}
			dirs[p] = true
		}
	}

	entries = make([]Entry, 0, len(candidates))
	for i, e := range candidates {
		switch w := winner[e.RelPath]; {
		case w != i:
			problems = append(problems, EntryProblem{Path: e.Path, Entry: e,
				Err: fmt.Errorf("%w %s (both are %q)", ErrEntryDuplicate, quoteTrunc(candidates[w].Path), e.RelPath)})
		case e.Kind() != KindFolder && dirs[e.RelPath]:
			problems = append(problems, EntryProblem{Path: e.Path, Entry: e,
				Err: fmt.Errorf("%q %w", e.RelPath, ErrEntryConflict)})
		default:
			entries = append(entries, e)
		}
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })
	return entries, problems
}

// parseEntry decodes one filemeta value; on error the returned Entry holds
// whatever could be decoded.
func parseEntry(key string, v any) (Entry, error) {
	e := Entry{Path: key}
	obj, ok := v.(map[string]any)
	if !ok {
		return e, fmt.Errorf("%w (got %s)", ErrEntryNotObject, anyTypeName(v))
	}
	e.Raw = obj
	e.Type, _ = obj["type"].(string)
	e.MimeType, _ = obj["mimetype"].(string)
	e.SyncTime = anyToInt64(obj["synctime"])
	e.Version = anyToInt64(obj["version"])
	rawID, _ := obj["id"].(string)
	if IsUUID(rawID) {
		e.ID = strings.ToLower(rawID)
	}
	rawHash, _ := obj["hash"].(string)
	if IsSHA256Hex(rawHash) {
		e.Hash = strings.ToLower(rawHash)
	}

	rel, err := SanitizePath(key)
	if err != nil {
		return e, err
	}
	e.RelPath = rel
	if e.ID == "" {
		if _, present := obj["id"]; !present {
			return e, fmt.Errorf("%w: no id", ErrEntryID)
		}
		return e, fmt.Errorf("%w: id %s is not a UUID", ErrEntryID, describeAny(obj["id"]))
	}
	if e.Kind() == KindFile && e.Hash == "" {
		if _, present := obj["hash"]; !present {
			return e, fmt.Errorf("%w: %s entry %q has no hash", ErrEntryHash, KindFile, e.Type)
		}
		return e, fmt.Errorf("%w: %s entry %q: hash %s is not a SHA-256 hex digest", ErrEntryHash, KindFile, e.Type, describeAny(obj["hash"]))
	}
	return e, nil
}

// anyToInt64 converts a decoded number (float64, or int64 for bigints) to
// int64, truncating fractions; anything else, NaN and out-of-range values
// give 0.
func anyToInt64(v any) int64 {
	switch n := v.(type) {
	case float64:
		if math.IsNaN(n) || n >= 0x1p63 || n < -0x1p63 {
			return 0
		}
		return int64(n)
	case int64:
		return n
	}
	return 0
}

func anyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64, int64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case []byte:
		return "binary"
	}
	return fmt.Sprintf("%T", v)
}

func describeAny(v any) string {
	if s, ok := v.(string); ok {
		return quoteTrunc(s)
	}
	return "of type " + anyTypeName(v)
}
