package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestMetadLeaderKillDuringWrites takes the Raft leader away while four
// writers put small (inline) and 1 MiB objects: first with SIGKILL, then
// with SIGTERM (a graceful leadership handoff), alternating in the long
// variant. Writes pause for the election and go on. While the old leader
// is down the new one snapshots and compacts its log past it, so the
// restarted member must catch up by InstallSnapshot. At the end every
// member has applied the same index, every acknowledged write reads back
// exactly, and an unacknowledged one is absent or holds exactly its body.
func TestMetadLeaderKillDuringWrites(t *testing.T) {
	skipShort(t)
	const trailing = 16
	cl := startCluster(t, clusterConfig{SnapshotThreshold: 32, TrailingLogs: trailing})
	const bucket = "leaderkill"
	createBucket(t, cl.S3(), bucket)
	led := newLedger()
	w := startWriters(t, cl, led, bucket, "obj", 4, []int{100, 3000, 64 << 10, 1 << 20})
	// Reads may fail during an election, but never miss an acknowledged
	// write or return other bytes.
	r := startReaders(t, cl, led, bucket, 2)

	faults := 2
	if *flagLong {
		faults = 6
	}
	w.waitAcks(t, cl, 20, 30*time.Second, "before any fault")
	for i := range faults {
		leader := cl.Leader(10 * time.Second)
		lastIdx, err := cl.MetadMetric(leader, "cairn_metad_raft_last_index")
		if err != nil {
			t.Fatal(err)
		}
		how := "SIGKILL"
		faulted := time.Now()
		if i%2 == 0 {
			cl.Kill(leader)
		} else {
			how = "SIGTERM"
			cl.Stop(leader)
		}
		w.waitAcks(t, cl, 20, 20*time.Second, fmt.Sprintf("after %s of the leader %s", how, leader))
		newLeader := cl.Leader(10 * time.Second)
		if newLeader == leader {
			t.Fatalf("%s is down but reported leader", leader)
		}
		first, _ := w.firstAckAfter(faulted)
		var firstFresh time.Time
		for _, a := range w.acksSince(faulted) {
			if firstFresh.IsZero() || a.at.Before(firstFresh) {
				firstFresh = a.at
			}
		}
		cl.logf("fault %d: %s of leader %s; %s took over; first acknowledgement %v after it, first of a write started after it %v",
			i+1, how, leader, newLeader, first.Sub(faulted).Round(time.Millisecond), firstFresh.Sub(faulted).Round(time.Millisecond))

		// Let the new leader compact its log past everything the old
		// one has, so the old one cannot catch up from the log. The old
		// one's log ends at most a few in-flight proposals (one per
		// writer, a few heartbeat usage commits) past what the new
		// leader has after its election, or past what it reported
		// itself just before the fault; 20 entries of margin cover that.
		newLast, err := cl.MetadMetric(newLeader, "cairn_metad_raft_last_index")
		if err != nil {
			t.Fatal(err)
		}
		base := uint64(max(lastIdx, newLast))
		cl.waitFor(30*time.Second, fmt.Sprintf("%s to snapshot past %s's last index (at most %d)", newLeader, leader, base+20), func() error {
			snap := snapshotIndex(cl.proc(newLeader).logPath)
			if snap <= base+trailing+20 {
				return fmt.Errorf("newest snapshot at %d", snap)
			}
			return nil
		})
		installs := countLines(cl.proc(leader).logPath, "Installed remote snapshot")
		cl.Restart(leader)
		cl.WaitHealthy(20*time.Second, leader)
		cl.waitFor(20*time.Second, leader+" to install a snapshot from the leader", func() error {
			if n := countLines(cl.proc(leader).logPath, "Installed remote snapshot"); n <= installs {
				return fmt.Errorf("%d snapshots installed, as before the restart", n)
			}
			return nil
		})
		w.waitAcks(t, cl, 20, 20*time.Second, fmt.Sprintf("after %s restarted", leader))
	}
	w.stop()
	w.report(cl)
	r.check(cl, true)

	// Once writes stop, all three members apply the same index.
	cl.waitFor(20*time.Second, "all metad members to apply the same index", func() error {
		var idx []float64
		for _, n := range cl.metads {
			v, err := cl.MetadMetric(n, "cairn_metad_applied_index")
			if err != nil {
				return err
			}
			idx = append(idx, v)
		}
		if idx[0] == 0 || idx[0] != idx[1] || idx[1] != idx[2] {
			return fmt.Errorf("applied indexes %v", idx)
		}
		return nil
	})

	n := verify(t, cl.S3(), led, bucket, "", false)
	cl.logf("%d objects checked (%d acknowledged)", n, led.nAcked())
}

