package blob

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stallingDisk is a Storage whose writability probe hangs while stall is
// set, until release is closed: a data disk that stops answering.
type stallingDisk struct {
	Storage
	stall   atomic.Bool
	release chan struct{}
}

func (s *stallingDisk) CheckWritable(ctx context.Context) error {
	if s.stall.Load() {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Storage.CheckWritable(ctx)
}

// TestStalledDiskWithholdsHeartbeats: while a probe of the data disk has
// taken DiskStallTimeout, the node sends no heartbeat (metad marks it
// down and repairs its chunks) and /healthz fails at once; once the disk
// answers, heartbeats resume and /healthz passes.
func TestStalledDiskWithholdsHeartbeats(t *testing.T) {
	reg := newFakeRegistrar()
	disk := &stallingDisk{release: make(chan struct{})}
	n := startNode(t, Config{Registrar: reg, HeartbeatInterval: 5 * time.Millisecond, DiskStallTimeout: 200 * time.Millisecond,
		ScrubRate: ScrubOff, ReconcileInterval: ReconcileOff,
		WrapStorage: func(s Storage) Storage { disk.Storage = s; return disk }})
	await(t, reg.registers, "registration")
	await(t, reg.heartbeats, "a heartbeat")
	health := func() (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + n.Addr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != http.StatusOK {
		t.Fatalf("healthz before the stall: %d %s", code, body)
	}

	disk.stall.Store(true)
	withheld := func() float64 { return metricValue(t, n.reg, "cairn_blob_heartbeats_withheld_total") }
	waitFor(t, "a heartbeat withheld", func() bool { return withheld() >= 1 })
	// The loop sends or withholds each tick; from the first withheld one
	// on, with the disk still stalled, it withholds every one.
	for len(reg.heartbeats) > 0 {
		<-reg.heartbeats
	}
	from := withheld()
	waitFor(t, "three more heartbeats withheld", func() bool { return withheld() >= from+3 })
	if got := len(reg.heartbeats); got != 0 {
		t.Fatalf("%d heartbeats sent while the disk stalled", got)
	}
	if code, body := health(); code != http.StatusServiceUnavailable || !strings.Contains(body, "disk stalled") {
		t.Fatalf("healthz with the disk stalled: %d %s", code, body)
	}
	if v := metricValue(t, n.reg, "cairn_blob_disk_stalled"); v != 1 {
		t.Fatalf("cairn_blob_disk_stalled = %v with the disk stalled", v)
	}

	disk.stall.Store(false)
	close(disk.release)
	await(t, reg.heartbeats, "a heartbeat once the disk answers")
	if code, body := health(); code != http.StatusOK {
		t.Fatalf("healthz after the stall: %d %s", code, body)
	}
}
