package clitable

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{50 << 20, "50.0 MiB"}, {(1 << 30) - 1, "1.0 GiB"}, {6 << 30, "6.0 GiB"},
		{3 << 40, "3.0 TiB"}, {-2048, "-2.0 KiB"}, {math.MaxInt64, "8.0 EiB"},
	}
	for _, tt := range tests {
		if got := Bytes(tt.n); got != tt.want {
			t.Errorf("Bytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestRatePercentSeconds(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Rate(50 << 20), "50.0 MiB/s"},
		{Rate(0), "0 B/s"},
		{Rate(math.NaN()), "0 B/s"},
		{Percent(1, 8), "12.5%"},
		{Percent(1, 0), "-"},
		{Seconds(0), "-"},
		{Seconds(math.Inf(1)), "-"},
		{Seconds(3), "3s"},
		{Seconds(185), "3m05s"},
		{Seconds(2*3600 + 7*60), "2h07m"},
		{Seconds(3*86400 + 4*3600), "3d04h"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now.Add(-3 * time.Second), "3s ago"},
		{now.Add(-1400 * time.Millisecond), "1s ago"},
		{now.Add(-130 * time.Second), "2m10s ago"},
		{now.Add(time.Second), "just now"},
	}
	for _, tt := range tests {
		if got := Ago(now, tt.t); got != tt.want {
			t.Errorf("Ago(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestBar(t *testing.T) {
	tests := []struct {
		done, total int64
		want        string
	}{
		{0, 100, "[..........]   0.0%"},
		{50, 100, "[#####.....]  50.0%"},
		{100, 100, "[##########] 100.0%"},
		{200, 100, "[##########] 100.0%"},
		{5, 0, "[..........]   0.0%"},
	}
	for _, tt := range tests {
		if got := Bar(tt.done, tt.total, 10); got != tt.want {
			t.Errorf("Bar(%d, %d) = %q, want %q", tt.done, tt.total, got, tt.want)
		}
	}
}

func TestTable(t *testing.T) {
	tb := New("ID", "STATE", "USED")
	tb.Row("b1", "up", "1.0 GiB")
	tb.Row("node-22", "draining", "")
	var b strings.Builder
	if err := tb.Render(&b); err != nil {
		t.Fatal(err)
	}
	want := "ID       STATE     USED\n" +
		"b1       up        1.0 GiB\n" +
		"node-22  draining\n"
	if b.String() != want {
		t.Fatalf("Render:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"100", 100, false},
		{"50MiB/s", 50 << 20, false},
		{"50 MiB", 50 << 20, false},
		{"1.5GiB", 3 << 29, false},
		{"10M", 10 << 20, false},
		{"10mb", 10_000_000, false},
		{"2 KB/s", 2000, false},
		{"1T", 1 << 40, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"5 parsecs", 0, true},
		{"1.2.3M", 0, true},
		{"99999999999999TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"100", "50MiB/s", "1.5 GiB", "10mb", "", "x", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d, negative", s, n)
		}
		// What Bytes prints parses back to within rounding.
		back, err := ParseBytes(strings.ReplaceAll(Bytes(n), " ", ""))
		if err != nil && n < 1<<62 {
			t.Fatalf("ParseBytes(Bytes(%d) = %q): %v", n, Bytes(n), err)
		}
		if err != nil {
			return // rounded up past MaxInt64
		}
		if diff := math.Abs(float64(back - n)); diff > 0.06*float64(n)+1 {
			t.Fatalf("ParseBytes(Bytes(%d)) = %d", n, back)
		}
	})
}
