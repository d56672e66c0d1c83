// Package eapaka implements EAP-AKA (RFC 4187) on the wire: the packet and
// attribute encoding, the key derivation (MK, FIPS 186-2 PRF: K_encr, K_aut,
// MSK, EMSK), AT_MAC, and the two halves of the full authentication: the peer
// (a USIM running MILENAGE) and the server (the home network checking RES,
// answering a resynchronisation). Identity rounds, re-authentication and the
// encrypted attributes are not implemented: the entitlement server learns the
// identity from TS.43's EAP_ID.
package eapaka

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Code is the EAP packet code (RFC 3748 §4).
type Code uint8

// EAP codes.
const (
	CodeRequest  Code = 1
	CodeResponse Code = 2
	CodeSuccess  Code = 3
	CodeFailure  Code = 4
)

// TypeAKA is the EAP method type of EAP-AKA.
const TypeAKA = 23

// Subtype is the EAP-AKA message subtype (RFC 4187 §11).
type Subtype uint8

// EAP-AKA subtypes.
const (
	SubtypeChallenge              Subtype = 1
	SubtypeAuthenticationReject   Subtype = 2
	SubtypeSynchronizationFailure Subtype = 4
	SubtypeIdentity               Subtype = 5
	SubtypeNotification           Subtype = 12
	SubtypeReauthentication       Subtype = 13
	SubtypeClientError            Subtype = 14
)

// AttributeType is an EAP-AKA attribute type (RFC 4187 §11); types 128 and
// above are skippable.
type AttributeType uint8

// EAP-AKA attribute types.
const (
	AtRAND            AttributeType = 1
	AtAUTN            AttributeType = 2
	AtRES             AttributeType = 3
	AtAUTS            AttributeType = 4
	AtPadding         AttributeType = 6
	AtPermanentIDReq  AttributeType = 10
	AtMAC             AttributeType = 11
	AtNotification    AttributeType = 12
	AtAnyIDReq        AttributeType = 13
	AtIdentity        AttributeType = 14
	AtFullauthIDReq   AttributeType = 17
	AtCounter         AttributeType = 19
	AtCounterTooSmall AttributeType = 20
	AtNonceS          AttributeType = 21
	AtClientErrorCode AttributeType = 22
	AtIV              AttributeType = 129
	AtEncrData        AttributeType = 130
	AtNextPseudonym   AttributeType = 132
	AtNextReauthID    AttributeType = 133
	AtCheckcode       AttributeType = 134
	AtResultInd       AttributeType = 135
)

// maxPacketSize bounds what Decode accepts (EAP's length field allows 65535;
// an EAP-AKA packet of this implementation is under 100 bytes).
const maxPacketSize = 4096

// errMalformed wraps every decoding failure.
var errMalformed = errors.New("eapaka: malformed packet")

// errNotAKA is returned for a well-formed EAP request or response of another
// method (Identity, Nak, …).
var errNotAKA = errors.New("eapaka: not an EAP-AKA packet")

// Attribute is one attribute: its type and its value, every byte after the
// type and length octets (reserved octets and padding included).
type Attribute struct {
	Type  AttributeType
	Value []byte
}

// Packet is an EAP packet; Subtype and Attributes are set for EAP-AKA
// requests and responses only.
type Packet struct {
	Code       Code
	Identifier uint8
	Subtype    Subtype
	Attributes []Attribute

	macOffset int // Decode: offset of the 16 MAC octets of AT_MAC, or 0
}

// Attribute returns the value of the attribute t, if present.
func (p *Packet) Attribute(t AttributeType) ([]byte, bool) {
	for _, a := range p.Attributes {
		if a.Type == t {
			return a.Value, true
		}
	}
	return nil, false
}

// fixedLengths are the attributes whose total length (type and length octets
// included) is fixed; AT_CHECKCODE is 4 or 24.
var fixedLengths = map[AttributeType]int{
	AtRAND: 20, AtAUTN: 20, AtAUTS: 16, AtMAC: 20, AtClientErrorCode: 4,
	AtNotification: 4, AtCounter: 4, AtCounterTooSmall: 4, AtNonceS: 20,
	AtPermanentIDReq: 4, AtAnyIDReq: 4, AtFullauthIDReq: 4, AtResultInd: 4, AtIV: 20,
}

