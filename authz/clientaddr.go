package authz

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Where the device is: the TCP peer, unless the peer is a trusted proxy, in
// which case the proxies' headers say who their client was. Only the
// headers' right-most entries are believed, and only as far back as the
// chain of trusted proxies reaches: the first address, from the right, that
// is not a trusted proxy is the client. Everything to its left was written
// by the client itself (or by proxies we do not know) and is ignored.

// maxForwardedHops bounds the work spent on a header.
const maxForwardedHops = 32

var errNoClientAddress = errors.New("client address cannot be determined from the forwarding headers")

// trustedProxies is the set of peers whose forwarding headers are believed.
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

// clientAddress returns the device's address and source port (0 when not
// known) for r.
func clientAddress(r *http.Request, trusted trustedProxies) (netip.AddrPort, error) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPort{}, errNoClientAddress
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if !trusted.contains(peer.Addr()) {
		return peer, nil
	}
	if values := r.Header.Values("Forwarded"); len(values) > 0 {
		hops, err := parseForwarded(strings.Join(values, ","))
		if err != nil {
			return netip.AddrPort{}, err
		}
		return pickHop(hops, trusted, peer)
	}
	if values := r.Header.Values("X-Forwarded-For"); len(values) > 0 {
		hops, err := parseXForwardedFor(strings.Join(values, ","))
		if err != nil {
			return netip.AddrPort{}, err
		}
		// X-Forwarded-Port is written by the nearest proxy about its own
		// peer, so it belongs to the right-most entry only.
		if port, ok := parsePort(r.Header.Get("X-Forwarded-Port")); ok && len(hops) > 0 {
			last := hops[len(hops)-1]
			if last.Port() == 0 {
				hops[len(hops)-1] = netip.AddrPortFrom(last.Addr(), port)
			}
		}
		return pickHop(hops, trusted, peer)
	}
	return peer, nil
}

// pickHop walks hops from the right and returns the first one that is not a
// trusted proxy; when every hop is trusted, the left-most one.
func pickHop(hops []netip.AddrPort, trusted trustedProxies, peer netip.AddrPort) (netip.AddrPort, error) {
	if len(hops) == 0 {
		return peer, nil
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if !trusted.contains(hops[i].Addr()) {
			return hops[i], nil
		}
	}
	return hops[0], nil
}

// parseXForwardedFor parses "client, proxy1, proxy2" (each an address,
// optionally with a port).
func parseXForwardedFor(header string) ([]netip.AddrPort, error) {
	parts := strings.Split(header, ",")
	if len(parts) > maxForwardedHops {
		parts = parts[len(parts)-maxForwardedHops:]
	}
	hops := make([]netip.AddrPort, 0, len(parts))
	for _, part := range parts {
		hop, ok := parseNode(strings.TrimSpace(part))
		if !ok {
			return nil, errNoClientAddress
		}
		hops = append(hops, hop)
	}
	return hops, nil
}

// parseForwarded parses the "for" parameters of an RFC 7239 Forwarded
// header, in order. An element without "for" or with an obfuscated or
// "unknown" node makes the chain unusable.
func parseForwarded(header string) ([]netip.AddrPort, error) {
	elements := splitQuoted(header, ',')
	if len(elements) > maxForwardedHops {
		elements = elements[len(elements)-maxForwardedHops:]
	}
	hops := make([]netip.AddrPort, 0, len(elements))
	for _, element := range elements {
		var node string
		found := false
		for _, pair := range splitQuoted(element, ';') {
			name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok {
				if strings.TrimSpace(pair) == "" {
					continue
				}
				return nil, errNoClientAddress
			}
			if !strings.EqualFold(strings.TrimSpace(name), "for") {
				continue
			}
			if found {
				return nil, errNoClientAddress // "for" twice in one element
			}
			v, ok := unquote(strings.TrimSpace(value))
			if !ok {
				return nil, errNoClientAddress
			}
			node, found = v, true
		}
		if !found {
			return nil, errNoClientAddress
		}
		hop, ok := parseNode(node)
		if !ok {
			return nil, errNoClientAddress
		}
		hops = append(hops, hop)
	}
	return hops, nil
}

// parseNode parses an RFC 7239 node: 192.0.2.43, 192.0.2.43:4711,
// [2001:db8::1], [2001:db8::1]:4711, or a bare IPv6 address (as proxies write
// in X-Forwarded-For).
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
