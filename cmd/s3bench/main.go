// Command s3bench is an S3 load generator and benchmark reporter.
//
//	s3bench --endpoint http://127.0.0.1:9000 --access-key K --secret-key S \
//	    --op put --size 1MiB --concurrency 16 --duration 30s --json put.json
//	s3bench ... --op get --size 64MiB --sse SSE-C
//	s3bench ceiling --size 64MiB --concurrency 16 --json ceilings.json
//	s3bench report --ceilings ceilings.json --md out.md --json out.json run1.json run2.json ...
//	s3bench uploads --endpoint URL --access-key K --secret-key S \
//	    --uploads 64 --size 1GiB --send 128MiB --complete 2 --watch gatewayd=PID
//
// The run prints a table on stdout, a progress line on stderr once a
// second, and with --json the full result. The secret key may come from
// S3BENCH_SECRET_KEY instead of the flag. scripts/bench drives all three
// against a cluster it starts (or an endpoint it is given).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairnstore/cairn/internal/clitable"
	"github.com/cairnstore/cairn/internal/s3bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runBench(ctx, args, getenv, stdout, stderr)
	case "ceiling":
		err = runCeiling(ctx, args, stdout, stderr)
	case "report":
		err = runReport(args, stdout, stderr)
	case "uploads":
		err = runUploads(ctx, args, getenv, stdout, stderr)
	default:
		err = fmt.Errorf("unknown command %q (run, ceiling, report, uploads)", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "s3bench %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// sizeFlag parses 4KiB, 1MiB, 64MiB, 100.
type sizeFlag struct{ n *int64 }

func (s sizeFlag) String() string {
	if s.n == nil {
		return ""
	}
	return s3bench.SizeLabel(*s.n)
}

func (s sizeFlag) Set(v string) error {
	n, err := clitable.ParseBytes(v)
	if err != nil {
		return err
	}
	*s.n = n
	return nil
}

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := s3bench.Config{Size: 1 << 20}
	var jsonPath, watch, pprofTargets string
	var quiet bool
	fs := flag.NewFlagSet("s3bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: s3bench [run] --endpoint URL --access-key KEY --secret-key SECRET [flags]\n"+
			"       s3bench ceiling [flags]\n       s3bench report [flags] RESULT.json...\n\nFlags of run:\n")
		fs.PrintDefaults()
	}
	addTargetFlags(fs, &cfg.ClientConfig, &cfg.Bucket, getenv)
	fs.StringVar(&cfg.Workload, "op", "put", "workload: put, get, mixed (45% get, 30% put, 15% stat, 10% delete), list, delete")
	fs.Var(sizeFlag{&cfg.Size}, "size", "object `SIZE`: 4KiB, 1MiB, 64MiB, ...")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "concurrent workers, each with its own connection")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to issue requests (requests in flight then finish)")
	fs.Int64Var(&cfg.Count, "count", 0, "end after this many requests in all (0: run for --duration only)")
	fs.IntVar(&cfg.Objects, "objects", 0, "objects to prepare for get, mixed, list and delete (0: about 512 MiB worth, 16..1000)")
	fs.StringVar(&jsonPath, "json", "", "write the result as JSON to `FILE` (- for stdout)")
	fs.StringVar(&cfg.SSE, "sse", "", "server-side encryption `MODE`: AES256 (SSE-S3: x-amz-server-side-encryption: AES256 on every PUT), "+
		"SSE-C (a random 32-byte key drawn once per run and sent on every PUT, GET and HEAD), or empty for no encryption headers "+
		"(the bucket's default encryption applies)")
	fs.BoolVar(&cfg.NoChecksum, "no-checksum", false, "send and validate checksums only where S3 requires them (default: the SDK's default CRCs)")
	fs.IntVar(&cfg.Retries, "retries", 0, "retries of a failed request (0: failures count as errors)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the bodies and of the mixed workload's choices")
	fs.BoolVar(&cfg.Verify, "verify", false, "check every GET body against what was written")
	fs.BoolVar(&cfg.SDKPayloadHash, "sdk-payload-hash", false, "let the SDK hash every PUT body for its signature (default over plain HTTP: each distinct body hashed once before the run; same requests)")
	fs.StringVar(&cfg.Prefix, "prefix", "", "key prefix of everything written (default s3bench/<time>)")
	fs.BoolVar(&cfg.Keep, "keep", false, "leave the objects in the bucket afterwards")
	fs.StringVar(&cfg.Label, "label", "", "name of the store under test in reports")
	fs.StringVar(&watch, "watch", "", "processes to sample for CPU and peak RSS: `NAME=PID,...`")
	fs.StringVar(&pprofTargets, "pprof", "", "pprof servers to profile during the run: `NAME=HOST:PORT,...` (CPU over the run, heap at its end)")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "`DIR` for the --pprof profiles (NAME.cpu.pprof, NAME.heap.pprof)")
	fs.BoolVar(&quiet, "quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	secretFromEnv(&cfg.ClientConfig, getenv)
	procs, err := s3bench.ParseProcs(watch)
	if err != nil {
		return fmt.Errorf("--watch: %w", err)
	}
	cfg.Watch = procs
	if cfg.Profile, err = s3bench.ParseProfileTargets(pprofTargets); err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	if !quiet {
		cfg.Progress = stderr
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				cfg.ProgressCR = true
			}
		}
	}
	res, err := s3bench.Run(ctx, cfg)
	if res != nil {
		if werr := s3bench.WriteTable(stdout, res); werr != nil {
			return werr
		}
		if jsonPath != "" {
			if werr := writeJSON(jsonPath, stdout, res); werr != nil {
				return werr
			}
		}
	}
	return err
}

