package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The versioned bucket of TestChaos. A fifth of the workload's writes go
// to a bucket with versioning enabled, over a few keys of its own (so
// each key gets many versions): a PUT there makes a version, a DELETE
// (without a version id) a delete marker, and nothing deletes a version
// for good, so every version ever acknowledged must still be there at
// the end. Its operations are in the history like the other bucket's (a
// key's current version is a register, checked the same way, read
// without a version id); in addition the ledger keeps every write to it,
// and once the cluster has healed checkVersions holds the bucket to it:
// every acknowledged version readable by id, byte for byte; the bucket's
// ListObjectVersions, page by small page, listing each acknowledged
// version and marker exactly once, newest first in the order the writes
// were acknowledged, with one latest per key, which GET and ListObjectsV2
// agree with; and every version nobody was told of (a write that failed
// or was cut off) holding bytes some write to its key attempted.

// chaosVersionedBucket holds the versioned share of the chaos workload.
const chaosVersionedBucket = "chaos-versions"

var flagChaosVersions = flag.Bool("chaos.versions", true, "send a fifth of TestChaos's writes and reads to a bucket with versioning enabled, and check every version at the end")

// chaosVersionedKeys are the versioned bucket's keys: few, so that each
// gets many versions, and named apart from the other bucket's (the
// history and the registry know a key by its name).
func chaosVersionedKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("ver%d", i)
	}
	return keys
}

// madeVersionID reports whether id could be a version id a bucket with
// versioning enabled answers for a new version or marker.
func madeVersionID(id string) bool { return id != "" && id != "null" }

// versionWrite is a write to the versioned bucket as the ledger keeps it:
// the history's operation (its key, value, size, outcome, times and the
// version id answered) and, for a put, the MD5 of the body it sent.
type versionWrite struct {
	op  *op
	sum string
}

// versionRef names an acknowledged version for the workload's reads by
// id.
type versionRef struct {
	key, id   string
	val, size int64
}

// versionLedger is every write sent to the versioned bucket, recorded
// before it is sent, and the acknowledged puts so far.
type versionLedger struct {
	mu     sync.Mutex
	writes []*versionWrite
	acked  []versionRef
}

// attempt records o, a put of body or a delete, before it is sent. Its
// fields are the client's until the workload halts.
func (l *versionLedger) attempt(o *op, body []byte) {
	w := &versionWrite{op: o}
	if o.kind == opPut {
		w.sum = md5hex(body)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, w)
}

// acknowledged records o, an acknowledged put with its version id, for
// the reads by id.
func (l *versionLedger) acknowledged(o *op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked = append(l.acked, versionRef{key: o.key, id: o.version, val: o.val, size: o.size})
}

// pick is the version a client's n-th read picks: alternately one of the
// newest (just made noncurrent, or current still) and one anywhere in
// the ledger. false before any put was acknowledged.
func (l *versionLedger) pick(n int) (versionRef, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acked) == 0 {
		return versionRef{}, false
	}
	k := n / 10
	if k%2 == 0 {
		return l.acked[len(l.acked)-1-(k/2)%min(len(l.acked), 8)], true
	}
	return l.acked[(k*0x9e3779b1)%len(l.acked)], true
}

// snapshot returns the writes; call it after the workload halted.
func (l *versionLedger) snapshot() []*versionWrite {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*versionWrite(nil), l.writes...)
}

// checkVersionRead judges o, a workload read by id of ref, an
// acknowledged version: nothing deletes a version by id, so it must be
// there, whole, with the bytes written.
func checkVersionRead(o *op, ref versionRef) {
	if o.outcome != acked || o.err != "" {
		return
	}
	switch {
	case o.got == absentValue:
		o.err = fmt.Sprintf("version %s of %s (value %s, acknowledged) answered 404", ref.id, ref.key, valueName(ref.val))
	case o.unsat:
		if ref.size > o.rngStart {
			o.err = fmt.Sprintf("version %s of %s (%d bytes) answered 416 for a range from %d", ref.id, ref.key, ref.size, o.rngStart)
		}
	case o.got != ref.val:
		o.err = fmt.Sprintf("version %s of %s holds value %s, the read returned %s", ref.id, ref.key, valueName(ref.val), valueName(o.got))
	case o.version != ref.id:
		o.err = fmt.Sprintf("version %s of %s answered with x-amz-version-id %q", ref.id, ref.key, o.version)
	}
}

