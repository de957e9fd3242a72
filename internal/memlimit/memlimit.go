// Package memlimit is the --memory-limit flag the daemons share: a soft
// limit on the Go runtime's memory (debug.SetMemoryLimit), given as a byte
// count with an optional unit or "off", which GOMEMLIMIT in the
// environment overrides.
package memlimit

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"

	"github.com/cairnstore/cairn/blob"
)

// Flag is a flag.Value holding a limit in bytes (0: none).
type Flag struct{ P *int64 }

func (m Flag) String() string {
	if m.P == nil || *m.P <= 0 {
		return "off"
	}
	if *m.P%(1<<20) == 0 {
		return fmt.Sprintf("%dMiB", *m.P>>20)
	}
	return fmt.Sprint(*m.P)
}

// Set parses "256MiB", "1GiB", "0" or "off".
func (m Flag) Set(v string) error {
	if strings.EqualFold(strings.TrimSpace(v), "off") {
		*m.P = 0
		return nil
	}
	n, err := blob.ParseSize(v)
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("memory limit %q: must not be negative", v)
	}
	*m.P = n
	return nil
}

// Resolve returns the soft memory limit to set from the flag's bytes (0:
// none, which is math.MaxInt64 to the runtime), or fromEnv when GOMEMLIMIT
// is set: the runtime has applied that one already, and an operator's
// environment overrides a default.
func Resolve(flagBytes int64, env string) (limit int64, fromEnv bool) {
	if env != "" {
		return 0, true
	}
	if flagBytes <= 0 {
		return math.MaxInt64, false
	}
	return flagBytes, false
}

// Apply sets the limit Resolve gives and logs what is in force.
func Apply(log *slog.Logger, flagBytes int64, env string) {
	limit, fromEnv := Resolve(flagBytes, env)
	if fromEnv {
		log.Info("memory limit from GOMEMLIMIT", "bytes", debug.SetMemoryLimit(-1))
		return
	}
	debug.SetMemoryLimit(limit)
	if limit != math.MaxInt64 {
		log.Info("memory limit", "bytes", limit)
	}
}
