package blob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Storage is what the HTTP API needs of a chunk store. *Store is the real
// one; tests (and Config.WrapStorage) put a wrapper with programmed faults
// in front of it.
type Storage interface {
	// Put stores a chunk read from r (size -1 when unknown) and returns
	// the bytes stored once they are durable. A body that fails or ends
	// early leaves nothing behind.
	Put(ctx context.Context, id chunk.ID, r io.Reader, size int64) (int64, error)
	// Open opens a chunk for reading; ErrNotFound when missing.
	Open(ctx context.Context, id chunk.ID) (File, Info, error)
	// Stat describes a chunk; ErrNotFound when missing.
	Stat(ctx context.Context, id chunk.ID) (Info, error)
	// Delete removes a chunk durably; a missing chunk is not an error.
	Delete(ctx context.Context, id chunk.ID) error
	// List returns chunks whose ids sort after after, up to limit, and
	// whether more follow.
	List(ctx context.Context, after string, limit int) ([]Info, bool, error)
	// Usage is capacity, bytes used and chunk count.
	Usage() Usage
	// CheckWritable fails when the data directory cannot be written.
	CheckWritable(ctx context.Context) error
}

var _ Storage = (*Store)(nil)

// HandlerConfig configures the HTTP API.
type HandlerConfig struct {
	// Logger; nil discards. Narrowed with component=blob.
	Logger *slog.Logger
	// Registry gets the API's metrics and is served at /metrics; nil
	// means a fresh registry.
	Registry *prometheus.Registry
	// Node labels the metrics, so several nodes can share a registry, and
	// is the id GET /local answers.
	Node string
	// LocalSocket is the Unix socket the node also serves on, which GET
	// /local names; "" for none.
	LocalSocket string
	// DiskStalled, when set, fails /healthz at once while it returns an
	// error (the node's diskWatch), before the writability check that
	// would hang on a stalled disk.
	DiskStalled func() error
}

// Headers of chunk responses besides the standard ones.
const (
	// modTimeHeader is the chunk's modification time in Unix nanoseconds
	// (Last-Modified has only seconds).
	modTimeHeader = "X-Cairn-Modified"
	// Stripe responses: the chunk's block size and stripe count.
	blockSizeHeader  = "X-Cairn-Block-Size"
	numStripesHeader = "X-Cairn-Stripes"
)

// handler serves the blob HTTP API over a Storage.
type handler struct {
	st          Storage
	log         *slog.Logger
	m           *metrics
	mux         *http.ServeMux
	node        string
	localSocket string
	diskStalled func() error
}

