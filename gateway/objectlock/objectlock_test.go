package objectlock

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

const (
	gov  = pb.ObjectLockMode_OBJECT_LOCK_MODE_GOVERNANCE
	comp = pb.ObjectLockMode_OBJECT_LOCK_MODE_COMPLIANCE
)

func TestParseConfiguration(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want *pb.ObjectLockConfiguration
		err  error
	}{
		{`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`, &pb.ObjectLockConfiguration{Enabled: true}, nil},
		{`<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>3</Days></DefaultRetention></Rule></ObjectLockConfiguration>`,
			&pb.ObjectLockConfiguration{Enabled: true, DefaultMode: gov, DefaultDays: 3}, nil},
		{`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>2</Years></DefaultRetention></Rule></ObjectLockConfiguration>`,
			&pb.ObjectLockConfiguration{Enabled: true, DefaultMode: comp, DefaultYears: 2}, nil},
		{`<ObjectLockConfiguration></ObjectLockConfiguration>`, nil, ErrMalformed},
		{`<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>`, nil, ErrMalformed},
		{`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule></Rule></ObjectLockConfiguration>`, nil, ErrMalformed},
		{`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode></DefaultRetention></Rule></ObjectLockConfiguration>`, nil, ErrMalformed},
		{`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years></DefaultRetention></Rule></ObjectLockConfiguration>`, nil, ErrMalformed},
		{`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>LOOSE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>`, nil, ErrMalformed},
		{`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>0</Days></DefaultRetention></Rule></ObjectLockConfiguration>`, nil, ErrInvalid},
		{`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Years>101</Years></DefaultRetention></Rule></ObjectLockConfiguration>`, nil, ErrInvalid},
		{`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration><x/>`, nil, ErrMalformed},
		{`not xml`, nil, ErrMalformed},
	} {
		got, err := ParseConfiguration([]byte(c.doc))
		if !errors.Is(err, c.err) || (c.err == nil && !proto.Equal(got, c.want)) {
			t.Errorf("%s: %v, %v; want %v, %v", c.doc, got, err, c.want, c.err)
		}
		if err == nil {
			again, err := ParseConfiguration(MarshalConfiguration(got))
			if err != nil || !proto.Equal(again, got) {
				t.Errorf("%s: marshalled and parsed again: %v, %v", c.doc, again, err)
			}
		}
	}
}

func TestParseRetentionAndLegalHold(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	later := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	for _, c := range []struct {
		doc  string
		want *pb.ObjectRetention
		err  error
	}{
		{`<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2027-01-02T03:04:05.000Z</RetainUntilDate></Retention>`, &pb.ObjectRetention{Mode: gov, RetainUntilUnixNano: later}, nil},
		{`<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>COMPLIANCE</Mode><RetainUntilDate>2027-01-02T04:04:05+01:00</RetainUntilDate></Retention>`, &pb.ObjectRetention{Mode: comp, RetainUntilUnixNano: later}, nil},
		{`<Retention></Retention>`, nil, nil},
		{`<Retention><Mode>GOVERNANCE</Mode></Retention>`, nil, ErrMalformed},
		{`<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2026-01-01T00:00:00Z</RetainUntilDate></Retention>`, nil, ErrInvalid},
		{`<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>tomorrow</RetainUntilDate></Retention>`, nil, ErrInvalid},
		{`<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2650-01-01T00:00:00Z</RetainUntilDate></Retention>`, nil, ErrInvalid},
		{`<Retention><Mode>STRICT</Mode><RetainUntilDate>2027-01-02T03:04:05Z</RetainUntilDate></Retention>`, nil, ErrInvalid},
		{`<LegalHold><Status>ON</Status></LegalHold>`, nil, ErrMalformed},
	} {
		got, err := ParseRetention([]byte(c.doc), now)
		if !errors.Is(err, c.err) || (c.err == nil && !proto.Equal(got, c.want)) {
			t.Errorf("%s: %v, %v; want %v, %v", c.doc, got, err, c.want, c.err)
		}
		if err == nil && got != nil {
			again, err := ParseRetention(MarshalRetention(got), now)
			if err != nil || !proto.Equal(again, got) {
				t.Errorf("%s: marshalled and parsed again: %v, %v", c.doc, again, err)
			}
		}
	}
	for doc, want := range map[string]bool{`<LegalHold><Status>ON</Status></LegalHold>`: true, `<LegalHold><Status>OFF</Status></LegalHold>`: false} {
		if got, err := ParseLegalHold([]byte(doc)); err != nil || got != want {
			t.Errorf("%s: %v, %v", doc, got, err)
		}
		if got, err := ParseLegalHold(MarshalLegalHold(want)); err != nil || got != want {
			t.Errorf("%v marshalled and parsed again: %v, %v", want, got, err)
		}
	}
	for _, doc := range []string{`<LegalHold><Status>on</Status></LegalHold>`, `<LegalHold></LegalHold>`, `<Retention/>`} {
		if _, err := ParseLegalHold([]byte(doc)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", doc, err)
		}
	}
}

