package xmlstrict

import (
	"bytes"
	"encoding/xml"
	"testing"
)

// TestTrailingSpaceOnly: whitespace, comments and processing instructions
// may follow a document; text, elements and broken XML may not.
func TestTrailingSpaceOnly(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want string // "" for no error
	}{
		{"<a/>", ""},
		{"<a/> \n\t", ""},
		{"<a/><!-- c --><?pi x?>\n", ""},
		{"<a/>x", "text after the document"},
		{"<a/><b/>", "data after the document"},
		{"<a/><b", "XML syntax error on line 1: unexpected EOF"},
	} {
		dec := xml.NewDecoder(bytes.NewReader([]byte(tc.doc)))
		var v struct{}
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%q: decode the root: %v", tc.doc, err)
		}
		err := TrailingSpaceOnly(dec)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.doc, got, tc.want)
		}
	}
}
