package gateway

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A client that goes away ends the request's context while the handler
// still runs; what a handler registers in afterHandler (the payload hash's
// release) must wait for the handler itself.
func TestAfterHandlerWaitsForTheHandler(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	d := &routerDeps{log: slog.New(slog.DiscardHandler), metrics: m}
	var returned atomic.Bool
	afterRan := make(chan bool, 1) // whether the handler had returned
	started := make(chan struct{})
	srv := httptest.NewServer(d.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer returned.Store(true)
		st := stateOf(r)
		st.afterHandler = append(st.afterHandler, func() { afterRan <- returned.Load() })
		close(started)
		<-r.Context().Done() // the client has gone
		// Stay a little while after the client has gone: a release
		// wrongly tied to the request's context would run now, while
		// the handler could still be writing to the hash. (What this
		// checks is that something does not happen, so there is no
		// condition to await; the right code never waits on it.)
		time.Sleep(100 * time.Millisecond)
	})))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /b/k HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Listener.Addr())
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler not called")
	}
	conn.Close()
	select {
	case wasReturned := <-afterRan:
		if !wasReturned {
			t.Fatal("afterHandler ran while the handler was still running")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("afterHandler did not run once the handler returned")
	}
}
