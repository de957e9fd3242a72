package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairnstore/cairn/gateway/sigv4"
)

// TestExpectContinueEarlyError: a PUT sent with "Expect: 100-continue"
// that fails before its body is wanted (no such bucket, a bad signature, a
// failed precondition) must be answered at once, without the client
// sending its body. botocore (aws CLI, boto3) sends every upload this way,
// waits up to a second for an answer, then sends the body anyway — except
// on a fresh TLS connection, where a TLS 1.3 session ticket makes it think
// the answer has come and block on reading it, so `aws s3 cp` to a missing
// bucket over https hung until its 60 s read timeout, four times over.
//
// Found by clients/awscli_test.go. The cause was the access-log middleware
// replacing r.Body on net/http's own *Request: net/http then no longer saw
// its expectContinueReader and, to reuse the connection, tried to read and
// discard the body the client was never asked for.
func TestExpectContinueEarlyError(t *testing.T) {
	e := startFakeGateway(t)
	c := e.awsClient(t)
	mkBucket(t, c, "expect")
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("expect"), Key: aws.String("exists"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		path       string
		secret     string
		header     map[string]string
		wantStatus int
		wantCode   string
	}{
		{name: "no such bucket", path: "/nobucket/key", secret: testSecret, wantStatus: 404, wantCode: "NoSuchBucket"},
		{name: "bad signature", path: "/expect/key", secret: "wrong-secret", wantStatus: 403, wantCode: "SignatureDoesNotMatch"},
		{name: "if-none-match", path: "/expect/exists", secret: testSecret, header: map[string]string{"If-None-Match": "*"}, wantStatus: 412, wantCode: "PreconditionFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const bodyLen = 1 << 20
			req, err := http.NewRequest(http.MethodPut, e.url+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			req.Header.Set("Content-Length", fmt.Sprint(bodyLen))
			req.Header.Set("Expect", "100-continue")
			signWithSecret(req, "UNSIGNED-PAYLOAD", tt.secret)

			conn := sendHead(t, e, req)
			// Headers only: the body is never sent.
			if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), req)
			if err != nil {
				t.Fatalf("no answer without the body (the gateway waits for a body it never asked for): %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(b), "<Code>"+tt.wantCode+"</Code>") {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, b, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

// signWithSecret signs req as the test access key with secret.
func signWithSecret(req *http.Request, payload, secret string) {
	sigv4.Signer{AccessKey: testAccess, SecretKey: secret}.Sign(req, payload, time.Now())
}

// sendHead opens a connection to the gateway and writes req's request line
// and headers, nothing more: the test sends the body, or not, itself. The
// connection closes when the test ends.
func sendHead(t *testing.T, e *env, req *http.Request) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", e.host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), e.host)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatal(err)
	}
	return conn
}
