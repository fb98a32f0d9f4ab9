package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func roots(m map[string]string) RootTextFunc {
	return func(name string) (string, bool) {
		s, ok := m[name]
		return s, ok
	}
}

// Goldens: what the Python _export_canvas_data + json.dumps(indent=2,
// sort_keys=True) produces for the same input (computed with a dict-based
// copy of that function), checked by hand against the rules of §4.3.

const canvasGoldenA = `{
  "edges": [
    {
      "fromNode": "c3",
      "id": "e-a",
      "meta": {
        "nested": {
          "a": [
            1.0,
            {
              "k": "v"
            }
          ],
          "z": []
        }
      },
      "styleAttributes": {},
      "toNode": "d4"
    },
    {
      "fromNode": "a1b2c3d4e5f6a7b8",
      "fromSide": "right",
      "id": "e-b",
      "label": "\u2192 next",
      "toNode": "b2c3d4e5f6a7b8c9",
      "toSide": "left"
    }
  ],
  "nodes": [
    {
      "file": "img/a.png",
      "height": 400.0,
      "id": "a1b2c3d4e5f6a7b8",
      "type": "file",
      "width": 400.0,
      "x": 0.0,
      "y": 1e+16
    },
    {
      "height": 60.0,
      "id": "b2c3d4e5f6a7b8c9",
      "text": "# T\u00edtulo\nLine 2 \ud83d\ude00",
      "type": "text",
      "width": 250.0,
      "x": -120.5,
      "y": 100.0
    },
    {
      "height": 5e-324,
      "id": "c3",
      "type": "link",
      "url": "https://example.com/?a=1&b=<2>",
      "width": 1.2345678901234568e+17,
      "x": 0.1,
      "y": 1e-05
    },
    {
      "color": "1",
      "height": 2.0,
      "id": "d4",
      "label": "Group \"quoted\" \\ tab\there",
      "type": "group",
      "width": 1.0,
      "x": -0.0,
      "y": 0.0
    }
  ]
}`

// Text-node rules (plugin behaviour). The Python output differs only for
// node "f1" (a file node whose id names a root Y.Text), which it would give
// "text": "leftover".
const canvasGoldenB = `{
  "edges": [],
  "nodes": [
    {
      "id": "",
      "text": "x",
      "type": "text"
    },
    {
      "text": "no id",
      "type": "text"
    },
    {
      "file": "a.md",
      "id": "f1",
      "type": "file"
    },
    {
      "id": "t1",
      "text": "own",
      "type": "text"
    },
    {
      "id": "t2",
      "text": "",
      "type": "text"
    },
    {
      "id": "t3",
      "text": "stale",
      "type": "text"
    },
    {
      "id": "t8",
      "text": null,
      "type": "text"
    }
  ]
}`

const canvasGoldenEdges = `{
  "edges": [
    {
      "id": "a"
    },
    {
      "id": "b",
      "n": 1.0
    },
    {
      "id": "b"
    }
  ],
  "nodes": []
}`

func TestExportCanvasGolden(t *testing.T) {
	nodes := map[string]any{
		"n1": map[string]any{"id": "b2c3d4e5f6a7b8c9", "type": "text", "text": "old", "x": -120.5, "y": 100.0, "width": 250.0, "height": 60.0},
		"n2": map[string]any{"id": "a1b2c3d4e5f6a7b8", "type": "file", "file": "img/a.png", "x": 0.0, "y": 1e16, "width": 400.0, "height": 400.0},
		"n3": map[string]any{"id": "c3", "type": "link", "url": "https://example.com/?a=1&b=<2>", "x": 0.1, "y": 1e-05, "width": 123456789012345678.0, "height": 5e-324},
		"n4": map[string]any{"id": "d4", "type": "group", "label": "Group \"quoted\" \\ tab\there", "x": negZero(), "y": 0.0, "width": 1.0, "height": 2.0, "color": "1"},
	}
	edges := map[string]any{
		"e2": map[string]any{"id": "e-b", "fromNode": "a1b2c3d4e5f6a7b8", "fromSide": "right", "toNode": "b2c3d4e5f6a7b8c9", "toSide": "left", "label": "\u2192 next"},
		"e1": map[string]any{"id": "e-a", "fromNode": "c3", "toNode": "d4", "styleAttributes": map[string]any{},
			"meta": map[string]any{"nested": map[string]any{"z": []any{}, "a": []any{1.0, map[string]any{"k": "v"}}}}},
	}
	rt := roots(map[string]string{"b2c3d4e5f6a7b8c9": "# T\u00edtulo\nLine 2 \U0001F600"})
	got, err := ExportCanvas(nodes, edges, rt)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != canvasGoldenA {
		t.Fatalf("ExportCanvas =\n%s\nwant\n%s", got, canvasGoldenA)
	}
	// The input maps are not modified.
	if nodes["n1"].(map[string]any)["text"] != "old" {
		t.Fatal("ExportCanvas modified its input")
	}
	// Deterministic across runs (map iteration order is random).
	for range 20 {
		again, _ := ExportCanvas(nodes, edges, rt)
		if string(again) != canvasGoldenA {
			t.Fatal("ExportCanvas is not deterministic")
		}
	}
	sum := sha256.Sum256(got)
	if h := hex.EncodeToString(sum[:]); len(h) != 64 {
		t.Fatal(h)
	}
}

