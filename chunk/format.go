package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Sizes of the fixed parts of a chunk file; see the package doc for the
// byte layout.
const (
	HeaderSize   = 36
	ChecksumSize = 4
	// FormatVersion is the chunk format this package writes and reads.
	FormatVersion = 1
)

// magic opens every chunk file.
var magic = [4]byte{'C', 'R', 'N', 'K'}

var (
	// ErrCorrupt is a chunk (or a stream of its blocks) that fails a check:
	// a bad header, a block whose checksum does not match, or a length no
	// chunk can have.
	ErrCorrupt = errors.New("corrupt chunk")
	// ErrVersion is a chunk header of a format version this code does not
	// know (written by a newer Cairn).
	ErrVersion = errors.New("unsupported chunk format version")
)

// castagnoli is the CRC32C table. hash/crc32 uses the SSE4.2 CRC32
// instruction (three streams interleaved) for it on amd64 and the CRC
// instructions on arm64.
//
// Why CRC32C and not HighwayHash for block checksums: measured on this
// project's machine (Zen 5, one core, 256 KiB blocks), hash/crc32 Castagnoli
// runs at ~27 GB/s and github.com/minio/highwayhash Sum64 at ~13 GB/s
// (MEASURED.md: ~30 vs ~9.5 GB/s); BenchmarkChecksum repeats the CRC32C half.
// The checksum only has to catch disk rot, torn or misdirected writes and
// network corruption of at most one block, not an adversary (the blob node
// is trusted, and S3 checksums of the whole object are checked separately),
// so a 32-bit CRC, which detects every burst of up to 32 bits and, in a
// 256 KiB (2 Mbit) block, every error of up to 3 bits (Hamming distance 4,
// Koopman), is enough; it is twice as fast, needs no key to manage and no
// dependency, and costs 4 bytes per block instead of 8. hash/crc32's IEEE
// polynomial is faster still here (~48 GB/s, a VPCLMULQDQ path), but
// guarantees only distance 3 at this length, and at ~27 GB/s CRC32C is
// already far from the bottleneck (encode runs at ~5.5 GB/s end to end, MD5
// at ~0.9).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the checksum stored after each block: CRC32C of the block.
func Checksum(block []byte) uint32 { return crc32.Checksum(block, castagnoli) }

// Header is the fixed header at the start of every chunk file.
type Header struct {
	Params  Params
	Segment SegmentID
	Shard   int
}

// ID is the id of the chunk the header opens.
func (h Header) ID() ID { return ID{Segment: h.Segment, Shard: h.Shard} }

// Validate checks the header's fields.
func (h Header) Validate() error {
	if err := h.Params.Validate(); err != nil {
		return err
	}
	if h.Shard < 0 || h.Shard >= h.Params.Scheme.Shards() {
		return fmt.Errorf("shard %d of a %s scheme: %w", h.Shard, h.Params.Scheme, ErrBadParams)
	}
	return nil
}

// AppendBinary appends the HeaderSize-byte encoding of the header to b. The
// header must be valid.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	if err := h.Validate(); err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, FormatVersion)
	b = append(b, byte(h.Params.Scheme.K), byte(h.Params.Scheme.M), byte(h.Shard), 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Params.BlockSize))
	b = append(b, h.Segment[:]...)
	b = binary.LittleEndian.AppendUint32(b, Checksum(b[start:]))
	return b, nil
}

