package history

import (
	"encoding/json"
	"reflect"
	"testing"
)

// A Config survives its JSON form (the store setting and the read API), and
// the form is stable: snake_case keys, sorted authors.
func TestConfigJSON(t *testing.T) {
	cfg := Config{
		Author:    Identity{Name: "Notes Bot", Email: "bot@example.com"},
		Committer: Identity{Name: "Relay", Email: "relay@example.com"},
		Authors: map[string]Identity{
			"u2": {Name: "Bea", Email: "bea@example.com"},
			"u1": {Name: "Al"},
		},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"author":{"name":"Notes Bot","email":"bot@example.com"},"committer":{"name":"Relay","email":"relay@example.com"},` +
		`"authors":{"u1":{"name":"Al","email":""},"u2":{"name":"Bea","email":"bea@example.com"}}}`
	if string(b) != want {
		t.Fatalf("JSON:\n%s\nwant\n%s", b, want)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Fatalf("round trip: %+v, want %+v", back, cfg)
	}
	var zero Config
	if err := json.Unmarshal([]byte(`{}`), &zero); err != nil || !reflect.DeepEqual(zero, Config{}) {
		t.Fatalf("{} = %+v, %v", zero, err)
	}
	if b, _ := json.Marshal(Config{}); string(b) != `{"author":{"name":"","email":""},"committer":{"name":"","email":""}}` {
		t.Fatalf("zero config JSON: %s", b)
	}
}
