package radius

import (
	"crypto/sha256"
	"net/netip"
	"sync"
	"time"

	"github.com/numverify/numverify/network"
)

// openSessions remembers the sessions this server has committed as open,
// so that their Interim-Updates (most of a gateway's traffic) are answered
// without a queue, a read or a commit.
//
// Why that answer is always right: an Open (Interim-Update, retransmitted
// Start) of a session the table has recorded changes nothing, whatever
// happened to it since: open, it is confirmed; closed since (a Stop, an
// Accounting-On/Off, a newer Start on its address, here or at another
// replica), it stays closed (network.Store.ApplyAccounting). Only an Open
// of a session never recorded writes, and a remembered session was
// recorded, durably, before it was remembered. The answer itself was due
// then: the change it acknowledges is the one already committed.
//
// Two limits keep the memory honest. An entry is trusted for at most
// maxAge after its commit (a session closed and forgotten past the
// remembering window, or detached through the admin API, is then asked of
// the table again), and it is kept in two generations of at most
// capacity/2 entries each: the older generation is dropped whole when the
// newer fills or is older than maxAge. Keys are a SHA-256 prefix of the NAS
// and Acct-Session-Id (128 bits: no collision to fear), so an entry costs
// about 64 bytes whatever the identifiers' length.
type openSessions struct {
	mu       sync.Mutex
	sessions generations[sessionKey, openEntry]
	started  time.Time // of the newer generation
	maxAge   time.Duration
	now      func() time.Time
}

type sessionKey [16]byte

type openEntry struct {
	addrs [2]netip.Prefix // its addresses (dual stack: an IPv4 /32 and an IPv6 /64)
	added time.Time
}

// newOpenSessions returns the cache, or nil (every method then does
// nothing) when capacity is zero.
func newOpenSessions(capacity int, maxAge time.Duration, now func() time.Time) *openSessions {
	if capacity <= 0 {
		return nil
	}
	return &openSessions{sessions: newGenerations[sessionKey, openEntry](capacity), started: now(), maxAge: maxAge, now: now}
}

func keyOf(nas, sessionID string) sessionKey {
	sum := sha256.Sum256([]byte(nas + "\x00" + sessionID))
	return sessionKey(sum[:16])
}

// confirms reports whether every event is an Open of a session remembered
// open at that address.
func (o *openSessions) confirms(events []network.AccountingEvent) bool {
	if o == nil || len(events) == 0 {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	o.rotate(now)
	for _, e := range events {
		if e.Kind != network.AccountingOpen {
			return false
		}
		entry, ok := o.sessions.get(keyOf(e.NAS, e.SessionID))
		if !ok || now.Sub(entry.added) > o.maxAge || (entry.addrs[0] != e.IP && entry.addrs[1] != e.IP) {
			return false
		}
	}
	return true
}

// committed updates the cache with what a commit did, event by event in
// order: an Open that left its session open is remembered; a Stop forgets
// its session; an Accounting-On/Off forgets everything (a gateway
// restarting is rare; its sessions' next Interim-Updates ask the table).
func (o *openSessions) committed(events []network.AccountingEvent, results []network.AccountingResult, errs []error) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	o.rotate(now)
	for i, e := range events {
		if errs[i] != nil {
			continue
		}
		k := keyOf(e.NAS, e.SessionID)
		switch e.Kind {
		case network.AccountingOpen:
			switch results[i].Outcome {
			case network.OutcomeOpened, network.OutcomeConfirmed:
			default:
				continue
			}
			entry, _ := o.sessions.get(k)
			switch {
			case entry.addrs[0] == e.IP || entry.addrs[1] == e.IP:
			case !entry.addrs[0].IsValid():
				entry.addrs[0] = e.IP
			default:
				entry.addrs[1] = e.IP
			}
			entry.added = now
			o.sessions.put(k, entry)
		case network.AccountingClose:
			o.sessions.delete(k)
		case network.AccountingCloseNAS:
			o.sessions.clear()
		}
	}
}

// rotate starts a new generation when the current one is maxAge old (its
// entries have then all expired or been used since).
func (o *openSessions) rotate(now time.Time) {
	if now.Sub(o.started) >= o.maxAge {
		o.sessions.rotate()
		o.started = now
	}
}

// size is how many sessions are remembered (a gauge).
func (o *openSessions) size() int {
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sessions.len()
}
