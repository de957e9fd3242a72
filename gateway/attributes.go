package gateway

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

type objectAttributesResult struct {
	XMLName      xml.Name         `xml:"GetObjectAttributesResponse"`
	NS           string           `xml:"xmlns,attr"`
	ETag         string           `xml:"ETag,omitempty"`
	Checksum     *attrChecksum    `xml:"Checksum,omitempty"`
	ObjectParts  *attrObjectParts `xml:"ObjectParts,omitempty"`
	StorageClass string           `xml:"StorageClass,omitempty"`
	ObjectSize   *int64           `xml:"ObjectSize,omitempty"`
}

type attrChecksum struct {
	checksumFields
	ChecksumType string `xml:"ChecksumType,omitempty"`
}

type attrObjectParts struct {
	PartsCount           int        `xml:"PartsCount"`
	PartNumberMarker     int        `xml:"PartNumberMarker"`
	NextPartNumberMarker int        `xml:"NextPartNumberMarker"`
	MaxParts             int        `xml:"MaxParts"`
	IsTruncated          bool       `xml:"IsTruncated"`
	Parts                []attrPart `xml:"Part"`
}

type attrPart struct {
	checksumFields
	PartNumber int32 `xml:"PartNumber"`
	Size       int64 `xml:"Size"`
}

// objectAttributeNames are what x-amz-object-attributes may ask for.
var objectAttributeNames = map[string]bool{"ETag": true, "Checksum": true, "ObjectParts": true, "StorageClass": true, "ObjectSize": true}

// attrChecksums renders checksums as GetObjectAttributes does: the bare
// value, without a composite checksum's "-N" (ObjectParts counts the
// parts).
func attrChecksums(cs []*pb.Checksum) (f checksumFields, typ string) {
	return checksumElements(cs, func(c *pb.Checksum) string { return base64.StdEncoding.EncodeToString(c.GetValue()) })
}

// headerInt reads an optional non-negative integer header.
func headerInt(h http.Header, name string, def int) (int, error) {
	v := h.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, s3err.New(s3err.InvalidArgument, "%s must be a non-negative integer, not %q.", name, v)
	}
	return n, nil
}

// attributes is GetObjectAttributes: what x-amz-object-attributes asks
// for of ETag, Checksum, ObjectParts (a multipart object's parts, paged
// by x-amz-part-number-marker and x-amz-max-parts), StorageClass and
// ObjectSize, without the object's data.
func (h *objectHandlers) attributes(w http.ResponseWriter, r *http.Request) error {
	t := stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return err
	}
	versionID, err := versionIDParam(r.URL.Query())
	if err != nil {
		return err
	}
	// S3 asks for the object's read as well as its attributes' (the
	// router checked s3:GetObject(Version)Attributes): a policy that
	// denies s3:GetObject keeps the checksums and parts from callers too.
	if err := h.d.authorize(r, access{need: needRead, action: getObjectAction.of(r), bucket: t.bucket, key: t.key}); err != nil {
		return err
	}
	if err := checkReadHeaders(r.Header); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, v := range r.Header.Values("x-amz-object-attributes") {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if !objectAttributeNames[name] {
				return s3err.New(s3err.InvalidArgument, "Invalid attribute name specified: %q.", name)
			}
			want[name] = true
		}
	}
	if len(want) == 0 {
		return s3err.New(s3err.InvalidArgument, "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty.")
	}
	maxParts, err := headerInt(r.Header, "x-amz-max-parts", 1000)
	if err != nil {
		return err
	}
	if maxParts == 0 || maxParts > 1000 {
		maxParts = 1000
	}
	marker, err := headerInt(r.Header, "x-amz-part-number-marker", 0)
	if err != nil {
		return err
	}
	key, err := h.d.parseClientKey(r, requestPrefix)
	if err != nil {
		return err
	}
	o, err := h.d.readVersion(r, w.Header(), t, versionID)
	if err != nil {
		return err
	}
	// An SSE-C object's attributes are for its key's holder, as on S3.
	if _, err := h.d.dataKey(o.GetEncryption(), key); err != nil {
		return err
	}
	setSSEHeaders(w.Header(), o.GetEncryption())
	res := objectAttributesResult{NS: s3NS}
	if want["ETag"] {
		res.ETag = o.GetEtag()
	}
	if want["Checksum"] && len(o.GetChecksums()) > 0 {
		f, typ := attrChecksums(o.GetChecksums())
		res.Checksum = &attrChecksum{checksumFields: f, ChecksumType: typ}
	}
	if want["ObjectParts"] && len(o.GetParts()) > 0 {
		parts := o.GetParts()
		op := &attrObjectParts{PartsCount: len(parts), PartNumberMarker: marker, MaxParts: maxParts}
		for _, p := range parts {
			if int(p.GetNumber()) <= marker {
				continue
			}
			if len(op.Parts) == maxParts {
				op.IsTruncated = true
				break
			}
			f, _ := attrChecksums(p.GetChecksums())
			op.Parts = append(op.Parts, attrPart{checksumFields: f, PartNumber: p.GetNumber(), Size: p.GetSize()})
			op.NextPartNumberMarker = int(p.GetNumber())
		}
		res.ObjectParts = op
	}
	if want["StorageClass"] {
		res.StorageClass = storageClassOf(o.GetHeaders())
	}
	if want["ObjectSize"] {
		size := o.GetSize()
		res.ObjectSize = &size
	}
	w.Header().Set("Last-Modified", lastModified(o).Format(http.TimeFormat))
	return writeXML(w, res)
}
