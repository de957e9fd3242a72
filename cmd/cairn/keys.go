package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/internal/clitable"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Access keys from the CLI: the credentials of S3 clients other than the
// gateways' root key, each with what it may do per bucket. The CLI makes
// up the id and secret (so a retried create is answered with the key it
// made), metad stores them, and the gateways enforce the grants.

// newKeyID is "CK" and 18 random characters of the RFC 4648 base32
// alphabet (A-Z, 2-7; 90 bits): 20 characters, upper case, as AWS ids
// are, so that tools written for S3 take it.
func newKeyID() string { return "CK" + rand.Text()[:18] }

// newKeySecret is 40 characters of URL-safe base64 (240 random bits).
func newKeySecret() string {
	b := make([]byte, 30)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

type keyView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Secret only where asked for: create, and show --show-secret.
	Secret        string    `json:"secret,omitempty"`
	Created       time.Time `json:"created"`
	CreateBuckets bool      `json:"create_buckets"`
	// Expires is when gateways stop taking the key; nil: never.
	Expires *time.Time `json:"expires,omitempty"`
	// Grants by bucket name.
	Grants map[string]grantView `json:"grants"`
}

type grantView struct {
	Read  bool `json:"read"`
	Write bool `json:"write"`
	Owner bool `json:"owner"`
}

func toKeyView(k *pb.AccessKey, withSecret bool) keyView {
	v := keyView{ID: k.GetId(), Name: k.GetName(), Created: time.Unix(0, k.GetCreatedUnixNano()).UTC(), CreateBuckets: k.GetCreateBuckets(), Grants: map[string]grantView{}}
	if withSecret {
		v.Secret = k.GetSecret()
	}
	if exp := k.GetExpiresUnixNano(); exp != 0 {
		t := time.Unix(0, exp).UTC()
		v.Expires = &t
	}
	for b, g := range k.GetGrants() {
		v.Grants[b] = grantView{Read: g.GetRead(), Write: g.GetWrite(), Owner: g.GetOwner()}
	}
	return v
}

// expiry is the key's expiry for people: "never", the time, and
// "(expired)" once it has passed.
func (v keyView) expiry(now time.Time) string {
	switch {
	case v.Expires == nil:
		return "never"
	case !now.Before(*v.Expires):
		return v.Expires.Format(time.RFC3339) + " (expired)"
	}
	return v.Expires.Format(time.RFC3339)
}

// parseExpiry reads --expires and `key expire`'s argument: a duration from
// now ("720h", "90m"), a time (RFC 3339: "2027-01-31T00:00:00Z", or a
// date: "2027-01-31", midnight UTC), or "never" (0).
func parseExpiry(s string, now time.Time) (int64, error) {
	if s == "never" {
		return 0, nil
	}
	var at time.Time
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return 0, fmt.Errorf("expiry %q is not in the future", s)
		}
		at = now.Add(d)
	} else if t, err := time.Parse(time.RFC3339, s); err == nil {
		at = t
	} else if t, err := time.Parse(time.DateOnly, s); err == nil {
		at = t
	} else {
		return 0, fmt.Errorf("expiry %q is neither a duration (720h), a time (2027-01-31T00:00:00Z or 2027-01-31) nor \"never\"", s)
	}
	if !at.After(now) {
		return 0, fmt.Errorf("expiry %s is not in the future", at.UTC().Format(time.RFC3339))
	}
	return at.UnixNano(), nil
}

// short is the grant as letters: "r", "rw", "rwo".
func (g grantView) short() string {
	s := ""
	for _, p := range []struct {
		on     bool
		letter string
	}{{g.Read, "r"}, {g.Write, "w"}, {g.Owner, "o"}} {
		if p.on {
			s += p.letter
		}
	}
	return s
}

// long is the grant in words: "read, write, owner".
func (g grantView) long() string {
	var s []string
	for _, p := range []struct {
		on   bool
		word string
	}{{g.Read, "read"}, {g.Write, "write"}, {g.Owner, "owner"}} {
		if p.on {
			s = append(s, p.word)
		}
	}
	return strings.Join(s, ", ")
}

// label is the key as people recognize it: "CK... (backup)".
func (v keyView) label() string {
	if v.Name == "" {
		return v.ID
	}
	return fmt.Sprintf("%s (%s)", v.ID, v.Name)
}

// bucketsShort is the list's BUCKETS cell: "logs:r, photos:rw", "-".
func (v keyView) bucketsShort() string {
	if len(v.Grants) == 0 {
		return "-"
	}
	var s []string
	for _, b := range slices.Sorted(maps.Keys(v.Grants)) {
		s = append(s, b+":"+v.Grants[b].short())
	}
	return strings.Join(s, ", ")
}

