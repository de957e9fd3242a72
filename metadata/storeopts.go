package metadata

import (
	"errors"
	"flag"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
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

// What the sizes above do not cover is the memory Badger's table builders
// take while a memtable is flushed or tables are compacted: a builder keeps
// every block of the table it writes until the table is done (an L0 table
// is a whole memtable), in buffers that double as they fill, and Badger
// keeps up to 8 finished builders' buffers for reuse (its AllocatorPool
// gives one back only after 2 s without a build). With Badger's 4 KiB
// blocks and Snappy, a 4 KiB inline object took a 4 KiB block buffer, an
// 8 KiB one when it did not fit, and a compressed copy: ~17 KiB of builder
// memory per object; builders' buffers were 240-270 MB of the heap in a
// 60 s PUT run and the heap passed 1 GiB (docs/perf/memory-3.md). Three
// settings, not flags, cut that (a write burst's live heap 2.35 -> 0.64
// GiB in Badger alone):
//
//   - stateBlockSize: 16 KiB blocks hold three 4 KiB objects without
//     regrowing a block's buffer (and dozens of small records, as 4 KiB
//     blocks did); the table index has fewer entries to cache.
//   - no block compression: the compressed copy of every block doubled
//     what a builder holds, and inline object data (most of what the
//     tables carry under small PUTs) is often random or compressed
//     already. Each table records its own compression in Badger's
//     manifest, so a store written with Snappy stays readable and its
//     tables are rewritten uncompressed as compactions reach them.
//   - stateCompactors: two compactors (Badger's default is four) bound
//     how many compaction builders are in flight, and so pooled; the
//     first one still gives L0 priority.
const (
	stateBlockSize   = 16 << 10
	stateCompactors  = 2
	stateCompression = options.None
)

// MemoryBudget is the Go memory metad's default soft limit allows for
// these sizes (cmd/metad --memory-limit auto): the memtables and caches,
// as much again for the table builders of a flush and the buffers Badger
// pools for the next one, and 64 MiB for everything else (the Raft log
// cache of at most 64 entries of 256 KiB, gRPC and Raft connection
// buffers, the proposer's batches). 512 MiB for the defaults.
func (c StoreConfig) MemoryBudget() int64 {
	badgerSizes := int64(c.NumMemtables)*c.MemTableSize + c.BlockCacheSize + c.IndexCacheSize
	return 2*badgerSizes + 64<<20
}

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

// apply sets the sizes and the builder settings above on Badger's
// options. A zero StoreConfig (a State opened without one, as tests do)
// leaves Badger's defaults.
func (c StoreConfig) apply(o *badger.Options) {
	if c == (StoreConfig{}) {
		return
	}
	o.MemTableSize = c.MemTableSize
	o.NumMemtables = c.NumMemtables
	o.BlockCacheSize = c.BlockCacheSize
	o.IndexCacheSize = c.IndexCacheSize
	o.BlockSize = stateBlockSize
	o.Compression = stateCompression
	o.NumCompactors = stateCompactors
}
