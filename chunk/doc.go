// Package chunk is the on-disk and on-wire form of erasure-coded segments:
// schemes and block sizes, the layout of a segment over its chunks, the
// chunk file format, streaming encode, range reads that reconstruct around
// missing or corrupt chunks, and rebuilding lost chunks. It is a pure
// library: no network, no disks, nothing else of Cairn's.
//
// # Segments, stripes, blocks, chunks
//
// A segment of S bytes is cut into stripes of K*BlockSize data bytes (1 MiB
// with DefaultParams). Each stripe is split into K data blocks and
// Reed-Solomon encoded (github.com/klauspost/reedsolomon) into M parity
// blocks of the same length. Shard i's blocks of all stripes, each followed
// by its checksum, after a header, make chunk i: the file a blob node
// stores. Any K of the K+M chunks give back the segment.
//
// The last stripe is short: with R data bytes left, its blocks are
// L = ceil(R/K) bytes, data shard j holding bytes [j*L, (j+1)*L) of those R
// (zero-padded), so a 10-byte segment costs K+M blocks of 3 bytes, not of
// BlockSize. A 0-byte segment has no stripes: its chunks are bare headers.
// The segment's size is not in the chunks (it lives in the segment's
// metadata): Layout is a pure function of (Params, size). A blob node,
// which knows only the file, finds the block size in the header and the
// rest from the file's length (FramingFromChunkSize).
//
// # Chunk file format, version 1
//
// All integers are little-endian. Header, HeaderSize = 36 bytes:
//
//	offset  size  field
//	0       4     magic "CRNK"
//	4       2     format version (1)
//	6       1     K, data shards (1..16)
//	7       1     M, parity shards (0..8)
//	8       1     shard index of this chunk (0..K+M-1; < K is data)
//	9       3     reserved, zero
//	12      4     block size B (1..16 MiB)
//	16      16    segment id
//	32      4     CRC32C of bytes 0..31
//
// Bytes 0..5 and 32..35 keep their meaning in every version, so that a
// damaged header is told from one of a newer version (ErrVersion); a newer
// version may give the reserved bytes a meaning or add fields after them.
//
// Then, for each stripe s = 0..N-1 with N = ceil(S / (K*B)):
//
//	offset                 size     field
//	36 + s*(B+4)           B or L   this shard's block of stripe s
//	36 + s*(B+4) + len     4        CRC32C of that block
//
// where every block is B bytes but the last stripe's, which is
// L = ceil((S - (N-1)*K*B) / K) bytes. The chunk is 36 + (N-1)*(B+4) + L + 4
// bytes long (36 when N = 0). Stripes [a, b) of a chunk are the contiguous
// bytes [StripeOffset(a), StripeOffset(b)), which is what a ShardSource
// serves.
//
// # Checksums
//
// Every block carries CRC32C (see Checksum for why not HighwayHash). It is
// checked on every read (Reader, Rebuild, Verify); a block that fails is
// ErrCorrupt, and a Reader reads around it and reports the shard.
//
// # Reading and writing
//
// A Codec (one per Params, safe for concurrent use) does the work:
// Codec.Encode streams a segment out to K+M writers, carrying on past
// failed ones; Codec.NewReader reads any byte range from any K healthy
// chunks through a ShardSource; Codec.Rebuild writes whole lost chunks.
// Each holds a stripe or two in memory, whatever the segment's size.
package chunk
