package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/numverify/numverify/internal/phone"
	"github.com/numverify/numverify/sim"
)

// deviceCommand is `numverify device`, one simulated handset: it sends an
// authorization request from its session address and says where the
// redirects ended.
type deviceCommand struct {
	authorizeURL string
	msisdn       string
	ip           string
	networkURL   string
	adminToken   string
	follow       bool
	attachSelf   bool
	attachVia    string
	gateway      gatewayFlags
	connectTo    string
	keepSession  bool
	asJSON       bool
	timeout      time.Duration
	wifi         wifiFlags
}

func (c *deviceCommand) register(fs *flag.FlagSet) {
	fs.StringVar(&c.authorizeURL, "authorize-url", "", "URL to open: an /authorize request, or with --follow the SP's start page (required)")
	fs.StringVar(&c.msisdn, "msisdn", "", "attach this subscriber first, as --attach-via says (detached at exit unless --keep-session)")
	fs.StringVar(&c.ip, "ip", "", "the device's address: with --msisdn the address to attach (else the network allocates one); alone, an address a session already holds")
	fs.StringVar(&c.networkURL, "network-url", "http://localhost:9092", "the network admin API (with --msisdn, --attach-via admin)")
	fs.StringVar(&c.adminToken, "network-admin-token", "", "bearer token of the network admin API (with --msisdn, --attach-via admin)")
	fs.BoolVar(&c.follow, "follow", false, "act as the phone's browser: keep cookies and follow every redirect, through the SP's callback to its result page")
	fs.BoolVar(&c.attachSelf, "attach-self", false, "with --msisdn: attach this machine's own address, the source of its connections to --authorize-url's host (in a container, the container's address)")
	fs.StringVar(&c.attachVia, "attach-via", attachViaAdmin, "with --msisdn: how the session is opened: admin (the network admin API, --network-url) or radius (as the packet gateway: a RADIUS Accounting-Request Start to --radius-addr, a Stop at exit; needs --ip or --attach-self)")
	c.gateway.register(fs, "with --attach-via radius: ")
	fs.StringVar(&c.connectTo, "connect-to", "", "HOST1:PORT1:HOST2:PORT2: connect to HOST2:PORT2 for requests to HOST1:PORT1, keeping the name in URLs and cookies (as curl --connect-to)")
	fs.BoolVar(&c.keepSession, "keep-session", false, "with --msisdn: leave the session attached at exit")
	fs.BoolVar(&c.asJSON, "json", false, "print the outcome as JSON")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after this long")
	c.wifi.register(fs)
}

// Run attaches the subscriber (with --msisdn), opens the URL from the
// session's address and prints the outcome; the exit status says whether the
// device got in.
func (c *deviceCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.wifi.enabled {
		return c.wifi.run(ctx, c.ip, c.asJSON, c.timeout)
	}
	if c.attachSelf && (c.msisdn == "" || c.ip != "") {
		return errors.New("--attach-self needs --msisdn and excludes --ip")
	}
	switch c.attachVia {
	case attachViaAdmin:
	case attachViaRadius:
		if c.msisdn == "" || (c.ip == "" && !c.attachSelf) {
			return errors.New("--attach-via radius needs --msisdn and an address (--ip or --attach-self): a gateway allocates none here")
		}
	default:
		return fmt.Errorf("--attach-via %q: admin or radius", c.attachVia)
	}
	if c.authorizeURL == "" || (c.msisdn == "" && c.ip == "") {
		return fmt.Errorf("--authorize-url and one of --msisdn or --ip are required: %w", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	addr, err := c.ipAddress()
	if err != nil {
		return err
	}
	connectFrom, connectTarget, err := c.connectRule()
	if err != nil {
		return err
	}
	if c.attachSelf {
		if addr, err = c.selfAddress(ctx, connectFrom, connectTarget); err != nil {
			return err
		}
	}
	report := deviceReport{}
	if c.msisdn != "" {
		detach, err := c.attach(ctx, &addr, &report)
		if err != nil {
			return err
		}
		defer detach()
	}
	report.Device = addr.String()
	if err := sim.CheckLocal(addr); err != nil {
		return fmt.Errorf("the device cannot send from its session address: %w; attach it on 127.0.0.0/8 (--ip 127.10.0.7)", err)
	}
	device := sim.NewDevice(addr, report.MSISDN, 0)
	defer device.Close()
	if connectFrom != "" {
		device.ConnectTo(connectFrom, connectTarget)
	}
	if c.follow {
		report.Page, err = device.Browse(ctx, c.authorizeURL)
	} else {
		report.Outcome, err = device.Authorize(ctx, c.authorizeURL)
	}
	if err != nil {
		return err
	}
	if err := report.write(c.asJSON); err != nil {
		return err
	}
	return report.failure()
}

// connectRule parses --connect-to: requests for from go to target.
func (c *deviceCommand) connectRule() (from, target string, err error) {
	if c.connectTo == "" {
		return "", "", nil
	}
	if from, target, err = sim.ParseConnectTo(c.connectTo); err != nil {
		return "", "", fmt.Errorf("--connect-to: %w", err)
	}
	return from, target, nil
}

// selfAddress is this machine's own address (--attach-self): the source of
// its connections to --authorize-url's host, or to where --connect-to sends them.
func (c *deviceCommand) selfAddress(ctx context.Context, connectFrom, connectTarget string) (netip.Addr, error) {
	probe := c.authorizeURL
	if u, err := url.Parse(probe); err == nil && connectFrom != "" && strings.EqualFold(hostPort(u), connectFrom) {
		probe = "http://" + connectTarget // where the first request really goes
	}
	a, err := sim.OutboundAddr(ctx, probe)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--attach-self: %w", err)
	}
	return a, nil
}

// ipAddress is --ip, or none (the network allocates one at attach).
func (c *deviceCommand) ipAddress() (netip.Addr, error) {
	if c.ip == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(c.ip)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--ip %q: not an IP address", c.ip)
	}
	return a, nil
}

