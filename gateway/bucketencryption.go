package gateway

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/internal/xmlstrict"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// A bucket's default encryption (Put/Get/DeleteBucketEncryption): with
// one, every object written to the bucket without encryption headers is
// encrypted with SSE-S3 (writeEncryption). Only AES256 is offered; there
// is no KMS.

type sseConfiguration struct {
	XMLName xml.Name  `xml:"ServerSideEncryptionConfiguration"`
	NS      string    `xml:"xmlns,attr,omitempty"`
	Rules   []sseRule `xml:"Rule"`
}

type sseRule struct {
	Default          *sseDefault `xml:"ApplyServerSideEncryptionByDefault"`
	BucketKeyEnabled *bool       `xml:"BucketKeyEnabled"`
}

type sseDefault struct {
	SSEAlgorithm   string `xml:"SSEAlgorithm"`
	KMSMasterKeyID string `xml:"KMSMasterKeyID,omitempty"`
}

// errSSEConfig is a well-formed configuration that asks for what S3 would
// not accept (MalformedXML there too) rather than what Cairn lacks.
var errSSEConfig = errors.New("invalid encryption configuration")

// errKMS is a configuration asking for KMS encryption.
var errKMS = errors.New("KMS encryption is not implemented")

// parseSSEConfiguration reads a PutBucketEncryption body: one rule whose
// default algorithm is AES256. It returns the algorithm to record.
func parseSSEConfiguration(body []byte) (string, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var c sseConfiguration
	if err := dec.Decode(&c); err != nil {
		return "", fmt.Errorf("%w: %v", errSSEConfig, err)
	}
	if err := xmlstrict.TrailingSpaceOnly(dec); err != nil {
		return "", fmt.Errorf("%w: %v", errSSEConfig, err)
	}
	if len(c.Rules) != 1 || c.Rules[0].Default == nil {
		return "", fmt.Errorf("%w: want exactly one Rule with ApplyServerSideEncryptionByDefault", errSSEConfig)
	}
	d := c.Rules[0].Default
	switch alg := strings.TrimSpace(d.SSEAlgorithm); {
	case alg == sseAES256 && d.KMSMasterKeyID == "":
		return sseAES256, nil
	case alg == sseAES256:
		return "", fmt.Errorf("%w: KMSMasterKeyID goes only with aws:kms", errSSEConfig)
	case strings.HasPrefix(alg, "aws:kms"):
		return "", errKMS
	default:
		return "", fmt.Errorf("%w: unknown SSEAlgorithm %q", errSSEConfig, alg)
	}
}

// putEncryption is PutBucketEncryption.
func (h *configHandlers) putEncryption(w http.ResponseWriter, r *http.Request) error {
	if err := h.bucketExists(r); err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	alg, err := parseSSEConfiguration(body)
	switch {
	case errors.Is(err, errKMS):
		return s3err.New(s3err.NotImplemented, "Server-side encryption with KMS keys is not implemented; use AES256.")
	case err != nil:
		return &s3err.Error{Code: s3err.MalformedXML, Err: err}
	case h.d.masterKeys == nil:
		return s3err.New(s3err.NotImplemented, "Default encryption with AES256 needs a master key, and this gateway has none (gatewayd --sse-master-key-file).")
	}
	return h.setEncryption(w, r, alg, http.StatusOK)
}

// deleteEncryption is DeleteBucketEncryption: objects written from then
// on are stored as sent; those already encrypted stay so.
func (h *configHandlers) deleteEncryption(w http.ResponseWriter, r *http.Request) error {
	return h.setEncryption(w, r, "", http.StatusNoContent)
}

func (h *configHandlers) setEncryption(w http.ResponseWriter, r *http.Request, alg string, status int) error {
	bucket := stateOf(r).target.bucket
	if _, err := h.d.meta.SetBucketEncryption(r.Context(), &pb.SetBucketEncryptionRequest{Name: bucket, DefaultEncryption: alg}); err != nil {
		return err
	}
	h.d.bucketCache.forget(bucket)
	w.WriteHeader(status)
	return nil
}

// getEncryption is GetBucketEncryption.
func (h *configHandlers) getEncryption(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	if err != nil {
		return err
	}
	alg := resp.GetBucket().GetDefaultEncryption()
	if alg == "" {
		return s3err.SSEConfigurationNotFound
	}
	f := false
	return writeXML(w, sseConfiguration{NS: s3NS, Rules: []sseRule{{Default: &sseDefault{SSEAlgorithm: alg}, BucketKeyEnabled: &f}}})
}
