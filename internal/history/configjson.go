package history

import "encoding/json"

// identityJSON and configJSON are the JSON form of a Config: what `serve`
// and `sync` record in the store (store.SetHistoryConfig) and what the read
// API serves at /api/v1/history-config, so that the remote helper and the
// mirror synthesize with the very Config the server uses:
//
//	{"author": {"name": "…", "email": "…"},
//	 "committer": {"name": "…", "email": "…"},
//	 "authors": {"<relay user id>": {"name": "…", "email": "…"}}}
//
// Missing fields are empty (New then applies DefaultIdentity).
type identityJSON struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

type configJSON struct {
	Author    identityJSON            `json:"author"`
	Committer identityJSON            `json:"committer"`
	Authors   map[string]identityJSON `json:"authors,omitempty"`
}

// MarshalJSON writes c in the form described at configJSON (map keys
// sorted, so equal configs give equal bytes).
func (c Config) MarshalJSON() ([]byte, error) {
	out := configJSON{Author: identityJSON(c.Author), Committer: identityJSON(c.Committer)}
	if len(c.Authors) > 0 {
		out.Authors = make(map[string]identityJSON, len(c.Authors))
		for k, v := range c.Authors {
			out.Authors[k] = identityJSON(v)
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Config) UnmarshalJSON(b []byte) error {
	var in configJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*c = Config{Author: Identity(in.Author), Committer: Identity(in.Committer)}
	if len(in.Authors) > 0 {
		c.Authors = make(map[string]Identity, len(in.Authors))
		for k, v := range in.Authors {
			c.Authors[k] = Identity(v)
		}
	}
	return nil
}