// How `device --msisdn` opens its session.
const (
	attachViaAdmin  = "admin"
	attachViaRadius = "radius"
)

// attach opens the subscriber's session at *addr (or at one the network
// allocates) through the admin API, sets *addr to the session's and notes
// the session in report; detach closes it unless --keep-session. With
// --attach-via radius the gateway's Start opens it at *addr instead.
func (c *deviceCommand) attach(ctx context.Context, addr *netip.Addr, report *deviceReport) (detach func(), err error) {
	number, err := phone.Normalize(c.msisdn)
	if err != nil {
		return nil, fmt.Errorf("--msisdn: %w", err)
	}
	if c.attachVia == attachViaRadius {
		return c.attachByRadius(ctx, number, *addr, report)
	}
	network := &sim.NetworkAdmin{BaseURL: c.networkURL, Token: c.adminToken}
	session, err := network.Attach(ctx, number, *addr)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", phone.Mask(number), err)
	}
	detach = func() {}
	if !c.keepSession {
		detach = func() {
			if err := network.Detach(context.WithoutCancel(ctx), session.ID); err != nil {
				fmt.Fprintf(os.Stderr, "detach session %d: %v\n", session.ID, err)
			}
		}
	}
	if *addr, err = session.Addr(); err != nil {
		detach()
		return nil, err
	}
	report.SessionID, report.MSISDN = session.ID, number
	return detach, nil
}

// attachByRadius opens the session as the packet gateway does, by a RADIUS
// Start (answered once the session is recorded); detach sends its Stop
// unless --keep-session.
func (c *deviceCommand) attachByRadius(ctx context.Context, number string, addr netip.Addr, report *deviceReport) (detach func(), err error) {
	gateway, err := c.gateway.gateway()
	if err != nil {
		return nil, err
	}
	id, err := gateway.Start(ctx, number, addr)
	if err != nil {
		return nil, fmt.Errorf("attach %s by RADIUS: %w", phone.Mask(number), err)
	}
	detach = func() {}
	if !c.keepSession {
		detach = func() {
			if err := gateway.Stop(context.WithoutCancel(ctx), id, number, addr); err != nil {
				fmt.Fprintf(os.Stderr, "stop RADIUS session %s: %v\n", id, err)
			}
		}
	}
	report.AcctSessionID, report.MSISDN = id, number
	return detach, nil
}

// hostPort is u's host with its port, the scheme's default when absent.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// deviceReport is what `numverify device` prints.
type deviceReport struct {
	Device    string `json:"device"`
	SessionID int64  `json:"session_id,omitempty"`
	// AcctSessionID is the RADIUS session's (--attach-via radius).
	AcctSessionID string       `json:"acct_session_id,omitempty"`
	MSISDN        string       `json:"msisdn,omitempty"`
	Outcome       *sim.Outcome `json:"outcome,omitempty"`
	Page          *sim.Page    `json:"page,omitempty"`
}

// write prints the report, as JSON with --json.
func (r deviceReport) write(asJSON bool) error {
	if asJSON {
		return printJSON(os.Stdout, r)
	}
	r.print()
	return nil
}

func (r deviceReport) print() {
	who := "device " + r.Device
	switch {
	case r.SessionID != 0:
		who += fmt.Sprintf(" (session %d, %s)", r.SessionID, phone.Mask(r.MSISDN))
	case r.AcctSessionID != "":
		who += fmt.Sprintf(" (RADIUS session %s, %s)", r.AcctSessionID, phone.Mask(r.MSISDN))
	}
	fmt.Println(who)
	hops := []string{}
	if r.Outcome != nil {
		hops = r.Outcome.Hops
	} else if r.Page != nil {
		hops = r.Page.Hops
	}
	for _, h := range hops {
		fmt.Println("  GET " + h)
	}
	switch {
	case r.Page != nil:
		fmt.Printf("ended at %s: HTTP %d\n%s\n", r.Page.URL, r.Page.Status, r.Page.Text)
	case r.Outcome.Callback != "":
		fmt.Println("ended at the client's redirect URI: " + r.Outcome.Callback)
		if r.Outcome.Code != "" {
			fmt.Printf("code %s, state %s\n", r.Outcome.Code, r.Outcome.State)
		} else {
			fmt.Printf("error %s %s\n", r.Outcome.Error, r.Outcome.ErrorDescription)
		}
	default:
		fmt.Printf("ended at the authorization server: HTTP %d, no redirect\n%s\n", r.Outcome.Status, r.Outcome.Page)
	}
}

// failure makes the exit status say whether the device got in: a code, or
// with --follow a 2xx result page that says verified (data-verified="true").
func (r deviceReport) failure() error {
	switch {
	case r.Page != nil && r.Page.Status/100 != 2:
		return fmt.Errorf("final page answered HTTP %d", r.Page.Status)
	case r.Page != nil && r.Page.Verified == nil:
		return errors.New("final page states no verification result (no data-verified)")
	case r.Page != nil && !*r.Page.Verified:
		return errors.New("the SP says: not verified")
	case r.Outcome != nil && r.Outcome.Code == "":
		if r.Outcome.Error != "" {
			return errors.New("no code: " + r.Outcome.Error)
		}
		return fmt.Errorf("no code: HTTP %d", r.Outcome.Status)
	}
	return nil
}
