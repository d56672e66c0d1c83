package sim

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// ModeRadius drives the network feed: a packet gateway's RADIUS accounting.
const ModeRadius = "radius"

// RadiusBenchConfig is a load of Accounting-Requests from one simulated
// packet gateway: Subscribers, each with a data session or none; Start
// takes a free address of Prefix, Stop gives it back, Interim-Update
// confirms. Each subscriber has at most one request in flight, as a
// gateway's session does.
type RadiusBenchConfig struct {
	Addr        string // the accounting server, host:port
	Secret      string
	NAS         string // NAS-Identifier; default "numverify-bench"
	Subscribers int
	Open        int           // sessions opened before the timed run (default: 80% of Subscribers)
	Rate        float64       // Accounting-Requests per second (open loop)
	Duration    time.Duration // of the timed run
	FirstMSISDN string        // subscriber i has this plus i
	Prefix      netip.Prefix  // IPv4 addresses handed out; at least Subscribers of them
	// Mix: the shares of Start and Stop (the rest are Interim-Updates);
	// default 15% and 15%.
	StartShare, StopShare float64
	Sockets               int           // UDP sockets (256 requests in flight each); default 64
	Timeout               time.Duration // retransmit after; default 2 s
	Retries               int           // retransmissions before giving up; default 2
	Progress              io.Writer     // a line every ReportEvery; optional
	ReportEvery           time.Duration
	// OpenSessions, optional, reads the open sessions the server recorded for
	// NAS (MSISDN → address), to compare with the generator's model.
	OpenSessions func(ctx context.Context, nas string) (map[string]netip.Prefix, error)
}

// RadiusBenchReport is what a run did.
type RadiusBenchReport struct {
	Opened          int               `json:"opened_before"`     // Starts of the preload
	OpenUnanswered  uint64            `json:"opened_unanswered"` // Starts of the preload given up (the model is then unsure)
	Sent            map[string]uint64 `json:"sent"`              // timed run, by status type
	Answered        uint64            `json:"answered"`
	Unanswered      uint64            `json:"unanswered"` // after every retransmission
	Retransmissions uint64            `json:"retransmissions"`
	Backlogged      uint64            `json:"backlogged"` // not sent: every socket's identifiers in flight
	Elapsed         time.Duration     `json:"elapsed_ns"`
	Rate            float64           `json:"rate"` // answered per second
	P50             time.Duration     `json:"p50_ns"`
	P99             time.Duration     `json:"p99_ns"`
	Max             time.Duration     `json:"max_ns"`
	Verify          *RadiusVerify     `json:"verify,omitempty"`
}

// RadiusVerify compares the model's open sessions with the table's.
type RadiusVerify struct {
	Model        int `json:"model_open"`
	Table        int `json:"table_open"`
	Missing      int `json:"missing"`       // open in the model, not in the table
	Extra        int `json:"extra"`         // open in the table, not in the model
	WrongAddress int `json:"wrong_address"` // open in both, at another address
}

// Exact reports whether the table matches the model.
func (v *RadiusVerify) Exact() bool {
	return v.Missing == 0 && v.Extra == 0 && v.WrongAddress == 0 && v.Model == v.Table
}

// Print writes the report for a human.
func (r *RadiusBenchReport) Print(w io.Writer) {
	var sent uint64
	for _, n := range r.Sent {
		sent += n
	}
	fmt.Fprintf(w, "radius: %d sessions opened first (%d of them unanswered); %d Accounting-Requests in %s (start %d, interim %d, stop %d)\n",
		r.Opened, r.OpenUnanswered, sent, r.Elapsed.Round(time.Millisecond), r.Sent["start"], r.Sent["interim"], r.Sent["stop"])
	fmt.Fprintf(w, "answered %d (%.0f/s), unanswered %d, retransmissions %d, not sent for backlog %d\n",
		r.Answered, r.Rate, r.Unanswered, r.Retransmissions, r.Backlogged)
	fmt.Fprintf(w, "latency p50 %s  p99 %s  max %s\n", r.P50, r.P99, r.Max)
	if v := r.Verify; v != nil {
		verdict := "the table matches the model exactly"
		switch {
		case !v.Exact() && r.OpenUnanswered+r.Unanswered > 0:
			verdict = fmt.Sprintf("MISMATCH (%d requests were given up unanswered: the model cannot know what they did)", r.OpenUnanswered+r.Unanswered)
		case !v.Exact():
			verdict = "MISMATCH"
		}
		fmt.Fprintf(w, "verify: model %d open, table %d open, missing %d, extra %d, wrong address %d: %s\n",
			v.Model, v.Table, v.Missing, v.Extra, v.WrongAddress, verdict)
	}
}

