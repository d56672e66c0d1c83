package authz

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Where the device is. The operator names exactly one source
// (Config.ClientAddressFrom) and nothing else is ever read:
//
//   - peer: the TCP peer, address and port;
//   - proxy-protocol: the TCP peer as the listener rewrote it from the PROXY
//     protocol header of a trusted L4 balancer (httpx.ProxyProtocolListener),
//     address and port;
//   - forwarded: the RFC 7239 Forwarded header, from a trusted proxy;
//   - x-forwarded-for: the X-Forwarded-For header, from a trusted proxy.
//
// A header chain is read from the right, one element at a time, up to the
// first hop that is not a trusted proxy: that hop is the client. Everything
// to its left was written by the client (or by proxies we do not know) and is
// never parsed, so it can neither choose the address nor make the chain
// unreadable. Header lines are taken in order, last line first: a proxy that
// appends to the client's line (nginx's $proxy_add_x_forwarded_for) and one
// that adds its own line (HAProxy's option forwardfor) read the same.
//
// The source port, which decides the subscriber behind CGNAT, comes only
// from a source that carries the client's own port: the PROXY protocol, the
// TCP peer, a Forwarded "for" node with a port, or the header the operator
// names (Config.ClientPortHeader) as written by the nearest trusted proxy.
// X-Forwarded-Port is the proxy's listener port in every common proxy: it is
// never read.

// Sources of the device's address (Config.ClientAddressFrom).
const (
	AddressFromPeer          = "peer"
	AddressFromProxyProtocol = "proxy-protocol"
	AddressFromForwarded     = "forwarded"
	AddressFromXForwardedFor = "x-forwarded-for"
)

// clientAddressSources lists the accepted values of Config.ClientAddressFrom.
var clientAddressSources = []string{AddressFromPeer, AddressFromProxyProtocol, AddressFromForwarded, AddressFromXForwardedFor}

// maxForwardedHops bounds the work spent on a header: a chain of more
// trusted proxies than this is refused.
const maxForwardedHops = 32

// errNoClientAddress is what every failure to tell the client's address
// Is: the login is refused (access_denied) and the rate limits count it in a
// bucket of its own.
var errNoClientAddress = errors.New("client address cannot be determined")

// addressError says why the address cannot be told; its text never holds
// what the client sent.
type addressError struct{ source, reason string }

func (e *addressError) Error() string {
	return "client address from " + e.source + ": " + e.reason
}

func (e *addressError) Is(target error) bool { return target == errNoClientAddress }

// trustedProxies is the set of peers whose forwarding information is
// believed.
type trustedProxies []netip.Prefix

func (t trustedProxies) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addressSource reads the device's address from the one source configured.
type addressSource struct {
	from       string
	trusted    trustedProxies
	portHeader string // canonical header name; "" when none
}

func newAddressSource(cfg Config) addressSource {
	a := addressSource{from: cfg.ClientAddressFrom, trusted: trustedProxies(cfg.TrustedProxies)}
	if cfg.ClientPortHeader != "" {
		a.portHeader = http.CanonicalHeaderKey(cfg.ClientPortHeader)
	}
	return a
}

// clientAddress returns the device's address and source port (0 when not
// known) for r; an error Is errNoClientAddress.
func (s *Server) clientAddress(r *http.Request) (netip.AddrPort, error) {
	return s.address.of(r)
}

func (a addressSource) of(r *http.Request) (netip.AddrPort, error) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPort{}, &addressError{a.from, "the peer address is not an IP address and port"}
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	switch a.from {
	case AddressFromForwarded, AddressFromXForwardedFor:
		if a.trusted.contains(peer.Addr()) {
			return a.fromHeader(r)
		}
	}
	// peer, or proxy-protocol: the listener has put the PROXY header's
	// source in RemoteAddr (or refused the connection).
	return peer, nil
}

