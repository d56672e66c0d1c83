package main

import (
	"context"
	"encoding/json"
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

// deviceCommand is one simulated handset: it sends an authorization request
// from its session address and says where the redirects ended.
func deviceCommand() command {
	return command{name: "device", summary: "one simulated handset: send an authorization request from its session address and print where it ended",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			authorizeURL := fs.String("authorize-url", "", "URL to open: an /authorize request, or with --follow the SP's start page (required)")
			msisdn := fs.String("msisdn", "", "attach this subscriber through the network admin API first (detached at exit unless --keep-session)")
			ip := fs.String("ip", "", "the device's address: with --msisdn the address to attach (else the network allocates one); alone, an address a session already holds")
			networkURL := fs.String("network-url", "http://localhost:9092", "the network admin API (with --msisdn)")
			adminToken := fs.String("network-admin-token", "", "bearer token of the network admin API (with --msisdn)")
			follow := fs.Bool("follow", false, "act as the phone's browser: keep cookies and follow every redirect, through the SP's callback to its result page")
			attachSelf := fs.Bool("attach-self", false, "with --msisdn: attach this machine's own address, the source of its connections to --authorize-url's host (in a container, the container's address)")
			connectTo := fs.String("connect-to", "", "HOST1:PORT1:HOST2:PORT2: connect to HOST2:PORT2 for requests to HOST1:PORT1, keeping the name in URLs and cookies (as curl --connect-to)")
			keep := fs.Bool("keep-session", false, "with --msisdn: leave the session attached at exit")
			asJSON := fs.Bool("json", false, "print the outcome as JSON")
			timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
			wifi := addWiFiFlags(fs)
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if wifi.enabled {
					return wifi.run(ctx, *ip, *asJSON, *timeout)
				}
				if *attachSelf && (*msisdn == "" || *ip != "") {
					return errors.New("--attach-self needs --msisdn and excludes --ip")
				}
				if *authorizeURL == "" || (*msisdn == "" && *ip == "") {
					return fmt.Errorf("--authorize-url and one of --msisdn or --ip are required: %w", errUsage)
				}
				ctx, cancel := context.WithTimeout(ctx, *timeout)
				defer cancel()
				report := deviceReport{}
				var addr netip.Addr
				if *ip != "" {
					a, err := netip.ParseAddr(*ip)
					if err != nil {
						return fmt.Errorf("--ip %q: not an IP address", *ip)
					}
					addr = a
				}
				var connectFrom, connectTarget string
				if *connectTo != "" {
					from, to, err := sim.ParseConnectTo(*connectTo)
					if err != nil {
						return fmt.Errorf("--connect-to: %w", err)
					}
					connectFrom, connectTarget = from, to
				}
				if *attachSelf {
					probe := *authorizeURL
					if u, err := url.Parse(probe); err == nil && connectFrom != "" && strings.EqualFold(hostPort(u), connectFrom) {
						probe = "http://" + connectTarget // where the first request really goes
					}
					a, err := sim.OutboundAddr(ctx, probe)
					if err != nil {
						return fmt.Errorf("--attach-self: %w", err)
					}
					addr = a
				}
				if *msisdn != "" {
					number, err := phone.Normalize(*msisdn)
					if err != nil {
						return fmt.Errorf("--msisdn: %w", err)
					}
					network := &sim.NetworkAdmin{BaseURL: *networkURL, Token: *adminToken}
					session, err := network.Attach(ctx, number, addr)
					if err != nil {
						return fmt.Errorf("attach %s: %w", phone.Mask(number), err)
					}
					if !*keep {
						defer network.Detach(context.WithoutCancel(ctx), session.ID)
					}
					if addr, err = session.Addr(); err != nil {
						return err
					}
					report.SessionID, report.MSISDN = session.ID, number
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
				var runErr error
				if *follow {
					report.Page, runErr = device.Browse(ctx, *authorizeURL)
				} else {
					report.Outcome, runErr = device.Authorize(ctx, *authorizeURL)
				}
				if runErr != nil {
					return runErr
				}
				if *asJSON {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					enc.SetEscapeHTML(false)
					if err := enc.Encode(report); err != nil {
						return err
					}
				} else {
					report.print()
				}
				return report.failure()
			}
		}}
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
	Device    string       `json:"device"`
	SessionID int64        `json:"session_id,omitempty"`
	MSISDN    string       `json:"msisdn,omitempty"`
	Outcome   *sim.Outcome `json:"outcome,omitempty"`
	Page      *sim.Page    `json:"page,omitempty"`
}

func (r deviceReport) print() {
	who := "device " + r.Device
	if r.SessionID != 0 {
		who += fmt.Sprintf(" (session %d, %s)", r.SessionID, phone.Mask(r.MSISDN))
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
