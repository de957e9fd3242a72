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
//     those keys. Then the same with four writers in flight: acknowledged
//     writes survive, a cut-off one is absent or whole.
//   - TestMetadLeaderKillDuringWrites: four writers and two readers; the
//     Raft leader is SIGKILLed, later SIGTERMed (graceful handoff). Writes
//     pause for the election and go on; while the old leader is down the
//     new one snapshots past it, so on restart it must catch up by
//     InstallSnapshot. No read misses an acknowledged write or returns
//     other bytes; at the end all members apply the same index, every
//     acknowledged write reads back, and an unacknowledged key is absent or
//     holds exactly the body that was attempted.
//   - TestBlobKillDuringWrites: SIGKILL one blob node under writes (they go
//     on, degraded to k+1 chunks), then a second: writes needing the blob
//     nodes fail (quorum k+1), everything acknowledged still reads back,
//     and no concurrent read fails; restart both: it still does.
//   - TestCorruptChunkFile: flip a byte inside a data block of a chunk file
//     on disk: the GET is byte-exact (read around via parity, and the
//     gateway counts the bad chunk); damage two more data shards of the same
//     stripe: the GET fails rather than return wrong bytes, and a range
//     outside that stripe still reads.
//
// A SIGKILLed process loses nothing the kernel already has: these tests
// check what a process crash can break (acknowledging before writing,
// recovery and replay, catch-up), not power loss, which would also need
// the fsyncs that a process kill cannot tell apart from their absence.
package e2e
