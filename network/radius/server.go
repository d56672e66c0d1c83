// Package radius is the network feed: a RADIUS accounting server (RFC 2866;
// 3GPP TS 29.061 on the Gi/SGi interface) through which a packet gateway
// (GGSN, PGW, SMF) tells who holds which address. layeh.com/radius reads
// and writes the wire format; this file holds the semantics, in the order a
// request meets them:
//
//	receive  one datagram: a known NAS, its Request Authenticator, a packet
//	decide   the packet → a session event (or why none)    decide
//	commit   concurrent events → one durable transaction   collect, commit
//	answer   Accounting-Response, only once committed      answer
//
// What the session table does with an event (newest Start wins, a Stop
// closes its own session only, …) is network.Store.ApplyAccounting.
package radius

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"

	"github.com/numverify/numverify/internal/pg"
	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/network/radius/threegpp"
)

// Store is what the server needs of the session table.
type Store interface {
	ApplyAccounting(ctx context.Context, events []network.AccountingEvent, remember time.Duration) ([]network.AccountingResult, []error, error)
	PurgeAccountingStops(ctx context.Context, before time.Time) (int64, error)
	CountOpenSessions(ctx context.Context) (int64, error)
}

var _ Store = (*network.Store)(nil)

// Config is the server's settings.
type Config struct {
	Clients       *Clients              // who may send, with which secret
	Logger        *slog.Logger          // never given a number
	Registerer    prometheus.Registerer // optional
	Now           func() time.Time      // default time.Now
	RememberStops time.Duration         // default network.DefaultRememberStops
	MaxBatch      int                   // events per transaction; default and at most network.MaxAccountingBatch
	QueueSize     int                   // events waiting for a commit before requests are dropped; default 16384
	MaxWait       time.Duration         // a request not in a commit this long after its receipt is dropped; default 1 s
	Readers       int                   // goroutines reading the socket; default 2
	Committers    int                   // transactions in flight at once, each for its share of the sessions; default 2
	// OpenSessions is how many sessions committed as open are remembered,
	// so that their Interim-Updates are answered without the table
	// (opensessions.go); 0 means DefaultOpenSessions, negative none.
	OpenSessions int
}

// DefaultOpenSessions is the open-session memory's default capacity (about
// 64 MB when full).
const DefaultOpenSessions = 1 << 20

// openSessionsMaxAge is how long a remembered session is trusted after its
// commit (at most the remembering window of Stops).
const openSessionsMaxAge = 5 * time.Minute

// Server is the accounting server. Serve it on one socket.
type Server struct {
	store   Store
	cfg     Config
	metrics *metrics
	queues  []chan *request // one per committer
	open    *openSessions   // nil: disabled
	lastLog sync.Map        // reason → *atomic.Int64 (unix seconds of the last warning)

	inFlightMu sync.Mutex
	inFlight   map[requestKey]struct{} // queued, not yet answered
}

// requestKey identifies a request and its retransmissions (RFC 5080 §2.2.2).
type requestKey struct {
	from          string
	identifier    byte
	authenticator [16]byte
}

// request is a decided Accounting-Request waiting for its commit.
type request struct {
	conn   net.PacketConn
	from   net.Addr
	packet *radius.Packet
	status string
	events []network.AccountingEvent
	key    requestKey
	at     time.Time // received (monotonic)
}

// DefaultMaxWait bounds the time from a request's receipt to the start of
// its commit. A gateway retransmits what it has no answer for after a few
// seconds (radclient and the bench: 2 s): a request answered later is work
// done for nothing, as its retransmission is on its way, while under
// overload every request would wait that long. So a request that waited
// longer is dropped unanswered (reason overloaded) and the server spends
// its commits on requests it can still answer in time; the gateway's
// retransmission gets a fresh chance.
const DefaultMaxWait = time.Second

