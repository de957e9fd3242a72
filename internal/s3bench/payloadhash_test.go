package s3bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBodyWriteToMatchesRead(t *testing.T) {
	p := NewPattern(5, 1)
	for _, size := range []int64{0, 1, 4096, int64(p.Len()) - 1, 3*int64(p.Len()) + 17} {
		for _, key := range []string{"a", "b", "c/d"} {
			want := readAll(t, p.Body(key, size))
			var got bytes.Buffer
			b := p.Body(key, size)
			// Start part-way, as after a partial Read.
			head := make([]byte, min(size, 100))
			if _, err := io.ReadFull(b, head); err != nil {
				t.Fatal(err)
			}
			got.Write(head)
			if n, err := b.WriteTo(&got); err != nil || n != size-int64(len(head)) {
				t.Fatalf("WriteTo = %d, %v; want %d", n, err, size-int64(len(head)))
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("size %d key %q: WriteTo differs from Read", size, key)
			}
			if _, err := b.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if again := readAll(t, b); !bytes.Equal(again, want) {
				t.Fatalf("size %d key %q: body differs after Seek(0)", size, key)
			}
		}
	}
}

func TestPayloadHashIsTheBodysSHA256(t *testing.T) {
	p := NewPattern(9, 3<<20)
	size := int64(3<<20 + 5)
	p.HashBodies(size)
	seen := map[string]bool{}
	for i := range 40 {
		key := "k/" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		sum := sha256.Sum256(readAll(t, p.Body(key, size)))
		if got, want := p.PayloadHash(key, size), hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("PayloadHash(%q) = %s, want %s", key, got, want)
		}
		seen[p.PayloadHash(key, size)] = true
	}
	if len(seen) < 2 || len(seen) > BodyVariants {
		t.Fatalf("%d distinct bodies among 40 keys, want 2..%d", len(seen), BodyVariants)
	}
}

// TestPrecomputedHashSendsTheSameRequest compares what reaches a server
// from PUTs with the payload hash precomputed and with the SDK hashing the
// body: the same headers signed, the same body, and a payload hash that is
// the SHA-256 of the body received.
func TestPrecomputedHashSendsTheSameRequest(t *testing.T) {
	type seen struct {
		signed, contentSHA, bodySHA string
		length                      int64
	}
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Count(r.URL.Path, "/") > 1 {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				t.Errorf("read body: %v", err)
			}
			auth := r.Header.Get("Authorization")
			_, signed, _ := strings.Cut(auth, "SignedHeaders=")
			signed, _, _ = strings.Cut(signed, ",")
			mu.Lock()
			got = append(got, seen{signed: signed, contentSHA: r.Header.Get("X-Amz-Content-Sha256"), bodySHA: hex.EncodeToString(h.Sum(nil)), length: n})
			mu.Unlock()
			w.Header().Set("ETag", `"x"`)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	const size = 5<<20 + 3
	run := func(sdk bool) []seen {
		mu.Lock()
		got = nil
		mu.Unlock()
		res, err := Run(context.Background(), Config{
			ClientConfig: ClientConfig{Endpoint: srv.URL, AccessKey: "a", SecretKey: "b"},
			Bucket:       "b", Workload: WorkloadPut, Size: size, Concurrency: 2,
			Duration: time.Minute, Count: 6, Keep: true, Seed: 3, SDKPayloadHash: sdk,
		})
		if err != nil {
			t.Fatal(err)
		}
		if o := res.Op(OpPut); o == nil || o.Count != 6 || o.Errors != 0 {
			t.Fatalf("puts: %+v", res.Ops)
		}
		if want := map[bool]string{true: "sdk", false: "precomputed"}[sdk]; res.PayloadHash != want {
			t.Errorf("payload_hash %q, want %q", res.PayloadHash, want)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
	pre, sdk := run(false), run(true)
	if len(pre) != 6 || len(sdk) != 6 {
		t.Fatalf("server saw %d and %d PUTs, want 6 each", len(pre), len(sdk))
	}
	for _, s := range append(pre, sdk...) {
		if s.length != size || s.contentSHA != s.bodySHA {
			t.Fatalf("PUT of %d bytes signed payload %s, body hashes to %s", s.length, s.contentSHA, s.bodySHA)
		}
		if s.signed != sdk[0].signed {
			t.Fatalf("signed headers %q, with the SDK hashing %q", s.signed, sdk[0].signed)
		}
	}
}

// TestHTTPSPayloadLeftToSDK: over TLS the SDK signs no payload hash, and
// the generator hands it none (it would be signed instead).
func TestHTTPSPayloadLeftToSDK(t *testing.T) {
	var mu sync.Mutex
	var contentSHA []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Count(r.URL.Path, "/") > 1 {
			_, _ = io.Copy(io.Discard, r.Body)
			mu.Lock()
			contentSHA = append(contentSHA, r.Header.Get("X-Amz-Content-Sha256"))
			mu.Unlock()
			w.Header().Set("ETag", `"x"`)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		ClientConfig: ClientConfig{Endpoint: srv.URL, AccessKey: "a", SecretKey: "b", Insecure: true, NoChecksum: true},
		Bucket:       "b", Workload: WorkloadPut, Size: 1 << 20, Concurrency: 2,
		Duration: time.Minute, Count: 4, Keep: true, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Op(OpPut); o == nil || o.Count != 4 || o.Errors != 0 {
		t.Fatalf("puts: %+v", res.Ops)
	}
	if res.PayloadHash != "sdk" {
		t.Errorf("payload_hash %q over HTTPS, want sdk", res.PayloadHash)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(contentSHA) != 4 {
		t.Fatalf("server saw %d PUTs, want 4", len(contentSHA))
	}
	for _, h := range contentSHA {
		if h != "UNSIGNED-PAYLOAD" {
			t.Fatalf("x-amz-content-sha256 %q over HTTPS, want UNSIGNED-PAYLOAD", h)
		}
	}
}