// NewHandler returns the blob HTTP API over st:
//
//	PUT    /chunks/{id}                 store a chunk (body streamed; Content-Length optional)
//	GET    /chunks/{id}                 the chunk; "Range: bytes=a-b" for one byte range
//	GET    /chunks/{id}?stripes=A-B     the framed blocks of stripes [A, B)
//	HEAD   /chunks/{id}                 size and modification time
//	DELETE /chunks/{id}                 remove (idempotent)
//	GET    /chunks?after=ID&limit=N     JSON page of chunks in id order
//	GET    /local                       JSON {"node", "socket"}: the node's id and Unix socket (localsock.go)
//	GET    /healthz                     200 when the data directory is writable
//	GET    /metrics                     Prometheus metrics
//
// Errors are a status and a JSON body {"code", "message"}; see errors.go.
func NewHandler(st Storage, cfg HandlerConfig) http.Handler {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	h := &handler{st: st, log: log.With("component", "blob"), mux: http.NewServeMux(), node: cfg.Node, localSocket: cfg.LocalSocket, diskStalled: cfg.DiskStalled}
	h.m = newMetrics(reg, st, cfg.Node)
	// {id...} takes the rest of the path, so "a/b" reaches ParseID and is
	// refused there (400) instead of falling through to a 404.
	h.mux.HandleFunc("PUT /chunks/{id...}", h.m.instrument("put", h.put))
	h.mux.HandleFunc("GET /chunks/{id...}", h.m.instrument("get", h.get))
	h.mux.HandleFunc("HEAD /chunks/{id...}", h.m.instrument("head", h.head))
	h.mux.HandleFunc("DELETE /chunks/{id...}", h.m.instrument("delete", h.delete))
	h.mux.HandleFunc("GET /chunks", h.m.instrument("list", h.list))
	h.mux.HandleFunc("GET "+localPath, h.local)
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// ServeMux would answer a path with dot segments or doubled slashes
	// with a redirect to its cleaned form; for a chunk path that is a bad
	// id, and saying so is clearer than a redirect to another resource.
	if p := r.URL.Path; strings.HasPrefix(p, "/chunks/") && path.Clean(p) != p {
		h.fail(w, r, fmt.Errorf("chunk path %q: %w", p, chunk.ErrBadID))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// chunkID parses the id in the path, answering 400 when it is not one.
func (h *handler) chunkID(w http.ResponseWriter, r *http.Request) (chunk.ID, bool) {
	id, err := chunk.ParseID(r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return chunk.ID{}, false
	}
	return id, true
}

func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	id, ok := h.chunkID(w, r)
	if !ok {
		return
	}
	// The store writes what the verifier passes; the verifier's verdict
	// arrives as the body's end (or as an error in its place).
	vr := newVerifyingReader(incompleteReader{r.Body}, id)
	defer vr.Close()
	n, err := h.st.Put(r.Context(), id, vr, r.ContentLength)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.m.bytesIn.Add(float64(n))
	w.WriteHeader(http.StatusCreated)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	id, ok := h.chunkID(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	stripes, isStripes := q["stripes"]
	if isStripes && (len(stripes) != 1 || r.Header.Get("Range") != "") {
		h.fail(w, r, fmt.Errorf("one stripes parameter, and no Range with it: %w", errBadRequest))
		return
	}
	var from, to int
	if isStripes {
		var err error
		if from, to, err = parseStripes(stripes[0]); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	f, info, err := h.st.Open(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer f.Close()
	if isStripes {
		h.getStripes(w, r, f, info, from, to)
		return
	}
	off, n, status := int64(0), info.Size, http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" {
		if off, n, err = parseByteRange(rh, info.Size); err != nil {
			if errors.Is(err, ErrBadRange) {
				w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(info.Size, 10))
			}
			h.fail(w, r, err)
			return
		}
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, info.Size))
	}
	h.sendFile(w, r, f, info, off, n, status)
}

// getStripes sends the framed blocks of stripes [from, to): the bytes
// [StripeOffset(from), StripeOffset(to)) of the chunk file, located from
// its header and length. Blocks are not checked here; the reader checks
// every one (chunk.ShardSource), so a bad block costs no extra pass.
func (h *handler) getStripes(w http.ResponseWriter, r *http.Request, f File, info Info, from, to int) {
	var hb [chunk.HeaderSize]byte
	if _, err := f.ReadAt(hb[:], 0); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%d-byte file: %w", info.Size, chunk.ErrCorrupt)
		}
		h.fail(w, r, fmt.Errorf("read header of chunk %s: %w", info.ID, err))
		return
	}
	hdr, err := chunk.ParseHeader(hb[:])
	if err == nil && hdr.ID() != info.ID {
		err = fmt.Errorf("header names chunk %s: %w", hdr.ID(), chunk.ErrCorrupt)
	}
	var fr chunk.Framing
	if err == nil {
		fr, err = chunk.FramingFromChunkSize(hdr.Params.BlockSize, info.Size)
	}
	if err != nil {
		h.fail(w, r, fmt.Errorf("chunk %s: %w", info.ID, err))
		return
	}
	if to > fr.NumStripes {
		w.Header().Set(numStripesHeader, strconv.Itoa(fr.NumStripes))
		h.fail(w, r, fmt.Errorf("stripes [%d, %d) of a chunk of %d: %w", from, to, fr.NumStripes, ErrBadRange))
		return
	}
	w.Header().Set(blockSizeHeader, strconv.Itoa(fr.BlockSize))
	w.Header().Set(numStripesHeader, strconv.Itoa(fr.NumStripes))
	off := fr.StripeOffset(from)
	h.sendFile(w, r, f, info, off, fr.StripeOffset(to)-off, http.StatusOK)
}

