package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/s3bench"
)

func noEnv(string) string { return "" }

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"no endpoint", []string{"--access-key", "k", "--secret-key", "s"}, "endpoint"},
		{"no secret", []string{"--endpoint", "http://127.0.0.1:1", "--access-key", "k"}, "secret key"},
		{"bad op", []string{"--endpoint", "http://127.0.0.1:1", "--access-key", "k", "--secret-key", "s", "--op", "copy"}, "unknown workload"},
		{"bad size", []string{"--size", "4 bananas"}, "unknown unit"},
		{"bad watch", []string{"--watch", "metad"}, "NAME=PID"},
		{"stray argument", []string{"run", "extra"}, "unexpected arguments"},
		{"bad sse", []string{"--endpoint", "http://127.0.0.1:1", "--access-key", "k", "--secret-key", "s", "--sse", "aws:kms"}, "unknown server-side encryption"},
		{"sse lower case", []string{"--endpoint", "http://127.0.0.1:1", "--access-key", "k", "--secret-key", "s", "--sse", "sse-c"}, "unknown server-side encryption"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(context.Background(), tc.args, noEnv, &out, &errOut)
			if code == 0 || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, errOut.String(), tc.want)
			}
		})
	}
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ceil := write("ceil.json", []s3bench.Ceiling{{Name: s3bench.CeilingHTTPPutMD5, Concurrency: 16, MiBPerSec: 400}})
	run1 := write("run.json", s3bench.Result{Label: "x", Workload: "put", Size: 64 << 20, SizeLabel: "64MiB", Concurrency: 16,
		Ops: []s3bench.OpStats{{Op: s3bench.OpPut, Count: 3, MiBPerSec: 100}}})
	md, js := filepath.Join(dir, "r.md"), filepath.Join(dir, "r.json")
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"report", "--ceilings", ceil, "--md", md, "--json", js, "--note", "hello", run1}, noEnv, &out, &errOut); code != 0 {
		t.Fatalf("report: exit %d: %s", code, errOut.String())
	}
	b, err := os.ReadFile(md)
	if err != nil || !strings.Contains(string(b), "25% of http-put-md5 c16") || !strings.Contains(string(b), "- hello") {
		t.Errorf("markdown (%v):\n%s", err, b)
	}
	var rep s3bench.Report
	b, err = os.ReadFile(js)
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil || len(rep.Runs) != 1 || rep.Runs[0].Ceiling == nil || rep.Runs[0].Ceiling.Fraction != 0.25 {
		t.Errorf("json report (%v): %s", err, b)
	}
}

// TestSSEFlag: every documented --sse value is accepted (the run then
// fails on the unreachable endpoint, not on the flag).
func TestSSEFlag(t *testing.T) {
	for _, v := range []string{"", "AES256", "SSE-C"} {
		var out, errOut strings.Builder
		code := run(context.Background(), []string{"--endpoint", "http://127.0.0.1:1", "--access-key", "k", "--secret-key", "s",
			"--duration", "1ms", "--quiet", "--sse", v}, noEnv, &out, &errOut)
		if code == 0 || strings.Contains(errOut.String(), "encryption") || !strings.Contains(errOut.String(), "127.0.0.1:1") {
			t.Errorf("--sse %q: exit %d, stderr %q; want a failure to reach the endpoint", v, code, errOut.String())
		}
	}
}
