package entitlement_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/internal/milenage"
	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/internal/syncbuf"
	"github.com/numverify/numverify/internal/testclock"
	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/network/eapaka"
	"github.com/numverify/numverify/network/entitlement"
	"github.com/numverify/numverify/sim"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	testIMSI   = "001010123456789"
	testMSISDN = "+33612345678"
	testClient = "sp-client-1"
)

// harness is an entitlement server over a real listener, on a fresh
// database, minting through the network component's operator-token store.
type harness struct {
	sims     *entitlement.SIMStore
	tokens   *network.Store
	url      string
	sim      entitlement.SIM
	logs     *syncbuf.Buffer
	registry *prometheus.Registry
	clock    *testclock.Frozen
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db := pgtest.New(t)
	tokens, err := network.NewStore(db.Pool, network.Pools{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{sims: entitlement.NewSIMStore(db.Pool), tokens: tokens, logs: &syncbuf.Buffer{},
		registry: prometheus.NewRegistry(), clock: testclock.New(time.Now())}
	h.sim, err = entitlement.NewSIMCredentials(testIMSI, testMSISDN, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.sims.Add(context.Background(), h.sim); err != nil {
		t.Fatal(err)
	}
	srv, err := entitlement.NewServer(entitlement.Config{SIMs: h.sims, Tokens: tokens, Now: h.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Registerer: h.registry})
	if err != nil {
		t.Fatal(err)
	}
	listener := httptest.NewServer(srv)
	t.Cleanup(listener.Close)
	h.url = listener.URL + "/"
	return h
}

func (h *harness) device(sqn uint64) *sim.WiFiDevice {
	return &sim.WiFiDevice{EntitlementURL: h.url,
		SIM: &sim.SIM{IMSI: h.sim.IMSI, MNCDigits: 2, K: h.sim.K, OPc: h.sim.OPc, SQN: sqn}}
}

func (h *harness) outcomes(t *testing.T, outcome string) float64 {
	t.Helper()
	families, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "numverify_entitlement_outcomes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestAcquireOperatorToken: the simulated device on Wi-Fi proves its SIM and
// gets an operator token that the authorization server can redeem once, for
// the SIM's MSISDN and only for the client it asked for.
func TestAcquireOperatorToken(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	device := h.device(0)
	token, err := device.AcquireOperatorToken(ctx, testClient, "AcquireTemporaryToken")
	if err != nil {
		t.Fatal(err)
	}
	if token.Token == "" || token.Resyncs != 0 || token.OperationTargets != "AcquireTemporaryToken" {
		t.Fatalf("token = %+v", token)
	}
	if d := time.Until(token.ExpiresAt); d <= 0 || d > network.DefaultOperatorTokenLifetime+5*time.Second {
		t.Errorf("expires in %v, want about %v", d, network.DefaultOperatorTokenLifetime)
	}
	if _, err := h.tokens.RedeemOperatorToken(ctx, token.Token, "another-client"); !errors.Is(err, network.ErrOperatorTokenInvalid) {
		t.Errorf("redeemed by another client: %v", err)
	}
	msisdn, err := h.tokens.RedeemOperatorToken(ctx, token.Token, testClient)
	if err != nil || msisdn != testMSISDN {
		t.Fatalf("redeem = %q, %v; want %s", msisdn, err, testMSISDN)
	}
	if device.SIM.SQN != 1 {
		t.Errorf("SIM SQN_MS = %d, want 1", device.SIM.SQN)
	}
	// A second acquisition with the same SIM: SQN moves on, a new token.
	second, err := device.AcquireOperatorToken(ctx, testClient, "")
	if err != nil || second.Token == token.Token {
		t.Fatalf("second acquisition: %+v, %v", second, err)
	}
	stored, _ := h.sims.Get(ctx, testIMSI)
	if stored.SQN != 2 || device.SIM.SQN != 2 {
		t.Errorf("SQN_HE = %d, SQN_MS = %d; want 2 and 2", stored.SQN, device.SIM.SQN)
	}
	if got := h.outcomes(t, "token"); got != 2 {
		t.Errorf("token outcomes = %v, want 2", got)
	}
	// Nothing secret or personal in the logs.
	logs := h.logs.String()
	for _, secret := range []string{testMSISDN, strings.TrimPrefix(testMSISDN, "+"), testIMSI, token.Token, second.Token,
		hex.EncodeToString(h.sim.K), hex.EncodeToString(h.sim.OPc)} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
}

// TestResynchronisation: a SIM whose SQN_MS is ahead of the network's, or
// behind it by more than the window, answers AUTS; the server recovers
// SQN_MS and the next challenge succeeds (RFC 4187 §6.3.1).
func TestResynchronisation(t *testing.T) {
	for _, tc := range []struct {
		name         string
		simSQN, heSQ uint64
	}{
		{"SIM ahead", 5000, 0},
		{"SIM behind by more than the window", 3, 3 + eapaka.DefaultSQNWindow + 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			if err := h.sims.Resynchronise(ctx, testIMSI, tc.heSQ); err != nil {
				t.Fatal(err)
			}
			device := h.device(tc.simSQN)
			token, err := device.AcquireOperatorToken(ctx, testClient, "")
			if err != nil {
				t.Fatal(err)
			}
			if token.Resyncs != 1 {
				t.Errorf("resyncs = %d, want 1", token.Resyncs)
			}
			stored, _ := h.sims.Get(ctx, testIMSI)
			if stored.SQN != tc.simSQN+1 || device.SIM.SQN != tc.simSQN+1 {
				t.Errorf("SQN_HE = %d, SQN_MS = %d; want both %d", stored.SQN, device.SIM.SQN, tc.simSQN+1)
			}
			if got := h.outcomes(t, "resync"); got != 1 {
				t.Errorf("resync outcomes = %v, want 1", got)
			}
		})
	}
}

// exchange drives the protocol by hand: it starts an authentication and
// returns the client (with its session cookie), the challenge and the peer.
func (h *harness) exchange(t *testing.T) (*http.Client, []byte, *eapaka.Peer) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	cipher, _ := milenage.New(h.sim.K, h.sim.OPc)
	peer := &eapaka.Peer{Identity: entitlement.EAPID(testIMSI, 2), SIM: cipher}
	status, packet := h.post(t, client, "application/json", map[string]string{"EAP_ID": peer.Identity,
		"app": "ap2014", "operation": "AcquireTemporaryToken", "client_id": testClient})
	if status != http.StatusOK || packet == nil {
		t.Fatalf("start: HTTP %d", status)
	}
	return client, packet, peer
}

// answerChallenge is the peer's response to challenge; the test stops unless
// the peer answered it (so a refusal seen later is the server's).
func answerChallenge(t *testing.T, peer *eapaka.Peer, challenge []byte) []byte {
	t.Helper()
	response, outcome, err := peer.Handle(challenge)
	if err != nil || outcome != eapaka.PeerChallengeAnswered {
		t.Fatalf("peer: outcome %v, %v; want the challenge answered", outcome, err)
	}
	return response
}

// post sends body (a JSON object, or an EAP packet as an EAP relay body)
// and returns the status and the EAP packet answered, if any.
func (h *harness) post(t *testing.T, client *http.Client, contentType string, body any) (int, []byte) {
	t.Helper()
	if packet, ok := body.([]byte); ok {
		body = entitlement.RelayBody{Packet: base64.StdEncoding.EncodeToString(packet)}
	}
	data, _ := json.Marshal(body)
	resp, err := client.Post(h.url, contentType, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") != entitlement.ContentTypeEAPRelay {
		return resp.StatusCode, nil
	}
	var relay entitlement.RelayBody
	if err := json.Unmarshal(raw, &relay); err != nil {
		t.Fatalf("relay body %s: %v", raw, err)
	}
	packet, _ := base64.StdEncoding.DecodeString(relay.Packet)
	return resp.StatusCode, packet
}

func expectEAPFailure(t *testing.T, what string, status int, packet []byte) {
	t.Helper()
	p, err := eapaka.Decode(packet)
	if status != http.StatusForbidden || err != nil || p.Code != eapaka.CodeFailure {
		t.Errorf("%s: HTTP %d, packet %x; want 403 with EAP-Failure", what, status, packet)
	}
}

// TestRefusals: each way of not proving the SIM ends in 403 EAP-Failure.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("unknown IMSI", func(t *testing.T) {
		h := newHarness(t)
		device := h.device(0)
		device.SIM.IMSI = "001019999999999"
		if _, err := device.AcquireOperatorToken(ctx, testClient, ""); !errors.Is(err, sim.ErrEntitlementRefused) {
			t.Errorf("unknown IMSI: %v, want ErrEntitlementRefused", err)
		}
	})
	t.Run("another K", func(t *testing.T) {
		h := newHarness(t)
		device := h.device(0)
		device.SIM.K = bytes.Repeat([]byte{7}, 16) // AUTN fails: the device rejects the network
		if _, err := device.AcquireOperatorToken(ctx, testClient, ""); !errors.Is(err, sim.ErrEntitlementRefused) {
			t.Errorf("another K: %v, want ErrEntitlementRefused", err)
		}
		if got := h.outcomes(t, "rejected"); got != 1 {
			t.Errorf("rejected outcomes = %v", got)
		}
	})
	t.Run("replayed challenge response", func(t *testing.T) {
		h := newHarness(t)
		client, challenge, peer := h.exchange(t)
		response := answerChallenge(t, peer, challenge)
		if status, _ := h.post(t, client, entitlement.ContentTypeEAPRelay, response); status != http.StatusOK {
			t.Fatalf("first answer: HTTP %d", status)
		}
		status, packet := h.post(t, client, entitlement.ContentTypeEAPRelay, response)
		expectEAPFailure(t, "same session", status, packet)
		// In a session of its own: the new challenge has another RAND and keys.
		client2, _, _ := h.exchange(t)
		status, packet = h.post(t, client2, entitlement.ContentTypeEAPRelay, response)
		expectEAPFailure(t, "new session", status, packet)
	})
	t.Run("altered AT_MAC", func(t *testing.T) {
		h := newHarness(t)
		client, challenge, peer := h.exchange(t)
		response := answerChallenge(t, peer, challenge)
		response[len(response)-1] ^= 1
		status, packet := h.post(t, client, entitlement.ContentTypeEAPRelay, response)
		expectEAPFailure(t, "altered AT_MAC", status, packet)
		if got := h.outcomes(t, "bad_mac"); got != 1 {
			t.Errorf("bad_mac outcomes = %v", got)
		}
	})
	t.Run("expired session", func(t *testing.T) {
		h := newHarness(t)
		client, challenge, peer := h.exchange(t)
		response := answerChallenge(t, peer, challenge)
		h.clock.Advance(entitlement.DefaultSessionTTL + time.Second)
		status, packet := h.post(t, client, entitlement.ContentTypeEAPRelay, response)
		expectEAPFailure(t, "expired session", status, packet)
	})
	t.Run("no session cookie", func(t *testing.T) {
		h := newHarness(t)
		_, challenge, peer := h.exchange(t)
		response := answerChallenge(t, peer, challenge)
		status, packet := h.post(t, http.DefaultClient, entitlement.ContentTypeEAPRelay, response)
		expectEAPFailure(t, "no cookie", status, packet)
	})
}

