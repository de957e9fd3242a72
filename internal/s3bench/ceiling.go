package s3bench

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	md5simd "github.com/minio/md5-simd"

	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/bodyconn"
	"github.com/cairnstore/cairn/internal/md5lanes"
)

// Ceiling is the measured throughput of one path an object store's data
// takes, with nothing else on it: what a store can at best reach on this
// machine for that path.
type Ceiling struct {
	Name        string  `json:"name"`
	What        string  `json:"what"`
	Concurrency int     `json:"concurrency"`
	MiBPerSec   float64 `json:"mib_per_s"`
	// LoadAvg is the 1-minute load average when the measurement ended.
	LoadAvg float64 `json:"loadavg"`
}

// Ceiling names, the keys reports use to divide by.
const (
	CeilingHTTPPut    = "http-put"
	CeilingHTTPPutMD5 = "http-put-md5"
	CeilingHTTPGet2   = "http-get-2hop"
	// CeilingHTTPGet2Unix is http-get-2hop with the first hop (blob node
	// → gateway) over a Unix socket, as a gateway talks to blob nodes on
	// its own host.
	CeilingHTTPGet2Unix = "http-get-2hop-unix"
	// CeilingHTTPPutUnix is http-put over a Unix socket: the gateway's
	// sends to blob nodes on its own host.
	CeilingHTTPPutUnix = "http-put-unix"
	CeilingRSEncode    = "rs-encode-4+2"
	CeilingMD5         = "md5"
)

// Reference ceilings, which no report divides by.
const (
	// CeilingHTTPPutStdMD5 is http-put-md5 with crypto/md5 for every body.
	CeilingHTTPPutStdMD5 = "http-put-crypto-md5"
	// CeilingMD5SIMD is md5-simd over Concurrency streams at once (the
	// gateway's MD5 until 2026-11-26 14:00 UTC).
	CeilingMD5SIMD = "md5-simd"
	// CeilingMD5Lanes is internal/md5lanes over Concurrency streams at
	// once, the gateway's MD5.
	CeilingMD5Lanes = "md5-lanes"
)

// md5MinStreams mirrors object.md5MinStreams: the gateway hashes a body
// in the shared internal/md5lanes lanes when at least this many large
// bodies are being hashed at once, otherwise with crypto/md5. http-put-md5
// makes the same choice, so the ceiling is never flattered by a slower MD5
// than the gateway's.
const md5MinStreams = 2

// CeilingConfig sizes the ceiling measurements.
type CeilingConfig struct {
	// Size of each HTTP body and of the encoded buffer (default 64 MiB).
	Size int64
	// Concurrency of the HTTP measurements besides the single stream
	// (default 16, as the benchmark runs).
	Concurrency int
	// Duration of each measurement (default 3s).
	Duration time.Duration
	// Progress receives one line per measurement (nil: none).
	Progress io.Writer
	// Dir, if set, is where disk-write writes its files: a directory on
	// the filesystem the store's data lives on.
	Dir string
}