// fromHeader walks the configured header from the right to the first hop
// that is not a trusted proxy.
func (a addressSource) fromHeader(r *http.Request) (netip.AddrPort, error) {
	name, parse, quoted := "X-Forwarded-For", parseXForwardedForHop, false
	if a.from == AddressFromForwarded {
		name, parse, quoted = "Forwarded", parseForwardedHop, true
	}
	walk := hopWalker{lines: slices.Clone(r.Header.Values(name)), quoted: quoted}
	for i := 0; i < maxForwardedHops; i++ {
		element, ok := walk.next()
		if !ok {
			return netip.AddrPort{}, &addressError{a.from, "no hop outside the trusted proxies"}
		}
		hop, err := parse(element)
		if err != nil {
			return netip.AddrPort{}, &addressError{a.from, err.Error()}
		}
		if !a.trusted.contains(hop.Addr()) {
			return a.withPort(r, hop, i == 0)
		}
	}
	return netip.AddrPort{}, &addressError{a.from, "more trusted hops than " + strconv.Itoa(maxForwardedHops)}
}

// withPort adds the port from the port header to the client's hop, when
// the nearest proxy wrote both (nearest: the hop is its peer). A port header
// sent more than once, or unreadable, makes the address unusable.
func (a addressSource) withPort(r *http.Request, hop netip.AddrPort, nearest bool) (netip.AddrPort, error) {
	if a.portHeader == "" || !nearest {
		return hop, nil
	}
	values := r.Header.Values(a.portHeader)
	switch len(values) {
	case 0:
		return hop, nil
	case 1:
	default:
		return netip.AddrPort{}, &addressError{a.from, "the port header appears more than once"}
	}
	port, ok := parsePort(values[0])
	if !ok {
		return netip.AddrPort{}, &addressError{a.from, "the port header is not a port"}
	}
	if hop.Port() != 0 && hop.Port() != port {
		return netip.AddrPort{}, &addressError{a.from, "the port header contradicts the forwarded port"}
	}
	return netip.AddrPortFrom(hop.Addr(), port), nil
}

// hopWalker yields the elements of a comma-separated header list from the
// right: the last line first, each line from its end. With quoted, commas
// inside RFC 7230 quoted-strings do not separate. It looks at no byte left
// of the element it returns, so what a client wrote further left cannot
// change the elements right of it. Empty elements are skipped (RFC 7230
// §7).
type hopWalker struct {
	lines  []string
	quoted bool
}

func (w *hopWalker) next() (string, bool) {
	for len(w.lines) > 0 {
		last := len(w.lines) - 1
		line := w.lines[last]
		cut := w.lastSeparator(line)
		element := line[cut+1:]
		if cut < 0 {
			w.lines = w.lines[:last]
		} else {
			w.lines[last] = line[:cut]
		}
		if element = strings.TrimSpace(element); element != "" {
			return element, true
		}
	}
	return "", false
}

// lastSeparator is the index of the last comma of line outside quoted
// strings (scanning from the end), or -1.
func (w *hopWalker) lastSeparator(line string) int {
	if !w.quoted {
		return strings.LastIndexByte(line, ',')
	}
	inQuotes := false
	for i := len(line) - 1; i >= 0; i-- {
		switch line[i] {
		case '"':
			backslashes := 0
			for j := i - 1; j >= 0 && line[j] == '\\'; j-- {
				backslashes++
			}
			if backslashes%2 == 0 { // not an escaped quote
				inQuotes = !inQuotes
			}
		case ',':
			if !inQuotes {
				return i
			}
		}
	}
	return -1
}

// Reasons a hop cannot be read, never quoting it.
var (
	errHopNotAddress = errors.New("a hop is not an IP address")
	errHopSyntax     = errors.New("a Forwarded element is malformed")
	errHopNoFor      = errors.New(`a Forwarded element has no "for"`)
	errHopTwoFor     = errors.New(`a Forwarded element has "for" twice`)
)

// parseXForwardedForHop parses one X-Forwarded-For entry: an IPv4 or IPv6
// address. A port some proxies add is dropped: X-Forwarded-For is not a
// source of ports (use PROXY protocol or Config.ClientPortHeader).
func parseXForwardedForHop(entry string) (netip.AddrPort, error) {
	hop, ok := parseNode(entry)
	if !ok {
		return netip.AddrPort{}, errHopNotAddress
	}
	return netip.AddrPortFrom(hop.Addr(), 0), nil
}

