package eapaka

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/numverify/numverify/internal/milenage"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPRF checks the FIPS 186-2 PRF against the example of FIPS 186-2 change
// notice 1 (XKEY = bd029bbe…, XSEED = 0; w0 ‖ w1), the vector RFC 4186/4187's
// authors verified their PRF with.
func TestPRF(t *testing.T) {
	got := prf(unhex(t, "bd029bbe7f51960bcf9edb2b61f06f0feb5a38b6"), 40)
	want := "2070b3223dba372fde1c0ffc7b2e3b498b2606143c6c18bacb0f6c55babb13788e20d737a3275116"
	if hex.EncodeToString(got) != want {
		t.Errorf("PRF = %x\nwant  %s", got, want)
	}
	if n := len(prf(make([]byte, 20), 160)); n != 160 {
		t.Errorf("PRF length %d", n)
	}
}

const testIdentity = "0001010123456789@nai.epc.mnc001.mcc001.3gppnetwork.org"

// testSIM is TS 35.208 test set 1's subscriber.
func testSIM(t testing.TB) *milenage.Cipher {
	c, err := milenage.New(unhex(t, "465b5ce8b199b49faa5f0a2ee238a6bc"), unhex(t, "cd63cb71954a9f4e48a5994e37a02baf"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testVector(t testing.TB, sim *milenage.Cipher, sqn uint64, randByte byte) milenage.Vector {
	var rand [16]byte
	for i := range rand {
		rand[i] = randByte + byte(i)
	}
	return sim.Vector(rand, sqn, [2]byte{0x80, 0x00})
}

func TestFullAuthentication(t *testing.T) {
	sim := testSIM(t)
	peer := &Peer{Identity: testIdentity, SIM: sim, SQN: 40}
	challenge, request := NewChallenge(testIdentity, 7, testVector(t, sim, 41, 1))
	response, outcome, err := peer.Handle(request)
	if err != nil || outcome != PeerChallengeAnswered {
		t.Fatalf("peer: %v, %v", outcome, err)
	}
	verdict, err := challenge.Verify(response)
	if err != nil || verdict.Keys == nil {
		t.Fatalf("server: %+v, %v", verdict, err)
	}
	if verdict.Keys.MSK != peer.Keys.MSK || verdict.Keys.EMSK != peer.Keys.EMSK {
		t.Error("the peer and the server derived different MSK/EMSK")
	}
	if peer.SQN != 41 {
		t.Errorf("peer SQN_MS = %d, want 41", peer.SQN)
	}
	if _, outcome, _ := peer.Handle(Success(7)); outcome != PeerSuccess {
		t.Errorf("EAP-Success: %v", outcome)
	}
	// The same challenge again (a replay to the peer): SQN is no longer fresh.
	if _, outcome, _ := peer.Handle(request); outcome != PeerSynchronizationFailure {
		t.Errorf("replayed challenge: %v, want synchronization failure", outcome)
	}
}

// TestBadMAC: an AT_MAC altered on the way to the peer makes it answer
// AKA-Client-Error (RFC 4187 §6.3.1), which the server turns into failure;
// one altered on the way back is ErrBadMAC at the server.
func TestBadMAC(t *testing.T) {
	sim := testSIM(t)
	t.Run("request", func(t *testing.T) {
		peer := &Peer{Identity: testIdentity, SIM: sim}
		challenge, request := NewChallenge(testIdentity, 1, testVector(t, sim, 1, 2))
		request[len(request)-1] ^= 0x01 // AT_MAC is the last attribute
		response, outcome, err := peer.Handle(request)
		if err != nil || outcome != PeerClientError {
			t.Fatalf("peer: %v, %v; want client error", outcome, err)
		}
		if peer.SQN != 0 || peer.Keys != nil {
			t.Error("the peer accepted an unauthenticated challenge")
		}
		if _, err := challenge.Verify(response); !errors.Is(err, ErrClientError) {
			t.Errorf("server: %v, want ErrClientError", err)
		}
	})
	t.Run("response", func(t *testing.T) {
		peer := &Peer{Identity: testIdentity, SIM: sim}
		challenge, request := NewChallenge(testIdentity, 1, testVector(t, sim, 1, 3))
		response, _, _ := peer.Handle(request)
		response[len(response)-1] ^= 0x80
		if _, err := challenge.Verify(response); !errors.Is(err, ErrBadMAC) {
			t.Errorf("altered AT_MAC: %v, want ErrBadMAC", err)
		}
	})
	t.Run("response without AT_MAC", func(t *testing.T) {
		challenge, _ := NewChallenge(testIdentity, 1, testVector(t, sim, 1, 4))
		resp := &Packet{Code: CodeResponse, Identifier: 1, Subtype: SubtypeChallenge,
			Attributes: []Attribute{attrRES(challenge.Vector.XRES[:])}}
		if _, err := challenge.Verify(resp.Marshal()); !errors.Is(err, ErrBadMAC) {
			t.Errorf("no AT_MAC: %v, want ErrBadMAC", err)
		}
	})
}

// TestWrongRES: a response with a valid AT_MAC but another RES (what a
// peer that knows K_aut but ran another SIM would send) is refused.
func TestWrongRES(t *testing.T) {
	sim := testSIM(t)
	challenge, _ := NewChallenge(testIdentity, 9, testVector(t, sim, 5, 5))
	res := challenge.Vector.XRES
	res[0] ^= 0xff
	resp := &Packet{Code: CodeResponse, Identifier: 9, Subtype: SubtypeChallenge, Attributes: []Attribute{attrRES(res[:])}}
	if _, err := challenge.Verify(seal(resp, challenge.keys.Aut)); !errors.Is(err, ErrWrongRES) {
		t.Errorf("wrong RES: %v, want ErrWrongRES", err)
	}
	// A SIM with another K: AUTN does not verify, the peer rejects the network.
	other, _ := milenage.New(unhex(t, "fec86ba6eb707ed08905757b1bb44b8f"), unhex(t, "1006020f0a478bf6b699f15c062e42b3"))
	_, request := NewChallenge(testIdentity, 9, testVector(t, sim, 5, 6))
	response, outcome, _ := (&Peer{Identity: testIdentity, SIM: other}).Handle(request)
	if outcome != PeerAuthenticationReject {
		t.Fatalf("other SIM: %v, want authentication reject", outcome)
	}
	if _, err := challenge.Verify(response); !errors.Is(err, errUnexpected) && !errors.Is(err, ErrRejected) {
		t.Errorf("server: %v", err)
	}
}

// TestResynchronisation follows RFC 4187 §6.3.1 and §9.6: the peer finds SQN
// out of range and answers AUTS; the server recovers SQN_MS from AUTS (f5*,
// checked with f1*), and the next challenge, from SQN_MS + 1, succeeds.
func TestResynchronisation(t *testing.T) {
	sim := testSIM(t)
	for _, tc := range []struct {
		name           string
		peerSQN, netSQ uint64
	}{
		{"peer ahead", 5000, 12},                       // the network's SQN is not fresh
		{"peer behind", 3, 3 + DefaultSQNWindow + 1},   // the network's SQN is too far ahead
		{"equal", 77, 77},                              // a replayed SQN
		{"near the top", milenage.MaxSQN - 1, 1 << 20}, // the peer at the end of the range
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := &Peer{Identity: testIdentity, SIM: sim, SQN: tc.peerSQN}
			challenge, request := NewChallenge(testIdentity, 1, testVector(t, sim, tc.netSQ, 7))
			response, outcome, err := peer.Handle(request)
			if err != nil || outcome != PeerSynchronizationFailure {
				t.Fatalf("peer: %v, %v; want synchronization failure", outcome, err)
			}
			verdict, err := challenge.Verify(response)
			if err != nil || !verdict.Resync {
				t.Fatalf("server: %+v, %v; want resync", verdict, err)
			}
			sqnMS, err := sim.Resynchronise(challenge.Vector.RAND, verdict.AUTS)
			if err != nil || sqnMS != tc.peerSQN {
				t.Fatalf("Resynchronise = %d, %v; want %d", sqnMS, err, tc.peerSQN)
			}
			challenge, request = NewChallenge(testIdentity, 2, testVector(t, sim, sqnMS+1, 8))
			response, outcome, err = peer.Handle(request)
			if err != nil || outcome != PeerChallengeAnswered {
				t.Fatalf("after resync: %v, %v", outcome, err)
			}
			if v, err := challenge.Verify(response); err != nil || v.Keys == nil {
				t.Fatalf("after resync, server: %v", err)
			}
		})
	}
	t.Run("forged AUTS", func(t *testing.T) {
		peer := &Peer{Identity: testIdentity, SIM: sim, SQN: 100}
		challenge, request := NewChallenge(testIdentity, 1, testVector(t, sim, 50, 9))
		response, _, _ := peer.Handle(request)
		verdict, err := challenge.Verify(response)
		if err != nil || !verdict.Resync {
			t.Fatalf("server: %+v, %v; want resync", verdict, err)
		}
		verdict.AUTS[0] ^= 0x40 // claims another SQN_MS
		if _, err := sim.Resynchronise(challenge.Vector.RAND, verdict.AUTS); !errors.Is(err, milenage.ErrMACFailure) {
			t.Errorf("forged AUTS: %v, want ErrMACFailure", err)
		}
	})
}

func TestVerifyRefusesOtherPackets(t *testing.T) {
	sim := testSIM(t)
	peer := &Peer{Identity: testIdentity, SIM: sim}
	challenge, request := NewChallenge(testIdentity, 4, testVector(t, sim, 1, 10))
	response, _, _ := peer.Handle(request)
	for name, raw := range map[string][]byte{
		"the request itself":   request,
		"another identifier":   func() []byte { r := bytes.Clone(response); r[1]++; return r }(),
		"EAP-Success":          Success(4),
		"truncated":            response[:len(response)-4],
		"reject":               (&Packet{Code: CodeResponse, Identifier: 4, Subtype: SubtypeAuthenticationReject}).Marshal(),
		"identity subtype":     (&Packet{Code: CodeResponse, Identifier: 4, Subtype: SubtypeIdentity}).Marshal(),
		"sync without AT_AUTS": (&Packet{Code: CodeResponse, Identifier: 4, Subtype: SubtypeSynchronizationFailure}).Marshal(),
	} {
		if v, err := challenge.Verify(raw); err == nil {
			t.Errorf("%s: accepted (%+v)", name, v)
		}
	}
}

func TestDecode(t *testing.T) {
	good := (&Packet{Code: CodeRequest, Identifier: 3, Subtype: SubtypeChallenge,
		Attributes: []Attribute{attrRAND([16]byte{1}), attrAUTN([16]byte{2}), attrMAC(), {Type: 200, Value: []byte{9, 9}}}}).Marshal()
	p, err := Decode(append(bytes.Clone(good), 0xde, 0xad)) // octets past the length are ignored
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Marshal(), good) {
		t.Errorf("Marshal(Decode(x)) = %x, want %x", p.Marshal(), good)
	}
	for name, raw := range map[string]string{
		"empty":                 "",
		"short header":          "0101",
		"length beyond data":    "01010010",
		"length below header":   "01010003",
		"success with payload":  "0301000500",
		"unknown code":          "09010004",
		"no type":               "01010004",
		"short AKA header":      "010100061701",
		"zero-length attribute": "01010010170100000100000000000000",
		"attribute overflows":   "0101000c1701000001060000",
		"AT_RAND too short":     "010100101701000001020000000000000000",
		"unknown non-skippable": "0101000c1701000063010000",
		"repeated attribute":    "01010010170100001601000016010000",
		"AT_RES of 0 bits":      "0101000c1701000003010000",
	} {
		if _, err := Decode(unhex(t, raw)); !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v, want errMalformed", name, err)
		}
	}
	if _, err := Decode(unhex(t, "0201000601ff")); !errors.Is(err, errNotAKA) {
		t.Errorf("EAP-Response/Identity: %v, want errNotAKA", err)
	}
}
