package eapaka

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/numverify/numverify/internal/milenage"
)

// Errors of the server's check of a response; each ends the authentication
// with EAP-Failure.
var (
	ErrWrongRES = errors.New("eapaka: RES is not XRES")
	// ErrRejected: the peer refused the network (AKA-Authentication-Reject).
	ErrRejected = errors.New("eapaka: the peer rejected the authentication")
	// ErrClientError: the peer could not process the challenge.
	ErrClientError = errors.New("eapaka: the peer reported a client error")
	// errUnexpected: a well-formed packet that is not an answer to the
	// challenge (another identifier, code or subtype, a missing attribute).
	errUnexpected = errors.New("eapaka: unexpected packet")
)

// Challenge is the server's side of one EAP-Request/AKA-Challenge.
type Challenge struct {
	Identity   string
	Identifier uint8
	Vector     milenage.Vector
	keys       Keys
}

// NewChallenge derives the keys of the vector for identity and returns the
// challenge and its EAP-Request/AKA-Challenge (AT_RAND, AT_AUTN, AT_MAC).
func NewChallenge(identity string, identifier uint8, v milenage.Vector) (*Challenge, []byte) {
	c := &Challenge{Identity: identity, Identifier: identifier, Vector: v, keys: deriveKeys(identity, v.IK, v.CK)}
	req := &Packet{Code: CodeRequest, Identifier: identifier, Subtype: SubtypeChallenge,
		Attributes: []Attribute{attrRAND(v.RAND), attrAUTN(v.AUTN)}}
	return c, seal(req, c.keys.Aut)
}

// Verdict is the server's reading of a valid answer to the challenge.
type Verdict struct {
	// Resync is set for AKA-Synchronization-Failure: AUTS is the peer's
	// resynchronisation token; the caller recovers SQN_MS with
	// milenage.Cipher.Resynchronise and sends a new challenge.
	Resync bool
	AUTS   [milenage.AUTSSize]byte
	// Keys are the session keys once RES verified.
	Keys *Keys
}

// Verify checks the peer's response. It returns the session keys when AT_MAC
// and RES verify, the AUTS of a synchronisation failure, or an error
// (errMalformed, errUnexpected, ErrBadMAC, ErrWrongRES, ErrRejected,
// ErrClientError) after which the server sends EAP-Failure.
func (c *Challenge) Verify(raw []byte) (Verdict, error) {
	resp, err := Decode(raw)
	if err != nil {
		return Verdict{}, err
	}
	if resp.Code != CodeResponse || resp.Identifier != c.Identifier {
		return Verdict{}, fmt.Errorf("%w: code %d identifier %d, want a response to %d", errUnexpected, resp.Code, resp.Identifier, c.Identifier)
	}
	switch resp.Subtype {
	case SubtypeChallenge:
		return c.verifyChallengeResponse(raw, resp)
	case SubtypeSynchronizationFailure:
		auts, ok := resp.Attribute(AtAUTS)
		if !ok {
			return Verdict{}, fmt.Errorf("%w: synchronization failure without AT_AUTS", errUnexpected)
		}
		return Verdict{Resync: true, AUTS: [milenage.AUTSSize]byte(auts)}, nil
	case SubtypeAuthenticationReject:
		return Verdict{}, ErrRejected
	case SubtypeClientError:
		return Verdict{}, ErrClientError
	default:
		return Verdict{}, fmt.Errorf("%w: subtype %d", errUnexpected, resp.Subtype)
	}
}

func (c *Challenge) verifyChallengeResponse(raw []byte, resp *Packet) (Verdict, error) {
	resValue, ok := resp.Attribute(AtRES)
	if !ok {
		return Verdict{}, fmt.Errorf("%w: challenge response without AT_RES", errUnexpected)
	}
	if err := verifyMAC(raw, resp, c.keys.Aut); err != nil {
		return Verdict{}, err
	}
	if subtle.ConstantTimeCompare(res16(resValue), c.Vector.XRES[:]) != 1 {
		return Verdict{}, ErrWrongRES
	}
	keys := c.keys
	return Verdict{Keys: &keys}, nil
}

// Success and Failure are the EAP-Success and EAP-Failure packets that end
// an authentication (RFC 3748 §4.2).
func Success(identifier uint8) []byte {
	return (&Packet{Code: CodeSuccess, Identifier: identifier}).Marshal()
}

// Failure is EAP-Failure.
func Failure(identifier uint8) []byte {
	return (&Packet{Code: CodeFailure, Identifier: identifier}).Marshal()
}
