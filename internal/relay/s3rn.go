package relay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// S3RNKind says which kind of resource an S3RN names. The names follow the
// Python classes (s3rn.py) and the plugin's S3RN.ts.
type S3RNKind int

// The S3RN kinds of §3.5. The zero value is invalid.
const (
	S3RNRelayProduct   S3RNKind = iota + 1 // s3rn:relay
	S3RNRelay                              // s3rn:relay:relay:<relay>
	S3RNRemoteFolder                       // …:relay:<relay>:folder:<folder>
	S3RNRemoteDocument                     // …:relay:<relay>:folder:<folder>:doc:<doc>
	S3RNRemoteCanvas                       // …:relay:<relay>:folder:<folder>:canvas:<canvas>
	S3RNRemoteFile                         // …:relay:<relay>:folder:<folder>:file:<file>
	S3RNRemoteBlob                         // …:file:<file>:sha256:<hash>:contentType:<ct>:contentLength:<n>
	S3RNFolder                             // s3rn:relay:folder:<folder> (local-only)
	S3RNDocument                           // s3rn:relay:folder:<folder>:doc:<doc> (local-only)
	S3RNCanvas                             // s3rn:relay:folder:<folder>:canvas:<canvas> (local-only)
	S3RNFile                               // s3rn:relay:folder:<folder>:file:<file> (local-only)
)

var s3rnKindNames = [...]string{
	S3RNRelayProduct:   "S3RelayProduct",
	S3RNRelay:          "S3Relay",
	S3RNRemoteFolder:   "S3RemoteFolder",
	S3RNRemoteDocument: "S3RemoteDocument",
	S3RNRemoteCanvas:   "S3RemoteCanvas",
	S3RNRemoteFile:     "S3RemoteFile",
	S3RNRemoteBlob:     "S3RemoteBlob",
	S3RNFolder:         "S3Folder",
	S3RNDocument:       "S3Document",
	S3RNCanvas:         "S3Canvas",
	S3RNFile:           "S3File",
}

// String returns the Python class name of the kind, e.g. "S3RemoteFolder".
func (k S3RNKind) String() string {
	if k > 0 && int(k) < len(s3rnKindNames) {
		return s3rnKindNames[k]
	}
	return "S3RNKind(" + strconv.Itoa(int(k)) + ")"
}

// ErrInvalidS3RN is wrapped by every ParseS3RN and S3RN.Encode error.
var ErrInvalidS3RN = errors.New("invalid s3rn")

// maxS3RNLen bounds what ParseS3RN looks at; real S3RNs are < 300 bytes.
const maxS3RNLen = 4096

// S3RN is a decoded S3 resource name. Which fields are meaningful depends on
// Kind: Relay for every Remote kind and S3RNRelay; Folder for folder,
// document, canvas and file kinds; Resource holds the document, canvas or
// file UUID; Hash, ContentType and ContentLength only for S3RNRemoteBlob.
//
// S3RNs are only used for logging in the Python (the plugin uses them as
// token-store keys); nothing here is needed to talk to the server.
type S3RN struct {
	Kind          S3RNKind
	Relay         string
	Folder        string
	Resource      string
	Hash          string
	ContentType   string
	ContentLength int64
}

func (r S3RN) hasRelay() bool {
	switch r.Kind {
	case S3RNRelay, S3RNRemoteFolder, S3RNRemoteDocument, S3RNRemoteCanvas, S3RNRemoteFile, S3RNRemoteBlob:
		return true
	}
	return false
}

func (r S3RN) hasFolder() bool {
	switch r.Kind {
	case S3RNRelayProduct, S3RNRelay:
		return false
	}
	return r.Kind > 0 && int(r.Kind) < len(s3rnKindNames)
}

// resourceKey is the S3RN key naming Resource ("doc", "canvas", "file") or "".
func (r S3RN) resourceKey() string {
	switch r.Kind {
	case S3RNRemoteDocument, S3RNDocument:
		return "doc"
	case S3RNRemoteCanvas, S3RNCanvas:
		return "canvas"
	case S3RNRemoteFile, S3RNRemoteBlob, S3RNFile:
		return "file"
	}
	return ""
}