// parseForwardedHop parses the "for" node of one RFC 7239 Forwarded
// element (parameter names are case-insensitive). An element without
// "for", or with an obfuscated or "unknown" node, is unreadable.
func parseForwardedHop(element string) (netip.AddrPort, error) {
	var node string
	found := false
	for _, pair := range splitQuoted(element, ';') {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return netip.AddrPort{}, errHopSyntax
		}
		if !strings.EqualFold(strings.TrimSpace(name), "for") {
			continue
		}
		if found {
			return netip.AddrPort{}, errHopTwoFor
		}
		v, ok := unquote(strings.TrimSpace(value))
		if !ok {
			return netip.AddrPort{}, errHopSyntax
		}
		node, found = v, true
	}
	if !found {
		return netip.AddrPort{}, errHopNoFor
	}
	hop, ok := parseNode(node)
	if !ok {
		return netip.AddrPort{}, errHopNotAddress
	}
	return hop, nil
}

// parseNode parses an RFC 7239 node: 192.0.2.43, 192.0.2.43:4711,
// [2001:db8::1], [2001:db8::1]:4711, or a bare IPv6 address (as proxies write
// in X-Forwarded-For). IPv4-mapped addresses are unmapped; zones refused.
func parseNode(node string) (netip.AddrPort, bool) {
	if node == "" || len(node) > 64 {
		return netip.AddrPort{}, false
	}
	if ap, err := netip.ParseAddrPort(node); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.Addr().Zone() == ""
	}
	if strings.HasPrefix(node, "[") && strings.HasSuffix(node, "]") {
		node = node[1 : len(node)-1]
	}
	a, err := netip.ParseAddr(node)
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), 0), true
}

func parsePort(s string) (uint16, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint16(n), true
}

// splitQuoted splits s on sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var parts []string
	inQuotes, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuotes && c == '\\':
			escaped = true
		case c == '"':
			inQuotes = !inQuotes
		case !inQuotes && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquote returns a token as is, or the content of a quoted-string with its
// escapes removed.
func unquote(v string) (string, bool) {
	if !strings.HasPrefix(v, `"`) {
		return v, !strings.ContainsAny(v, "\" \t")
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) {
		return "", false
	}
	var b strings.Builder
	inner := v[1 : len(v)-1]
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if c == '\\' {
			if i+1 == len(inner) {
				return "", false
			}
			i++
			c = inner[i]
		} else if c == '"' {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// validateClientAddress checks the address source against the trusted
// proxies and the port header (part of Config.Validate).
func (c Config) validateClientAddress() []error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	switch {
	case !slices.Contains(clientAddressSources, c.ClientAddressFrom):
		add("client address source %q: want one of %s", c.ClientAddressFrom, strings.Join(clientAddressSources, ", "))
	case c.ClientAddressFrom == AddressFromPeer && len(c.TrustedProxies) > 0:
		add("trusted proxies are set but the client address comes from the TCP peer: name the proxies' source (%s)",
			strings.Join(clientAddressSources[1:], ", "))
	case c.ClientAddressFrom != AddressFromPeer && len(c.TrustedProxies) == 0:
		add("client address from %s: needs the trusted proxies that send it", c.ClientAddressFrom)
	}
	if c.ClientPortHeader == "" {
		return problems
	}
	name := http.CanonicalHeaderKey(c.ClientPortHeader)
	switch {
	case !validHeaderName(c.ClientPortHeader):
		add("client port header %q: not a header name", c.ClientPortHeader)
	case name == "X-Forwarded-Port":
		add("client port header X-Forwarded-Port: proxies put their listener's port there, never the device's")
	case name == "Forwarded" || name == "X-Forwarded-For":
		add("client port header %s: carries addresses, not a port", name)
	case c.ClientAddressFrom != AddressFromForwarded && c.ClientAddressFrom != AddressFromXForwardedFor:
		add("client port header %s: read only with client address from %s or %s", name, AddressFromForwarded, AddressFromXForwardedFor)
	}
	return problems
}

// validHeaderName reports whether s is an RFC 7230 token.
func validHeaderName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
