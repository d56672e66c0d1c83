package network

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAttachResolveDetach(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	tests := []struct {
		name     string
		req      AttachRequest
		probe    func(s Session) string // an address that must resolve to the session
		port     uint16
		wantBits int
	}{
		{"ipv4 allocated", AttachRequest{MSISDN: "+33612345601"},
			func(s Session) string { return s.IP.Addr().String() }, 40001, 32},
		{"ipv4 given", AttachRequest{MSISDN: "+33612345602", IP: "127.10.1.7"},
			func(Session) string { return "127.10.1.7" }, 443, 32},
		{"ipv6 allocated /64, any address inside resolves", AttachRequest{MSISDN: "+33612345603", Pool: PoolIPv6},
			func(s Session) string {
				a := s.IP.Addr().As16()
				a[8], a[15] = 0xde, 0xef
				return s.IP.Addr().Next().String() + "|" + netip.AddrFrom16(a).String()
			}, 5000, 64},
		{"ipv6 given /128", AttachRequest{MSISDN: "+33612345604", IP: "2001:db8::42"},
			func(Session) string { return "2001:db8::42" }, 1, 128},
		{"cgnat allocated block", AttachRequest{MSISDN: "+33612345605", Pool: PoolCGNAT},
			func(s Session) string { return s.IP.Addr().String() }, 0, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustAttach(t, store, tt.req)
			if s.IP.Bits() != tt.wantBits || s.End != nil || s.ID == 0 {
				t.Fatalf("attached %+v; want an open /%d session", s, tt.wantBits)
			}
			port := tt.port
			if tt.req.Pool == PoolCGNAT {
				port = s.Ports.Low + 7
				if s.Ports.High-s.Ports.Low != 1023 || s.Ports.Low < 1024 {
					t.Fatalf("CGNAT ports %s; want a 1024-port block from 1024", s.Ports)
				}
			}
			for _, addr := range strings.Split(tt.probe(s), "|") {
				expectHolder(t, store, addr, port, time.Now(), tt.req.MSISDN)
			}
			if _, err := store.Detach(context.Background(), s.ID); err != nil {
				t.Fatalf("Detach: %v", err)
			}
			for _, addr := range strings.Split(tt.probe(s), "|") {
				expectHolder(t, store, addr, port, time.Now(), "")
				expectHolder(t, store, addr, port, s.Start.Add(time.Microsecond), tt.req.MSISDN)
			}
		})
	}
}

func TestCGNATPortsDecide(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	// Bob's fixed block first: the pool starts at a random block, and one of
	// them overlaps 60000-60999 (the order made this fail about 1 run in 30).
	bob := mustAttach(t, store, AttachRequest{MSISDN: "+33622222222", IP: "127.20.0.1", Ports: "60000-60999"})
	alice := mustAttach(t, store, AttachRequest{MSISDN: "+33611111111", Pool: PoolCGNAT})
	if alice.IP != bob.IP {
		t.Fatalf("alice %s and bob %s should share the public address", alice.IP, bob.IP)
	}
	now := time.Now()
	tests := []struct {
		name string
		port uint16
		want string
	}{
		{"alice's first port", alice.Ports.Low, "+33611111111"},
		{"alice's last port", alice.Ports.High, "+33611111111"},
		{"bob's first port", 60000, "+33622222222"},
		{"bob's last port", 60999, "+33622222222"},
		{"just after bob's block", 61000, ""},
		{"a well-known port outside every block", 80, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectHolder(t, store, "127.20.0.1", tt.port, now, tt.want) })
	}
	t.Run("lookup without port is refused", func(t *testing.T) {
		if _, err := store.LookupAddress(context.Background(), netipAddr("127.20.0.1"), now); !errors.Is(err, ErrPortRequired) {
			t.Fatalf("LookupAddress = %v; want ErrPortRequired", err)
		}
	})
	t.Run("overlapping block is refused", func(t *testing.T) {
		_, err := store.Attach(context.Background(), AttachRequest{MSISDN: "+33633333333", IP: "127.20.0.1", Ports: "60500-61500"})
		if !errors.Is(err, ErrAddressInUse) {
			t.Fatalf("Attach overlapping block = %v; want ErrAddressInUse", err)
		}
	})
}

func TestResolveHistory(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	ctx := context.Background()
	before := time.Now()
	first := mustAttach(t, store, AttachRequest{MSISDN: "+33600000001", IP: "127.10.0.9"})
	whileFirst := time.Now()
	if _, err := store.Detach(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	between := time.Now()
	second := mustAttach(t, store, AttachRequest{MSISDN: "+33600000002", IP: "127.10.0.9"})
	whileSecond := time.Now()
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"before anyone attached", before.Add(-time.Second), ""},
		{"while the first held it", whileFirst, "+33600000001"},
		{"between the two sessions", between, ""},
		{"while the second holds it", whileSecond, "+33600000002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectHolder(t, store, "127.10.0.9", 443, tt.at, tt.want) })
	}
	t.Run("nobody after the second detaches", func(t *testing.T) {
		if _, err := store.Detach(ctx, second.ID); err != nil {
			t.Fatal(err)
		}
		expectHolder(t, store, "127.10.0.9", 443, time.Now(), "")
		expectHolder(t, store, "127.10.0.9", 443, whileSecond, "+33600000002")
	})
	t.Run("an IPv4-mapped IPv6 peer resolves like IPv4", func(t *testing.T) {
		expectHolder(t, store, "::ffff:127.10.0.9", 443, whileFirst, "+33600000001")
	})
}

