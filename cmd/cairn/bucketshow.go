package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnstore/cairn/gateway/bucketcors"
	"github.com/cairnstore/cairn/internal/clitable"
	"github.com/cairnstore/cairn/lifecycle"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// bucketDetail is `bucket show`: a bucket with everything set on it and
// the access keys granted it.
type bucketDetail struct {
	bucketView
	Tags map[string]string `json:"tags"`
	// CORSRules and LifecycleRules count the rules set (0: none; CORS is
	// then the gateways' own setting).
	CORSRules      int `json:"cors_rules"`
	LifecycleRules int `json:"lifecycle_rules"`
	// DefaultEncryption is what objects written without an encryption
	// header of their own are encrypted with: "AES256" (SSE-S3) or ""
	// (none).
	DefaultEncryption string `json:"default_encryption"`
	// Versioning is the bucket's S3 versioning: "Enabled", "Suspended" or
	// "" (never set).
	Versioning string `json:"versioning"`
	// Keys are the access keys with a grant on the bucket, by id; nil
	// when metad is older than access keys.
	Keys map[string]grantView `json:"access_keys"`
}

func (a *admin) bucketShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a bucket: what it holds, its quota, access, CORS and lifecycle rules, default encryption, tags and access keys",
		Args:  cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
			resp, err := call(ctx, a, "GetBucket", func(ctx context.Context) (*pb.GetBucketResponse, error) {
				return cl.GetBucket(ctx, &pb.GetBucketRequest{Name: args[0]})
			})
			if errors.Is(err, metaerr.ErrNoSuchBucket) {
				return noSuchBucket(args[0])
			}
			if err != nil {
				return err
			}
			b := resp.GetBucket()
			d := bucketDetail{bucketView: toBucketView(b), Tags: b.GetTags(), DefaultEncryption: b.GetDefaultEncryption(),
				Versioning: versioningName(b.GetVersioning())}
			if d.Tags == nil {
				d.Tags = map[string]string{}
			}
			// Stored documents were parsed before they were stored; one
			// that does not parse now is reported as such, not hidden.
			if doc := b.GetCors(); doc != "" {
				c, err := bucketcors.Parse([]byte(doc))
				if err != nil {
					return fmt.Errorf("bucket %s: its stored CORS configuration does not parse: %w", b.GetName(), err)
				}
				d.CORSRules = len(c.Rules)
			}
			if doc := b.GetLifecycle(); doc != "" {
				c, err := lifecycle.Parse([]byte(doc))
				if err != nil {
					return fmt.Errorf("bucket %s: its stored lifecycle configuration does not parse: %w", b.GetName(), err)
				}
				d.LifecycleRules = len(c.Rules)
			}
			keys, err := call(ctx, a, "ListAccessKeys", func(ctx context.Context) (*pb.ListAccessKeysResponse, error) {
				return cl.ListAccessKeys(ctx, &pb.ListAccessKeysRequest{})
			})
			switch {
			case isUnimplemented(err):
			case err != nil:
				return err
			default:
				d.Keys = map[string]grantView{}
				for _, k := range keys.GetKeys() {
					if g, ok := k.GetGrants()[b.GetName()]; ok {
						d.Keys[k.GetId()] = grantView{Read: g.GetRead(), Write: g.GetWrite(), Owner: g.GetOwner()}
					}
				}
			}
			return a.emit(d, d.render)
		}),
	}
}

func (d bucketDetail) render(w io.Writer) error {
	t := clitable.New()
	t.Row("bucket", d.Name)
	t.Row("created", d.Created.Format(time.RFC3339))
	t.Row("region", d.Region)
	t.Row("objects", strconv.FormatInt(d.Objects, 10))
	t.Row("size", clitable.Bytes(d.Bytes))
	t.Row("uploads", clitable.Bytes(d.UploadBytes)+" (parts of multipart uploads in progress)")
	t.Row("versioning", orDash(d.Versioning))
	if d.NoncurrentVersions > 0 || d.Versioning != "" {
		t.Row("noncurrent", fmt.Sprintf("%d versions, %s (kept by versioning; delete markers included)", d.NoncurrentVersions, clitable.Bytes(d.NoncurrentBytes)))
	}
	t.Row("quota", d.quota())
	t.Row("access", d.access())
	cors := "the gateways' --cors-allowed-origins"
	if d.CORSRules > 0 {
		cors = plural(d.CORSRules, "rule")
	}
	t.Row("cors", cors)
	lc := "none"
	if d.LifecycleRules > 0 {
		lc = plural(d.LifecycleRules, "rule")
	}
	t.Row("lifecycle", lc)
	t.Row("default encryption", d.encryption())
	tags := []string{}
	for _, k := range slices.Sorted(maps.Keys(d.Tags)) {
		tags = append(tags, k+"="+d.Tags[k])
	}
	t.Row("tags", orDash(strings.Join(tags, ", ")))
	switch {
	case d.Keys == nil:
		t.Row("access keys", "- (metad predates access keys)")
	case len(d.Keys) == 0:
		t.Row("access keys", "none (the root key only)")
	default:
		for i, id := range slices.Sorted(maps.Keys(d.Keys)) {
			label := ""
			if i == 0 {
				label = "access keys"
			}
			t.Row(label, id+"  "+d.Keys[id].long())
		}
	}
	return t.Render(w)
}

// encryption names the default encryption; a value this binary does not
// know (from a newer metad) is shown as stored.
func (d bucketDetail) encryption() string {
	switch d.DefaultEncryption {
	case "":
		return "none"
	case "AES256":
		return "AES256 (SSE-S3)"
	default:
		return d.DefaultEncryption
	}
}

// versioningName is S3's name of a versioning status.
func versioningName(v pb.VersioningStatus) string {
	switch v {
	case pb.VersioningStatus_VERSIONING_STATUS_UNSET:
		return ""
	case pb.VersioningStatus_VERSIONING_STATUS_ENABLED:
		return "Enabled"
	case pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED:
		return "Suspended"
	}
	return v.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
