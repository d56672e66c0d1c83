package authz

import (
	"errors"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// Sources as tests configure them: the proxies are 10.0.0.0/8 (and an IPv6
// range), nginx-like at 127.0.0.1.
var (
	testTrusted = trustedProxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	fromPeer    = addressSource{from: AddressFromPeer}
	fromPP      = addressSource{from: AddressFromProxyProtocol, trusted: testTrusted}
	fromXFF     = addressSource{from: AddressFromXForwardedFor, trusted: testTrusted}
	fromFwd     = addressSource{from: AddressFromForwarded, trusted: testTrusted}
	fromXFFPort = addressSource{from: AddressFromXForwardedFor, trusted: testTrusted, portHeader: "X-Real-Port"}
	fromFwdPort = addressSource{from: AddressFromForwarded, trusted: testTrusted, portHeader: "X-Real-Port"}
	nginx       = addressSource{from: AddressFromXForwardedFor, trusted: trustedProxies{netip.MustParsePrefix("127.0.0.1/32")}}
	nginxPort   = addressSource{from: AddressFromXForwardedFor, trusted: trustedProxies{netip.MustParsePrefix("127.0.0.1/32")}, portHeader: "X-Real-Port"}
	haproxyFwd  = addressSource{from: AddressFromForwarded, trusted: trustedProxies{netip.MustParsePrefix("127.0.0.1/32")}}
)

type addressCase struct {
	name   string
	source addressSource
	peer   string
	header http.Header
	want   string // "" when the address must be refused
}

func runAddressCases(t *testing.T, cases []addressCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: tc.header.Clone()}
			got, err := tc.source.of(r)
			if tc.want == "" {
				if err == nil || !errors.Is(err, errNoClientAddress) {
					t.Fatalf("got %v, %v; want an error that Is errNoClientAddress", got, err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
			if !reflect.DeepEqual(r.Header, tc.header) && !(r.Header == nil && len(tc.header) == 0) {
				t.Fatalf("headers changed: %v, were %v", r.Header, tc.header)
			}
		})
	}
}

