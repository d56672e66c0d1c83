package sim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"strings"
	"time"

	"github.com/numverify/numverify/internal/milenage"
	"github.com/numverify/numverify/network/eapaka"
	"github.com/numverify/numverify/network/entitlement"
)

// SIM is a simulated USIM: its IMSI, MILENAGE key K and operator variant
// OPc, and SQN_MS, the highest sequence number it has accepted (kept across
// authentications of the same SIM value).
type SIM struct {
	IMSI      string
	MNCDigits int // 2 or 3; 0 means 2
	K, OPc    []byte
	SQN       uint64
}

// eapID is the SIM's TS.43 EAP_ID (its EAP-AKA permanent identity).
func (s *SIM) eapID() string {
	digits := s.MNCDigits
	if digits == 0 {
		digits = 2
	}
	return entitlement.EAPID(s.IMSI, digits)
}

// WiFiDevice is a handset off the mobile data path: it proves its SIM to the
// operator's entitlement server (TS.43, EAP-AKA over HTTP) to obtain an
// operator token for an SP.
type WiFiDevice struct {
	SIM            *SIM
	EntitlementURL string
	App            string     // TS.43 application; "" means ap2014
	LocalAddr      netip.Addr // optional: the Wi-Fi address to send from
}

// OperatorToken is what the entitlement server answered.
type OperatorToken struct {
	Token            string    `json:"token"`
	ExpiresAt        time.Time `json:"expires_at"`
	OperationTargets string    `json:"operation_targets,omitempty"`
	Resyncs          int       `json:"resyncs"` // synchronisation failures on the way
}

// ErrEntitlementRefused: the entitlement server ended the authentication with
// EAP-Failure (unknown SIM, wrong RES, replay, …).
var ErrEntitlementRefused = errors.New("the entitlement server refused the authentication")

// maxRounds bounds the challenges followed: the first and two resynchronisations.
const maxRounds = 3

// AcquireOperatorToken runs TS.43's AcquireTemporaryToken for clientID:
// EAP_ID → challenge → response (→ resynchronisation → challenge …) → token.
func (d *WiFiDevice) AcquireOperatorToken(ctx context.Context, clientID, operationTargets string) (OperatorToken, error) {
	client, err := d.client()
	if err != nil {
		return OperatorToken{}, err
	}
	defer client.CloseIdleConnections()
	app := d.App
	if app == "" {
		app = entitlement.AppPhoneNumber
	}
	cipher, err := milenage.New(d.SIM.K, d.SIM.OPc)
	if err != nil {
		return OperatorToken{}, err
	}
	peer := &eapaka.Peer{Identity: d.SIM.eapID(), SIM: cipher, SQN: d.SIM.SQN}
	defer func() { d.SIM.SQN = peer.SQN }()
	params, _ := json.Marshal(map[string]string{
		entitlement.ParamEAPID: peer.Identity, entitlement.ParamApp: app,
		entitlement.ParamOperation:        entitlement.OperationAcquireTemporaryToken,
		entitlement.ParamOperationTargets: operationTargets, entitlement.ParamClientID: clientID,
	})
	answer, err := d.post(ctx, client, "application/json", params)
	resyncs := 0
	for round := 0; err == nil && round < maxRounds; round++ {
		if answer.token != nil {
			return d.tokenOf(answer, app, resyncs)
		}
		response, outcome, herr := peer.Handle(answer.packet)
		if herr != nil {
			return OperatorToken{}, fmt.Errorf("entitlement server's EAP packet: %w", herr)
		}
		if outcome == eapaka.PeerSynchronizationFailure {
			resyncs++
		}
		body, _ := json.Marshal(entitlement.RelayBody{Packet: base64.StdEncoding.EncodeToString(response)})
		answer, err = d.post(ctx, client, entitlement.ContentTypeEAPRelay, body)
	}
	if err != nil {
		return OperatorToken{}, err
	}
	if answer.token != nil {
		return d.tokenOf(answer, app, resyncs)
	}
	return OperatorToken{}, errors.New("the entitlement server kept challenging after two resynchronisations")
}

func (d *WiFiDevice) tokenOf(a ecsAnswer, app string, resyncs int) (OperatorToken, error) {
	t, ok := a.token[app]
	if !ok || t.TemporaryToken == "" {
		return OperatorToken{}, fmt.Errorf("the entitlement server's answer has no %s TemporaryToken", app)
	}
	expires, err := time.Parse(time.RFC3339, t.TemporaryTokenExpiry)
	if err != nil {
		return OperatorToken{}, fmt.Errorf("TemporaryTokenExpiry %q: %w", t.TemporaryTokenExpiry, err)
	}
	return OperatorToken{Token: t.TemporaryToken, ExpiresAt: expires, OperationTargets: t.OperationTargets, Resyncs: resyncs}, nil
}

// ecsAnswer is one answer of the entitlement server: an EAP packet to
// process, or the final configuration.
type ecsAnswer struct {
	packet []byte
	token  map[string]entitlement.TemporaryToken
}

func (d *WiFiDevice) post(ctx context.Context, client *http.Client, contentType string, body []byte) (ecsAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.EntitlementURL, bytes.NewReader(body))
	if err != nil {
		return ecsAnswer{}, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", entitlement.ContentTypeEAPRelay+", application/json")
	resp, err := client.Do(req)
	if err != nil {
		return ecsAnswer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return ecsAnswer{}, err
	}
	media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case media == entitlement.ContentTypeEAPRelay:
		var relay entitlement.RelayBody
		if err := json.Unmarshal(data, &relay); err != nil {
			return ecsAnswer{}, fmt.Errorf("entitlement server: EAP relay body: %w", err)
		}
		packet, err := base64.StdEncoding.DecodeString(relay.Packet)
		if err != nil {
			return ecsAnswer{}, fmt.Errorf("entitlement server: eap-relay-packet: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return ecsAnswer{}, fmt.Errorf("%w (HTTP %d)", ErrEntitlementRefused, resp.StatusCode)
		}
		return ecsAnswer{packet: packet}, nil
	case resp.StatusCode == http.StatusOK && media == "application/json":
		var config map[string]json.RawMessage
		if err := json.Unmarshal(data, &config); err != nil {
			return ecsAnswer{}, fmt.Errorf("entitlement server: configuration: %w", err)
		}
		tokens := map[string]entitlement.TemporaryToken{}
		for k, v := range config {
			var t entitlement.TemporaryToken
			if json.Unmarshal(v, &t) == nil && t.TemporaryToken != "" {
				tokens[k] = t
			}
		}
		return ecsAnswer{token: tokens}, nil
	}
	return ecsAnswer{}, fmt.Errorf("entitlement server: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
}

// client is an HTTP client with a cookie jar (the ECS session), sending from
// LocalAddr when set.
func (d *WiFiDevice) client() (*http.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if d.LocalAddr.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: d.LocalAddr.AsSlice()}
	}
	transport := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 1}
	return &http.Client{Jar: jar, Transport: transport, Timeout: 30 * time.Second}, nil
}
