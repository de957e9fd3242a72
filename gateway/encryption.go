package gateway

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sse"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
)

// Server-side encryption. An object written with x-amz-server-side-
// encryption: AES256 (SSE-S3, or into a bucket whose default encryption
// is AES256) or with a client's key (SSE-C) gets its own random data key;
// the gateway encrypts the body with it on the way to the object layer
// and records the data key sealed, under the gateway's master key or the
// client's key, with the object (pb.Encryption). Blob nodes, repair,
// scrub and rebalancing see only ciphertext and need nothing of it. The
// object's size and checksums stay those of the plaintext, and so does
// its ETag but for SSE-C objects (etag), so listings, quotas and
// lifecycle rules are unchanged.

const (
	sseHeader         = "x-amz-server-side-encryption"
	sseAES256         = "AES256"
	sseCustomerAlg    = "server-side-encryption-customer-algorithm"
	sseCustomerKey    = "server-side-encryption-customer-key"
	sseCustomerKeyMD5 = "server-side-encryption-customer-key-MD5"
	copySourcePrefix  = "x-amz-copy-source-"
	requestPrefix     = "x-amz-"
	bucketKeyEnabled  = "x-amz-server-side-encryption-bucket-key-enabled"
	sseKMSKeyID       = "x-amz-server-side-encryption-aws-kms-key-id"
	sseKMSContext     = "x-amz-server-side-encryption-context"
)

// sseParams is the encryption a request asks for, or the key it gives to
// read an SSE-C object.
type sseParams struct {
	mode      pb.EncryptionMode // UNSPECIFIED: none asked for
	clientKey []byte            // SSE-C
	keyMD5    string            // SSE-C: base64, as sent and echoed
}

// parseClientKey reads the SSE-C headers under prefix ("x-amz-", or
// "x-amz-copy-source-" for a copy's source). None present is no key.
func (d *routerDeps) parseClientKey(r *http.Request, prefix string) (sseParams, error) {
	h := r.Header
	alg, key, sum := h.Get(prefix+sseCustomerAlg), h.Get(prefix+sseCustomerKey), h.Get(prefix+sseCustomerKeyMD5)
	if alg == "" && key == "" && sum == "" {
		return sseParams{}, nil
	}
	switch {
	case alg == "":
		return sseParams{}, s3err.New(s3err.InvalidArgument, "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.")
	case alg != sseAES256:
		return sseParams{}, s3err.New(s3err.InvalidArgument, "The requested encryption algorithm %q is not valid; the valid value is AES256.", alg)
	case key == "":
		return sseParams{}, s3err.New(s3err.InvalidArgument, "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.")
	case sum == "":
		return sseParams{}, s3err.New(s3err.InvalidArgument, "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.")
	}
	if !stateOf(r).client.secure && !d.sseCOverHTTP {
		return sseParams{}, s3err.New(s3err.InvalidRequest, "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.")
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) != sse.KeySize {
		return sseParams{}, s3err.New(s3err.InvalidArgument, "The secret key was invalid for the specified algorithm.")
	}
	got := md5.Sum(raw)
	want, err := base64.StdEncoding.DecodeString(sum)
	if err != nil || subtle.ConstantTimeCompare(got[:], want) != 1 {
		return sseParams{}, s3err.New(s3err.InvalidArgument, "The calculated MD5 hash of the key did not match the hash that was provided.")
	}
	return sseParams{mode: pb.EncryptionMode_ENCRYPTION_MODE_SSE_C, clientKey: raw, keyMD5: sum}, nil
}

