// Package clitable renders what the `cairn` admin CLI prints for people:
// aligned tables, byte sizes in binary units, rates, ages and ETAs, and
// progress bars. It knows nothing of metad; the CLI turns API answers into
// strings and hands them here. It also parses the byte sizes people type
// (--rate 50MiB/s).
package clitable

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// Table is rows of cells printed in aligned columns, two spaces apart.
type Table struct {
	rows [][]string
}

// New returns a table whose first row is header (omit for none).
func New(header ...string) *Table {
	t := &Table{}
	if len(header) > 0 {
		t.rows = append(t.rows, header)
	}
	return t
}

// Row appends a row.
func (t *Table) Row(cells ...string) { t.rows = append(t.rows, cells) }

// Len is the number of rows, the header included.
func (t *Table) Len() int { return len(t.rows) }

// Render writes the table; trailing spaces are trimmed from every line.
func (t *Table) Render(w io.Writer) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	return nil
}

var units = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// Bytes formats n in binary units: "0 B", "512 B", "1.5 KiB", "12.0 GiB".
func Bytes(n int64) string {
	if n < 0 {
		return "-" + Bytes(-n)
	}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v >= 1023.95 && i < len(units)-1 { // would print as "1024.0"
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

// Rate formats bytes per second: "50.0 MiB/s".
func Rate(bytesPerSecond float64) string {
	if bytesPerSecond <= 0 || math.IsNaN(bytesPerSecond) || math.IsInf(bytesPerSecond, 0) {
		return "0 B/s"
	}
	return Bytes(int64(bytesPerSecond)) + "/s"
}

// Percent formats part/whole as "12.5%" ("-" when whole is 0).
func Percent(part, whole int64) string {
	if whole <= 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(part)/float64(whole), 'f', 1, 64) + "%"
}

// Duration formats d coarsely for people: "0s", "45s", "3m05s", "2h07m",
// "3d04h".
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
	}
}

// Seconds formats an ETA given in seconds; "-" when unknown (0 or less,
// NaN, infinite).
func Seconds(s float64) string {
	if s <= 0 || math.IsNaN(s) || math.IsInf(s, 0) || s > 100*365*86400 {
		return "-"
	}
	return Duration(time.Duration(s * float64(time.Second)))
}

// Ago formats how long before now t was: "3s ago", "2m10s ago"; "never"
// for the zero time; "just now" for a t slightly in the future (clock
// skew between machines).
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		return "just now"
	}
	return Duration(d) + " ago"
}

// Bar draws a progress bar of width cells for done of total:
// "[##########..........]  50.0%".
func Bar(done, total int64, width int) string {
	frac := 0.0
	if total > 0 {
		frac = min(max(float64(done)/float64(total), 0), 1)
	}
	full := int(frac * float64(width))
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + "] " +
		fmt.Sprintf("%5.1f%%", 100*frac)
}

// ParseBytes parses a size people type: a number with an optional unit,
// binary (KiB, MiB, GiB, TiB; K, M, G, T are read as binary too) or
// decimal (KB, MB, GB, TB), case-insensitive, an optional "/s" (so a rate
// parses the same way) and optional spaces: "100", "50MiB/s", "1.5 GiB",
// "10M".
func ParseBytes(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "/s"), "/S")
	i := strings.IndexFunc(s, func(r rune) bool { return !(unicode.IsDigit(r) || r == '.') })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	if num == "" {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, e.g. 50MiB", in)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, e.g. 50MiB", in)
	}
	mult, ok := multipliers[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)", in, unit)
	}
	b := v * mult
	if b >= math.MaxInt64 || math.IsNaN(b) {
		return 0, errors.New("size " + strconv.Quote(in) + ": too large")
	}
	return int64(b), nil
}

var multipliers = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	"p": 1 << 50, "pib": 1 << 50, "pb": 1e15,
	"e": 1 << 60, "eib": 1 << 60, "eb": 1e18,
}
