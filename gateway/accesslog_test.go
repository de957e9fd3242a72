package gateway_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/gateway"
)

// lockedBuffer is a bytes.Buffer safe for the gateway's handlers and the
// test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAccessLogNamesTheKey: each request's access-log line says which
// access key signed it, and an unsigned request's names none.
func TestAccessLogNamesTheKey(t *testing.T) {
	var logs lockedBuffer
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: f}, func(c *gateway.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	mkBucket(t, e.awsClient(t), "logged")
	resp, err := http.Get(e.url + "/logged/anonymous")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	var create, anon string
	for _, line := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(line, "op=CreateBucket"):
			create = line
		case strings.Contains(line, "op=GetObject") && strings.Contains(line, "key=anonymous"):
			anon = line
		}
	}
	if !strings.Contains(create, "access_key="+testAccess) {
		t.Errorf("CreateBucket's log line does not name its key: %q", create)
	}
	if anon == "" || strings.Contains(anon, "access_key=") {
		t.Errorf("the unsigned GET's log line: %q, want one naming no key", anon)
	}
}
