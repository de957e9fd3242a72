package sse

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// MasterKeys are a gateway's SSE-S3 master keys by id. The first is the
// current one, which seals the data keys of new objects; the others only
// open the keys of objects written under them, so a master key can be
// replaced without rewriting what it protects. Every gateway of a cluster
// must hold the same keys.
type MasterKeys struct {
	current string
	keys    map[string][]byte
}

// maxKeyID bounds a master key's id, which every SSE-S3 object records.
const maxKeyID = 64

// ParseMasterKeys reads master keys, one per line as "id:base64 of 32
// bytes" (MinIO's MINIO_KMS_SECRET_KEY form); blank lines and lines
// starting with # are skipped. The first key is the current one.
func ParseMasterKeys(text string) (*MasterKeys, error) {
	m := &MasterKeys{keys: map[string][]byte{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		id, b64, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("master key line %d: want id:base64-key", line)
		}
		if err := checkKeyID(id); err != nil {
			return nil, fmt.Errorf("master key line %d: %w", line, err)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("master key %q: want the base64 of %d random bytes (head -c %d /dev/urandom | base64)", id, KeySize, KeySize)
		}
		if _, dup := m.keys[id]; dup {
			return nil, fmt.Errorf("master key %q given twice", id)
		}
		if m.current == "" {
			m.current = id
		}
		m.keys[id] = key
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read master keys: %w", err)
	}
	if m.current == "" {
		return nil, fmt.Errorf("no master key given")
	}
	return m, nil
}

// LoadMasterKeys reads master keys from a file (ParseMasterKeys).
func LoadMasterKeys(path string) (*MasterKeys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master keys: %w", err)
	}
	m, err := ParseMasterKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func checkKeyID(id string) error {
	if id == "" || len(id) > maxKeyID {
		return fmt.Errorf("key id must be 1 to %d characters", maxKeyID)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key id %q: only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// contextS3 binds SSE-S3 sealed keys to their kind and master key.
func contextS3(id string) string { return "cairn sse-s3 " + id }

// contextC binds SSE-C sealed keys to their kind.
const contextC = "cairn sse-c"

// Current is the id of the key that seals new data keys.
func (m *MasterKeys) Current() string { return m.current }

// Seal seals dk under the current master key; it returns the key's id
// with the sealed key, both to be recorded with the object.
func (m *MasterKeys) Seal(dk DataKey) (id string, sealed []byte, err error) {
	sealed, err = Seal(m.keys[m.current], dk, contextS3(m.current))
	return m.current, sealed, err
}

// Open opens a data key sealed under master key id.
func (m *MasterKeys) Open(id string, sealed []byte) (DataKey, error) {
	key, ok := m.keys[id]
	if !ok {
		return DataKey{}, fmt.Errorf("object sealed under master key %q, which this gateway does not hold", id)
	}
	return Open(key, sealed, contextS3(id))
}

// SealForClient seals dk under an SSE-C client's key.
func SealForClient(clientKey []byte, dk DataKey) ([]byte, error) {
	return Seal(clientKey, dk, contextC)
}

// OpenForClient opens a data key sealed under an SSE-C client's key;
// ErrSealedKey when it is not the key the object was written with.
func OpenForClient(clientKey, sealed []byte) (DataKey, error) {
	return Open(clientKey, sealed, contextC)
}
