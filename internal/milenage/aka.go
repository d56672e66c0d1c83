package milenage

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// MaxSQN is the largest 48-bit sequence number.
const MaxSQN = 1<<48 - 1

// AUTNSize and AUTSSize are the lengths of AUTN and AUTS (TS 33.102 §6.3).
const (
	AUTNSize = 16
	AUTSSize = 14
)

// Errors of the USIM-side checks.
var (
	// ErrMACFailure: AUTN's MAC-A (or AUTS's MAC-S) is not the one K computes.
	ErrMACFailure = errors.New("milenage: MAC failure")
)

// sqnBytes is the 48-bit big-endian form of sqn.
func sqnBytes(sqn uint64) [SQNSize]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], sqn&MaxSQN)
	return [SQNSize]byte(b[2:8])
}

// sqnValue reads a 48-bit big-endian sequence number.
func sqnValue(b [SQNSize]byte) uint64 {
	var full [8]byte
	copy(full[2:], b[:])
	return binary.BigEndian.Uint64(full[:])
}

// Vector is an authentication vector (TS 33.102 §6.3.2) as the home network
// makes it for one challenge.
type Vector struct {
	RAND [RANDSize]byte
	XRES [RESSize]byte
	CK   [CKSize]byte
	IK   [IKSize]byte
	AUTN [AUTNSize]byte
	SQN  uint64
}

// Vector builds the authentication vector of rand and sqn:
// AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A.
func (c *Cipher) Vector(rand [RANDSize]byte, sqn uint64, amf [AMFSize]byte) Vector {
	sqnBytes := sqnBytes(sqn)
	o := c.f2345(rand)
	mac := c.f1(rand, sqnBytes, amf)
	v := Vector{RAND: rand, XRES: o.RES, CK: o.CK, IK: o.IK, SQN: sqn & MaxSQN}
	subtle.XORBytes(v.AUTN[0:6], sqnBytes[:], o.AK[:])
	copy(v.AUTN[6:8], amf[:])
	copy(v.AUTN[8:16], mac[:])
	return v
}

// Result is what the USIM computes from a RAND and AUTN whose MAC verified.
type Result struct {
	SQN uint64 // the network's sequence number, for the caller's range check
	AMF [AMFSize]byte
	RES [RESSize]byte
	CK  [CKSize]byte
	IK  [IKSize]byte
}

// Authenticate is the USIM's half (TS 33.102 §6.3.3): it recovers SQN from
// AUTN and checks MAC-A. It returns ErrMACFailure when the MAC is wrong; the
// caller checks that SQN is in range and otherwise answers with AUTS.
func (c *Cipher) Authenticate(rand [RANDSize]byte, autn [AUTNSize]byte) (Result, error) {
	o := c.f2345(rand)
	var sqn [SQNSize]byte
	subtle.XORBytes(sqn[:], autn[0:6], o.AK[:])
	amf := [AMFSize]byte(autn[6:8])
	xmac := c.f1(rand, sqn, amf)
	if subtle.ConstantTimeCompare(xmac[:], autn[8:16]) != 1 {
		return Result{}, ErrMACFailure
	}
	return Result{SQN: sqnValue(sqn), AMF: amf, RES: o.RES, CK: o.CK, IK: o.IK}, nil
}

// resyncAMF is the dummy AMF of all zeros used for MAC-S (TS 33.102 §6.3.3).
var resyncAMF = [AMFSize]byte{}

// AUTS builds the resynchronisation token the USIM sends when SQN is out of
// range: AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S, MAC-S = f1*(SQN_MS, RAND, AMF = 0).
func (c *Cipher) AUTS(rand [RANDSize]byte, sqnMS uint64) [AUTSSize]byte {
	sqn := sqnBytes(sqnMS)
	o := c.f2345(rand)
	mac := c.f1Star(rand, sqn, resyncAMF)
	var auts [AUTSSize]byte
	subtle.XORBytes(auts[0:6], sqn[:], o.AKStar[:])
	copy(auts[6:14], mac[:])
	return auts
}

// Resynchronise is the home network's half of resynchronisation (TS 33.102
// §6.3.5): it recovers SQN_MS from AUTS with f5* and checks MAC-S with f1*.
// ErrMACFailure means the AUTS did not come from this subscriber's USIM for
// this RAND.
func (c *Cipher) Resynchronise(rand [RANDSize]byte, auts [AUTSSize]byte) (uint64, error) {
	o := c.f2345(rand)
	var sqn [SQNSize]byte
	subtle.XORBytes(sqn[:], auts[0:6], o.AKStar[:])
	xmac := c.f1Star(rand, sqn, resyncAMF)
	if subtle.ConstantTimeCompare(xmac[:], auts[6:14]) != 1 {
		return 0, ErrMACFailure
	}
	return sqnValue(sqn), nil
}
