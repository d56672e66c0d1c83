package eapaka

import (
	"errors"
	"fmt"

	"github.com/numverify/numverify/internal/milenage"
)

// DefaultSQNWindow is how far ahead of the highest accepted sequence number
// the peer accepts a challenge's SQN (Δ of TS 33.102 Annex C.2.1, 2^28).
const DefaultSQNWindow = 1 << 28

// PeerOutcome says what the peer made of a server packet.
type PeerOutcome int

// Peer outcomes.
const (
	// PeerChallengeAnswered: EAP-Response/AKA-Challenge with RES and AT_MAC.
	PeerChallengeAnswered PeerOutcome = iota + 1
	// PeerSynchronizationFailure: SQN out of range, EAP-Response/
	// AKA-Synchronization-Failure with AUTS (RFC 4187 §6.3.1).
	PeerSynchronizationFailure
	// PeerAuthenticationReject: AUTN's MAC failed, EAP-Response/
	// AKA-Authentication-Reject (RFC 4187 §6.3.1).
	PeerAuthenticationReject
	// PeerClientError: the request could not be processed (AT_MAC wrong,
	// attribute missing), EAP-Response/AKA-Client-Error (RFC 4187 §6.3.3).
	PeerClientError
	// PeerSuccess and PeerFailure: EAP-Success or EAP-Failure received.
	PeerSuccess
	PeerFailure
)

// Peer is the EAP-AKA peer of one simulated USIM: its identity, MILENAGE
// instance and highest accepted sequence number SQN_MS.
type Peer struct {
	Identity string
	SIM      *milenage.Cipher
	SQN      uint64 // SQN_MS: the highest SQN accepted so far
	Window   uint64 // accepted distance above SQN; 0 means DefaultSQNWindow

	// Keys are set once a challenge was answered.
	Keys *Keys
}

// Handle processes one packet from the server and returns the response to
// send (nil after EAP-Success or EAP-Failure) and what happened. An error is
// returned only for a packet the peer cannot answer at all.
func (p *Peer) Handle(raw []byte) ([]byte, PeerOutcome, error) {
	req, err := Decode(raw)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case req.Code == CodeSuccess:
		return nil, PeerSuccess, nil
	case req.Code == CodeFailure:
		return nil, PeerFailure, nil
	case req.Code != CodeRequest || req.Subtype != SubtypeChallenge:
		return nil, 0, fmt.Errorf("eapaka: peer cannot answer code %d subtype %d", req.Code, req.Subtype)
	}
	reply := func(subtype Subtype, attrs ...Attribute) *Packet {
		return &Packet{Code: CodeResponse, Identifier: req.Identifier, Subtype: subtype, Attributes: attrs}
	}
	randValue, hasRAND := req.Attribute(AtRAND)
	autnValue, hasAUTN := req.Attribute(AtAUTN)
	if _, hasMAC := req.Attribute(AtMAC); !hasRAND || !hasAUTN || !hasMAC {
		return reply(SubtypeClientError, attrClientErrorCode(0)).Marshal(), PeerClientError, nil
	}
	rand, autn := [16]byte(randValue[2:18]), [16]byte(autnValue[2:18])
	result, err := p.SIM.Authenticate(rand, autn)
	if errors.Is(err, milenage.ErrMACFailure) {
		return reply(SubtypeAuthenticationReject).Marshal(), PeerAuthenticationReject, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("eapaka: peer: %w", err)
	}
	if !p.inRange(result.SQN) {
		auts := p.SIM.AUTS(rand, p.SQN)
		return reply(SubtypeSynchronizationFailure, attrAUTS(auts)).Marshal(), PeerSynchronizationFailure, nil
	}
	keys := deriveKeys(p.Identity, result.IK, result.CK)
	if err := verifyMAC(raw, req, keys.Aut); err != nil {
		return reply(SubtypeClientError, attrClientErrorCode(0)).Marshal(), PeerClientError, nil
	}
	p.SQN, p.Keys = result.SQN, &keys
	resp := reply(SubtypeChallenge, attrRES(result.RES[:]))
	if _, ok := req.Attribute(AtCheckcode); ok {
		resp.Attributes = append(resp.Attributes, attrEmptyCheckcode()) // no identity round was run
	}
	return seal(resp, keys.Aut), PeerChallengeAnswered, nil
}

// inRange is the USIM's freshness check (TS 33.102 Annex C.2.1, without the
// IND array): SQN must be above SQN_MS and at most the window above it.
func (p *Peer) inRange(sqn uint64) bool {
	window := p.Window
	if window == 0 {
		window = DefaultSQNWindow
	}
	return sqn > p.SQN && sqn-p.SQN <= window
}
