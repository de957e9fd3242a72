package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnstore/cairn/gateway/bucketpolicy"
	"github.com/cairnstore/cairn/internal/clitable"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

type bucketView struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Region  string    `json:"region"`
	// Objects and Bytes: what the bucket holds (current versions, bytes
	// before erasure coding). UploadBytes: the parts of its multipart
	// uploads in progress (0 from a metad that does not count them); a
	// quota of bytes counts them with Bytes.
	Objects     int64 `json:"objects"`
	Bytes       int64 `json:"bytes"`
	UploadBytes int64 `json:"upload_bytes"`
	// NoncurrentVersions and NoncurrentBytes: the versions versioning
	// keeps besides the current objects (delete markers included); a
	// quota of bytes counts them too.
	NoncurrentVersions int64 `json:"noncurrent_versions"`
	NoncurrentBytes    int64 `json:"noncurrent_bytes"`
	// MaxBytes and MaxObjects: its quota (0: no limit).
	MaxBytes   int64 `json:"max_bytes"`
	MaxObjects int64 `json:"max_objects"`
	// Anonymous: the bucket's policy is public (an Allow to everyone not
	// confined to source addresses or users: bucketpolicy.IsPublic).
	Anonymous bool   `json:"anonymous_read"`
	Policy    string `json:"policy,omitempty"`
}

func toBucketView(b *pb.Bucket) bucketView {
	v := bucketView{Name: b.GetName(), Created: time.Unix(0, b.GetCreatedUnixNano()).UTC(), Region: b.GetRegion(), Policy: b.GetPolicy(),
		Objects: b.GetUsage().GetObjects(), Bytes: b.GetUsage().GetBytes(), UploadBytes: b.GetUsage().GetUploadBytes(),
		NoncurrentVersions: b.GetUsage().GetNoncurrentVersions(), NoncurrentBytes: b.GetUsage().GetNoncurrentBytes(),
		MaxBytes: b.GetQuota().GetMaxBytes(), MaxObjects: b.GetQuota().GetMaxObjects()}
	if v.Policy != "" {
		p, err := bucketpolicy.Parse(v.Name, []byte(v.Policy))
		v.Anonymous = err == nil && p.IsPublic()
	}
	return v
}

// noSuchBucket is the error of every command naming a bucket that does
// not exist.
func noSuchBucket(name string) error {
	return fmt.Errorf("bucket %q does not exist (`cairn bucket list` shows the buckets)", name)
}

// quota is the QUOTA cell: "100 GiB", "1000 objects", both, or "-".
func (v bucketView) quota() string {
	var parts []string
	if v.MaxBytes > 0 {
		parts = append(parts, clitable.Bytes(v.MaxBytes))
	}
	if v.MaxObjects > 0 {
		parts = append(parts, strconv.FormatInt(v.MaxObjects, 10)+" objects")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func (v bucketView) access() string {
	if v.Anonymous {
		return "anonymous read (policy)"
	}
	return "private"
}

func (a *admin) bucketCmd() *cobra.Command {
	var region string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a bucket",
		Args:  cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
			resp, err := call(ctx, a, "CreateBucket", func(ctx context.Context) (*pb.CreateBucketResponse, error) {
				return cl.CreateBucket(ctx, &pb.CreateBucketRequest{Name: args[0], Region: region})
			})
			switch {
			case errors.Is(err, metaerr.ErrBucketAlreadyOwnedByYou), errors.Is(err, metaerr.ErrBucketAlreadyExists):
				return fmt.Errorf("bucket %q already exists", args[0])
			case err != nil:
				return err
			}
			v := toBucketView(resp.GetBucket())
			return a.emit(v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "created bucket %s\n", v.Name)
				return err
			})
		}),
	}
	create.Flags().StringVar(&region, "region", "", "region recorded with the bucket (default: the cluster's)")

	cmd := a.adminCmd(&cobra.Command{
		Use:   "bucket",
		Short: "List, create and delete buckets; publish them with a bucket policy",
	})
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list",
			Short: "List buckets",
			Args:  cobra.NoArgs,
			RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, _ []string) error {
				resp, err := call(ctx, a, "ListBuckets", func(ctx context.Context) (*pb.ListBucketsResponse, error) {
					return cl.ListBuckets(ctx, &pb.ListBucketsRequest{})
				})
				if err != nil {
					return err
				}
				v := []bucketView{}
				for _, b := range resp.GetBuckets() {
					v = append(v, toBucketView(b))
				}
				return a.emit(v, func(w io.Writer) error {
					if len(v) == 0 {
						_, err := fmt.Fprintln(w, "no buckets")
						return err
					}
					t := clitable.New("NAME", "CREATED", "REGION", "OBJECTS", "SIZE", "UPLOADS", "QUOTA", "ACCESS")
					for _, b := range v {
						t.Row(b.Name, b.Created.Format(time.RFC3339), b.Region, strconv.FormatInt(b.Objects, 10), clitable.Bytes(b.Bytes),
							clitable.Bytes(b.UploadBytes), b.quota(), b.access())
					}
					return t.Render(w)
				})
			}),
		},
		create,
		&cobra.Command{
			Use:   "delete NAME",
			Short: "Delete an empty bucket",
			Args:  cobra.ExactArgs(1),
			RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
				_, err := call(ctx, a, "DeleteBucket", func(ctx context.Context) (*pb.DeleteBucketResponse, error) {
					return cl.DeleteBucket(ctx, &pb.DeleteBucketRequest{Name: args[0]})
				})
				switch {
				case errors.Is(err, metaerr.ErrNoSuchBucket):
					return noSuchBucket(args[0])
				case errors.Is(err, metaerr.ErrBucketNotEmpty):
					return fmt.Errorf("bucket %q is not empty: delete its objects and multipart uploads first", args[0])
				case err != nil:
					return err
				}
				return a.emit(map[string]any{"deleted": args[0]}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "deleted bucket %s\n", args[0])
					return err
				})
			}),
		},
		a.bucketShowCmd(),
		a.publishCmd(),
		a.policyCmd(),
		a.quotaCmd(),
	)
	return cmd
}

