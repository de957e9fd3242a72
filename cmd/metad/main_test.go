package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHelpListsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: err = %v", err)
	}
	for _, name := range []string{
		"id", "data-dir", "raft-addr", "grpc-addr", "grpc-advertise", "http-addr", "initial-cluster", "ec",
		"raft-heartbeat-timeout", "raft-election-timeout", "raft-leader-lease-timeout", "raft-commit-timeout",
		"raft-max-append-entries", "snapshot-threshold", "snapshot-interval", "trailing-logs", "apply-timeout",
		"health-max-lag", "raft-log-level", "log-level", "propose-batch", "propose-inflight", "propose-pipeline", "propose-gather",
		"state-memtable-mib", "state-memtables", "state-block-cache-mib", "state-index-cache-mib", "memory-limit",
	} {
		// A boolean flag's line ends at its name.
		if !strings.Contains(out.String(), "  -"+name+" ") && !strings.Contains(out.String(), "  -"+name+"\n") {
			t.Errorf("--help lacks --%s:\n%s", name, out.String())
		}
	}
}

func TestParseFlags(t *testing.T) {
	f, err := parseFlags([]string{"--id=m1", "--data-dir=/d", "--raft-addr=10.0.0.1:7000", "--grpc-addr=:7300",
		"--initial-cluster=m1=10.0.0.1:7000,m2=10.0.0.2:7000", "--ec=6+3", "--log-level=debug",
		"--state-block-cache-mib=128", "--memory-limit=512MiB"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.member.State.BlockCacheSize != 128<<20 || f.memoryLimit != 512<<20 {
		t.Fatalf("block cache %d, memory limit %d", f.member.State.BlockCacheSize, f.memoryLimit)
	}
	if f.member.ID != "m1" || len(f.member.InitialCluster) != 2 || f.member.DefaultScheme.K != 6 || f.member.DefaultScheme.M != 3 {
		t.Fatalf("parsed %+v", f.member)
	}
	for _, args := range [][]string{
		{"--data-dir=/d", "--raft-addr=10.0.0.1:7000", "--grpc-addr=:7300"},                 // no id
		{"--id=m1", "--data-dir=/d", "--raft-addr=:7000", "--grpc-addr=:7300"},              // wildcard raft address
		{"--id=m1", "--data-dir=/d", "--raft-addr=10.0.0.1:7000", "--grpc-addr=:7300", "x"}, // stray argument
		{"--id=m1", "--data-dir=/d", "--raft-addr=10.0.0.1:7000", "--grpc-addr=:7300", "--ec=3"},
		{"--id=m1", "--data-dir=/d", "--raft-addr=10.0.0.1:7000", "--grpc-addr=:7300", "--memory-limit=-1"},
		{"--id=m1", "--data-dir=/d", "--raft-addr=10.0.0.1:7000", "--grpc-addr=:7300", "--memory-limit=lots"},
		{"--id=m1", "--data-dir=/d", "--raft-addr=10.0.0.1:7000", "--grpc-addr=:7300", "--state-memtable-mib=8"},
		{"--id=m1", "--data-dir=/d", "--raft-addr=10.0.0.1:7000", "--grpc-addr=:7300", "--propose-batch=0"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// The default memory limit follows the state store's sizes, whatever the
// order of the flags; off and an explicit size replace it.
func TestMemoryLimitDefault(t *testing.T) {
	base := []string{"--id=m1", "--data-dir=/d", "--raft-addr=10.0.0.1:7000", "--grpc-addr=:7300"}
	for _, c := range []struct {
		args []string
		want int64
	}{
		{nil, 512 << 20},
		{[]string{"--memory-limit=auto", "--state-block-cache-mib=128"}, 640 << 20},
		{[]string{"--state-memtables=4", "--state-memtable-mib=64", "--state-index-cache-mib=0"}, (2*(256+64) + 64) << 20},
		{[]string{"--memory-limit=768MiB", "--state-block-cache-mib=128"}, 768 << 20},
		{[]string{"--memory-limit=off"}, 0},
		{[]string{"--memory-limit=1GiB", "--memory-limit=auto"}, 512 << 20},
	} {
		f, err := parseFlags(append(append([]string{}, base...), c.args...), io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if f.memoryLimit != c.want {
			t.Errorf("%q: memory limit %d MiB, want %d MiB", c.args, f.memoryLimit>>20, c.want>>20)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestRunBootstrapsAndStopsOnSignal(t *testing.T) {
	raftAddr := freeAddr(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--id=m1", "--data-dir=" + t.TempDir(), "--raft-addr=" + raftAddr,
			"--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0", "--initial-cluster=m1=" + raftAddr,
			"--raft-heartbeat-timeout=100ms", "--raft-election-timeout=100ms", "--raft-leader-lease-timeout=50ms"}, &logs)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logs.String(), "recorded member grpc address") {
		if time.Now().After(deadline) {
			t.Fatalf("metad did not bootstrap within 15s; log:\n%s", logs.String())
		}
		select {
		case c := <-code:
			t.Fatalf("metad exited with %d; log:\n%s", c, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel() // what SIGTERM does through signal.NotifyContext
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d; log:\n%s", c, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("metad did not stop within 15s of cancellation; log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "metad stopped") {
		t.Fatalf("no orderly stop in log:\n%s", logs.String())
	}
}
