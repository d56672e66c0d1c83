package sim

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"

	"github.com/numverify/numverify/internal/phone"
	"github.com/numverify/numverify/network/radius/threegpp"
)

// Gateway is a packet gateway (GGSN, PGW, SMF) as the network feed sees it:
// it tells the RADIUS accounting server (RFC 2866, 3GPP TS 29.061) that a
// subscriber's data session started at an address, and that it stopped.
// The server answers only once the change is durable, so a nil error means
// the session table has it; a request is retransmitted (the same packet, so
// the server counts it once) every Timeout until Retries are spent.
type Gateway struct {
	Addr    string        // the accounting server, host:port
	Secret  string        // the shared secret
	NAS     string        // NAS-Identifier; default DefaultGatewayNAS
	APN     string        // Called-Station-Id; default "internet"
	RAT     string        // 3GPP-RAT-Type by name (GSM, UMTS, LTE, NB-IOT, LTE-M, NR); default NR
	Timeout time.Duration // retransmit after; default 2 s
	Retries int           // retransmissions before giving up; default 2, negative for none
}

// DefaultGatewayNAS names the simulated gateway when Gateway.NAS is empty:
// a session is the NAS's, so its Stop must come from the same name.
const DefaultGatewayNAS = "numverify-gateway"

// ratTypes are the 3GPP-RAT-Type values (TS 29.061 §16.4.7) the network
// records by name.
var ratTypes = map[string]byte{"UMTS": 1, "GSM": 2, "LTE": 6, "NB-IOT": 8, "LTE-M": 9, "NR": 10}

// NewAcctSessionID makes an Acct-Session-Id no other session of the NAS has.
func NewAcctSessionID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start opens a data session for msisdn (E.164) at addr (for IPv6, its /64)
// under a new Acct-Session-Id, which it returns.
func (g *Gateway) Start(ctx context.Context, msisdn string, addr netip.Addr) (string, error) {
	id := NewAcctSessionID()
	return id, g.StartSession(ctx, id, msisdn, addr)
}

// StartSession sends the Start of the session sessionID.
func (g *Gateway) StartSession(ctx context.Context, sessionID, msisdn string, addr netip.Addr) error {
	req, err := g.request(rfc2866.AcctStatusType_Value_Start, sessionID, msisdn, addr)
	if err != nil {
		return err
	}
	if req.digits == "" || !req.ip.IsValid() {
		return errors.New("radius gateway: a Start needs the number and the address")
	}
	return g.exchange(ctx, req, "Start")
}

// Stop ends the session sessionID. The number and address are optional (the
// server closes the NAS's session of that id), as a gateway sends them.
func (g *Gateway) Stop(ctx context.Context, sessionID, msisdn string, addr netip.Addr) error {
	req, err := g.request(rfc2866.AcctStatusType_Value_Stop, sessionID, msisdn, addr)
	if err != nil {
		return err
	}
	return g.exchange(ctx, req, "Stop")
}

// request checks the settings and the subscriber and builds the request.
func (g *Gateway) request(status rfc2866.AcctStatusType, sessionID, msisdn string, addr netip.Addr) (accountingRequest, error) {
	var problems []string
	if g.Addr == "" {
		problems = append(problems, "the accounting server's address is required")
	}
	if g.Secret == "" {
		problems = append(problems, "a RADIUS secret is required")
	}
	if sessionID == "" || len(sessionID) > 253 {
		problems = append(problems, "an Acct-Session-Id of 1 to 253 characters is required")
	}
	rat, ok := ratTypes[strings.ToUpper(cmp.Or(g.RAT, "NR"))]
	if !ok {
		problems = append(problems, fmt.Sprintf("RAT %q: one of GSM, UMTS, LTE, NB-IOT, LTE-M, NR", g.RAT))
	}
	req := accountingRequest{status: status, nas: cmp.Or(g.NAS, DefaultGatewayNAS), sessionID: sessionID,
		apn: cmp.Or(g.APN, "internet"), rat: rat}
	if msisdn != "" {
		number, err := phone.Normalize(msisdn)
		if err != nil {
			problems = append(problems, "the number: "+err.Error())
		}
		req.digits = strings.TrimPrefix(number, "+") // Calling-Station-Id: international, no '+'
	}
	if addr.IsValid() {
		req.ip = addr.Unmap()
		if req.ip.IsUnspecified() || req.ip.IsMulticast() {
			problems = append(problems, fmt.Sprintf("address %s: not a device's address", addr))
		}
	}
	if len(problems) > 0 {
		return accountingRequest{}, fmt.Errorf("radius gateway: %s", strings.Join(problems, "; "))
	}
	return req, nil
}