// addTargetFlags registers the flags naming the S3 endpoint, its
// credentials and the bucket, which run and uploads share.
func addTargetFlags(fs *flag.FlagSet, cc *s3bench.ClientConfig, bucket *string, getenv func(string) string) {
	fs.StringVar(&cc.Endpoint, "endpoint", "", "S3 endpoint `URL` (http:// or https://)")
	fs.StringVar(&cc.AccessKey, "access-key", getenv("S3BENCH_ACCESS_KEY"), "access `KEY` (or $S3BENCH_ACCESS_KEY)")
	// The secret's environment fallback is applied after parsing
	// (secretFromEnv), so that -help never prints it as a default.
	fs.StringVar(&cc.SecretKey, "secret-key", "", "secret `KEY` (or $S3BENCH_SECRET_KEY)")
	fs.StringVar(&cc.Region, "region", "us-east-1", "signing `REGION`")
	fs.BoolVar(&cc.Insecure, "insecure", false, "accept any TLS certificate (self-signed endpoints)")
	fs.StringVar(bucket, "bucket", "s3bench", "`BUCKET` to use (created if missing)")
}

// secretFromEnv fills in the secret key from $S3BENCH_SECRET_KEY when no
// --secret-key was given.
func secretFromEnv(cc *s3bench.ClientConfig, getenv func(string) string) {
	if cc.SecretKey == "" {
		cc.SecretKey = getenv("S3BENCH_SECRET_KEY")
	}
}