// grantRows adds what the key may do to t, one bucket a line.
func (v keyView) grantRows(t *clitable.Table) {
	t.Row("create buckets", yesNo(v.CreateBuckets))
	if len(v.Grants) == 0 {
		t.Row("buckets", "none")
		return
	}
	for i, b := range slices.Sorted(maps.Keys(v.Grants)) {
		head := ""
		if i == 0 {
			head = "buckets"
		}
		t.Row(head, b, v.Grants[b].long())
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func noSuchKey(id string) error {
	return fmt.Errorf("no access key %q (`cairn key list` shows the keys)", id)
}

// keyErr words the conditions the key commands share; bucket is the
// bucket the call named, "" for none.
func keyErr(err error, id, bucket string) error {
	switch {
	case errors.Is(err, metaerr.ErrNoSuchAccessKey):
		return noSuchKey(id)
	case bucket != "" && errors.Is(err, metaerr.ErrNoSuchBucket):
		return noSuchBucket(bucket)
	}
	return err
}

func (a *admin) keyCmd() *cobra.Command {
	cmd := a.adminCmd(&cobra.Command{
		Use:   "key",
		Short: "Create and revoke the access keys of S3 clients, and grant them buckets",
		Long: "An access key lets an S3 client sign requests with its own credentials instead of the gateways'\n" +
			"root key (CAIRN_ACCESS_KEY), limited to the buckets granted to it:\n" +
			"  read    get and head objects, list the bucket, read tags\n" +
			"  write   put, copy and delete objects, multipart uploads, object tags\n" +
			"  owner   the bucket's configuration (policy, lifecycle, tags) and deleting it\n" +
			"A key allowed --create-bucket may create buckets, and owns those it creates. A key given an\n" +
			"expiry (create --expires, or `cairn key expire`) is refused from then on. Gateways apply\n" +
			"changes, and `cairn key delete`, within a few seconds.",
	})
	cmd.AddCommand(
		a.keyCreateCmd(),
		&cobra.Command{
			Use:   "list",
			Short: "List access keys and their buckets (r read, w write, o owner)",
			Args:  cobra.NoArgs,
			RunE:  a.withClient(a.keyList),
		},
		a.keyShowCmd(),
		&cobra.Command{
			Use:   "delete ID",
			Short: "Delete an access key: gateways refuse it within a few seconds",
			Args:  cobra.ExactArgs(1),
			RunE:  a.withClient(a.keyDelete),
		},
		a.keyGrantCmd(true),
		a.keyGrantCmd(false),
		&cobra.Command{
			Use:   "expire ID WHEN",
			Short: "Set when a key stops working: a duration from now (720h), a time (2027-01-31 or RFC 3339), \"now\" or \"never\"",
			Args:  cobra.ExactArgs(2),
			RunE:  a.withClient(a.keyExpire),
		},
	)
	return cmd
}

// keyExpire is `key expire ID WHEN`.
func (a *admin) keyExpire(ctx context.Context, cl *metaclient.Client, args []string) error {
	now := a.now()
	var at int64
	if args[1] == "now" {
		// The state machine refuses an expiry that is not after the
		// command's proposal; a moment ahead is as good as now.
		at = now.Add(time.Second).UnixNano()
	} else {
		var err error
		if at, err = parseExpiry(args[1], now); err != nil {
			return err
		}
	}
	resp, err := call(ctx, a, "UpdateAccessKey", func(ctx context.Context) (*pb.UpdateAccessKeyResponse, error) {
		return cl.UpdateAccessKey(ctx, &pb.UpdateAccessKeyRequest{Id: args[0], ExpiresUnixNano: proto.Int64(at)})
	})
	if err != nil {
		return keyErr(err, args[0], "")
	}
	v := toKeyView(resp.GetKey(), false)
	return a.emit(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "access key %s expires: %s; gateways apply it within a few seconds\n", v.label(), v.expiry(a.now()))
		return err
	})
}