// String encodes r without validating it (use Encode for a checked
// encoding); it never fails and is meant for logs. As in the Python, a
// blob with an empty Hash is written without its sha256/contentType/
// contentLength suffix (and so reads back as S3RNRemoteFile).
func (r S3RN) String() string {
	if r.Kind <= 0 || int(r.Kind) >= len(s3rnKindNames) {
		return "s3rn:relay:invalid-kind-" + strconv.Itoa(int(r.Kind))
	}
	var b strings.Builder
	b.WriteString("s3rn:relay")
	if r.hasRelay() {
		b.WriteString(":relay:")
		b.WriteString(r.Relay)
	}
	if r.hasFolder() {
		b.WriteString(":folder:")
		b.WriteString(r.Folder)
	}
	if k := r.resourceKey(); k != "" {
		b.WriteString(":" + k + ":")
		b.WriteString(r.Resource)
	}
	if r.Kind == S3RNRemoteBlob && r.Hash != "" {
		b.WriteString(":sha256:")
		b.WriteString(r.Hash)
		b.WriteString(":contentType:")
		b.WriteString(r.ContentType)
		b.WriteString(":contentLength:")
		b.WriteString(strconv.FormatInt(r.ContentLength, 10))
	}
	return b.String()
}

// Validate checks that r has a known Kind, that every UUID it uses is valid
// and, for blobs, that Hash is a SHA-256 hex digest, ContentType contains no
// ':' and ContentLength is not negative.
func (r S3RN) Validate() error {
	if r.Kind <= 0 || int(r.Kind) >= len(s3rnKindNames) {
		return fmt.Errorf("%w: unknown kind %d", ErrInvalidS3RN, int(r.Kind))
	}
	check := func(name, v string) error {
		if !IsUUID(v) {
			return fmt.Errorf("%w: %s: %s id %s is not a UUID", ErrInvalidS3RN, r.Kind, name, quoteTrunc(v))
		}
		return nil
	}
	if r.hasRelay() {
		if err := check("relay", r.Relay); err != nil {
			return err
		}
	}
	if r.hasFolder() {
		if err := check("folder", r.Folder); err != nil {
			return err
		}
	}
	if k := r.resourceKey(); k != "" {
		if err := check(k, r.Resource); err != nil {
			return err
		}
	}
	if r.Kind == S3RNRemoteBlob {
		if !IsSHA256Hex(r.Hash) {
			return fmt.Errorf("%w: %s: hash %s is not a SHA-256 hex digest", ErrInvalidS3RN, r.Kind, quoteTrunc(r.Hash))
		}
		if strings.Contains(r.ContentType, ":") {
			return fmt.Errorf("%w: %s: content type %s contains ':'", ErrInvalidS3RN, r.Kind, quoteTrunc(r.ContentType))
		}
		if r.ContentLength < 0 {
			return fmt.Errorf("%w: %s: negative content length %d", ErrInvalidS3RN, r.Kind, r.ContentLength)
		}
	}
	return nil
}

// Encode validates r and returns its string form (§3.5).
func (r S3RN) Encode() (string, error) {
	if err := r.Validate(); err != nil {
		return "", err
	}
	return r.String(), nil
}

// ResourceID returns the id of the resource r names: the document, canvas
// or file id, the folder id for folders, the relay id for S3RNRelay, and ""
// for the product.
func (r S3RN) ResourceID() string {
	switch {
	case r.resourceKey() != "":
		return r.Resource
	case r.Kind == S3RNRemoteFolder || r.Kind == S3RNFolder:
		return r.Folder
	case r.Kind == S3RNRelay:
		return r.Relay
	}
	return ""
}

// ResourceType returns the Python's get_resource_type string, as stored in
// local_state.json: "folder", "document", "canvas" or "file" (blobs are
// files); "" for the relay and the product.
func (r S3RN) ResourceType() string {
	switch r.Kind {
	case S3RNRemoteFolder, S3RNFolder:
		return "folder"
	case S3RNRemoteDocument, S3RNDocument:
		return "document"
	case S3RNRemoteCanvas, S3RNCanvas:
		return "canvas"
	case S3RNRemoteFile, S3RNRemoteBlob, S3RNFile:
		return "file"
	}
	return ""
}

// CompoundID returns the Relay Server document id for a Remote folder,
// document, canvas, file or blob (the Python refuses blobs; a blob is a
// file, so it gets the file's id here). Other kinds have no server document.
func (r S3RN) CompoundID() (string, error) {
	switch r.Kind {
	case S3RNRemoteFolder:
		return CompoundID(r.Relay, r.Folder), nil
	case S3RNRemoteDocument, S3RNRemoteCanvas, S3RNRemoteFile, S3RNRemoteBlob:
		return CompoundID(r.Relay, r.Resource), nil
	}
	return "", fmt.Errorf("%w: %s has no server document id", ErrInvalidS3RN, r.Kind)
}

