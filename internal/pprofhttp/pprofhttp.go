// Package pprofhttp serves the runtime profiles of net/http/pprof on an
// address of their own, for daemons started with --pprof-addr. The handlers
// sit on a private mux: nothing is served on http.DefaultServeMux, and the
// daemons' S3, blob and metrics endpoints stay free of /debug paths.
//
// Profiles expose internals (goroutine stacks, heap contents by call site):
// bind the address to loopback or a management network only.
package pprofhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Handler returns the pprof handlers under /debug/pprof/.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Start listens on addr (HOST:PORT) and serves Handler until ctx ends. It
// returns the bound address once listening, so a bad address fails the
// daemon's start rather than a goroutine later.
func Start(ctx context.Context, addr string, log *slog.Logger) (net.Addr, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen on %s: %w", addr, err)
	}
	// No WriteTimeout: /debug/pprof/profile?seconds=N answers after N seconds.
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close() // profiles in flight are cut off; they are diagnostics only
	}()
	log.Info("serving pprof", "addr", ln.Addr().String())
	return ln.Addr(), nil
}