// parseSSEWrite reads the encryption an object write (PutObject,
// CopyObject's destination, CreateMultipartUpload, a POST form) asks for:
// SSE-S3, SSE-C, or nothing. KMS is refused: there is no KMS here.
func (d *routerDeps) parseSSEWrite(r *http.Request) (sseParams, error) {
	h := r.Header
	if h.Get(sseKMSKeyID) != "" || h.Get(sseKMSContext) != "" {
		return sseParams{}, s3err.New(s3err.NotImplemented, "Server-side encryption with KMS keys is not implemented; use AES256.")
	}
	if v := h.Get(bucketKeyEnabled); v != "" && !strings.EqualFold(v, "false") {
		return sseParams{}, s3err.New(s3err.NotImplemented, "S3 Bucket Keys (for KMS encryption) are not implemented.")
	}
	c, err := d.parseClientKey(r, requestPrefix)
	if err != nil {
		return sseParams{}, err
	}
	switch v := h.Get(sseHeader); {
	case v == "":
		return c, nil
	case c.mode != 0:
		return sseParams{}, s3err.New(s3err.InvalidArgument, "Server Side Encryption with a customer provided key and with %s cannot both be requested.", v)
	case v == sseAES256:
		return sseParams{mode: pb.EncryptionMode_ENCRYPTION_MODE_SSE_S3}, nil
	case strings.HasPrefix(v, "aws:kms"):
		return sseParams{}, s3err.New(s3err.NotImplemented, "Server-side encryption with KMS keys (%s) is not implemented; use AES256.", v)
	default:
		return sseParams{}, s3err.New(s3err.InvalidArgument, "The encryption method specified is not supported: %q.", v)
	}
}

// writeEncryption is the encryption of an object about to be written to
// bucket: what the request asks for, else the bucket's default.
func (d *routerDeps) writeEncryption(r *http.Request, bucket string) (sseParams, error) {
	p, err := d.parseSSEWrite(r)
	if err != nil {
		return p, err
	}
	return d.orBucketDefault(r.Context(), p, bucket)
}

// orBucketDefault is p, or the bucket's default encryption when p asks
// for none.
func (d *routerDeps) orBucketDefault(ctx context.Context, p sseParams, bucket string) (sseParams, error) {
	if p.mode != 0 {
		return p, nil
	}
	def, err := d.bucketDefaultEncryption(ctx, bucket)
	if err != nil {
		return sseParams{}, err
	}
	if def == sseAES256 {
		p.mode = pb.EncryptionMode_ENCRYPTION_MODE_SSE_S3
	}
	return p, nil
}

// bucketDefaultEncryption is the bucket's default encryption ("" or
// AES256), as read within bucketSettingsTTL. A bucket that does not exist
// has none (the write then fails on its own, NoSuchBucket); when the
// bucket cannot be read the write fails: it must not be stored in the
// clear because metad was briefly out of reach.
func (d *routerDeps) bucketDefaultEncryption(ctx context.Context, bucket string) (string, error) {
	s, err := d.bucketSettings(ctx, bucket)
	switch {
	case isMeta(err, metaerr.ErrNoSuchBucket):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("read bucket %s's default encryption: %w", bucket, err)
	}
	return s.encryption, nil
}

// newEncryption makes the data key of an object (or upload) written with
// p and the record that keeps it sealed; nil, nil for no encryption.
func (d *routerDeps) newEncryption(p sseParams) (*pb.Encryption, *sse.DataKey, error) {
	if p.mode == 0 {
		return nil, nil, nil
	}
	if p.mode == pb.EncryptionMode_ENCRYPTION_MODE_SSE_S3 && d.masterKeys == nil {
		return nil, nil, s3err.New(s3err.NotImplemented, "Server-side encryption with AES256 needs a master key, and this gateway has none (gatewayd --sse-master-key-file).")
	}
	dk, err := sse.NewDataKey()
	if err != nil {
		return nil, nil, err
	}
	enc := &pb.Encryption{Mode: p.mode}
	if p.mode == pb.EncryptionMode_ENCRYPTION_MODE_SSE_S3 {
		enc.MasterKeyId, enc.SealedKey, err = d.masterKeys.Seal(dk)
	} else {
		enc.SealedKey, err = sse.SealForClient(p.clientKey, dk)
		enc.CustomerKeyMd5 = p.keyMD5
	}
	if err != nil {
		return nil, nil, err
	}
	return enc, &dk, nil
}