func (c *RadiusBenchConfig) defaults() error {
	if c.NAS == "" {
		c.NAS = "numverify-bench"
	}
	if c.StartShare == 0 && c.StopShare == 0 {
		c.StartShare, c.StopShare = 0.15, 0.15
	}
	if c.Open == 0 {
		c.Open = c.Subscribers * 8 / 10
	}
	if c.Sockets <= 0 {
		c.Sockets = 64
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Retries < 0 {
		c.Retries = 0
	} else if c.Retries == 0 {
		c.Retries = 2
	}
	if c.ReportEvery <= 0 {
		c.ReportEvery = 10 * time.Second
	}
	if c.FirstMSISDN == "" {
		c.FirstMSISDN = "+33700000000"
	}
	var problems []string
	if c.Secret == "" {
		problems = append(problems, "a RADIUS secret is required")
	}
	if c.Subscribers <= 0 || c.Rate <= 0 || c.Duration <= 0 {
		problems = append(problems, "subscribers, rate and duration must be positive")
	}
	if c.Open < 0 || c.Open > c.Subscribers {
		problems = append(problems, "the sessions opened first must be between 0 and the subscribers")
	}
	if !c.Prefix.Addr().Is4() || c.Prefix.Bits() > 30 || uint64(1)<<(32-c.Prefix.Bits())-2 < uint64(c.Subscribers) {
		problems = append(problems, fmt.Sprintf("the prefix %s must be IPv4 with at least %d host addresses", c.Prefix, c.Subscribers))
	}
	if c.StartShare < 0 || c.StopShare < 0 || c.StartShare+c.StopShare > 1 {
		problems = append(problems, "the Start and Stop shares must add up to at most 1")
	}
	if len(problems) > 0 {
		return fmt.Errorf("radius bench: %s", strings.Join(problems, "; "))
	}
	return nil
}

// subscriber is the model of one subscriber's data session.
type subscriber struct {
	msisdn  string
	digits  string // Calling-Station-Id: international, no '+'
	session string // Acct-Session-Id; "" when idle
	ip      netip.Addr
	busy    bool // a request in flight
	slot    int  // position in its set (idle or active)
}

// radiusModel is the generator's state; one goroutine (the scheduler)
// changes it, completions only clear busy under mu.
type radiusModel struct {
	mu     sync.Mutex
	subs   []subscriber
	idle   []int // subscriber indexes
	active []int
	free   []netip.Addr // FIFO of free addresses
	runID  string
	serial uint64
}

func (m *radiusModel) move(i int, from, to *[]int) {
	s := &m.subs[i]
	last := (*from)[len(*from)-1]
	(*from)[s.slot] = last
	m.subs[last].slot = s.slot
	*from = (*from)[:len(*from)-1]
	s.slot = len(*to)
	*to = append(*to, i)
}

// pick returns a random subscriber of set not busy, or -1.
func (m *radiusModel) pick(set []int) int {
	for range 8 {
		if len(set) == 0 {
			return -1
		}
		i := set[mathrand.IntN(len(set))]
		if !m.subs[i].busy {
			return i
		}
	}
	return -1
}

// next chooses the next request's status and subscriber and applies it to
// the model; ok is false when no subscriber is free for it.
func (m *radiusModel) next(startShare, stopShare float64, forceStart bool) (status rfc2866.AcctStatusType, i int, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := mathrand.Float64()
	switch {
	case forceStart || r < startShare:
		if i = m.pick(m.idle); i < 0 || len(m.free) == 0 {
			return 0, 0, false
		}
		s := &m.subs[i]
		m.serial++
		s.session = m.runID + "-" + strconv.FormatUint(m.serial, 10)
		s.ip, m.free = m.free[0], m.free[1:]
		m.move(i, &m.idle, &m.active)
		status = rfc2866.AcctStatusType_Value_Start
	case r < startShare+stopShare:
		if i = m.pick(m.active); i < 0 {
			return 0, 0, false
		}
		m.move(i, &m.active, &m.idle)
		status = rfc2866.AcctStatusType_Value_Stop
	default:
		if i = m.pick(m.active); i < 0 {
			return 0, 0, false
		}
		status = rfc2866.AcctStatusType_Value_InterimUpdate
	}
	m.subs[i].busy = true
	return status, i, true
}

// packet builds the request for subscriber i as the model now has it (for a
// Stop: the session it just ended, whose address it frees).
func (m *radiusModel) packet(cfg *RadiusBenchConfig, status rfc2866.AcctStatusType, i int) *radius.Packet {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &m.subs[i]
	p := accountingRequest{status: status, nas: cfg.NAS, sessionID: s.session, digits: s.digits, ip: s.ip, apn: "internet"}.packet(cfg.Secret)
	if status == rfc2866.AcctStatusType_Value_Stop {
		m.free = append(m.free, s.ip)
		s.session, s.ip = "", netip.Addr{}
	}
	return p
}

func (m *radiusModel) done(i int) {
	m.mu.Lock()
	m.subs[i].busy = false
	m.mu.Unlock()
}

// openSessions is the model's MSISDN → address of every open session.
func (m *radiusModel) openSessions() map[string]netip.Prefix {
	m.mu.Lock()
	defer m.mu.Unlock()
	open := make(map[string]netip.Prefix, len(m.active))
	for _, i := range m.active {
		open[m.subs[i].msisdn] = netip.PrefixFrom(m.subs[i].ip, 32)
	}
	return open
}

func newRadiusModel(cfg *RadiusBenchConfig) (*radiusModel, error) {
	first, ok := new(big.Int).SetString(strings.TrimPrefix(cfg.FirstMSISDN, "+"), 10)
	if !ok || !strings.HasPrefix(cfg.FirstMSISDN, "+") {
		return nil, fmt.Errorf("radius bench: first MSISDN %q: want +digits", cfg.FirstMSISDN)
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	m := &radiusModel{subs: make([]subscriber, cfg.Subscribers), idle: make([]int, cfg.Subscribers), runID: hex.EncodeToString(id)}
	for i := range m.subs {
		digits := new(big.Int).Add(first, big.NewInt(int64(i))).String()
		m.subs[i] = subscriber{msisdn: "+" + digits, digits: digits, slot: i}
		m.idle[i] = i
	}
	base := cfg.Prefix.Masked().Addr().As4()
	start := binary.BigEndian.Uint32(base[:]) + 1
	m.free = make([]netip.Addr, cfg.Subscribers)
	for i := range m.free {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], start+uint32(i))
		m.free[i] = netip.AddrFrom4(a)
	}
	return m, nil
}