func negZero() float64 {
	z := 0.0
	return -z
}

func TestExportCanvasTextNodes(t *testing.T) {
	nodes := map[string]any{
		"k1": map[string]any{"id": "t1", "type": "text", "text": "own"},   // empty Y.Text: own text kept
		"k2": map[string]any{"id": "t2", "type": "text"},                  // empty Y.Text, no own text: ""
		"k3": map[string]any{"id": "t3", "type": "text", "text": "stale"}, // no Y.Text: unchanged
		"k4": map[string]any{"id": "f1", "type": "file", "file": "a.md"},  // not a text node: unchanged
		"k5": map[string]any{"id": "", "type": "text", "text": "x"},       // empty id: no lookup, sorts first
		"k6": map[string]any{"type": "text", "text": "no id"},             // missing id sorts as "", after k5 (stable)
		"k7": "not an object",                                             // skipped
		"k8": map[string]any{"id": "t8", "type": "text", "text": nil},     // own null text kept
		"k9": []any{map[string]any{"id": "zzz"}},                          // skipped
		"kA": 42.0,                                                        // skipped
		"kB": nil,                                                         // skipped
	}
	rt := roots(map[string]string{"t1": "", "t2": "", "t8": "", "f1": "leftover", "": "never looked up"})
	got, err := ExportCanvas(nodes, nil, rt)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != canvasGoldenB {
		t.Fatalf("ExportCanvas =\n%s\nwant\n%s", got, canvasGoldenB)
	}
}

func TestExportCanvasEdgeCases(t *testing.T) {
	const empty = "{\n  \"edges\": [],\n  \"nodes\": []\n}"
	for _, tc := range []struct {
		name         string
		nodes, edges map[string]any
	}{
		{"nil maps", nil, nil},
		{"empty maps", map[string]any{}, map[string]any{}},
		{"only junk", map[string]any{"a": "x"}, map[string]any{"b": 1.0}},
	} {
		got, err := ExportCanvas(tc.nodes, tc.edges, nil)
		if err != nil || string(got) != empty {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
	}

	// Stable sort by id; ties keep map-key order.
	edges := map[string]any{"z": map[string]any{"id": "b"}, "a": map[string]any{"id": "b", "n": 1.0}, "m": map[string]any{"id": "a"}}
	got, err := ExportCanvas(nil, edges, nil)
	if err != nil || string(got) != canvasGoldenEdges {
		t.Fatalf("edges:\n%s\n%v\nwant\n%s", got, err, canvasGoldenEdges)
	}

	// Text override with a nil lookup is a no-op; with a lookup it replaces.
	nodes := map[string]any{"n": map[string]any{"id": "t", "type": "text", "text": "old"}}
	got, _ = ExportCanvas(nodes, nil, nil)
	if !strings.Contains(string(got), `"text": "old"`) {
		t.Errorf("nil lookup: %s", got)
	}
	got, _ = ExportCanvas(nodes, nil, roots(map[string]string{"t": "new <&> \u00e9"}))
	if !strings.Contains(string(got), `"text": "new <&> \u00e9"`) {
		t.Errorf("override: %s", got)
	}

	// Non-string ids sort as "" (the Python would fail on a str/float mix).
	nodes = map[string]any{
		"a": map[string]any{"id": "b"},
		"b": map[string]any{"id": 5.0},
		"c": map[string]any{"id": "a"},
	}
	got, _ = ExportCanvas(nodes, nil, nil)
	want := "{\n  \"edges\": [],\n  \"nodes\": [\n    {\n      \"id\": 5.0\n    },\n    {\n      \"id\": \"a\"\n    },\n    {\n      \"id\": \"b\"\n    }\n  ]\n}"
	if string(got) != want {
		t.Errorf("numeric id:\n%s\nwant\n%s", got, want)
	}

	// Binary values become base64 strings; bigints print as ints.
	nodes = map[string]any{"a": map[string]any{"id": "a", "blob": []byte{0, 1, 2}, "n": int64(1) << 60}}
	got, err = ExportCanvas(nodes, nil, nil)
	if err != nil || !strings.Contains(string(got), `"blob": "AAEC"`) || !strings.Contains(string(got), `"n": 1152921504606846976`) {
		t.Errorf("binary/bigint: %s, %v", got, err)
	}

	// Unsupported values are an error, not a panic.
	nodes = map[string]any{"a": map[string]any{"id": "a", "c": make(chan int)}}
	if _, err := ExportCanvas(nodes, nil, nil); err == nil {
		t.Error("channel value accepted")
	}
}