// Ceilings measures, each for cfg.Duration:
//
//   - http-put: net/http PUTs of Size bytes over loopback, the server
//     reading into a buffer and discarding (1 stream and Concurrency).
//   - http-put-md5: the same with the server computing the body's MD5, as
//     an S3 server must for the ETag, with the MD5 the gateway uses: the
//     process's internal/md5lanes lanes (16 AVX-512 lanes) when at least 2
//     bodies are in flight, crypto/md5 otherwise (md5-simd from 3 bodies
//     before 2026-11-26 14:00 UTC).
//   - http-put-crypto-md5: http-put-md5 with crypto/md5 for every body
//     (reference).
//   - http-get-2hop: GETs of Size bytes through one proxy hop (origin →
//     proxy → client over loopback), the path of a GET from a blob node
//     through a gateway.
//   - http-get-2hop-unix and http-put-unix (Linux): the same with the
//     origin → proxy hop, and the PUT, over a Unix socket — the paths when
//     the blob nodes share the gateway's host.
//   - rs-encode-4+2: chunk.Codec.Encode of a Size buffer at 4+2 into
//     io.Discard writers (block checksums included), one goroutine and
//     GOMAXPROCS goroutines.
//   - md5: crypto/md5 over one stream.
//   - md5-simd: md5-simd over Concurrency streams sharing one server
//     (reference: the gateway's MD5 before internal/md5lanes).
//   - md5-lanes: internal/md5lanes over Concurrency streams sharing one
//     scheduler, the way concurrent PUTs share the gateway's.
//   - disk-write (with Dir): Concurrency writers each writing a file of
//     Size/4 bytes (a chunk of a 4+2 segment of Size) in 4 MiB direct
//     writes, syncing and removing it, as blob nodes store chunks.
//
// Client and servers share this machine's cores, as a benchmark client
// and a store on the same machine do.
func Ceilings(ctx context.Context, cfg CeilingConfig) ([]Ceiling, error) {
	if cfg.Size <= 0 {
		cfg.Size = 64 << 20
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 3 * time.Second
	}
	pat := NewPattern(1, cfg.Size)
	body := pat.Bytes()[:min(int64(pat.Len()), cfg.Size)]
	if int64(len(body)) < cfg.Size {
		return nil, fmt.Errorf("ceiling size %d exceeds the pattern's %d bytes", cfg.Size, pat.Len())
	}
	srv, err := startCeilingServers(body)
	if err != nil {
		return nil, err
	}
	defer srv.close()

	var out []Ceiling
	add := func(c Ceiling, err error) error {
		if err != nil {
			return fmt.Errorf("ceiling %s: %w", c.Name, err)
		}
		c.LoadAvg = LoadAvg()[0]
		out = append(out, c)
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "ceiling %-14s c%-3d %9.1f MiB/s  (%s; load %.2f)\n", c.Name, c.Concurrency, c.MiBPerSec, c.What, c.LoadAvg)
		}
		return nil
	}
	conc := []int{1}
	if cfg.Concurrency > 1 {
		conc = append(conc, cfg.Concurrency)
	}
	for _, c := range conc {
		type measurement struct {
			name, what, url string
			put             bool
			unix            bool // dial the origin's Unix socket
		}
		ms := []measurement{
			{CeilingHTTPPut, "loopback HTTP PUT, server discards", srv.origin + "/discard", true, false},
			{CeilingHTTPPutMD5, "loopback HTTP PUT, server computes MD5 (MD5 lanes from 2 streams, as the gateway)", srv.origin + "/md5", true, false},
			{CeilingHTTPPutStdMD5, "loopback HTTP PUT, server computes crypto/md5", srv.origin + "/crypto-md5", true, false},
			{CeilingHTTPGet2, "loopback HTTP GET through one proxy hop", srv.proxy + "/object", false, false},
		}
		if srv.originUnix != "" {
			ms = append(ms,
				measurement{CeilingHTTPPutUnix, "HTTP PUT over a Unix socket, server discards", "http://unix/discard", true, true},
				measurement{CeilingHTTPGet2Unix, "HTTP GET through one proxy hop, origin → proxy over a Unix socket", srv.proxy + "/object-unix", false, false})
		}
		for _, m := range ms {
			var dial func(context.Context, string, string) (net.Conn, error)
			if m.unix {
				dial = unixDialer(srv.originUnix)
			}
			mib, err := measureHTTP(ctx, m.url, dial, m.put, body, c, cfg.Duration)
			if err := add(Ceiling{Name: m.name, What: m.what, Concurrency: c, MiBPerSec: mib}, err); err != nil {
				return out, err
			}
		}
	}
	codec, err := chunk.NewCodec(chunk.DefaultParams(chunk.Scheme{K: 4, M: 2}))
	if err != nil {
		return out, err
	}
	for _, c := range []int{1, runtime.GOMAXPROCS(0)} {
		mib, err := measureLoop(ctx, c, cfg.Duration, func() (int64, error) {
			w := make([]io.Writer, 6)
			for i := range w {
				w[i] = io.Discard
			}
			res, err := codec.Encode(ctx, chunk.SegmentID{}, bytes.NewReader(body), int64(len(body)), w)
			return res.Size, err
		})
		if err := add(Ceiling{Name: CeilingRSEncode, What: "chunk.Codec.Encode 4+2 into io.Discard", Concurrency: c, MiBPerSec: mib}, err); err != nil {
			return out, err
		}
		if c == 1 && runtime.GOMAXPROCS(0) == 1 {
			break
		}
	}
	mib, err := measureLoop(ctx, 1, cfg.Duration, func() (int64, error) {
		h := md5.New()
		_, _ = h.Write(body)
		_ = h.Sum(nil)
		return int64(len(body)), nil
	})
	if err := add(Ceiling{Name: CeilingMD5, What: "crypto/md5, one stream", Concurrency: 1, MiBPerSec: mib}, err); err != nil {
		return out, err
	}
	mib, err = measureLoop(ctx, cfg.Concurrency, cfg.Duration, func() (int64, error) {
		h := srv.md5.NewHash()
		defer h.Close()
		// 64 KiB writes, about what a socket read hands the gateway.
		for off := 0; off < len(body); off += 64 << 10 {
			_, _ = h.Write(body[off:min(off+64<<10, len(body))])
		}
		_ = h.Sum(nil)
		return int64(len(body)), nil
	})
	if err := add(Ceiling{Name: CeilingMD5SIMD, What: "md5-simd, streams sharing one server", Concurrency: cfg.Concurrency, MiBPerSec: mib}, err); err != nil {
		return out, err
	}
	mib, err = measureLoop(ctx, cfg.Concurrency, cfg.Duration, func() (int64, error) {
		h := srv.lanes.New()
		for off := 0; off < len(body); off += 64 << 10 {
			_, _ = h.Write(body[off:min(off+64<<10, len(body))])
		}
		_ = h.Sum(nil)
		return int64(len(body)), nil
	})
	if err := add(Ceiling{Name: CeilingMD5Lanes, What: "internal/md5lanes, streams sharing one scheduler", Concurrency: cfg.Concurrency, MiBPerSec: mib}, err); err != nil {
		return out, err
	}
	if cfg.Dir != "" {
		mib, direct, err := measureDiskWrite(ctx, cfg.Dir, cfg.Size/4, cfg.Concurrency, cfg.Duration)
		what := fmt.Sprintf("files of %s in 4 MiB direct writes, each synced, in %s", SizeLabel(cfg.Size/4), cfg.Dir)
		if !direct {
			what = fmt.Sprintf("files of %s in 4 MiB writes through the page cache (O_DIRECT refused), each synced, in %s", SizeLabel(cfg.Size/4), cfg.Dir)
		}
		if err := add(Ceiling{Name: CeilingDiskWrite, What: what, Concurrency: cfg.Concurrency, MiBPerSec: mib}, err); err != nil {
			return out, err
		}
	}
	return out, nil
}