// dataKey opens the data key of an object or upload encrypted as enc,
// with the client key p a request gave (SSE-C); nil for an object stored
// unencrypted. A request must give a key exactly when the object was
// written with one, and that key.
func (d *routerDeps) dataKey(enc *pb.Encryption, p sseParams) (*sse.DataKey, error) {
	isC := enc.GetMode() == pb.EncryptionMode_ENCRYPTION_MODE_SSE_C
	gaveC := p.mode == pb.EncryptionMode_ENCRYPTION_MODE_SSE_C
	switch {
	case gaveC && !isC:
		return nil, s3err.New(s3err.InvalidRequest, "The encryption parameters are not applicable to this object.")
	case isC && !gaveC:
		return nil, s3err.New(s3err.InvalidRequest, "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.")
	case enc == nil:
		return nil, nil
	}
	var dk sse.DataKey
	var err error
	switch enc.GetMode() {
	case pb.EncryptionMode_ENCRYPTION_MODE_SSE_C:
		if p.keyMD5 != enc.GetCustomerKeyMd5() {
			return nil, s3err.New(s3err.AccessDenied, "The object was stored with another customer key.")
		}
		if dk, err = sse.OpenForClient(p.clientKey, enc.GetSealedKey()); err != nil {
			return nil, s3err.New(s3err.AccessDenied, "The customer key given does not open the object's key.")
		}
	case pb.EncryptionMode_ENCRYPTION_MODE_SSE_S3:
		if d.masterKeys == nil {
			return nil, s3err.New(s3err.InternalError, "The object is encrypted under master key %q and this gateway has no master keys (gatewayd --sse-master-key-file).", enc.GetMasterKeyId())
		}
		if dk, err = d.masterKeys.Open(enc.GetMasterKeyId(), enc.GetSealedKey()); err != nil {
			return nil, s3err.New(s3err.InternalError, "Cannot open the object's data key: %v", err)
		}
	default:
		return nil, s3err.New(s3err.InternalError, "The object has an encryption of unknown mode %d; is this gateway older than the one that wrote it?", enc.GetMode())
	}
	return &dk, nil
}

// setSSEHeaders tells the client how an object is encrypted, as S3 does
// on every answer about it.
func setSSEHeaders(h http.Header, enc *pb.Encryption) {
	switch enc.GetMode() {
	case pb.EncryptionMode_ENCRYPTION_MODE_SSE_S3:
		h.Set(sseHeader, sseAES256)
	case pb.EncryptionMode_ENCRYPTION_MODE_SSE_C:
		h.Set(requestPrefix+sseCustomerAlg, sseAES256)
		h.Set(requestPrefix+sseCustomerKeyMD5, enc.GetCustomerKeyMd5())
	}
}

// encryptingBody is a plaintext body on its way to the object layer as
// ciphertext, with the MD5 of the plaintext (the ETag of an SSE-S3
// object, and what Content-MD5 is checked against). A nil one is a body
// stored as it is: its methods then leave everything as the object layer
// made it.
type encryptingBody struct {
	r      io.Reader // ciphertext
	size   int64     // ciphertext bytes; -1 when the plaintext's is unknown
	md5    hash.Hash // of the plaintext read so far
	md5Rel func()    // releases md5 (object.NewETagHash)
	plain  int64     // plaintext bytes read so far
	enc    *pb.Encryption
	dk     *sse.DataKey
}

// plainCounter hashes and counts the plaintext as it is encrypted.
type plainCounter struct{ e *encryptingBody }

func (c plainCounter) Write(p []byte) (int, error) {
	c.e.plain += int64(len(p))
	return c.e.md5.Write(p)
}