// Decode parses an EAP packet. It accepts EAP-Success and EAP-Failure, and
// EAP-AKA requests and responses; another method's request or response is
// errNotAKA. Octets beyond the EAP length are ignored (RFC 3748 §4.1).
func Decode(data []byte) (*Packet, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: %d octets, the header needs 4", errMalformed, len(data))
	}
	length := int(binary.BigEndian.Uint16(data[2:4]))
	if length < 4 || length > len(data) || length > maxPacketSize {
		return nil, fmt.Errorf("%w: length field %d for %d octets", errMalformed, length, len(data))
	}
	data = data[:length]
	p := &Packet{Code: Code(data[0]), Identifier: data[1]}
	switch p.Code {
	case CodeSuccess, CodeFailure:
		if length != 4 {
			return nil, fmt.Errorf("%w: EAP-Success or EAP-Failure of %d octets", errMalformed, length)
		}
		return p, nil
	case CodeRequest, CodeResponse:
	default:
		return nil, fmt.Errorf("%w: code %d", errMalformed, p.Code)
	}
	if length < 5 {
		return nil, fmt.Errorf("%w: no method type", errMalformed)
	}
	if data[4] != TypeAKA {
		return nil, fmt.Errorf("%w: method type %d", errNotAKA, data[4])
	}
	if length < 8 {
		return nil, fmt.Errorf("%w: EAP-AKA header of %d octets", errMalformed, length)
	}
	p.Subtype = Subtype(data[5])
	if err := p.decodeAttributes(data, 8); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Packet) decodeAttributes(data []byte, offset int) error {
	seen := map[AttributeType]bool{}
	for offset < len(data) {
		if len(data)-offset < 2 {
			return fmt.Errorf("%w: truncated attribute header", errMalformed)
		}
		t, size := AttributeType(data[offset]), int(data[offset+1])*4
		if size == 0 || offset+size > len(data) {
			return fmt.Errorf("%w: attribute %d of %d octets at %d of %d", errMalformed, t, size, offset, len(data))
		}
		if seen[t] {
			return fmt.Errorf("%w: attribute %d repeated", errMalformed, t)
		}
		seen[t] = true
		if err := checkAttribute(t, data[offset:offset+size]); err != nil {
			return err
		}
		if t == AtMAC {
			p.macOffset = offset + 4
		}
		value := append([]byte(nil), data[offset+2:offset+size]...)
		p.Attributes = append(p.Attributes, Attribute{Type: t, Value: value})
		offset += size
	}
	return nil
}

// checkAttribute validates the length of a known attribute and refuses an
// unknown non-skippable one (RFC 4187 §8.1).
func checkAttribute(t AttributeType, whole []byte) error {
	if want, ok := fixedLengths[t]; ok {
		if len(whole) != want {
			return fmt.Errorf("%w: attribute %d of %d octets, want %d", errMalformed, t, len(whole), want)
		}
		return nil
	}
	switch t {
	case AtRES:
		bits := int(binary.BigEndian.Uint16(whole[2:4]))
		if len(whole) < 4 || bits < 32 || bits > 128 || bits%8 != 0 || 4+bits/8 > len(whole) {
			return fmt.Errorf("%w: AT_RES of %d bits in %d octets", errMalformed, bits, len(whole))
		}
	case AtCheckcode:
		if len(whole) != 4 && len(whole) != 24 {
			return fmt.Errorf("%w: AT_CHECKCODE of %d octets", errMalformed, len(whole))
		}
	case AtIdentity, AtNextPseudonym, AtNextReauthID:
		n := int(binary.BigEndian.Uint16(whole[2:4]))
		if len(whole) < 4 || 4+n > len(whole) {
			return fmt.Errorf("%w: identity of %d octets in %d", errMalformed, n, len(whole))
		}
	case AtPadding, AtEncrData:
	default:
		if t < 128 {
			return fmt.Errorf("%w: unknown non-skippable attribute %d", errMalformed, t)
		}
	}
	return nil
}

// Marshal encodes the packet. Each attribute value is padded with zeros to a
// multiple of four octets (with its two header octets).
func (p *Packet) Marshal() []byte {
	out, _ := p.marshal()
	return out
}

// marshal returns the encoding and the offset of the MAC octets of AT_MAC (0
// when absent).
func (p *Packet) marshal() ([]byte, int) {
	if p.Code == CodeSuccess || p.Code == CodeFailure {
		return []byte{byte(p.Code), p.Identifier, 0, 4}, 0
	}
	out := []byte{byte(p.Code), p.Identifier, 0, 0, TypeAKA, byte(p.Subtype), 0, 0}
	macOffset := 0
	for _, a := range p.Attributes {
		size := (2 + len(a.Value) + 3) / 4 * 4
		if a.Type == AtMAC {
			macOffset = len(out) + 4
		}
		out = append(out, byte(a.Type), byte(size/4))
		out = append(out, a.Value...)
		out = append(out, make([]byte, size-2-len(a.Value))...)
	}
	binary.BigEndian.PutUint16(out[2:4], uint16(len(out)))
	return out, macOffset
}

// The attribute constructors below follow RFC 4187 §10.

func attrRAND(rand [16]byte) Attribute { return Attribute{AtRAND, append([]byte{0, 0}, rand[:]...)} }
func attrAUTN(autn [16]byte) Attribute { return Attribute{AtAUTN, append([]byte{0, 0}, autn[:]...)} }
func attrAUTS(auts [14]byte) Attribute { return Attribute{AtAUTS, append([]byte(nil), auts[:]...)} }
func attrMAC() Attribute               { return Attribute{AtMAC, make([]byte, 18)} }
func attrEmptyCheckcode() Attribute    { return Attribute{AtCheckcode, []byte{0, 0}} }

func attrRES(res []byte) Attribute {
	v := binary.BigEndian.AppendUint16(nil, uint16(len(res)*8))
	return Attribute{AtRES, append(v, res...)}
}

func attrClientErrorCode(code uint16) Attribute {
	return Attribute{AtClientErrorCode, binary.BigEndian.AppendUint16(nil, code)}
}

// res16 reads AT_RES: the RES octets given by its bit length.
func res16(value []byte) []byte {
	bits := int(binary.BigEndian.Uint16(value[0:2]))
	return value[2 : 2+bits/8]
}