func (a *admin) keyCreateCmd() *cobra.Command {
	var id, secret, expires string
	var createBucket bool
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an access key (NAME is for people: \"backup\", \"web-app\") and print its secret",
		Long: "create makes up a new access key id and secret key (or takes both from --access-key and\n" +
			"--secret-key) and prints them. The key may use no bucket until `cairn key allow` grants one;\n" +
			"with --create-bucket it may create buckets, and owns those it creates.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := pb.CheckAccessKeyName(name); err != nil {
				return err
			}
			switch {
			case id == "" && secret == "":
				id, secret = newKeyID(), newKeySecret()
			case id == "" || secret == "":
				return errors.New("--access-key and --secret-key go together: give both, or neither to have them generated")
			default:
				if err := pb.CheckAccessKeyID(id); err != nil {
					return fmt.Errorf("--access-key: %w", err)
				}
				if err := pb.CheckAccessKeySecret(secret); err != nil {
					return fmt.Errorf("--secret-key: %w", err)
				}
			}
			var expiresAt int64
			if expires != "" {
				var err error
				if expiresAt, err = parseExpiry(expires, a.now()); err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
			}
			return a.withClient(func(ctx context.Context, cl *metaclient.Client, _ []string) error {
				resp, err := call(ctx, a, "CreateAccessKey", func(ctx context.Context) (*pb.CreateAccessKeyResponse, error) {
					return cl.CreateAccessKey(ctx, &pb.CreateAccessKeyRequest{Id: id, Secret: secret, Name: name, CreateBuckets: createBucket, ExpiresUnixNano: expiresAt})
				})
				if errors.Is(err, metaerr.ErrAccessKeyExists) {
					return fmt.Errorf("access key %q already exists (with another secret key)", id)
				}
				if err != nil {
					return err
				}
				v := toKeyView(resp.GetKey(), true)
				return a.emit(v, func(w io.Writer) error {
					t := clitable.New()
					t.Row("access key", v.ID)
					t.Row("secret key", v.Secret)
					if v.Expires != nil {
						t.Row("expires", v.expiry(a.now()))
					}
					var b strings.Builder
					fmt.Fprintf(&b, "created access key %s\n", v.label())
					if err := t.Render(&b); err != nil {
						return err
					}
					fmt.Fprintf(&b, "store the secret key now: only `cairn key show %s --show-secret` prints it again\n", v.ID)
					fmt.Fprintf(&b, "for S3 clients:\n  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", v.ID, v.Secret)
					if v.CreateBuckets {
						fmt.Fprintf(&b, "it may create buckets and owns those it creates; `cairn key allow %s BUCKET --read --write` grants others\n", v.ID)
					} else {
						fmt.Fprintf(&b, "it may use no bucket yet: `cairn key allow %s BUCKET --read --write` grants one\n", v.ID)
					}
					_, err := io.WriteString(w, b.String())
					return err
				})
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&id, "access-key", "", "the access key `ID` (3..128 letters and digits; default: generated, CK and 18 characters)")
	cmd.Flags().StringVar(&secret, "secret-key", "", "the `SECRET` key (8..128 printable ASCII characters, no spaces; default: 40 random characters)")
	cmd.Flags().BoolVar(&createBucket, "create-bucket", false, "let the key create buckets (it owns those it creates)")
	cmd.Flags().StringVar(&expires, "expires", "", "when the key stops working: a `DURATION` from now (720h) or a time (2027-01-31, or RFC 3339); default never")
	return cmd
}

func (a *admin) keyList(ctx context.Context, cl *metaclient.Client, _ []string) error {
	resp, err := call(ctx, a, "ListAccessKeys", func(ctx context.Context) (*pb.ListAccessKeysResponse, error) {
		return cl.ListAccessKeys(ctx, &pb.ListAccessKeysRequest{})
	})
	if err != nil {
		return err
	}
	v := []keyView{}
	for _, k := range resp.GetKeys() { // in id order
		v = append(v, toKeyView(k, false))
	}
	return a.emit(v, func(w io.Writer) error {
		if len(v) == 0 {
			_, err := fmt.Fprintln(w, "no access keys (`cairn key create NAME` makes one)")
			return err
		}
		t := clitable.New("ID", "NAME", "CREATED", "EXPIRES", "CREATE-BUCKETS", "BUCKETS")
		now := a.now()
		for _, k := range v {
			t.Row(k.ID, orDash(k.Name), k.Created.Format(time.RFC3339), k.expiry(now), yesNo(k.CreateBuckets), k.bucketsShort())
		}
		return t.Render(w)
	})
}

func (a *admin) keyShowCmd() *cobra.Command {
	var showSecret bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an access key and what it may do (the secret key with --show-secret)",
		Args:  cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
			resp, err := call(ctx, a, "GetAccessKey", func(ctx context.Context) (*pb.GetAccessKeyResponse, error) {
				return cl.GetAccessKey(ctx, &pb.GetAccessKeyRequest{Id: args[0]})
			})
			if err != nil {
				return keyErr(err, args[0], "")
			}
			v := toKeyView(resp.GetKey(), showSecret)
			return a.emit(v, func(w io.Writer) error {
				t := clitable.New()
				t.Row("id", v.ID)
				t.Row("name", orDash(v.Name))
				t.Row("created", v.Created.Format(time.RFC3339))
				t.Row("expires", v.expiry(a.now()))
				if showSecret {
					t.Row("secret key", v.Secret)
				} else {
					t.Row("secret key", "hidden (--show-secret prints it)")
				}
				v.grantRows(t)
				return t.Render(w)
			})
		}),
	}
	cmd.Flags().BoolVar(&showSecret, "show-secret", false, "print the secret key too")
	return cmd
}

