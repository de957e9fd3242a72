// Command gatewayd serves S3 for a Cairn cluster: it authenticates
// requests, streams objects to and from the blob nodes and commits their
// metadata to metad. Gateways share nothing but metad; run as many as
// needed behind any load balancer.
//
//	CAIRN_ACCESS_KEY=... CAIRN_SECRET_KEY=... gatewayd --addr :9000 \
//	    --metad 10.0.0.1:7300,10.0.0.2:7300,10.0.0.3:7300
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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/gateway/sse"
	"github.com/cairnstore/cairn/internal/memlimit"
	"github.com/cairnstore/cairn/internal/pprofhttp"
	"github.com/cairnstore/cairn/metadata/metaclient"
	"github.com/cairnstore/cairn/object"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

type flags struct {
	gw          gateway.Config
	metad       string
	segmentSize int64
	writeQuorum int
	inlineMax   int
	readBudget  time.Duration
	writeBudget time.Duration
	pprofAddr   string
	logLevel    slog.Level
	memoryLimit int64 // bytes; 0: none
	localSocks  bool
}

// defaultMemoryLimit is gatewayd's soft memory limit unless --memory-limit
// or GOMEMLIMIT says otherwise. Without one the heap may grow to twice its
// live size between collections (GOGC=100): with 64 uploads of 1 GiB in
// flight the live heap is ~140 MiB (their stripe buffers, mostly), so a long
// run could reach ~290 MiB of heap and more RSS. The limit makes the GC
// collect earlier instead. It must sit well above the working set, or the
// GC runs back to back: measured with those 64 uploads, a limit of 160 MiB
// (1.15x the live heap) took 1,386 collections and 23 s of CPU in 53 s, 192
// MiB took 9 and 0.2 s, 256 MiB 7 and 0.1 s; past a point the runtime caps
// the GC at half the CPU and lets the heap exceed the limit. 256 MiB keeps
// a gateway with 64 such uploads under issue 6's 300 MiB, and collections
// stay rare up to ~90 of them (~2.1 MiB of live heap each).
const defaultMemoryLimit = 256 << 20

func parseFlags(args []string, out io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("gatewayd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: gatewayd --metad ADDR[,ADDR...] [flags]\n\n"+
			"Serves S3 for a Cairn cluster. Credentials come from the environment:\n"+
			"CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY (both required); CAIRN_SSE_MASTER_KEY\n"+
			"(id:base64-key) stands for --sse-master-key-file.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	f.gw.RegisterFlags(fs)
	fs.StringVar(&f.metad, "metad", "", "comma-separated gRPC addresses (`HOST:PORT`) of the metad members (required)")
	fs.Int64Var(&f.segmentSize, "segment-size", object.DefaultSegmentSize, "most object `BYTES` in one erasure-coded segment")
	fs.IntVar(&f.writeQuorum, "write-quorum", 0, "chunks of a segment that must be stored for a write to succeed (0: k+1)")
	fs.IntVar(&f.inlineMax, "inline-max", object.DefaultInlineMax, "objects up to `BYTES` are kept in metadata (-1: never)")
	fs.DurationVar(&f.writeBudget, "write-budget", object.DefaultWriteBudget, "how long a chunk upload may stall before the PUT completes the segment without it (degraded, repaired later; -1ns: no budget)")
	fs.DurationVar(&f.readBudget, "read-budget", object.DefaultReadBudget, "how long a chunk read may stall before the GET reads parity instead; with no parity left it waits (-1ns: no budget)")
	fs.BoolVar(&f.localSocks, "blob-local-sockets", true, "reach blob nodes on this host over their Unix sockets instead of loopback TCP (half the CPU per byte)")
	fs.StringVar(&f.pprofAddr, "pprof-addr", "", "serve net/http/pprof on `HOST:PORT` (empty: off; loopback only)")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn, error")
	f.memoryLimit = defaultMemoryLimit
	fs.Var(memlimit.Flag{P: &f.memoryLimit}, "memory-limit", "soft limit on the Go runtime's memory, in `BYTES` (256MiB, 1GiB; 0 or off: none). "+
		"GOMEMLIMIT in the environment wins. Keep it well above the working set, ~20 MiB plus ~2.5 MiB per upload in flight "+
		"(the default suits 64), or garbage collection eats the CPU")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if metaclient.ParseAddrs(f.metad) == nil {
		return nil, errors.New("--metad is required")
	}
	return f, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatewayd: %v\n", err)
		return 2
	}
	f.gw.Credentials = gateway.Credentials{AccessKey: getenv("CAIRN_ACCESS_KEY"), SecretKey: getenv("CAIRN_SECRET_KEY")}
	if f.gw.Credentials.AccessKey == "" || f.gw.Credentials.SecretKey == "" {
		fmt.Fprintln(stderr, "gatewayd: set CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY (the root credentials) in the environment")
		return 2
	}
	if v := getenv("CAIRN_SSE_MASTER_KEY"); v != "" && f.gw.SSEMasterKeys == nil {
		if f.gw.SSEMasterKeys, err = sse.ParseMasterKeys(v); err != nil {
			fmt.Fprintf(stderr, "gatewayd: CAIRN_SSE_MASTER_KEY: %v\n", err)
			return 2
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.logLevel}))
	memlimit.Apply(log, f.memoryLimit, getenv("GOMEMLIMIT"))
	if err := serve(ctx, f, log); err != nil {
		log.Error("gatewayd stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, f *flags, log *slog.Logger) error {
	if f.pprofAddr != "" {
		if _, err := pprofhttp.Start(ctx, f.pprofAddr, log); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	meta, err := metaclient.New(metaclient.ParseAddrs(f.metad), metaclient.Options{Logger: log.With("component", "metaclient")})
	if err != nil {
		return fmt.Errorf("metadata client: %w", err)
	}
	// Closed last: the gateway and the object layer use it until Run returns.
	defer meta.Close()
	blobs := blob.NewClient(blob.ClientConfig{LocalSockets: f.localSocks})
	defer blobs.Close()

	store, err := object.New(object.Config{
		Meta:        meta,
		Blobs:       blobs,
		SegmentSize: f.segmentSize,
		WriteQuorum: f.writeQuorum,
		InlineMax:   f.inlineMax,
		ReadBudget:  f.readBudget,
		WriteBudget: f.writeBudget,
		Reporter:    "gateway " + f.gw.Addr,
		Logger:      log,
		Registry:    reg,
	})
	if err != nil {
		return fmt.Errorf("object layer: %w", err)
	}
	cfg := f.gw
	cfg.Meta, cfg.Objects, cfg.Logger, cfg.Registry = meta, store, log, reg
	srv, err := gateway.NewServer(cfg)
	if err != nil {
		return err
	}
	// Run returns once ctx ends and requests in flight have finished (or
	// a few seconds passed); only then may the clients above close.
	return srv.Run(ctx)
}