// exchange sends the request until its Accounting-Response comes or the
// attempts are spent. A refused datagram (the server not listening yet, or
// restarting) is retried like a lost one.
func (g *Gateway) exchange(ctx context.Context, req accountingRequest, what string) error {
	timeout, retries := g.Timeout, g.Retries
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if retries < 0 {
		retries = 0
	} else if retries == 0 {
		retries = 2
	}
	wait := time.Duration(retries+1) * timeout
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	packet := req.packet(g.Secret)
	client := &radius.Client{Retry: timeout, MaxPacketErrors: 10}
	for {
		answer, err := client.Exchange(ctx, packet, g.Addr)
		switch {
		case err == nil && answer.Code == radius.CodeAccountingResponse:
			return nil
		case err == nil:
			return fmt.Errorf("radius gateway: %s: answered %v, not Accounting-Response", what, answer.Code)
		case errors.Is(err, syscall.ECONNREFUSED) && ctx.Err() == nil:
			select {
			case <-ctx.Done():
			case <-time.After(min(timeout, 200*time.Millisecond)):
			}
			continue
		case errors.Is(ctx.Err(), context.Canceled):
			return fmt.Errorf("radius gateway: %s: %w", what, ctx.Err())
		case ctx.Err() != nil, isTimeout(err):
			// The dial or read can time out on the context's deadline a
			// moment before the context itself reports it.
			return fmt.Errorf("radius gateway: %s: no Accounting-Response from %s within %s (%d attempts): is the accounting server listening there, and is the secret the same?",
				what, g.Addr, wait, retries+1)
		default:
			return fmt.Errorf("radius gateway: %s: %w", what, err)
		}
	}
}

// accountingRequest is one Accounting-Request as a packet gateway sends it
// (TS 29.061 on Gi/SGi): the bench's load and the Gateway's sessions are
// built here.
type accountingRequest struct {
	status    rfc2866.AcctStatusType
	nas       string // NAS-Identifier
	sessionID string // Acct-Session-Id
	digits    string // Calling-Station-Id: the MSISDN, international, no '+'; "" omits it
	ip        netip.Addr
	apn       string // Called-Station-Id
	rat       byte   // 3GPP-RAT-Type; 0 omits it
}

// packet encodes the request's attributes; an IPv6 address is sent as its
// /64 (Framed-IPv6-Prefix), the prefix a gateway delegates.
func (a accountingRequest) packet(secret string) *radius.Packet {
	p := radius.New(radius.CodeAccountingRequest, []byte(secret))
	_ = rfc2866.AcctStatusType_Set(p, a.status)
	_ = rfc2865.NASIdentifier_SetString(p, a.nas)
	_ = rfc2869.EventTimestamp_Set(p, time.Now())
	_ = rfc2866.AcctSessionID_SetString(p, a.sessionID)
	if a.digits != "" {
		_ = rfc2865.CallingStationID_SetString(p, a.digits)
	}
	switch {
	case a.ip.Is4():
		_ = rfc2865.FramedIPAddress_Set(p, net.IP(a.ip.AsSlice()))
	case a.ip.Is6():
		prefix := netip.PrefixFrom(a.ip, 64).Masked()
		_ = rfc3162.FramedIPv6Prefix_Set(p, &net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(64, 128)})
	}
	_ = rfc2865.CalledStationID_SetString(p, a.apn)
	if a.rat != 0 {
		_ = threegpp.ThreeGPPRATType_Set(p, a.rat)
	}
	return p
}
