package e2e

import (
	"fmt"
	"testing"
	"time"
)

// inlineMax is the gateway's default --inline-max: objects up to it live in
// metadata and never touch a blob node.
const inlineMax = 4 << 10

// TestBlobKillDuringWrites SIGKILLs one blob node while writers run: writes
// go on, degraded to k+1 chunks. Then a second node, in another zone:
// everything acknowledged still reads back (m=2 chunks lost), and no write
// that needs the blob nodes is acknowledged with only k of them left.
// Restarting both changes nothing.
//
// The long variant repeats this with other pairs of nodes. Nothing repairs
// a degraded segment yet, so a segment written while one node of round r
// was down has lost one chunk for good; losing two more in a later round
// is more than m. So with two nodes down only the round's own objects are
// checked; with all nodes back, all of them are.
func TestBlobKillDuringWrites(t *testing.T) {
	skipShort(t)
	cl := startCluster(t, clusterConfig{})
	const bucket = "blobkill"
	createBucket(t, cl.S3(), bucket)
	all := newLedger()
	rounds := 1
	if *flagLong {
		rounds = 3
	}
	for r := range rounds {
		// Each round loses a different pair of zones' nodes.
		first, second := cl.blobs[(2*r)%6], cl.blobs[(2*r+3)%6]
		prefix := fmt.Sprintf("round%d", r)
		led := newLedger()
		w := startWriters(t, cl, led, bucket, prefix, 4, []int{2000, 100 << 10, 1 << 20, 3<<20 + 5})
		// With at most m nodes down every read must succeed, also one
		// in flight when a node dies: it reads around it.
		rd := startReaders(t, cl, led, bucket, 2)
		w.waitAcks(t, cl, 12, 30*time.Second, "before any fault")
		degradedBefore := cl.GatewayMetric("cairn_object_degraded_segment_writes_total")

		cl.Kill(first)
		killed := time.Now()
		w.waitAcks(t, cl, 12, 30*time.Second, fmt.Sprintf("with %s (zone %s) killed", first, cl.blobZone[first]))
		blobWrites := w.blobAcksSince(killed)
		degraded := cl.GatewayMetric("cairn_object_degraded_segment_writes_total") - degradedBefore
		cl.logf("round %d: %s killed; %d writes started since then acknowledged (%d through blob nodes), %v degraded segments",
			r, first, len(w.acksSince(killed)), blobWrites, degraded)
		if blobWrites > 0 && degraded == 0 {
			t.Errorf("%d objects written through the blob nodes with %s dead, but no degraded segment counted", blobWrites, first)
		}

		cl.Kill(second)
		killed2 := time.Now()
		// With k+m-2 = k nodes left, a write quorum of k+1 cannot be met:
		// writes must fail (inline ones still succeed).
		w.waitFails(t, cl, 8, 30*time.Second, fmt.Sprintf("with %s and %s killed", first, second))
		w.stop()
		w.report(cl)
		for _, a := range w.acksSince(killed2) {
			if a.size > inlineMax {
				t.Errorf("a %d-byte write started with only 4 of 6 blob nodes alive was acknowledged (write quorum is k+1 = 5)", a.size)
			}
		}

		n := verify(t, cl.S3(), led, bucket, prefix+"/", false)
		cl.logf("round %d: with %s and %s down, %d objects of the round checked", r, first, second, n)

		cl.Restart(first, second)
		cl.WaitHealthy(20*time.Second, first, second)
		rd.check(cl, false)
		all.merge(led)
		n = verify(t, cl.S3(), all, bucket, "", false)
		cl.logf("round %d: after restarting both, %d objects checked", r, n)
		if t.Failed() {
			return
		}
	}
}

// TestBlobFreezeDuringWrites SIGSTOPs one blob node while writers run: the
// process keeps its sockets and heartbeats no more, but metad is told to
// wait minutes before suspecting it, so only the gateway's write budget
// (--write-budget 1s) keeps writes going: uploads to the frozen node are
// given up, segments are written degraded and later ones placed around
// it. Reads go on through the read budget. Once the node is thawed,
// everything acknowledged reads back.
func TestBlobFreezeDuringWrites(t *testing.T) {
	skipShort(t)
	cl := startCluster(t, clusterConfig{
		MetadArgs:   []string{"--node-suspect-after", "2m", "--node-down-after", "5m"},
		GatewayArgs: []string{"--write-budget", "1s"},
	})
	const bucket = "blobfreeze"
	createBucket(t, cl.S3(), bucket)
	led := newLedger()
	w := startWriters(t, cl, led, bucket, "freeze", 4, []int{2000, 100 << 10, 1 << 20, 3<<20 + 5})
	rd := startReaders(t, cl, led, bucket, 2)
	w.waitAcks(t, cl, 12, 30*time.Second, "before any fault")
	degradedBefore := cl.GatewayMetric("cairn_object_degraded_segment_writes_total")

	frozen := cl.blobs[1]
	cl.Freeze(frozen)
	froze := time.Now()
	w.waitAcks(t, cl, 20, 30*time.Second, fmt.Sprintf("with %s frozen", frozen))
	blobWrites := w.blobAcksSince(froze)
	degraded := cl.GatewayMetric("cairn_object_degraded_segment_writes_total") - degradedBefore
	cl.logf("%s frozen: %d writes started since then acknowledged (%d through blob nodes), %v degraded segments",
		frozen, len(w.acksSince(froze)), blobWrites, degraded)
	if blobWrites == 0 {
		t.Errorf("no write through the blob nodes acknowledged with %s frozen", frozen)
	}
	if degraded == 0 {
		t.Errorf("writes acknowledged with %s frozen, but no degraded segment counted", frozen)
	}
	if n := cl.GatewayMetric(`cairn_object_chunk_stalls_total{op="write"}`); n == 0 {
		t.Errorf("writes went on with %s frozen, but no upload given up for stalling was counted", frozen)
	}

	cl.Thaw(frozen)
	w.stop()
	w.report(cl)
	rd.check(cl, false)
	n := verify(t, cl.S3(), led, bucket, "", false)
	cl.logf("after thawing %s, %d objects checked", frozen, n)
}
