package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/gateway/awschunked"
	"github.com/cairnstore/cairn/gateway/sigv4"
	"github.com/cairnstore/cairn/internal/sha256lanes"
	"github.com/cairnstore/cairn/internal/testcluster"
)

// gatedBody holds its first Read until gate is closed, then returns body
// in pieces of random sizes.
type gatedBody struct {
	gate <-chan struct{}
	body []byte
	rng  *rand.Rand
}

func (g *gatedBody) Read(p []byte) (int, error) {
	<-g.gate
	if len(g.body) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.body[:min(len(g.body), 1+g.rng.IntN(100<<10))])
	g.body = g.body[n:]
	return n, nil
}

// Many large PUTs at once, so that their payload hashes
// (x-amz-content-sha256) go through the shared lanes (on AVX-512 machines),
// with signed aws-chunked bodies among them. Each is stored when its hashes
// are right and refused, storing nothing, when one bit of the body differs
// from what was signed.
func TestConcurrentPayloadHashes(t *testing.T) {
	// 1–2 MiB bodies, to keep the test light.
	defer gateway.SetPayloadLanesMinSize(1 << 20)()
	// The bodies wait at a gate until every PUT has opened its body,
	// which on a loaded machine has taken over the default body idle
	// timeout (RequestTimeout): no limit here.
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: f}, func(c *gateway.Config) { c.BodyIdleTimeout = -1 })
	c := e.awsClient(t)
	mkBucket(t, c, "lanes")
	const puts = 4 * gateway.PayloadLanesMinStreams // half of them with a payload hash
	kernel0, solo0 := gateway.PayloadLaneBlocks()
	before := gateway.PayloadHashStreams()
	signer := sigv4.Signer{AccessKey: testAccess, SecretKey: testSecret}

	gate := make(chan struct{})
	type result struct {
		key       string
		body      []byte
		streaming bool
		wrong     bool
		status    int
		resp      string
	}
	results := make([]result, puts)
	var wg sync.WaitGroup
	var opened sync.Once
	openGate := func() {
		opened.Do(func() { close(gate) })
		wg.Wait()
	}
	// First to run of the test's cleanups: a failure below must not leave
	// PUTs blocked on the gate while the server shuts down.
	t.Cleanup(openGate)
	for i := range puts {
		rng := rand.New(rand.NewPCG(uint64(i), 99))
		body := make([]byte, 1<<20+rng.IntN(1<<20))
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		res := &results[i]
		*res = result{key: fmt.Sprintf("k%d", i), body: body, streaming: i%4 >= 2, wrong: i%2 == 1}
		flip := rng.IntN(len(body))
		bit := byte(1) << rng.IntN(8)
		req, err := http.NewRequest(http.MethodPut, e.url+"/lanes/"+res.key, nil)
		if err != nil {
			t.Fatal(err)
		}
		var send []byte
		if !res.streaming {
			claimed := sha256.Sum256(body)
			send = body
			if res.wrong {
				send = bytes.Clone(body)
				send[flip] ^= bit
			}
			signer.Sign(req, hex.EncodeToString(claimed[:]), time.Now())
		} else {
			// Signed chunks of an odd size (the SDK's are 64 KiB).
			chunk := 8<<10 + 1 + rng.IntN(100<<10)
			req.Header.Set("Content-Encoding", "aws-chunked")
			req.Header.Set("x-amz-decoded-content-length", strconv.Itoa(len(body)))
			now := time.Now()
			var framed bytes.Buffer
			probe := signer.Chain(strings.Repeat("0", 64), now)
			if err := awschunked.Encode(&framed, body, chunk, awschunked.Signed, probe, nil); err != nil {
				t.Fatal(err)
			}
			req.ContentLength = int64(framed.Len())
			seed := signer.Sign(req, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", now)
			framed.Reset()
			signed := body
			if res.wrong {
				// Signed over a different body: only the chunk
				// signatures can tell.
				signed = bytes.Clone(body)
				signed[flip] ^= bit
			}
			if err := awschunked.Encode(&framed, signed, chunk, awschunked.Signed, signer.Chain(seed, now), nil); err != nil {
				t.Fatal(err)
			}
			send = framed.Bytes()
			if res.wrong {
				// The framing is the same length either way; send
				// the real body under the other body's signatures.
				var real bytes.Buffer
				if err := awschunked.Encode(&real, body, chunk, awschunked.Signed, signer.Chain(seed, now), nil); err != nil {
					t.Fatal(err)
				}
				send = spliceSignatures(real.Bytes(), framed.Bytes())
			}
		}
		req.Body = io.NopCloser(&gatedBody{gate: gate, body: send, rng: rng})
		req.ContentLength = int64(len(send))
		wg.Go(func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				res.resp = err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			res.status, res.resp = resp.StatusCode, string(b)
		})
	}
	// Every request with a payload hash has opened its body (and chosen
	// its hash) before any body byte is sent, so they all count each
	// other.
	hashed := int64(0)
	for _, res := range results {
		if !res.streaming {
			hashed++
		}
	}
	testcluster.WaitFor(t, time.Minute, "every PUT with a payload hash to open its body", func() error {
		if n := gateway.PayloadHashStreams() - before; n < hashed {
			return fmt.Errorf("%d of %d opened", n, hashed)
		}
		return nil
	})
	openGate()

	for _, res := range results {
		if res.wrong {
			want, code := "XAmzContentSHA256Mismatch", 400
			if res.streaming {
				want, code = "SignatureDoesNotMatch", 403
			}
			if res.status != code || !strings.Contains(res.resp, want) {
				t.Errorf("%s (streaming %v) with a wrong hash: %d %s", res.key, res.streaming, res.status, res.resp)
			}
			if _, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("lanes"), Key: aws.String(res.key)}); err == nil {
				t.Errorf("%s (streaming %v) with a wrong hash was stored", res.key, res.streaming)
			}
			continue
		}
		if res.status != 200 {
			t.Errorf("%s (streaming %v): %d %s", res.key, res.streaming, res.status, res.resp)
			continue
		}
		if got := getBytes(t, c, "lanes", res.key); !bytes.Equal(got, res.body) {
			t.Errorf("%s (streaming %v): stored %d bytes differ from the %d sent", res.key, res.streaming, len(got), len(res.body))
		}
	}
	kernel, solo := gateway.PayloadLaneBlocks()
	t.Logf("blocks hashed by the lanes' server: %d in the kernel, %d by crypto/sha256", kernel-kernel0, solo-solo0)
	if sha256lanes.Available() && kernel+solo == kernel0+solo0 {
		t.Errorf("%d large PUTs with a payload hash in flight, and no block went through the lanes' server", hashed)
	}
}

// spliceSignatures returns the aws-chunked body real with the
// chunk-signature values of other, an encoding of a body of the same
// length and chunk size (so the same framing).
func spliceSignatures(real, other []byte) []byte {
	const ext = "chunk-signature="
	out := bytes.Clone(real)
	for off := 0; ; {
		i := bytes.Index(out[off:], []byte(ext))
		if i < 0 {
			return out
		}
		i += off + len(ext)
		copy(out[i:i+64], other[i:i+64])
		off = i + 64
	}
}
