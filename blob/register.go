package blob

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"time"
)

// NodeInfo is what a blob node registers.
type NodeInfo struct {
	ID string
	// Addr is the HOST:PORT of the node's HTTP API.
	Addr       string
	Zone, Rack string
	Usage      Usage
}

// Registrar is the node's line to metad. Register is called first (and
// again whenever Heartbeat returns ErrUnknownNode); Heartbeat reports the
// usage of the node last registered and returns the tasks metad hands it.
// The rest is what the executor, the scrubber and orphan reconciliation
// need, each declared with its user (tasks.go).
type Registrar interface {
	Register(ctx context.Context, node NodeInfo) error
	Heartbeat(ctx context.Context, usage Usage) ([]Task, error)
	TaskReporter
	ChunkReporter
	ChunkChecker
}

// ErrUnknownNode is returned by a Registrar's Heartbeat when metad does not
// know the node: the node registers again.
var ErrUnknownNode = errors.New("node not registered with metad")

// Bounds of the delay between failed registration attempts.
const (
	registerBackoffMin = 50 * time.Millisecond
	registerBackoffMax = 5 * time.Second
)

// NodeInfo is what the node registers: its id, advertised address,
// failure domains and current usage.
func (s *Server) NodeInfo() NodeInfo {
	return NodeInfo{
		ID:    s.cfg.ID,
		Addr:  s.advertiseAddr(),
		Zone:  s.cfg.Zone,
		Rack:  s.cfg.Rack,
		Usage: s.store.Usage(),
	}
}

// advertiseAddr is Config.AdvertiseAddr, or the listener's address with the
// host name standing in for an unspecified host (":7400", "0.0.0.0:7400").
func (s *Server) advertiseAddr() string {
	if s.cfg.AdvertiseAddr != "" {
		return s.cfg.AdvertiseAddr
	}
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return s.Addr()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// registerAndHeartbeat registers the node (retrying with backoff), then
// heartbeats every interval, until ctx ends.
func (s *Server) registerAndHeartbeat(ctx context.Context) {
	reg := s.cfg.Registrar
	for {
		if !s.register(ctx, reg) {
			return
		}
		if !s.heartbeat(ctx, reg) {
			return
		}
		// metad forgot the node: register again.
	}
}

// register calls Register until it succeeds (true) or ctx ends (false).
func (s *Server) register(ctx context.Context, reg Registrar) bool {
	backoff := registerBackoffMin
	for attempt := 1; ; attempt++ {
		info := s.NodeInfo()
		actx, cancel := context.WithTimeout(ctx, max(s.cfg.HeartbeatInterval, 5*time.Second))
		err := reg.Register(actx, info)
		cancel()
		if err == nil {
			s.registeredOnce.Do(func() { close(s.registered) })
			s.log.Info("registered", "addr", info.Addr, "zone", info.Zone, "rack", info.Rack,
				"capacity", info.Usage.Capacity, "used", info.Usage.Used, "chunks", info.Usage.Chunks)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		// Jitter keeps a rack of nodes restarting together from
		// hammering metad in step.
		wait := time.Duration(rand.Int64N(int64(backoff))) + backoff/2
		s.log.Warn("register failed; retrying", "attempt", attempt, "in", wait, "err", err)
		if !sleepCtx(ctx, wait) {
			return false
		}
		backoff = min(2*backoff, registerBackoffMax)
	}
}

// heartbeat reports usage every interval until ctx ends (false) or the
// registrar no longer knows the node (true).
func (s *Server) heartbeat(ctx context.Context, reg Registrar) bool {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	failing, withheld := false, false
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		if s.disk != nil {
			if err := s.disk.check(); err != nil {
				if !withheld {
					s.log.Error("withholding heartbeats, so that metad marks this node down and repairs its chunks elsewhere", "err", err)
				}
				withheld = true
				s.heartbeatsWithheld.Inc()
				continue
			}
			if withheld {
				s.log.Info("the data disk answers again; heartbeats resume")
				withheld = false
			}
		}
		// A heartbeat later than the next one is worthless.
		hctx, cancel := context.WithTimeout(ctx, s.cfg.HeartbeatInterval)
		tasks, err := reg.Heartbeat(hctx, s.store.Usage())
		cancel()
		switch {
		case err == nil:
			if failing {
				s.log.Info("heartbeats resumed")
			}
			failing = false
			if len(tasks) > 0 && s.exec != nil {
				s.exec.Submit(tasks)
			}
		case errors.Is(err, ErrUnknownNode):
			s.log.Warn("metad does not know this node; registering again", "err", err)
			return true
		case ctx.Err() != nil:
			return false
		default:
			// Log the first failure of a run, not one line per interval.
			if !failing {
				s.log.Warn("heartbeat failed", "err", err)
			}
			failing = true
		}
	}
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
