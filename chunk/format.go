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
// instructions on arm64; Checksum and the Verifier go through
// updateCastagnoli, which folds with VPCLMULQDQ where the CPU has it
// (crc32c_amd64.go), about twice as fast on 256 KiB blocks.
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
func Checksum(block []byte) uint32 { return updateCastagnoli(0, block) }

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

// Verifier checks a chunk as it streams past, with the same checks as
// Verify (header, every block's checksum, a length a chunk can have), but
// without reading or copying: the caller hands it the bytes it already
// holds (Write), typically straight after reading them from a socket and
// before writing them to disk, so the checksums run while the data is in
// cache and no second buffer or goroutine is needed. A Verifier never
// retains the slices it is given.
//
// Write fails with ErrCorrupt (or ErrVersion) at the first bad header or
// block it can judge; Close judges the end of the stream. Once either has
// failed, every later call returns the same error.
type Verifier struct {
	hdr    [HeaderSize]byte
	nhdr   int
	h      Header
	frame  int // bytes of a whole frame: BlockSize + ChecksumSize
	pos    int // bytes of the current frame seen so far
	crc    uint32
	tail   [ChecksumSize]byte // the last bytes of the frame, not yet known to be block bytes
	ntail  int
	f      Framing
	err    error
	closed bool
}

// NewVerifier returns a Verifier for one chunk stream.
func NewVerifier() *Verifier { return &Verifier{} }

// Header returns the chunk's header, once Write has seen all of it and it
// is valid; ok is false until then.
func (v *Verifier) Header() (h Header, ok bool) {
	return v.h, v.frame > 0
}

// Write checks p, the next bytes of the chunk. It returns len(p) or the
// verification error.
func (v *Verifier) Write(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.closed {
		return 0, fmt.Errorf("chunk verifier: write after close: %w", ErrBadParams)
	}
	n := len(p)
	if v.frame == 0 {
		c := copy(v.hdr[v.nhdr:], p)
		v.nhdr += c
		p = p[c:]
		if v.nhdr < HeaderSize {
			return n, nil
		}
		h, err := ParseHeader(v.hdr[:])
		if err != nil {
			v.err = err
			return 0, err
		}
		v.h = h
		v.frame = h.Params.BlockSize + ChecksumSize
		v.f = Framing{BlockSize: h.Params.BlockSize}
		v.crc = 0
	}
	for len(p) > 0 {
		take := min(len(p), v.frame-v.pos)
		v.feed(p[:take])
		p = p[take:]
		v.pos += take
		if v.pos == v.frame {
			// A whole frame: its last ChecksumSize bytes (in tail) are
			// the checksum of the block bytes fed to crc.
			if err := v.endFrame(v.frame - ChecksumSize); err != nil {
				v.err = err
				return 0, err
			}
		}
	}
	return n, nil
}

// feed adds b to the current frame. The last ChecksumSize bytes seen are
// held back in tail: whether they are block bytes or the checksum is known
// only when more bytes follow (or the stream ends, which makes them the
// checksum of a short last block).
func (v *Verifier) feed(b []byte) {
	if len(b) >= ChecksumSize {
		v.crc = updateCastagnoli(v.crc, v.tail[:v.ntail])
		v.crc = updateCastagnoli(v.crc, b[:len(b)-ChecksumSize])
		v.ntail = copy(v.tail[:], b[len(b)-ChecksumSize:])
		return
	}
	// Fewer than ChecksumSize new bytes: release the oldest held-back ones.
	over := v.ntail + len(b) - ChecksumSize
	if over > 0 {
		v.crc = updateCastagnoli(v.crc, v.tail[:over])
		copy(v.tail[:], v.tail[over:v.ntail])
		v.ntail -= over
	}
	v.ntail += copy(v.tail[v.ntail:], b)
}

// endFrame checks the frame just completed, whose block is blockLen bytes.
func (v *Verifier) endFrame(blockLen int) error {
	if got, want := v.crc, binary.LittleEndian.Uint32(v.tail[:]); got != want {
		return fmt.Errorf("stripe %d: block checksum %08x, stored %08x: %w", v.f.NumStripes, got, want, ErrCorrupt)
	}
	v.f.NumStripes++
	v.f.LastBlockLen = blockLen
	v.pos, v.crc, v.ntail = 0, 0, 0
	return nil
}

// Close judges the end of the stream and returns the chunk's header and
// framing, or why the stream is not a whole chunk.
func (v *Verifier) Close() (Header, Framing, error) {
	if v.err != nil {
		return Header{}, Framing{}, v.err
	}
	if v.closed {
		return v.h, v.f, nil
	}
	v.closed = true
	switch {
	case v.frame == 0:
		v.err = fmt.Errorf("chunk header: truncated: %w", ErrCorrupt)
	case v.pos == 0:
	case v.pos <= ChecksumSize:
		v.err = fmt.Errorf("stripe %d: %d bytes, too short for a block: %w", v.f.NumStripes, v.pos, ErrCorrupt)
	default:
		v.err = v.endFrame(v.pos - ChecksumSize)
	}
	if v.err != nil {
		return Header{}, Framing{}, v.err
	}
	return v.h, v.f, nil
}
