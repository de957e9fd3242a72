package metadata

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Listing is checked against a brute-force model over random key sets:
// keys with multi-byte UTF-8, NUL and 0xFF bytes (not UTF-8, so written to
// Badger directly: no command could carry them) and delimiters of one and
// several bytes at various places.

var smKeyPieces = []string{"a", "b", "z", "/", "//", "-", "ab", "é", "日", "😀", "\x00", "\xff", "\xff\xff"}

func smRandomKey(rng *rand.Rand) string {
	var b strings.Builder
	for range 1 + rng.IntN(6) {
		b.WriteString(smKeyPieces[rng.IntN(len(smKeyPieces))])
	}
	return b.String()
}

// smInsertObjects writes objects straight into Badger and rebuilds the
// directory index, which only commands keep current.
func smInsertObjects(t testing.TB, s *State, bucket string, keys []string) {
	t.Helper()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		o := &pb.Object{Bucket: bucket, Etag: "e", Size: int64(len(k)), Segments: []*pb.Segment{smSeg(1)}, Inline: []byte("x")}
		if utf8.ValidString(k) {
			o.Key = k
		}
		v, err := proto.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := wb.Set(objectKey(bucket, k), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.rebuildDirIndex(); err != nil {
		t.Fatal(err)
	}
}

// smEntry is one entry of a listing: a key (with an upload id for upload
// listings) or a common prefix.
type smEntry struct {
	name string
	id   string
	cp   bool
}

// smRollup is what a key shows as in a listing: itself, or the common
// prefix up to and including the first delimiter after the prefix.
func smRollup(key, prefix, delim string) (string, bool) {
	if delim == "" {
		return key, false
	}
	if i := strings.Index(key[len(prefix):], delim); i >= 0 {
		return key[:len(prefix)+i+len(delim)], true
	}
	return key, false
}

// smModel lists (key, id) pairs, sorted, by brute force. include says
// whether a pair is above the marker; a marker that is itself a common
// prefix excludes every key under it.
func smModel(pairs [][2]string, prefix, delim, marker string, include func(key, id string) bool) []smEntry {
	markerCP := false
	if strings.HasPrefix(marker, prefix) {
		r, cp := smRollup(marker, prefix, delim)
		markerCP = cp && r == marker
	}
	var out []smEntry
	for _, p := range pairs {
		k := p[0]
		if !strings.HasPrefix(k, prefix) || !include(k, p[1]) || (markerCP && strings.HasPrefix(k, marker)) {
			continue
		}
		name, cp := smRollup(k, prefix, delim)
		e := smEntry{name: name, cp: cp}
		if !cp {
			e.id = p[1]
		}
		if len(out) > 0 && out[len(out)-1] == e {
			continue
		}
		out = append(out, e)
	}
	return out
}

func smObjectEntries(r *pb.ListObjectsResponse) (keys, cps []string) {
	for _, o := range r.Objects {
		keys = append(keys, o.Key)
		if o.Segments != nil || o.Inline != nil {
			keys = append(keys, "<listing returned segments or inline data>")
		}
	}
	return keys, r.CommonPrefixes
}

func smSplit(es []smEntry) (keys, cps []string) {
	for _, e := range es {
		if e.cp {
			cps = append(cps, e.name)
		} else {
			keys = append(keys, e.name)
		}
	}
	return keys, cps
}

// smPick chooses a prefix, delimiter or marker likely to hit edge cases.
func smPick(rng *rand.Rand, keys []string, extra ...string) string {
	switch rng.IntN(4) {
	case 0:
		return extra[rng.IntN(len(extra))]
	case 1:
		return keys[rng.IntN(len(keys))]
	case 2:
		k := keys[rng.IntN(len(keys))]
		return k[:rng.IntN(len(k)+1)] // may cut inside a UTF-8 sequence
	default:
		return smKeyPieces[rng.IntN(len(smKeyPieces))]
	}
}

var smDelims = []string{"", "", "/", "//", "ab", "é", "日", "\xff", "\x00", "a"}

func TestListObjectsMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for round := range 4 {
		s := smOpen(t)
		s.ApplyBatch(smEntries(1, smCreateBucket("bk"), smCreateBucket("bk2")))
		keys := map[string]bool{}
		for range 150 + 100*round {
			keys[smRandomKey(rng)] = true
		}
		sorted := slices.Sorted(func(yield func(string) bool) {
			for k := range keys {
				if !yield(k) {
					return
				}
			}
		})
		smInsertObjects(t, s, "bk", sorted)
		smInsertObjects(t, s, "bk2", []string{"", "a", "\xff"}) // a neighbour bucket must not leak in
		smCheckDirIndex(t, s)
		pairs := make([][2]string, len(sorted))
		for i, k := range sorted {
			pairs[i] = [2]string{k, ""}
		}
		for q := range 400 {
			prefix := ""
			if rng.IntN(3) > 0 {
				prefix = smPick(rng, sorted, "", "a/", "\xff", "é")
			}
			delim := smDelims[rng.IntN(len(smDelims))]
			after := ""
			if rng.IntN(4) > 0 {
				after = smPick(rng, sorted, "", prefix, prefix+delim, "\xff\xff\xff\xff\xff\xff\xff\xff")
			}
			maxKeys := []int32{0, 1, 2, 3, 5, 1000, int32(1 + rng.IntN(30))}[rng.IntN(7)]
			req := &pb.ListObjectsRequest{Bucket: "bk", Prefix: prefix, Delimiter: delim, StartAfter: after, MaxKeys: maxKeys}
			desc := fmt.Sprintf("round %d query %d: %q", round, q, req.String())

			full := smModel(pairs, prefix, delim, after, func(k, _ string) bool { return k > after })
			limit := int(maxKeys)
			if limit == 0 {
				limit = 1000
			}
			page := full[:min(limit, len(full))]
			if delim == "/" {
				// The page above comes from the directory index; walking
				// o/ must give the same pages.
				smListBothWays(t, s, req, desc)
			}
			resp, err := s.ListObjects(req)
			if err != nil {
				t.Fatalf("%s: %v", desc, err)
			}
			gotKeys, gotCPs := smObjectEntries(resp)
			wantKeys, wantCPs := smSplit(page)
			if !slices.Equal(gotKeys, wantKeys) || !slices.Equal(gotCPs, wantCPs) {
				t.Fatalf("%s:\n got keys %q cps %q\nwant keys %q cps %q", desc, gotKeys, gotCPs, wantKeys, wantCPs)
			}
			wantNext := ""
			if len(full) > len(page) {
				wantNext = page[len(page)-1].name
			}
			if resp.IsTruncated != (len(full) > len(page)) || resp.NextStartAfter != wantNext {
				t.Fatalf("%s: truncated %v next %q, want %v %q", desc, resp.IsTruncated, resp.NextStartAfter, len(full) > len(page), wantNext)
			}

			// Following next_start_after lists everything exactly once.
			var all []smEntry
			for page := 0; ; page++ {
				if page > len(full)+1 {
					t.Fatalf("%s: pagination does not end", desc)
				}
				for _, o := range resp.Objects {
					all = append(all, smEntry{name: o.Key})
				}
				for _, c := range resp.CommonPrefixes {
					all = append(all, smEntry{name: c, cp: true})
				}
				if !resp.IsTruncated {
					break
				}
				req.StartAfter = resp.NextStartAfter
				if resp, err = s.ListObjects(req); err != nil {
					t.Fatalf("%s: %v", desc, err)
				}
			}
			// Within a page objects and prefixes come as two lists; compare
			// as sets in key order.
			sortEntries := func(es []smEntry) []smEntry {
				return slices.SortedFunc(slices.Values(es), func(a, b smEntry) int { return strings.Compare(a.name, b.name) })
			}
			if a, b := sortEntries(all), sortEntries(full); !slices.Equal(a, b) {
				t.Fatalf("%s: paging gave %d entries, want %d\n got %+v\nwant %+v", desc, len(a), len(b), a, b)
			}
		}
	}
}