// ParseHeader decodes the header at the start of b (which may hold more of
// the chunk). A header that is short, damaged or out of range is ErrCorrupt;
// one of a newer format version is ErrVersion.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("chunk header: %d bytes, want %d: %w", len(b), HeaderSize, ErrCorrupt)
	}
	b = b[:HeaderSize]
	if !bytes.Equal(b[0:4], magic[:]) {
		return h, fmt.Errorf("chunk header: bad magic %q: %w", b[0:4], ErrCorrupt)
	}
	// The checksum comes before the version: every format version keeps
	// it at this place over these bytes, so a flipped version bit is
	// corruption, not a chunk from the future.
	if got, want := Checksum(b[:HeaderSize-ChecksumSize]), binary.LittleEndian.Uint32(b[HeaderSize-ChecksumSize:]); got != want {
		return h, fmt.Errorf("chunk header: checksum %08x, stored %08x: %w", got, want, ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint16(b[4:6]); v != FormatVersion {
		if v > FormatVersion {
			return h, fmt.Errorf("chunk header: version %d, this build reads %d: %w", v, FormatVersion, ErrVersion)
		}
		return h, fmt.Errorf("chunk header: version %d: %w", v, ErrCorrupt)
	}
	if b[9] != 0 || b[10] != 0 || b[11] != 0 {
		return h, fmt.Errorf("chunk header: reserved bytes set: %w", ErrCorrupt)
	}
	h.Params = Params{
		Scheme:    Scheme{K: int(b[6]), M: int(b[7])},
		BlockSize: int(binary.LittleEndian.Uint32(b[12:16])),
	}
	h.Shard = int(b[8])
	copy(h.Segment[:], b[16:32])
	if err := h.Validate(); err != nil {
		return Header{}, fmt.Errorf("chunk header: %w: %w", err, ErrCorrupt)
	}
	return h, nil
}

// checkBlock verifies one framed block: block bytes then their checksum.
func checkBlock(frame []byte, stripe int) error {
	n := len(frame) - ChecksumSize
	if got, want := Checksum(frame[:n]), binary.LittleEndian.Uint32(frame[n:]); got != want {
		return fmt.Errorf("stripe %d: block checksum %08x, stored %08x: %w", stripe, got, want, ErrCorrupt)
	}
	return nil
}

// Verify reads a whole chunk file from r and checks its header, the
// checksum of every block and that its length is one a chunk can have. It
// returns the header and the framing it found. It needs no knowledge of the
// segment, so a blob node can run it on an upload or from its scrubber; to
// also match the chunk to an id, compare Header.ID.
func Verify(r io.Reader) (Header, Framing, error) {
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Header{}, Framing{}, fmt.Errorf("chunk header: truncated: %w", ErrCorrupt)
		}
		return Header{}, Framing{}, fmt.Errorf("read chunk header: %w", err)
	}
	h, err := ParseHeader(hb[:])
	if err != nil {
		return Header{}, Framing{}, err
	}
	f, err := VerifyFramed(r, h.Params.BlockSize)
	return h, f, err
}

// VerifyFramed reads framed blocks (a chunk without its header, as
// ShardSource streams carry them) to EOF and checks each block's checksum.
// Every block but the last must be blockSize long.
func VerifyFramed(r io.Reader, blockSize int) (Framing, error) {
	if blockSize < 1 || blockSize > MaxBlockSize {
		return Framing{}, fmt.Errorf("block size %d: %w", blockSize, ErrBadParams)
	}
	f := Framing{BlockSize: blockSize}
	buf := make([]byte, blockSize+ChecksumSize)
	for {
		n, err := io.ReadFull(r, buf)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return f, nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			if n <= ChecksumSize {
				return f, fmt.Errorf("stripe %d: %d bytes, too short for a block: %w", f.NumStripes, n, ErrCorrupt)
			}
		default:
			return f, fmt.Errorf("read stripe %d: %w", f.NumStripes, err)
		}
		if err := checkBlock(buf[:n], f.NumStripes); err != nil {
			return f, err
		}
		f.NumStripes++
		f.LastBlockLen = n - ChecksumSize
		if n < len(buf) {
			// A short block is the last one: anything after it is a
			// length no chunk can have.
			var one [1]byte
			if m, _ := io.ReadFull(r, one[:]); m > 0 {
				return f, fmt.Errorf("data after the short last block of stripe %d: %w", f.NumStripes-1, ErrCorrupt)
			}
			return f, nil
		}
	}
}
