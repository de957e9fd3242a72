package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnstore/cairn/gateway/sse"
)

// The dev cluster's master key is made once, readable only by its owner,
// and the same on the next start: objects sealed in one run open in the
// next.
func TestDevMasterKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), devMasterKeyFile)
	first, err := devMasterKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	id, sealed, err := first.Seal(sse.DataKey{7})
	if err != nil {
		t.Fatal(err)
	}
	again, err := devMasterKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if dk, err := again.Open(id, sealed); err != nil || dk != (sse.DataKey{7}) {
		t.Errorf("a key sealed before the restart does not open after it: %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9000": true, "localhost:9000": true, "[::1]:9000": true, "127.1.2.3:1": true,
		"0.0.0.0:9000": false, ":9000": false, "10.0.0.1:9000": false, "example.com:9000": false, "bad": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