func TestListObjectsErrors(t *testing.T) {
	s := smOpen(t)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk")))
	if _, err := s.ListObjects(&pb.ListObjectsRequest{Bucket: "nope"}); !smIsCond(err, metaerr.ErrNoSuchBucket) {
		t.Errorf("missing bucket: %v", err)
	}
	if _, err := s.ListObjects(&pb.ListObjectsRequest{Bucket: "bk", MaxKeys: -1}); !smIsCond(err, metaerr.ErrInvalidArgument) {
		t.Errorf("negative max keys: %v", err)
	}
	if _, err := s.ListMultipartUploads(&pb.ListMultipartUploadsRequest{Bucket: "nope"}); !smIsCond(err, metaerr.ErrNoSuchBucket) {
		t.Errorf("missing bucket: %v", err)
	}
	smInsertObjects(t, s, "bk", []string{"k"})
	r, err := s.ListObjects(&pb.ListObjectsRequest{Bucket: "bk", MaxKeys: 5000})
	if err != nil || len(r.Objects) != 1 || r.IsTruncated || r.NextStartAfter != "" {
		t.Errorf("list: %v, %v", r, err)
	}
}

// smInsertUploads writes uploads straight into Badger.
func smInsertUploads(t testing.TB, s *State, bucket string, pairs [][2]string) {
	t.Helper()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, p := range pairs {
		v, _ := proto.Marshal(&pb.MultipartUpload{Bucket: bucket, ContentType: "c"})
		if err := wb.Set(uploadKey(bucket, p[0], p[1]), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestListMultipartUploadsMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	ids := []string{"u1", "u2", "x", "u1\x00"}
	for round := range 3 {
		s := smOpen(t)
		s.ApplyBatch(smEntries(1, smCreateBucket("bk"), smCreateBucket("bk\x01")))
		set := map[[2]string]bool{}
		var keys []string
		for range 80 + 60*round {
			k := smRandomKey(rng)
			keys = append(keys, k)
			for range 1 + rng.IntN(3) {
				set[[2]string{k, ids[rng.IntN(len(ids))]}] = true
			}
		}
		var pairs [][2]string
		for p := range set {
			pairs = append(pairs, p)
		}
		slices.SortFunc(pairs, func(a, b [2]string) int {
			if c := strings.Compare(a[0], b[0]); c != 0 {
				return c
			}
			return strings.Compare(a[1], b[1])
		})
		smInsertUploads(t, s, "bk", pairs)
		smInsertUploads(t, s, "bk\x01", [][2]string{{"a", "n"}})
		for q := range 300 {
			prefix := ""
			if rng.IntN(3) > 0 {
				prefix = smPick(rng, keys, "", "a/", "\xff")
			}
			delim := smDelims[rng.IntN(len(smDelims))]
			km, uim := "", ""
			if rng.IntN(4) > 0 {
				km = smPick(rng, keys, "", prefix, prefix+delim)
				if rng.IntN(2) == 0 {
					uim = ids[rng.IntN(len(ids))]
				}
			}
			maxUp := []int32{0, 1, 2, 3, 1000, int32(1 + rng.IntN(20))}[rng.IntN(6)]
			req := &pb.ListMultipartUploadsRequest{Bucket: "bk", Prefix: prefix, Delimiter: delim, KeyMarker: km, UploadIdMarker: uim, MaxUploads: maxUp}
			desc := fmt.Sprintf("round %d query %d: %q", round, q, req.String())
			above := func(k, id string) bool {
				switch {
				case km == "":
					return true
				case uim == "":
					return k > km
				default:
					return k > km || (k == km && id > uim)
				}
			}
			full := smModel(pairs, prefix, delim, km, above)
			limit := int(maxUp)
			if limit == 0 {
				limit = 1000
			}
			page := full[:min(limit, len(full))]
			resp, err := s.ListMultipartUploads(req)
			if err != nil {
				t.Fatalf("%s: %v", desc, err)
			}
			var gotUploads, wantUploads [][2]string
			for _, u := range resp.Uploads {
				gotUploads = append(gotUploads, [2]string{u.Key, u.UploadId})
			}
			var wantCPs []string
			for _, e := range page {
				if e.cp {
					wantCPs = append(wantCPs, e.name)
				} else {
					wantUploads = append(wantUploads, [2]string{e.name, e.id})
				}
			}
			if !slices.Equal(gotUploads, wantUploads) || !slices.Equal(resp.CommonPrefixes, wantCPs) {
				t.Fatalf("%s:\n got %q %q\nwant %q %q", desc, gotUploads, resp.CommonPrefixes, wantUploads, wantCPs)
			}
			truncated := len(full) > len(page)
			var wantKM, wantUIM string
			if truncated {
				wantKM, wantUIM = page[len(page)-1].name, page[len(page)-1].id
			}
			if resp.IsTruncated != truncated || resp.NextKeyMarker != wantKM || resp.NextUploadIdMarker != wantUIM {
				t.Fatalf("%s: truncated %v next %q/%q, want %v %q/%q", desc, resp.IsTruncated, resp.NextKeyMarker, resp.NextUploadIdMarker, truncated, wantKM, wantUIM)
			}
			// Paging on through the next markers ends with all entries.
			n := len(resp.Uploads) + len(resp.CommonPrefixes)
			for pages := 0; resp.IsTruncated; pages++ {
				if pages > len(full) {
					t.Fatalf("%s: pagination does not end", desc)
				}
				req.KeyMarker, req.UploadIdMarker = resp.NextKeyMarker, resp.NextUploadIdMarker
				if resp, err = s.ListMultipartUploads(req); err != nil {
					t.Fatal(err)
				}
				n += len(resp.Uploads) + len(resp.CommonPrefixes)
			}
			if n != len(full) {
				t.Fatalf("%s: paging gave %d entries, want %d", desc, n, len(full))
			}
		}
	}
}

func TestListPartsPaging(t *testing.T) {
	h := smNew(t)
	h.must(smCreateBucket("bk"), smCreateUpload("bk", "k", "U"))
	for _, n := range []int32{1, 2, 5, 9, 10000} {
		h.must(smPutPart("bk", "k", "U", n, fmt.Sprint("e", n), smSeg(byte(n))))
	}
	tests := []struct {
		marker, max int32
		want        []int32
		next        int32
	}{
		{0, 0, []int32{1, 2, 5, 9, 10000}, 0},
		{0, 2, []int32{1, 2}, 2},
		{2, 2, []int32{5, 9}, 9},
		{9, 2, []int32{10000}, 0},
		{10000, 2, nil, 0},
		{3, 1000, []int32{5, 9, 10000}, 0},
	}
	for _, tt := range tests {
		r, err := h.s.ListParts(&pb.ListPartsRequest{Bucket: "bk", Key: "k", UploadId: "U", PartNumberMarker: tt.marker, MaxParts: tt.max})
		if err != nil {
			t.Fatal(err)
		}
		var got []int32
		for _, p := range r.Parts {
			got = append(got, p.Number)
			if p.Segments != nil {
				t.Error("segments without with_segments")
			}
		}
		if !slices.Equal(got, tt.want) || r.IsTruncated != (tt.next != 0) || r.NextPartNumberMarker != tt.next || r.Upload.GetUploadId() != "U" {
			t.Errorf("marker %d max %d: %v truncated %v next %d", tt.marker, tt.max, got, r.IsTruncated, r.NextPartNumberMarker)
		}
	}
	if _, err := h.s.ListParts(&pb.ListPartsRequest{Bucket: "bk", Key: "k", UploadId: "V"}); !smIsCond(err, metaerr.ErrNoSuchUpload) {
		t.Errorf("unknown upload: %v", err)
	}
}

// TestListDelimiterPageSeeksPastPrefixes checks, by counting iterator
// steps, that a delimiter page does not walk the keys under a prefix.
func TestListDelimiterPageSeeksPastPrefixes(t *testing.T) {
	s := smOpen(t)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk")))
	keys := []string{"a", "zz"}
	for i := range 100_000 {
		keys = append(keys, fmt.Sprintf("dir/%06d", i))
	}
	keys = append(keys, "dir\xff/x", "\xff\xff/y")
	smInsertObjects(t, s, "bk", keys)

	// maxSteps walks o/ alone (listScan); maxIndexed lists "/" from the
	// directory index (listDirs): it also counts the directory lookup and
	// the index steps, and passes the one-key dir\xff/ and \xff\xff/ with
	// a Next where the scan needs a Next and a check.
	tests := []struct {
		req                  *pb.ListObjectsRequest
		entries              int
		maxSteps, maxIndexed int64
	}{
		// a, dir/, dir\xff/, zz, \xff\xff/: one seek each plus the start;
		// indexed: lookup, 2 seeks, 3 index Nexts, 4 o/ steps.
		{&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/"}, 5, 8, 10},
		{&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", MaxKeys: 2}, 2, 4, 6},
		{&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", StartAfter: "dir/"}, 3, 6, 8},
		{&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "0", Prefix: "dir/"}, 1, 3, 3},
		{&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", Prefix: "dir/", MaxKeys: 10}, 10, 12, 13},
		// Without a delimiter a page walks its own keys, no more.
		{&pb.ListObjectsRequest{Bucket: "bk", StartAfter: "dir/050000"}, 1000, 1002, 1002},
	}
	for _, tt := range tests {
		for _, indexed := range []bool{false, true} {
			before := s.listSteps.Load()
			r, err := s.listObjects(tt.req, indexed)
			if err != nil {
				t.Fatal(err)
			}
			steps := s.listSteps.Load() - before
			if n := len(r.Objects) + len(r.CommonPrefixes); n != tt.entries {
				t.Errorf("%v (indexed %v): %d entries, want %d", tt.req, indexed, n, tt.entries)
			}
			if max := map[bool]int64{false: tt.maxSteps, true: tt.maxIndexed}[indexed]; steps > max {
				t.Errorf("%v (indexed %v): %d iterator steps, want ≤ %d", tt.req, indexed, steps, max)
			}
		}
	}
}

func TestKeyEncoding(t *testing.T) {
	strs := []string{"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "a", "a\x00", "a\x00b", "a\x01", "ab", "\xff", "\xff\x00"}
	for _, a := range strs {
		enc := appendEscaped(nil, a)
		got, n, ok := unescape(append(enc, keyTerminator...))
		if !ok || got != a || n != len(enc)+2 {
			t.Errorf("unescape(escape(%q)) = %q, %d, %v", a, got, n, ok)
		}
		for _, b := range strs {
			ea := append(appendEscaped(nil, a), keyTerminator...)
			eb := append(appendEscaped(nil, b), keyTerminator...)
			if c := strings.Compare(string(ea), string(eb)); c != strings.Compare(a, b) {
				t.Errorf("escaped order of %q, %q is %d", a, b, c)
			}
			if strings.HasPrefix(string(eb), string(appendEscaped(nil, a))) != strings.HasPrefix(b, a) {
				t.Errorf("escaped prefix relation of %q, %q differs", a, b)
			}
		}
	}
	for _, bad := range []string{"", "a", "a\x00", "a\x00\x02"} {
		if _, _, ok := unescape([]byte(bad)); ok {
			t.Errorf("unescape(%q) accepted", bad)
		}
	}
	for _, tt := range []struct{ in, want string }{{"a", "b"}, {"a\xff", "b"}, {"a/", "a0"}, {"\xff\xff", ""}, {"", ""}, {"é", "\xc3\xaa"}} {
		if got := string(prefixEnd([]byte(tt.in))); got != tt.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