// encryptWith wraps a plaintext body of size bytes (-1: unknown) as
// stream number stream of an object encrypted as enc with data key dk;
// nil when enc is nil (nothing to encrypt).
func encryptWith(enc *pb.Encryption, dk *sse.DataKey, plain io.Reader, size int64, stream uint32) (*encryptingBody, error) {
	if enc == nil {
		return nil, nil
	}
	if size > sse.MaxPlainSize {
		return nil, s3err.New(s3err.EntityTooLarge, "Your proposed upload exceeds the maximum allowed size.")
	}
	e := &encryptingBody{size: -1, enc: enc, dk: dk}
	// The object layer's MD5, which shares SIMD lanes among concurrent
	// large bodies: the encrypted ones too, now that it does not hash
	// their ciphertext.
	e.md5, e.md5Rel = object.NewETagHash(size)
	if size >= 0 {
		// The encryption reads to the end: bytes past the declared
		// size must stay in the body for its check to find.
		plain = io.LimitReader(plain, size)
	}
	r, err := sse.Encrypt(io.TeeReader(plain, plainCounter{e}), *dk, stream)
	if err != nil {
		return nil, err
	}
	e.r = r
	if size >= 0 {
		e.size = sse.EncryptedSize(size)
	}
	return e, nil
}

// close releases the body's hash; the handler defers it.
func (e *encryptingBody) close() {
	if e != nil {
		e.md5Rel()
	}
}

// stored is what the object layer stores of a body of size bytes: the
// ciphertext, or the body itself.
func (e *encryptingBody) stored(plain io.Reader, size int64) (io.Reader, int64) {
	if e == nil {
		return plain, size
	}
	return e.r, e.size
}

// putOptions are opts for storing the ciphertext: the object layer need
// not hash it, and an object as small as the inline limit stays inline
// with its encryption's 32 bytes.
func (e *encryptingBody) putOptions(opts object.PutOptions) object.PutOptions {
	if e != nil {
		opts.NoETag, opts.InlineSlack = true, sse.PackageOverhead
	}
	return opts
}

// partOptions is putOptions for a part (never inline).
func (e *encryptingBody) partOptions(opts object.PartOptions) object.PartOptions {
	opts.NoETag = e != nil
	return opts
}

// sealObject makes o, as the object layer stored it, describe the
// plaintext: its size, ETag and encryption. It returns the plaintext's
// hex MD5 (for Content-MD5); for a body stored as it is, o.Etag.
func (e *encryptingBody) sealObject(o *pb.Object) (string, error) {
	if e == nil {
		return o.GetEtag(), nil
	}
	plainMD5, etag, err := e.etag()
	o.Etag, o.Size, o.Encryption = etag, e.plain, e.enc
	return plainMD5, err
}

// sealPart is sealObject for a part (the upload keeps the encryption).
func (e *encryptingBody) sealPart(p *pb.Part) (string, error) {
	if e == nil {
		return p.GetEtag(), nil
	}
	plainMD5, etag, err := e.etag()
	p.Etag, p.Size = etag, e.plain
	return plainMD5, err
}

// etag is the hex MD5 of what was encrypted and the ETag that goes with
// it: that MD5 for SSE-S3, as on S3; for SSE-C an opaque one
// (sse.OpaqueETag), since an ETag anyone may list must not give away the
// MD5 of data only the key's holder may read.
func (e *encryptingBody) etag() (plainMD5, etag string, err error) {
	sum := e.md5.Sum(nil)
	plainMD5 = hex.EncodeToString(sum)
	if e.enc.GetMode() == pb.EncryptionMode_ENCRYPTION_MODE_SSE_C {
		etag, err = sse.OpaqueETag(*e.dk, sum)
		return plainMD5, etag, err
	}
	return plainMD5, plainMD5, nil
}