// radiusPending is a request in flight.
type radiusPending struct {
	wire     []byte
	sub      int // -1: not a subscriber's (Accounting-On)
	first    time.Time
	last     time.Time
	attempts int
	answered chan struct{}
	window   chan struct{} // the preload's, released when answered or given up; nil in the timed run
}

// preloadWindow is the most Starts of the preload in flight at once.
const preloadWindow = 512

// radiusSocket is one UDP socket with its 256 identifiers.
type radiusSocket struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	pending [256]*radiusPending
	freeIDs chan byte
}

// radiusRun is one run's sockets and counters.
type radiusRun struct {
	cfg       *RadiusBenchConfig
	model     *radiusModel
	sockets   []*radiusSocket
	latency   histogram
	interval  atomic.Pointer[histogram] // the answers since the last progress line
	answered  atomic.Uint64
	lost      atomic.Uint64
	resent    atomic.Uint64
	inFlight  sync.WaitGroup
	nextSock  atomic.Uint64
	sentByKey sync.Map // status → *atomic.Uint64
}

// RunRadiusBench sends Accounting-On, opens cfg.Open sessions, then sends
// the mix at cfg.Rate for cfg.Duration, waits for every answer (or its last
// retransmission), and compares the table with the model.
func RunRadiusBench(ctx context.Context, cfg RadiusBenchConfig) (*RadiusBenchReport, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	model, err := newRadiusModel(&cfg)
	if err != nil {
		return nil, err
	}
	run := &radiusRun{cfg: &cfg, model: model}
	if err := run.open(); err != nil {
		return nil, err
	}
	defer run.close()
	stop := make(chan struct{})
	go run.retransmit(stop)
	defer close(stop)

	// A restarted gateway's Accounting-On closes what an earlier run left open.
	on := radius.New(radius.CodeAccountingRequest, []byte(cfg.Secret))
	_ = rfc2866.AcctStatusType_Set(on, rfc2866.AcctStatusType_Value_AccountingOn)
	_ = rfc2865.NASIdentifier_SetString(on, cfg.NAS)
	_ = rfc2866.AcctSessionID_SetString(on, model.runID)
	if p, ok := run.send(on, -1); !ok || !run.wait(ctx, p) {
		return nil, fmt.Errorf("radius bench: Accounting-On to %s not answered", cfg.Addr)
	}
	report := &RadiusBenchReport{Sent: map[string]uint64{}}
	report.Opened = run.schedule(ctx, cfg.Open, 0, true)
	run.inFlight.Wait()
	report.OpenUnanswered = run.lost.Swap(0)
	run.latency = histogram{}
	run.answered.Store(0)
	run.resent.Store(0)
	run.sentByKey = sync.Map{}
	start := time.Now()
	backlog := run.schedule(ctx, 0, cfg.Duration, false)
	run.inFlight.Wait()
	report.Elapsed = time.Since(start)
	report.Backlogged = uint64(backlog)
	run.sentByKey.Range(func(k, v any) bool {
		report.Sent[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	report.Answered, report.Unanswered, report.Retransmissions = run.answered.Load(), run.lost.Load(), run.resent.Load()
	report.Rate = float64(report.Answered) / min(report.Elapsed, cfg.Duration).Seconds()
	report.P50, report.P99, report.Max = run.latency.quantile(0.5), run.latency.quantile(0.99), run.latency.max()
	if cfg.OpenSessions != nil {
		table, err := cfg.OpenSessions(ctx, cfg.NAS)
		if err != nil {
			return report, fmt.Errorf("radius bench: read the sessions: %w", err)
		}
		report.Verify = compareSessions(model.openSessions(), table)
	}
	return report, nil
}

func compareSessions(model, table map[string]netip.Prefix) *RadiusVerify {
	v := &RadiusVerify{Model: len(model), Table: len(table)}
	for msisdn, ip := range model {
		got, ok := table[msisdn]
		switch {
		case !ok:
			v.Missing++
		case got != ip:
			v.WrongAddress++
		}
	}
	for msisdn := range table {
		if _, ok := model[msisdn]; !ok {
			v.Extra++
		}
	}
	return v
}

func (r *radiusRun) open() error {
	server, err := net.ResolveUDPAddr("udp", r.cfg.Addr)
	if err != nil {
		return fmt.Errorf("radius bench: %w", err)
	}
	for range r.cfg.Sockets {
		conn, err := net.DialUDP("udp", nil, server)
		if err != nil {
			r.close()
			return fmt.Errorf("radius bench: %w", err)
		}
		_ = conn.SetReadBuffer(4 << 20)
		s := &radiusSocket{conn: conn, freeIDs: make(chan byte, 256)}
		for id := range 256 {
			s.freeIDs <- byte(id)
		}
		r.sockets = append(r.sockets, s)
		go r.receive(s)
	}
	return nil
}

func (r *radiusRun) close() {
	for _, s := range r.sockets {
		s.conn.Close()
	}
}

// schedule sends n Starts (preload, as fast as the rate allows) or the mix
// for d, on the open-loop schedule of the rate. It returns how many were
// sent (preload) or not sent for backlog (timed run).
func (r *radiusRun) schedule(ctx context.Context, n int, d time.Duration, preload bool) int {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	count, skipped := 0, 0
	nextReport, intervalStart := start.Add(r.cfg.ReportEvery), start
	r.interval.Store(&histogram{})
	// The preload is set-up, not measured: at most preloadWindow Starts in
	// flight, so a server slower than the rate is not made to drop them (a
	// Start given up leaves the model unsure of its session).
	var window chan struct{}
	if preload {
		window = make(chan struct{}, preloadWindow)
	}
	for k := 0; ; k++ {
		due := start.Add(time.Duration(k) * interval)
		if preload && count >= n || !preload && due.Sub(start) >= d || ctx.Err() != nil {
			break
		}
		if wait := time.Until(due); wait > time.Millisecond {
			time.Sleep(wait)
		}
		// An identifier first: the model changes only for what is sent.
		sock, id, free := r.reserve()
		if !free {
			if preload {
				time.Sleep(time.Millisecond) // every identifier in flight: wait for answers
				continue
			}
			skipped++
			continue
		}
		status, i, ok := r.model.next(r.cfg.StartShare, r.cfg.StopShare, preload)
		if !ok {
			sock.freeIDs <- id
			if preload {
				time.Sleep(time.Millisecond) // every idle subscriber busy: wait for answers
				continue
			}
			skipped++
			continue
		}
		p := r.model.packet(r.cfg, status, i)
		if window != nil {
			window <- struct{}{}
		}
		if _, sent := r.sendOn(sock, id, p, i, window); !sent {
			if window != nil {
				<-window
			}
			r.model.done(i)
			skipped++
			continue
		}
		count++
		r.counter(statusName(status)).Add(1)
		if r.cfg.Progress != nil && time.Now().After(nextReport) {
			h := r.interval.Swap(&histogram{})
			fmt.Fprintf(r.cfg.Progress, "radius: %s sent %d answered %d unanswered %d; this interval: %.0f answered/s, p50 %s, p99 %s\n",
				time.Since(start).Round(time.Second), count, r.answered.Load(), r.lost.Load(),
				float64(h.count())/time.Since(intervalStart).Seconds(), h.quantile(0.5), h.quantile(0.99))
			nextReport, intervalStart = nextReport.Add(r.cfg.ReportEvery), time.Now()
		}
	}
	if preload {
		return count
	}
	return skipped
}

func (r *radiusRun) counter(status string) *atomic.Uint64 {
	c, _ := r.sentByKey.LoadOrStore(status, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

func statusName(s rfc2866.AcctStatusType) string {
	switch s {
	case rfc2866.AcctStatusType_Value_Start:
		return "start"
	case rfc2866.AcctStatusType_Value_Stop:
		return "stop"
	}
	return "interim"
}

// send puts p in flight on a socket with a free identifier.
func (r *radiusRun) send(p *radius.Packet, sub int) (*radiusPending, bool) {
	s, id, ok := r.reserve()
	if !ok {
		return nil, false
	}
	return r.sendOn(s, id, p, sub, nil)
}

// reserve takes a free identifier of a socket.
func (r *radiusRun) reserve() (*radiusSocket, byte, bool) {
	for range len(r.sockets) {
		s := r.sockets[r.nextSock.Add(1)%uint64(len(r.sockets))]
		select {
		case id := <-s.freeIDs:
			return s, id, true
		default:
		}
	}
	return nil, 0, false
}

// sendOn puts p in flight with a reserved identifier.
func (r *radiusRun) sendOn(s *radiusSocket, id byte, p *radius.Packet, sub int, window chan struct{}) (*radiusPending, bool) {
	p.Identifier = id
	wire, err := p.Encode()
	if err != nil {
		s.freeIDs <- id
		return nil, false
	}
	now := time.Now()
	pending := &radiusPending{wire: wire, sub: sub, first: now, last: now, attempts: 1, answered: make(chan struct{}), window: window}
	r.inFlight.Add(1)
	s.mu.Lock()
	s.pending[id] = pending
	s.mu.Unlock()
	_, _ = s.conn.Write(wire)
	return pending, true
}

func (r *radiusRun) wait(ctx context.Context, p *radiusPending) bool {
	select {
	case <-p.answered:
		return true
	case <-ctx.Done():
		return false
	case <-time.After(time.Duration(r.cfg.Retries+1)*r.cfg.Timeout + time.Second):
		return false
	}
}

// receive matches answers to requests by identifier and authenticator.
func (r *radiusRun) receive(s *radiusSocket) {
	buf := make([]byte, radius.MaxPacketLength)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < 20 || radius.Code(buf[0]) != radius.CodeAccountingResponse {
			continue
		}
		s.mu.Lock()
		p := s.pending[buf[1]]
		if p == nil || !radius.IsAuthenticResponse(buf[:n], p.wire, []byte(r.cfg.Secret)) {
			s.mu.Unlock()
			continue
		}
		s.pending[buf[1]] = nil
		s.mu.Unlock()
		d := time.Since(p.first)
		r.latency.record(d)
		if h := r.interval.Load(); h != nil {
			h.record(d)
		}
		r.answered.Add(1)
		r.finish(s, buf[1], p)
	}
}

// release frees the request's slot of the preload's window, if any.
func (p *radiusPending) release() {
	if p.window != nil {
		<-p.window
	}
}

func (r *radiusRun) finish(s *radiusSocket, id byte, p *radiusPending) {
	if p.sub >= 0 {
		r.model.done(p.sub)
	}
	close(p.answered)
	p.release()
	s.freeIDs <- id
	r.inFlight.Done()
}

// retransmit resends what waited Timeout, and gives up after Retries.
func (r *radiusRun) retransmit(stop <-chan struct{}) {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		now := time.Now()
		for _, s := range r.sockets {
			type expiry struct {
				id byte
				p  *radiusPending
			}
			var expired []expiry
			s.mu.Lock()
			for id, p := range s.pending {
				if p == nil || now.Sub(p.last) < r.cfg.Timeout {
					continue
				}
				if p.attempts > r.cfg.Retries {
					s.pending[id] = nil
					expired = append(expired, expiry{byte(id), p})
					continue
				}
				p.attempts++
				p.last = now
				r.resent.Add(1)
				_, _ = s.conn.Write(p.wire)
			}
			s.mu.Unlock()
			for _, e := range expired {
				r.lost.Add(1)
				if e.p.sub >= 0 {
					r.model.done(e.p.sub)
				}
				e.p.release()
				s.freeIDs <- e.id
				r.inFlight.Done()
			}
		}
	}
}