func TestFromHeaders(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	for _, c := range []struct {
		h    http.Header
		want *pb.ObjectRetention
		hold bool
		err  error
	}{
		{h(), nil, false, nil},
		{h(HeaderMode, "GOVERNANCE", HeaderRetainUntil, "2026-11-28T00:00:00Z"), &pb.ObjectRetention{Mode: gov, RetainUntilUnixNano: now.Add(12 * time.Hour).UnixNano()}, false, nil},
		{h(HeaderLegalHold, "ON"), nil, true, nil},
		{h(HeaderLegalHold, "OFF"), nil, false, nil},
		{h(HeaderLegalHold, "yes"), nil, false, ErrInvalid},
		{h(HeaderMode, "GOVERNANCE"), nil, false, ErrInvalid},
		{h(HeaderRetainUntil, "2026-11-28T00:00:00Z"), nil, false, ErrInvalid},
		{h(HeaderMode, "COMPLIANCE", HeaderRetainUntil, "2026-11-27T11:00:00Z"), nil, false, ErrInvalid},
		// Past what an int64 of nanoseconds holds: UnixNano would wrap
		// 2650 to 2065 and 1000 to 2169, both in the future.
		{h(HeaderMode, "COMPLIANCE", HeaderRetainUntil, "2650-01-01T00:00:00Z"), nil, false, ErrInvalid},
		{h(HeaderMode, "COMPLIANCE", HeaderRetainUntil, "1000-01-01T00:00:00Z"), nil, false, ErrInvalid},
		{h(HeaderMode, "COMPLIANCE", HeaderRetainUntil, "2262-04-11T23:47:16.854Z"), &pb.ObjectRetention{Mode: comp, RetainUntilUnixNano: time.Date(2262, 4, 11, 23, 47, 16, 854000000, time.UTC).UnixNano()}, false, nil},
	} {
		got, hold, err := FromHeaders(c.h, now)
		if !errors.Is(err, c.err) || (c.err == nil && (!proto.Equal(got, c.want) || hold != c.hold)) {
			t.Errorf("%v: %v %v %v; want %v %v %v", c.h, got, hold, err, c.want, c.hold, c.err)
		}
	}
	if !Bypass(h(HeaderBypass, "true")) || Bypass(h(HeaderBypass, "nope")) || Bypass(h()) {
		t.Error("Bypass misreads x-amz-bypass-governance-retention")
	}
	out := http.Header{}
	SetHeaders(out, &pb.ObjectRetention{Mode: comp, RetainUntilUnixNano: now.UnixNano()}, true, true)
	if out.Get(HeaderMode) != "COMPLIANCE" || out.Get(HeaderRetainUntil) != "2026-11-27T12:00:00.000Z" || out.Get(HeaderLegalHold) != "ON" {
		t.Errorf("SetHeaders wrote %v", out)
	}
}

// FuzzParse: no document makes a parser panic, and what a parser accepts
// survives its marshalling.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>3</Days></DefaultRetention></Rule></ObjectLockConfiguration>`,
		`<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2027-01-02T03:04:05.000Z</RetainUntilDate></Retention>`,
		`<LegalHold><Status>ON</Status></LegalHold>`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, doc []byte) {
		if c, err := ParseConfiguration(doc); err == nil {
			if again, err := ParseConfiguration(MarshalConfiguration(c)); err != nil || !proto.Equal(again, c) {
				t.Fatalf("configuration %v does not survive marshalling: %v, %v", c, again, err)
			}
		}
		if r, err := ParseRetention(doc, now); err == nil && r != nil {
			// Marshalling keeps milliseconds.
			r.RetainUntilUnixNano -= r.RetainUntilUnixNano % int64(time.Millisecond)
			if r.RetainUntilUnixNano <= now.UnixNano() {
				return
			}
			if again, err := ParseRetention(MarshalRetention(r), now); err != nil || !proto.Equal(again, r) {
				t.Fatalf("retention %v does not survive marshalling: %v, %v", r, again, err)
			}
		}
		if on, err := ParseLegalHold(doc); err == nil {
			if again, err := ParseLegalHold(MarshalLegalHold(on)); err != nil || again != on {
				t.Fatalf("legal hold %v does not survive marshalling", on)
			}
		}
	})
}
