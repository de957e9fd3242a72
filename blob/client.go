package blob

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/bodyconn"
)

// ClientConfig configures a Client. Zero values mean the defaults.
type ClientConfig struct {
	// DialTimeout bounds connecting to a node (default 5s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a response's headers
	// once the request, body included, is sent (default 30s). Bodies
	// themselves have no time limit: cancel the ctx to stop a stream.
	ResponseHeaderTimeout time.Duration
	// MaxConnsPerHost keeps this many idle connections to each node
	// (default 64): a gateway writes many segments in parallel, each
	// with one stream per node.
	MaxConnsPerHost int
	// Transport replaces the client's own (tests; a fault proxy).
	Transport http.RoundTripper
	// LocalSockets lets the client reach nodes on this host over their
	// Unix sockets instead of loopback TCP (localsock.go): same requests,
	// about half the CPU per byte. Off by default, so that tests which
	// cut nodes off with TCP proxies keep their faults effective; never
	// used with Transport.
	LocalSockets bool
}

// Client talks to blob nodes. One Client, with its connection pools, is
// meant to be shared by everything in a process that talks to blob nodes.
type Client struct {
	hc    *http.Client // reads, deletes, listings
	up    *http.Client // chunk uploads (Put)
	local *localRouter // nil unless ClientConfig.LocalSockets
}

// Connection buffers. A chunk GET streams its body through the read
// buffer, so that one is large. A chunk PUT's response is headers only and
// its body bypasses the write buffer (bufio.Writer.ReadFrom hands the body
// to the connection once the flushed headers leave it empty), so upload
// connections get small buffers: a gateway with 64 uploads in flight holds
// ~400 upload connections, and 64 KiB each way on every one of them was
// 50 MiB of its heap.
const (
	getReadBufferSize  = 64 << 10
	getWriteBufferSize = 64 << 10
	upBufferSize       = 4 << 10
	// getSocketRecvBuffer is SO_RCVBUF of the connections chunk GETs use
	// (the kernel doubles it, and caps it at net.core.rmem_max). Left to
	// autotuning, the window grew in small steps and every read's window
	// update made the blob node send the next segments inside the
	// gateway's read syscall. Measured at GET 64 MiB c16, two gateways
	// side by side on one cluster: 7% less gateway CPU per MiB (part of it
	// now spent by the blob nodes, +0.02-0.03 ms per MiB in all). The
	// kernel allocates it only for data that has arrived and not been read.
	getSocketRecvBuffer = 4 << 20
)

// NewClient returns a client with pooled transports.
func NewClient(cfg ClientConfig) *Client {
	if cfg.Transport != nil {
		hc := &http.Client{Transport: cfg.Transport}
		return &Client{hc: hc, up: hc}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = 30 * time.Second
	}
	if cfg.MaxConnsPerHost <= 0 {
		cfg.MaxConnsPerHost = 64
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	transport := func(dial func(context.Context, string, string) (net.Conn, error), readBuf, writeBuf int) *http.Transport {
		return &http.Transport{
			DialContext:           dial,
			MaxIdleConns:          0, // no overall cap; per host below
			MaxIdleConnsPerHost:   cfg.MaxConnsPerHost,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
			// Chunks are incompressible, and transparent gzip would
			// hide Content-Length from GetRange's length check.
			DisableCompression: true,
			ReadBufferSize:     readBuf,
			WriteBufferSize:    writeBuf,
		}
	}
	var local *localRouter
	if cfg.LocalSockets {
		local = newLocalRouter(cfg.DialTimeout)
	}
	// The Unix socket, when the node at addr is on this host; else TCP.
	// The transports pool connections by addr whichever carries them.
	withLocal := func(dial func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
		if local == nil {
			return dial
		}
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			if c := local.dial(ctx, addr); c != nil {
				return c, nil
			}
			return dial(ctx, network, addr)
		}
	}
	dialUpload := withLocal(d.DialContext)
	dialUploadConn := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialUpload(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return bodyconn.Conn{Conn: c}, nil
	}
	// SO_RCVBUF is for TCP only: a Unix stream socket queues what its
	// sender's SO_SNDBUF allows, whatever the receiver's buffer says.
	gd := *d
	gd.Control = setRecvBuffer(getSocketRecvBuffer)
	return &Client{
		hc:    &http.Client{Transport: transport(withLocal(gd.DialContext), getReadBufferSize, getWriteBufferSize)},
		up:    &http.Client{Transport: transport(dialUploadConn, upBufferSize, upBufferSize)},
		local: local,
	}
}

// Close drops idle connections (and stops the probes of local sockets
// under way).
func (c *Client) Close() {
	c.hc.CloseIdleConnections()
	c.up.CloseIdleConnections()
	if c.local != nil {
		c.local.close()
	}
}

func chunkURL(addr string, id chunk.ID) string {
	return "http://" + addr + "/chunks/" + id.String()
}

// do sends a request and turns a non-2xx answer into an error (the body is
// drained and closed then).
func (c *Client) do(req *http.Request) (*http.Response, error) {
	return c.doWith(c.hc, req)
}