// measureLoop runs f in c goroutines until d has passed and returns the
// MiB/s of what they processed.
func measureLoop(ctx context.Context, c int, d time.Duration, f func() (int64, error)) (float64, error) {
	var total atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				n, err := f()
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				total.Add(n)
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return float64(total.Load()) / (1 << 20) / time.Since(start).Seconds(), firstErr
}

// measureHTTP PUTs body to url, or GETs it, from c goroutines for d;
// dial, if set, replaces the transport's TCP dial.
func measureHTTP(ctx context.Context, url string, dial func(context.Context, string, string) (net.Conn, error), put bool, body []byte, c int, d time.Duration) (float64, error) {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr := &http.Transport{
		Proxy: nil, MaxIdleConns: 2 * c, MaxIdleConnsPerHost: 2 * c, DisableCompression: true,
		WriteBufferSize: 256 << 10, ReadBufferSize: 256 << 10,
		// The generator's client sends bodies without a copy
		// (bodyconn.Conn); so does this one, or the ceiling would charge
		// the path a copy the generator no longer makes.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return bodyconn.Conn{Conn: conn}, nil
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	return measureLoop(ctx, c, d, func() (int64, error) {
		var req *http.Request
		var err error
		if put {
			req, err = http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		}
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		n, err := drain(resp.Body, nil)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s %s: %s", req.Method, url, resp.Status)
		}
		if put {
			return int64(len(body)), nil
		}
		if n != int64(len(body)) {
			return 0, fmt.Errorf("GET %s: %d bytes, want %d", url, n, len(body))
		}
		return n, nil
	})
}