// versionName is a version: key and S3 version id.
type versionName struct{ key, id string }

// listedVersion is an entry of ListObjectVersions.
type listedVersion struct {
	key, id string
	marker  bool // a DeleteMarker, else a Version
	latest  bool
	etag    string
	size    int64
	page    int
}

// versionRead is what a GET by version id answered, once definite.
type versionRead struct {
	status int    // 200, 404 or 405; 0 when no definite answer came
	err    string // the last failure when none came
	marker bool   // x-amz-delete-marker: true
	id     string // x-amz-version-id
	size   int64
	sum    string // the body's MD5
	val    int64  // the value the body is, or -2 (why says why)
	why    string
}

// versionsSeen is what the final reads of the versioned bucket found.
type versionsSeen struct {
	listed []listedVersion
	pages  int
	// problems are the listing's own: pages that break the continuation
	// rules, or a listing that never ended (incomplete).
	problems   []string
	incomplete bool
	reads      map[versionName]versionRead
	// current is the bucket's ListObjectsV2: key -> ETag and size.
	current    map[string]listedVersion
	currentErr string
}

// versionsReport is the versioned bucket's part of the chaos report.
type versionsReport struct {
	Keys int `json:"keys"`
	// Acknowledged writes: versions (PUT) and delete markers (DELETE).
	Written int `json:"versions_written"`
	Markers int `json:"delete_markers_written"`
	// Writes not acknowledged, and how many of them the listing shows.
	Unacked  int `json:"writes_unacknowledged"`
	Surfaced int `json:"unacknowledged_listed"`
	// Acknowledged versions read back by id byte for byte (and markers
	// answered as markers), and those missing, unreadable or wrong.
	Checked        int `json:"versions_checked"`
	MarkersChecked int `json:"delete_markers_checked"`
	Lost           int `json:"versions_lost"`
	MarkersLost    int `json:"delete_markers_lost"`
	// The final ListObjectVersions.
	Listed int `json:"listed"`
	Pages  int `json:"list_pages"`
	// Problems: duplicates, versions of bytes never attempted, more
	// markers than DELETEs, IsLatest, order, pagination, version ids
	// answered for other contents.
	Problems int `json:"problems"`
	// LatestMismatches: the latest version against GET and ListObjectsV2.
	LatestMismatches int `json:"latest_mismatches"`
	// ReadsByID: the workload's acknowledged reads by version id.
	ReadsByID int `json:"reads_by_id"`
}

// listPageSizes are the max-keys of the final listing's pages, in turn:
// small, so that pages end between the versions of one key.
var listPageSizes = []int{1, 2, 3, 5, 8}

// finalVersions lists the versioned bucket, reads by id every version the
// ledger acknowledged or the listing shows, and lists its current
// objects, retrying what fails (the cluster is healthy by now).
func finalVersions(t *testing.T, cl *cluster, w *workload, writes []*versionWrite) *versionsSeen {
	t.Helper()
	seen := &versionsSeen{reads: map[versionName]versionRead{}}
	listAllVersions(cl, seen)

	var names []versionName
	want := map[versionName]bool{}
	for _, v := range writes {
		if n := (versionName{v.op.key, v.op.version}); v.op.outcome == acked && madeVersionID(n.id) && !want[n] {
			want[n] = true
			names = append(names, n)
		}
	}
	for _, e := range seen.listed {
		if n := (versionName{e.key, e.id}); !want[n] {
			want[n] = true
			names = append(names, n)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan versionName)
	for range 3 {
		wg.Go(func() {
			for n := range next {
				r := readVersionByID(w, n)
				mu.Lock()
				seen.reads[n] = r
				mu.Unlock()
			}
		})
	}
	for _, n := range names {
		next <- n
	}
	close(next)
	wg.Wait()

	seen.current = map[string]listedVersion{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := w.ctx()
		out, err := w.cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(chaosVersionedBucket), MaxKeys: aws.Int32(1000)})
		cancel()
		if err == nil {
			for _, e := range out.Contents {
				seen.current[aws.ToString(e.Key)] = listedVersion{key: aws.ToString(e.Key), etag: strings.Trim(aws.ToString(e.ETag), `"`), size: aws.ToInt64(e.Size)}
			}
			if aws.ToBool(out.IsTruncated) {
				seen.currentErr = "ListObjectsV2 truncated at 1000 keys"
			}
			break
		}
		if time.Now().After(deadline) {
			seen.currentErr = fmt.Sprintf("ListObjectsV2 still fails after 30s: %v", err)
			break
		}
		time.Sleep(200 * time.Millisecond) // retry pace
	}
	cl.logf("chaos: versioned bucket: %d versions and markers listed in %d pages, %d read by id", len(seen.listed), seen.pages, len(names))
	return seen
}

