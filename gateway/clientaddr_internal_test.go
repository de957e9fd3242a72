package gateway

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"slices"
	"testing"
)

func TestClientOf(t *testing.T) {
	proxies, err := parseTrustedProxies("10.0.0.0/8, 192.0.2.1,::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		proxies   trustedProxies
		remote    string
		tls       bool
		xff       []string
		proto     []string
		want      string
		secure    bool
		forwarded bool
	}{
		{"no proxies: the peer, whatever it says", nil, "10.1.2.3:5000", false, []string{"203.0.113.7"}, []string{"https"}, "10.1.2.3", false, false},
		{"an untrusted peer's headers are ignored", proxies, "198.51.100.9:5000", true, []string{"203.0.113.7"}, []string{"http"}, "198.51.100.9", true, false},
		{"a trusted peer without headers is the client", proxies, "10.1.2.3:5000", false, nil, nil, "10.1.2.3", false, false},
		{"the address a trusted proxy forwarded", proxies, "10.1.2.3:5000", false, []string{"203.0.113.7"}, nil, "203.0.113.7", false, true},
		{"the right-most entry not a proxy", proxies, "10.1.2.3:5000", false, []string{"6.6.6.6, 203.0.113.7", "10.9.9.9"}, nil, "203.0.113.7", false, true},
		{"every hop a proxy: the left-most", proxies, "10.1.2.3:5000", false, []string{"10.7.7.7,192.0.2.1"}, nil, "10.7.7.7", false, true},
		{"an entry with a port", proxies, "10.1.2.3:5000", false, []string{"203.0.113.7:4711"}, nil, "203.0.113.7", false, true},
		{"an IPv6 entry in brackets", proxies, "10.1.2.3:5000", false, []string{"[2001:db8::7]:4711"}, nil, "2001:db8::7", false, true},
		{"an IPv6 proxy, a mapped IPv4 client", proxies, "[::1]:5000", false, []string{"::ffff:203.0.113.7"}, nil, "203.0.113.7", false, true},
		{"garbage stops the walk at the proxy that sent it", proxies, "10.1.2.3:5000", false, []string{"203.0.113.7, unknown", "10.9.9.9"}, nil, "10.9.9.9", false, true},
		{"TLS at the proxy", proxies, "10.1.2.3:5000", false, []string{"203.0.113.7"}, []string{"https"}, "203.0.113.7", true, true},
		{"the nearest proxy's scheme", proxies, "10.1.2.3:5000", true, nil, []string{"https, http"}, "10.1.2.3", false, true},
		{"TLS to the gateway, no scheme forwarded", proxies, "10.1.2.3:5000", true, []string{"203.0.113.7"}, nil, "203.0.113.7", true, true},
		{"a RemoteAddr that is no address", proxies, "pipe", false, []string{"203.0.113.7"}, nil, "invalid IP", false, false},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://gw/b/k", nil)
		r.RemoteAddr = tc.remote
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		for _, v := range tc.proto {
			r.Header.Add("X-Forwarded-Proto", v)
		}
		c := tc.proxies.clientOf(r)
		if c.ip.String() != tc.want || c.secure != tc.secure || c.forwarded != tc.forwarded {
			t.Errorf("%s: client %s, secure %v, forwarded %v; want %s, %v, %v", tc.name, c.ip, c.secure, c.forwarded, tc.want, tc.secure, tc.forwarded)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := parseTrustedProxies(" 10.0.0.1/8 ,192.0.2.1,, 2001:db8::/32,::ffff:192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("192.0.2.9/32")}
	if !slices.Equal(got, want) {
		t.Errorf("parseTrustedProxies = %v, want %v", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", "10.0.0"} {
		if _, err := parseTrustedProxies(bad); err == nil {
			t.Errorf("parseTrustedProxies(%q) accepted it", bad)
		}
	}
}

// FuzzClientOf: whatever the headers, the client is the peer or one of
// the forwarded addresses, and an untrusted peer's headers change nothing.
func FuzzClientOf(f *testing.F) {
	f.Add("10.1.2.3:80", "203.0.113.7, 10.9.9.9", "https")
	f.Add("198.51.100.1:80", "[2001:db8::1]:80", "http,https")
	f.Add("[::1]:1", ", ,::ffff:1.2.3.4,", "")
	proxies := trustedProxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, remote, xff, proto string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}, "X-Forwarded-Proto": {proto}}}
		c := proxies.clientOf(r)
		plain := trustedProxies(nil).clientOf(r)
		if plain.forwarded || plain.secure {
			t.Fatalf("without trusted proxies: %+v", plain)
		}
		if !c.forwarded {
			if c != plain {
				t.Fatalf("not forwarded, yet %+v differs from the connection's %+v", c, plain)
			}
			return
		}
		if !proxies.trusts(plain.ip) {
			t.Fatalf("forwarded for an untrusted peer %s: %+v", plain.ip, c)
		}
		if c.ip == plain.ip {
			return
		}
		for _, h := range forwardedFor([]string{xff}) {
			if ip, ok := parseHop(h); ok && ip == c.ip {
				return
			}
		}
		t.Fatalf("client %s is neither the peer nor a forwarded address of %q", c.ip, xff)
	})
}