func (c *Client) doWith(hc *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &ResponseError{Status: resp.StatusCode, Code: resp.Header.Get(errorCodeHeader)}
	var body errorBody
	if req.Method != http.MethodHead {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		if json.Unmarshal(b, &body) == nil {
			e.Message = body.Message
			if e.Code == "" {
				e.Code = body.Code
			}
		} else {
			e.Message = strings.TrimSpace(string(b))
		}
	}
	return nil, e
}

// Put uploads a chunk from body, streaming it. size is its length, or -1
// if unknown (then it is sent chunked). Put returns once the node has the
// chunk durably.
func (c *Client) Put(ctx context.Context, addr string, id chunk.ID, body io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, chunkURL(addr, id), io.NopCloser(body))
	if err != nil {
		return fmt.Errorf("put chunk %s to %s: %w", id, addr, err)
	}
	if size == 0 {
		req.Body = http.NoBody
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.doWith(c.up, req)
	if err != nil {
		return fmt.Errorf("put chunk %s to %s: %w", id, addr, err)
	}
	resp.Body.Close()
	return nil
}

// Get streams a whole chunk. The caller closes the reader; a chunk that
// ends short is a read error (io.ErrUnexpectedEOF), never a silent EOF.
func (c *Client) Get(ctx context.Context, addr string, id chunk.ID) (io.ReadCloser, error) {
	resp, err := c.get(ctx, chunkURL(addr, id), nil)
	if err != nil {
		return nil, fmt.Errorf("get chunk %s from %s: %w", id, addr, err)
	}
	return resp.Body, nil
}

// GetRange streams n bytes of a chunk from offset off (n > 0). A range
// past the chunk's end is ErrBadRange.
func (c *Client) GetRange(ctx context.Context, addr string, id chunk.ID, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("get chunk %s from %s: bytes [%d, +%d): %w", id, addr, off, n, ErrBadRange)
	}
	resp, err := c.get(ctx, chunkURL(addr, id), http.Header{"Range": {formatByteRange(off, n)}})
	if err == nil && (resp.StatusCode != http.StatusPartialContent || resp.ContentLength != n) {
		resp.Body.Close()
		err = fmt.Errorf("asked for %d bytes at %d, got status %d with %d bytes: %w",
			n, off, resp.StatusCode, resp.ContentLength, ErrBadRange)
	}
	if err != nil {
		return nil, fmt.Errorf("get chunk %s bytes [%d, +%d) from %s: %w", id, off, n, addr, err)
	}
	return resp.Body, nil
}

// GetStripes streams the framed blocks (each block followed by its
// checksum) of stripes [from, to) of a chunk.
func (c *Client) GetStripes(ctx context.Context, addr string, id chunk.ID, from, to int) (io.ReadCloser, error) {
	if from < 0 || to < from {
		return nil, fmt.Errorf("get chunk %s stripes [%d, %d) from %s: %w", id, from, to, addr, ErrBadRange)
	}
	u := chunkURL(addr, id) + "?stripes=" + formatStripes(from, to)
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("get chunk %s stripes [%d, %d) from %s: %w", id, from, to, addr, err)
	}
	return resp.Body, nil
}

func (c *Client) get(ctx context.Context, u string, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return c.do(req)
}

// Stat describes a chunk on a node.
func (c *Client) Stat(ctx context.Context, addr string, id chunk.ID) (Info, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, chunkURL(addr, id), nil)
	if err != nil {
		return Info{}, fmt.Errorf("stat chunk %s on %s: %w", id, addr, err)
	}
	resp, err := c.do(req)
	if err != nil {
		return Info{}, fmt.Errorf("stat chunk %s on %s: %w", id, addr, err)
	}
	resp.Body.Close()
	info := Info{ID: id, Size: resp.ContentLength}
	if ns, err := strconv.ParseInt(resp.Header.Get(modTimeHeader), 10, 64); err == nil {
		info.ModTime = time.Unix(0, ns)
	} else if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.ModTime = t
	}
	return info, nil
}

// Delete removes a chunk from a node; a missing chunk is not an error.
func (c *Client) Delete(ctx context.Context, addr string, id chunk.ID) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, chunkURL(addr, id), nil)
	if err != nil {
		return fmt.Errorf("delete chunk %s on %s: %w", id, addr, err)
	}
	resp, err := c.do(req)
	if err != nil {
		return fmt.Errorf("delete chunk %s on %s: %w", id, addr, err)
	}
	resp.Body.Close()
	return nil
}

// List returns one page of a node's chunks in id order: up to limit (at
// most MaxListLimit; ≤ 0 means that) whose ids sort after after ("" for
// the first page), and whether more follow. The next page starts after the
// last id returned.
func (c *Client) List(ctx context.Context, addr string, after string, limit int) ([]Info, bool, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	u := "http://" + addr + "/chunks"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("list chunks on %s: %w", addr, err)
	}
	defer resp.Body.Close()
	var lr listResponse
	if err := json.NewDecoder(resp.Body).Decode(&lr); err != nil {
		return nil, false, fmt.Errorf("list chunks on %s: decode: %w", addr, err)
	}
	out := make([]Info, len(lr.Chunks))
	for i, e := range lr.Chunks {
		id, err := chunk.ParseID(e.ID)
		if err != nil {
			return nil, false, fmt.Errorf("list chunks on %s: %w", addr, err)
		}
		out[i] = Info{ID: id, Size: e.Size, ModTime: time.Unix(0, e.ModTime)}
	}
	return out, lr.More, nil
}
