package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/numverify/numverify/internal/phone"
	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/sim"
)

// The `network gateway` commands play the packet gateway: unlike the other
// `network` commands they do not write the session table, they tell the
// network's RADIUS accounting server (`serve network --radius-addr`), which
// records the session and answers once it is durable, the path an
// operator's GGSN/PGW/SMF takes.

// gatewayFlags are a simulated packet gateway's settings, shared by
// `network gateway start|stop` and `device --attach-via radius` (whose
// usage texts say so through prefix).
type gatewayFlags struct {
	addr, secret, nas string
	timeout           time.Duration
	retries           int
}

func (f *gatewayFlags) register(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&f.addr, "radius-addr", "127.0.0.1:1813", prefix+"the network's RADIUS accounting server (UDP host:port)")
	fs.StringVar(&f.secret, "radius-secret", "", prefix+"the RADIUS shared secret (the server's --radius-secret)")
	fs.StringVar(&f.nas, "nas", sim.DefaultGatewayNAS, prefix+"NAS-Identifier: the gateway's name; a session is stopped by the gateway that started it")
	fs.DurationVar(&f.timeout, "radius-timeout", 2*time.Second, prefix+"retransmit an unanswered Accounting-Request after this long")
	fs.IntVar(&f.retries, "radius-retries", 2, prefix+"retransmissions before giving up")
}

// gateway returns the configured gateway, or what is missing.
func (f *gatewayFlags) gateway() (*sim.Gateway, error) {
	switch {
	case f.secret == "":
		return nil, errors.New("--radius-secret (NUMVERIFY_RADIUS_SECRET) is required: the secret `serve network` was given")
	case f.timeout <= 0 || f.retries < 0:
		return nil, errors.New("--radius-timeout must be positive and --radius-retries at least 0")
	}
	retries := f.retries
	if retries == 0 {
		retries = -1 // the Gateway's zero value is its default, 2
	}
	return &sim.Gateway{Addr: f.addr, Secret: f.secret, NAS: f.nas, Timeout: f.timeout, Retries: retries}, nil
}

// gatewaySession is what `network gateway start|stop` print.
type gatewaySession struct {
	SessionID string `json:"acct_session_id"`
	NAS       string `json:"nas"`
	MSISDN    string `json:"msisdn,omitempty"`
	IP        string `json:"ip,omitempty"`
	Status    string `json:"status"` // started or stopped
}

// networkGatewayStartCommand is `numverify network gateway start`.
type networkGatewayStartCommand struct {
	gateway   gatewayFlags
	msisdn    string
	ip        string
	sessionID string
	apn, rat  string
	asJSON    bool
}

func (c *networkGatewayStartCommand) register(fs *flag.FlagSet) {
	c.gateway.register(fs, "")
	fs.StringVar(&c.msisdn, "msisdn", "", "the subscriber's number, international format (+33612345678); sent as Calling-Station-Id without '+' (required)")
	fs.StringVar(&c.ip, "ip", "", "the address the session holds: IPv4 (Framed-IP-Address) or IPv6 (its /64, Framed-IPv6-Prefix) (required)")
	fs.StringVar(&c.sessionID, "session-id", "", "the Acct-Session-Id (default: a new random one, printed)")
	fs.StringVar(&c.apn, "apn", "internet", "access point name (Called-Station-Id)")
	fs.StringVar(&c.rat, "rat", "NR", "radio access technology (3GPP-RAT-Type): NR, LTE, UMTS, GSM, NB-IoT, LTE-M")
	fs.BoolVar(&c.asJSON, "json", false, "print the session as JSON")
}

func (c *networkGatewayStartCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.msisdn == "" || c.ip == "" {
		return fmt.Errorf("--msisdn and --ip are required: %w", errUsage)
	}
	number, addr, err := parseSubscriber(c.msisdn, c.ip)
	if err != nil {
		return err
	}
	gw, err := c.gateway.gateway()
	if err != nil {
		return err
	}
	gw.APN, gw.RAT = c.apn, c.rat
	id := c.sessionID
	if id == "" {
		id = sim.NewAcctSessionID()
	}
	if err := gw.StartSession(ctx, id, number, addr); err != nil {
		return err
	}
	return printGatewaySession(gatewaySession{SessionID: id, NAS: c.gateway.nas, MSISDN: number, IP: addr.String(), Status: "started"}, c.asJSON)
}

// networkGatewayStopCommand is `numverify network gateway stop`.
type networkGatewayStopCommand struct {
	gateway   gatewayFlags
	msisdn    string
	ip        string
	sessionID string
	asJSON    bool
}

func (c *networkGatewayStopCommand) register(fs *flag.FlagSet) {
	c.gateway.register(fs, "")
	fs.StringVar(&c.sessionID, "session-id", "", "the Acct-Session-Id that `network gateway start` printed (required)")
	fs.StringVar(&c.msisdn, "msisdn", "", "the subscriber's number, sent as a gateway does (optional: the session id and --nas name the session)")
	fs.StringVar(&c.ip, "ip", "", "the session's address, sent as a gateway does (optional)")
	fs.BoolVar(&c.asJSON, "json", false, "print the stopped session as JSON")
}

func (c *networkGatewayStopCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.sessionID == "" {
		return fmt.Errorf("--session-id is required: %w", errUsage)
	}
	number, addr, err := parseSubscriber(c.msisdn, c.ip)
	if err != nil {
		return err
	}
	gw, err := c.gateway.gateway()
	if err != nil {
		return err
	}
	if err := gw.Stop(ctx, c.sessionID, number, addr); err != nil {
		return err
	}
	s := gatewaySession{SessionID: c.sessionID, NAS: c.gateway.nas, MSISDN: number, Status: "stopped"}
	if addr.IsValid() {
		s.IP = addr.String()
	}
	return printGatewaySession(s, c.asJSON)
}

// parseSubscriber reads --msisdn and --ip; an empty one stays empty (the
// zero address), for the Stop, where both are optional.
func parseSubscriber(msisdn, ip string) (number string, addr netip.Addr, err error) {
	if msisdn != "" {
		if number, err = phone.Normalize(msisdn); err != nil {
			return "", addr, fmt.Errorf("--msisdn: %w", err)
		}
	}
	if ip != "" {
		if addr, err = network.ParseHost(ip); err != nil {
			return "", addr, fmt.Errorf("--ip %q: not an IP address", ip)
		}
	}
	return number, addr, nil
}

// printGatewaySession prints the session id alone (for a shell variable),
// or the session as JSON.
func printGatewaySession(s gatewaySession, asJSON bool) error {
	if asJSON {
		return printJSON(os.Stdout, s)
	}
	_, err := fmt.Println(s.SessionID)
	return err
}
