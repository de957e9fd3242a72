package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	flagLong   = flag.Bool("e2e.long", false, "run the longer variants of the e2e tests")
	flagLogDir = flag.String("e2e.logdir", "", "keep each process's log under `DIR`/<test>/ (default: a temporary directory)")
	flagBin    = flag.String("e2e.bin", "", "use metad, blobd and gatewayd already built in `DIR` instead of building them")
)

// binDir holds the daemons built (or found) by TestMain.
var binDir string

var daemons = []string{"metad", "blobd", "gatewayd"}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test skips itself; building would only cost time.
		os.Exit(m.Run())
	}
	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func buildAndRun(m *testing.M) (int, error) {
	if *flagBin != "" {
		binDir = *flagBin
		for _, d := range daemons {
			if _, err := os.Stat(filepath.Join(binDir, d)); err != nil {
				return 0, fmt.Errorf("-e2e.bin: %w", err)
			}
		}
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "cairn-e2e-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if err := buildDaemons(dir); err != nil {
		return 0, err
	}
	binDir = dir
	return m.Run(), nil
}

// buildDaemons runs `go build` for the three daemons from the module root
// into dir, with -race when this test binary has it.
func buildDaemons(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// `go test` puts its own GOROOT/bin first in PATH, so this is the go
	// that built the test.
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return fmt.Errorf("go env GOMOD: not inside a module (%q)", mod)
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceBuild {
		args = append(args, "-race")
	}
	for _, d := range daemons {
		args = append(args, "./cmd/"+d)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Dir(mod)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), cmd.Dir, err, out.String())
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s (race=%v) in %v\n", strings.Join(daemons, ", "), raceBuild, time.Since(start).Round(time.Millisecond))
	return nil
}

// skipShort skips the e2e tests in -short runs.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped with -short (builds and runs real daemons)")
	}
}
