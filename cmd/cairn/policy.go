package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairnstore/cairn/gateway/bucketpolicy"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Bucket policies from the CLI: `cairn bucket publish` writes the common
// one (anonymous reads of a prefix), `cairn bucket policy` shows, sets and
// deletes any policy the gateway accepts (gateway/bucketpolicy checks it
// here too, so a refused policy never reaches metad).

// publicReadPolicy is the policy that lets anonymous clients read the
// objects under prefix, and list the whole bucket when list is set.
func publicReadPolicy(bucket, prefix string, list bool) string {
	type stmt struct {
		Effect    string `json:"Effect"`
		Principal string `json:"Principal"`
		Action    string `json:"Action"`
		Resource  string `json:"Resource"`
	}
	p := struct {
		Version   string `json:"Version"`
		Statement []stmt `json:"Statement"`
	}{Version: "2012-10-17", Statement: []stmt{{"Allow", "*", bucketpolicy.GetObject, "arn:aws:s3:::" + bucket + "/" + prefix + "*"}}}
	if list {
		p.Statement = append(p.Statement, stmt{"Allow", "*", bucketpolicy.ListBucket, "arn:aws:s3:::" + bucket})
	}
	b, _ := json.Marshal(p) // strings only: cannot fail
	return string(b)
}

// setPolicy checks doc and stores it (compacted) on bucket; "" deletes.
func (a *admin) setPolicy(ctx context.Context, cl *metaclient.Client, bucket, doc string) (*pb.Bucket, error) {
	if doc != "" {
		var err error
		if doc, err = bucketpolicy.Normalize(bucket, []byte(doc)); err != nil {
			return nil, fmt.Errorf("policy refused: %w", err)
		}
	}
	resp, err := call(ctx, a, "SetBucketPolicy", func(ctx context.Context) (*pb.SetBucketPolicyResponse, error) {
		return cl.SetBucketPolicy(ctx, &pb.SetBucketPolicyRequest{Name: bucket, Policy: doc})
	})
	if errors.Is(err, metaerr.ErrNoSuchBucket) {
		return nil, noSuchBucket(bucket)
	}
	if err != nil {
		return nil, err
	}
	return resp.GetBucket(), nil
}

func (a *admin) publishCmd() *cobra.Command {
	var prefix string
	var list bool
	cmd := &cobra.Command{
		Use:   "publish NAME",
		Short: "Let anonymous clients read a bucket's objects (under --prefix) through the S3 gateways",
		Long: "publish sets the bucket policy that lets unsigned requests GET and HEAD the bucket's objects\n" +
			"under --prefix (all of them by default), replacing any policy the bucket has. With --list they\n" +
			"may also list the whole bucket, names outside the prefix included. `cairn bucket policy delete`\n" +
			"makes the bucket private again.",
		Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
			b, err := a.setPolicy(ctx, cl, args[0], publicReadPolicy(args[0], prefix, list))
			if err != nil {
				return err
			}
			v := toBucketView(b)
			return a.emit(v, func(w io.Writer) error {
				what := "all objects"
				if prefix != "" {
					what = "objects under " + prefix
				}
				if list {
					what += " and the bucket's listing"
				}
				_, err := fmt.Fprintf(w, "bucket %s: anonymous clients may now read %s\n", v.Name, what)
				return err
			})
		}),
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "publish only the keys that start with this")
	cmd.Flags().BoolVar(&list, "list", false, "let anonymous clients list the whole bucket too")
	return cmd
}

func (a *admin) policyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Show, set or delete a bucket's policy",
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Print the bucket's policy (JSON)",
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
			v := toBucketView(resp.GetBucket())
			return a.emit(v, func(w io.Writer) error {
				if v.Policy == "" {
					_, err := fmt.Fprintf(w, "bucket %s has no policy: it is private\n", v.Name)
					return err
				}
				var out bytes.Buffer
				if err := json.Indent(&out, []byte(v.Policy), "", "  "); err != nil {
					return err
				}
				out.WriteByte('\n')
				_, err := w.Write(out.Bytes())
				return err
			})
		}),
	}
	set := &cobra.Command{
		Use:   "set NAME FILE",
		Short: "Set the bucket's policy from a JSON file (- for standard input)",
		Args:  cobra.ExactArgs(2),
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
			var doc []byte
			var err error
			if args[1] == "-" {
				doc, err = io.ReadAll(io.LimitReader(os.Stdin, bucketpolicy.MaxSize+1))
			} else {
				doc, err = os.ReadFile(args[1])
			}
			if err != nil {
				return fmt.Errorf("read the policy: %w", err)
			}
			b, err := a.setPolicy(ctx, cl, args[0], string(doc))
			if err != nil {
				return err
			}
			v := toBucketView(b)
			return a.emit(v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "bucket %s: policy set (%s)\n", v.Name, v.access())
				return err
			})
		}),
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete the bucket's policy: only signed requests reach it again",
		Args:  cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
			b, err := a.setPolicy(ctx, cl, args[0], "")
			if err != nil {
				return err
			}
			v := toBucketView(b)
			return a.emit(v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "bucket %s: policy deleted; it is private\n", v.Name)
				return err
			})
		}),
	}
	cmd.AddCommand(show, set, del)
	return cmd
}
