// Package hclogslog adapts hashicorp/go-hclog, the logging interface
// hashicorp/raft speaks, onto a *slog.Logger, so Raft's messages go wherever
// the daemon's structured log goes.
package hclogslog

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// LevelTrace is the slog level hclog's Trace messages are logged at.
const LevelTrace = slog.LevelDebug - 4

// Logger is an hclog.Logger writing to a *slog.Logger.
type Logger struct {
	// base is the logger given to New; sl is base with the name and the
	// implied arguments attached.
	base    *slog.Logger
	sl      *slog.Logger
	name    string
	implied []any
	// level is shared with loggers derived by With and Named, as hclog's
	// own implementation shares it. hclog.NoLevel defers to the handler.
	level *atomic.Int32
	// relevel, when set, picks each message's level (see Relevel).
	relevel Relevel
}

var _ hclog.Logger = (*Logger)(nil)

// Relevel decides the level a message is logged at from the level, message
// and arguments hclog was given (implied arguments not included). It lets
// a daemon lower a library's message that is routine in a case the library
// cannot tell apart.
type Relevel func(level hclog.Level, msg string, args []any) hclog.Level

// WithRelevel makes l, and the loggers later derived from it by With and
// Named, log each message at the level f picks. It returns l.
func (l *Logger) WithRelevel(f Relevel) *Logger {
	l.relevel = f
	return l
}

// Arg returns the value of the argument named key among hclog-style
// key/value args, and whether there is one.
func Arg(args []any, key string) (any, bool) {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == key {
			return args[i+1], true
		}
	}
	return nil, false
}

// New returns an hclog.Logger writing to sl. minLevel drops messages below
// it before they reach sl (hclog.NoLevel leaves filtering to sl's handler);
// raft logs every heartbeat failure and election step, so daemons usually
// pass hclog.Info.
func New(sl *slog.Logger, minLevel hclog.Level) *Logger {
	if sl == nil {
		sl = slog.New(slog.DiscardHandler)
	}
	l := &Logger{base: sl, sl: sl, level: new(atomic.Int32)}
	l.level.Store(int32(minLevel))
	return l
}

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return LevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default: // Info, NoLevel, DefaultLevel
		return slog.LevelInfo
	}
}

func (l *Logger) enabled(level hclog.Level) bool {
	min := hclog.Level(l.level.Load())
	if min == hclog.Off {
		return false
	}
	if min != hclog.NoLevel && level != hclog.NoLevel && level < min {
		return false
	}
	return l.sl.Enabled(context.Background(), toSlog(level))
}

// Log implements hclog.Logger.
func (l *Logger) Log(level hclog.Level, msg string, args ...any) {
	if l.relevel != nil {
		level = l.relevel(level, msg, args)
	}
	if !l.enabled(level) {
		return
	}
	l.sl.Log(context.Background(), toSlog(level), msg, formatArgs(args)...)
}

// formatArgs renders hclog.Fmt values (hclog.Format: a format string and
// its arguments), which raft uses and slog would print raw.
func formatArgs(args []any) []any {
	for i, a := range args {
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				args[i] = fmt.Sprintf(format, f[1:]...)
			}
		}
	}
	return args
}

// Trace implements hclog.Logger.
func (l *Logger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (l *Logger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (l *Logger) Info(msg string, args ...any) { l.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (l *Logger) Warn(msg string, args ...any) { l.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (l *Logger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

// IsTrace implements hclog.Logger.
func (l *Logger) IsTrace() bool { return l.enabled(hclog.Trace) }

// IsDebug implements hclog.Logger.
func (l *Logger) IsDebug() bool { return l.enabled(hclog.Debug) }

// IsInfo implements hclog.Logger.
func (l *Logger) IsInfo() bool { return l.enabled(hclog.Info) }

// IsWarn implements hclog.Logger.
func (l *Logger) IsWarn() bool { return l.enabled(hclog.Warn) }

// IsError implements hclog.Logger.
func (l *Logger) IsError() bool { return l.enabled(hclog.Error) }

// ImpliedArgs implements hclog.Logger.
func (l *Logger) ImpliedArgs() []any { return l.implied }

// With implements hclog.Logger.
func (l *Logger) With(args ...any) hclog.Logger {
	if len(args) == 0 {
		return l
	}
	implied := append(append([]any(nil), l.implied...), args...)
	return &Logger{base: l.base, sl: l.sl.With(args...), name: l.name, implied: implied, level: l.level, relevel: l.relevel}
}

// Name implements hclog.Logger.
func (l *Logger) Name() string { return l.name }

// Named implements hclog.Logger: the name is appended to the current one
// with a dot, as hclog does, and logged as the attribute "logger".
func (l *Logger) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return l.ResetNamed(name)
}

// ResetNamed implements hclog.Logger.
func (l *Logger) ResetNamed(name string) hclog.Logger {
	// slog attributes accumulate, so a renamed logger is rebuilt from the
	// base logger rather than stacking a second "logger" attribute.
	sl := l.base
	if name != "" {
		sl = sl.With("logger", name)
	}
	if len(l.implied) > 0 {
		sl = sl.With(l.implied...)
	}
	return &Logger{base: l.base, sl: sl, name: name, implied: l.implied, level: l.level, relevel: l.relevel}
}

// SetLevel implements hclog.Logger.
func (l *Logger) SetLevel(level hclog.Level) { l.level.Store(int32(level)) }

// GetLevel implements hclog.Logger.
func (l *Logger) GetLevel() hclog.Level { return hclog.Level(l.level.Load()) }

// StandardLogger implements hclog.Logger.
func (l *Logger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	level := slog.LevelInfo
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = toSlog(opts.ForceLevel)
	}
	return slog.NewLogLogger(l.sl.Handler(), level)
}

// StandardWriter implements hclog.Logger.
func (l *Logger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return l.StandardLogger(opts).Writer()
}