func TestAttachRefusals(t *testing.T) {
	store, _ := newTestStore(t, Pools{IPv4: netipPrefix("127.10.0.0/30")})
	holder := mustAttach(t, store, AttachRequest{MSISDN: "+33699999999", IP: "127.10.5.5"})
	tests := []struct {
		name string
		req  AttachRequest
		want error
	}{
		{"malformed msisdn", AttachRequest{MSISDN: "0612345678"}, ErrInvalid},
		{"letters in msisdn", AttachRequest{MSISDN: "+33abc"}, ErrInvalid},
		{"malformed address", AttachRequest{MSISDN: "+33612345678", IP: "127.10.0.300"}, ErrInvalid},
		{"an IPv4 /24 is not a session address", AttachRequest{MSISDN: "+33612345678", IP: "127.10.0.0/24"}, ErrInvalid},
		{"an IPv6 /64 with host bits", AttachRequest{MSISDN: "+33612345678", IP: "2001:db8:0:1::5/64"}, ErrInvalid},
		{"reversed ports", AttachRequest{MSISDN: "+33612345678", IP: "127.10.0.1", Ports: "2000-1000"}, ErrInvalid},
		{"ports without ip", AttachRequest{MSISDN: "+33612345678", Ports: "1024-2047"}, ErrInvalid},
		{"unknown pool", AttachRequest{MSISDN: "+33612345678", Pool: "ipx"}, ErrInvalid},
		{"bad imsi", AttachRequest{MSISDN: "+33612345678", IMSI: "12ab"}, ErrInvalid},
		{"bad rat", AttachRequest{MSISDN: "+33612345678", RAT: "5G-turbo"}, ErrInvalid},
		{"pool not configured", AttachRequest{MSISDN: "+33612345678", Pool: PoolIPv6}, ErrPoolNotConfigured},
		{"address in use", AttachRequest{MSISDN: "+33612345678", IP: "127.10.5.5"}, ErrAddressInUse},
		{"address in use, written as IPv4-mapped", AttachRequest{MSISDN: "+33612345678", IP: "::ffff:127.10.5.5"}, ErrAddressInUse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := countRows(t, store)
			_, err := store.Attach(context.Background(), tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Attach = %v; want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), holder.MSISDN) || strings.Contains(err.Error(), tt.req.MSISDN) {
				t.Errorf("error %q discloses a phone number", err)
			}
			if after := countRows(t, store); after != before {
				t.Errorf("%d rows stored by a refused attach", after-before)
			}
		})
	}
	t.Run("pool exhausted after its two hosts", func(t *testing.T) {
		for i := range 2 {
			s := mustAttach(t, store, AttachRequest{MSISDN: "+3361000000" + string(rune('1'+i))})
			if got := s.IP.Addr().String(); got != "127.10.0.1" && got != "127.10.0.2" {
				t.Errorf("allocated %s from 127.10.0.0/30; want .1 or .2", got)
			}
		}
		if _, err := store.Attach(context.Background(), AttachRequest{MSISDN: "+33610000009"}); !errors.Is(err, ErrPoolExhausted) {
			t.Fatalf("third attach = %v; want ErrPoolExhausted", err)
		}
	})
}

func TestDetachAndList(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	ctx := context.Background()
	a1 := mustAttach(t, store, AttachRequest{MSISDN: "+33 6 12 34 56 78", APN: "IMS", RAT: "lte", IMSI: "208011234567890"})
	a2 := mustAttach(t, store, AttachRequest{MSISDN: "+33612345678", Pool: PoolIPv6})
	mustAttach(t, store, AttachRequest{MSISDN: "+447700900123"})
	if a1.MSISDN != "+33612345678" || a1.APN != "ims" || a1.RAT != "LTE" || a1.IMSI != "208011234567890" {
		t.Fatalf("attached %+v; want normalised msisdn, apn, rat and the imsi", a1)
	}
	if _, err := store.Detach(ctx, a1.ID); err != nil {
		t.Fatal(err)
	}
	detachTests := []struct {
		name string
		id   int64
		want error
	}{
		{"already detached", a1.ID, ErrAlreadyDetached},
		{"unknown id", 987654, ErrSessionNotFound},
		{"zero id", 0, ErrSessionNotFound},
	}
	for _, tt := range detachTests {
		t.Run("detach "+tt.name, func(t *testing.T) {
			if _, err := store.Detach(ctx, tt.id); !errors.Is(err, tt.want) {
				t.Fatalf("Detach(%d) = %v; want %v", tt.id, err, tt.want)
			}
		})
	}
	listTests := []struct {
		name    string
		filter  ListFilter
		wantIDs []int64
	}{
		{"active of one subscriber", ListFilter{MSISDN: "+33612345678"}, []int64{a2.ID}},
		{"all of one subscriber, newest first", ListFilter{MSISDN: "tel:+33612345678", All: true}, []int64{a2.ID, a1.ID}},
		{"subscriber with nothing", ListFilter{MSISDN: "+33700000000", All: true}, nil},
		{"limit", ListFilter{All: true, Limit: 1}, []int64{a2.ID + 1}},
	}
	for _, tt := range listTests {
		t.Run("list "+tt.name, func(t *testing.T) {
			got, err := store.List(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, s := range got {
				ids = append(ids, s.ID)
			}
			if len(ids) != len(tt.wantIDs) || (len(ids) > 0 && ids[0] != tt.wantIDs[0]) || (len(ids) > 1 && ids[1] != tt.wantIDs[1]) {
				t.Fatalf("List ids = %v; want %v", ids, tt.wantIDs)
			}
		})
	}
	t.Run("list malformed msisdn", func(t *testing.T) {
		if _, err := store.List(ctx, ListFilter{MSISDN: "12"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("List = %v; want ErrInvalid", err)
		}
	})
}