// quotaCmd sets or removes a bucket's quota.
func (a *admin) quotaCmd() *cobra.Command {
	var maxSize string
	var maxObjects int64
	var none bool
	cmd := &cobra.Command{
		Use:   "quota NAME (--max-size SIZE | --max-objects N | --none)",
		Short: "Limit what a bucket may hold; writes that would go over are refused (403 QuotaExceeded)",
		Long: "quota sets the most a bucket may hold: --max-size (bytes of its objects and of the parts of its\n" +
			"multipart uploads in progress, before erasure coding, e.g. 100GiB) and --max-objects; a flag left\n" +
			"out, or 0, is no limit on that. --none removes the quota. A write that would take the bucket over\n" +
			"is refused when it commits (an uploaded part too; a completion moves its parts' bytes into the\n" +
			"object); deletes and aborted uploads always pass, so a bucket already over only shrinks. Parts\n" +
			"count once every metad is at feature level 6.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := &pb.BucketQuota{MaxObjects: maxObjects}
			if maxSize != "" {
				n, err := clitable.ParseBytes(maxSize)
				if err != nil {
					return fmt.Errorf("--max-size: %w", err)
				}
				q.MaxBytes = n
			}
			switch {
			case q.MaxObjects < 0:
				return errors.New("--max-objects must be ≥ 0")
			case none && (maxSize != "" || maxObjects != 0):
				return errors.New("--none removes the quota: give it alone")
			case !none && maxSize == "" && maxObjects == 0:
				return errors.New("give --max-size, --max-objects, or --none to remove the quota")
			}
			return a.withClient(func(ctx context.Context, cl *metaclient.Client, _ []string) error {
				resp, err := call(ctx, a, "SetBucketQuota", func(ctx context.Context) (*pb.SetBucketQuotaResponse, error) {
					return cl.SetBucketQuota(ctx, &pb.SetBucketQuotaRequest{Name: args[0], Quota: q})
				})
				if errors.Is(err, metaerr.ErrNoSuchBucket) {
					return noSuchBucket(args[0])
				}
				if err != nil {
					return err
				}
				v := toBucketView(resp.GetBucket())
				return a.emit(v, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "bucket %s: quota %s\n", v.Name, v.quota())
					return err
				})
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&maxSize, "max-size", "", "most bytes the bucket's objects may hold (e.g. 500GiB; 0: no limit)")
	cmd.Flags().Int64Var(&maxObjects, "max-objects", 0, "most objects the bucket may hold (0: no limit)")
	cmd.Flags().BoolVar(&none, "none", false, "remove the quota")
	return cmd
}
