package eapaka

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary octets to the decoder and to both protocol
// halves: nothing may panic, and whatever decodes re-encodes to the octets
// it came from (up to the EAP length, reserved octets zeroed).
func FuzzDecode(f *testing.F) {
	sim := testSIM(f)
	challenge, request := NewChallenge(testIdentity, 1, testVector(f, sim, 2, 1))
	response, _, _ := (&Peer{Identity: testIdentity, SIM: sim}).Handle(request)
	resync, _, _ := (&Peer{Identity: testIdentity, SIM: sim, SQN: 9}).Handle(request)
	for _, seed := range [][]byte{request, response, resync, Success(1), Failure(1),
		(&Packet{Code: CodeResponse, Identifier: 1, Subtype: SubtypeClientError, Attributes: []Attribute{attrClientErrorCode(0)}}).Marshal(),
		{2, 1, 0, 6, 1, 'x'}, {}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, err := Decode(data); err == nil {
			want := bytes.Clone(data[:int(data[2])<<8|int(data[3])])
			if len(want) >= 8 {
				want[6], want[7] = 0, 0 // the reserved octets are not kept
			}
			if got := p.Marshal(); !bytes.Equal(got, want) {
				t.Fatalf("Marshal(Decode(%x)) = %x", data, got)
			}
		}
		_, _ = challenge.Verify(data)
		peer := &Peer{Identity: testIdentity, SIM: sim}
		_, _, _ = peer.Handle(data)
	})
}