// NewServer returns a server recording into store.
func NewServer(store Store, cfg Config) (*Server, error) {
	if cfg.Clients == nil || cfg.Clients.Empty() {
		return nil, errors.New("radius: no secret: give a shared secret or a clients file")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RememberStops <= 0 {
		cfg.RememberStops = network.DefaultRememberStops
	}
	if cfg.MaxBatch <= 0 || cfg.MaxBatch > network.MaxAccountingBatch {
		cfg.MaxBatch = network.MaxAccountingBatch
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 16384
	}
	if cfg.Readers <= 0 {
		cfg.Readers = 2
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Committers <= 0 {
		cfg.Committers = 2
	}
	if cfg.OpenSessions == 0 {
		cfg.OpenSessions = DefaultOpenSessions
	}
	s := &Server{store: store, cfg: cfg, inFlight: map[requestKey]struct{}{},
		open: newOpenSessions(cfg.OpenSessions, min(openSessionsMaxAge, cfg.RememberStops), time.Now)}
	for range cfg.Committers {
		s.queues = append(s.queues, make(chan *request, cfg.QueueSize))
	}
	s.metrics = newMetrics(cfg.Registerer, func() float64 {
		n := 0
		for _, q := range s.queues {
			n += len(q)
		}
		return float64(n)
	})
	return s, nil
}

// Serve answers accounting on conn until ctx ends; then it stops reading,
// commits and answers what it already received, and closes conn.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	var collectors sync.WaitGroup
	for _, q := range s.queues {
		collectors.Go(func() { s.collect(q) })
	}
	var readers, housekeeping sync.WaitGroup
	for range s.cfg.Readers {
		readers.Go(func() { s.receive(conn) })
	}
	housekeeping.Go(func() { s.keepHouse(ctx) })
	<-ctx.Done()
	_ = conn.SetReadDeadline(time.Now())
	readers.Wait()
	for _, q := range s.queues {
		close(q)
	}
	collectors.Wait()
	housekeeping.Wait()
	return conn.Close()
}

// receive reads datagrams until the socket's deadline passes.
func (s *Server) receive(conn net.PacketConn) {
	buf := make([]byte, radius.MaxPacketLength+1)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || isTimeout(err) {
				return
			}
			s.cfg.Logger.Warn("radius: read", "err", err)
			continue
		}
		s.handle(conn, from, buf[:n])
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handle authenticates one datagram, decides it, and queues its events (or
// answers at once when there is nothing to record).
func (s *Server) handle(conn net.PacketConn, from net.Addr, b []byte) {
	src := addrOf(from)
	secret, client, known := s.cfg.Clients.secret(src)
	switch {
	case !known:
		s.reject(statusUnknown, reasonUnknownClient, "source", src.String())
		return
	case len(b) < 20 || len(b) > radius.MaxPacketLength:
		s.reject(statusUnknown, reasonMalformed, "client", client)
		return
	case radius.Code(b[0]) != radius.CodeAccountingRequest:
		s.reject(statusUnknown, reasonNotAccounting, "client", client)
		return
	case !radius.IsAuthenticRequest(b, secret):
		s.reject(statusUnknown, reasonBadAuthenticator, "client", client)
		return
	}
	packet, err := radius.Parse(b, secret)
	if err != nil {
		s.reject(statusUnknown, reasonMalformed, "client", client)
		return
	}
	d := decide(packet, src, s.cfg.Now())
	switch {
	case !d.answer:
		s.reject(d.status, d.reason, "client", client)
	case d.reason != "":
		s.metrics.rejected.WithLabelValues(d.reason).Inc()
		s.metrics.requests.WithLabelValues(d.status, outcomeIgnored).Inc()
		s.answer(conn, from, packet)
	case len(d.events) == 0:
		s.metrics.requests.WithLabelValues(d.status, outcomeIgnored).Inc()
		s.answer(conn, from, packet)
	case s.open.confirms(d.events):
		// An Interim-Update of a session committed as open: nothing to
		// write, whatever happened to it since (opensessions.go).
		s.metrics.requests.WithLabelValues(d.status, string(network.OutcomeConfirmed)).Inc()
		s.metrics.remembered.Inc()
		s.answer(conn, from, packet)
	default:
		// A retransmission of a request still waiting for its commit is
		// answered by that commit: queueing it again would only add work
		// when the server is slowest.
		key := requestKey{from: from.String(), identifier: packet.Identifier, authenticator: packet.Authenticator}
		s.inFlightMu.Lock()
		_, waiting := s.inFlight[key]
		s.inFlight[key] = struct{}{}
		s.inFlightMu.Unlock()
		if waiting {
			s.metrics.requests.WithLabelValues(d.status, outcomeInFlight).Inc()
			return
		}
		select {
		case s.queues[s.committerOf(d.events[0])] <- &request{conn: conn, from: from, packet: packet, status: d.status, events: d.events, key: key, at: time.Now()}:
		default: // the NAS retransmits; better than queueing past its timeout
			s.done(key)
			s.reject(d.status, reasonOverloaded, "client", client)
		}
	}
}

// done forgets a request once answered (or given up).
func (s *Server) done(key requestKey) {
	s.inFlightMu.Lock()
	delete(s.inFlight, key)
	s.inFlightMu.Unlock()
}

// decision is what a packet asks of the session table.
type decision struct {
	status string                    // Acct-Status-Type, as a metric label
	events []network.AccountingEvent // to commit, then answer
	reason string                    // why nothing is recorded
	answer bool                      // an Accounting-Response is due (once events are committed)
}

// Acct-Status-Type labels.
const (
	statusStart   = "start"
	statusInterim = "interim"
	statusStop    = "stop"
	statusOn      = "accounting_on"
	statusOff     = "accounting_off"
	statusOther   = "other"
	statusMissing = "missing" // no Acct-Status-Type
	statusUnknown = "unknown" // not decoded: unauthenticated or malformed
)

// decide turns an authentic Accounting-Request received at now from src into
// session events. Unknown attributes are ignored. RFC 2866 wants an answer
// for what the server recorded; a request it can never record (no number or
// address: not a data session of a subscriber we resolve) is recorded as
// nothing and answered, or the NAS would send it forever; one without
// Acct-Status-Type or Acct-Session-Id, or with a malformed attribute, is
// invalid and silently discarded.
func decide(p *radius.Packet, src netip.Addr, now time.Time) decision {
	statusType, err := rfc2866.AcctStatusType_Lookup(p)
	if err != nil {
		return decision{status: statusMissing, reason: reasonFor(err, reasonMissingStatusType)}
	}
	d := decision{status: statusLabel(statusType), answer: true}
	nas, err := nasOf(p, src)
	if err != nil {
		return decision{status: d.status, reason: reasonMalformed}
	}
	at, err := eventTime(p, now)
	if err != nil {
		return decision{status: d.status, reason: reasonMalformed}
	}
	switch statusType {
	case rfc2866.AcctStatusType_Value_AccountingOn, rfc2866.AcctStatusType_Value_AccountingOff:
		d.events = []network.AccountingEvent{{Kind: network.AccountingCloseNAS, NAS: nas, At: at}}
		return d
	case rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_InterimUpdate, rfc2866.AcctStatusType_Value_Stop:
	default:
		return d // recorded as nothing: Failed, tunnel accounting, …
	}
	sessionID, err := rfc2866.AcctSessionID_LookupString(p)
	if err != nil || sessionID == "" {
		return decision{status: d.status, reason: reasonMissingSessionID}
	}
	if statusType == rfc2866.AcctStatusType_Value_Stop {
		d.events = []network.AccountingEvent{{Kind: network.AccountingClose, NAS: nas, SessionID: sessionID, At: at}}
		return d
	}
	msisdn, reason := msisdnOf(p)
	if reason != "" {
		d.reason = reason
		return d
	}
	addresses, reason := addressesOf(p)
	if reason != "" {
		d.reason, d.answer = reason, reason != reasonMalformed
		return d
	}
	apn, rat, imsi := sessionAttributes(p)
	for _, ip := range addresses {
		d.events = append(d.events, network.AccountingEvent{Kind: network.AccountingOpen, NAS: nas, SessionID: sessionID, At: at,
			MSISDN: msisdn, IP: ip, APN: apn, RAT: rat, IMSI: imsi})
	}
	return d
}

func statusLabel(t rfc2866.AcctStatusType) string {
	switch t {
	case rfc2866.AcctStatusType_Value_Start:
		return statusStart
	case rfc2866.AcctStatusType_Value_InterimUpdate:
		return statusInterim
	case rfc2866.AcctStatusType_Value_Stop:
		return statusStop
	case rfc2866.AcctStatusType_Value_AccountingOn:
		return statusOn
	case rfc2866.AcctStatusType_Value_AccountingOff:
		return statusOff
	}
	return statusOther
}

// reasonFor is missing when the attribute is absent, malformed otherwise.
func reasonFor(err error, missing string) string {
	if errors.Is(err, radius.ErrNoAttribute) {
		return missing
	}
	return reasonMalformed
}

// nasOf names the reporting gateway: NAS-IP-Address, NAS-IPv6-Address or
// NAS-Identifier, else the address the request came from.
func nasOf(p *radius.Packet, src netip.Addr) (string, error) {
	if ip, err := rfc2865.NASIPAddress_Lookup(p); err == nil {
		return ip.String(), nil
	} else if !errors.Is(err, radius.ErrNoAttribute) {
		return "", err
	}
	if ip, err := rfc3162.NASIPv6Address_Lookup(p); err == nil {
		return ip.String(), nil
	} else if !errors.Is(err, radius.ErrNoAttribute) {
		return "", err
	}
	if id, err := rfc2865.NASIdentifier_LookupString(p); err == nil && id != "" {
		return id, nil
	}
	return src.String(), nil
}

// maxDelay bounds Acct-Delay-Time.
const maxDelay = 24 * time.Hour

// eventTime is Event-Timestamp, else the receipt less Acct-Delay-Time; never
// later than the receipt (a gateway's clock ahead of ours must not open a
// session in the future, where nobody resolves it now).
func eventTime(p *radius.Packet, now time.Time) (time.Time, error) {
	ts, err := rfc2869.EventTimestamp_Lookup(p)
	switch {
	case err == nil:
		return earliest(ts.UTC(), now), nil
	case !errors.Is(err, radius.ErrNoAttribute):
		return time.Time{}, err
	}
	delay, err := rfc2866.AcctDelayTime_Lookup(p)
	switch {
	case errors.Is(err, radius.ErrNoAttribute):
		return now, nil
	case err != nil:
		return time.Time{}, err
	}
	return now.Add(-min(time.Duration(delay)*time.Second, maxDelay)), nil
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// msisdnOf reads Calling-Station-Id: the MSISDN in international format,
// without '+' (TS 29.061); a leading '+' is accepted.
func msisdnOf(p *radius.Packet) (string, string) {
	raw, err := rfc2865.CallingStationID_LookupString(p)
	if err != nil || strings.TrimSpace(raw) == "" {
		return "", reasonMissingMSISDN
	}
	digits := strings.TrimPrefix(strings.TrimSpace(raw), "+")
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", reasonInvalidMSISDN
		}
	}
	msisdn, valid := numbers.normalize(digits)
	if !valid {
		return "", reasonInvalidMSISDN
	}
	return msisdn, ""
}

// addressesOf reads Framed-IP-Address (a /32) and Framed-IPv6-Prefix (its
// /64); a dual-stack session has both.
func addressesOf(p *radius.Packet) ([]netip.Prefix, string) {
	var addresses []netip.Prefix
	if ip, err := rfc2865.FramedIPAddress_Lookup(p); err == nil {
		a, _ := netip.AddrFromSlice(ip.To4())
		addresses = append(addresses, netip.PrefixFrom(a, 32))
	} else if !errors.Is(err, radius.ErrNoAttribute) {
		return nil, reasonMalformed
	}
	if prefix, err := rfc3162.FramedIPv6Prefix_Lookup(p); err == nil {
		bits, _ := prefix.Mask.Size()
		a, _ := netip.AddrFromSlice(prefix.IP.To16())
		if bits < 64 || a.Is4In6() {
			return nil, reasonUnsupportedAddress
		}
		addresses = append(addresses, netip.PrefixFrom(a, 64).Masked())
	} else if !errors.Is(err, radius.ErrNoAttribute) {
		return nil, reasonMalformed
	}
	if len(addresses) == 0 {
		return nil, reasonMissingAddress
	}
	for _, a := range addresses {
		if !a.Addr().IsValid() || network.CheckUnicast(a) != nil {
			return nil, reasonUnsupportedAddress
		}
	}
	return addresses, ""
}

var (
	apnPattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,98}[a-z0-9])?$`)
	imsiPattern = regexp.MustCompile(`^[0-9]{6,15}$`)
	// ratNames maps 3GPP-RAT-Type (TS 29.061, TS 29.274) to the names the
	// admin API uses.
	ratNames = map[byte]string{1: "UMTS", 2: "GSM", 5: "UMTS", 6: "LTE", 8: "NB-IOT", 9: "LTE-M", 10: "NR"}
)

// sessionAttributes reads what the session table keeps beside the address:
// the APN (Called-Station-Id), the radio technology and the IMSI.
func sessionAttributes(p *radius.Packet) (apn, rat, imsi string) {
	apn = strings.ToLower(rfc2865.CalledStationID_GetString(p))
	if !apnPattern.MatchString(apn) {
		apn = "unknown"
	}
	rat = "UNKNOWN"
	if t, err := threegpp.ThreeGPPRATType_Lookup(p); err == nil && ratNames[t] != "" {
		rat = ratNames[t]
	}
	if v := threegpp.ThreeGPPIMSI_GetString(p); imsiPattern.MatchString(v) {
		imsi = v
	}
	return apn, rat, imsi
}

// committerOf shares the sessions among the committers by a hash of the
// NAS and Acct-Session-Id: the requests of one session (its Start, Interims
// and Stop, and their retransmissions) go through one committer, in their
// order of arrival; an Accounting-On/Off by the NAS alone. Two committers
// keep two transactions in flight (one writing while the other waits for
// its durable commit), on as many database connections. Requests of
// different committers that touch one address (a Start whose Stop was lost,
// on another session) are ordered by the store's locks, as concurrent
// batches always were.
func (s *Server) committerOf(e network.AccountingEvent) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(e.NAS))
	if e.Kind != network.AccountingCloseNAS {
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(e.SessionID))
	}
	return int(h.Sum32() % uint32(len(s.queues)))
}

// collect commits the requests of one queue: each transaction takes
// whatever arrived while the previous one committed, up to MaxBatch, less
// the requests that waited past MaxWait (dropped). It returns when the
// queue is closed and empty.
func (s *Server) collect(queue chan *request) {
	batch := make([]*request, 0, s.cfg.MaxBatch)
	for first := range queue {
		batch, events := batch[:0], 0
		if !s.stale(first) {
			batch, events = append(batch, first), len(first.events)
		}
	fill:
		for events < s.cfg.MaxBatch-1 {
			select {
			case r, ok := <-queue:
				if !ok {
					break fill
				}
				if !s.stale(r) {
					batch = append(batch, r)
					events += len(r.events)
				}
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			s.commit(batch)
		}
	}
}

// stale drops a request that waited past MaxWait: by the time it could be
// answered, its gateway has retransmitted it, or is about to.
func (s *Server) stale(r *request) bool {
	if time.Since(r.at) <= s.cfg.MaxWait {
		return false
	}
	s.done(r.key)
	s.reject(r.status, reasonOverloaded, "waited", time.Since(r.at).Round(time.Millisecond).String())
	return true
}

// commitTimeout bounds one transaction; a NAS retransmits long before.
const commitTimeout = 10 * time.Second

// commit applies a batch in one transaction and answers each request whose
// change is committed. When the transaction fails for anything but an
// unreachable database, each request is tried alone, so one bad request
// cannot keep the others unanswered.
func (s *Server) commit(batch []*request) {
	var events []network.AccountingEvent
	for _, r := range batch {
		events = append(events, r.events...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	start := time.Now()
	results, errs, err := s.store.ApplyAccounting(ctx, events, s.cfg.RememberStops)
	s.metrics.commitTime.Observe(time.Since(start).Seconds())
	s.metrics.batchSize.Observe(float64(len(batch)))
	if err != nil {
		if len(batch) > 1 && !pg.IsConnectionError(err) {
			for _, r := range batch {
				s.commit([]*request{r})
			}
			return
		}
		for _, r := range batch {
			s.done(r.key)
			s.reject(r.status, reasonStoreError, "err", err.Error())
		}
		return
	}
	s.open.committed(events, results, errs)
	i := 0
	for _, r := range batch {
		s.done(r.key)
		outcome, failed := "", error(nil)
		for range r.events {
			if errs[i] != nil {
				failed = errs[i]
			}
			outcome = combine(outcome, string(results[i].Outcome))
			i++
		}
		if failed != nil {
			s.reject(r.status, reasonStoreError, "err", failed.Error())
			continue
		}
		s.metrics.requests.WithLabelValues(r.status, outcome).Inc()
		s.answer(r.conn, r.from, r.packet)
	}
}

// combine is the outcome of a dual-stack request: opened if either address
// was.
func combine(a, b string) string {
	if a == "" || b == string(network.OutcomeOpened) {
		return b
	}
	return a
}

// answer sends the Accounting-Response.
func (s *Server) answer(conn net.PacketConn, to net.Addr, request *radius.Packet) {
	b, err := request.Response(radius.CodeAccountingResponse).Encode()
	if err == nil {
		_, err = conn.WriteTo(b, to)
	}
	if err != nil {
		s.cfg.Logger.Warn("radius: answer", "err", err)
	}
}

// reject counts a request not recorded; the reasons that get no answer are
// logged at most every ten seconds each (a misconfigured secret would
// otherwise log every request). Nothing of the request's content is logged.
func (s *Server) reject(status, reason string, attrs ...any) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	outcome := outcomeDropped
	if reason == reasonStoreError {
		outcome = outcomeFailed
	}
	s.metrics.requests.WithLabelValues(status, outcome).Inc()
	last, _ := s.lastLog.LoadOrStore(reason, new(atomic.Int64))
	now := time.Now().Unix()
	if prev := last.(*atomic.Int64).Load(); now-prev >= 10 && last.(*atomic.Int64).CompareAndSwap(prev, now) {
		s.cfg.Logger.Warn("radius: request not recorded, not answered", append([]any{"reason", reason}, attrs...)...)
	}
}

// housekeepingInterval is how often the open-session gauge is refreshed and
// forgotten Stops are purged.
const housekeepingInterval = 15 * time.Second

func (s *Server) keepHouse(ctx context.Context) {
	ticker := time.NewTicker(housekeepingInterval)
	defer ticker.Stop()
	for {
		if n, err := s.store.CountOpenSessions(ctx); err == nil {
			s.metrics.sessions.Set(float64(n))
		} else if ctx.Err() == nil { // the gauge keeps its last value: say why
			s.cfg.Logger.Warn("radius: count open sessions", "err", err)
		}
		if _, err := s.store.PurgeAccountingStops(ctx, s.cfg.Now().Add(-s.cfg.RememberStops)); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("radius: purge remembered stops", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	default:
		ap, _ := netip.ParseAddrPort(a.String())
		return ap.Addr().Unmap()
	}
}

// ReceiveBuffer is the socket's receive buffer asked of the kernel: at
// 20,000 requests/s the default (about 200 KB on Linux, a few hundred
// datagrams) overflows whenever the readers are off the CPU for a few
// milliseconds, and every datagram lost costs the gateway a retransmission
// timeout. Linux grants at most net.core.rmem_max (raise it to match).
const ReceiveBuffer = 8 << 20

// Listen opens the UDP socket (":1813") so that a bad address fails at start.
func Listen(addr string) (net.PacketConn, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("radius: listen %s: %w", addr, err)
	}
	if udp, ok := conn.(*net.UDPConn); ok {
		_ = udp.SetReadBuffer(ReceiveBuffer) // best effort: capped by the kernel
	}
	return conn, nil
}
