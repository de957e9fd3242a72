package metadata

import (
	"errors"
	"flag"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// StoreConfig sizes the state machine's Badger. Badger's defaults suit a
// large general-purpose database (five 64 MiB memtables, a 256 MiB block
// cache) and made metad's RSS reach ~750 MiB under a small-object PUT run;
// the metadata state is written in small transactions and read by point
// lookups and short scans, so it needs far less:
//
//   - MemTableSize: each memtable is an arena of this size (plus a WAL file
//     mapped at twice it); NumMemtables of them may exist at once while
//     full ones wait to be flushed. Badger refuses a transaction larger
//     than ~15% of a memtable, so this also bounds what one batch of
//     commands may write (see minStateMemTable).
//   - BlockCacheSize: decompressed table blocks, what point reads and
//     listings hit.
//   - IndexCacheSize: table indexes and Bloom filters; 0 keeps every
//     table's index in memory, which grows with the number of keys.
type StoreConfig struct {
	MemTableSize   int64
	NumMemtables   int
	BlockCacheSize int64
	IndexCacheSize int64
}

// Defaults for a metadata store (issue 6): the state is small next to the
// data it describes, and these sizes bound its memory however many keys
// it holds.
const (
	DefaultStateMemTableSize   = 32 << 20
	DefaultStateNumMemtables   = 3
	DefaultStateBlockCacheSize = 64 << 20
	DefaultStateIndexCacheSize = 64 << 20
)

// minStateMemTable keeps the largest batch entry the proposer builds
// (maxBatchBytes of commands, each writing a few records and index
// entries) well inside one transaction.
const minStateMemTable = 16 << 20

// DefaultStoreConfig is the state store's default sizing.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{
		MemTableSize:   DefaultStateMemTableSize,
		NumMemtables:   DefaultStateNumMemtables,
		BlockCacheSize: DefaultStateBlockCacheSize,
		IndexCacheSize: DefaultStateIndexCacheSize,
	}
}

func (c *StoreConfig) registerFlags(fs *flag.FlagSet) {
	mib := func(p *int64, name, usage string) {
		fs.Func(name, fmt.Sprintf("%s, MiB (default %d)", usage, *p>>20), func(v string) error {
			var n int64
			if _, err := fmt.Sscan(v, &n); err != nil || n < 0 {
				return fmt.Errorf("want a whole number of MiB, got %q", v)
			}
			*p = n << 20
			return nil
		})
	}
	mib(&c.MemTableSize, "state-memtable-mib", "size of each memtable of the metadata state store")
	fs.IntVar(&c.NumMemtables, "state-memtables", c.NumMemtables, "most memtables of the metadata state store held at once (active and waiting to be flushed)")
	mib(&c.BlockCacheSize, "state-block-cache-mib", "block cache of the metadata state store")
	mib(&c.IndexCacheSize, "state-index-cache-mib", "index and Bloom filter cache of the metadata state store (0: keep every table's index in memory)")
}

func (c StoreConfig) validate() error {
	var errs []error
	if c.MemTableSize < minStateMemTable || c.MemTableSize > 1<<30 {
		errs = append(errs, fmt.Errorf("--state-memtable-mib must be in %d..1024", minStateMemTable>>20))
	}
	if c.NumMemtables < 2 || c.NumMemtables > 16 {
		// One memtable would stall every write while it is flushed.
		errs = append(errs, errors.New("--state-memtables must be in 2..16"))
	}
	if c.BlockCacheSize < 0 || c.IndexCacheSize < 0 {
		errs = append(errs, errors.New("--state-block-cache-mib and --state-index-cache-mib must not be negative"))
	}
	return errors.Join(errs...)
}

// apply sets the sizes on Badger's options. A zero StoreConfig (a State
// opened without one, as tests do) leaves Badger's defaults.
func (c StoreConfig) apply(o *badger.Options) {
	if c == (StoreConfig{}) {
		return
	}
	o.MemTableSize = c.MemTableSize
	o.NumMemtables = c.NumMemtables
	o.BlockCacheSize = c.BlockCacheSize
	o.IndexCacheSize = c.IndexCacheSize
}
