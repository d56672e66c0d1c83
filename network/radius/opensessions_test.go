package radius

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"

	"github.com/numverify/numverify/network"
)

// countingStore counts the events each commit asked of the table.
type countingStore struct {
	*network.Store
	events atomic.Int64
}

func (c *countingStore) ApplyAccounting(ctx context.Context, events []network.AccountingEvent, remember time.Duration) ([]network.AccountingResult, []error, error) {
	c.events.Add(int64(len(events)))
	return c.Store.ApplyAccounting(ctx, events, remember)
}

// TestInterimFromMemory, against Postgres: the Interim-Updates of a session
// this server committed as open are answered without the table; one whose
// address differs, or whose session was stopped, asks it again. A session
// closed behind the server's back (another replica's Stop) stays closed
// when its Interim-Update is answered from memory: the answer the table
// would have given.
func TestInterimFromMemory(t *testing.T) {
	store := &countingStore{Store: newStore(t)}
	const secret = "shared-secret-of-16+"
	srv := serve(t, store, NewClients(secret, nil))
	session := func(kind rfc2866.AcctStatusType, id, ip string) []func(*radius.Packet) {
		return []func(*radius.Packet){status(kind), sessionID(id), nasIP("192.0.2.1"), calling("33612345678"), framedIP(ip)}
	}
	exchange := func(edits []func(*radius.Packet)) {
		t.Helper()
		if send(t, srv.addr, secret, "", 5*time.Second, edits...) == nil {
			t.Fatal("not answered")
		}
	}
	exchange(session(rfc2866.AcctStatusType_Value_Start, "m1", "127.61.0.1"))
	asked := store.events.Load()
	for range 3 {
		exchange(session(rfc2866.AcctStatusType_Value_InterimUpdate, "m1", "127.61.0.1"))
	}
	if got := store.events.Load() - asked; got != 0 {
		t.Errorf("Interim-Updates of a remembered session asked the table %d times; want 0", got)
	}
	if v := counter(t, srv, "numverify_radius_remembered_total"); v != 3 {
		t.Errorf("remembered %v; want 3", v)
	}
	if v := counter(t, srv, "numverify_radius_requests_total", "status_type=interim", "outcome=confirmed"); v != 3 {
		t.Errorf("confirmed interims %v; want 3", v)
	}

	// Another address under the same session id is not the remembered one.
	exchange(session(rfc2866.AcctStatusType_Value_InterimUpdate, "m1", "127.61.0.2"))
	if got := store.events.Load() - asked; got != 1 {
		t.Errorf("an Interim-Update at another address asked the table %d times; want 1", got)
	}

	// Another replica stops the session: this server's memory still holds
	// it, answers its Interim-Update, and the table keeps it closed.
	if _, _, err := store.Store.ApplyAccounting(context.Background(), []network.AccountingEvent{{Kind: network.AccountingClose,
		NAS: "192.0.2.1", SessionID: "m1", At: time.Now()}}, network.DefaultRememberStops); err != nil {
		t.Fatal(err)
	}
	exchange(session(rfc2866.AcctStatusType_Value_InterimUpdate, "m1", "127.61.0.1"))
	if got := holder(t, store.Store, "127.61.0.1"); got != "" {
		t.Fatalf("holder %q after another replica's Stop and an Interim-Update answered from memory", got)
	}

	// This server's own Stop forgets the session: its late Interim-Update
	// asks the table, which keeps it closed.
	exchange(session(rfc2866.AcctStatusType_Value_Start, "m2", "127.61.0.3"))
	exchange([]func(*radius.Packet){status(rfc2866.AcctStatusType_Value_Stop), sessionID("m2"), nasIP("192.0.2.1")})
	asked = store.events.Load()
	exchange(session(rfc2866.AcctStatusType_Value_InterimUpdate, "m2", "127.61.0.3"))
	if got := store.events.Load() - asked; got != 1 {
		t.Errorf("a late Interim-Update after this server's Stop asked the table %d times; want 1", got)
	}
	if got := holder(t, store.Store, "127.61.0.3"); got != "" {
		t.Fatalf("holder %q after Stop and a late Interim-Update", got)
	}
}

// TestOpenSessionsLimits: an entry is trusted maxAge after its commit; the
// memory holds at most its capacity; an Accounting-On/Off forgets all.
func TestOpenSessionsLimits(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	o := newOpenSessions(4, time.Minute, func() time.Time { return now })
	open := func(sid string) network.AccountingEvent {
		return network.AccountingEvent{Kind: network.AccountingOpen, NAS: "gw", SessionID: sid, IP: netip.MustParsePrefix("10.0.0.1/32")}
	}
	commit := func(events ...network.AccountingEvent) {
		results := make([]network.AccountingResult, len(events))
		for i := range results {
			results[i].Outcome = network.OutcomeOpened
		}
		o.committed(events, results, make([]error, len(events)))
	}
	commit(open("a"))
	if !o.confirms([]network.AccountingEvent{open("a")}) {
		t.Fatal("a committed session is not remembered")
	}
	now = now.Add(61 * time.Second)
	if o.confirms([]network.AccountingEvent{open("a")}) {
		t.Error("an entry older than maxAge is still trusted")
	}
	for _, sid := range []string{"b", "c", "d", "e", "f", "g"} {
		commit(open(sid))
	}
	if n := o.size(); n > 4 {
		t.Errorf("%d entries; capacity 4", n)
	}
	if !o.confirms([]network.AccountingEvent{open("g")}) {
		t.Error("the newest session is not remembered")
	}
	commit(network.AccountingEvent{Kind: network.AccountingCloseNAS, NAS: "gw"})
	if o.size() != 0 || o.confirms([]network.AccountingEvent{open("g")}) {
		t.Error("an Accounting-On/Off did not forget the sessions")
	}
	var disabled *openSessions
	disabled.committed([]network.AccountingEvent{open("a")}, []network.AccountingResult{{Outcome: network.OutcomeOpened}}, []error{nil})
	if disabled.confirms([]network.AccountingEvent{open("a")}) {
		t.Error("a disabled memory confirmed")
	}
}
