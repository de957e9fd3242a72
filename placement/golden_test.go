package placement

import (
	"slices"
	"testing"
)

// TestPlaceGolden pins Place's output for one input. The hash is part of
// the contract (gateways of different versions must agree on new
// placements during a rolling upgrade): if this fails, the change moves
// every future segment and needs a deliberate decision, not a new golden.
func TestPlaceGolden(t *testing.T) {
	seg := []byte("0123456789abcdef")
	got, err := Place(seg, cluster(3, 2, 3), 6, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"n-1-0-1", "n-2-0-2", "n-1-1-1", "n-0-0-1", "n-2-1-0", "n-0-1-0"}
	if !slices.Equal(got, want) {
		t.Fatalf("Place = %q, want %q", got, want)
	}
}