var snapshotDone = regexp.MustCompile(`msg="snapshot complete up to".* index=(\d+)`)

// snapshotIndex is the newest index a metad log says a snapshot was
// completed at (hashicorp/raft's "snapshot complete up to" line), 0 if none.
func snapshotIndex(logPath string) uint64 {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return 0
	}
	var best uint64
	for _, m := range snapshotDone.FindAllSubmatch(b, -1) {
		if v, err := strconv.ParseUint(string(m[1]), 10, 64); err == nil && v > best {
			best = v
		}
	}
	return best
}

// countLines counts the lines of a log that contain s.
func countLines(logPath, s string) int {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), s)
}

// TestMetadLeaderFreezeDuringWrites SIGSTOPs the Raft leader while writers
// run: the process keeps its sockets open. The two others elect a leader;
// the gateway's metadata client sends reads, and commits not yet sent, to
// another member once a call has gone 3 s unanswered, and fails the
// commits already sent to the frozen leader once gRPC keepalive gives up on
// it (10 s without a frame, then 3 s for the ping). It logs how long a PUT
// and a read started after the freeze took. After SIGCONT the old leader
// rejoins as a follower, and everything acknowledged reads back.
func TestMetadLeaderFreezeDuringWrites(t *testing.T) {
	skipShort(t)
	cl := startCluster(t, clusterConfig{})
	const bucket = "leaderfreeze"
	createBucket(t, cl.S3(), bucket)
	led := newLedger()
	w := startWriters(t, cl, led, bucket, "obj", 4, []int{100, 3000, 64 << 10, 1 << 20})
	r := startReaders(t, cl, led, bucket, 2)
	w.waitAcks(t, cl, 20, 30*time.Second, "before any fault")

	leader := cl.Leader(10 * time.Second)
	cl.Freeze(leader)
	froze := time.Now()
	// A PUT started after the freeze: the writers' commits in flight wait
	// for the frozen leader, and the gateway's client sends the commits
	// queued behind them around it (metaclient/commitbatch.go).
	probe := make(chan time.Duration, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		err := putObject(ctx, cl.S3(func(o *s3.Options) { o.RetryMaxAttempts = 1 }), led, bucket, "probe", bytes.Repeat([]byte("probe"), 2000))
		if err != nil {
			t.Errorf("a PUT started with the leader frozen: %v", err)
		}
		probe <- time.Since(start)
	}()
	w.waitAcks(t, cl, 20, 40*time.Second, fmt.Sprintf("with the leader %s frozen", leader))
	cl.logf("leader %s frozen: a PUT started right after took %v", leader, (<-probe).Round(time.Millisecond))
	var fresh time.Time // the first acknowledgement of a write started after the freeze
	for _, a := range w.acksSince(froze) {
		if fresh.IsZero() || a.at.Before(fresh) {
			fresh = a.at
		}
	}
	cl.logf("leader %s frozen: the first write started since then was acknowledged %v later", leader, fresh.Sub(froze).Round(time.Millisecond))
	if d, ok := r.answeredSince(froze); ok {
		cl.logf("leader %s frozen: the first read started since then was answered %v later", leader, d.Round(time.Millisecond))
	} else {
		cl.logf("leader %s frozen: no read started since then was answered yet", leader)
	}

	cl.Thaw(leader)
	w.waitAcks(t, cl, 20, 30*time.Second, fmt.Sprintf("after thawing %s", leader))
	if now := cl.Leader(10 * time.Second); now == leader {
		t.Logf("%s leads again after its thaw (it won a later election)", leader)
	}
	w.stop()
	w.report(cl)
	// Reads in flight when the leader froze may fail; none may return
	// wrong bytes or miss an acknowledged write.
	r.check(cl, true)
	n := verify(t, cl.S3(), led, bucket, "", false)
	cl.logf("after thawing %s, %d objects checked", leader, n)
}
