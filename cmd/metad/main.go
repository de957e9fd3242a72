// Command metad runs one member of Cairn's metadata service: a Raft group
// whose replicated state (buckets, objects, multipart uploads, the cluster
// map) lives in Badger, served over gRPC.
//
// A new three-member cluster, started the same way on each machine with its
// own --id and addresses:
//
//	metad --id m1 --data-dir /srv/cairn/m1 --raft-addr 10.0.0.1:7000 \
//	      --grpc-addr 10.0.0.1:7300 --http-addr 10.0.0.1:7301 \
//	      --initial-cluster m1=10.0.0.1:7000,m2=10.0.0.2:7000,m3=10.0.0.3:7000 --ec 4+2
//
// --initial-cluster is only read on the first start, with an empty data
// directory; later starts use the stored Raft configuration.
//
// A member added to a running cluster starts with an empty data directory
// and --join instead of --initial-cluster: it asks the members at those gRPC
// addresses to add it to the Raft configuration, then catches up:
//
//	metad --id m4 --data-dir /srv/cairn/m4 --raft-addr 10.0.0.4:7000 \
//	      --grpc-addr 10.0.0.4:7300 --join 10.0.0.1:7300,10.0.0.2:7300,10.0.0.3:7300
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
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cairnstore/cairn/internal/memlimit"
	"github.com/cairnstore/cairn/internal/pprofhttp"
	"github.com/cairnstore/cairn/metadata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// flags are metad's command line: the member's Config and the log level.
type flags struct {
	member    metadata.Config
	pprofAddr string
	logLevel  slog.Level
	// memoryLimit, when positive, is the Go runtime's soft memory limit
	// in bytes: by default the state store's MemoryBudget.
	memoryLimit int64
}

// memoryLimitFlag is --memory-limit: "auto" (the default) or what
// memlimit.Flag takes. auto is resolved after parsing, once the state
// store's sizes are known whatever the flags' order.
type memoryLimitFlag struct {
	auto  bool
	bytes int64
}

func (m *memoryLimitFlag) String() string {
	if m.auto {
		return "auto"
	}
	return memlimit.Flag{P: &m.bytes}.String()
}

func (m *memoryLimitFlag) Set(v string) error {
	if strings.EqualFold(strings.TrimSpace(v), "auto") {
		m.auto = true
		return nil
	}
	m.auto = false
	if err := (memlimit.Flag{P: &m.bytes}).Set(v); err != nil {
		return fmt.Errorf("want auto, off or a size such as 768MiB: %w", err)
	}
	return nil
}

func parseFlags(args []string, out io.Writer) (*flags, error) {
	f := &flags{member: metadata.DefaultConfig()}
	fs := flag.NewFlagSet("metad", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: metad --id ID --data-dir DIR --raft-addr HOST:PORT --grpc-addr HOST:PORT [flags]\n\n"+
			"Runs a member of the Cairn metadata service.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	f.member.RegisterFlags(fs)
	fs.StringVar(&f.pprofAddr, "pprof-addr", "", "serve net/http/pprof on `HOST:PORT` (empty: off; loopback only)")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn, error")
	limit := memoryLimitFlag{auto: true}
	fs.Var(&limit, "memory-limit", "soft limit on the Go runtime's memory, in `BYTES` (768MiB, 1GiB; 0 or off: none; auto: "+
		"2 × (state memtables × memtable size + block cache + index cache) + 64 MiB, 512MiB with the default sizes); GOMEMLIMIT in the environment wins. "+
		"Without a limit the heap grows to twice what Badger's memtables and table builders hold under write bursts. "+
		"Memory-mapped state tables (RssFile) are page cache and not counted (docs/architecture.md)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := f.member.Validate(); err != nil {
		return nil, err
	}
	f.memoryLimit = limit.bytes
	if limit.auto {
		f.memoryLimit = f.member.State.MemoryBudget()
	}
	return f, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "metad: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.logLevel}))
	memlimit.Apply(log, f.memoryLimit, os.Getenv("GOMEMLIMIT"))
	if f.pprofAddr != "" {
		if _, err := pprofhttp.Start(ctx, f.pprofAddr, log); err != nil {
			log.Error("start metad", "err", err)
			return 1
		}
	}
	cfg := f.member
	cfg.Logger = log
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registry = reg

	srv, err := metadata.NewServer(cfg)
	if err != nil {
		log.Error("start metad", "err", err)
		return 1
	}
	// Run returns once ctx ends (SIGINT, SIGTERM): a leader first hands
	// leadership to another member, then the API drains. Close then stops
	// Raft before closing the stores it writes to.
	runErr := srv.Run(ctx)
	closeErr := srv.Close()
	if err := errors.Join(runErr, closeErr); err != nil {
		log.Error("metad stopped", "err", err)
		return 1
	}
	log.Info("metad stopped")
	return 0
}
