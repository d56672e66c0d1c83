package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// PoolKind names the pool an address is allocated from.
type PoolKind string

// The allocation pools.
const (
	// PoolIPv4: one host address of an IPv4 CIDR, with every port.
	PoolIPv4 PoolKind = "ipv4"
	// PoolIPv6: one /64 prefix carved from an IPv6 prefix (a /48).
	PoolIPv6 PoolKind = "ipv6"
	// PoolCGNAT: a block of ports of one public IPv4 address shared by many
	// subscribers (carrier-grade NAT).
	PoolCGNAT PoolKind = "cgnat"
)

// Defaults for CGNAT port blocks: 1024-2047, 2048-3071, …
const (
	DefaultCGNATBlockSize = 1024
	DefaultCGNATFirstPort = 1024
)

// Pools configures where Attach allocates addresses when none is given.
// A zero field means that pool does not exist.
type Pools struct {
	IPv4           netip.Prefix // host addresses of this CIDR (network and broadcast skipped below /31)
	IPv6           netip.Prefix // /64 prefixes carved from this one (e.g. a /48)
	CGNATAddress   netip.Addr   // the shared public IPv4 address
	CGNATBlockSize int          // ports per subscriber; 0 means DefaultCGNATBlockSize
	CGNATFirstPort int          // first port of the first block; 0 means DefaultCGNATFirstPort
}

// Validate reports every problem of the configuration at once.
func (p Pools) Validate() error {
	var problems []error
	if p.IPv4.IsValid() && (!p.IPv4.Addr().Is4() || p.IPv4.Bits() < 8) {
		problems = append(problems, fmt.Errorf("IPv4 pool %s: must be an IPv4 CIDR of /8 or longer", p.IPv4))
	}
	if p.IPv6.IsValid() && (!p.IPv6.Addr().Is6() || p.IPv6.Addr().Is4In6() || p.IPv6.Bits() < 16 || p.IPv6.Bits() > 64) {
		problems = append(problems, fmt.Errorf("IPv6 pool %s: must be an IPv6 prefix between /16 and /64 (a /48 gives 65,536 /64s)", p.IPv6))
	}
	if p.CGNATAddress.IsValid() {
		if !p.CGNATAddress.Is4() {
			problems = append(problems, fmt.Errorf("CGNAT address %s: must be an IPv4 address", p.CGNATAddress))
		} else if p.IPv4.IsValid() && p.IPv4.Contains(p.CGNATAddress) {
			problems = append(problems, fmt.Errorf("CGNAT address %s: must lie outside the IPv4 pool %s", p.CGNATAddress, p.IPv4))
		}
	}
	for _, pool := range []struct {
		what   string
		prefix netip.Prefix
	}{{"IPv4 pool", p.IPv4}, {"IPv6 pool", p.IPv6}, {"CGNAT address", netip.PrefixFrom(p.CGNATAddress, p.CGNATAddress.BitLen())}} {
		if pool.prefix.IsValid() {
			if err := checkUnicastPool(pool.what, pool.prefix.Masked()); err != nil {
				problems = append(problems, err)
			}
		}
	}
	size, first := p.cgnatBlockSize(), p.cgnatFirstPort()
	if size < 1 || size > 65536 {
		problems = append(problems, fmt.Errorf("CGNAT block size %d: must be between 1 and 65536", size))
	}
	if first < 1 || first > 65535 {
		problems = append(problems, fmt.Errorf("CGNAT first port %d: must be between 1 and 65535", first))
	}
	if p.CGNATAddress.IsValid() && size >= 1 && first >= 1 && first+size > 65536 {
		problems = append(problems, fmt.Errorf("CGNAT block size %d from port %d: not even one block fits", size, first))
	}
	return errors.Join(problems...)
}

func (p Pools) cgnatBlockSize() int {
	if p.CGNATBlockSize == 0 {
		return DefaultCGNATBlockSize
	}
	return p.CGNATBlockSize
}

func (p Pools) cgnatFirstPort() int {
	if p.CGNATFirstPort == 0 {
		return DefaultCGNATFirstPort
	}
	return p.CGNATFirstPort
}

// candidate is one allocatable (address, ports) pair.
type candidate struct {
	ip    netip.Prefix
	ports PortRange
}

// pool enumerates the candidates of one kind: at(i) for i in [0, size).
type pool struct {
	size uint64
	at   func(i uint64) candidate
}

// pool returns the candidates of kind, or ErrPoolNotConfigured.
func (p Pools) pool(kind PoolKind) (pool, error) {
	switch kind {
	case PoolIPv4:
		if p.IPv4.IsValid() {
			return ipv4Pool(p.IPv4.Masked()), nil
		}
	case PoolIPv6:
		if p.IPv6.IsValid() {
			return ipv6Pool(p.IPv6.Masked()), nil
		}
	case PoolCGNAT:
		if p.CGNATAddress.IsValid() {
			return cgnatPool(p.CGNATAddress, p.cgnatFirstPort(), p.cgnatBlockSize()), nil
		}
	default:
		return pool{}, fmt.Errorf("%w: pool %q: must be ipv4, ipv6 or cgnat", ErrInvalid, kind)
	}
	return pool{}, fmt.Errorf("%w: %s", ErrPoolNotConfigured, kind)
}

func ipv4Pool(cidr netip.Prefix) pool {
	b := cidr.Addr().As4()
	base := binary.BigEndian.Uint32(b[:])
	hostBits := 32 - cidr.Bits()
	size := uint64(1) << hostBits
	if hostBits >= 2 { // skip the network and broadcast addresses
		base++
		size -= 2
	}
	return pool{size: size, at: func(i uint64) candidate {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], base+uint32(i))
		return candidate{ip: netip.PrefixFrom(netip.AddrFrom4(a), 32), ports: AllPorts}
	}}
}

func ipv6Pool(prefix netip.Prefix) pool {
	b := prefix.Addr().As16()
	high := binary.BigEndian.Uint64(b[:8])
	return pool{size: uint64(1) << (64 - prefix.Bits()), at: func(i uint64) candidate {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], high+i)
		return candidate{ip: netip.PrefixFrom(netip.AddrFrom16(a), 64), ports: AllPorts}
	}}
}

func cgnatPool(addr netip.Addr, first, size int) pool {
	ip := netip.PrefixFrom(addr, 32)
	return pool{size: uint64((65536 - first) / size), at: func(i uint64) candidate {
		low := first + int(i)*size
		return candidate{ip: ip, ports: PortRange{Low: uint16(low), High: uint16(low + size - 1)}}
	}}
}
