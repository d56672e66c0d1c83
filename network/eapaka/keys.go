package eapaka

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 4187 fixes SHA-1 for MK, the PRF and AT_MAC
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"math/bits"
)

// Keys are the keys RFC 4187 §7 derives from one full authentication.
type Keys struct {
	Encr [16]byte // K_encr
	Aut  [16]byte // K_aut: the AT_MAC key
	MSK  [64]byte
	EMSK [64]byte
}

// deriveKeys computes MK = SHA1(Identity ‖ IK ‖ CK) and splits the 160
// octets of PRF(MK) into K_encr, K_aut, MSK and EMSK.
func deriveKeys(identity string, ik, ck [16]byte) Keys {
	h := sha1.New() //nolint:gosec // see import
	h.Write([]byte(identity))
	h.Write(ik[:])
	h.Write(ck[:])
	mk := h.Sum(nil)
	x := prf(mk, 160)
	var k Keys
	copy(k.Encr[:], x[0:16])
	copy(k.Aut[:], x[16:32])
	copy(k.MSK[:], x[32:96])
	copy(k.EMSK[:], x[96:160])
	return k
}

// prf is the pseudo-random function of FIPS 186-2 change notice 1 (Appendix
// 3.1, with XSEED_j = 0 and G built from the SHA-1 compression function as
// in Appendix 3.3) that RFC 4187 §7 uses: it returns n octets, a multiple of
// 40, from the 160-bit seed key.
func prf(key []byte, n int) []byte {
	var xkey [20]byte
	copy(xkey[:], key)
	out := make([]byte, 0, n)
	for len(out) < n {
		var block [64]byte // XVAL = XKEY, padded with zeros to 512 bits
		copy(block[:], xkey[:])
		w := sha1Compress(block)
		out = append(out, w[:]...)
		// XKEY = (1 + XKEY + w_i) mod 2^160
		carry := uint(1)
		for i := 19; i >= 0; i-- {
			carry += uint(xkey[i]) + uint(w[i])
			xkey[i] = byte(carry)
			carry >>= 8
		}
	}
	return out[:n]
}

// sha1Compress is G(t, c) of FIPS 186-2 Appendix 3.3: the SHA-1 compression
// function applied once to the initial hash value and the block, with no
// padding or length.
func sha1Compress(block [64]byte) [20]byte {
	h := [5]uint32{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}
	var w [80]uint32
	for i := 0; i < 16; i++ {
		w[i] = binary.BigEndian.Uint32(block[i*4:])
	}
	for i := 16; i < 80; i++ {
		w[i] = bits.RotateLeft32(w[i-3]^w[i-8]^w[i-14]^w[i-16], 1)
	}
	a, b, c, d, e := h[0], h[1], h[2], h[3], h[4]
	for i := 0; i < 80; i++ {
		var f, k uint32
		switch {
		case i < 20:
			f, k = (b&c)|(^b&d), 0x5A827999
		case i < 40:
			f, k = b^c^d, 0x6ED9EBA1
		case i < 60:
			f, k = (b&c)|(b&d)|(c&d), 0x8F1BBCDC
		default:
			f, k = b^c^d, 0xCA62C1D6
		}
		t := bits.RotateLeft32(a, 5) + f + e + k + w[i]
		a, b, c, d, e = t, a, bits.RotateLeft32(b, 30), c, d
	}
	var out [20]byte
	for i, v := range [5]uint32{h[0] + a, h[1] + b, h[2] + c, h[3] + d, h[4] + e} {
		binary.BigEndian.PutUint32(out[i*4:], v)
	}
	return out
}

// ErrBadMAC is returned when AT_MAC is absent or is not the HMAC of K_aut.
var ErrBadMAC = errors.New("eapaka: AT_MAC does not verify")

// macOf is HMAC-SHA1-128 over the packet whose 16 MAC octets are zero
// (RFC 4187 §10.15; EAP-AKA's full authentication appends nothing).
func macOf(kaut [16]byte, zeroed []byte) []byte {
	m := hmac.New(sha1.New, kaut[:])
	m.Write(zeroed)
	return m.Sum(nil)[:16]
}

// seal encodes p with AT_MAC (added when absent) set under kaut.
func seal(p *Packet, kaut [16]byte) []byte {
	if _, ok := p.Attribute(AtMAC); !ok {
		p.Attributes = append(p.Attributes, attrMAC())
	}
	for i := range p.Attributes {
		if p.Attributes[i].Type == AtMAC {
			p.Attributes[i].Value = make([]byte, 18)
		}
	}
	out, offset := p.marshal()
	copy(out[offset:offset+16], macOf(kaut, out))
	return out
}

// verifyMAC checks the AT_MAC of raw, which Decode parsed as p.
func verifyMAC(raw []byte, p *Packet, kaut [16]byte) error {
	if p.macOffset == 0 {
		return ErrBadMAC
	}
	length := int(binary.BigEndian.Uint16(raw[2:4]))
	zeroed := append([]byte(nil), raw[:length]...)
	got := append([]byte(nil), zeroed[p.macOffset:p.macOffset+16]...)
	clear(zeroed[p.macOffset : p.macOffset+16])
	if subtle.ConstantTimeCompare(got, macOf(kaut, zeroed)) != 1 {
		return ErrBadMAC
	}
	return nil
}
