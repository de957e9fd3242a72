package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/internal/testcluster"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// TestClusterBodyIdleTimeout: through the real object layer, a client
// that goes quiet mid-body gets 400 RequestTimeout and leaves no object,
// whether it stops inside a segment or exactly at a segment's end (where
// the encoder's look past the segment is the read that waits; net/http
// cancels the request's context as that read fails, which once turned
// the answer into 503 "too few blob nodes").
func TestClusterBodyIdleTimeout(t *testing.T) {
	const segment = 1 << 20
	c := testcluster.New(t, testcluster.Config{Meta: 1, Blob: 6, Quiet: true, Object: object.Config{SegmentSize: segment}})
	srv := c.StartGateway(t, gateway.Config{Credentials: gateway.Credentials{AccessKey: testAccess, SecretKey: testSecret},
		BodyIdleTimeout: 300 * time.Millisecond})
	u, _ := url.Parse(srv.URL())
	e := &env{url: srv.URL(), host: u.Host}
	meta := c.MetaClient(t)
	if _, err := meta.CreateBucket(context.Background(), &pb.CreateBucketRequest{Name: "idle"}); err != nil {
		t.Fatal(err)
	}
	for _, sent := range []int{100 << 10, segment, 2 * segment} {
		key := fmt.Sprintf("quiet-after-%d", sent)
		t.Run(key, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, e.url+"/idle/"+key, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Length", fmt.Sprint(3*segment))
			signWithSecret(req, "UNSIGNED-PAYLOAD", testSecret)
			conn := sendHead(t, e, req)
			if _, err := conn.Write(bytes.Repeat([]byte{7}, sent)); err != nil {
				t.Fatal(err)
			}
			// The client goes quiet with the connection open.
			if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "<Code>RequestTimeout</Code>") {
				t.Fatalf("client quiet after %d bytes: %d %s, want 400 RequestTimeout", sent, resp.StatusCode, b)
			}
			if _, err := meta.GetObject(context.Background(), &pb.GetObjectRequest{Bucket: "idle", Key: key}); err == nil {
				t.Fatalf("an object %s was stored", key)
			}
		})
	}
}
