package history

import "strings"

// Identity is a git name and e-mail address.
type Identity struct {
	Name, Email string
}

// DefaultIdentity is the author and committer when none is configured. The
// address is in the reserved ".invalid" domain (RFC 2606): it can never reach
// anyone, and forges show it as an unlinked name. It is part of every commit
// id made without configuration, so it must never change.
var DefaultIdentity = Identity{Name: "Relay Git Sync", Email: "relay-git-sync@noreply.invalid"}

// IsZero reports whether both fields are empty.
func (id Identity) IsZero() bool { return id.Name == "" && id.Email == "" }

// String returns "Name <email>", as in git headers and trailers.
func (id Identity) String() string { return id.Name + " <" + id.Email + ">" }

// IdentityFromEnv reads git's own variables with getenv (os.Getenv, or a
// lookup in a recorded environment): GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL for
// the author, each falling back to DefaultIdentity; GIT_COMMITTER_NAME and
// GIT_COMMITTER_EMAIL for the committer, each falling back to the author's.
//
// Only the process that owns the history (serve, sync) should call this: the
// identity is part of every commit id, so a remote helper running in a user's
// shell must use the identity the server reports, not its own environment.
func IdentityFromEnv(getenv func(string) string) (author, committer Identity) {
	author = Identity{Name: getenv("GIT_AUTHOR_NAME"), Email: getenv("GIT_AUTHOR_EMAIL")}
	committer = Identity{Name: getenv("GIT_COMMITTER_NAME"), Email: getenv("GIT_COMMITTER_EMAIL")}
	author = author.withDefaults(DefaultIdentity)
	committer = committer.withDefaults(author)
	return author, committer
}

// withDefaults sanitizes both fields and replaces an empty one by def's.
func (id Identity) withDefaults(def Identity) Identity {
	id.Name = sanitizeIdent(id.Name)
	id.Email = sanitizeIdent(id.Email)
	if id.Name == "" {
		id.Name = def.Name
	}
	if id.Email == "" {
		id.Email = def.Email
	}
	return id
}

// sanitizeIdent does what git does to names and addresses before writing
// them into a commit (ident.c, strbuf_addstr_without_crud): it drops '<', '>'
// and line breaks everywhere (they would break the header) and trims "crud"
// (control characters, spaces and ,:;<>"\') from both ends. NUL is dropped too.
func sanitizeIdent(s string) string {
	if strings.ContainsAny(s, "<>\n\r\x00") {
		s = strings.Map(func(r rune) rune {
			switch r {
			case '<', '>', '\n', '\r', 0:
				return -1
			}
			return r
		}, s)
	}
	isCrud := func(c byte) bool {
		return c <= ' ' || c == ',' || c == ':' || c == ';' || c == '<' || c == '>' ||
			c == '"' || c == '\\' || c == '\'' || c == 0x7f
	}
	for len(s) > 0 && isCrud(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isCrud(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}