// listAllVersions lists the versioned bucket page by page, with the
// markers each page answers, and checks the continuation rules: a
// truncated page is not empty and continues after its last entry.
func listAllVersions(cl *cluster, seen *versionsSeen) {
	var keyMarker, idMarker string
	for page := 0; ; page++ {
		if page == 100000 {
			seen.problems = append(seen.problems, "ListObjectVersions did not end after 100000 pages")
			seen.incomplete = true
			return
		}
		maxKeys := listPageSizes[page%len(listPageSizes)]
		var res *listVersionsPage
		deadline := time.Now().Add(30 * time.Second)
		for {
			var err error
			res, err = listVersionsRaw(cl.s3URL, chaosVersionedBucket, keyMarker, idMarker, maxKeys)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				seen.problems = append(seen.problems, fmt.Sprintf("ListObjectVersions page %d (key-marker %q, version-id-marker %q) still fails after 30s: %v", page, keyMarker, idMarker, err))
				seen.incomplete = true
				return
			}
			time.Sleep(200 * time.Millisecond) // retry pace
		}
		seen.pages++
		var n int
		for _, e := range res.Entries {
			var lv listedVersion
			switch e.XMLName.Local {
			case "Version":
				lv = listedVersion{key: e.Key, id: e.VersionID, latest: e.IsLatest, etag: strings.Trim(e.ETag, `"`), size: e.Size, page: page}
			case "DeleteMarker":
				lv = listedVersion{key: e.Key, id: e.VersionID, latest: e.IsLatest, marker: true, page: page}
			default:
				continue
			}
			seen.listed = append(seen.listed, lv)
			n++
		}
		if n > maxKeys {
			seen.problems = append(seen.problems, fmt.Sprintf("ListObjectVersions page %d has %d entries, max-keys %d", page, n, maxKeys))
		}
		if !res.IsTruncated {
			return
		}
		if n == 0 {
			seen.problems = append(seen.problems, fmt.Sprintf("ListObjectVersions page %d (key-marker %q, version-id-marker %q) is truncated and empty", page, keyMarker, idMarker))
			seen.incomplete = true
			return
		}
		last := seen.listed[len(seen.listed)-1]
		if res.NextKeyMarker != last.key || res.NextVersionIDMarker != last.id {
			seen.problems = append(seen.problems, fmt.Sprintf("ListObjectVersions page %d ends with %s version %s but continues after %q version %q",
				page, last.key, last.id, res.NextKeyMarker, res.NextVersionIDMarker))
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextVersionIDMarker
	}
}

// listVersionsPage is a ListObjectVersions answer with its Version and
// DeleteMarker elements in document order (the SDK's output splits them
// into two lists, and the order across them is what the check needs).
type listVersionsPage struct {
	IsTruncated         bool
	NextKeyMarker       string
	NextVersionIDMarker string `xml:"NextVersionIdMarker"`
	Entries             []struct {
		XMLName   xml.Name
		Key       string
		VersionID string `xml:"VersionId"`
		IsLatest  bool
		ETag      string
		Size      int64
	} `xml:",any"`
}