func runUploads(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := s3bench.UploadsConfig{Size: 1 << 30, Send: 128 << 20}
	var jsonPath, watch, limits string
	var quiet bool
	fs := flag.NewFlagSet("s3bench uploads", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: s3bench uploads --endpoint URL --access-key KEY --secret-key SECRET [flags]\n\n"+
			"Starts --uploads PUTs at once, each declaring Content-Length --size. --complete of them send the\n"+
			"whole body and must be stored; the others send --send bytes, stall with the connection open until\n"+
			"every upload is in flight and --hold has passed, and are then cut off (nothing of them may be\n"+
			"stored). Samples the --watch processes' memory throughout.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	addTargetFlags(fs, &cfg.ClientConfig, &cfg.Bucket, getenv)
	fs.IntVar(&cfg.Uploads, "uploads", 64, "PUTs in flight at once")
	fs.Var(sizeFlag{&cfg.Size}, "size", "Content-Length every upload declares")
	fs.Var(sizeFlag{&cfg.Send}, "send", "bytes a cut-off upload sends before it stalls")
	fs.IntVar(&cfg.Complete, "complete", 2, "uploads that send their whole body")
	fs.DurationVar(&cfg.Hold, "hold", 5*time.Second, "how long the stalled uploads stay open once all are in flight")
	fs.DurationVar(&cfg.Sample, "sample", 250*time.Millisecond, "interval of the memory timeline")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the bodies")
	fs.StringVar(&cfg.Prefix, "prefix", "", "key prefix (default s3bench-uploads/<time>)")
	fs.BoolVar(&cfg.Keep, "keep", false, "leave the complete uploads in the bucket")
	fs.StringVar(&cfg.Label, "label", "", "name of the store under test")
	fs.StringVar(&watch, "watch", "", "processes to sample: `NAME=PID,...`")
	fs.StringVar(&limits, "limit", "", "memory targets of watched processes: `NAME=MiB,...` (the run says whether each peak stayed within)")
	fs.StringVar(&jsonPath, "json", "", "write the result, with the memory timeline, as JSON to `FILE` (- for stdout)")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	secretFromEnv(&cfg.ClientConfig, getenv)
	procs, err := s3bench.ParseProcs(watch)
	if err != nil {
		return fmt.Errorf("--watch: %w", err)
	}
	cfg.Watch = procs
	if cfg.Limits, err = parseLimits(limits); err != nil {
		return fmt.Errorf("--limit: %w", err)
	}
	if !quiet {
		cfg.Progress = stderr
	}
	res, err := s3bench.Uploads(ctx, cfg)
	if res != nil {
		if werr := s3bench.WriteUploadsTable(stdout, res); werr != nil {
			return werr
		}
		if jsonPath != "" {
			if werr := writeJSON(jsonPath, stdout, res); werr != nil {
				return werr
			}
		}
		if err == nil && (res.Completed < res.Complete || len(res.Leftover) > 0) {
			err = fmt.Errorf("%d of %d complete uploads stored, %d cut-off uploads left objects", res.Completed, res.Complete, len(res.Leftover))
		}
	}
	return err
}

func runCeiling(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg s3bench.CeilingConfig
	cfg.Size = 64 << 20
	var jsonPath string
	fs := flag.NewFlagSet("s3bench ceiling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(sizeFlag{&cfg.Size}, "size", "body `SIZE` of the HTTP and encode measurements (at most 64MiB)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "streams of the concurrent HTTP measurements")
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Second, "length of each measurement")
	fs.StringVar(&cfg.Dir, "dir", "", "also measure the disk's write throughput (disk-write) with files in `DIR`, on the store's filesystem")
	fs.StringVar(&jsonPath, "json", "", "write the ceilings as JSON to `FILE` (- for stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Progress = stdout
	cs, err := s3bench.Ceilings(ctx, cfg)
	if err != nil {
		return err
	}
	if jsonPath != "" {
		return writeJSON(jsonPath, stdout, cs)
	}
	return nil
}

func runReport(args []string, stdout, stderr io.Writer) error {
	var ceilPath, mdPath, jsonPath, command, host string
	var notes multiFlag
	fs := flag.NewFlagSet("s3bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&ceilPath, "ceilings", "", "ceilings JSON `FILE` from s3bench ceiling")
	fs.StringVar(&mdPath, "md", "", "write the Markdown report to `FILE` (default stdout)")
	fs.StringVar(&jsonPath, "json", "", "write the combined JSON report to `FILE`")
	fs.StringVar(&command, "command", "", "the command that produced the runs, quoted in the report")
	fs.StringVar(&host, "host", "", "machine description for the report")
	fs.Var(&notes, "note", "a line to add under the heading (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ceilings []s3bench.Ceiling
	if ceilPath != "" {
		if err := readJSON(ceilPath, &ceilings); err != nil {
			return err
		}
	}
	var runs []*s3bench.Result
	for _, p := range fs.Args() {
		var r s3bench.Result
		if err := readJSON(p, &r); err != nil {
			return err
		}
		runs = append(runs, &r)
	}
	rep := s3bench.NewReport(ceilings, runs)
	rep.Command, rep.Host, rep.Notes = command, host, notes
	if mdPath == "" {
		if err := rep.Markdown(stdout); err != nil {
			return err
		}
	} else {
		f, err := os.Create(mdPath)
		if err != nil {
			return err
		}
		if err := rep.Markdown(f); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", mdPath, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", mdPath, err)
		}
	}
	if jsonPath != "" {
		return writeJSON(jsonPath, stdout, rep)
	}
	return nil
}

// parseLimits parses "name=300,name=40" (MiB).
func parseLimits(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, v, ok := strings.Cut(item, "=")
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "MiB"), 64)
		if !ok || name == "" || err != nil || f <= 0 {
			return nil, fmt.Errorf("limit %q: want NAME=MiB", item)
		}
		out[name] = f
	}
	return out, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func writeJSON(path string, stdout io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}
