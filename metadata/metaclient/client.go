// Package metaclient is the client of the metadata service (metad). It
// finds the Raft leader among the members it is given, follows NotLeader
// redirects, retries where that is safe, and turns gRPC status errors back
// into metaerr conditions, so callers write
// errors.Is(err, metaerr.ErrNoSuchKey). It imports neither Raft nor Badger.
//
// # Retries and mutations
//
// A read is retried on another member after any Unavailable error, and a
// read of the gateways' data path also when a member has not answered it
// within Options.ReadAttemptTimeout (a frozen member). A
// mutation is retried only when it certainly did not take effect: the member
// answered NotLeader (it refused before proposing), or no connection to the
// member could be made before the request was sent. When a connection fails
// after a mutation was sent, the outcome is unknown (the entry may have
// been committed); the error is returned and the caller decides. Commands
// are designed so that a repeat is mostly harmless (CommitObject of the same
// version, DeleteObject), but conditional ones are not: a repeated
// must_not_exist commit answers PreconditionFailed to its own first success.
//
// Retrying continues until the caller's context ends; give every call a
// deadline.
package metaclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Options tune a Client. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// DialOptions are passed to grpc.NewClient for every member; the default
	// is plaintext (insecure credentials).
	DialOptions []grpc.DialOption
	// MinBackoff and MaxBackoff bound the pause between attempts when no
	// member is known to be the leader (default 10ms and 500ms).
	MinBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds how long a mutation waits for a connection to a
	// member before trying the next one (default 2s).
	ConnectTimeout time.Duration
	// ReadAttemptTimeout bounds one attempt of a data-path read (the
	// methods in attemptBounded) on one member: past it the read goes to
	// the next member, and so do the client's later calls. Default
	// DefaultReadAttemptTimeout; negative: none.
	ReadAttemptTimeout time.Duration
	// CommitStuckAfter is how long every CommitObjects call in flight may
	// go unanswered before the commits queued behind them go in a call of
	// their own, to the next member (commitbatch.go). Default
	// DefaultReadAttemptTimeout; negative: never.
	CommitStuckAfter time.Duration
	// CommitCalls is how many CommitObjects calls carrying CommitObject
	// commits the client keeps in flight; commits made while all are busy
	// go together in the next (commitbatch.go). Default
	// DefaultCommitCalls; negative sends every commit on its own.
	CommitCalls int
}

// Keepalive makes a connection with calls in flight ping its member after
// 10 s without a frame from it (gRPC's shortest interval), and close when the
// ping goes unanswered for 3 s: the calls then fail, and the next go to
// another member. Without it, a member that stops without closing its
// sockets (SIGSTOP, a VM paused, a partition that drops packets) held every
// call sent to it, as its kernel kept the connection open: a frozen Raft
// leader, which the others replace within seconds, stalled the gateways'
// writes until it came back. metad's server accepts pings this often
// (metadata.KeepaliveEnforcement).
var Keepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 3 * time.Second}

// DefaultReadAttemptTimeout is Options.ReadAttemptTimeout's default. A
// member that stops without closing its sockets (see Keepalive) holds a
// call until keepalive gives up on it, 13 s; a read bounded so can go
// elsewhere sooner. The data-path reads take milliseconds (a linearizable
// read waits for one heartbeat round of the leader), so 3 s is a member
// that is not answering, or a machine so loaded that asking again costs
// little.
const DefaultReadAttemptTimeout = 3 * time.Second

// Client is a metadatapb.MetadataClient over all members of one metad
// cluster. It is safe for concurrent use.
type Client struct {
	metadatapb.MetadataClient
	r       *router
	commits *commitBatcher // nil: CommitObject unbatched
}

var _ metadatapb.MetadataClient = (*Client)(nil)

// New returns a client for the metad members at addrs (gRPC host:port).
// It does not connect until the first call.
func New(addrs []string, opts Options) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("metaclient: no member addresses")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 10 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(500*time.Millisecond, opts.MinBackoff)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 2 * time.Second
	}
	if opts.ReadAttemptTimeout == 0 {
		opts.ReadAttemptTimeout = DefaultReadAttemptTimeout
	}
	if opts.CommitStuckAfter == 0 {
		opts.CommitStuckAfter = DefaultReadAttemptTimeout
	}
	if len(opts.DialOptions) == 0 {
		opts.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	// Keepalive first, so that a caller's own option overrides it.
	opts.DialOptions = append(append([]grpc.DialOption{grpc.WithKeepaliveParams(Keepalive)}, opts.DialOptions...), grpcbuf.DialOptions()...)
	r := &router{
		opts:  opts,
		log:   opts.Logger.With("component", "metaclient"),
		addrs: slices.Clone(addrs),
		cur:   addrs[0],
		conns: make(map[string]*grpc.ClientConn),
	}
	c := &Client{MetadataClient: metadatapb.NewMetadataClient(r), r: r}
	if opts.CommitCalls == 0 {
		opts.CommitCalls = DefaultCommitCalls
	}
	if opts.CommitCalls > 0 {
		c.commits = newCommitBatcher(c.MetadataClient, opts.CommitCalls)
		c.commits.stuckAfter, c.commits.r = opts.CommitStuckAfter, r
	}
	return c, nil
}

