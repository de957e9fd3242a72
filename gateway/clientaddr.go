package gateway

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Behind a load balancer or a reverse proxy, a gateway's TCP peer is the
// proxy: a bucket policy's aws:SourceIp would see the proxy's address for
// every client, and a proxy that terminates TLS makes every request look
// plain (aws:SecureTransport false, SSE-C refused, http:// locations).
// With Config.TrustedProxies, a request whose peer is one of them is
// taken as the proxies say it came: the client's address is the
// right-most X-Forwarded-For entry that is not itself a trusted proxy
// (each proxy appends the address it got the request from, so entries to
// the left of an untrusted one are the client's own claims), and the
// request came over TLS if the last X-Forwarded-Proto value, the one the
// proxy nearest the gateway set, is https. A request from any other peer
// is taken as its connection says, whatever headers it carries.

// client is who sent a request, as far as the gateway can tell.
type client struct {
	// ip is the client's address; invalid when RemoteAddr does not parse
	// (a test's request, or a listener that is not TCP).
	ip netip.Addr
	// secure: the client reached the gateway, or the proxy in front of
	// it, over TLS.
	secure bool
	// forwarded: ip or secure come from a trusted proxy's headers.
	forwarded bool
}

// trustedProxies is the set of peer addresses whose forwarding headers
// the gateway believes.
type trustedProxies []netip.Prefix

func (t trustedProxies) trusts(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientOf works out who sent r (see the top of this file).
func (t trustedProxies) clientOf(r *http.Request) client {
	c := client{secure: r.TLS != nil}
	c.ip, _ = parseHop(r.RemoteAddr)
	if len(t) == 0 || !c.ip.IsValid() || !t.trusts(c.ip) {
		return c
	}
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		ip, ok := parseHop(hops[i])
		if !ok {
			// What a trusted proxy forwarded as its peer is not an
			// address: nothing left of it can be believed either.
			break
		}
		c.ip, c.forwarded = ip, true
		if !t.trusts(ip) {
			break
		}
	}
	if protos := forwardedFor(r.Header.Values("X-Forwarded-Proto")); len(protos) > 0 {
		c.secure, c.forwarded = strings.EqualFold(protos[len(protos)-1], "https"), true
	}
	return c
}

// forwardedFor splits the comma-separated lists of a header's values, in
// order, dropping empty entries.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// parseHop reads one X-Forwarded-For entry, or a RemoteAddr: an address,
// possibly with a port (IPv6 then in brackets), as proxies write them.
func parseHop(s string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return ip.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// parseTrustedProxies reads --trusted-proxies: comma-separated addresses
// and CIDR prefixes.
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range forwardedFor([]string{s}) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
}

// proxyList is the flag.Value of --trusted-proxies.
type proxyList struct{ p *[]netip.Prefix }

func (l proxyList) String() string {
	if l.p == nil {
		return ""
	}
	s := make([]string, len(*l.p))
	for i, p := range *l.p {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l proxyList) Set(v string) error {
	ps, err := parseTrustedProxies(v)
	if err != nil {
		return err
	}
	*l.p = ps
	return nil
}
