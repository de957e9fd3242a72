package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/gateway/sse"
	"github.com/cairnstore/cairn/internal/localcluster"
	"github.com/cairnstore/cairn/internal/selfsigned"
	"github.com/cairnstore/cairn/metadata"
	"github.com/cairnstore/cairn/object"
)

// Dev cluster defaults. The ports are fixed so that a restarted dev cluster
// finds its Raft peers again and `cairn` admin commands find metad without
// flags.
const (
	devBasePort  = 7100 // Raft 7100+i, metad gRPC 7200+i, blob nodes 7300+i
	devS3Addr    = "127.0.0.1:9000"
	devAccessKey = "cairn-dev"
	devSecretKey = "cairn-dev-secret"
)

type devOptions struct {
	dir     string
	s3Addr  string
	ec      string
	meta    int
	blobs   int
	zones   int
	tls     bool
	fresh   bool
	verbose bool
}

func newDevCmd() *cobra.Command {
	o := devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local cluster (3 metad, 6 blob nodes, 1 S3 gateway) in this process",
		Long: `Runs a complete Cairn cluster on loopback in one process and serves S3
until interrupted. Data lives under --data-dir and survives restarts.

Credentials are CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY when set, otherwise
` + devAccessKey + ` / ` + devSecretKey + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "data-dir", "cairn-data", "directory for all of the cluster's data")
	f.StringVar(&o.s3Addr, "s3-addr", devS3Addr, "address the S3 gateway listens on")
	f.StringVar(&o.ec, "ec", "4+2", "erasure-coding scheme K+M for a new cluster")
	f.IntVar(&o.meta, "metad-count", 3, "number of metad members")
	f.IntVar(&o.blobs, "blobd-count", 6, "number of blob nodes")
	f.IntVar(&o.zones, "zones", 3, "zones the blob nodes are spread over")
	f.BoolVar(&o.tls, "tls", false, "serve https with a generated self-signed certificate")
	f.BoolVar(&o.fresh, "fresh", false, "delete --data-dir first and start an empty cluster")
	f.BoolVar(&o.verbose, "verbose", false, "log every node's info-level events to stderr")
	return cmd
}

func runDev(ctx context.Context, o devOptions, stdout, stderr io.Writer) error {
	scheme, err := metadata.ParseECScheme(o.ec)
	if err != nil {
		return fmt.Errorf("--ec: %w", err)
	}
	if o.blobs < scheme.K+1 {
		return fmt.Errorf("--blobd-count %d is too few for %s: writes need at least %d blob nodes", o.blobs, scheme, scheme.K+1)
	}
	if o.fresh {
		if err := os.RemoveAll(o.dir); err != nil {
			return fmt.Errorf("--fresh: %w", err)
		}
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", o.dir, err)
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	access, secret := os.Getenv("CAIRN_ACCESS_KEY"), os.Getenv("CAIRN_SECRET_KEY")
	if access == "" || secret == "" {
		access, secret = devAccessKey, devSecretKey
		fmt.Fprintf(stderr, "warning: CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY not set; using the built-in development keys (%s / %s). Do not expose this endpoint.\n", access, secret)
	}
	gwCfg := gateway.Config{
		Addr:        o.s3Addr,
		Credentials: gateway.Credentials{AccessKey: access, SecretKey: secret},
		Logger:      logger.With("node", "gateway"),
		// As gatewayd by default: web apps on any origin may call it.
		CORSAllowedOrigins: gateway.DefaultCORSAllowedOrigins,
	}
	if gwCfg.SSEMasterKeys, err = devMasterKeys(filepath.Join(o.dir, devMasterKeyFile)); err != nil {
		return err
	}
	// SSE-C keys never leave this machine when S3 is served on loopback.
	gwCfg.SSECustomerKeysOverHTTP = isLoopback(o.s3Addr)
	if o.tls {
		gwCfg.TLSCert, gwCfg.TLSKey, err = selfsigned.Write(filepath.Join(o.dir, "tls"))
		if err != nil {
			return err
		}
	}

	c, err := localcluster.Start(ctx, localcluster.Config{
		Dir:      o.dir,
		Meta:     o.meta,
		Blob:     o.blobs,
		Zones:    o.zones,
		Scheme:   scheme,
		BasePort: devBasePort,
		Logger:   logger,
		// As gatewayd and blobd by default: same-host blob traffic over
		// Unix sockets, half the CPU per byte of loopback TCP.
		LocalSockets: true,
	})
	if err != nil {
		return portHint(err)
	}
	defer func() {
		if err := c.Shutdown(); err != nil {
			logger.Warn("dev cluster shutdown", "err", err)
		}
	}()
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = c.WaitReady(readyCtx)
	cancel()
	if err != nil {
		return err
	}
	gw, err := c.StartGateway(ctx, gwCfg, object.Config{})
	if err != nil {
		return portHint(err)
	}
	printDevBanner(stdout, o, c, gw, access, secret, scheme)
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping the dev cluster")
	return nil
}

// portHint says what to do when a fixed dev port is taken (most often by
// another `cairn dev`).
func portHint(err error) error {
	if strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("%w\n(is another `cairn dev` running? the dev cluster uses ports %d-%d and %s)", err, devBasePort, devBasePort+299, devS3Addr)
	}
	return err
}

func printDevBanner(w io.Writer, o devOptions, c *localcluster.Cluster, gw *gateway.Server, access, secret string, scheme metadata.ECScheme) {
	abs, _ := filepath.Abs(o.dir)
	fmt.Fprintf(w, "Cairn dev cluster is up: %d metad, %d blob nodes in %d zones, EC %s\n", len(c.Metas), len(c.Blobs), o.zones, scheme)
	fmt.Fprintf(w, "  data:      %s\n", abs)
	fmt.Fprintf(w, "  metad:     %s\n", strings.Join(c.MetaAddrs(), ","))
	fmt.Fprintf(w, "  S3:        %s\n", gw.URL())
	fmt.Fprintf(w, "  access key %s\n  secret key %s\n", access, secret)
	fmt.Fprintf(w, "  SSE-S3:    master key in %s (objects written with --sse AES256 need it)\n", filepath.Join(abs, devMasterKeyFile))
	fmt.Fprintf(w, "\nTry it:\n")
	fmt.Fprintf(w, "  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s\n", access, secret, gateway.DefaultRegion)
	if o.tls {
		fmt.Fprintf(w, "  export AWS_CA_BUNDLE=%s\n", filepath.Join(abs, "tls", "cert.pem"))
	}
	fmt.Fprintf(w, "  aws --endpoint-url %s s3 mb s3://demo\n", gw.URL())
	fmt.Fprintf(w, "  aws --endpoint-url %s s3 cp ./README.md s3://demo/\n", gw.URL())
	fmt.Fprintf(w, "\nPress Ctrl-C to stop. Restart with the same --data-dir to keep the data.\n")
}

// devMasterKeyFile is the dev cluster's SSE-S3 master key, in its data
// directory.
const devMasterKeyFile = "sse-master.key"

// devMasterKeys reads the dev cluster's SSE-S3 master key from path,
// making one the first time: objects encrypted in one run must open in
// the next.
func devMasterKeys(path string) (*sse.MasterKeys, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, sse.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		line := "dev-1:" + base64.StdEncoding.EncodeToString(key) + "\n"
		if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
			return nil, fmt.Errorf("write the SSE master key: %w", err)
		}
	}
	return sse.LoadMasterKeys(path)
}

// isLoopback tells whether addr (host:port) listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