// Close closes every connection. Calls in flight fail.
func (c *Client) Close() error {
	return c.r.close()
}

// Leader returns the address the client currently sends requests to: the
// member it believes is the leader.
func (c *Client) Leader() string {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	return c.r.cur
}

// attemptBounded lists the reads on the gateways' data path, each attempt
// of which Options.ReadAttemptTimeout bounds. Reads whose cost grows with
// the cluster (ClusterStatus, HealthStatus, CheckChunks) are not bounded,
// nor is Heartbeat (a blob node's own loop retries it).
var attemptBounded = map[string]bool{
	metadatapb.Metadata_GetBucket_FullMethodName:            true,
	metadatapb.Metadata_ListBuckets_FullMethodName:          true,
	metadatapb.Metadata_GetObject_FullMethodName:            true,
	metadatapb.Metadata_ListObjects_FullMethodName:          true,
	metadatapb.Metadata_ListObjectVersions_FullMethodName:   true,
	metadatapb.Metadata_GetMultipart_FullMethodName:         true,
	metadatapb.Metadata_ListParts_FullMethodName:            true,
	metadatapb.Metadata_ListMultipartUploads_FullMethodName: true,
	metadatapb.Metadata_GetClusterMap_FullMethodName:        true,
	metadatapb.Metadata_GetAccessKey_FullMethodName:         true,
}

// retrySafe lists the methods that may be sent again after an ambiguous
// failure: reads (the data path's and the others), and the few writes
// whose repeat has the same effect.
var retrySafe = func() map[string]bool {
	m := map[string]bool{
		metadatapb.Metadata_ClusterStatus_FullMethodName:  true,
		metadatapb.Metadata_Heartbeat_FullMethodName:      true,
		metadatapb.Metadata_AnnounceMember_FullMethodName: true,
		metadatapb.Metadata_HealthStatus_FullMethodName:   true,
		metadatapb.Metadata_CheckChunks_FullMethodName:    true,
		// A repeated result is a no-op: its placement commit is a
		// compare-and-set, and a delete's ack waits for all nodes anyway.
		metadatapb.Metadata_ReportTask_FullMethodName: true,
		// Sets the policy to a value: a repeat sets the same.
		metadatapb.Metadata_SetBucketPolicy_FullMethodName:    true,
		metadatapb.Metadata_SetBucketLifecycle_FullMethodName: true,
		// Sets the tags to a value (on whatever version is current).
		metadatapb.Metadata_SetObjectTags_FullMethodName:       true,
		metadatapb.Metadata_SetBucketTags_FullMethodName:       true,
		metadatapb.Metadata_SetBucketCors_FullMethodName:       true,
		metadatapb.Metadata_SetBucketQuota_FullMethodName:      true,
		metadatapb.Metadata_SetBucketEncryption_FullMethodName: true,
		metadatapb.Metadata_SetBucketVersioning_FullMethodName: true,
		metadatapb.Metadata_SetBucketObjectLock_FullMethodName: true,
		// Set a version's lock to a value; a repeat that a changed
		// lock now refuses fails as the first would have.
		metadatapb.Metadata_SetObjectRetention_FullMethodName: true,
		metadatapb.Metadata_SetObjectLegalHold_FullMethodName: true,
		// The caller chose the id and secret: a repeat finds the key it
		// created. Allow and deny are set operations.
		metadatapb.Metadata_CreateAccessKey_FullMethodName: true,
		metadatapb.Metadata_UpdateAccessKey_FullMethodName: true,
		metadatapb.Metadata_ListAccessKeys_FullMethodName:  true,
	}
	maps.Copy(m, attemptBounded)
	return m
}()

// router is the grpc.ClientConnInterface under the generated client: it
// picks the member for each call and retries.
type router struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	addrs  []string // seed addresses plus leaders learned from redirects
	cur    string   // the member believed to be leader
	conns  map[string]*grpc.ClientConn
	closed bool
}

var errClosed = errors.New("metaclient: closed")

func (r *router) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var errs []error
	for addr, cc := range r.conns {
		if err := cc.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close connection to %s: %w", addr, err))
		}
	}
	clear(r.conns)
	return errors.Join(errs...)
}

// target returns the current member and its connection.
func (r *router) target() (string, *grpc.ClientConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "", nil, errClosed
	}
	addr := r.cur
	cc, ok := r.conns[addr]
	if !ok {
		var err error
		// grpc.NewClient does not connect; errors here are about the
		// address or options, never the network.
		cc, err = grpc.NewClient(addr, r.opts.DialOptions...)
		if err != nil {
			return addr, nil, fmt.Errorf("metaclient: client for %s: %w", addr, err)
		}
		r.conns[addr] = cc
	}
	return addr, cc, nil
}