// ParseS3RN decodes an S3RN string. It never panics.
//
// It is stricter and more complete than the Python decoder:
//   - the string must start "s3rn:relay" and continue with complete
//     ":key:value" pairs whose key sequence is exactly one of the §3.5 shapes
//     (the Python matches prefixes and ignores trailing pairs);
//   - every UUID must be valid and non-empty (lower-cased on output);
//   - "s3rn:relay" decodes to S3RNRelayProduct (the Python rejects its own
//     encoding because it wants at least three ':'-separated parts);
//   - local documents decode from both ":doc:" (what the Python and the
//     plugin encode) and ":document:" (what the Python decoder expects), so
//     an S3Document round-trips instead of turning into an S3Folder;
//   - local files (":folder:<f>:file:<id>") decode to S3RNFile (no Python
//     branch exists);
//   - a blob's digest key may be "sha256" (what both encoders write) or
//     "hash" (what the TS decoder expects); the hash must be a SHA-256 hex
//     digest (lower-cased on output) and contentLength a non-negative
//     decimal integer. contentType is taken verbatim (it cannot contain ':').
func ParseS3RN(s string) (S3RN, error) {
	fail := func(why string) (S3RN, error) {
		return S3RN{}, fmt.Errorf("%w %s: %s", ErrInvalidS3RN, quoteTrunc(s), why)
	}
	if len(s) > maxS3RNLen {
		return fail("too long")
	}
	const head = "s3rn:relay"
	if s == head {
		return S3RN{Kind: S3RNRelayProduct}, nil
	}
	if !strings.HasPrefix(s, head+":") {
		return fail(`must start with "s3rn:relay"`)
	}
	parts := strings.Split(s[len(head)+1:], ":")
	if len(parts)%2 != 0 {
		return fail("key without value")
	}
	if len(parts) > 12 {
		return fail("too many components")
	}
	keys := make([]string, 0, len(parts)/2)
	vals := make([]string, 0, len(parts)/2)
	for i := 0; i < len(parts); i += 2 {
		keys = append(keys, parts[i])
		vals = append(vals, parts[i+1])
	}
	shape := strings.Join(keys, ":")
	var r S3RN
	var uuids []*string // fields receiving vals[0], vals[1], ... in order
	switch shape {
	case "relay":
		r.Kind, uuids = S3RNRelay, []*string{&r.Relay}
	case "relay:folder":
		r.Kind, uuids = S3RNRemoteFolder, []*string{&r.Relay, &r.Folder}
	case "relay:folder:doc":
		r.Kind, uuids = S3RNRemoteDocument, []*string{&r.Relay, &r.Folder, &r.Resource}
	case "relay:folder:canvas":
		r.Kind, uuids = S3RNRemoteCanvas, []*string{&r.Relay, &r.Folder, &r.Resource}
	case "relay:folder:file":
		r.Kind, uuids = S3RNRemoteFile, []*string{&r.Relay, &r.Folder, &r.Resource}
	case "relay:folder:file:sha256:contentType:contentLength", "relay:folder:file:hash:contentType:contentLength":
		r.Kind, uuids = S3RNRemoteBlob, []*string{&r.Relay, &r.Folder, &r.Resource}
	case "folder":
		r.Kind, uuids = S3RNFolder, []*string{&r.Folder}
	case "folder:doc", "folder:document":
		r.Kind, uuids = S3RNDocument, []*string{&r.Folder, &r.Resource}
	case "folder:canvas":
		r.Kind, uuids = S3RNCanvas, []*string{&r.Folder, &r.Resource}
	case "folder:file":
		r.Kind, uuids = S3RNFile, []*string{&r.Folder, &r.Resource}
	default:
		return fail("unknown key sequence " + strconv.Quote(shape))
	}
	for i, dst := range uuids {
		v := vals[i]
		if !IsUUID(v) {
			return fail(fmt.Sprintf("%s id %q is not a UUID", keys[i], v))
		}
		*dst = strings.ToLower(v)
	}
	if r.Kind == S3RNRemoteBlob {
		if !IsSHA256Hex(vals[3]) {
			return fail(fmt.Sprintf("%s %q is not a SHA-256 hex digest", keys[3], vals[3]))
		}
		r.Hash = strings.ToLower(vals[3])
		r.ContentType = vals[4]
		n, err := strconv.ParseInt(vals[5], 10, 64)
		if err != nil || n < 0 || vals[5][0] == '+' {
			return fail(fmt.Sprintf("contentLength %q is not a non-negative integer", vals[5]))
		}
		r.ContentLength = n
	}
	return r, nil
}

// IsSHA256Hex reports whether s is 64 hex digits (either case).
func IsSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}
