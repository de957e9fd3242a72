package main

import (
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// The fake's access-key RPCs keep f.keys as metad's state machine keeps
// its keys (metadata/accesskeys.go): a create repeated with the same
// secret answers the key, allow and deny are set operations, a grant only
// on a bucket that exists.

func (f *fakeMetad) CreateAccessKey(ctx context.Context, r *pb.CreateAccessKeyRequest) (*pb.CreateAccessKeyResponse, error) {
	f.record(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.keys == nil:
		return f.UnimplementedMetadataServer.CreateAccessKey(ctx, r)
	case f.err != nil:
		return nil, metaerr.ToStatus(f.err)
	}
	if k, ok := f.keys[r.GetId()]; ok {
		if k.GetSecret() == r.GetSecret() {
			return &pb.CreateAccessKeyResponse{Key: k}, nil
		}
		return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrAccessKeyExists, "access key %q", r.GetId()))
	}
	k := &pb.AccessKey{Id: r.GetId(), Secret: r.GetSecret(), Name: r.GetName(), CreatedUnixNano: testNow.UnixNano(), CreateBuckets: r.GetCreateBuckets(),
		ExpiresUnixNano: r.GetExpiresUnixNano()}
	f.keys[k.Id] = k
	return &pb.CreateAccessKeyResponse{Key: k}, nil
}

func (f *fakeMetad) UpdateAccessKey(ctx context.Context, r *pb.UpdateAccessKeyRequest) (*pb.UpdateAccessKeyResponse, error) {
	f.record(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.keys == nil:
		return f.UnimplementedMetadataServer.UpdateAccessKey(ctx, r)
	case f.err != nil:
		return nil, metaerr.ToStatus(f.err)
	}
	old, ok := f.keys[r.GetId()]
	if !ok {
		return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchAccessKey, "access key %q", r.GetId()))
	}
	k := proto.CloneOf(old)
	if r.CreateBuckets != nil {
		k.CreateBuckets = r.GetCreateBuckets()
	}
	if r.ExpiresUnixNano != nil {
		k.ExpiresUnixNano = r.GetExpiresUnixNano()
	}
	if b := r.GetBucket(); b != "" {
		allow, deny := r.GetAllow(), r.GetDeny()
		if (allow.GetRead() || allow.GetWrite() || allow.GetOwner()) && f.findBucket(b) == nil {
			return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %s", b))
		}
		g := k.GetGrants()[b]
		if g == nil {
			g = &pb.BucketGrant{}
		}
		g.Read = (g.Read || allow.GetRead()) && !deny.GetRead()
		g.Write = (g.Write || allow.GetWrite()) && !deny.GetWrite()
		g.Owner = (g.Owner || allow.GetOwner()) && !deny.GetOwner()
		if g.Read || g.Write || g.Owner {
			if k.Grants == nil {
				k.Grants = map[string]*pb.BucketGrant{}
			}
			k.Grants[b] = g
		} else {
			delete(k.Grants, b)
		}
	}
	f.keys[k.Id] = k
	return &pb.UpdateAccessKeyResponse{Key: k}, nil
}

func (f *fakeMetad) DeleteAccessKey(ctx context.Context, r *pb.DeleteAccessKeyRequest) (*pb.DeleteAccessKeyResponse, error) {
	f.record(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.keys == nil:
		return f.UnimplementedMetadataServer.DeleteAccessKey(ctx, r)
	case f.err != nil:
		return nil, metaerr.ToStatus(f.err)
	}
	if _, ok := f.keys[r.GetId()]; !ok {
		return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchAccessKey, "access key %q", r.GetId()))
	}
	delete(f.keys, r.GetId())
	return &pb.DeleteAccessKeyResponse{}, nil
}

func (f *fakeMetad) GetAccessKey(ctx context.Context, r *pb.GetAccessKeyRequest) (*pb.GetAccessKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		return f.UnimplementedMetadataServer.GetAccessKey(ctx, r)
	}
	k, ok := f.keys[r.GetId()]
	if !ok {
		return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchAccessKey, "access key %q", r.GetId()))
	}
	return &pb.GetAccessKeyResponse{Key: k}, nil
}

