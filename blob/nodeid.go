package blob

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// nodeIDFile records which node id a data directory belongs to.
const nodeIDFile = "NODE_ID"

// claimDataDir ties dataDir to id: the first start writes the id, every
// later start must name the same one. A node started with a new id on an
// old directory would register as a new, empty node, and orphan
// reconciliation would then delete every chunk it holds.
func claimDataDir(dataDir, id string) error {
	path := filepath.Join(dataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if got := strings.TrimSpace(string(b)); got != id {
			return fmt.Errorf("data directory %s belongs to blob node %q, not %q: start it with --id %s, or use another directory", dataDir, got, id, got)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return fmt.Errorf("record node id: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dataDir)
	}
	if err != nil {
		return fmt.Errorf("record node id: %w", err)
	}
	return nil
}
