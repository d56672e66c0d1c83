// Package network is the simulated mobile core: which subscriber (MSISDN)
// holds which address, and behind CGNAT which port block, during which
// period. The authorization server sees it only through Resolver.
package network

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrNotFound means no session held the address (and port) at that instant:
// the device is not on this mobile network (Wi-Fi, VPN, another operator).
var ErrNotFound = errors.New("network: no session holds this address")

// PortRange is an inclusive range of ports; 0-65535 when not behind CGNAT.
type PortRange struct {
	Low  uint16 `json:"low"`
	High uint16 `json:"high"`
}

// Session is one attachment of a subscriber to the network.
type Session struct {
	ID     int64        `json:"id"`
	MSISDN string       `json:"msisdn"`
	IP     netip.Prefix `json:"ip"`    // a /32, an IPv6 /128, or an IPv6 /64 prefix
	Ports  PortRange    `json:"ports"` // the whole range unless behind CGNAT
	Start  time.Time    `json:"started_at"`
	End    *time.Time   `json:"ended_at,omitempty"` // nil while attached
	APN    string       `json:"apn"`
	RAT    string       `json:"rat"`
	IMSI   string       `json:"imsi,omitempty"`
}

// Resolver answers "who held this address and port at this instant?".
// It returns ErrNotFound when nobody did; any other error means the answer
// is unknown (the database is unreachable) and must not be taken as "nobody".
type Resolver interface {
	Resolve(ctx context.Context, addr netip.Addr, port uint16, at time.Time) (Session, error)
}
