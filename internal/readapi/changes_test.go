package readapi

import (
	"strings"
	"testing"
)

// CheckChange refuses, naming the path, what POST …/changes does not take.
func TestCheckChange(t *testing.T) {
	ok := []WriteChange{
		{Path: "notes/a.md", Kind: "markdown", Data: []byte("text 😀\n")},
		{Path: "b.canvas", Kind: "canvas", Data: []byte(`{"nodes":[],"edges":[]}`)},
		{Path: "img/p.png", Kind: "file", Data: []byte{0xff, 0}},
		{Path: "x/y.md", From: "y.md", Kind: "markdown"},
		{Path: "gone.md", Delete: true},
		{Path: "big.md", Kind: "markdown", Data: make([]byte, MaxDocumentBytes)},
	}
	for _, c := range ok {
		if err := CheckChange(c); err != nil {
			t.Errorf("%+.40v: %v", c, err)
		}
	}
	for _, c := range []struct {
		c    WriteChange
		want string
	}{
		{WriteChange{Path: "../up.md", Kind: "markdown"}, "not a folder-relative path"},
		{WriteChange{Path: "/abs.md", Kind: "markdown"}, "not a folder-relative path"},
		{WriteChange{Path: "a//b.md", Kind: "markdown"}, "not a folder-relative path"},
		{WriteChange{Path: "a.md", From: "nul\x00.md", Kind: "markdown"}, "not a folder-relative path"},
		{WriteChange{Path: "", Delete: true}, "not a folder-relative path"},
		{WriteChange{Path: "a.md", Kind: "note"}, `unknown kind "note"`},
		{WriteChange{Path: "big.md", Kind: "markdown", Data: make([]byte, MaxDocumentBytes+1)}, "big.md: 2000001 bytes"},
		{WriteChange{Path: "big.png", Kind: "file", Data: make([]byte, MaxAttachmentBytes+1)}, "big.png: "},
		{WriteChange{Path: "latin1.md", Kind: "markdown", Data: []byte("caf\xe9")}, "latin1.md: not UTF-8"},
		{WriteChange{Path: "b.canvas", Kind: "canvas", Data: []byte("[1, 2")}, "b.canvas: not a canvas"},
	} {
		err := CheckChange(c.c)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+.40v: %v, want %q", c.c, err, c.want)
		}
	}
}
