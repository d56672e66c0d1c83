package radius

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"
	"layeh.com/radius/rfc2866"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/network"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// running is a server on a real UDP socket of 127.0.0.1.
type running struct {
	addr     string
	store    *network.Store
	registry *prometheus.Registry
	stop     func() // ends Serve and waits for it
}

func serve(t *testing.T, store Store, clients *Clients, edits ...func(*Config)) *running {
	t.Helper()
	conn, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	registry := prometheus.NewRegistry()
	cfg := Config{Clients: clients, Registerer: registry}
	for _, edit := range edits {
		edit(&cfg)
	}
	srv, err := NewServer(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	r := &running{addr: conn.LocalAddr().String(), registry: registry}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

func newStore(t *testing.T) *network.Store {
	t.Helper()
	store, err := network.NewStore(pgtest.New(t).Pool, network.Pools{})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// send sends an Accounting-Request from local (empty: any) and waits up to
// wait for the answer; nil when none came.
func send(t *testing.T, addr, secret, local string, wait time.Duration, edits ...func(*radius.Packet)) *radius.Packet {
	t.Helper()
	p := radius.New(radius.CodeAccountingRequest, []byte(secret))
	for _, edit := range edits {
		edit(p)
	}
	client := &radius.Client{Retry: 100 * time.Millisecond}
	if local != "" {
		client.Dialer.LocalAddr = &net.UDPAddr{IP: net.ParseIP(local)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := client.Exchange(ctx, p, addr)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if resp.Code != radius.CodeAccountingResponse {
		t.Fatalf("answer %v; want Accounting-Response", resp.Code)
	}
	return resp
}

func holder(t *testing.T, store *network.Store, ip string) string {
	t.Helper()
	s, err := store.Resolve(context.Background(), netip.MustParseAddr(ip), 443, time.Now())
	if errors.Is(err, network.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return s.MSISDN
}

func TestServerRecordsAndAnswers(t *testing.T) {
	store := newStore(t)
	srv := serve(t, store, NewClients("shared-secret-of-16+", []Client{
		{Prefix: netip.MustParsePrefix("127.0.0.77/32"), Secret: []byte("gateway-77-secret"), Name: "pgw-77"}}))
	start := []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Start), sessionID("s1"), nasIP("192.0.2.1"),
		calling("33612345678"), framedIP("127.60.0.1")}
	if send(t, srv.addr, "shared-secret-of-16+", "", 5*time.Second, start...) == nil {
		t.Fatal("Start not answered")
	}
	if got := holder(t, store, "127.60.0.1"); got != "+33612345678" {
		t.Fatalf("holder %q after Start", got)
	}
	t.Run("a duplicate is answered and changes nothing", func(t *testing.T) {
		if send(t, srv.addr, "shared-secret-of-16+", "", 5*time.Second, start...) == nil {
			t.Fatal("duplicate Start not answered")
		}
		if v := counter(t, srv, "numverify_radius_requests_total", "status_type=start", "outcome=confirmed"); v != 1 {
			t.Errorf("confirmed starts %v; want 1", v)
		}
	})
	t.Run("a wrong secret gets no answer and changes nothing", func(t *testing.T) {
		stop := []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Stop), sessionID("s1"), nasIP("192.0.2.1")}
		if send(t, srv.addr, "not-the-secret", "", 400*time.Millisecond, stop...) != nil {
			t.Fatal("a request with a wrong secret was answered")
		}
		if got := holder(t, store, "127.60.0.1"); got != "+33612345678" {
			t.Fatalf("holder %q after a forged Stop", got)
		}
		if v := rejected(t, srv, reasonBadAuthenticator); v < 1 {
			t.Errorf("bad_authenticator %v", v)
		}
	})
	t.Run("a listed client's own secret; the shared one is not its", func(t *testing.T) {
		stop := []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Stop), sessionID("s1"), nasIP("192.0.2.1")}
		if send(t, srv.addr, "shared-secret-of-16+", "127.0.0.77", 400*time.Millisecond, stop...) != nil {
			t.Fatal("pgw-77 answered with the shared secret")
		}
		if send(t, srv.addr, "gateway-77-secret", "127.0.0.77", 5*time.Second, stop...) == nil {
			t.Fatal("pgw-77's Stop with its secret not answered")
		}
		if got := holder(t, store, "127.60.0.1"); got != "" {
			t.Fatalf("holder %q after the Stop", got)
		}
	})
	t.Run("a malformed number is answered and recorded as nothing", func(t *testing.T) {
		if send(t, srv.addr, "shared-secret-of-16+", "", 5*time.Second, status(rfc2866.AcctStatusType_Value_Start), sessionID("s2"),
			calling("not-a-number"), framedIP("127.60.0.2")) == nil {
			t.Fatal("not answered")
		}
		if got := holder(t, store, "127.60.0.2"); got != "" {
			t.Fatalf("holder %q", got)
		}
		if v := rejected(t, srv, reasonInvalidMSISDN); v != 1 {
			t.Errorf("invalid_msisdn %v; want 1", v)
		}
	})
	t.Run("garbage gets no answer", func(t *testing.T) {
		conn, err := net.Dial("udp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, b := range [][]byte{{4}, {4, 1, 0, 200, 0}, append([]byte{4, 1, 0, 23}, make([]byte, 19)...), append([]byte{1, 1, 0, 20}, make([]byte, 16)...)} {
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := conn.Read(make([]byte, 100)); err == nil {
			t.Fatalf("answered garbage with %d bytes", n)
		}
		if v := rejected(t, srv, reasonMalformed) + rejected(t, srv, reasonNotAccounting) + rejected(t, srv, reasonBadAuthenticator); v < 4 {
			t.Errorf("%v of 4 garbage datagrams counted", v)
		}
	})
}

func TestServerUnknownClient(t *testing.T) {
	store := newStore(t)
	srv := serve(t, store, NewClients("", []Client{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte("only-for-127.0.0.1")}}))
	if send(t, srv.addr, "only-for-127.0.0.1", "127.0.0.9", 400*time.Millisecond, status(rfc2866.AcctStatusType_Value_Start),
		sessionID("s"), calling("33612345678"), framedIP("127.60.1.1")) != nil {
		t.Fatal("an unknown NAS was answered")
	}
	if got := holder(t, store, "127.60.1.1"); got != "" {
		t.Fatalf("holder %q", got)
	}
	if v := rejected(t, srv, reasonUnknownClient); v < 1 {
		t.Errorf("unknown_client %v; want every retransmission counted", v)
	}
}

