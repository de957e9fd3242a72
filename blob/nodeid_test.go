package blob

import (
	"strings"
	"testing"
)

func TestClaimDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := claimDataDir(dir, "b1"); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := claimDataDir(dir, "b1"); err != nil {
		t.Fatalf("same id again: %v", err)
	}
	err := claimDataDir(dir, "b2")
	if err == nil || !strings.Contains(err.Error(), `belongs to blob node "b1"`) {
		t.Fatalf("other id: %v, want a refusal naming b1", err)
	}
}
