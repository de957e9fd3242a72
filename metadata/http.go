package metadata

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	return mux
}

// healthz answers 200 when this member knows a leader and its state
// machine is within HealthMaxLag entries of the commit index it knows;
// otherwise 503 with the reason on one line.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	reason := s.unhealthy()
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, reason)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) unhealthy() string {
	if s.closing.Load() {
		return "shutting down"
	}
	_, leader := s.raft.LeaderWithID()
	if leader == "" {
		return fmt.Sprintf("no known raft leader (state %s)", s.raft.State())
	}
	commit, seen := s.raft.CommitIndex(), s.fsm.seen.Load()
	if commit > seen && commit-seen > s.cfg.HealthMaxLag {
		return fmt.Sprintf("state machine lags: applied through %d, commit index %d", seen, commit)
	}
	return ""
}