// gatedStore holds every commit until released, counting batch sizes.
type gatedStore struct {
	*network.Store
	gate    chan struct{}
	mu      sync.Mutex
	batches []int
}

func (g *gatedStore) ApplyAccounting(ctx context.Context, events []network.AccountingEvent, remember time.Duration) ([]network.AccountingResult, []error, error) {
	<-g.gate
	g.mu.Lock()
	g.batches = append(g.batches, len(events))
	g.mu.Unlock()
	return g.Store.ApplyAccounting(ctx, events, remember)
}

// TestServerAnswersAfterCommit: no answer while the change is not
// committed; requests arriving meanwhile are committed together; at
// shutdown what was received is still committed and answered.
func TestServerAnswersAfterCommit(t *testing.T) {
	store := &gatedStore{Store: newStore(t), gate: make(chan struct{})}
	srv := serve(t, store, NewClients("shared-secret-of-16+", nil), func(c *Config) { c.MaxWait, c.Committers = time.Minute, 1 })
	answered := make(chan int, 20)
	for i := range 20 {
		go func() {
			ip := netip.AddrFrom4([4]byte{127, 60, 2, byte(i + 1)}).String()
			if send(t, srv.addr, "shared-secret-of-16+", "", 10*time.Second, status(rfc2866.AcctStatusType_Value_Start),
				sessionID(ip), calling("33612345678"), framedIP(ip)) != nil {
				answered <- i
			} else {
				answered <- -1
			}
		}()
	}
	select {
	case i := <-answered:
		t.Fatalf("request %d answered before its commit", i)
	case <-time.After(500 * time.Millisecond):
	}
	go srv.stop() // shutdown begins with every request waiting
	time.Sleep(100 * time.Millisecond)
	close(store.gate)
	for range 20 {
		if i := <-answered; i < 0 {
			t.Error("a request was never answered")
		}
	}
	srv.stop()
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.batches) > 3 {
		t.Errorf("20 concurrent requests committed in %d transactions %v; want them grouped", len(store.batches), store.batches)
	}
	// The client retransmitted every 100 ms while the commit waited: each
	// retransmission was answered by the one commit, none applied again.
	applied := 0
	for _, n := range store.batches {
		applied += n
	}
	if applied != 20 || counter(t, srv, "numverify_radius_requests_total", "outcome=in_flight") == 0 {
		t.Errorf("%d events applied, %v retransmissions coalesced; want 20 and some",
			applied, counter(t, srv, "numverify_radius_requests_total", "outcome=in_flight"))
	}
	if got := holder(t, store.Store, "127.60.2.20"); got != "+33612345678" {
		t.Errorf("holder %q", got)
	}
}

