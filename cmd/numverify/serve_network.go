package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"

	"github.com/numverify/numverify/network"
)

// networkPoolFlags are where the simulated core allocates addresses; `serve
// network` and `network attach` share them (and their NUMVERIFY_NETWORK_…
// variables), so both allocate from the same pools. An empty value disables
// that pool.
type networkPoolFlags struct {
	ipv4, ipv6, cgnatAddress string
	cgnatBlockSize           int
}

func addNetworkPoolFlags(fs *flag.FlagSet) *networkPoolFlags {
	f := &networkPoolFlags{}
	fs.StringVar(&f.ipv4, "network-ipv4-pool", "127.10.0.0/16", "IPv4 CIDR whose host addresses are allocated to sessions (on loopback each simulated device can send from its own)")
	fs.StringVar(&f.ipv6, "network-ipv6-pool", "fd00:6e76::/48", "IPv6 prefix (a /48) carved into the /64 prefixes allocated to sessions")
	fs.StringVar(&f.cgnatAddress, "network-cgnat-address", "127.20.0.1", "public IPv4 address shared behind CGNAT; each session gets a block of its ports")
	fs.IntVar(&f.cgnatBlockSize, "network-cgnat-block-size", network.DefaultCGNATBlockSize, "ports per CGNAT session (blocks 1024-2047, 2048-3071, … for 1024)")
	return f
}

// pools parses and validates the flags, reporting every problem at once.
func (f *networkPoolFlags) pools() (network.Pools, error) {
	var p network.Pools
	var problems []error
	var err error
	if f.ipv4 != "" {
		if p.IPv4, err = netip.ParsePrefix(f.ipv4); err != nil {
			problems = append(problems, fmt.Errorf("--network-ipv4-pool %q: not a CIDR", f.ipv4))
		}
	}
	if f.ipv6 != "" {
		if p.IPv6, err = netip.ParsePrefix(f.ipv6); err != nil {
			problems = append(problems, fmt.Errorf("--network-ipv6-pool %q: not a prefix", f.ipv6))
		}
	}
	if f.cgnatAddress != "" {
		if p.CGNATAddress, err = netip.ParseAddr(f.cgnatAddress); err != nil {
			problems = append(problems, fmt.Errorf("--network-cgnat-address %q: not an IP address", f.cgnatAddress))
		}
	}
	p.CGNATBlockSize = f.cgnatBlockSize
	if len(problems) == 0 {
		if err := p.Validate(); err != nil {
			problems = append(problems, err)
		}
	}
	return p, errors.Join(problems...)
}

// sharedBoolFlag defines the boolean flag name unless another component of
// the same flag set already did (serve runs all three servers on one set),
// and returns a function reading its parsed value.
func sharedBoolFlag(fs *flag.FlagSet, name, usage string) func() bool {
	if fs.Lookup(name) == nil {
		fs.Bool(name, false, usage)
	}
	return func() bool {
		getter, ok := fs.Lookup(name).Value.(flag.Getter)
		if !ok {
			return false
		}
		v, _ := getter.Get().(bool)
		return v
	}
}

// networkServeFlags registers the network admin API's flags and returns its builder.
func networkServeFlags(fs *flag.FlagSet) buildServer {
	addr := fs.String("network-addr", "127.0.0.1:9092",
		"listen address of the network admin API (loopback by default: whoever reaches it decides who is logged in; e.g. :9092 in a container)")
	token := fs.String("network-admin-token", "", fmt.Sprintf(
		"bearer token the network admin API requires, at least %d characters (required unless --insecure-dev)", network.MinAdminTokenLength))
	insecure := sharedBoolFlag(fs, "insecure-dev", "development only: relax security checks (the network admin API runs without a token when none is set)")
	poolFlags := addNetworkPoolFlags(fs)
	radiusFlags := addRadiusFlags(fs)
	entitlementFlags := addEntitlementFlags(fs)
	return func(ctx context.Context, deps serveDeps) (*server, error) {
		pools, err := poolFlags.pools()
		if err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		if *token == "" && !insecure() {
			return nil, errors.New("network: --network-admin-token (NUMVERIFY_NETWORK_ADMIN_TOKEN) is required; --insecure-dev runs the admin API without one")
		}
		if len(*token) < network.MinAdminTokenLength && *token != "" && !insecure() {
			return nil, fmt.Errorf("network: --network-admin-token (NUMVERIFY_NETWORK_ADMIN_TOKEN) must be at least %d characters (openssl rand -hex 16); --insecure-dev accepts a shorter one",
				network.MinAdminTokenLength)
		}
		store, err := network.NewStore(deps.Pool, pools)
		if err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		admin, err := network.NewAdmin(store, network.AdminConfig{Token: *token, Insecure: insecure(), Logger: deps.Logger})
		if err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		switch {
		case *token == "":
			deps.Logger.Warn("network admin API runs without authentication (--insecure-dev)")
		case len(*token) < network.MinAdminTokenLength:
			deps.Logger.Warn("network admin API runs with a short token (--insecure-dev)")
		}
		accounting, err := radiusFlags.start(store, deps)
		if err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		entitlementServer, err := entitlementFlags.server(store, deps)
		if err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		s := &server{name: "network", addr: *addr, handler: admin, background: accounting}
		if entitlementServer != nil {
			s.companions = []*server{entitlementServer}
		}
		return s, nil
	}
}
