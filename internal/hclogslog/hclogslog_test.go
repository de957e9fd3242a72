package hclogslog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func newBuf(level slog.Level) (*bytes.Buffer, *slog.Logger) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	return &buf, slog.New(h)
}

func TestLevels(t *testing.T) {
	tests := []struct {
		name     string
		handler  slog.Level
		min      hclog.Level
		log      func(hclog.Logger)
		want     string // substring; "" means nothing logged
		wantNone bool
	}{
		{"info passes", slog.LevelInfo, hclog.NoLevel, func(l hclog.Logger) { l.Info("hello", "k", 1) }, "level=INFO msg=hello k=1", false},
		{"debug dropped by handler", slog.LevelInfo, hclog.NoLevel, func(l hclog.Logger) { l.Debug("x") }, "", true},
		{"debug dropped by min level", slog.LevelDebug, hclog.Info, func(l hclog.Logger) { l.Debug("x") }, "", true},
		{"debug passes", slog.LevelDebug, hclog.Debug, func(l hclog.Logger) { l.Debug("dbg") }, "level=DEBUG msg=dbg", false},
		{"trace below debug", LevelTrace, hclog.NoLevel, func(l hclog.Logger) { l.Trace("tr") }, "level=DEBUG-4 msg=tr", false},
		{"warn", slog.LevelInfo, hclog.Info, func(l hclog.Logger) { l.Warn("w") }, "level=WARN msg=w", false},
		{"error via Log", slog.LevelInfo, hclog.Info, func(l hclog.Logger) { l.Log(hclog.Error, "e") }, "level=ERROR msg=e", false},
		{"off drops errors", slog.LevelInfo, hclog.Off, func(l hclog.Logger) { l.Error("e") }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf, sl := newBuf(tt.handler)
			tt.log(New(sl, tt.min))
			got := buf.String()
			if tt.wantNone {
				if got != "" {
					t.Fatalf("logged %q, want nothing", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("logged %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestNamedAndWith(t *testing.T) {
	buf, sl := newBuf(slog.LevelInfo)
	l := New(sl, hclog.NoLevel).Named("raft").With("id", "m1").Named("net")
	if got, want := l.Name(), "raft.net"; got != want {
		t.Fatalf("Name() = %q, want %q", got, want)
	}
	if got := l.ImpliedArgs(); len(got) != 2 || got[0] != "id" || got[1] != "m1" {
		t.Fatalf("ImpliedArgs() = %v", got)
	}
	l.Info("msg")
	if got, want := strings.TrimSpace(buf.String()), "level=INFO msg=msg logger=raft.net id=m1"; got != want {
		t.Fatalf("logged %q, want %q", got, want)
	}
	buf.Reset()
	l.ResetNamed("other").Info("msg2")
	if got, want := strings.TrimSpace(buf.String()), "level=INFO msg=msg2 logger=other id=m1"; got != want {
		t.Fatalf("logged %q, want %q", got, want)
	}
}

func TestSetLevelShared(t *testing.T) {
	buf, sl := newBuf(slog.LevelDebug)
	root := New(sl, hclog.Debug)
	child := root.Named("c")
	child.SetLevel(hclog.Warn)
	if root.GetLevel() != hclog.Warn || root.IsInfo() {
		t.Fatalf("level not shared: root level %v, IsInfo %v", root.GetLevel(), root.IsInfo())
	}
	root.Info("dropped")
	if buf.Len() != 0 {
		t.Fatalf("logged %q after SetLevel(Warn)", buf.String())
	}
}

func TestStandardLogger(t *testing.T) {
	buf, sl := newBuf(slog.LevelInfo)
	std := New(sl, hclog.NoLevel).StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn})
	std.Print("from std")
	if got := buf.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "from std") {
		t.Fatalf("logged %q", got)
	}
}

func TestNilLogger(t *testing.T) {
	l := New(nil, hclog.NoLevel)
	l.Error("goes nowhere")
	if l.IsError() {
		t.Fatal("discard logger reports IsError")
	}
}

func TestFmtArgsAreFormatted(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), hclog.Info)
	l.Info("msg", "servers", hclog.Fmt("%+v", []int{1, 2}))
	if !strings.Contains(buf.String(), `servers="[1 2]"`) {
		t.Fatalf("hclog.Fmt not rendered: %s", buf.String())
	}
}

func TestRelevel(t *testing.T) {
	buf, sl := newBuf(slog.LevelInfo)
	l := New(sl, hclog.Info).WithRelevel(func(level hclog.Level, msg string, args []any) hclog.Level {
		if v, ok := Arg(args, "routine"); ok && v == true {
			return hclog.Debug
		}
		return level
	})
	// Derived loggers keep the rule.
	d := l.Named("raft").With("member", "m1")
	d.Warn("dropped", "routine", true)
	d.Warn("kept", "routine", false)
	d.Error("odd args", "routine") // no value: left as it is
	out := buf.String()
	if strings.Contains(out, "dropped") {
		t.Errorf("relevelled message logged: %q", out)
	}
	for _, want := range []string{"level=WARN msg=kept", "level=ERROR msg=\"odd args\""} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
}