// ListAccessKeys answers in id order, without secrets, as metad does.
func (f *fakeMetad) ListAccessKeys(ctx context.Context, r *pb.ListAccessKeysRequest) (*pb.ListAccessKeysResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		return f.UnimplementedMetadataServer.ListAccessKeys(ctx, r)
	}
	resp := &pb.ListAccessKeysResponse{}
	for _, id := range slices.Sorted(maps.Keys(f.keys)) {
		k := proto.CloneOf(f.keys[id])
		k.Secret = ""
		resp.Keys = append(resp.Keys, k)
	}
	return resp, nil
}

const backupSecret = "backup-Secret-1"

// withKeys gives the fake three buckets and two keys: backup reads logs
// and writes photos; web-app owns site and may create buckets.
func withKeys(f *fakeMetad) {
	f.buckets = []*pb.Bucket{{Name: "logs"}, {Name: "photos"}, {Name: "site"}}
	f.keys = map[string]*pb.AccessKey{
		"CKWEB": {Id: "CKWEB", Secret: "web-Secret-22", Name: "web-app", CreatedUnixNano: testNow.UnixNano(), CreateBuckets: true,
			Grants: map[string]*pb.BucketGrant{"site": {Read: true, Write: true, Owner: true}}},
		"CKBACKUP": {Id: "CKBACKUP", Secret: backupSecret, Name: "backup", CreatedUnixNano: testNow.Add(-time.Hour).UnixNano(),
			Grants: map[string]*pb.BucketGrant{"photos": {Read: true, Write: true}, "logs": {Read: true}}},
	}
}

// noKeys is a metad that serves access keys and has none.
func noKeys(f *fakeMetad) { f.keys = map[string]*pb.AccessKey{} }

