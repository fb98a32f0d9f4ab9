package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

// maxYdocSize bounds what inspect ydoc reads; Relay documents are far smaller.
const maxYdocSize = 256 << 20

func newInspectYdocCmd(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "ydoc FILE",
		Short: "Print a Yjs update (v1) as JSON: each root type by name",
		Long: `Decode a Yjs document update (v1 encoding, as the Relay Server's as-update
endpoint returns it) and print one JSON object mapping each root type's name
to its value: a string for text, an object for a map, an array for an array,
nested types likewise. Binary values print as base64 strings.

FILE may be - to read standard input.`,
		Example: `  curl -s -H "Authorization: Bearer $TOKEN" "$BASE/as-update" | relay-git-sync inspect ydoc -`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			doc := yjs.NewDoc()
			if err := doc.ApplyUpdate(data); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			enc := json.NewEncoder(opts.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(finite(doc.ToJSON()))
		},
	}
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxYdocSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxYdocSize {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxYdocSize>>20)
	}
	return data, nil
}

// finite replaces NaN and infinities, which JSON cannot carry, by null,
// as JSON.stringify does.
func finite(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case map[string]any:
		for k, e := range x {
			x[k] = finite(e)
		}
	case []any:
		for i, e := range x {
			x[i] = finite(e)
		}
	}
	return v
}
