package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"
)

// Bench modes.
const (
	ModeFlowVerify = "flow+verify" // authorize → token → exactly one verify with that token
	modeFlow       = "flow"        // the former name of flow+verify
	modeLogin      = "login"       // authorize → token, no verify
	modeVerify     = "verify"      // verify alone, with tokens issued before the clock starts
)

// modes lists the bench modes.
var modes = []string{ModeFlowVerify, modeFlow, modeLogin, modeVerify}

// BenchConfig is one load run.
type BenchConfig struct {
	RP          RPConfig
	Mode        string
	Devices     int
	Concurrency int // closed loop: iterations in flight (at most one per device)
	// Rate, when positive, runs an open loop instead: this many arrivals per
	// second on a fixed schedule, each on a free device (waiting for one if
	// all are busy), its latency measured from its scheduled start, so that
	// a server slowing down shows as latency and not as fewer requests
	// (coordinated omission).
	Rate     float64
	Duration time.Duration
	// Network attaches each device (nil: the sessions exist already, made
	// with `numverify network attach` for the same addresses and numbers).
	Network *NetworkAdmin
	// DevicePrefix holds the devices' addresses: device i sends from the
	// (i+1)-th address of the prefix. Default 127.30.0.0/16.
	DevicePrefix netip.Prefix
	// FirstMSISDN is device 0's number; device i has FirstMSISDN+i.
	// Default +33700000000.
	FirstMSISDN string
	// Progress, when set, receives a line every ReportEvery (default 10 s):
	// that interval's rate, p50 and p99 and errors, so a decay is visible.
	Progress    io.Writer
	ReportEvery time.Duration
	// TokensPerDevice (mode verify) is how many access tokens each device
	// is issued before the clock starts. Tokens are single-use (CAMARA NV
	// 2.1.1, the servers' default): each verify spends one, and a device
	// whose tokens are spent logs in again, timed as "refresh" and inside
	// the call's latency. Default 1.
	TokensPerDevice int
	// ReuseTokens (mode verify) sends every call of a device with the same
	// token, renewed shortly before it expires: what a resource server run
	// with --single-use-tokens=false (NV 2.0) accepts.
	ReuseTokens bool
}

