package pprofhttp

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStartServesProfilesUntilCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := Start(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()
	for _, tc := range []struct{ path, want string }{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/heap?debug=1", "heap profile"},
		{"/debug/pprof/cmdline", ""},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: %d, body without %q", tc.path, resp.StatusCode, tc.want)
		}
	}
	resp, err := http.Get(base + "/metrics")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /metrics on the pprof address: %d, want 404", resp.StatusCode)
		}
	}
	cancel()
	// The server closes once ctx ends: new requests must start failing.
	deadline := time.Now().Add(5 * time.Second)
	for {
		http.DefaultClient.CloseIdleConnections()
		resp, err := http.Get(base + "/debug/pprof/")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("pprof still served 5s after ctx ended")
		}
		time.Sleep(10 * time.Millisecond) // poll interval of a condition wait
	}
}

func TestStartBadAddress(t *testing.T) {
	if _, err := Start(context.Background(), "127.0.0.1:notaport", slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Start with a bad address succeeded")
	}
}
