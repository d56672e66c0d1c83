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

// benchCommand drives many simulated devices through the flow, or verify
// alone, and reports throughput, latency percentiles and errors by kind.
func benchCommand() command {
	return command{name: "bench", summary: "load generator: many devices, each from its own loopback address, through the flow or verify alone, in a closed or open loop",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			issuer := fs.String("issuer", "http://localhost:9090", "the authorization server's issuer")
			clientID := fs.String("client-id", "", "client id of an SP client allowed to verify (required)")
			clientSecret := fs.String("client-secret", "", "its secret (client_secret_basic) (required)")
			redirectURL := fs.String("redirect-url", "http://localhost:8080/callback", "a redirect URI registered for the client (never requested)")
			apiURL := fs.String("api-url", "http://localhost:9091/number-verification/v2", "the Number Verification API base URL")
			scope := fs.String("scope", sim.DefaultScope, "space-separated scopes to ask for")
			networkURL := fs.String("network-url", "http://localhost:9092", "the network admin API, to attach each device")
			adminToken := fs.String("network-admin-token", "", "bearer token of the network admin API")
			preAttached := fs.Bool("pre-attached", false, "do not attach: sessions already hold the device addresses with the device numbers")
			devices := fs.Int("devices", 64, "number of simulated devices, each with its own address and session")
			concurrency := fs.Int("concurrency", 0, "closed loop: flows (or requests) in flight at once; at most one per device (0: one per device)")
			rate := fs.Float64("rate", 0, "open loop: start this many flows (or requests) per second on a fixed schedule, each on a free device, latency measured from its scheduled start (0: closed loop)")
			duration := fs.Duration("duration", 10*time.Second, "how long to run")
			reportEvery := fs.Duration("report-every", 10*time.Second, "print a line to stderr every interval: that interval's rate, p50 and p99 latency, and errors")
			mode := fs.String("mode", sim.ModeFlowVerify,
				"flow+verify (authorize → token → one verify with that token; flow is its former name), login (authorize → token), verify (verify alone with tokens issued beforehand) or radius (RADIUS accounting as a packet gateway sends it: --radius-addr, --radius-secret, --rate, --verify)")
			prefix := fs.String("device-prefix", "127.30.0.0/16", "device addresses: device i sends from the (i+1)-th address of this prefix")
			firstMSISDN := fs.String("first-msisdn", "+33700000000", "device 0's number; device i has this plus i")
			tokensPerDevice := fs.Int("tokens-per-device", 1,
				"mode verify: access tokens issued to each device before the clock starts; each call spends one (single-use), a device out of tokens logs in again")
			reuseTokens := fs.Bool("reuse-tokens", false, "mode verify: send every call of a device with one token (a resource server run with --single-use-tokens=false)")
			asJSON := fs.Bool("json", false, "print the report as JSON")
			output := fs.String("output", "", "write the report to this file instead of stdout")
			radiusBench := addRadiusBenchFlags(fs)
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if *mode == sim.ModeRadius { // a packet gateway's accounting, see bench_radius.go
					return radiusBench.run(ctx, radiusBenchRun{devices: *devices, rate: *rate, duration: *duration, reportEvery: *reportEvery,
						prefix: *prefix, firstMSISDN: *firstMSISDN, asJSON: *asJSON, output: *output})
				}
				if *clientID == "" || *clientSecret == "" {
					return fmt.Errorf("--client-id and --client-secret are required (numverify client create): %w", errUsage)
				}
				if *reportEvery <= 0 || *rate < 0 {
					return fmt.Errorf("--report-every must be positive and --rate 0 or more: %w", errUsage)
				}
				devicePrefix, err := netip.ParsePrefix(*prefix)
				if err != nil {
					return fmt.Errorf("--device-prefix %q: %w", *prefix, err)
				}
				cfg := sim.BenchConfig{
					RP: sim.RPConfig{Issuer: *issuer, ClientID: *clientID, ClientSecret: *clientSecret,
						RedirectURL: *redirectURL, Scopes: strings.Fields(*scope), APIURL: *apiURL},
					Mode: *mode, Devices: *devices, Concurrency: *concurrency, Rate: *rate, Duration: *duration,
					DevicePrefix: devicePrefix, FirstMSISDN: *firstMSISDN, Progress: os.Stderr, ReportEvery: *reportEvery,
					TokensPerDevice: *tokensPerDevice, ReuseTokens: *reuseTokens,
				}
				if !*preAttached {
					cfg.Network = &sim.NetworkAdmin{BaseURL: *networkURL, Token: *adminToken}
				}
				report, err := sim.RunBench(ctx, cfg)
				if err != nil {
					return err
				}
				out := os.Stdout
				if *output != "" {
					if out, err = os.Create(*output); err != nil {
						return err
					}
					defer out.Close()
				}
				if *asJSON {
					return printJSON(out, report)
				}
				report.Print(out)
				return nil
			}
		}}
}
