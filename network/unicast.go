package network

import (
	"fmt"
	"net/netip"
)

// Addresses no subscriber can hold: a session's address is the source
// address of the device's packets, so it must be unicast.
var (
	limitedBroadcast = netip.MustParseAddr("255.255.255.255")
	// nonUnicastRanges are the ranges a pool must not overlap.
	nonUnicastRanges = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),   // "this network" (RFC 1122), 0.0.0.0 unspecified
		netip.MustParsePrefix("224.0.0.0/4"), // IPv4 multicast
		netip.PrefixFrom(limitedBroadcast, 32),
		netip.MustParsePrefix("::/128"),   // IPv6 unspecified
		netip.MustParsePrefix("ff00::/8"), // IPv6 multicast
	}
)

// CheckUnicast refuses a session address that is not a unicast address:
// unspecified (0.0.0.0, ::), multicast (link-local multicast included) or
// the limited broadcast 255.255.255.255.
func CheckUnicast(p netip.Prefix) error {
	addr := p.Addr()
	switch {
	case addr.IsUnspecified():
		return fmt.Errorf("%w: address %s: the unspecified address is no device's address", ErrInvalid, FormatAddress(p))
	case addr.IsMulticast():
		return fmt.Errorf("%w: address %s: a multicast address is no device's address", ErrInvalid, FormatAddress(p))
	case addr == limitedBroadcast:
		return fmt.Errorf("%w: address %s: the broadcast address is no device's address", ErrInvalid, FormatAddress(p))
	}
	return nil
}

// checkUnicastPool refuses a pool (or CGNAT address) that overlaps the
// unspecified, multicast or broadcast ranges.
func checkUnicastPool(what string, p netip.Prefix) error {
	for _, r := range nonUnicastRanges {
		if p.Overlaps(r) {
			return fmt.Errorf("%s %s: overlaps %s, which holds no unicast address", what, p, r)
		}
	}
	return nil
}
