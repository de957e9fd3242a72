package gateway

import (
	"bytes"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairnstore/cairn/gateway/checksum"
	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// checksums computes the checksum a request declares (x-amz-checksum-*
// header, or x-amz-trailer for an aws-chunked trailer) while the body
// streams, checks it at the end, and yields what to store.
type checksums struct {
	alg  checksum.Algorithm
	want []byte // from the header; nil when it comes in a trailer
	h    hash.Hash
	typ  string // stored type: FULL_OBJECT for objects, "" for parts
}

// newChecksums reads what r says about its body's checksum; bc says what
// to compute when it names none, and whether it may name another.
func newChecksums(r *http.Request, bc bodyChecksums) (*checksums, error) {
	exp, err := checksum.FromRequest(r.Header)
	if err != nil {
		return nil, err
	}
	alg := exp.Algorithm
	if alg == checksum.None {
		alg = bc.fallback
	} else if bc.required != checksum.None && alg != bc.required {
		return nil, s3err.New(s3err.InvalidRequest, "Checksum Type mismatch occurred, expected checksum Type: %s, actual checksum Type: %s", bc.required, alg)
	}
	if alg == checksum.None {
		return nil, nil
	}
	return &checksums{alg: alg, want: exp.Value, h: checksum.New(alg), typ: bc.typ}, nil
}

func (c *checksums) Write(p []byte) (int, error) { return c.h.Write(p) }

// verify compares the computed checksum with the one declared in a header
// or, failing that, in the aws-chunked trailers; a mismatch is BadDigest
// (checksum.Algorithm.Mismatch).
func (c *checksums) verify(trailers map[string]string) ([]*pb.Checksum, error) {
	sum := c.h.Sum(nil)
	want := c.want
	if want == nil {
		if v, ok := trailers[c.alg.Header()]; ok {
			w, err := c.alg.Decode(v)
			if err != nil {
				return nil, err
			}
			want = w
		}
	}
	if want != nil && !bytes.Equal(sum, want) {
		return nil, c.alg.Mismatch()
	}
	return []*pb.Checksum{{Algorithm: c.alg.String(), Value: sum, Type: c.typ}}, nil
}

// store verifies the checksum computed over a body with no trailers (a
// copy's source, a POST form's file) and records it on o; nil stores
// nothing.
func (c *checksums) store(o *pb.Object) error {
	if c == nil {
		return nil
	}
	cs, err := c.verify(nil)
	if err != nil {
		return err
	}
	o.Checksums = cs
	return nil
}

// copyChecksums is the checksum a copy computes: the algorithm the request
// names (x-amz-checksum-algorithm), else the source's, else
// checksum.DefaultObject, as a FULL_OBJECT checksum of the new object.
func copyChecksums(h http.Header, src *pb.Object) (*checksums, error) {
	alg := checksum.None
	if v := h.Get("x-amz-checksum-algorithm"); v != "" {
		a, ok := checksum.Parse(v)
		if !ok {
			return nil, s3err.New(s3err.InvalidRequest, "Checksum algorithm %q is not supported.", v)
		}
		alg = a
	} else if cs := src.GetChecksums(); len(cs) > 0 {
		alg, _ = checksum.Parse(cs[0].GetAlgorithm())
	} else {
		alg = checksum.DefaultObject
	}
	if alg == checksum.None {
		return nil, nil
	}
	return &checksums{alg: alg, h: checksum.New(alg), typ: checksum.FullObject.String()}, nil
}

// uploadChecksumMode reads x-amz-checksum-algorithm and
// x-amz-checksum-type of CreateMultipartUpload; the type defaults to the
// algorithm's default (COMPOSITE, FULL_OBJECT for CRC64NVME).
func uploadChecksumMode(h http.Header) (alg, typ string, err error) {
	av, tv := h.Get("x-amz-checksum-algorithm"), h.Get("x-amz-checksum-type")
	if av == "" {
		if tv != "" {
			return "", "", s3err.New(s3err.InvalidRequest, "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.")
		}
		return "", "", nil
	}
	a, ok := checksum.Parse(av)
	if !ok {
		return "", "", s3err.New(s3err.InvalidRequest, "Checksum algorithm %q is not supported.", av)
	}
	t := checksum.DefaultType(a)
	if tv != "" {
		if t, ok = checksum.ParseType(tv); !ok {
			return "", "", s3err.New(s3err.InvalidRequest, "Checksum type %q is not supported.", tv)
		}
	}
	if !checksum.ValidType(a, t) {
		return "", "", s3err.New(s3err.InvalidRequest, "The %s checksum type cannot be used with the %s checksum algorithm.", t, a)
	}
	return a.String(), t.String(), nil
}

func uploadAlgorithm(up *pb.MultipartUpload) checksum.Algorithm {
	a, _ := checksum.Parse(up.GetChecksumAlgorithm())
	return a
}

// partAlgorithm is the checksum computed over a part whose request names
// none: the upload's, or in an upload created without one the default
// (checksum.DefaultObject), which Complete combines into the object's
// FULL_OBJECT checksum, as S3 does.
func partAlgorithm(up *pb.MultipartUpload) checksum.Algorithm {
	if a := uploadAlgorithm(up); a != checksum.None {
		return a
	}
	return checksum.DefaultObject
}

// partCopyChecksums computes partAlgorithm over a copied part.
func partCopyChecksums(up *pb.MultipartUpload) *checksums {
	a := partAlgorithm(up)
	return &checksums{alg: a, h: checksum.New(a)}
}

func findChecksum(cs []*pb.Checksum, a checksum.Algorithm) []byte {
	for _, c := range cs {
		if c.GetAlgorithm() == a.String() {
			return c.GetValue()
		}
	}
	return nil
}

// completeChecksums combines the chosen parts' checksums as the upload
// asked (COMPOSITE: the checksum of the part checksums, "-N"; FULL_OBJECT:
// the CRCs combined without reading the data) and checks the part
// checksums the client listed (a mismatch is InvalidPart). An upload
// created without an algorithm gets the default one as FULL_OBJECT when
// every part has it (parts stored before parts got it, or naming another
// algorithm, leave the object without a checksum).
func completeChecksums(up *pb.MultipartUpload, parts []*pb.Part, listed []completePart) ([]*pb.Checksum, error) {
	a, t := uploadAlgorithm(up), checksum.Type(0)
	byDefault := a == checksum.None
	if byDefault {
		a, t = partAlgorithm(up), checksum.FullObject
	} else {
		t, _ = checksum.ParseType(up.GetChecksumType())
	}
	sums := make([][]byte, len(parts))
	cparts := make([]checksum.Part, len(parts))
	for i, p := range parts {
		sum := findChecksum(p.GetChecksums(), a)
		if sum == nil && byDefault {
			return nil, nil
		}
		if sum == nil {
			return nil, s3err.New(s3err.InvalidPart, "Part %d has no %s checksum, which this upload requires.", p.GetNumber(), a)
		}
		if v := listedChecksum(listed[i].checksumFields, a); v != "" {
			want, err := a.Decode(v)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(want, sum) {
				return nil, s3err.New(s3err.InvalidPart, "The %s checksum listed for part %d does not match the part's.", a, p.GetNumber())
			}
		}
		sums[i] = sum
		cparts[i] = checksum.Part{Sum: sum, Size: p.GetSize()}
	}
	if t == checksum.FullObject {
		v, err := checksum.CombineParts(a, cparts)
		if err != nil {
			return nil, err
		}
		return []*pb.Checksum{{Algorithm: a.String(), Value: v, Type: checksum.FullObject.String()}}, nil
	}
	return []*pb.Checksum{{Algorithm: a.String(), Value: checksum.CompositeSum(a, sums), Type: checksum.Composite.String(), Parts: int32(len(parts))}}, nil
}

func listedChecksum(f checksumFields, a checksum.Algorithm) string {
	if p := f.field(a); p != nil {
		return *p
	}
	return ""
}

// checkDeclaredComplete compares what a CompleteMultipartUpload request
// says of the object it makes with what its parts make: the checksum
// (x-amz-checksum-<algorithm>, the whole object's for FULL_OBJECT, the
// checksum of the part checksums, optionally suffixed "-N", for COMPOSITE),
// x-amz-checksum-type and x-amz-mp-object-size. A different value is
// BadDigest; a different algorithm, type or size is InvalidRequest.
func checkDeclaredComplete(h http.Header, up *pb.MultipartUpload, o *pb.Object) error {
	if v := h.Get("x-amz-mp-object-size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return s3err.New(s3err.InvalidRequest, "Value for x-amz-mp-object-size header is invalid.")
		}
		if n != o.GetSize() {
			return s3err.New(s3err.InvalidRequest, "The provided x-amz-mp-object-size %d does not match the size of the parts, %d.", n, o.GetSize())
		}
	}
	ua, utype := uploadAlgorithm(up), up.GetChecksumType()
	if cs := o.GetChecksums(); ua == checksum.None && len(cs) == 1 {
		// The default checksum the parts were given (completeChecksums).
		ua, _ = checksum.Parse(cs[0].GetAlgorithm())
		utype = cs[0].GetType()
	}
	if v := h.Get("x-amz-checksum-type"); v != "" {
		t, ok := checksum.ParseType(v)
		if !ok {
			return s3err.New(s3err.InvalidRequest, "Checksum type %q is not supported.", v)
		}
		if ua == checksum.None || t.String() != utype {
			return s3err.New(s3err.InvalidRequest, "The upload was created with checksum type %q, not %s.", utype, t)
		}
	}
	alg, value, err := checksum.HeaderValue(h)
	if err != nil {
		return err
	}
	if alg == checksum.None {
		return nil
	}
	if alg != ua {
		if ua == checksum.None {
			return s3err.New(s3err.InvalidRequest, "The upload was created without a checksum algorithm, so Complete cannot name a %s checksum.", alg)
		}
		return s3err.New(s3err.InvalidRequest, "Checksum Type mismatch occurred, expected checksum Type: %s, actual checksum Type: %s", ua, alg)
	}
	encoded, count, composite := strings.Cut(strings.TrimSpace(value), "-")
	want, err := alg.Decode(encoded)
	if err != nil {
		return err
	}
	stored := o.GetChecksums()
	if len(stored) != 1 || stored[0].GetAlgorithm() != alg.String() {
		return fmt.Errorf("complete: the object's checksums %v do not include the upload's %s", stored, alg)
	}
	if composite {
		n, err := strconv.Atoi(count)
		if err != nil || n < 1 {
			return s3err.New(s3err.InvalidRequest, "Value for %s header is invalid.", alg.Header())
		}
		if stored[0].GetType() != checksum.Composite.String() || n != int(stored[0].GetParts()) {
			return alg.Mismatch()
		}
	}
	if !bytes.Equal(want, stored[0].GetValue()) {
		return alg.Mismatch()
	}
	return nil
}