// streams are an encrypted object's streams: one for an object written in
// one PUT, one per part for a multipart object.
func streams(o *pb.Object) []sse.Stream {
	parts := o.GetParts()
	if len(parts) == 0 {
		return []sse.Stream{{Number: 0, PlainSize: o.GetSize()}}
	}
	s := make([]sse.Stream, len(parts))
	for i, p := range parts {
		s[i] = sse.Stream{Number: uint32(p.GetNumber()), PlainSize: p.GetSize()}
	}
	return s
}

// openObject streams plaintext bytes [off, off+n) of o, decrypting with
// dk when o is encrypted (dataKey opened it).
func (d *routerDeps) openObject(ctx context.Context, o *pb.Object, dk *sse.DataKey, off, n int64) (io.ReadCloser, error) {
	if o.GetEncryption() == nil {
		return d.objects.Open(ctx, o, off, n)
	}
	if dk == nil {
		return nil, s3err.New(s3err.InternalError, "no data key for an encrypted object")
	}
	return &decryptingReader{ctx: ctx, d: d, o: o, dk: dk, pieces: sse.Pieces(streams(o), off, n)}, nil
}

// decryptingReader reads an encrypted object's range piece by piece (a
// piece per stream it touches), each fetched as the ciphertext span that
// covers it and decrypted as it streams.
type decryptingReader struct {
	ctx    context.Context
	d      *routerDeps
	o      *pb.Object
	dk     *sse.DataKey
	pieces []sse.Piece
	cur    sse.Piece     // the piece Read is in
	read   int64         // bytes of cur read
	cipher io.ReadCloser // cur's ciphertext
	plain  io.Reader     // cur's plaintext
}

func (r *decryptingReader) Read(p []byte) (int, error) {
	for {
		if r.plain == nil {
			if len(r.pieces) == 0 {
				return 0, io.EOF
			}
			pc := r.pieces[0]
			r.pieces = r.pieces[1:]
			c, err := r.d.objects.Open(r.ctx, r.o, pc.Base+pc.Span.CipherOff, pc.Span.CipherLen)
			if err != nil {
				return 0, err
			}
			r.cipher, r.cur, r.read = c, pc, 0
			if r.plain, err = pc.Span.Decrypt(c, *r.dk, pc.Stream); err != nil {
				return 0, err
			}
		}
		n, err := r.plain.Read(p)
		r.read += int64(n)
		if err == io.EOF {
			r.cipher.Close()
			r.cipher, r.plain = nil, nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// WriteTo writes the rest of the range to w: what a Read left of the
// package it was in, then each piece decrypted as the object layer writes
// its ciphertext (sse.Span.DecryptTo), keeping the object layer's
// read-ahead. io.Copy (the GET's answer, after its first Read) calls it.
func (r *decryptingReader) WriteTo(w io.Writer) (int64, error) {
	var written int64
	if r.plain != nil {
		// Finish the package Read is in through Read's decrypter; the
		// rest of that piece becomes a piece of its own.
		n, err := io.CopyN(w, r.plain, r.cur.Span.ToPackageEnd(r.read))
		written += n
		if err != nil {
			return written, err
		}
		r.read += n
		r.cipher.Close()
		if r.read < r.cur.Span.Len() {
			rest := r.cur
			rest.Span = r.cur.Span.Rest(r.read)
			r.pieces = append([]sse.Piece{rest}, r.pieces...)
		}
		r.cipher, r.plain = nil, nil
	}
	for len(r.pieces) > 0 {
		pc := r.pieces[0]
		r.pieces = r.pieces[1:]
		c, err := r.d.objects.Open(r.ctx, r.o, pc.Base+pc.Span.CipherOff, pc.Span.CipherLen)
		if err != nil {
			return written, err
		}
		n, err := pc.Span.DecryptTo(w, c, *r.dk, pc.Stream)
		c.Close()
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

func (r *decryptingReader) Close() error {
	if r.cipher != nil {
		r.cipher.Close()
		r.cipher, r.plain = nil, nil
	}
	r.pieces = nil
	return nil
}