// current is the member calls go to now.
func (r *router) current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// redirect makes leader the current member, learning its address.
func (r *router) redirect(from, leader string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.addrs, leader) {
		r.addrs = append(r.addrs, leader)
	}
	if r.cur == from {
		r.cur = leader
	}
}

// next moves on from a member that failed, unless another call already did.
func (r *router) next(failed string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != failed {
		return
	}
	i := slices.Index(r.addrs, failed)
	r.cur = r.addrs[(i+1)%len(r.addrs)]
}

// connected waits, up to ConnectTimeout, for cc to have a ready
// connection. False means a request sent now would fail without reaching
// the member.
func (r *router) connected(ctx context.Context, cc *grpc.ClientConn) bool {
	// The usual case, without the timer and context a wait costs: this
	// runs before every mutation.
	if cc.GetState() == connectivity.Ready {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.ConnectTimeout)
	defer cancel()
	cc.Connect()
	for {
		s := cc.GetState()
		switch s {
		case connectivity.Ready:
			return true
		case connectivity.TransientFailure, connectivity.Shutdown:
			return false
		}
		if !cc.WaitForStateChange(ctx, s) {
			return false
		}
	}
}

// Invoke implements grpc.ClientConnInterface.
func (r *router) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	safe := retrySafe[method]
	var attemptTimeout time.Duration
	if attemptBounded[method] {
		attemptTimeout = r.opts.ReadAttemptTimeout
	}
	backoff := r.opts.MinBackoff
	redirects := 0
	var lastErr error
	for {
		if err := ctx.Err(); err != nil {
			if lastErr == nil {
				return err
			}
			return fmt.Errorf("%w (last error: %w)", err, lastErr)
		}
		addr, cc, err := r.target()
		if err != nil {
			return err
		}
		if !safe && !r.connected(ctx, cc) {
			// Nothing was sent: safe to try elsewhere.
			lastErr = fmt.Errorf("metaclient: no connection to %s", addr)
			r.next(addr)
			r.sleep(ctx, &backoff)
			continue
		}
		err = r.attempt(ctx, cc, attemptTimeout, method, args, reply, opts...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			// Report the caller's own deadline or cancellation as such,
			// not as the gRPC status it arrives as.
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		if _, ok := ctx.Deadline(); ok && status.Code(err) == codes.DeadlineExceeded {
			// The member saw the caller's deadline (sent along with the
			// call) pass before this side did.
			return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		merr := metaerr.FromStatus(err)
		var nl *metaerr.NotLeaderError
		switch {
		case errors.As(merr, &nl):
			lastErr = merr
			if nl.LeaderAddr != "" && nl.LeaderAddr != addr {
				r.redirect(addr, nl.LeaderAddr)
				redirects++
				// Follow the first redirect at once; more in a row mean
				// members disagree (an election), so pause.
				if redirects > 1 {
					r.sleep(ctx, &backoff)
				}
				continue
			}
			r.next(addr)
			r.sleep(ctx, &backoff)
		case errors.Is(err, errAttemptTimeout):
			lastErr = fmt.Errorf("%s on %s: %w", method, addr, err)
			r.log.Debug("member slow to answer a read, trying next", "addr", addr, "method", method, "timeout", attemptTimeout)
			r.next(addr)
		case status.Code(err) == codes.Unavailable && safe:
			lastErr = merr
			r.log.Debug("member unavailable, trying next", "addr", addr, "method", method, "err", err)
			r.next(addr)
			r.sleep(ctx, &backoff)
		default:
			// Success of another kind, a metadata condition, a context
			// error, or an ambiguous failure of a mutation.
			return merr
		}
	}
}

var errAttemptTimeout = errors.New("no answer within the read attempt timeout")

// attempt sends one call to cc, giving up after timeout (if positive and
// sooner than ctx's deadline) with errAttemptTimeout.
func (r *router) attempt(ctx context.Context, cc *grpc.ClientConn, timeout time.Duration, method string, args, reply any, opts ...grpc.CallOption) error {
	if timeout <= 0 {
		return cc.Invoke(ctx, method, args, reply, opts...)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= timeout {
		return cc.Invoke(ctx, method, args, reply, opts...)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := cc.Invoke(actx, method, args, reply, opts...)
	// The member may see the deadline (sent along with the call) pass
	// before this side does: its DeadlineExceeded is the attempt's too.
	if err != nil && ctx.Err() == nil && (actx.Err() != nil || status.Code(err) == codes.DeadlineExceeded) {
		return fmt.Errorf("%w (%v)", errAttemptTimeout, timeout)
	}
	return err
}

// sleep waits for the current backoff (with jitter) and doubles it. It
// reports false if ctx ended first.
func (r *router) sleep(ctx context.Context, backoff *time.Duration) bool {
	d := *backoff/2 + rand.N(*backoff/2+1)
	*backoff = min(2**backoff, r.opts.MaxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// NewStream implements grpc.ClientConnInterface; the metadata API has no
// streaming methods.
func (r *router) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "metaclient: streaming is not supported")
}