// generated checks that create sent an id and secret of the generated
// shapes, and printed both (and, for people, the lines for S3 clients).
func generated(createBuckets bool) check {
	return func(t *testing.T, f *fakeMetad, r result) {
		req, ok := f.last().(*pb.CreateAccessKeyRequest)
		if !ok {
			t.Fatalf("last request %v, want CreateAccessKey", f.last())
		}
		if !regexp.MustCompile(`^CK[A-Z2-7]{18}$`).MatchString(req.GetId()) {
			t.Errorf("generated id %q: want CK and 18 base32 characters", req.GetId())
		}
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{40}$`).MatchString(req.GetSecret()) {
			t.Errorf("generated secret %q: want 40 characters of URL-safe base64", req.GetSecret())
		}
		if req.GetName() != "backup" || req.GetCreateBuckets() != createBuckets {
			t.Errorf("request %v: want name backup, create_buckets %v", req, createBuckets)
		}
		var v keyView
		if json.Unmarshal([]byte(r.stdout), &v) == nil { // --json
			if v.ID != req.GetId() || v.Secret != req.GetSecret() || v.Name != "backup" || v.CreateBuckets != createBuckets || !v.Created.Equal(testNow) {
				t.Errorf("create --json = %+v; request %v", v, req)
			}
			return
		}
		for _, want := range []string{
			"created access key " + req.GetId() + " (backup)\n",
			"\naccess key  " + req.GetId() + "\nsecret key  " + req.GetSecret() + "\n",
			"\n  AWS_ACCESS_KEY_ID=" + req.GetId() + " AWS_SECRET_ACCESS_KEY=" + req.GetSecret() + "\n",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
	}
}

// lacks checks that the output does not contain s (a secret).
func lacks(s string) check {
	return func(t *testing.T, f *fakeMetad, r result) {
		if strings.Contains(r.stdout, s) {
			t.Errorf("stdout has %q:\n%s", s, r.stdout)
		}
	}
}

// has checks that the output, with --json too, contains s.
func has(s string) check {
	return func(t *testing.T, f *fakeMetad, r result) {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
}

// wantGrants checks the fake's key id after the command.
func wantGrants(id string, createBuckets bool, grants map[string]*pb.BucketGrant) check {
	return func(t *testing.T, f *fakeMetad, r result) {
		f.mu.Lock()
		defer f.mu.Unlock()
		k := f.keys[id]
		want := &pb.AccessKey{CreateBuckets: createBuckets, Grants: grants}
		got := &pb.AccessKey{CreateBuckets: k.GetCreateBuckets(), Grants: k.GetGrants()}
		if !proto.Equal(got, want) {
			t.Errorf("key %s: %v, want %v", id, got, want)
		}
	}
}

func TestKeyCommands(t *testing.T) {
	rw := &pb.BucketGrant{Read: true, Write: true}
	r := &pb.BucketGrant{Read: true}
	all := &pb.BucketGrant{Read: true, Write: true, Owner: true}
	runCmdCases(t, []cmdCase{
		{name: "create generated", fake: noKeys, args: []string{"key", "create", "backup"},
			stdout: "it may use no bucket yet: `cairn key allow CK",
			checks: []check{generated(false)}},
		{name: "create generated may create buckets", fake: noKeys, args: []string{"key", "create", "backup", "--create-bucket"},
			stdout: "it may create buckets and owns those it creates;",
			checks: []check{generated(true)}},
		{name: "create given", fake: noKeys, args: []string{"key", "create", "web app", "--access-key", "webapp01", "--secret-key", "s3cr3t/+=Pass"},
			stdout: "created access key webapp01 (web app)\n" +
				"access key  webapp01\n" +
				"secret key  s3cr3t/+=Pass\n" +
				"store the secret key now: only `cairn key show webapp01 --show-secret` prints it again\n" +
				"for S3 clients:\n" +
				"  AWS_ACCESS_KEY_ID=webapp01 AWS_SECRET_ACCESS_KEY=s3cr3t/+=Pass\n" +
				"it may use no bucket yet: `cairn key allow webapp01 BUCKET --read --write` grants one\n",
			checks: []check{wantReq(&pb.CreateAccessKeyRequest{Id: "webapp01", Secret: "s3cr3t/+=Pass", Name: "web app"}), has(`s3cr3t/+=Pass`)}},
		{name: "create id without secret", fake: noKeys, args: []string{"key", "create", "backup", "--access-key", "backup01"}, code: 1,
			stderr: "cairn: --access-key and --secret-key go together: give both, or neither to have them generated\n", notJSON: true,
			checks: []check{wantReq(nil)}},
		{name: "create secret without id", fake: noKeys, args: []string{"key", "create", "backup", "--secret-key", "s3cr3tPass"}, code: 1,
			stderr: "cairn: --access-key and --secret-key go together", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "create bad id", fake: noKeys, args: []string{"key", "create", "backup", "--access-key", "web-app", "--secret-key", "s3cr3tPass"}, code: 1,
			stderr: "cairn: --access-key: access key id \"web-app\": an id is 3..128 letters and digits\n", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "create short id", fake: noKeys, args: []string{"key", "create", "backup", "--access-key", "ab", "--secret-key", "s3cr3tPass"}, code: 1,
			stderr: "an id is 3..128 letters and digits", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "create short secret", fake: noKeys, args: []string{"key", "create", "backup", "--access-key", "backup01", "--secret-key", "s3cr3t"}, code: 1,
			stderr: "cairn: --secret-key: a secret key is 8..128 printable ASCII characters without spaces\n", notJSON: true, checks: []check{wantReq(nil), lacks("s3cr3t")}},
		{name: "create secret with a space", fake: noKeys, args: []string{"key", "create", "backup", "--access-key", "backup01", "--secret-key", "s3cr3t pass"}, code: 1,
			stderr: "without spaces", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "create existing id", fake: withKeys, args: []string{"key", "create", "backup", "--access-key", "CKBACKUP", "--secret-key", "other-secret"}, code: 1,
			stderr: "cairn: access key \"CKBACKUP\" already exists (with another secret key)\n", notJSON: true},
		{name: "create on an old metad", args: []string{"key", "create", "backup"}, code: 1,
			stderr: "does not serve CreateAccessKey yet (it is older than this cairn); upgrade metad", notJSON: true},
		{name: "create before every metad is upgraded", fake: func(f *fakeMetad) {
			noKeys(f)
			f.err = metaerr.Detailed(metaerr.ErrUpgradeRequired, "CreateAccessKey needs every metad member at feature level 2; m3 is at 1: upgrade it first")
		}, args: []string{"key", "create", "backup"}, code: 1,
			stderr: "cairn: CreateAccessKey needs every metad member at feature level 2; m3 is at 1: upgrade it first: UpgradeRequired\n", notJSON: true},

		{name: "list", fake: withKeys, args: []string{"key", "list"},
			stdout: "ID        NAME     CREATED               EXPIRES  CREATE-BUCKETS  BUCKETS\n" +
				"CKBACKUP  backup   2026-11-25T11:00:00Z  never    no              logs:r, photos:rw\n" +
				"CKWEB     web-app  2026-11-25T12:00:00Z  never    yes             site:rwo\n",
			checks: []check{lacks(backupSecret), has(`CKBACKUP`)}},
		{name: "list with an expired key", fake: func(f *fakeMetad) {
			withKeys(f)
			f.keys["CKWEB"].ExpiresUnixNano = testNow.Add(-time.Hour).UnixNano()
			f.keys["CKBACKUP"].ExpiresUnixNano = testNow.Add(time.Hour).UnixNano()
		}, args: []string{"key", "list"},
			stdout: "ID        NAME     CREATED               EXPIRES                         CREATE-BUCKETS  BUCKETS\n" +
				"CKBACKUP  backup   2026-11-25T11:00:00Z  2026-11-25T13:00:00Z            no              logs:r, photos:rw\n" +
				"CKWEB     web-app  2026-11-25T12:00:00Z  2026-11-25T11:00:00Z (expired)  yes             site:rwo\n"},
		{name: "list empty", fake: noKeys, args: []string{"key", "list"}, stdout: "no access keys (`cairn key create NAME` makes one)\n"},

		{name: "create expiring", fake: noKeys, args: []string{"key", "create", "ci", "--access-key", "ci01", "--secret-key", "s3cr3tPass", "--expires", "2030-01-31"},
			stdout: "expires     2030-01-31T00:00:00Z",
			checks: []check{wantReq(&pb.CreateAccessKeyRequest{Id: "ci01", Secret: "s3cr3tPass", Name: "ci", ExpiresUnixNano: time.Date(2030, 1, 31, 0, 0, 0, 0, time.UTC).UnixNano()})}},
		{name: "create expiring in a duration", fake: noKeys, args: []string{"key", "create", "ci", "--access-key", "ci01", "--secret-key", "s3cr3tPass", "--expires", "720h"},
			stdout: "expires     2026-12-25T12:00:00Z",
			checks: []check{wantReq(&pb.CreateAccessKeyRequest{Id: "ci01", Secret: "s3cr3tPass", Name: "ci", ExpiresUnixNano: testNow.Add(720 * time.Hour).UnixNano()})}},
		{name: "create expiring in the past", fake: noKeys, args: []string{"key", "create", "ci", "--expires", "2020-01-01"}, code: 1,
			stderr: "cairn: --expires: expiry 2020-01-01T00:00:00Z is not in the future\n", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "create expiring garbage", fake: noKeys, args: []string{"key", "create", "ci", "--expires", "soon"}, code: 1,
			stderr: "cairn: --expires: expiry \"soon\" is neither a duration", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "expire on a date", fake: withKeys, args: []string{"key", "expire", "CKBACKUP", "2030-01-31T12:00:00Z"},
			stdout: "access key CKBACKUP (backup) expires: 2030-01-31T12:00:00Z; gateways apply it within a few seconds\n",
			checks: []check{wantReq(&pb.UpdateAccessKeyRequest{Id: "CKBACKUP", ExpiresUnixNano: proto.Int64(time.Date(2030, 1, 31, 12, 0, 0, 0, time.UTC).UnixNano())})}},
		{name: "expire never", fake: withKeys, args: []string{"key", "expire", "CKBACKUP", "never"},
			stdout: "access key CKBACKUP (backup) expires: never;",
			checks: []check{wantReq(&pb.UpdateAccessKeyRequest{Id: "CKBACKUP", ExpiresUnixNano: proto.Int64(0)})}},
		{name: "expire now", fake: withKeys, args: []string{"key", "expire", "CKBACKUP", "now"},
			stdout: "expires: 2026-11-25T12:00:01Z;",
			checks: []check{wantReq(&pb.UpdateAccessKeyRequest{Id: "CKBACKUP", ExpiresUnixNano: proto.Int64(testNow.Add(time.Second).UnixNano())})}},
		{name: "expire missing", fake: withKeys, args: []string{"key", "expire", "CKNOPE", "24h"}, code: 1,
			stderr: "cairn: no access key \"CKNOPE\" (`cairn key list` shows the keys)\n", notJSON: true},

		{name: "show", fake: withKeys, args: []string{"key", "show", "CKBACKUP"},
			stdout: "id              CKBACKUP\n" +
				"name            backup\n" +
				"created         2026-11-25T11:00:00Z\n" +
				"expires         never\n" +
				"secret key      hidden (--show-secret prints it)\n" +
				"create buckets  no\n" +
				"buckets         logs    read\n" +
				"                photos  read, write\n",
			checks: []check{lacks(backupSecret)}},
		{name: "show secret", fake: withKeys, args: []string{"key", "show", "CKBACKUP", "--show-secret"},
			stdout: "id              CKBACKUP\n" +
				"name            backup\n" +
				"created         2026-11-25T11:00:00Z\n" +
				"expires         never\n" +
				"secret key      " + backupSecret + "\n" +
				"create buckets  no\n" +
				"buckets         logs    read\n" +
				"                photos  read, write\n",
			checks: []check{has(backupSecret)}},
		{name: "show missing", fake: withKeys, args: []string{"key", "show", "CKNOPE"}, code: 1,
			stderr: "cairn: no access key \"CKNOPE\" (`cairn key list` shows the keys)\n", notJSON: true},

		{name: "allow", fake: withKeys, args: []string{"key", "allow", "CKBACKUP", "site", "--read", "--write"},
			stdout: "access key CKBACKUP (backup):\n" +
				"create buckets  no\n" +
				"buckets         logs    read\n" +
				"                photos  read, write\n" +
				"                site    read, write\n",
			checks: []check{wantReq(&pb.UpdateAccessKeyRequest{Id: "CKBACKUP", Bucket: "site", Allow: rw}), lacks(backupSecret),
				wantGrants("CKBACKUP", false, map[string]*pb.BucketGrant{"logs": r, "photos": rw, "site": rw})}},
		{name: "allow owner adds", fake: withKeys, args: []string{"key", "allow", "CKBACKUP", "photos", "--owner"},
			stdout: "                photos  read, write, owner",
			checks: []check{wantReq(&pb.UpdateAccessKeyRequest{Id: "CKBACKUP", Bucket: "photos", Allow: &pb.BucketGrant{Owner: true}}),
				wantGrants("CKBACKUP", false, map[string]*pb.BucketGrant{"logs": r, "photos": all})}},
		{name: "allow create-bucket", fake: withKeys, args: []string{"key", "allow", "CKBACKUP", "--create-bucket"},
			stdout: "access key CKBACKUP (backup):\n" +
				"create buckets  yes\n" +
				"buckets         logs    read\n" +
				"                photos  read, write\n",
			checks: []check{wantReq(&pb.UpdateAccessKeyRequest{Id: "CKBACKUP", CreateBuckets: proto.Bool(true)}),
				wantGrants("CKBACKUP", true, map[string]*pb.BucketGrant{"logs": r, "photos": rw})}},
		{name: "allow nothing", fake: withKeys, args: []string{"key", "allow", "CKBACKUP", "site"}, code: 1,
			stderr: "cairn: say what CKBACKUP may do in bucket site: --read, --write and/or --owner\n", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "allow without bucket", fake: withKeys, args: []string{"key", "allow", "CKBACKUP", "--read"}, code: 1,
			stderr: "cairn: --read, --write and --owner need a BUCKET: cairn key allow ID BUCKET --read ...\n", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "allow neither bucket nor create-bucket", fake: withKeys, args: []string{"key", "allow", "CKBACKUP"}, code: 1,
			stderr: "cairn: give a BUCKET (cairn key allow ID BUCKET ...) or --create-bucket\n", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "allow missing bucket", fake: withKeys, args: []string{"key", "allow", "CKBACKUP", "nope", "--read"}, code: 1,
			stderr: "cairn: bucket \"nope\" does not exist (`cairn bucket list` shows the buckets)\n", notJSON: true},
		{name: "allow missing key", fake: withKeys, args: []string{"key", "allow", "CKNOPE", "logs", "--read"}, code: 1,
			stderr: "cairn: no access key \"CKNOPE\" (`cairn key list` shows the keys)\n", notJSON: true},

		{name: "deny all", fake: withKeys, args: []string{"key", "deny", "CKBACKUP", "photos"},
			stdout: "access key CKBACKUP (backup):\n" +
				"create buckets  no\n" +
				"buckets         logs  read\n",
			checks: []check{wantReq(&pb.UpdateAccessKeyRequest{Id: "CKBACKUP", Bucket: "photos", Deny: all}),
				wantGrants("CKBACKUP", false, map[string]*pb.BucketGrant{"logs": r})}},
		{name: "deny write", fake: withKeys, args: []string{"key", "deny", "CKWEB", "site", "--write"},
			stdout: "access key CKWEB (web-app):\n" +
				"create buckets  yes\n" +
				"buckets         site  read, owner\n",
			checks: []check{wantReq(&pb.UpdateAccessKeyRequest{Id: "CKWEB", Bucket: "site", Deny: &pb.BucketGrant{Write: true}})}},
		{name: "deny the last", fake: withKeys, args: []string{"key", "deny", "CKBACKUP", "logs", "--read"},
			stdout: "access key CKBACKUP (backup):\n" +
				"create buckets  no\n" +
				"buckets         photos  read, write\n",
			checks: []check{wantGrants("CKBACKUP", false, map[string]*pb.BucketGrant{"photos": rw})}},
		{name: "deny create-bucket", fake: withKeys, args: []string{"key", "deny", "CKWEB", "--create-bucket"},
			stdout: "access key CKWEB (web-app):\ncreate buckets  no\nbuckets         site  read, write, owner\n",
			checks: []check{wantReq(&pb.UpdateAccessKeyRequest{Id: "CKWEB", CreateBuckets: proto.Bool(false)})}},
		{name: "deny create-bucket to a key without buckets", fake: func(f *fakeMetad) {
			withKeys(f)
			f.keys["CKWEB"].Grants = nil
		}, args: []string{"key", "deny", "CKWEB", "--create-bucket"},
			stdout: "access key CKWEB (web-app):\ncreate buckets  no\nbuckets         none\n"},
		{name: "deny neither bucket nor create-bucket", fake: withKeys, args: []string{"key", "deny", "CKWEB"}, code: 1,
			stderr: "cairn: give a BUCKET (cairn key deny ID BUCKET ...) or --create-bucket\n", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "deny missing key", fake: withKeys, args: []string{"key", "deny", "CKNOPE", "logs"}, code: 1,
			stderr: "cairn: no access key \"CKNOPE\"", notJSON: true},

		{name: "delete", fake: withKeys, args: []string{"key", "delete", "CKWEB"},
			stdout: "deleted access key CKWEB; gateways refuse it within a few seconds\n",
			checks: []check{wantReq(&pb.DeleteAccessKeyRequest{Id: "CKWEB"}), func(t *testing.T, f *fakeMetad, r result) {
				if _, ok := f.keys["CKWEB"]; ok || len(f.keys) != 1 {
					t.Errorf("keys after delete: %v", f.keys)
				}
			}}},
		{name: "delete missing", fake: withKeys, args: []string{"key", "delete", "CKNOPE"}, code: 1,
			stderr: "cairn: no access key \"CKNOPE\" (`cairn key list` shows the keys)\n", notJSON: true},
	})
}