// emptySHA256 is the SHA-256 of an empty payload, hex.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// listVersionsRaw sends one signed ListObjectVersions request.
func listVersionsRaw(endpoint, bucket, keyMarker, idMarker string, maxKeys int) (*listVersionsPage, error) {
	q := url.Values{"versions": {""}, "max-keys": {fmt.Sprint(maxKeys)}}
	if keyMarker != "" {
		q.Set("key-marker", keyMarker)
	}
	if idMarker != "" {
		q.Set("version-id-marker", idMarker)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/"+bucket+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptySHA256, "s3", "us-east-1", time.Now()); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read body after %d bytes: %w", len(body), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %.300s", resp.StatusCode, body)
	}
	var p listVersionsPage
	if err := xml.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return &p, nil
}

// readVersionByID GETs version n until it answers 200, 404 or 405.
func readVersionByID(w *workload, n versionName) versionRead {
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := readVersionOnce(w, n)
		if r.status != 0 || time.Now().After(deadline) {
			return r
		}
		time.Sleep(200 * time.Millisecond) // retry pace
	}
}

func readVersionOnce(w *workload, n versionName) versionRead {
	ctx, cancel := w.ctx()
	defer cancel()
	out, err := w.cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(chaosVersionedBucket), Key: aws.String(n.key), VersionId: aws.String(n.id)})
	var re *smithyhttp.ResponseError
	switch {
	case errors.As(err, &re) && re.Response != nil && (re.HTTPStatusCode() == http.StatusNotFound || re.HTTPStatusCode() == http.StatusMethodNotAllowed):
		return versionRead{
			status: re.HTTPStatusCode(),
			marker: re.Response.Header.Get("x-amz-delete-marker") == "true",
			id:     re.Response.Header.Get("x-amz-version-id"),
		}
	case err != nil:
		return versionRead{err: volatile.ReplaceAllString(err.Error(), "…")}
	}
	defer out.Body.Close()
	h := md5.New()
	body, err := io.ReadAll(io.TeeReader(out.Body, h))
	if err != nil {
		return versionRead{err: fmt.Sprintf("read body after %d bytes: %v", len(body), err)}
	}
	r := versionRead{status: http.StatusOK, marker: aws.ToBool(out.DeleteMarker), id: aws.ToString(out.VersionId),
		size: int64(len(body)), sum: hex.EncodeToString(h.Sum(nil))}
	r.val, err = w.reg.identify(n.key, body, 0, int64(len(body)))
	if err != nil {
		r.val, r.why = -2, err.Error()
	}
	return r
}

