package chunk

import (
	"errors"
	"testing"
)

func TestSchemeValidate(t *testing.T) {
	tests := []struct {
		s  Scheme
		ok bool
	}{
		{Scheme{1, 0}, true},
		{Scheme{4, 2}, true},
		{Scheme{16, 8}, true},
		{Scheme{0, 0}, false},
		{Scheme{0, 2}, false},
		{Scheme{17, 2}, false},
		{Scheme{4, -1}, false},
		{Scheme{4, 9}, false},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%v.Validate() = %v, want ok=%v", tt.s, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadParams) {
			t.Errorf("%v.Validate() = %v, want ErrBadParams", tt.s, err)
		}
	}
}

func TestParseScheme(t *testing.T) {
	tests := []struct {
		in   string
		want Scheme
		ok   bool
	}{
		{"4+2", Scheme{4, 2}, true},
		{"1+0", Scheme{1, 0}, true},
		{"16+8", Scheme{16, 8}, true},
		{"3+2", Scheme{3, 2}, true},
		{"", Scheme{}, false},
		{"4", Scheme{}, false},
		{"4+", Scheme{}, false},
		{"+2", Scheme{}, false},
		{"4+2+1", Scheme{}, false},
		{"-4+2", Scheme{}, false},
		{" 4+2", Scheme{}, false},
		{"4 + 2", Scheme{}, false},
		{"17+1", Scheme{}, false},
		{"4+9", Scheme{}, false},
		{"0+0", Scheme{}, false},
		{"0004+2", Scheme{}, false},
		{"99999999999999999999+1", Scheme{}, false},
	}
	for _, tt := range tests {
		got, err := ParseScheme(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseScheme(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("ParseScheme(%q).String() = %q", tt.in, got.String())
		}
	}
	if s := DefaultScheme(); s.String() != "4+2" {
		t.Errorf("DefaultScheme() = %v, want 4+2", s)
	}
}

func TestDefaultParams(t *testing.T) {
	tests := []struct {
		s    Scheme
		want int
	}{
		{Scheme{1, 0}, 1 << 20},
		{Scheme{2, 1}, 1 << 19},
		{Scheme{3, 2}, 349568}, // ceil(1 MiB / 3) = 349526 → next multiple of 64
		{Scheme{4, 2}, 1 << 18},
		{Scheme{5, 3}, 209728}, // ceil(1 MiB / 5) = 209716 → 209728
		{Scheme{16, 8}, 1 << 16},
	}
	for _, tt := range tests {
		p := DefaultParams(tt.s)
		if p.BlockSize != tt.want || p.Scheme != tt.s {
			t.Errorf("DefaultParams(%v) = %v, want block size %d", tt.s, p, tt.want)
		}
		if p.BlockSize%64 != 0 || p.StripeDataSize() < 1<<20 {
			t.Errorf("DefaultParams(%v) = %v: not a multiple of 64 or holds < 1 MiB", tt.s, p)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("DefaultParams(%v).Validate() = %v", tt.s, err)
		}
	}
	for _, p := range []Params{
		{Scheme{4, 2}, 0},
		{Scheme{4, 2}, -1},
		{Scheme{4, 2}, MaxBlockSize + 1},
		{Scheme{0, 2}, 64},
	} {
		if err := p.Validate(); !errors.Is(err, ErrBadParams) {
			t.Errorf("%v.Validate() = %v, want ErrBadParams", p, err)
		}
	}
}