// drain reads r to the end through a 256 KiB buffer, writing to w if set.
func drain(r io.Reader, w io.Writer) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if w != nil && k > 0 {
			_, _ = w.Write(buf[:k])
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

type ceilingServers struct {
	origin, proxy string
	// originUnix is the origin's abstract Unix socket ("" where there is
	// none).
	originUnix string
	md5        md5simd.Server
	lanes      *md5lanes.Server
	close      func()
}

// startCeilingServers starts the origin (PUT /discard, PUT /md5, GET
// /object) and a proxy in front of its GET /object.
func startCeilingServers(body []byte) (*ceilingServers, error) {
	md5srv := md5simd.NewServer()
	lanes := md5lanes.NewServer()
	var inFlight atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /discard", func(w http.ResponseWriter, r *http.Request) {
		if _, err := drain(r.Body, nil); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("PUT /md5", func(w http.ResponseWriter, r *http.Request) {
		var h hash.Hash = md5.New()
		if n := inFlight.Add(1); n >= md5MinStreams && md5lanes.Available() {
			h = lanes.New()
		}
		defer inFlight.Add(-1)
		if _, err := drain(r.Body, h); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf("%q", fmt.Sprintf("%x", h.Sum(nil))))
	})
	mux.HandleFunc("PUT /crypto-md5", func(w http.ResponseWriter, r *http.Request) {
		h := md5.New()
		if _, err := drain(r.Body, h); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf("%q", fmt.Sprintf("%x", h.Sum(nil))))
	})
	mux.HandleFunc("GET /object", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	origin, closeOrigin, err := serveLoopback(mux)
	if err != nil {
		md5srv.Close()
		return nil, err
	}
	// The same origin on an abstract Unix socket, where the OS has them.
	originUnix, closeOriginUnix := "", func() {}
	if runtime.GOOS == "linux" {
		name := fmt.Sprintf("@cairn-s3bench-ceiling-%d-%d", os.Getpid(), time.Now().UnixNano())
		if ln, err := net.Listen("unix", name); err == nil {
			usrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = usrv.Serve(ln) }()
			originUnix, closeOriginUnix = name, func() { _ = usrv.Close() }
		}
	}
	transport := func(dial func(context.Context, string, string) (net.Conn, error)) *http.Transport {
		return &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true, ReadBufferSize: 256 << 10, DialContext: dial}
	}
	ptr, ptrUnix := transport(nil), transport(unixDialer(originUnix))
	forward := func(tr *http.Transport, url string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, url, nil)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.Header().Set("Content-Length", resp.Header.Get("Content-Length"))
			_, _ = drain(resp.Body, w)
		}
	}
	pmux := http.NewServeMux()
	pmux.HandleFunc("GET /object", forward(ptr, origin+"/object"))
	if originUnix != "" {
		pmux.HandleFunc("GET /object-unix", forward(ptrUnix, "http://unix/object"))
	}
	proxy, closeProxy, err := serveLoopback(pmux)
	if err != nil {
		closeOriginUnix()
		closeOrigin()
		md5srv.Close()
		return nil, err
	}
	return &ceilingServers{origin: origin, proxy: proxy, originUnix: originUnix, md5: md5srv, lanes: lanes, close: func() {
		closeProxy()
		ptr.CloseIdleConnections()
		ptrUnix.CloseIdleConnections()
		closeOriginUnix()
		closeOrigin()
		md5srv.Close()
	}}, nil
}

// unixDialer dials the Unix socket name whatever address it is asked for.
func unixDialer(name string) func(context.Context, string, string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", name)
	}
}

func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}