// checkVersions holds the versioned bucket to its ledger (see the top of
// this file): writes are every write sent to it, seen what the final
// reads found, ops the whole history and vkeys the bucket's keys.
func checkVersions(rep *chaosReport, reg *registry, vkeys []string, writes []*versionWrite, seen *versionsSeen, ops []*op) {
	vr := &versionsReport{Keys: len(vkeys), Listed: len(seen.listed), Pages: seen.pages}
	rep.Versions = vr
	problem := func(format string, args ...any) {
		vr.Problems++
		rep.violate("versions: "+format, args...)
	}
	for _, p := range seen.problems {
		problem("%s", p)
	}
	for _, o := range ops {
		vr.ReadsByID += b2i(o.askVersion != "" && o.outcome == acked)
	}

	// The ledger: acknowledged writes by version id, every put's value
	// and the MD5s attempted per key, the DELETEs that may have made a
	// marker nobody was told of.
	byID := map[versionName]*versionWrite{}
	byVal := map[int64]*versionWrite{}
	attempted := map[string]map[string]bool{}
	silentDeletes := map[string]int{}
	for _, w := range writes {
		o := w.op
		if o.kind == opPut {
			if attempted[o.key] == nil {
				attempted[o.key] = map[string]bool{}
			}
			attempted[o.key][w.sum] = true
			if o.val != emptyValue {
				byVal[o.val] = w
			}
		}
		if o.outcome != acked || !madeVersionID(o.version) {
			// Not acknowledged, or acknowledged without a version id (a
			// violation of its own): it may have made a version nobody
			// knows the id of.
			if o.outcome != failedBeforeCommit {
				vr.Unacked++
			}
			if o.kind == opDelete {
				silentDeletes[o.key]++
			}
			continue
		}
		n := versionName{o.key, o.version}
		if prev := byID[n]; prev != nil {
			problem("ops %d and %d (%s, %s of %s) were both answered version id %s", prev.op.id, o.id, prev.op.kind, o.kind, o.key, o.version)
			continue
		}
		byID[n] = w
	}

	// The listing: keys in order, each version once, the key's latest
	// first and alone.
	count := map[versionName]int{}
	first := map[versionName]listedVersion{}
	firstAt := map[versionName]int{}
	perKey := map[string][]listedVersion{}
	lastKey := ""
	for i, e := range seen.listed {
		if i > 0 && e.key < lastKey {
			problem("ListObjectVersions lists %s (page %d) after %s", e.key, e.page, lastKey)
		}
		lastKey = e.key
		n := versionName{e.key, e.id}
		count[n]++
		if count[n] == 1 {
			first[n], firstAt[n] = e, i
		} else if count[n] == 2 {
			problem("ListObjectVersions lists %s version %s more than once (pages %d and %d)", e.key, e.id, first[n].page, e.page)
		}
		perKey[e.key] = append(perKey[e.key], e)
	}
	var listedKeys []string
	for k := range perKey {
		listedKeys = append(listedKeys, k)
	}
	sort.Strings(listedKeys)
	for _, k := range listedKeys {
		es := perKey[k]
		latest := 0
		for _, e := range es {
			latest += b2i(e.latest)
		}
		if latest != 1 || !es[0].latest {
			problem("ListObjectVersions lists %d versions of %s with IsLatest, the newest (%s) with IsLatest %v; want exactly the newest", latest, k, es[0].id, es[0].latest)
		}
	}

	// Every acknowledged write: listed once as what it is, and read back
	// by id as what it wrote.
	for _, w := range writes {
		o := w.op
		n := versionName{o.key, o.version}
		if byID[n] != w {
			continue
		}
		e, listed := first[n]
		r := seen.reads[n]
		if o.kind == opDelete {
			vr.Markers++
			var why []string
			switch {
			case !listed:
				why = append(why, "not listed")
			case !e.marker:
				why = append(why, "listed as a version")
			}
			if r.status != http.StatusMethodNotAllowed || !r.marker {
				why = append(why, "GET by id: "+r.describe())
			}
			if len(why) > 0 {
				vr.MarkersLost++
				rep.violate("versions: delete marker %s of %s (op %d, acknowledged at %s) lost: %s", o.version, o.key, o.id, o.end.Format("15:04:05.000"), strings.Join(why, "; "))
				continue
			}
			vr.MarkersChecked++
			continue
		}
		vr.Written++
		want, _ := reg.info(o.val)
		var why []string
		switch {
		case !listed:
			why = append(why, "not listed")
		case e.marker:
			why = append(why, "listed as a delete marker")
		case e.etag != want.etag || e.size != o.size:
			why = append(why, fmt.Sprintf("listed with ETag %s and size %d, want %s and %d", e.etag, e.size, want.etag, o.size))
		}
		readOK := r.status == http.StatusOK && !r.marker && r.sum == w.sum && r.size == o.size && r.id == o.version
		if !readOK {
			why = append(why, "GET by id: "+r.describe())
		}
		if len(why) > 0 {
			vr.Lost++
			rep.violate("versions: version %s of %s (op %d, value %s, %d bytes, MD5 %s, acknowledged at %s) lost: %s",
				o.version, o.key, o.id, valueName(o.val), o.size, w.sum, o.end.Format("15:04:05.000"), strings.Join(why, "; "))
		}
		if readOK {
			vr.Checked++
		}
	}

	// Versions nobody was told of: bytes some put to the key attempted,
	// each put's once, and no more markers than DELETEs left unanswered.
	silentMarkers := map[string]int{}
	listedVal := map[int64]versionName{}
	for i, e := range seen.listed {
		n := versionName{e.key, e.id}
		if firstAt[n] != i || byID[n] != nil {
			continue // a duplicate (reported), or acknowledged (checked)
		}
		if e.marker {
			silentMarkers[e.key]++
			continue
		}
		r := seen.reads[n]
		v, _ := reg.info(r.val)
		switch {
		case r.status != http.StatusOK || r.marker:
			problem("%s version %s, listed, not acknowledged to any PUT: GET by id: %s", e.key, e.id, r.describe())
		case !attempted[e.key][r.sum]:
			problem("%s version %s, listed, not acknowledged to any PUT, holds %d bytes (MD5 %s) no PUT to the key sent: %s", e.key, e.id, r.size, r.sum, r.why)
		case r.val < 0 || e.etag != v.etag || e.size != r.size:
			problem("%s version %s, listed with ETag %s and size %d, reads back as %d bytes (MD5 %s), value %s (ETag %s) %s", e.key, e.id, e.etag, e.size, r.size, r.sum, valueName(r.val), v.etag, r.why)
		case byVal[r.val] != nil && byID[versionName{e.key, byVal[r.val].op.version}] == byVal[r.val]:
			a := byVal[r.val].op
			problem("%s version %s holds value %s, which op %d wrote as version %s (acknowledged): one PUT, two versions", e.key, e.id, valueName(r.val), a.id, a.version)
		default:
			if prev, ok := listedVal[r.val]; ok && r.val != emptyValue {
				problem("%s versions %s and %s both hold value %s: one PUT, two versions", e.key, prev.id, e.id, valueName(r.val))
			}
			listedVal[r.val] = n
			vr.Surfaced++
		}
	}
	for _, k := range listedKeys {
		if n := silentMarkers[k]; n > 0 {
			vr.Surfaced += min(n, silentDeletes[k])
			if n > silentDeletes[k] {
				problem("%s has %d delete marker(s) no DELETE was answered with, but only %d DELETE(s) of it went unacknowledged", k, n, silentDeletes[k])
			}
		}
	}

	// Order: a key's versions newest first, so a write that certainly
	// took effect before another began is listed after it.
	opOf := func(e listedVersion) *op {
		n := versionName{e.key, e.id}
		if w := byID[n]; w != nil {
			return w.op
		}
		if r := seen.reads[n]; !e.marker && r.val > emptyValue && byVal[r.val] != nil {
			return byVal[r.val].op
		}
		return nil
	}
	for _, k := range listedKeys {
		es := perKey[k]
		writers := make([]*op, len(es))
		for i, e := range es {
			writers[i] = opOf(e)
		}
		for i := range es {
			newer := writers[i]
			if newer == nil {
				continue
			}
			for j := i + 1; j < len(es); j++ {
				older := writers[j]
				if older == nil || older == newer {
					continue
				}
				if latest, bounded := older.latestEffect(); bounded && newer.start.After(latest) {
					continue // as it should be
				}
				if latest, bounded := newer.latestEffect(); bounded && older.start.After(latest) {
					problem("ListObjectVersions lists %s %s (op %d, %s, ended %s) as newer than %s (op %d, %s, began %s, after it)",
						k, es[i].id, newer.id, newer.kind, newer.end.Format("15:04:05.000"), es[j].id, older.id, older.kind, older.start.Format("15:04:05.000"))
				}
			}
		}
	}

	// The latest version against GET without a version id (the final
	// reads) and ListObjectsV2.
	finalGet := map[string]*op{}
	for _, o := range ops {
		if o.final && o.versioned && o.kind == opGet && o.askVersion == "" && o.outcome == acked {
			finalGet[o.key] = o
		}
	}
	if seen.currentErr != "" {
		problem("%s", seen.currentErr)
	}
	mismatch := func(format string, args ...any) {
		vr.LatestMismatches++
		rep.violate("versions: "+format, args...)
	}
	for _, k := range vkeys {
		if seen.incomplete {
			break // the listing's failure is reported
		}
		es := perKey[k]
		cur, inList := seen.current[k]
		var latest *listedVersion
		if len(es) > 0 {
			latest = &es[0]
		}
		switch {
		case seen.currentErr != "":
		case latest == nil || latest.marker:
			if inList {
				mismatch("ListObjectsV2 lists %s (ETag %s), whose latest version is %s", k, cur.etag, latestName(latest))
			}
		case !inList:
			mismatch("ListObjectsV2 does not list %s, whose latest version is %s", k, latestName(latest))
		case cur.etag != latest.etag || cur.size != latest.size:
			mismatch("ListObjectsV2 lists %s with ETag %s and size %d, its latest version %s has %s and %d", k, cur.etag, cur.size, latest.id, latest.etag, latest.size)
		}
		g := finalGet[k]
		if g == nil {
			continue // reported by finalReads
		}
		switch {
		case latest == nil || latest.marker:
			if g.got != absentValue || latest != nil && g.version != "" && g.version != latest.id {
				mismatch("final GET %s answered %s (version %q), but its latest version is %s", k, valueName(g.got), g.version, latestName(latest))
			}
		default:
			v, _ := reg.byEtag(latest.etag)
			if g.got != v || g.version != latest.id {
				mismatch("final GET %s answered %s (version %q), but its latest version is %s (%s)", k, valueName(g.got), g.version, latest.id, valueName(v))
			}
		}
	}

	// Every version id a read without one answered names what it read.
	for _, o := range ops {
		if !o.versioned || o.kind != opGet || o.askVersion != "" || o.outcome != acked || o.err != "" || o.unsat || o.version == "" {
			continue
		}
		w := byID[versionName{o.key, o.version}]
		if w == nil {
			continue
		}
		if want := w.op.writeValue(); o.got != want {
			problem("op %d (%s %s at %s) returned %s naming version %s, which op %d wrote as %s",
				o.id, readKind(o), o.key, o.start.Format("15:04:05.000"), valueName(o.got), o.version, w.op.id, valueName(want))
		}
	}
}