func (a *admin) keyDelete(ctx context.Context, cl *metaclient.Client, args []string) error {
	_, err := call(ctx, a, "DeleteAccessKey", func(ctx context.Context) (*pb.DeleteAccessKeyResponse, error) {
		return cl.DeleteAccessKey(ctx, &pb.DeleteAccessKeyRequest{Id: args[0]})
	})
	if err != nil {
		return keyErr(err, args[0], "")
	}
	return a.emit(map[string]any{"deleted": args[0]}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "deleted access key %s; gateways refuse it within a few seconds\n", args[0])
		return err
	})
}

// keyGrantCmd is `key allow` (allow) or `key deny`: permissions on one
// bucket, the right to create buckets, or both in one update.
func (a *admin) keyGrantCmd(allow bool) *cobra.Command {
	var read, write, owner, createBucket bool
	verb := "deny"
	cmd := &cobra.Command{
		Use:   "deny ID [BUCKET]",
		Short: "Take a key's permissions on a bucket (all, or those --read, --write, --owner name), or --create-bucket, away",
	}
	if allow {
		verb = "allow"
		cmd.Use = "allow ID [BUCKET]"
		cmd.Short = "Let a key read, write or own a bucket (--read, --write, --owner), or create buckets (--create-bucket)"
	}
	cmd.Args = cobra.RangeArgs(1, 2)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		req := &pb.UpdateAccessKeyRequest{Id: args[0]}
		perms := read || write || owner
		switch {
		case len(args) == 2 && args[1] == "":
			return errors.New("BUCKET is empty")
		case len(args) == 2:
			req.Bucket = args[1]
			g := &pb.BucketGrant{Read: read, Write: write, Owner: owner}
			switch {
			case allow && !perms:
				return fmt.Errorf("say what %s may do in bucket %s: --read, --write and/or --owner", args[0], args[1])
			case allow:
				req.Allow = g
			case !perms: // deny with no permission named: all of them
				req.Deny = &pb.BucketGrant{Read: true, Write: true, Owner: true}
			default:
				req.Deny = g
			}
		case perms:
			return fmt.Errorf("--read, --write and --owner need a BUCKET: cairn key %s ID BUCKET --read ...", verb)
		case !createBucket:
			return fmt.Errorf("give a BUCKET (cairn key %s ID BUCKET ...) or --create-bucket", verb)
		}
		if createBucket {
			req.CreateBuckets = proto.Bool(allow)
		}
		return a.withClient(func(ctx context.Context, cl *metaclient.Client, _ []string) error {
			resp, err := call(ctx, a, "UpdateAccessKey", func(ctx context.Context) (*pb.UpdateAccessKeyResponse, error) {
				return cl.UpdateAccessKey(ctx, req)
			})
			if err != nil {
				return keyErr(err, req.GetId(), req.GetBucket())
			}
			v := toKeyView(resp.GetKey(), false)
			return a.emit(v, func(w io.Writer) error {
				if _, err := fmt.Fprintf(w, "access key %s:\n", v.label()); err != nil {
					return err
				}
				t := clitable.New()
				v.grantRows(t)
				return t.Render(w)
			})
		})(cmd, args)
	}
	what := "allow"
	if !allow {
		what = "take away"
	}
	cmd.Flags().BoolVar(&read, "read", false, what+" reading BUCKET: get and head objects, list, read tags")
	cmd.Flags().BoolVar(&write, "write", false, what+" writing BUCKET: put, copy and delete objects, multipart uploads, object tags")
	cmd.Flags().BoolVar(&owner, "owner", false, what+" owning BUCKET: its policy, lifecycle and tags, and deleting it")
	cmd.Flags().BoolVar(&createBucket, "create-bucket", false, what+" creating buckets (the key owns those it creates)")
	return cmd
}
