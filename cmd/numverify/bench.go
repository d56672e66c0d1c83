package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/numverify/numverify/sim"
)

// benchCommand is `numverify bench`: it drives many simulated devices
// through the flow, or verify alone, and reports throughput, latency
// percentiles and errors by kind.
type benchCommand struct {
	issuer          string
	clientID        string
	clientSecret    string
	redirectURL     string
	apiURL          string
	scope           string
	networkURL      string
	adminToken      string
	preAttached     bool
	devices         int
	concurrency     int
	rate            float64
	duration        time.Duration
	reportEvery     time.Duration
	mode            string
	prefix          string
	firstMSISDN     string
	tokensPerDevice int
	reuseTokens     bool
	signatureEvery  int
	asJSON          bool
	output          string
	radius          radiusBenchFlags
}

func (c *benchCommand) register(fs *flag.FlagSet) {
	fs.StringVar(&c.issuer, "issuer", "http://localhost:9090", "the authorization server's issuer")
	fs.StringVar(&c.clientID, "client-id", "", "client id of an SP client allowed to verify (required)")
	fs.StringVar(&c.clientSecret, "client-secret", "", "its secret (client_secret_basic) (required)")
	fs.StringVar(&c.redirectURL, "redirect-url", "http://localhost:8080/callback", "a redirect URI registered for the client (never requested)")
	fs.StringVar(&c.apiURL, "api-url", "http://localhost:9091/number-verification/v2", "the Number Verification API base URL")
	fs.StringVar(&c.scope, "scope", sim.DefaultScope, "space-separated scopes to ask for")
	fs.StringVar(&c.networkURL, "network-url", "http://localhost:9092", "the network admin API, to attach each device")
	fs.StringVar(&c.adminToken, "network-admin-token", "", "bearer token of the network admin API")
	fs.BoolVar(&c.preAttached, "pre-attached", false, "do not attach: sessions already hold the device addresses with the device numbers")
	fs.IntVar(&c.devices, "devices", 64, "number of simulated devices, each with its own address and session")
	fs.IntVar(&c.concurrency, "concurrency", 0, "closed loop: flows (or requests) in flight at once; at most one per device (0: one per device)")
	fs.Float64Var(&c.rate, "rate", 0, "open loop: start this many flows (or requests) per second on a fixed schedule, each on a free device, latency measured from its scheduled start (0: closed loop)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to run")
	fs.DurationVar(&c.reportEvery, "report-every", 10*time.Second, "print a line to stderr every interval: that interval's rate, p50 and p99 latency, and errors")
	fs.StringVar(&c.mode, "mode", sim.ModeFlowVerify,
		"flow+verify (authorize → token → one verify with that token; flow is its former name), login (authorize → token), verify (verify alone with tokens issued beforehand) or radius (RADIUS accounting as a packet gateway sends it: --radius-addr, --radius-secret, --rate, --verify)")
	fs.StringVar(&c.prefix, "device-prefix", "127.30.0.0/16", "device addresses: device i sends from the (i+1)-th address of this prefix")
	fs.StringVar(&c.firstMSISDN, "first-msisdn", "+33700000000", "device 0's number; device i has this plus i")
	fs.IntVar(&c.tokensPerDevice, "tokens-per-device", 1,
		"mode verify: access tokens issued to each device before the clock starts; each call spends one (single-use), a device out of tokens logs in again")
	fs.IntVar(&c.signatureEvery, "id-token-signature-every", 64,
		"verify the signature of one ID token in this many (1: every one, as an SP does); the others are checked for all the rest (signed, issuer, audience, expiry, nonce): an SP's signature check is its own CPU, which here would be taken from the server measured")
	fs.BoolVar(&c.reuseTokens, "reuse-tokens", false, "mode verify: send every call of a device with one token (a resource server run with --single-use-tokens=false)")
	fs.BoolVar(&c.asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&c.output, "output", "", "write the report to this file instead of stdout")
	c.radius.register(fs)
}

func (c *benchCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	tuneGC()
	if c.mode == sim.ModeRadius { // a packet gateway's accounting, see bench_radius.go
		return c.radius.run(ctx, radiusBenchRun{devices: c.devices, rate: c.rate, duration: c.duration, reportEvery: c.reportEvery,
			prefix: c.prefix, firstMSISDN: c.firstMSISDN, asJSON: c.asJSON, output: c.output})
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	report, err := sim.RunBench(ctx, cfg)
	if err != nil {
		return err
	}
	out := os.Stdout
	if c.output != "" {
		if out, err = os.Create(c.output); err != nil {
			return err
		}
		defer out.Close()
	}
	if c.asJSON {
		return printJSON(out, report)
	}
	report.Print(out)
	return nil
}

// config is the load the flags describe.
func (c *benchCommand) config() (sim.BenchConfig, error) {
	if c.clientID == "" || c.clientSecret == "" {
		return sim.BenchConfig{}, fmt.Errorf("--client-id and --client-secret are required (numverify client create): %w", errUsage)
	}
	if c.signatureEvery < 1 {
		return sim.BenchConfig{}, fmt.Errorf("--id-token-signature-every must be 1 or more: %w", errUsage)
	}
	if c.reportEvery <= 0 || c.rate < 0 {
		return sim.BenchConfig{}, fmt.Errorf("--report-every must be positive and --rate 0 or more: %w", errUsage)
	}
	devicePrefix, err := netip.ParsePrefix(c.prefix)
	if err != nil {
		return sim.BenchConfig{}, fmt.Errorf("--device-prefix %q: %w", c.prefix, err)
	}
	cfg := sim.BenchConfig{
		RP: sim.RPConfig{Issuer: c.issuer, ClientID: c.clientID, ClientSecret: c.clientSecret,
			RedirectURL: c.redirectURL, Scopes: strings.Fields(c.scope), APIURL: c.apiURL, IDTokenSignatureEvery: c.signatureEvery},
		Mode: c.mode, Devices: c.devices, Concurrency: c.concurrency, Rate: c.rate, Duration: c.duration,
		DevicePrefix: devicePrefix, FirstMSISDN: c.firstMSISDN, Progress: os.Stderr, ReportEvery: c.reportEvery,
		TokensPerDevice: c.tokensPerDevice, ReuseTokens: c.reuseTokens,
	}
	if !c.preAttached {
		cfg.Network = &sim.NetworkAdmin{BaseURL: c.networkURL, Token: c.adminToken}
	}
	return cfg, nil
}