func latestName(e *listedVersion) string {
	switch {
	case e == nil:
		return "none (no version listed)"
	case e.marker:
		return "delete marker " + e.id
	}
	return "version " + e.id
}

func (r versionRead) describe() string {
	switch r.status {
	case 0:
		return "no answer: " + r.err
	case http.StatusOK:
		s := fmt.Sprintf("200, %d bytes (MD5 %s), version id %q", r.size, r.sum, r.id)
		if r.val >= emptyValue {
			s += ", value " + valueName(r.val)
		} else if r.why != "" {
			s += ", " + r.why
		}
		return s
	}
	return fmt.Sprintf("%d, x-amz-delete-marker %v, version id %q", r.status, r.marker, r.id)
}

// printVersions adds the versioned bucket's figures to the report.
func printVersions(b *strings.Builder, v *versionsReport) {
	fmt.Fprintf(b, "versioned bucket (%d keys):\n", v.Keys)
	fmt.Fprintf(b, "  versions written (acked):     %d, and %d delete markers (%d writes unacknowledged, %d of them listed)\n", v.Written, v.Markers, v.Unacked, v.Surfaced)
	fmt.Fprintf(b, "  versions checked by id:       %d of %d, delete markers %d of %d\n", v.Checked, v.Written, v.MarkersChecked, v.Markers)
	fmt.Fprintf(b, "  versions lost:                %d (delete markers lost %d)\n", v.Lost, v.MarkersLost)
	fmt.Fprintf(b, "  ListObjectVersions:           %d entries in %d pages (max-keys %v)\n", v.Listed, v.Pages, listPageSizes)
	fmt.Fprintf(b, "  version problems:             %d (duplicates, bytes never sent, IsLatest, order, paging)\n", v.Problems)
	fmt.Fprintf(b, "  latest vs GET and LIST:       %d mismatches\n", v.LatestMismatches)
	fmt.Fprintf(b, "  reads by version id:          %d during the workload\n", v.ReadsByID)
}
