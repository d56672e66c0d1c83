package sim

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/network/radius"
)

// TestMain stops the throwaway PostgreSQL cluster pgtest may start when no
// server answers (the gateway's tests record into a real session table).
func TestMain(m *testing.M) { pgtest.Main(m) }

// accountingServer runs network/radius on a real UDP socket of 127.0.0.1
// over a fresh database, as `serve network` does.
func accountingServer(t *testing.T, secret string) (string, *network.Store) {
	t.Helper()
	store, err := network.NewStore(pgtest.New(t).Pool, network.Pools{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := radius.NewServer(store, radius.Config{Clients: radius.NewClients(secret, nil)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := radius.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn.LocalAddr().String(), store
}

func holderOf(t *testing.T, store *network.Store, addr netip.Addr) *network.Session {
	t.Helper()
	s, err := store.LookupAddress(context.Background(), addr, time.Now())
	if errors.Is(err, network.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &s
}

// TestGatewayStartStop: a Start answered means the session is in the table
// (the server answers after the commit); the Stop of that session frees
// the address; an IPv6 address opens its /64.
func TestGatewayStartStop(t *testing.T) {
	const secret = "gateway-test-secret-0123456789"
	addr, store := accountingServer(t, secret)
	ctx := context.Background()
	gw := &Gateway{Addr: addr, Secret: secret, RAT: "lte"}

	ip := netip.MustParseAddr("127.10.0.7")
	id, err := gw.Start(ctx, "+33612345678", ip)
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatal("Start returned no session id")
	}
	s := holderOf(t, store, ip)
	if s == nil || s.MSISDN != "+33612345678" || s.RAT != "LTE" || s.APN != "internet" {
		t.Fatalf("after Start, %s is held by %+v; want +33612345678 on LTE, APN internet", ip, s)
	}

	v6 := netip.MustParseAddr("fd00:6e76:0:1::5")
	if err := gw.StartSession(ctx, "v6-session", "+33698765432", v6); err != nil {
		t.Fatal(err)
	}
	if s := holderOf(t, store, v6); s == nil || s.MSISDN != "+33698765432" || s.IP != netip.MustParsePrefix("fd00:6e76:0:1::/64") {
		t.Fatalf("after an IPv6 Start, %s is held by %+v; want +33698765432 on its /64", v6, s)
	}

	if err := gw.Stop(ctx, id, "+33612345678", ip); err != nil {
		t.Fatal(err)
	}
	if s := holderOf(t, store, ip); s != nil {
		t.Fatalf("after Stop, %s is still held by session %d", ip, s.ID)
	}
	if err := gw.Stop(ctx, "v6-session", "", netip.Addr{}); err != nil { // id alone, as the server needs
		t.Fatal(err)
	}
	if s := holderOf(t, store, v6); s != nil {
		t.Fatalf("after Stop, %s is still held by session %d", v6, s.ID)
	}
}

// TestGatewayNoAnswer: a wrong secret (the server stays silent) or no
// server at all is an error once the retransmissions are spent, within
// their time, and the error names neither the number nor the secret.
func TestGatewayNoAnswer(t *testing.T) {
	const secret = "gateway-test-secret-0123456789"
	addr, store := accountingServer(t, secret)
	closed, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := closed.LocalAddr().String()
	closed.Close()
	ip := netip.MustParseAddr("127.10.0.8")
	for _, tt := range []struct {
		name string
		gw   Gateway
	}{
		{"wrong secret", Gateway{Addr: addr, Secret: "not-the-secret-0123456789"}},
		{"no server", Gateway{Addr: nobody, Secret: secret}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.gw.Timeout, tt.gw.Retries = 100*time.Millisecond, 1
			start := time.Now()
			_, err := tt.gw.Start(context.Background(), "+33612345678", ip)
			if err == nil || !strings.Contains(err.Error(), "no Accounting-Response") {
				t.Fatalf("Start = %v; want no Accounting-Response", err)
			}
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("gave up after %s; want about 200ms", elapsed)
			}
			if strings.Contains(err.Error(), "612345678") || strings.Contains(err.Error(), tt.gw.Secret) {
				t.Errorf("the error shows the number or the secret: %v", err)
			}
		})
	}
	if s := holderOf(t, store, ip); s != nil {
		t.Fatalf("a request with the wrong secret opened session %d", s.ID)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Gateway{Addr: addr, Secret: secret}).Start(ctx, "+33612345678", ip); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled context = %v; want context.Canceled", err)
	}
}

// TestGatewayRefusesBadInput: what the server would ignore (or drop) is an
// error before anything is sent.
func TestGatewayRefusesBadInput(t *testing.T) {
	ip := netip.MustParseAddr("127.10.0.9")
	server, secret := "127.0.0.1:9", "s3cret-s3cret-s3cret"
	for _, tt := range []struct {
		name   string
		gw     Gateway
		stop   bool // a Stop (with no session id); else a Start
		msisdn string
		addr   netip.Addr
		want   string
	}{
		{"no secret", Gateway{Addr: server}, false, "+33612345678", ip, "a RADIUS secret is required"},
		{"no server address", Gateway{Secret: secret}, false, "+33612345678", ip, "the accounting server's address is required"},
		{"not a number", Gateway{Addr: server, Secret: secret}, false, "0612345678", ip, "the number"},
		{"no number", Gateway{Addr: server, Secret: secret}, false, "", ip, "a Start needs the number and the address"},
		{"no address", Gateway{Addr: server, Secret: secret}, false, "+33612345678", netip.Addr{}, "a Start needs the number and the address"},
		{"unspecified address", Gateway{Addr: server, Secret: secret}, false, "+33612345678", netip.IPv4Unspecified(), "not a device's address"},
		{"unknown RAT", Gateway{Addr: server, Secret: secret, RAT: "5G"}, false, "+33612345678", ip, `RAT "5G"`},
		{"Stop without a session id", Gateway{Addr: server, Secret: secret}, true, "", netip.Addr{}, "an Acct-Session-Id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.stop {
				err = tt.gw.Stop(context.Background(), "", tt.msisdn, tt.addr)
			} else {
				_, err = tt.gw.Start(context.Background(), tt.msisdn, tt.addr)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error saying %q", err, tt.want)
			}
		})
	}
}
