package metaclient

import (
	"slices"
	"testing"
)

func TestParseAddrs(t *testing.T) {
	for in, want := range map[string][]string{
		"":                 nil,
		" , ,":             nil,
		"a:1":              {"a:1"},
		" a:1, b:2 ,,c:3 ": {"a:1", "b:2", "c:3"},
		"127.0.0.1:7200,,": {"127.0.0.1:7200"},
	} {
		if got := ParseAddrs(in); !slices.Equal(got, want) {
			t.Errorf("ParseAddrs(%q) = %q, want %q", in, got, want)
		}
	}
}
