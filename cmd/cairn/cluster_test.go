package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/internal/testcluster"
	"github.com/cairnstore/cairn/object"
)

// The admin CLI against a real in-process cluster (3 metad, 6 blob nodes).
func TestAgainstCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	metad := strings.Join(c.MetaAddrs(), ",")
	env := map[string]string{"CAIRN_METAD": metad}
	cli := func(args ...string) result {
		t.Helper()
		r := runCLI(t, env, args...)
		if r.code != 0 {
			t.Fatalf("cairn %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r
	}
	cliJSON := func(v any, args ...string) {
		t.Helper()
		r := cli(append(args, "--json")...)
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("cairn %s --json: %v\n%s", strings.Join(args, " "), err, r.stdout)
		}
	}

	r := cli("status")
	for _, want := range []string{"metad       leader metad-", "3 members (3 voters)", "blob nodes  6: 6 up"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	var st statusView
	cliJSON(&st, "status")
	if st.Metad == nil || st.Metad.LeaderID == "" || len(st.Metad.Members) != 3 || st.Nodes == nil || st.Nodes.Total != 6 || st.Nodes.CapacityBytes != 6<<30 {
		t.Fatalf("status --json: %+v / %+v", st.Metad, st.Nodes)
	}

	var nodes []nodeView
	cliJSON(&nodes, "node", "list")
	if len(nodes) != 6 {
		t.Fatalf("node list: %d nodes", len(nodes))
	}
	for _, n := range nodes {
		if n.State != "up" || n.Zone == "" || n.Address == "" || n.CapacityBytes != 1<<30 {
			t.Errorf("node %+v", n)
		}
	}
	if r := cli("node", "show", nodes[0].ID); !strings.Contains(r.stdout, "state      up\n") {
		t.Errorf("node show %s:\n%s", nodes[0].ID, r.stdout)
	}

	cli("bucket", "create", "photos")
	var buckets []bucketView
	cliJSON(&buckets, "bucket", "list")
	if len(buckets) != 1 || buckets[0].Name != "photos" || buckets[0].Created.IsZero() {
		t.Fatalf("bucket list: %+v", buckets)
	}
	if r := runCLI(t, env, "bucket", "create", "photos"); r.code != 1 || r.stderr != "cairn: bucket \"photos\" already exists\n" {
		t.Fatalf("bucket create again: %d %q", r.code, r.stderr)
	}

	var m metadView
	cliJSON(&m, "metad", "members")
	var target string
	for _, mm := range m.Members {
		if !mm.Leader && target == "" {
			target = mm.ID
		}
	}
	if r := cli("metad", "transfer-leader", target); r.stdout != fmt.Sprintf("leader is now %s\n", target) {
		t.Fatalf("transfer-leader %s: %q", target, r.stdout)
	}
	testcluster.WaitFor(t, testcluster.ReadyTimeout, "members to report the new leader", func() error {
		var m metadView
		cliJSON(&m, "metad", "members")
		i := slices.IndexFunc(m.Members, func(mm memberView) bool { return mm.Leader })
		if m.LeaderID != target || i < 0 || m.Members[i].ID != target {
			return fmt.Errorf("leader %q", m.LeaderID)
		}
		return nil
	})
	// Writes follow the new leader.
	cli("bucket", "create", "logs")
	cli("bucket", "delete", "photos")
	cliJSON(&buckets, "bucket", "list")
	if len(buckets) != 1 || buckets[0].Name != "logs" {
		t.Fatalf("bucket list after transfer: %+v", buckets)
	}

	// A published prefix is readable without a signature through a
	// gateway; the rest of the bucket, and all of it after the policy is
	// deleted, is not.
	cli("bucket", "create", "site")
	store := c.ObjectStore(t, object.Config{})
	for _, k := range []string{"public/index.html", "drafts/next.html"} {
		if _, err := store.Put(context.Background(), "site", k, strings.NewReader("page "+k), int64(len("page "+k)), object.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	gw := c.StartGateway(t, gateway.Config{})
	anonGet := func(key string) int {
		t.Helper()
		resp, err := http.Get(gw.URL() + "/site/" + key)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := anonGet("public/index.html"); st != http.StatusForbidden {
		t.Fatalf("anonymous GET before publish: %d", st)
	}
	cli("bucket", "publish", "site", "--prefix", "public/")
	cliJSON(&buckets, "bucket", "list")
	if i := slices.IndexFunc(buckets, func(b bucketView) bool { return b.Name == "site" }); i < 0 || !buckets[i].Anonymous {
		t.Fatalf("bucket list after publish: %+v", buckets)
	}
	// The gateway holds what it read of a policy: a refusal is decided
	// again from metad once that is 250 ms old, an allowance once it is
	// the access key TTL old.
	awaitAnon := func(key string, want int, within time.Duration) {
		t.Helper()
		testcluster.WaitFor(t, within, fmt.Sprintf("anonymous GET %s to answer %d after the policy changed", key, want), func() error {
			if st := anonGet(key); st != want {
				return fmt.Errorf("status %d", st)
			}
			return nil
		})
	}
	awaitAnon("public/index.html", http.StatusOK, 2*time.Second)
	if st := anonGet("drafts/next.html"); st != http.StatusForbidden {
		t.Fatalf("anonymous GET of an unpublished key after publish: %d", st)
	}
	cli("bucket", "policy", "delete", "site")
	awaitAnon("public/index.html", http.StatusForbidden, 2*gateway.DefaultAccessKeyTTL)

	// An access key: created, granted a bucket, listed without its
	// secret, deleted.
	var k keyView
	cliJSON(&k, "key", "create", "backup")
	if len(k.ID) != 20 || len(k.Secret) != 40 || k.Name != "backup" || k.Created.IsZero() {
		t.Fatalf("key create: %+v", k)
	}
	cli("key", "allow", k.ID, "logs", "--read", "--write")
	if r := runCLI(t, env, "key", "allow", k.ID, "nope", "--read"); r.code != 1 || r.stderr != "cairn: bucket \"nope\" does not exist (`cairn bucket list` shows the buckets)\n" {
		t.Fatalf("key allow on a missing bucket: %d %q", r.code, r.stderr)
	}
	var keys []keyView
	cliJSON(&keys, "key", "list")
	if len(keys) != 1 || keys[0].ID != k.ID || keys[0].Secret != "" || len(keys[0].Grants) != 1 || keys[0].Grants["logs"] != (grantView{Read: true, Write: true}) {
		t.Fatalf("key list: %+v", keys)
	}
	if r := cli("key", "show", k.ID, "--show-secret"); !strings.Contains(r.stdout, "secret key      "+k.Secret+"\n") {
		t.Fatalf("key show --show-secret:\n%s", r.stdout)
	}
	cli("key", "delete", k.ID)
	if r := runCLI(t, env, "key", "show", k.ID); r.code != 1 || r.stderr != fmt.Sprintf("cairn: no access key %q (`cairn key list` shows the keys)\n", k.ID) {
		t.Fatalf("key show after delete: %d %q", r.code, r.stderr)
	}
}
