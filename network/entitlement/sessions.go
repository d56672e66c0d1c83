package entitlement

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"github.com/numverify/numverify/internal/milenage"
	"github.com/numverify/numverify/network/eapaka"
)

// session is one EAP-AKA authentication between its challenge and the
// device's answer, found by the cookie the challenge set.
type session struct {
	imsi             string
	identity         string
	app              string
	clientID         string
	operationTargets string
	challenge        *eapaka.Challenge
	msisdn           string           // the SIM's, read with the challenge
	cipher           *milenage.Cipher // the SIM's, to check AUTS
	resyncs          int
	expires          time.Time
}

// sessions keeps the authentications in progress in memory. A session is
// taken out to process an answer, so a replayed answer finds none; only a
// resynchronisation puts it back, with its new challenge. In memory means a
// device must reach the same replica for its two requests (cookie affinity
// on a balancer) and a restart loses the authentications in flight: each
// costs the device one retry.
type sessions struct {
	mu    sync.Mutex
	byID  map[string]*session
	max   int
	ttl   time.Duration
	count func(int) // reports the size (a gauge)
}

func newSessions(max int, ttl time.Duration, count func(int)) *sessions {
	return &sessions{byID: map[string]*session{}, max: max, ttl: ttl, count: count}
}

// add stores s under a new random id and returns the id; false when full.
func (t *sessions) add(s *session, now time.Time) (string, bool) {
	raw := make([]byte, 32)
	rand.Read(raw)
	id := base64.RawURLEncoding.EncodeToString(raw)
	return id, t.put(id, s, now)
}

// put stores s under id, expiring ttl from now; false when full.
func (t *sessions) put(id string, s *session, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byID) >= t.max {
		for k, v := range t.byID {
			if !now.Before(v.expires) {
				delete(t.byID, k)
			}
		}
		if len(t.byID) >= t.max {
			return false
		}
	}
	s.expires = now.Add(t.ttl)
	t.byID[id] = s
	t.count(len(t.byID))
	return true
}

// take removes and returns the live session of id.
func (t *sessions) take(id string, now time.Time) (*session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok {
		return nil, false
	}
	delete(t.byID, id)
	t.count(len(t.byID))
	return s, now.Before(s.expires)
}
