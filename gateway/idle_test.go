package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairnstore/cairn/gateway"
)

// TestBodyIdleTimeout: a client that stops sending its PUT body while it
// keeps the connection open gets 400 RequestTimeout once no byte came for
// BodyIdleTimeout, and no object; one that sends slowly but steadily, each
// piece within the timeout, is served.
func TestBodyIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: f}, func(c *gateway.Config) { c.BodyIdleTimeout = idle })
	c := e.awsClient(t)
	mkBucket(t, c, "idle")

	put := func(key string, pieces int, pause time.Duration, stopAfter int) *http.Response {
		t.Helper()
		const piece = 64 << 10
		req, err := http.NewRequest(http.MethodPut, e.url+"/idle/"+key, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Length", fmt.Sprint(pieces*piece))
		signWithSecret(req, "UNSIGNED-PAYLOAD", testSecret)
		conn := sendHead(t, e, req)
		for i := range pieces {
			if i == stopAfter {
				break // the client goes quiet, the connection stays open
			}
			if i > 0 {
				time.Sleep(pause) // a slow client: the scenario, not a wait
			}
			if _, err := conn.Write(bytes.Repeat([]byte{byte(i)}, piece)); err != nil {
				t.Fatal(err)
			}
		}
		if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			t.Fatalf("%s: no answer: %v", key, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := put("quiet", 16, 0, 3)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "<Code>RequestTimeout</Code>") {
		t.Fatalf("client quiet mid-body: %d %s, want 400 RequestTimeout", resp.StatusCode, b)
	}
	_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("idle"), Key: aws.String("quiet")})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Fatalf("HEAD of the abandoned upload: %v, want NotFound", err)
	}

	resp = put("slow", 6, idle/3, -1)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("slow but steady client: %d %s, want 200", resp.StatusCode, b)
	}
}
