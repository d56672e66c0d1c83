package radius

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"

	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/network/radius/threegpp"
)

// packetWith builds an Accounting-Request; each edit adds attributes.
func packetWith(edits ...func(p *radius.Packet)) *radius.Packet {
	p := radius.New(radius.CodeAccountingRequest, []byte("secret"))
	for _, edit := range edits {
		edit(p)
	}
	return p
}

func status(t rfc2866.AcctStatusType) func(*radius.Packet) {
	return func(p *radius.Packet) { _ = rfc2866.AcctStatusType_Set(p, t) }
}
func sessionID(id string) func(*radius.Packet) {
	return func(p *radius.Packet) { _ = rfc2866.AcctSessionID_SetString(p, id) }
}
func calling(n string) func(*radius.Packet) {
	return func(p *radius.Packet) { _ = rfc2865.CallingStationID_SetString(p, n) }
}
func framedIP(ip string) func(*radius.Packet) {
	return func(p *radius.Packet) { _ = rfc2865.FramedIPAddress_Set(p, net.ParseIP(ip)) }
}
func framedPrefix(cidr string) func(*radius.Packet) {
	return func(p *radius.Packet) {
		_, n, _ := net.ParseCIDR(cidr)
		_ = rfc3162.FramedIPv6Prefix_Set(p, n)
	}
}
func nasIP(ip string) func(*radius.Packet) {
	return func(p *radius.Packet) { _ = rfc2865.NASIPAddress_Set(p, net.ParseIP(ip)) }
}
func eventTimestamp(t time.Time) func(*radius.Packet) {
	return func(p *radius.Packet) { _ = rfc2869.EventTimestamp_Set(p, t) }
}
func raw(typ radius.Type, value []byte) func(*radius.Packet) {
	return func(p *radius.Packet) { p.Add(typ, value) }
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	src := netip.MustParseAddr("192.0.2.10")
	ts := now.Add(-3 * time.Second).Truncate(time.Second)
	start := []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Start), sessionID("s1"), nasIP("192.0.2.1"),
		calling("33612345678"), framedIP("10.1.2.3")}
	open := func(ip string, at time.Time) network.AccountingEvent {
		return network.AccountingEvent{Kind: network.AccountingOpen, NAS: "192.0.2.1", SessionID: "s1", At: at,
			MSISDN: "+33612345678", IP: netip.MustParsePrefix(ip), APN: "unknown", RAT: "UNKNOWN"}
	}
	with := func(edits ...func(*radius.Packet)) []func(*radius.Packet) {
		return append(append([]func(*radius.Packet){}, start...), edits...)
	}
	full := open("10.1.2.3/32", ts)
	full.APN, full.RAT, full.IMSI = "internet.example", "LTE", "208011234567890"
	tests := []struct {
		name   string
		packet []func(*radius.Packet)
		want   decision
	}{
		{"start with 3GPP attributes", with(eventTimestamp(ts), func(p *radius.Packet) {
			_ = rfc2865.CalledStationID_SetString(p, "Internet.Example")
			_ = threegpp.ThreeGPPRATType_Set(p, 6)
			_ = threegpp.ThreeGPPIMSI_SetString(p, "208011234567890")
			_ = threegpp.ThreeGPPIMEISV_SetString(p, "3534900698733112")
		}), decision{status: statusStart, events: []network.AccountingEvent{full}, answer: true}},
		{"start at receipt without Event-Timestamp", start,
			decision{status: statusStart, events: []network.AccountingEvent{open("10.1.2.3/32", now)}, answer: true}},
		{"Acct-Delay-Time moves the instant back", with(func(p *radius.Packet) { _ = rfc2866.AcctDelayTime_Set(p, 5) }),
			decision{status: statusStart, events: []network.AccountingEvent{open("10.1.2.3/32", now.Add(-5*time.Second))}, answer: true}},
		{"a gateway clock ahead is clamped to the receipt", with(eventTimestamp(now.Add(time.Hour))),
			decision{status: statusStart, events: []network.AccountingEvent{open("10.1.2.3/32", now)}, answer: true}},
		{"unknown attributes are ignored", with(raw(222, []byte("x")), raw(rfc2865.VendorSpecific_Type, []byte{0, 0, 0x30, 0x39, 1, 3, 7})),
			decision{status: statusStart, events: []network.AccountingEvent{open("10.1.2.3/32", now)}, answer: true}},
		{"a '+' in Calling-Station-Id is accepted", with(func(p *radius.Packet) { _ = rfc2865.CallingStationID_SetString(p, "+33612345678") }),
			decision{status: statusStart, events: []network.AccountingEvent{open("10.1.2.3/32", now)}, answer: true}},
		{"interim on an IPv6 /64", []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_InterimUpdate), sessionID("s1"), nasIP("192.0.2.1"),
			calling("33612345678"), framedPrefix("2001:db8:1:2::/64")},
			decision{status: statusInterim, events: []network.AccountingEvent{open("2001:db8:1:2::/64", now)}, answer: true}},
		{"dual stack: both addresses", with(framedPrefix("2001:db8:1:2::/64")),
			decision{status: statusStart, events: []network.AccountingEvent{open("10.1.2.3/32", now), open("2001:db8:1:2::/64", now)}, answer: true}},
		{"stop needs neither number nor address", []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Stop), sessionID("s1"), nasIP("192.0.2.1")},
			decision{status: statusStop, events: []network.AccountingEvent{{Kind: network.AccountingClose, NAS: "192.0.2.1", SessionID: "s1", At: now}}, answer: true}},
		{"accounting-on names the NAS by NAS-Identifier", []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_AccountingOn),
			func(p *radius.Packet) { _ = rfc2865.NASIdentifier_SetString(p, "pgw-1") }},
			decision{status: statusOn, events: []network.AccountingEvent{{Kind: network.AccountingCloseNAS, NAS: "pgw-1", At: now}}, answer: true}},
		{"accounting-off without NAS attributes: the source", []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_AccountingOff)},
			decision{status: statusOff, events: []network.AccountingEvent{{Kind: network.AccountingCloseNAS, NAS: "192.0.2.10", At: now}}, answer: true}},
		{"another status type is answered, not recorded", []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Failed)},
			decision{status: statusOther, answer: true}},
		{"no Acct-Status-Type: discarded", []func(*radius.Packet){sessionID("s1"), calling("33612345678"), framedIP("10.1.2.3")},
			decision{status: statusMissing, reason: reasonMissingStatusType}},
		{"no Acct-Session-Id: discarded", []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Start), calling("33612345678"), framedIP("10.1.2.3")},
			decision{status: statusStart, reason: reasonMissingSessionID}},
		{"no number: answered, not recorded", []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Start), sessionID("s1"), framedIP("10.1.2.3")},
			decision{status: statusStart, reason: reasonMissingMSISDN, answer: true}},
		{"a malformed number: answered, not recorded", with(func(p *radius.Packet) { _ = rfc2865.CallingStationID_SetString(p, "33-abc") }),
			decision{status: statusStart, reason: reasonInvalidMSISDN, answer: true}},
		{"a number without country code", with(func(p *radius.Packet) { _ = rfc2865.CallingStationID_SetString(p, "0612345678") }),
			decision{status: statusStart, reason: reasonInvalidMSISDN, answer: true}},
		{"no address: answered, not recorded", []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Start), sessionID("s1"), calling("33612345678")},
			decision{status: statusStart, reason: reasonMissingAddress, answer: true}},
		{"the unspecified address", with(func(p *radius.Packet) { _ = rfc2865.FramedIPAddress_Set(p, net.IPv4zero) }),
			decision{status: statusStart, reason: reasonUnsupportedAddress, answer: true}},
		{"an IPv6 prefix shorter than /64", with(framedPrefix("2001:db8:1::/56")),
			decision{status: statusStart, reason: reasonUnsupportedAddress, answer: true}},
		{"a Framed-IP-Address of three bytes: discarded", []func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Start), sessionID("s1"),
			calling("33612345678"), raw(rfc2865.FramedIPAddress_Type, []byte{10, 1, 2})},
			decision{status: statusStart, reason: reasonMalformed}},
		{"an Event-Timestamp of two bytes: discarded", with(raw(rfc2869.EventTimestamp_Type, []byte{1, 2})),
			decision{status: statusStart, reason: reasonMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(packetWith(tt.packet...), src, now)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decide =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestParseClients(t *testing.T) {
	clients, err := ParseClients(stringsReader(`
# packet gateways
10.0.0.0/8      s3cret-one   pgw-lyon
192.0.2.7       s3cret-two
::ffff:10.1.0.0/112 s3cret-three pgw-paris # IPv4-mapped
`))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClients("shared-secret", clients)
	for _, tt := range []struct{ addr, secret, name string }{
		{"10.9.9.9", "s3cret-one", "pgw-lyon"},
		{"10.1.0.5", "s3cret-three", "pgw-paris"}, // the more specific prefix wins
		{"192.0.2.7", "s3cret-two", "192.0.2.7/32"},
		{"198.51.100.1", "shared-secret", "198.51.100.1"},
	} {
		secret, name, ok := c.secret(netip.MustParseAddr(tt.addr))
		if !ok || string(secret) != tt.secret || name != tt.name {
			t.Errorf("secret(%s) = %q, %q, %v; want %q, %q", tt.addr, secret, name, ok, tt.secret, tt.name)
		}
	}
	if _, _, ok := NewClients("", clients).secret(netip.MustParseAddr("198.51.100.1")); ok {
		t.Error("an unlisted address has a secret without a shared one")
	}
	_, err = ParseClients(stringsReader("10.0.0.0/8\nnot-an-address secret\n10.0.0.1 a b c\n"))
	if err == nil || !containsAll(err.Error(), "line 1", "line 2", "line 3") {
		t.Errorf("ParseClients of three bad lines = %v; want every line reported", err)
	}
}