func (c *BenchConfig) defaults() error {
	if c.Mode == "" {
		c.Mode = modeFlow
	}
	if !slices.Contains(modes, c.Mode) {
		return fmt.Errorf("bench: mode %q: want one of %s", c.Mode, strings.Join(modes, ", "))
	}
	if c.Rate < 0 {
		return fmt.Errorf("bench: rate %v: want 0 (closed loop) or more", c.Rate)
	}
	if c.Devices <= 0 {
		return errors.New("bench: at least one device")
	}
	if c.Concurrency <= 0 || c.Concurrency > c.Devices {
		c.Concurrency = c.Devices // one flow in flight per device at most
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if !c.DevicePrefix.IsValid() {
		c.DevicePrefix = netip.MustParsePrefix("127.30.0.0/16")
	}
	if c.FirstMSISDN == "" {
		c.FirstMSISDN = "+33700000000"
	}
	if c.ReportEvery <= 0 {
		c.ReportEvery = 10 * time.Second
	}
	if c.TokensPerDevice <= 0 {
		c.TokensPerDevice = 1
	}
	return nil
}

// BenchReport is what a run measured.
type BenchReport struct {
	Mode        string  `json:"mode"`
	Devices     int     `json:"devices"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"` // open loop: arrivals per second scheduled
	Seconds     float64 `json:"seconds"`
	// Unstarted counts open-loop arrivals still waiting for a free device
	// when the run ended.
	Unstarted uint64 `json:"unstarted,omitempty"`
	// OK counts completed flows (mode flow) or verify requests (mode verify)
	// that gave the right answer; Failed those that did not.
	OK      uint64      `json:"ok"`
	Failed  uint64      `json:"failed"`
	PerSec  float64     `json:"per_second"`
	Steps   []StepStats `json:"steps"`
	Errors  []ErrorKind `json:"errors"`
	PerTick []Tick      `json:"per_second_timeline"`
	// Intervals are the lines printed every ReportEvery.
	Intervals []Interval `json:"intervals"`
}

// StepStats are one step's latencies, in milliseconds.
type StepStats struct {
	Step  string  `json:"step"`
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// ErrorKind counts failures of one kind at one step: "http 503
// temporarily_unavailable", "oauth access_denied", "connection", "timeout",
// "protocol", "wrong-subscriber".
type ErrorKind struct {
	Step  string `json:"step"`
	Kind  string `json:"kind"`
	Count uint64 `json:"count"`
}

// Tick is one second of the run: flows or requests completed and failed.
type Tick struct {
	Second int    `json:"second"`
	OK     uint64 `json:"ok"`
	Failed uint64 `json:"failed"`
}

// benchDevice is a device with its number and, in verify mode, its tokens.
type benchDevice struct {
	*Device
	session *Session  // attached by this run (detached at the end)
	token   *Tokens   // ReuseTokens: the one token every call sends
	unspent []*Tokens // single-use: issued and not yet sent, newest last
}

// nextToken takes the newest unspent token that still has margin before it
// expires; nil when there is none.
func (d *benchDevice) nextToken() *Tokens {
	for len(d.unspent) > 0 {
		t := d.unspent[len(d.unspent)-1]
		d.unspent = d.unspent[:len(d.unspent)-1]
		if time.Until(t.Expiry) > 5*time.Second {
			return t
		}
	}
	return nil
}

type benchRun struct {
	cfg    BenchConfig
	rp     *RelyingParty
	steps  map[string]*histogram
	order  []string
	unit   string // the step that is one iteration, from its (scheduled) start
	errMu  sync.Mutex
	errs   map[[2]string]uint64
	ok     atomic.Uint64
	failed atomic.Uint64
	start  time.Time
	ticks  []struct{ ok, failed atomic.Uint64 }

	interval  atomic.Pointer[intervalStats]
	intervals []Interval
	inFlight  atomic.Int64
	unstarted atomic.Uint64
}

// RunBench attaches the devices, runs the load for the configured duration,
// detaches what it attached, and reports.
func RunBench(ctx context.Context, cfg BenchConfig) (*BenchReport, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	rp, err := NewRelyingParty(ctx, cfg.RP)
	if err != nil {
		return nil, err
	}
	devices, err := setUpDevices(ctx, cfg)
	defer tearDownDevices(cfg.Network, devices)
	if err != nil {
		return nil, err
	}
	run := &benchRun{cfg: cfg, rp: rp}
	run.reset()
	switch cfg.Mode {
	case ModeFlowVerify, modeFlow:
		run.order, run.unit = []string{"authorize", "token", "verify", "flow"}, "flow"
	case modeLogin:
		run.order, run.unit = []string{"authorize", "token", "login"}, "login"
	case modeVerify:
		run.order, run.unit = []string{"verify", "call"}, "call"
		if err := run.issueTokens(ctx, devices); err != nil {
			return nil, err
		}
		run.reset() // issuing the tokens is not part of the measure
	}
	return run.loop(ctx, devices), nil
}

func (r *benchRun) reset() {
	r.steps = map[string]*histogram{}
	for _, s := range []string{"authorize", "token", "verify", "flow", "login", "call", "refresh"} {
		r.steps[s] = &histogram{}
	}
	r.errs = map[[2]string]uint64{}
	r.ticks = make([]struct{ ok, failed atomic.Uint64 }, int(r.cfg.Duration/time.Second)+61)
	r.interval.Store(&intervalStats{})
}

func setUpDevices(ctx context.Context, cfg BenchConfig) ([]*benchDevice, error) {
	first, err := strconv.ParseUint(strings.TrimPrefix(cfg.FirstMSISDN, "+"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bench: first MSISDN %q: %w", cfg.FirstMSISDN, err)
	}
	devices := make([]*benchDevice, cfg.Devices)
	addr := cfg.DevicePrefix.Masked().Addr()
	for i := range devices {
		addr = addr.Next()
		if !cfg.DevicePrefix.Contains(addr) {
			return nil, fmt.Errorf("bench: %d devices do not fit in %s", cfg.Devices, cfg.DevicePrefix)
		}
		devices[i] = &benchDevice{Device: NewDevice(addr, "+"+strconv.FormatUint(first+uint64(i), 10), 4)}
	}
	if err := CheckLocal(devices[0].Addr); err != nil {
		return devices, err
	}
	if cfg.Network == nil {
		return devices, nil
	}
	return devices, forEach(ctx, devices, 16, func(ctx context.Context, d *benchDevice) error {
		s, err := cfg.Network.Attach(ctx, d.MSISDN, d.Addr)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
			// Held already: fine when by this very number (a previous run).
			held, lerr := cfg.Network.Lookup(ctx, d.Addr)
			if lerr == nil && held != nil && held.MSISDN == d.MSISDN {
				return nil
			}
			return fmt.Errorf("attach %s: address held by another subscriber; detach it or choose another --device-prefix", d.Addr)
		}
		if err != nil {
			return fmt.Errorf("attach %s: %w", d.Addr, err)
		}
		d.session = &s
		return nil
	})
}

func tearDownDevices(network *NetworkAdmin, devices []*benchDevice) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = forEach(ctx, devices, 16, func(ctx context.Context, d *benchDevice) error {
		if d == nil {
			return nil
		}
		if d.session != nil && network != nil {
			_ = network.Detach(ctx, d.session.ID)
		}
		d.Close()
		return nil
	})
}

// forEach runs fn on every device with at most parallel at once and returns
// the first error; the first error cancels the ctx the others get.
func forEach(ctx context.Context, devices []*benchDevice, parallel int, fn func(context.Context, *benchDevice) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, d := range devices {
		g.Go(func() error { return fn(ctx, d) })
	}
	return g.Wait()
}

func (r *benchRun) issueTokens(ctx context.Context, devices []*benchDevice) error {
	n := r.cfg.TokensPerDevice
	if r.cfg.ReuseTokens {
		n = 1
	}
	return forEach(ctx, devices, r.cfg.Concurrency, func(ctx context.Context, d *benchDevice) error {
		for range n {
			tokens, err := r.flow(ctx, d, false)
			if err != nil {
				return fmt.Errorf("issue a token for device %s: %w", d.Addr, err)
			}
			d.token = tokens
			d.unspent = append(d.unspent, tokens)
		}
		return nil
	})
}

// loop runs the iterations until the duration has passed, in a closed loop
// (Concurrency workers back to back) or an open one (Rate); in-flight
// requests finish (they are not cut, so a stop is never counted as an
// error).
func (r *benchRun) loop(ctx context.Context, devices []*benchDevice) *BenchReport {
	queue := make(chan *benchDevice, len(devices))
	for _, d := range devices {
		queue <- d
	}
	stop, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	r.start = time.Now()
	done := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		r.reportIntervals(done)
		close(reported)
	}()
	if r.cfg.Rate > 0 {
		r.openLoop(ctx, stop, queue)
	} else {
		var wg sync.WaitGroup
		for range r.cfg.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for stop.Err() == nil {
					d := <-queue
					r.iteration(ctx, d, time.Now())
					queue <- d
				}
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(r.start)
	close(done)
	<-reported
	return r.report(elapsed)
}

// iteration runs one flow (or verify) on d; its unit latency counts from
// scheduled, when it was due to start.
func (r *benchRun) iteration(ctx context.Context, d *benchDevice, scheduled time.Time) {
	r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	var err error
	switch r.cfg.Mode {
	case modeVerify:
		token := d.token
		if r.cfg.ReuseTokens {
			if token == nil || time.Until(token.Expiry) < 20*time.Second {
				token = nil
			}
		} else {
			token = d.nextToken()
		}
		if token == nil {
			start := time.Now()
			tokens, ferr := r.flow(ctx, d, false)
			if ferr != nil {
				r.count(ferr, 0)
				return
			}
			r.steps["refresh"].record(time.Since(start))
			token, d.token = tokens, tokens
		}
		err = r.verify(ctx, d, token.AccessToken, true)
	default:
		_, err = r.flow(ctx, d, r.cfg.Mode != modeLogin)
	}
	var took time.Duration
	if err == nil {
		took = time.Since(scheduled)
		r.steps[r.unit].record(took)
	}
	r.count(err, took)
}

// count records the outcome of one iteration (took: its unit latency).
func (r *benchRun) count(err error, took time.Duration) {
	i := int(time.Since(r.start) / time.Second)
	if i >= len(r.ticks) {
		i = len(r.ticks) - 1
	}
	interval := r.interval.Load()
	if err != nil {
		r.failed.Add(1)
		r.ticks[i].failed.Add(1)
		interval.failed.Add(1)
		return
	}
	r.ok.Add(1)
	r.ticks[i].ok.Add(1)
	interval.latency.record(took)
}

// flow runs authorize → token (→ verify when withVerify), recording each
// step's latency and each failure's kind.
func (r *benchRun) flow(ctx context.Context, d *benchDevice, withVerify bool) (*Tokens, error) {
	req := r.rp.NewAuthRequest("")
	start := time.Now()
	out, err := d.Authorize(ctx, req.URL)
	if err == nil {
		err = outcomeError(out, req.State)
	}
	if err != nil {
		r.fail("authorize", err)
		return nil, err
	}
	r.steps["authorize"].record(time.Since(start))

	start = time.Now()
	tokens, err := r.rp.Exchange(context.WithValue(ctx, oauth2.HTTPClient, d.Client), out.Code, req)
	if err != nil {
		r.fail("token", err)
		return nil, err
	}
	r.steps["token"].record(time.Since(start))
	if withVerify {
		return tokens, r.verify(ctx, d, tokens.AccessToken, false)
	}
	return tokens, nil
}

// verify asks whether the device's own number is its number: anything but
// true is an error, "wrong-subscriber" when the answer is false.
func (r *benchRun) verify(ctx context.Context, d *benchDevice, accessToken string, alone bool) error {
	start := time.Now()
	ok, err := r.rp.Verify(context.WithValue(ctx, oauth2.HTTPClient, d.Client), accessToken, d.MSISDN, false)
	if err == nil && !ok {
		err = errWrongSubscriber
	}
	if err != nil {
		r.fail("verify", err)
		return err
	}
	r.steps["verify"].record(time.Since(start))
	return nil
}

var errWrongSubscriber = errors.New("wrong-subscriber: verify answered false for the device's own number")

// OutcomeError is an authorization that ended without a code.
type OutcomeError struct{ Outcome *Outcome }

func (e *OutcomeError) Error() string {
	if e.Outcome.Error != "" {
		return "authorization error " + e.Outcome.Error + ": " + e.Outcome.ErrorDescription
	}
	return fmt.Sprintf("authorization server answered HTTP %d without redirecting: %s", e.Outcome.Status, e.Outcome.Page)
}

func outcomeError(out *Outcome, state string) error {
	if out.Code == "" {
		return &OutcomeError{Outcome: out}
	}
	if out.State != state {
		return &ProtocolError{Step: "authorize", Problem: "state in the callback is not the request's"}
	}
	return nil
}

// ErrorKindOf names the kind of a failure for the report.
func ErrorKindOf(err error) string {
	var (
		apiErr     *APIError
		connErr    *ConnectionError
		outcomeErr *OutcomeError
		protoErr   *ProtocolError
	)
	switch {
	case errors.Is(err, errWrongSubscriber):
		return "wrong-subscriber"
	case errors.As(err, &outcomeErr):
		if outcomeErr.Outcome.Error != "" {
			return "oauth " + outcomeErr.Outcome.Error
		}
		return fmt.Sprintf("http %d (no redirect)", outcomeErr.Outcome.Status)
	case errors.As(err, &apiErr):
		return strings.TrimSpace(fmt.Sprintf("http %d %s", apiErr.Status, apiErr.Code))
	case errors.As(err, &protoErr):
		return "protocol: " + protoErr.Problem
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	case errors.As(err, &connErr):
		return "connection"
	}
	return "other"
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func (r *benchRun) fail(step string, err error) {
	kind := ErrorKindOf(err)
	if strings.HasPrefix(kind, "protocol: ") && len(kind) > 80 {
		kind = kind[:80]
	}
	r.errMu.Lock()
	r.errs[[2]string{step, kind}]++
	r.errMu.Unlock()
}

func (r *benchRun) report(elapsed time.Duration) *BenchReport {
	rep := &BenchReport{Mode: r.cfg.Mode, Devices: r.cfg.Devices, Concurrency: r.cfg.Concurrency, Rate: r.cfg.Rate,
		Seconds: elapsed.Seconds(), OK: r.ok.Load(), Failed: r.failed.Load(), Unstarted: r.unstarted.Load(),
		Intervals: r.intervals}
	rep.PerSec = float64(rep.OK) / elapsed.Seconds()
	names := r.order
	if r.steps["refresh"].count() > 0 {
		names = append(names, "refresh")
	}
	for _, name := range names {
		h := r.steps[name]
		rep.Steps = append(rep.Steps, StepStats{Step: name, Count: h.count(), Mean: ms(h.mean()),
			P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)), P99: ms(h.quantile(0.99)), Max: ms(h.max())})
	}
	for k, n := range r.errs {
		rep.Errors = append(rep.Errors, ErrorKind{Step: k[0], Kind: k[1], Count: n})
	}
	sort.Slice(rep.Errors, func(i, j int) bool { return rep.Errors[i].Count > rep.Errors[j].Count })
	last := int(elapsed / time.Second)
	for i := 0; i <= last && i < len(r.ticks); i++ {
		rep.PerTick = append(rep.PerTick, Tick{Second: i, OK: r.ticks[i].ok.Load(), Failed: r.ticks[i].failed.Load()})
	}
	return rep
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Print writes the report for a human.
func (rep *BenchReport) Print(w io.Writer) {
	unit := "flows"
	switch rep.Mode {
	case modeVerify:
		unit = "verifies"
	case modeLogin:
		unit = "logins"
	}
	loop := fmt.Sprintf("concurrency %d", rep.Concurrency)
	if rep.Rate > 0 {
		loop = fmt.Sprintf("open loop at %g/s (latency from each scheduled start)", rep.Rate)
	}
	fmt.Fprintf(w, "mode %s: %d devices, %s, %.1f s\n", rep.Mode, rep.Devices, loop, rep.Seconds)
	fmt.Fprintf(w, "%d %s ok, %d failed: %.1f %s/s\n", rep.OK, unit, rep.Failed, rep.PerSec, unit)
	if rep.Unstarted > 0 {
		fmt.Fprintf(w, "%d arrivals never started: no device was free (too few devices for the rate, or the server fell behind)\n", rep.Unstarted)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-10s %9s %9s %9s %9s %9s %9s\n", "step", "count", "mean ms", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, s := range rep.Steps {
		fmt.Fprintf(w, "%-10s %9d %9.2f %9.2f %9.2f %9.2f %9.2f\n", s.Step, s.Count, s.Mean, s.P50, s.P90, s.P99, s.Max)
	}
	if len(rep.Errors) == 0 {
		fmt.Fprintln(w, "\nno errors")
		return
	}
	fmt.Fprintln(w, "\nerrors:")
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "  %-10s %-40s %d\n", e.Step, e.Kind, e.Count)
	}
}
