package network

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestPoolCandidates(t *testing.T) {
	tests := []struct {
		name     string
		pools    Pools
		kind     PoolKind
		wantSize uint64
		wantAt   map[uint64]string // index → "ip ports"
	}{
		{"ipv4 /26 skips network and broadcast", Pools{IPv4: netipPrefix("127.10.0.0/26")}, PoolIPv4, 62,
			map[uint64]string{0: "127.10.0.1/32 0-65535", 61: "127.10.0.62/32 0-65535"}},
		{"ipv4 /16 default pool", Pools{IPv4: netipPrefix("127.10.0.0/16")}, PoolIPv4, 65534,
			map[uint64]string{255: "127.10.1.0/32 0-65535"}},
		{"ipv6 /48 carved into /64s", Pools{IPv6: netipPrefix("fd00:6e76::/48")}, PoolIPv6, 65536,
			map[uint64]string{0: "fd00:6e76::/64 0-65535", 0xbeef: "fd00:6e76:0:beef::/64 0-65535", 65535: "fd00:6e76:0:ffff::/64 0-65535"}},
		{"cgnat blocks of 1024 from 1024", Pools{CGNATAddress: netipAddr("198.51.100.7")}, PoolCGNAT, 63,
			map[uint64]string{0: "198.51.100.7/32 1024-2047", 1: "198.51.100.7/32 2048-3071", 62: "198.51.100.7/32 64512-65535"}},
		{"cgnat blocks of 3000 from 2000", Pools{CGNATAddress: netipAddr("198.51.100.7"), CGNATBlockSize: 3000, CGNATFirstPort: 2000}, PoolCGNAT, 21,
			map[uint64]string{20: "198.51.100.7/32 62000-64999"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.pools.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			p, err := tt.pools.pool(tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			if p.size != tt.wantSize {
				t.Errorf("size %d; want %d", p.size, tt.wantSize)
			}
			for i, want := range tt.wantAt {
				c := p.at(i)
				if got := c.ip.String() + " " + c.ports.String(); got != want {
					t.Errorf("at(%d) = %s; want %s", i, got, want)
				}
			}
		})
	}
}

func TestPoolsValidateReportsEveryProblem(t *testing.T) {
	err := Pools{
		IPv4:           netipPrefix("2001:db8::/64"),
		IPv6:           netipPrefix("2001:db8::/96"),
		CGNATAddress:   netipAddr("2001:db8::1"),
		CGNATBlockSize: 70000,
	}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken configuration")
	}
	for _, want := range []string{"IPv4 pool", "IPv6 pool", "CGNAT address", "CGNAT block size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
	if err := (Pools{IPv4: netipPrefix("127.10.0.0/16"), CGNATAddress: netipAddr("127.10.3.3")}).Validate(); err == nil {
		t.Error("Validate accepted a CGNAT address inside the IPv4 pool")
	}
}

func TestParseAddressAndPorts(t *testing.T) {
	addresses := []struct{ in, want string }{
		{"127.10.0.7", "127.10.0.7/32"},
		{" 127.10.0.7/32 ", "127.10.0.7/32"},
		{"::ffff:127.10.0.7", "127.10.0.7/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8:0:1::/64", "2001:db8:0:1::/64"},
		{"127.10.0.0/24", ""},
		{"2001:db8:0:1::1/64", ""},
		{"fe80::1%eth0", ""},
		{"example.org", ""},
		{"", ""},
	}
	for _, tt := range addresses {
		t.Run("address "+tt.in, func(t *testing.T) {
			got, err := ParseAddress(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseAddress(%q) = %s; want an error", tt.in, got)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("ParseAddress(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
	ports := []struct{ in, want string }{
		{"1024-2047", "1024-2047"}, {"80", "80-80"}, {"0-65535", "0-65535"},
		{"2047-1024", ""}, {"1-65536", ""}, {"-5", ""}, {"a-b", ""}, {"", ""},
	}
	for _, tt := range ports {
		t.Run("ports "+tt.in, func(t *testing.T) {
			got, err := ParsePortRange(tt.in)
			if (tt.want == "") != (err != nil) || (err == nil && got.String() != tt.want) {
				t.Fatalf("ParsePortRange(%q) = %s, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSessionJSON(t *testing.T) {
	start := time.Date(2026, 3, 1, 14, 2, 0, 0, time.UTC)
	tests := []struct {
		name    string
		session Session
		want    string
	}{
		{"ipv4 attached", Session{ID: 7, MSISDN: "+33612345678", IP: netipPrefix("127.10.0.7/32"), Ports: AllPorts, Start: start, APN: "internet", RAT: "NR"},
			`{"id":7,"msisdn":"+33612345678","ip":"127.10.0.7","ports":"0-65535","started_at":"2026-03-01T14:02:00Z","active":true,"apn":"internet","rat":"NR"}`},
		{"ipv6 /64 detached", Session{ID: 8, MSISDN: "+33612345678", IP: netipPrefix("fd00:6e76:0:1::/64"), Ports: AllPorts, Start: start, End: &start, APN: "ims", RAT: "LTE", IMSI: "208011234567890"},
			`{"id":8,"msisdn":"+33612345678","ip":"fd00:6e76:0:1::/64","ports":"0-65535","started_at":"2026-03-01T14:02:00Z","ended_at":"2026-03-01T14:02:00Z","active":false,"apn":"ims","rat":"LTE","imsi":"208011234567890"}`},
		{"cgnat block", Session{ID: 9, MSISDN: "+33612345678", IP: netipPrefix("127.20.0.1/32"), Ports: PortRange{1024, 2047}, Start: start, APN: "internet", RAT: "NR"},
			`{"id":9,"msisdn":"+33612345678","ip":"127.20.0.1","ports":"1024-2047","started_at":"2026-03-01T14:02:00Z","active":true,"apn":"internet","rat":"NR"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.session)
			if err != nil || string(got) != tt.want {
				t.Fatalf("Marshal = %s, %v\nwant %s", got, err, tt.want)
			}
			var back Session
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if again, _ := json.Marshal(back); string(again) != tt.want {
				t.Errorf("round trip = %s", again)
			}
		})
	}
}
