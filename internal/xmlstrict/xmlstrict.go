// Package xmlstrict holds what the strict readers of S3 configuration
// documents (lifecycle, bucket CORS) share about where a document ends.
package xmlstrict

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
)

// TrailingSpaceOnly checks that nothing but whitespace, comments and
// processing instructions follow the document dec has read: S3 refuses a
// configuration with anything after its root element.
func TrailingSpaceOnly(dec *xml.Decoder) error {
	for {
		t, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch v := t.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(v)) != 0 {
				return errors.New("text after the document")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return errors.New("data after the document")
		}
	}
}