func TestClientAddress(t *testing.T) {
	runAddressCases(t, []addressCase{
		{"peer", fromPeer, "203.0.113.9:5555", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=198.51.100.1"}}, "203.0.113.9:5555"},
		{"peer unreadable", fromPeer, "pipe", nil, ""},
		{"peer IPv4-mapped", fromPeer, "[::ffff:203.0.113.9]:5555", nil, "203.0.113.9:5555"},
		{"proxy protocol: the listener's address, headers ignored", fromPP, "198.51.100.7:40001", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=198.51.100.1"}}, "198.51.100.7:40001"},
		{"untrusted peer, headers ignored", fromXFF, "203.0.113.9:5555", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.9:5555"},
		{"untrusted peer, port header ignored", fromXFFPort, "203.0.113.9:5555", http.Header{"X-Real-Port": {"1"}}, "203.0.113.9:5555"},
		{"trusted peer, no header: refused", fromXFF, "10.0.0.1:4000", nil, ""},
		{"XFF", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1:0"},
		{"XFF right-most untrusted", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"1.2.3.4, 198.51.100.1, 10.0.0.2"}}, "198.51.100.1:0"},
		{"XFF over two lines", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"1.2.3.4", "198.51.100.1"}}, "198.51.100.1:0"},
		{"XFF port dropped", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1:40001"}}, "198.51.100.1:0"},
		{"XFF IPv6", fromXFF, "[2001:db8:ffff::1]:4000", http.Header{"X-Forwarded-For": {"2001:db8:cafe::17"}}, "[2001:db8:cafe::17]:0"},
		{"XFF all trusted: refused", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"10.1.1.1, 10.0.0.2"}}, ""},
		{"XFF garbage at the client's hop", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1, nonsense"}}, ""},
		{"XFF garbage behind a trusted hop", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"nonsense, 10.0.0.2"}}, ""},
		{"XFF zone refused", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"fe80::1%eth0"}}, ""},
		{"XFF empty elements skipped", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1,, ", ""}}, "198.51.100.1:0"},
		{"XFF too many trusted hops", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1" + strings.Repeat(", 10.0.0.2", maxForwardedHops)}}, ""},
		{"XFF as many trusted hops as allowed", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1" + strings.Repeat(", 10.0.0.2", maxForwardedHops-1)}}, "198.51.100.1:0"},
		{"IPv4-mapped trusted peer", fromXFF, "[::ffff:10.0.0.1]:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1:0"},
		{"IPv4-mapped trusted hop", fromXFF, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1, ::ffff:10.0.0.2"}}, "198.51.100.1:0"},
		{"Forwarded", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for=198.51.100.1;proto=https`}}, "198.51.100.1:0"},
		{"Forwarded with port", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for="198.51.100.1:40001"`}}, "198.51.100.1:40001"},
		{"Forwarded IPv6", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`For="[2001:db8:cafe::17]:4711"`}}, "[2001:db8:cafe::17]:4711"},
		{"Forwarded chain", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for=1.2.3.4, for=198.51.100.1;by=10.0.0.9, for=10.0.0.2`}}, "198.51.100.1:0"},
		{"Forwarded deeper hop keeps its port", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for="198.51.100.1:40001", for=10.0.0.2`}}, "198.51.100.1:40001"},
		{"Forwarded quoted comma and semicolon", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for=1.2.3.4, for="198.51.100.1";by="a;b,c\"d"`}}, "198.51.100.1:0"},
		{"Forwarded escaped backslash before the closing quote", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for=198.51.100.1;host="x\\"`}}, "198.51.100.1:0"},
		{"Forwarded ignores X-Forwarded-For", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for=198.51.100.1`}, "X-Forwarded-For": {"1.2.3.4"}}, "198.51.100.1:0"},
		{"Forwarded absent, X-Forwarded-For not read", fromFwd, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"1.2.3.4"}}, ""},
		{"Forwarded unknown", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for=unknown`}}, ""},
		{"Forwarded obfuscated", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for=_hidden`}}, ""},
		{"Forwarded without for", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`proto=https`}}, ""},
		{"Forwarded for twice", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for=198.51.100.1;for=1.2.3.4`}}, ""},
		{"Forwarded unterminated quote at the client's hop", fromFwd, "10.0.0.1:4000", http.Header{"Forwarded": {`for="198.51.100.1`}}, ""},
		{"port header from the nearest proxy", fromXFFPort, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Real-Port": {"40001"}}, "198.51.100.1:40001"},
		{"port header absent", fromXFFPort, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1:0"},
		{"port header not for a deeper hop", fromXFFPort, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1, 10.0.0.2"}, "X-Real-Port": {"40001"}}, "198.51.100.1:0"},
		{"port header twice: refused", fromXFFPort, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Real-Port": {"40002", "40001"}}, ""},
		{"port header not a port: refused", fromXFFPort, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Real-Port": {"40001, 40002"}}, ""},
		{"port header zero: refused", fromXFFPort, "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Real-Port": {"0"}}, ""},
		{"port header agrees with Forwarded", fromFwdPort, "10.0.0.1:4000", http.Header{"Forwarded": {`for="198.51.100.1:40001"`}, "X-Real-Port": {"40001"}}, "198.51.100.1:40001"},
		{"port header contradicts Forwarded: refused", fromFwdPort, "10.0.0.1:4000", http.Header{"Forwarded": {`for="198.51.100.1:40001"`}, "X-Real-Port": {"40002"}}, ""},
		{"port header with Forwarded without port", fromFwdPort, "10.0.0.1:4000", http.Header{"Forwarded": {`for=198.51.100.1`}, "X-Real-Port": {"40002"}}, "198.51.100.1:40002"},
	})
}

// TestClientAddressSpoofs are the audit's forgeries (issue 9): the victim
// holds 127.10.0.7 (and, behind CGNAT, 198.51.100.20 ports 40000-40999); the
// attacker sends from 203.0.113.66 (or from the same CGNAT address, port
// 50123) through a proxy at 127.0.0.1 as nginx, HAProxy and ingress-nginx
// forward. Each must resolve to the attacker's own address, never the
// victim's; the old code returned the victim.
func TestClientAddressSpoofs(t *testing.T) {
	const proxy = "127.0.0.1:34567"
	runAddressCases(t, []addressCase{
		// nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
		// the client's own Forwarded passes through untouched.
		{"client Forwarded behind an XFF proxy", nginx, proxy, http.Header{"Forwarded": {"for=127.10.0.7"}, "X-Forwarded-For": {"203.0.113.66"}}, "203.0.113.66:0"},
		{"client Forwarded IPv4-mapped", nginx, proxy, http.Header{"Forwarded": {`for="[::ffff:7f0a:7]"`}, "X-Forwarded-For": {"203.0.113.66"}}, "203.0.113.66:0"},
		{"client Forwarded For=", nginx, proxy, http.Header{"Forwarded": {"For=127.10.0.7"}, "X-Forwarded-For": {"203.0.113.66"}}, "203.0.113.66:0"},
		{"client Forwarded padded chain", nginx, proxy, http.Header{"Forwarded": {"for=127.10.0.7" + strings.Repeat(", for=127.0.0.1", 40)}, "X-Forwarded-For": {"203.0.113.66"}}, "203.0.113.66:0"},
		{"client Forwarded with the CGNAT victim's port", nginx, proxy, http.Header{"Forwarded": {`for="198.51.100.20:40001"`}, "X-Forwarded-For": {"198.51.100.20"}}, "198.51.100.20:0"},
		{"client Forwarded without any XFF", nginx, proxy, http.Header{"Forwarded": {"for=127.10.0.7"}}, ""},
		// X-Forwarded-Port is the proxy's listener port (nginx $server_port,
		// ingress-nginx $pass_port) or, passed through, the client's choice.
		{"client X-Forwarded-Port behind CGNAT", nginx, proxy, http.Header{"X-Forwarded-For": {"198.51.100.20"}, "X-Forwarded-Port": {"40001"}}, "198.51.100.20:0"},
		{"client X-Forwarded-Port before the proxy's", nginx, proxy, http.Header{"X-Forwarded-For": {"198.51.100.20"}, "X-Forwarded-Port": {"40001", "443"}}, "198.51.100.20:0"},
		{"client X-Forwarded-Port with a port header configured", nginxPort, proxy, http.Header{"X-Forwarded-For": {"198.51.100.20"}, "X-Forwarded-Port": {"40001"}, "X-Real-Port": {"50123"}}, "198.51.100.20:50123"},
		{"client X-Real-Port added to by the proxy", nginxPort, proxy, http.Header{"X-Forwarded-For": {"198.51.100.20"}, "X-Real-Port": {"40001", "50123"}}, ""},
		// nginx appends to the client's line; HAProxy adds its own line.
		{"client XFF of the victim, nginx appends", nginx, proxy, http.Header{"X-Forwarded-For": {"127.10.0.7, 203.0.113.66"}}, "203.0.113.66:0"},
		{"client XFF of the victim, HAProxy adds a line", nginx, proxy, http.Header{"X-Forwarded-For": {"127.10.0.7", "203.0.113.66"}}, "203.0.113.66:0"},
		{"client XFF padded with the proxy's address", nginx, proxy, http.Header{"X-Forwarded-For": {"127.10.0.7" + strings.Repeat(", 127.0.0.1", 40) + ", 203.0.113.66"}}, "203.0.113.66:0"},
		{"garbage left of the trusted hop, same line", nginx, proxy, http.Header{"X-Forwarded-For": {"\"[garbage, for=, 203.0.113.66"}}, "203.0.113.66:0"},
		{"garbage left of the trusted hop, own line", nginx, proxy, http.Header{"X-Forwarded-For": {"nonsense", "203.0.113.66"}}, "203.0.113.66:0"},
		// HAProxy option forwarded adds its own Forwarded line; a proxy may
		// also append to the client's line.
		{"Forwarded: client's victim left of the proxy's line", haproxyFwd, proxy, http.Header{"Forwarded": {"for=127.10.0.7", "for=203.0.113.66;proto=http"}}, "203.0.113.66:0"},
		{"Forwarded: client's CGNAT port left of the proxy's", haproxyFwd, proxy, http.Header{"Forwarded": {`for="198.51.100.20:40001", for="198.51.100.20:50123"`}}, "198.51.100.20:50123"},
		{"Forwarded: unterminated quote left of the proxy's element", haproxyFwd, proxy, http.Header{"Forwarded": {`for="127.10.0.7, for=203.0.113.66`}}, "203.0.113.66:0"},
		{"Forwarded: garbage line left of the proxy's line", haproxyFwd, proxy, http.Header{"Forwarded": {`for="\`, `;;=;"`, "for=203.0.113.66"}}, "203.0.113.66:0"},
		{"Forwarded: padded chain", haproxyFwd, proxy, http.Header{"Forwarded": {"for=127.10.0.7" + strings.Repeat(", for=127.0.0.1", 40), "for=203.0.113.66"}}, "203.0.113.66:0"},
		{"Forwarded: client's XFF not read", haproxyFwd, proxy, http.Header{"X-Forwarded-For": {"127.10.0.7"}, "Forwarded": {"for=203.0.113.66"}}, "203.0.113.66:0"},
	})
}

func TestClientAddressConfig(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name       string
		from, port string
		proxies    []netip.Prefix
		problems   []string
	}{
		{"default peer", "", "", nil, nil},
		{"peer with trusted proxies", AddressFromPeer, "", proxies, []string{"trusted proxies are set but the client address comes from the TCP peer"}},
		{"proxy protocol", AddressFromProxyProtocol, "", proxies, nil},
		{"forwarded without proxies", AddressFromForwarded, "", nil, []string{"needs the trusted proxies"}},
		{"x-forwarded-for without proxies", AddressFromXForwardedFor, "", nil, []string{"needs the trusted proxies"}},
		{"proxy protocol without proxies", AddressFromProxyProtocol, "", nil, []string{"needs the trusted proxies"}},
		{"unknown source", "x-real-ip", "", proxies, []string{`client address source "x-real-ip"`}},
		{"port header", AddressFromXForwardedFor, "x-real-port", proxies, nil},
		{"X-Forwarded-Port refused", AddressFromXForwardedFor, "x-forwarded-port", proxies, []string{"listener's port"}},
		{"port header with the peer, both problems", AddressFromPeer, "X-Real-Port", proxies, []string{"trusted proxies are set", "read only with client address from forwarded or x-forwarded-for"}},
		{"port header with proxy protocol", AddressFromProxyProtocol, "X-Real-Port", proxies, []string{"read only with"}},
		{"port header not a name", AddressFromForwarded, "X Real Port", proxies, []string{"not a header name"}},
		{"port header is the address header", AddressFromForwarded, "forwarded", proxies, []string{"carries addresses"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{ClientAddressFrom: tc.from, ClientPortHeader: tc.port, TrustedProxies: tc.proxies}.WithDefaults()
			problems := cfg.validateClientAddress()
			if len(problems) != len(tc.problems) {
				t.Fatalf("problems %v, want %d: %q", problems, len(tc.problems), tc.problems)
			}
			for i, want := range tc.problems {
				if !strings.Contains(problems[i].Error(), want) {
					t.Errorf("problem %q, want it to say %q", problems[i], want)
				}
			}
		})
	}
}

// FuzzForwarded: whatever the headers, the address is never read from an
// untrusted peer's headers, is a hop written in the configured header (or
// the peer), is never a trusted proxy's, and does not change when a client
// line is added to the left of a chain that gave an address.
func FuzzForwarded(f *testing.F) {
	for _, seed := range []struct {
		forwarded        bool
		peer, a, b, port string
	}{
		{true, "10.0.0.1:4000", `for=198.51.100.1;proto=https`, `for="[2001:db8::1]:4711"`, ""},
		{false, "10.0.0.1:4000", "198.51.100.1, 10.0.0.2", "", "40001"},
		{true, "10.0.0.1:4000", `for="\"quoted\"", for=unknown`, "for=10.0.0.3", ""},
		{false, "203.0.113.9:5555", "1.2.3.4", "1.2.3.4", "1"},
		{true, "10.0.0.1:4000", `for="198.51.100.1:40001";by="a;b,c"`, "", "40001"},
		{false, "10.0.0.1:4000", `"[garbage`, "198.51.100.1", ""},
		{true, "10.0.0.1:4000", `for="127.10.0.7, for=203.0.113.66`, `for=10.0.0.2`, ""},
	} {
		f.Add(seed.forwarded, seed.peer, seed.a, seed.b, seed.port)
	}
	f.Fuzz(func(t *testing.T, forwarded bool, peer, line1, line2, port string) {
		source, name := fromXFFPort, "X-Forwarded-For"
		if forwarded {
			source, name = fromFwdPort, "Forwarded"
		}
		header := http.Header{}
		for _, line := range []string{line1, line2} {
			if line != "" {
				header.Add(name, line)
			}
		}
		if port != "" {
			header.Set("X-Real-Port", port)
		}
		got, err := source.of(&http.Request{RemoteAddr: peer, Header: header.Clone()})
		if err != nil {
			if !errors.Is(err, errNoClientAddress) {
				t.Fatalf("error %v is not errNoClientAddress", err)
			}
			return
		}
		if !got.Addr().IsValid() || got.Addr().Zone() != "" || got.Addr().Is4In6() {
			t.Fatalf("invalid address %v", got)
		}
		p, perr := netip.ParseAddrPort(peer)
		if perr != nil {
			t.Fatalf("peer %q unreadable, yet %v", peer, got)
		}
		if !testTrusted.contains(p.Addr()) {
			if got != netip.AddrPortFrom(p.Addr().Unmap(), p.Port()) {
				t.Fatalf("untrusted peer %s, but %v chosen", peer, got)
			}
			return
		}
		if testTrusted.contains(got.Addr()) {
			t.Fatalf("a trusted proxy's address %v chosen", got)
		}
		if !mentions(line1+","+line2, got.Addr()) {
			t.Fatalf("address %v is not in the %s header", got, name)
		}
		// A line the client wrote before the proxies' lines changes nothing.
		header2 := http.Header{name: append([]string{`"for=\"` + line2}, header.Values(name)...)}
		if port != "" {
			header2.Set("X-Real-Port", port)
		}
		again, err := source.of(&http.Request{RemoteAddr: peer, Header: header2})
		if err != nil || again != got {
			t.Fatalf("a client line on the left changed %v into %v, %v", got, again, err)
		}
	})
}

// mentions reports whether some token of the header text parses as a (also
// non-canonical, bracketed, ported or IPv4-mapped) form of a.
func mentions(s string, a netip.Addr) bool {
	// A quoted-pair (RFC 7230 §3.2.6) stands for the character after the
	// backslash: `"\1.2.3.4"` names 1.2.3.4.
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	s = b.String()
	for _, token := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(",; =\"\t", r) }) {
		if ap, err := netip.ParseAddrPort(token); err == nil && ap.Addr().Unmap() == a {
			return true
		}
		if b, err := netip.ParseAddr(strings.Trim(token, "[]")); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

func TestParseLoginHint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind loginHintKind
		ok   bool
	}{
		{"", hintNone, true},
		{"tel:+33612345678", hintPhone, true},
		{"+33612345678", hintPhone, true},
		{"ipport:203.0.113.7:40001", hintAddress, true},
		{"ipport:[2001:db8::1]:40001", hintAddress, true},
		{"ipport:2001:db8::1", hintAddress, true},
		{"ipport:203.0.113.7", hintAddress, true},
		{"tel:0612345678", hintNone, false},
		{"33612345678", hintNone, false},
		{"user@example.com", hintNone, false},
		{"ipport:nonsense", hintNone, false},
		{"tel:+33 6 12 34 56 78", hintNone, false},
		{"ipport:" + strings.Repeat("1", 200), hintNone, false},
	} {
		got, err := parseLoginHint(tc.in)
		if (err == nil) != tc.ok || got.kind != tc.kind {
			t.Errorf("parseLoginHint(%q) = %+v, %v; want kind %d ok %v", tc.in, got, err, tc.kind, tc.ok)
		}
	}
}

// FuzzLoginHint: never panics; an accepted phone hint is E.164 and an
// accepted address hint a valid address.
func FuzzLoginHint(f *testing.F) {
	for _, s := range []string{"tel:+33612345678", "+33612345678", "ipport:[2001:db8::1]:40001", "ipport:203.0.113.7", "tel:", "ipport:", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseLoginHint(s)
		if err != nil {
			return
		}
		switch h.kind {
		case hintPhone:
			if !strings.HasPrefix(h.phone, "+") || len(h.phone) > 16 {
				t.Fatalf("%q accepted as %q", s, h.phone)
			}
		case hintAddress:
			if !h.address.Addr().IsValid() {
				t.Fatalf("%q accepted as %v", s, h.address)
			}
		case hintNone:
			if s != "" {
				t.Fatalf("%q accepted as no hint", s)
			}
		}
	})
}
