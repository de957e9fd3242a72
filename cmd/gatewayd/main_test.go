package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/memlimit"
)

func TestMemoryLimitFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{nil, defaultMemoryLimit},
		{[]string{"--memory-limit", "512MiB"}, 512 << 20},
		{[]string{"--memory-limit", "1G"}, 1 << 30},
		{[]string{"--memory-limit", "300000000"}, 300000000},
		{[]string{"--memory-limit", "0"}, 0},
		{[]string{"--memory-limit", "off"}, 0},
		{[]string{"--memory-limit", "OFF"}, 0},
	} {
		f, err := parseFlags(append([]string{"--metad", "127.0.0.1:1"}, tc.args...), &bytes.Buffer{})
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", tc.args, err)
		}
		if f.memoryLimit != tc.want {
			t.Errorf("parseFlags(%q): memory limit %d, want %d", tc.args, f.memoryLimit, tc.want)
		}
	}
	for _, bad := range []string{"lots", "-1", "256XB", ""} {
		if _, err := parseFlags([]string{"--metad", "127.0.0.1:1", "--memory-limit", bad}, &bytes.Buffer{}); err == nil {
			t.Errorf("--memory-limit %q accepted", bad)
		}
	}
}

func TestMemoryLimitFromEnvironmentWins(t *testing.T) {
	for _, tc := range []struct {
		flag    int64
		env     string
		want    int64
		fromEnv bool
	}{
		{defaultMemoryLimit, "", defaultMemoryLimit, false},
		{0, "", math.MaxInt64, false}, // off: no limit
		{1 << 30, "", 1 << 30, false},
		{defaultMemoryLimit, "1GiB", 0, true}, // the runtime applied it
		{0, "off", 0, true},
	} {
		limit, fromEnv := memlimit.Resolve(tc.flag, tc.env)
		if fromEnv != tc.fromEnv || (!fromEnv && limit != tc.want) {
			t.Errorf("memoryLimit(%d, %q) = %d, %v; want %d, %v", tc.flag, tc.env, limit, fromEnv, tc.want, tc.fromEnv)
		}
	}
}

func TestHelpNamesMemoryLimitDefault(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, func(string) string { return "" }, &out); code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	help := out.String()
	i := strings.Index(help, "-memory-limit")
	if i < 0 {
		t.Fatalf("--help does not list --memory-limit:\n%s", help)
	}
	line := help[i:]
	if j := strings.Index(line, "\n  -"); j >= 0 {
		line = line[:j]
	}
	d := int64(defaultMemoryLimit)
	for _, want := range []string{"(default " + memlimit.Flag{P: &d}.String() + ")", "GOMEMLIMIT", "off"} {
		if !strings.Contains(line, want) {
			t.Errorf("--memory-limit help lacks %q:\n%s", want, line)
		}
	}
}
