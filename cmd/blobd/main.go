// Command blobd runs a blob node: it stores chunks on a local disk, serves
// them over HTTP, registers with metad and heartbeats its usage, runs the
// tasks metad hands it (repairs, moves, deletes), scrubs its chunks and
// deletes orphans.
//
//	blobd --id b1 --data-dir /srv/cairn/b1 --addr 10.0.0.5:7400 \
//	      --metad 10.0.0.1:7300,10.0.0.2:7300,10.0.0.3:7300 --zone z1 --rack r4
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/internal/blobreg"
	"github.com/cairnstore/cairn/internal/pprofhttp"
	"github.com/cairnstore/cairn/metadata/metaclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// flags are blobd's command line: the node's Config and what main wires.
type flags struct {
	node      blob.Config
	metad     string
	pprofAddr string
	logLevel  slog.Level
}

func parseFlags(args []string, out io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("blobd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: blobd --id ID --data-dir DIR [flags]\n\nRuns a Cairn blob node.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	f.node.RegisterFlags(fs)
	fs.StringVar(&f.metad, "metad", "", "comma-separated gRPC addresses (HOST:PORT) of the metad members; empty = serve without registering")
	fs.StringVar(&f.pprofAddr, "pprof-addr", "", "serve net/http/pprof on `HOST:PORT` (empty: off; loopback only)")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := f.node.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "blobd: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.logLevel}))
	if f.pprofAddr != "" {
		if _, err := pprofhttp.Start(ctx, f.pprofAddr, log); err != nil {
			log.Error("start blob node", "err", err)
			return 1
		}
	}
	cfg := f.node
	cfg.Logger = log

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registry = reg

	var md *metaclient.Client
	if addrs := metaclient.ParseAddrs(f.metad); len(addrs) > 0 {
		md, err = metaclient.New(addrs, metaclient.Options{Logger: log.With("component", "metaclient")})
		if err != nil {
			log.Error("metad client", "err", err)
			return 1
		}
		cfg.Registrar = blobreg.New(md, cfg.ID)
	} else {
		log.Warn("no --metad given: serving without registering")
	}

	srv, err := blob.NewServer(cfg)
	if err != nil {
		log.Error("start blob node", "err", err)
		if md != nil {
			md.Close()
		}
		return 1
	}
	runErr := srv.Run(ctx)
	// Shutdown in reverse order. Run has already stopped heartbeats and
	// drained the API; the store closes next (releasing the data
	// directory's lock), and the metad connections last, since nothing
	// uses them any more.
	closeErr := srv.Close()
	if md != nil {
		md.Close()
	}
	if err := errors.Join(runErr, closeErr); err != nil {
		log.Error("blob node stopped", "err", err)
		return 1
	}
	log.Info("blob node stopped")
	return 0
}
