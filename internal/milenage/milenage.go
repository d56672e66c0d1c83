// Package milenage implements the 3GPP MILENAGE algorithm set (TS 35.206):
// the authentication functions f1, f1*, f2, f3, f4, f5 and f5* on AES-128,
// and the derivation of OPc from the operator variant OP. The AKA helpers in
// aka.go build and check AUTN and AUTS with them (TS 33.102 §6.3).
package milenage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Sizes of the MILENAGE inputs and outputs, in bytes.
const (
	KeySize  = 16 // K, OP, OPc
	RANDSize = 16
	SQNSize  = 6
	AMFSize  = 2
	MACSize  = 8 // f1 (MAC-A), f1* (MAC-S)
	RESSize  = 8 // f2
	CKSize   = 16
	IKSize   = 16
	AKSize   = 6 // f5, f5*
)

// errKeySize is returned for a K, OP or OPc that is not 128 bits.
var errKeySize = errors.New("milenage: K, OP and OPc are 16 bytes")

// The rotation amounts r1…r5 (in bytes) and the constants c1…c5 (their last
// byte; the other bytes are zero) of TS 35.206 §4.1, with their default values.
var (
	rotations = [6]int{0, 8, 0, 4, 8, 12}
	constants = [6]byte{0, 0x00, 0x01, 0x02, 0x04, 0x08}
)

// Cipher is one subscriber's MILENAGE instance: E_K and OPc.
type Cipher struct {
	block cipher.Block
	opc   [KeySize]byte
}

// New returns the MILENAGE instance of the subscriber key k and the derived
// operator variant opc.
func New(k, opc []byte) (*Cipher, error) {
	if len(k) != KeySize || len(opc) != KeySize {
		return nil, errKeySize
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("milenage: %w", err)
	}
	c := &Cipher{block: block}
	copy(c.opc[:], opc)
	return c, nil
}

// OPc derives OPc = OP ⊕ E_K(OP) (TS 35.206 §4.1).
func OPc(k, op []byte) ([]byte, error) {
	if len(k) != KeySize || len(op) != KeySize {
		return nil, errKeySize
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("milenage: %w", err)
	}
	out := make([]byte, KeySize)
	block.Encrypt(out, op)
	subtle.XORBytes(out, out, op)
	return out, nil
}

// temp is TEMP = E_K(RAND ⊕ OPc).
func (c *Cipher) temp(rand *[RANDSize]byte) [16]byte {
	var in, out [16]byte
	subtle.XORBytes(in[:], rand[:], c.opc[:])
	c.block.Encrypt(out[:], in[:])
	return out
}

// out computes OUTi = E_K(rot(x ⊕ OPc, ri) ⊕ ci) ⊕ OPc, where x is TEMP for
// i ≥ 2 and IN1 for i = 1 (whose result is then XORed with TEMP first).
func (c *Cipher) out(i int, x *[16]byte, temp *[16]byte) [16]byte {
	var xored, rotated [16]byte
	subtle.XORBytes(xored[:], x[:], c.opc[:])
	for j := range rotated {
		rotated[j] = xored[(j+rotations[i])%16]
	}
	rotated[15] ^= constants[i]
	if temp != nil {
		subtle.XORBytes(rotated[:], rotated[:], temp[:])
	}
	var out [16]byte
	c.block.Encrypt(out[:], rotated[:])
	subtle.XORBytes(out[:], out[:], c.opc[:])
	return out
}

// out1 is OUT1, whose halves are f1 and f1*: IN1 = SQN ‖ AMF ‖ SQN ‖ AMF.
func (c *Cipher) out1(rand *[RANDSize]byte, sqn *[SQNSize]byte, amf *[AMFSize]byte) [16]byte {
	temp := c.temp(rand)
	var in1 [16]byte
	copy(in1[0:6], sqn[:])
	copy(in1[6:8], amf[:])
	copy(in1[8:14], sqn[:])
	copy(in1[14:16], amf[:])
	return c.out(1, &in1, &temp)
}

// f1 is the network authentication function: MAC-A.
func (c *Cipher) f1(rand [RANDSize]byte, sqn [SQNSize]byte, amf [AMFSize]byte) [MACSize]byte {
	out := c.out1(&rand, &sqn, &amf)
	return [MACSize]byte(out[0:8])
}

// f1Star is the resynchronisation message authentication function: MAC-S.
func (c *Cipher) f1Star(rand [RANDSize]byte, sqn [SQNSize]byte, amf [AMFSize]byte) [MACSize]byte {
	out := c.out1(&rand, &sqn, &amf)
	return [MACSize]byte(out[8:16])
}

// outputs are the results of f2, f3, f4, f5 and f5* for one RAND.
type outputs struct {
	RES    [RESSize]byte // f2
	CK     [CKSize]byte  // f3
	IK     [IKSize]byte  // f4
	AK     [AKSize]byte  // f5
	AKStar [AKSize]byte  // f5*
}

// f2345 computes f2, f3, f4, f5 and f5* of rand.
func (c *Cipher) f2345(rand [RANDSize]byte) outputs {
	temp := c.temp(&rand)
	var o outputs
	out2 := c.out(2, &temp, nil)
	copy(o.AK[:], out2[0:6])
	copy(o.RES[:], out2[8:16])
	o.CK = c.out(3, &temp, nil)
	o.IK = c.out(4, &temp, nil)
	out5 := c.out(5, &temp, nil)
	copy(o.AKStar[:], out5[0:6])
	return o
}