// counter reads a counter of the server's registry whose labels include
// every name=value pair given.
func counter(t *testing.T, srv *running, name string, labels ...string) float64 {
	t.Helper()
	families, err := srv.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			have := map[string]bool{}
			for _, l := range m.GetLabel() {
				have[l.GetName()+"="+l.GetValue()] = true
			}
			match := true
			for _, l := range labels {
				match = match && have[l]
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func rejected(t *testing.T, srv *running, reason string) float64 {
	return counter(t, srv, "numverify_radius_rejected_total", "reason="+reason)
}

// TestServerDropsWhatWaitedTooLong: requests that waited past MaxWait for
// the committer are dropped unanswered (counted as overloaded) rather than
// answered after the gateway's retransmission; their retransmissions, and
// new requests, are answered.
func TestServerDropsWhatWaitedTooLong(t *testing.T) {
	store := &gatedStore{Store: newStore(t), gate: make(chan struct{})}
	srv := serve(t, store, NewClients("shared-secret-of-16+", nil), func(c *Config) { c.MaxWait, c.Committers = 200*time.Millisecond, 1 })
	start := func(ip string) []func(*radius.Packet) {
		return []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Start), sessionID(ip), calling("33612345678"), framedIP(ip)}
	}
	first := make(chan *radius.Packet, 1)
	go func() { first <- send(t, srv.addr, "shared-secret-of-16+", "", 10*time.Second, start("127.60.3.1")...) }()
	time.Sleep(100 * time.Millisecond) // the committer holds the first request at the gate
	// Ten requests sent once each, no retransmission, wait behind it.
	conn, err := net.Dial("udp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 10 {
		p := radius.New(radius.CodeAccountingRequest, []byte("shared-secret-of-16+"))
		p.Identifier = byte(i)
		for _, edit := range start(netip.AddrFrom4([4]byte{127, 60, 3, byte(10 + i)}).String()) {
			edit(p)
		}
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(400 * time.Millisecond) // past MaxWait
	close(store.gate)
	if <-first == nil {
		t.Fatal("the request being committed was not answered")
	}
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 100)); err == nil {
		t.Fatalf("a request that waited past MaxWait was answered (%d bytes)", n)
	}
	if v := rejected(t, srv, reasonOverloaded); v != 10 {
		t.Errorf("overloaded %v; want 10", v)
	}
	if got := holder(t, store.Store, "127.60.3.12"); got != "" {
		t.Errorf("holder %q of a dropped Start", got)
	}
	// The gateway's retransmission (same packet) is taken afresh.
	if send(t, srv.addr, "shared-secret-of-16+", "", 5*time.Second, start("127.60.3.12")...) == nil {
		t.Fatal("a retransmission after the drop was not answered")
	}
	if got := holder(t, store.Store, "127.60.3.12"); got != "+33612345678" {
		t.Errorf("holder %q", got)
	}
}

// enteredStore counts the commits begun, and holds each until released.
type enteredStore struct {
	*network.Store
	gate    chan struct{}
	entered chan string // the first session id of each commit begun
}

func (e *enteredStore) ApplyAccounting(ctx context.Context, events []network.AccountingEvent, remember time.Duration) ([]network.AccountingResult, []error, error) {
	e.entered <- events[0].SessionID
	<-e.gate
	return e.Store.ApplyAccounting(ctx, events, remember)
}

// TestServerCommitsInParallel: two sessions of different committers are
// committed by two transactions in flight at once; the requests of one
// session wait for its committer, in order.
func TestServerCommitsInParallel(t *testing.T) {
	store := &enteredStore{Store: newStore(t), gate: make(chan struct{}), entered: make(chan string, 10)}
	probe, _ := NewServer(store, Config{Clients: NewClients("shared-secret-of-16+", nil)})
	var ids []string
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("session-%d", i)
		e := network.AccountingEvent{Kind: network.AccountingOpen, NAS: "127.0.0.1", SessionID: id}
		if len(ids) == 0 || probe.committerOf(e) != probe.committerOf(network.AccountingEvent{Kind: network.AccountingOpen, NAS: "127.0.0.1", SessionID: ids[0]}) {
			ids = append(ids, id)
		}
	}
	srv := serve(t, store, NewClients("shared-secret-of-16+", nil), func(c *Config) { c.Committers = 2 })
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(store.gate) }) }) // before the server stops, even on failure
	answered := make(chan bool, 2)
	for i, id := range ids {
		go func() {
			ip := netip.AddrFrom4([4]byte{127, 60, 4, byte(i + 1)}).String()
			answered <- send(t, srv.addr, "shared-secret-of-16+", "", 10*time.Second, status(rfc2866.AcctStatusType_Value_Start),
				sessionID(id), calling("33612345678"), framedIP(ip)) != nil
		}()
	}
	seen := map[string]bool{}
	for range 2 {
		select {
		case id := <-store.entered:
			seen[id] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("commits begun for %v only; want both sessions' at once", seen)
		}
	}
	release.Do(func() { close(store.gate) })
	for range 2 {
		if !<-answered {
			t.Error("a Start was not answered")
		}
	}
	if got := holder(t, store.Store, "127.60.4.2"); got != "+33612345678" {
		t.Errorf("holder %q", got)
	}
}
