package yjs

import (
	"fmt"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// ApplyDiff turns the text's content into newText with the insertions and
// deletions diff-match-patch finds between them, as the Relay plugin's
// diffMatchPatch (src/y-diffMatchPatch.ts) does: diff_main with line
// mode, then diff_cleanupSemantic, applied in order at UTF-16 offsets.
// Unchanged text keeps its items, so concurrent edits next to it merge as
// in yjs. The diff is computed on code points: no insertion or deletion
// starts or ends inside a surrogate pair. An equal text changes nothing.
//
// newText must be valid UTF-8. A text holding embeds (which String leaves
// out) is refused. Errors leave the document partly edited: discard it.
func (t *Type) ApplyDiff(newText string) error {
	if t.doc == nil {
		return errDetached
	}
	if t.kind != KindText {
		return fmt.Errorf("yjs: ApplyDiff on a %s, want a text", t.kind)
	}
	if !utf8.ValidString(newText) {
		return fmt.Errorf("yjs: new text is not valid UTF-8; decode it to Unicode first")
	}
	old := t.String()
	if utf16Len(old) != t.length {
		return fmt.Errorf("yjs: text holds %d embedded elements besides its characters; ApplyDiff edits plain text only", t.length-utf16Len(old))
	}
	if old == newText {
		return nil
	}
	dmp := diffmatchpatch.New()
	diffs := dmp.DiffCleanupSemantic(dmp.DiffMain(old, newText, true))
	// The diff is the edit script; a wrong one would corrupt the note.
	if dmp.DiffText1(diffs) != old || dmp.DiffText2(diffs) != newText {
		return fmt.Errorf("yjs: diff-match-patch gave a diff that does not turn the old text into the new one")
	}
	cursor := 0
	for _, df := range diffs {
		n := int(utf16Len(df.Text))
		switch df.Type {
		case diffmatchpatch.DiffEqual:
			cursor += n
		case diffmatchpatch.DiffInsert:
			if err := t.Insert(cursor, df.Text); err != nil {
				return err
			}
			cursor += n
		case diffmatchpatch.DiffDelete:
			if err := t.Delete(cursor, n); err != nil {
				return err
			}
		}
	}
	if got := t.String(); got != newText {
		return fmt.Errorf("yjs: text after applying the diff differs from the new text (%d against %d bytes)", len(got), len(newText))
	}
	return nil
}