// TestBadRequests: malformed requests are 4xx, never 5xx.
func TestBadRequests(t *testing.T) {
	h := newHarness(t)
	good := map[string]string{"EAP_ID": entitlement.EAPID(testIMSI, 2), "app": "ap2014",
		"operation": "AcquireTemporaryToken", "client_id": testClient}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for name, tc := range map[string]struct {
		contentType string
		body        any
		want        int
	}{
		"no EAP_ID":           {"application/json", with("EAP_ID", ""), 400},
		"EAP_ID of a realm":   {"application/json", with("EAP_ID", "0"+testIMSI+"@nai.epc.mnc099.mcc208.3gppnetwork.org"), 400},
		"EAP_ID not AKA":      {"application/json", with("EAP_ID", "1"+testIMSI+"@nai.epc.mnc001.mcc001.3gppnetwork.org"), 400},
		"other operation":     {"application/json", with("operation", "ManageSubscription"), 400},
		"other app":           {"application/json", with("app", "ap2004"), 400},
		"no client_id":        {"application/json", with("client_id", ""), 400},
		"client_id spaces":    {"application/json", with("client_id", "a b"), 400},
		"not JSON":            {"application/json", "[", 400},
		"text":                {"text/plain", good, 415},
		"relay not base64":    {entitlement.ContentTypeEAPRelay, entitlement.RelayBody{Packet: "%%%"}, 400},
		"relay not an object": {entitlement.ContentTypeEAPRelay, []string{"x"}, 400},
	} {
		data, _ := json.Marshal(tc.body)
		if s, ok := tc.body.(string); ok {
			data = []byte(s)
		}
		resp, err := http.Post(h.url, tc.contentType, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: HTTP %d, want %d", name, resp.StatusCode, tc.want)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, h.url, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Errorf("PUT: %v %v", resp, err)
	}
	// TS.43's GET with the parameters in the query starts an authentication too.
	resp, err := http.Get(h.url + "?EAP_ID=" + good["EAP_ID"] + "&app=ap2014&operation=AcquireTemporaryToken&client_id=" + testClient)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != entitlement.ContentTypeEAPRelay {
		t.Errorf("GET start: %v %v", resp, err)
	}
}

func TestNewSIMCredentials(t *testing.T) {
	op := bytes.Repeat([]byte{1}, 16)
	k := bytes.Repeat([]byte{2}, 16)
	s, err := entitlement.NewSIMCredentials("208011234567890", "+33 6 12 34 56 78", k, op, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := milenage.OPc(k, op)
	if !bytes.Equal(s.OPc, want) || s.MSISDN != "+33612345678" {
		t.Errorf("OPc %x MSISDN %s", s.OPc, s.MSISDN)
	}
	a, _ := entitlement.NewSIMCredentials("208011234567890", "+33612345678", nil, nil, nil)
	b, _ := entitlement.NewSIMCredentials("208011234567890", "+33612345678", nil, nil, nil)
	if bytes.Equal(a.K, b.K) || len(a.K) != 16 || len(a.OPc) != 16 {
		t.Error("generated K are not fresh 16-byte keys")
	}
	for name, args := range map[string][3][]byte{
		"short K":      {k[:15], nil, nil},
		"OP without K": {nil, op, nil},
		"OP and OPc":   {k, op, op},
	} {
		if _, err := entitlement.NewSIMCredentials("208011234567890", "+33612345678", args[0], args[1], args[2]); !errors.Is(err, entitlement.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := entitlement.NewSIMCredentials("20801", "+33612345678", nil, nil, nil); !errors.Is(err, entitlement.ErrInvalid) {
		t.Errorf("short IMSI: %v", err)
	}
	h := newHarness(t)
	if err := h.sims.Add(context.Background(), h.sim); !errors.Is(err, entitlement.ErrSIMExists) {
		t.Errorf("the same IMSI twice: %v", err)
	}
}

func TestParseEAPID(t *testing.T) {
	for id, want := range map[string]string{
		"0208011234567890@nai.epc.mnc001.mcc208.3gppnetwork.org": "208011234567890",
		"0310260123456789@nai.epc.mnc260.mcc310.3gppnetwork.org": "310260123456789",
	} {
		if got, err := entitlement.ParseEAPID(id); err != nil || got != want {
			t.Errorf("ParseEAPID(%s) = %s, %v", id, got, err)
		}
	}
	if got := entitlement.EAPID("310260123456789", 3); got != "0310260123456789@nai.epc.mnc260.mcc310.3gppnetwork.org" {
		t.Errorf("EAPID = %s", got)
	}
}