// sendFile sends n bytes of f from off. Copying from the *os.File itself
// (not a wrapper) lets net/http use sendfile.
func (h *handler) sendFile(w http.ResponseWriter, r *http.Request, f File, info Info, off, n int64, status int) {
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			h.fail(w, r, fmt.Errorf("seek chunk %s: %w", info.ID, err))
			return
		}
	}
	setInfoHeaders(w.Header(), info)
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.CopyN(w, f, n); err != nil {
		// The status is sent; the client sees a short body.
		h.log.Warn("send chunk", "id", info.ID, "remote", r.RemoteAddr, "err", err)
	}
}

func setInfoHeaders(hd http.Header, info Info) {
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
	hd.Set(modTimeHeader, strconv.FormatInt(info.ModTime.UnixNano(), 10))
}

func (h *handler) head(w http.ResponseWriter, r *http.Request) {
	id, ok := h.chunkID(w, r)
	if !ok {
		return
	}
	info, err := h.st.Stat(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setInfoHeaders(w.Header(), info)
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.WriteHeader(http.StatusOK)
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := h.chunkID(w, r)
	if !ok {
		return
	}
	if err := h.st.Delete(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listResponse is the JSON body of GET /chunks.
type listResponse struct {
	Chunks []listEntry `json:"chunks"`
	// More is true when chunks after the last one exist.
	More bool `json:"more"`
}

type listEntry struct {
	ID      string `json:"id"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_unix_nano"`
}

// maxAfterLen bounds the after parameter (an id is 35 bytes).
const maxAfterLen = 64

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after := q.Get("after")
	if len(after) > maxAfterLen {
		h.fail(w, r, fmt.Errorf("after: %d bytes, at most %d: %w", len(after), maxAfterLen, errBadRequest))
		return
	}
	limit := MaxListLimit
	if s := q.Get("limit"); s != "" {
		v, ok := parseDigits(s)
		if !ok || v == 0 {
			h.fail(w, r, fmt.Errorf("limit %q: want a positive integer: %w", s, errBadRequest))
			return
		}
		limit = int(min(v, MaxListLimit))
	}
	infos, more, err := h.st.List(r.Context(), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := listResponse{Chunks: make([]listEntry, len(infos)), More: more}
	for i, in := range infos {
		resp.Chunks[i] = listEntry{ID: in.ID.String(), Size: in.Size, ModTime: in.ModTime.UnixNano()}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		h.log.Warn("send chunk list", "remote", r.RemoteAddr, "err", err)
	}
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	if h.diskStalled != nil {
		if err := h.diskStalled(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	if err := h.st.CheckWritable(r.Context()); err != nil {
		h.log.Error("health check", "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok\n")
}

// fail answers with the status and code the error maps to and logs it:
// server-side failures as errors, the client's mistakes at debug level.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := statusOf(err)
	if cerr := r.Context().Err(); cerr != nil && errors.Is(err, cerr) {
		// The client went away (or the server is shutting down); nobody
		// will read the answer.
		status, code = 499, "ClientClosed"
	}
	log := h.log.Debug
	switch {
	case status >= 500:
		log = h.log.Error
	case errors.Is(err, ErrIncomplete) || status == 499:
		log = h.log.Warn
	}
	log("request failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "err", err)
	hd := w.Header()
	hd.Set(errorCodeHeader, code)
	hd.Set("Content-Type", "application/json")
	hd.Del("Content-Length")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		json.NewEncoder(w).Encode(errorBody{Code: code, Message: err.Error()})
	}
}

// Server is a blob node: the chunk store, its HTTP API on a listener, and
// (with a Registrar) registration and heartbeats to metad.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *Store
	ln    net.Listener
	srv   *http.Server
	// uln serves the same API on the node's Unix socket, named socket;
	// nil when off.
	uln    net.Listener
	socket string

	// Self-healing, each nil when off: the executor and reconciliation
	// need a Registrar.
	client *Client // to peers, for repairs and moves
	exec   *Executor
	scrub  *Scrubber
	recon  *Reconciler
	// disk probes the data disk; nil when DiskStallTimeout is negative.
	disk *diskWatch
	// heartbeatsWithheld counts heartbeats not sent for a stalled disk.
	heartbeatsWithheld prometheus.Counter
	// registered is closed once the node has registered with metad:
	// reconciliation asks about the node's chunks only after that.
	registered     chan struct{}
	registeredOnce sync.Once

	closeOnce sync.Once
	closeErr  error
}

// NewServer opens the store and listens on cfg.Addr; Run serves.
func NewServer(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "blob", "node", cfg.ID)
	store, err := OpenStore(StoreConfig{Dir: cfg.DataDir, Capacity: cfg.Capacity, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := claimDataDir(cfg.DataDir, cfg.ID); err != nil {
		store.Close()
		return nil, err
	}
	var st Storage = store
	if cfg.WrapStorage != nil {
		st = cfg.WrapStorage(st)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("blob node %s: listen: %w", cfg.ID, err)
	}
	socket, uln, err := listenLocal(cfg.LocalSocket, ln.Addr().String())
	if err != nil {
		if cfg.LocalSocket != "" {
			ln.Close()
			store.Close()
			return nil, fmt.Errorf("blob node %s: %w", cfg.ID, err)
		}
		// The derived name was not asked for: serving TCP alone is what
		// a node did before it had a socket.
		log.Warn("serving without a local socket", "err", err)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: log, store: store, ln: ln, uln: uln, socket: socket, registered: make(chan struct{})}
	var diskStalled func() error
	if cfg.DiskStallTimeout > 0 {
		s.disk = &diskWatch{probe: st.CheckWritable, timeout: cfg.DiskStallTimeout}
		diskStalled = s.disk.check
	}
	s.registerDiskMetrics(cfg.Registry)
	s.startHealing(st)
	conns := connCounter(cfg.Registry, cfg.ID)
	s.srv = &http.Server{
		Handler: NewHandler(st, HandlerConfig{Logger: cfg.Logger, Registry: cfg.Registry, Node: cfg.ID, LocalSocket: socket, DiskStalled: diskStalled}),
		// No read or write timeout: a chunk stream may take as long as it
		// takes. Headers must come promptly, and idle connections go.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState: func(c net.Conn, state http.ConnState) {
			if state == http.StateNew {
				conns.WithLabelValues(c.LocalAddr().Network()).Inc()
			}
		},
	}
	return s, nil
}

// startHealing sets up the executor of metad's tasks, the scrubber and
// orphan reconciliation, as configured. st is the store the API serves
// (faults injected through Config.WrapStorage apply to repairs and scrubs
// too); reconciliation deletes through the store itself, whose
// DeleteIfUnchanged it needs.
func (s *Server) startHealing(st Storage) {
	cfg := s.cfg
	log := cfg.Logger.With("node", cfg.ID)
	s.client = NewClient(ClientConfig{LocalSockets: cfg.PeerLocalSockets})
	var reporter ChunkReporter
	if cfg.Registrar != nil {
		reporter = cfg.Registrar
		s.exec = NewExecutor(ExecutorConfig{
			Node: cfg.ID, Store: st, Client: s.client, Reporter: cfg.Registrar,
			Concurrency: cfg.TaskConcurrency, Timeout: cfg.TaskTimeout,
			Logger: log, Registry: cfg.Registry,
		})
		if cfg.ReconcileInterval > 0 {
			s.recon = NewReconciler(s.store, ReconcileConfig{
				Node: cfg.ID, Checker: cfg.Registrar, Grace: cfg.OrphanGrace, Interval: cfg.ReconcileInterval,
				Logger: log, Registry: cfg.Registry,
			})
		}
	}
	if cfg.ScrubRate > 0 {
		s.scrub = NewScrubber(st, ScrubConfig{
			Node: cfg.ID, Rate: cfg.ScrubRate, Interval: cfg.ScrubInterval, Reporter: reporter,
			CursorFile: scrubCursorPath(cfg.DataDir), Logger: log, Registry: cfg.Registry,
		})
	}
}

// Executor runs the tasks metad hands the node; nil without a Registrar.
func (s *Server) Executor() *Executor { return s.exec }

// Scrubber verifies the node's chunks; nil when scrubbing is off.
func (s *Server) Scrubber() *Scrubber { return s.scrub }

// Reconciler deletes the node's orphans; nil when off or without a
// Registrar.
func (s *Server) Reconciler() *Reconciler { return s.recon }

// Addr is the address the API listens on (with the real port when
// Config.Addr asked for port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// LocalSocket is the Unix socket the API also listens on ("@name" for an
// abstract one), or "" when none.
func (s *Server) LocalSocket() string { return s.socket }

// Store is the node's chunk store.
func (s *Server) Store() *Store { return s.store }

// Run serves the API, and registers and heartbeats when a Registrar is
// configured, until ctx ends; then it stops accepting requests and waits
// (up to Config.ShutdownTimeout) for those in flight. It returns nil after a
// clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	listeners := []net.Listener{s.ln}
	if s.uln != nil {
		listeners = append(listeners, s.uln)
	}
	serveErr := make(chan error, len(listeners))
	for _, ln := range listeners {
		go func() { serveErr <- s.srv.Serve(ln) }()
	}

	loopCtx, stopLoop := context.WithCancel(ctx)
	loopDone := make(chan struct{})
	var loops sync.WaitGroup
	if s.disk != nil {
		loops.Go(func() { s.disk.run(loopCtx, s.cfg.HeartbeatInterval) })
	}
	if s.cfg.Registrar != nil {
		loops.Go(func() { s.registerAndHeartbeat(loopCtx) })
	}
	if s.exec != nil {
		loops.Go(func() { s.exec.Run(loopCtx) })
	}
	if s.scrub != nil {
		loops.Go(func() { s.scrub.Run(loopCtx) })
	}
	if s.recon != nil {
		loops.Go(func() {
			select {
			case <-s.registered:
				s.recon.Run(loopCtx)
			case <-loopCtx.Done():
			}
		})
	}
	go func() {
		loops.Wait()
		close(loopDone)
	}()
	s.log.Info("serving", "addr", s.Addr(), "local_socket", s.socket, "data_dir", s.cfg.DataDir)

	var err error
	select {
	case <-ctx.Done():
		// Stop heartbeating (and the tasks, scrubbing and reconciliation)
		// before the API goes, so metad does not see a live node that
		// refuses connections.
		stopLoop()
		<-loopDone
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		// Shutdown closes both listeners and waits for the requests on
		// either.
		if serr := s.srv.Shutdown(sctx); serr != nil {
			s.log.Warn("shutdown: closing connections still busy", "err", serr)
			s.srv.Close()
		}
		for range listeners {
			<-serveErr
		}
	case err = <-serveErr:
		stopLoop()
		<-loopDone
		// One listener failed (or Close was called): the other stops too.
		s.srv.Close()
		for range len(listeners) - 1 {
			<-serveErr
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else {
			err = fmt.Errorf("blob node %s: serve: %w", s.cfg.ID, err)
		}
	}
	return err
}

// Close stops serving at once (if Run is still going, it returns) and
// releases the store. Call it once Run has returned, or instead of Run.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		// The listener goes first so nothing new reaches the store.
		err := s.srv.Close()
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.ln.Close()
		if s.uln != nil {
			s.uln.Close()
		}
		s.client.Close()
		s.closeErr = errors.Join(err, s.store.Close())
	})
	return s.closeErr
}
