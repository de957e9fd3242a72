// Package e2e holds Cairn's process-level fault tests: they build the real
// daemons (metad, blobd, gatewayd), run a cluster of them on loopback — 3
// metad members, 6 blob nodes in 3 zones, 1 S3 gateway — and kill, restart
// and damage them while an aws-sdk-go-v2 client writes and reads through
// the gateway. Where the in-process cluster (internal/testcluster) shares
// one address space and one clock, these tests lose whole processes with
// SIGKILL, so only what was fsynced before an acknowledgement survives.
//
// The package has no code of its own beyond this comment; everything is in
// its _test.go files.
//
// # Running
//
//	go test -race -count=1 -v ./e2e/            # the default run, about a minute on 2 cores
//	go test -race -count=1 -v ./e2e/ -e2e.long  # longer variants (more objects, more faults)
//	go test -count=1 ./e2e/ -run CorruptChunk -e2e.logdir /tmp/e2e-logs
//
// TestMain builds the three daemons once per run with `go build` from the
// module root (found with `go env GOMOD`) into a temporary directory; when
// the test binary is built with -race, so are the daemons, and a data race
// (or a panic) reported in any daemon's log fails the test that ran it.
// With -short every test is skipped and nothing is built.
//
// Flags (after the package, or with -args):
//
//	-e2e.long         longer variants of every test
//	-e2e.logdir DIR   keep each process's log (stdout and stderr) in DIR/<test>/
//	                  instead of a temporary directory removed after the test
//	-e2e.bin DIR      use metad, blobd and gatewayd already built in DIR
//
// Each process writes its log to a file of its own; when a test fails, the
// tail of every log is printed with t.Log. Ports are taken below the
// kernel's ephemeral range, so that a port released by a killed daemon is
// not handed to an outgoing connection before the daemon restarts on it.
// Every process is killed when its test ends, pass or fail, and the daemons
// are started with a parent-death signal, so a test binary that dies (a
// -timeout panic) takes them with it.
//
// # The tests
//
//   - TestKillNineEverything: mixed sizes (0 B to 20 MiB), a multipart
//     upload, an overwrite, a delete and 120 small writes (so metad has
//     snapshots), then SIGKILL every process at once and restart: every
//     acknowledged object reads back byte-exact and the listing is exactly
//     those keys. The gateway runs with an SSE master key file and
//     --sse-c-over-http: an SSE-S3 object of two segments and an SSE-C
//     one read back byte-exact after the restart (the SSE-C one only with
//     its key: without it, 400 InvalidRequest), and while everything is
//     down no blob node file holds their plaintext (a marker stamped every
//     4 KiB), though it holds an unencrypted control object's. Then the
//     same with four writers in flight: acknowledged writes survive, a
//     cut-off one is absent or whole.
//   - TestMetadLeaderKillDuringWrites: four writers and two readers; the
//     Raft leader is SIGKILLed, later SIGTERMed (graceful handoff). Writes
//     pause for the election and go on; while the old leader is down the
//     new one snapshots past it, so on restart it must catch up by
//     InstallSnapshot. No read misses an acknowledged write or returns
//     other bytes; at the end all members apply the same index, every
//     acknowledged write reads back, and an unacknowledged key is absent or
//     holds exactly the body that was attempted.
//   - TestMetadLeaderFreezeDuringWrites: SIGSTOP the Raft leader under
//     writes. Its sockets stay open: reads and commits not yet sent go to
//     another member after 3 s unanswered (a PUT started after the freeze
//     is logged with its time), and commits already sent to it fail once
//     gRPC keepalive gives up on it (~13 s); after SIGCONT everything
//     acknowledged reads back.
//   - TestBlobKillDuringWrites: SIGKILL one blob node under writes (they go
//     on, degraded to k+1 chunks), then a second: writes needing the blob
//     nodes fail (quorum k+1), everything acknowledged still reads back,
//     and no concurrent read fails; restart both: it still does.
//   - TestBlobFreezeDuringWrites: SIGSTOP one blob node under writes, with
//     metad told not to suspect it for minutes: the gateway's write budget
//     (--write-budget 1s) gives its uploads up, so writes go on, degraded,
//     and reads go on through the read budget; after SIGCONT everything
//     acknowledged reads back.
//   - TestCorruptChunkFile: flip a byte inside a data block of a chunk file
//     on disk: the GET is byte-exact (read around via parity, and the
//     gateway counts the bad chunk); damage two more data shards of the same
//     stripe: the GET fails rather than return wrong bytes, and a range
//     outside that stripe still reads.
//   - TestChaos, the fault-injection suite (files chaos_*_test.go): N
//     clients (aws-sdk-go-v2, no SDK retries) run PUT (0 B to 3 MiB,
//     some multipart, a third SSE-S3 encrypted), GET (whole and ranged),
//     DELETE and LIST over 16 keys (and 4 in a versioned bucket, below),
//     so keys are overwritten and deleted all the time, recording
//     every operation (start, end, input, result: acknowledged, failed
//     with an answer, failed without one) in a history. Meanwhile a
//     schedule drawn from -chaos.seed runs three lanes of faults: two
//     blob lanes (so never more than m = 2 blob nodes out at once), each
//     a cycle of SIGKILL, a proxy cut (the node's HTTP API unreachable
//     while it still heartbeats), SIGSTOP, a full store (restarted with
//     --capacity 1, every chunk write is 507) and a flipped byte in a
//     data block of a random chunk file (at most one per segment); and a
//     control lane: SIGKILL of the metad leader, SIGSTOP of the leader
//     (it wakes up believing it still leads), SIGKILL of a follower (one
//     member at a time, back and healthy before the next) or of the
//     gateway. Then everything is healed, and the suite waits until every
//     blob node has finished a scrub pass begun after the faults and the
//     leader's HealthStatus, computed after that, shows no degraded and
//     no lost segment (the bound is -chaos.heal-timeout; the time it took
//     is printed). Then it reads every key and lists the bucket, and
//     checks: (a) each key holds a value the history allows (a write no
//     acknowledged write certainly followed); (b) no GET or LIST returned
//     bytes never written (every body names its value in each 16-byte
//     block and is checked byte by byte) or a value already replaced
//     before the read began; (c) the final LIST agrees with the final
//     GETs; (d) each key's register history is linearizable (porcupine,
//     a failed write being an operation that may or may not take effect:
//     within its interval when the gateway answered, at any later time
//     when it did not; LIST is projected onto every key as a read). The
//     report lists operations by kind and outcome, failures by message,
//     the faults with their times, acknowledged writes lost, bad reads,
//     LIST/GET mismatches, linearizability violations, the most degraded
//     segments seen and the time back to full redundancy (-chaos.json
//     FILE writes it as JSON). The default run lasts 25 s with 4 clients;
//     scripts/chaos runs it for 10 minutes with 8 (flags pass through:
//     -chaos.duration, -chaos.seed, -chaos.clients, -chaos.blobs,
//     -chaos.heal-timeout, -chaos.json, -chaos.versions). A failure prints the
//     command that replays its seed; the timing of a run is not replayed, only
//     its schedule and workload. A fifth of the writes and reads (chosen by
//     value, and by count for deletes, reads and empty bodies, so the random
//     draws stay as they were) go to a second bucket with versioning enabled,
//     over 4 keys of its own, so each key gets many versions and delete
//     markers. Its keys are in the history and checked as above (read without a
//     version id, a key is a register; a delete marker reads as absent); reads
//     by version id of versions acknowledged earlier must return their bytes. A
//     ledger keeps every write sent to it (the version id answered, the body's
//     MD5), and once the cluster has healed the bucket is held to it
//     (chaos_versions_test.go): every acknowledged version reads back by id
//     byte for byte, and each acknowledged marker answers as one (a lost
//     noncurrent version counts as much as a lost object); the
//     ListObjectVersions, in pages of 1 to 8 entries, lists each of them
//     exactly once, each key's newest first (a write that ended before another
//     began is listed after it) with exactly the newest IsLatest; the latest is
//     what GET without a version id and ListObjectsV2 answer; and a version
//     nobody was told of (its write failed or was cut off) holds bytes a PUT to
//     the key sent, each PUT's as one version only, and no key has more markers
//     nobody was told of than DELETEs that went unanswered.
//     -chaos.versions=false leaves the bucket out.
//
// # Bugs found by TestChaos
//
// Reproducer: go test -race -count=1 ./e2e/ -run 'TestChaos$' with the
// flags shown (and the same schedule by seed; timing may differ, so some
// need a few runs).
//
//	| # | found | what | reproducer | status |
//	|---|-------|------|------------|--------|
//	| 1 | 2026-11-25, seed 11, -chaos.duration 4m (8 clients, 6 blob nodes) | A GET of a 3 MiB object (three 1 MiB segments) answered 200 and was cut after 2 MiB (client: unexpected EOF): the key had been overwritten meanwhile and GC (--gc-interval 1s here, 10s by default) had already deleted the old version's chunks ("1 of 6 shards usable ... 404 NotFound" in the gateway log). An in-flight read of a replaced version loses its chunks: GC needs a grace period longer than a read, or reads must pin what they resolved. Not an acknowledged write lost (the GET failed, it returned no wrong bytes), but a failed read. | go test -race -count=1 ./e2e/ -run 'TestChaos$' -chaos.seed 11 -chaos.duration 4m, then grep 'status=200.*err=' in gatewayd.log (-e2e.logdir) | open (metadata GC) |
//	| 2 | 2026-11-25, while building the suite (not a TestChaos failure) | TestCorruptChunkFile fails at e34501a (checked in a clean worktree): once the gateway has reported three chunks of one segment with one bad block each, MarkChunks takes the whole chunks out of the placement (and queues them for deletion), so a range in an undamaged stripe answers 503 where the test expects its bytes. Beyond the m-failure promise, but one bad block costs a whole chunk. | go test -race -count=1 ./e2e/ -run TestCorruptChunkFile | open (metadata MarkChunks / the test's expectation) |
//	| 3 | 2026-11-25, seed 5, -chaos.duration 90s -chaos.blobs 9 (8 clients, -race, 2 cores) | Not a correctness bug: with 13 race-built daemons and 8 clients on 2 cores, metad leadership flaps every 1-2 s under the harness's 400 ms election timeout even with all members up; with one member killed, the gateway stalled for ~30 s (every request to the client's timeout) and the restarted member took 30 s to report healthy. No history check failed. Long runs on this machine read more like overload tests than fault tests; CHAOS_RACE=0 or fewer clients keeps the faults the main event. | go test -race -count=1 ./e2e/ -run 'TestChaos$' -chaos.seed 5 -chaos.duration 90s -chaos.blobs 9 | open (harness Raft timeouts vs load) |
//	| 4 | 2026-11-26, seeds 404631348, 273097265, 274435553 under load 20-33 (full make test, or race test loops beside it) | The cluster did not return to full redundancy within 60 s: a corrupt chunk was marked bad, its GC entry queued, and with 6 nodes at 4+2 the only target keeping the failure-domain rule was the node that held it — refused while that chunk's deletion was pending, and the deletion waited out --gc-grace (10m). The heal wait's report hid it behind its own DeadlineExceeded. | go test -race -count=1 ./e2e/ -run 'TestChaos$' -chaos.seed 274435553 with a loaded machine | fixed in bc1a5a0 (single-chunk GC entries skip the grace; TestGCGraceSkipsChunkEntries); report fixed in 6d48ad8 |
//
// A SIGKILLed process loses nothing the kernel already has: these tests
// check what a process crash can break (acknowledging before writing,
// recovery and replay, catch-up), not power loss, which would also need
// the fsyncs that a process kill cannot tell apart from their absence.
package e2e