// The --json shapes: secrets only from create and show --show-secret,
// grants by bucket.
func TestKeyJSON(t *testing.T) {
	f := busyCluster()
	withKeys(f)
	addr := serve(t, f)
	cliJSON := func(v any, args ...string) {
		t.Helper()
		r := runCLI(t, nil, append(args, "--json", "--metad", addr)...)
		if r.code != 0 {
			t.Fatalf("cairn %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("cairn %s --json: %v\n%s", strings.Join(args, " "), err, r.stdout)
		}
	}
	var keys []keyView
	cliJSON(&keys, "key", "list")
	want := []keyView{
		{ID: "CKBACKUP", Name: "backup", Created: testNow.Add(-time.Hour), Grants: map[string]grantView{"logs": {Read: true}, "photos": {Read: true, Write: true}}},
		{ID: "CKWEB", Name: "web-app", Created: testNow, CreateBuckets: true, Grants: map[string]grantView{"site": {Read: true, Write: true, Owner: true}}},
	}
	if !slices.EqualFunc(keys, want, keyViewEqual) {
		t.Fatalf("key list --json = %+v\nwant %+v", keys, want)
	}

	var k keyView
	cliJSON(&k, "key", "show", "CKBACKUP")
	if !keyViewEqual(k, want[0]) {
		t.Fatalf("key show --json = %+v", k)
	}
	k = keyView{}
	cliJSON(&k, "key", "show", "CKBACKUP", "--show-secret")
	withSecret := want[0]
	withSecret.Secret = backupSecret
	if !keyViewEqual(k, withSecret) {
		t.Fatalf("key show --show-secret --json = %+v", k)
	}
	k = keyView{}
	cliJSON(&k, "key", "allow", "CKWEB", "logs", "--read")
	if k.Secret != "" || k.Grants["logs"] != (grantView{Read: true}) || len(k.Grants) != 2 {
		t.Fatalf("key allow --json = %+v", k)
	}

	// Field names are the CLI's own, snake_case.
	r := runCLI(t, nil, "key", "show", "CKWEB", "--show-secret", "--json", "--metad", addr)
	for _, field := range []string{`"id": "CKWEB"`, `"secret": "web-Secret-22"`, `"created": "2026-11-25T12:00:00Z"`, `"create_buckets": true`, `"grants": {`, `"owner": true`} {
		if !strings.Contains(r.stdout, field) {
			t.Errorf("key show --json lacks %s:\n%s", field, r.stdout)
		}
	}
}

func keyViewEqual(a, b keyView) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Secret == b.Secret && a.Created.Equal(b.Created) &&
		a.CreateBuckets == b.CreateBuckets && maps.Equal(a.Grants, b.Grants)
}

func TestKeyGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, secret := newKeyID(), newKeySecret()
		if len(id) != 20 || pb.CheckAccessKeyID(id) != nil || len(secret) != 40 || pb.CheckAccessKeySecret(secret) != nil {
			t.Fatalf("generated %q, %q", id, secret)
		}
		if seen[id] || seen[secret] {
			t.Fatalf("generated %q or %q twice", id, secret)
		}
		seen[id], seen[secret] = true, true
	}
}
