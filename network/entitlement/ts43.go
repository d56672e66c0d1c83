// Package entitlement is the simulated GSMA TS.43 entitlement configuration
// server (ECS) of the simulated core: a device off the mobile data path
// (Wi-Fi) proves its SIM with EAP-AKA (RFC 4187) relayed over HTTP, as TS.43
// §2 describes, and receives a temporary token (the AcquireTemporaryToken
// operation, TS.43 §6.5.7): the operator token that the SP's backend redeems
// at the authorization server (CAMARA NV 2.x, JWT-bearer or CIBA).
//
// The exchange, on one URL:
//
//	POST / {"EAP_ID": "0<IMSI>@nai.epc.mnc<MNC>.mcc<MCC>.3gppnetwork.org",
//	        "app": "ap2014", "operation": "AcquireTemporaryToken",
//	        "operation_targets": "…", "client_id": "<SP client>"}
//	  (or GET /?EAP_ID=…&app=…: the same parameters in the query)
//	← 200 application/vnd.gsma.eap-relay.v1.0+json
//	  {"eap-relay-packet": base64(EAP-Request/AKA-Challenge)} + session cookie
//	POST / application/vnd.gsma.eap-relay.v1.0+json (cookie)
//	  {"eap-relay-packet": base64(EAP-Response/AKA-Challenge)}
//	← 200 {"Vers": {…}, "ap2014": {"TemporaryToken": "…",
//	       "TemporaryTokenExpiry": "2026-03-01T14:02:00Z", "OperationTargets": "…"}}
//
// An AKA-Synchronization-Failure is answered with a fresh challenge (at most
// twice per session); any failure with 403 and EAP-Failure. client_id, the SP
// the token is bound to, is numverify's parameter: TS.43 binds a temporary
// token to operation targets, CAMARA to a client.
package entitlement

import (
	"fmt"
	"regexp"
	"strings"
)

// TS.43 names: request parameters, the relay body, response parameters.
const (
	ParamEAPID            = "EAP_ID"
	ParamApp              = "app"
	ParamOperation        = "operation"
	ParamOperationTargets = "operation_targets"
	ParamClientID         = "client_id" // numverify: the SP client the token is minted for

	OperationAcquireTemporaryToken = "AcquireTemporaryToken"

	// AppPhoneNumber is TS.43's application "phone number information"
	// (ap2014); appAuthentication (ap2015) is accepted too.
	AppPhoneNumber    = "ap2014"
	appAuthentication = "ap2015"

	// ContentTypeEAPRelay is the media type of an EAP relay body.
	ContentTypeEAPRelay = "application/vnd.gsma.eap-relay.v1.0+json"
	// RelayPacketField holds the base64 EAP packet in an EAP relay body.
	RelayPacketField = "eap-relay-packet"
)

// RelayBody is the JSON of an EAP relay message, either way.
type RelayBody struct {
	Packet string `json:"eap-relay-packet"`
}

// TemporaryToken is the characteristic of the AcquireTemporaryToken answer
// (TS.43 §6.5.7, Table 48).
type TemporaryToken struct {
	TemporaryToken       string `json:"TemporaryToken"`
	TemporaryTokenExpiry string `json:"TemporaryTokenExpiry"` // ISO 8601, UTC
	OperationTargets     string `json:"OperationTargets,omitempty"`
}

// Vers is TS.43's configuration version characteristic; this server keeps
// no configuration, so it is version 1 with no validity.
type Vers struct {
	Version  string `json:"version"`
	Validity string `json:"validity"`
}

// eapIDPattern is the root NAI of an EAP-AKA permanent identity (RFC 4187
// §4.1.1.6, 3GPP TS 23.003 §19.3.2): "0", the IMSI, the 3GPP realm.
var eapIDPattern = regexp.MustCompile(`^0([0-9]{6,15})@nai\.epc\.mnc([0-9]{3})\.mcc([0-9]{3})\.3gppnetwork\.org$`)

// ParseEAPID returns the IMSI of an EAP_ID, checking that it starts with the
// realm's MCC and MNC (two or three digits).
func ParseEAPID(eapID string) (string, error) {
	m := eapIDPattern.FindStringSubmatch(eapID)
	if m == nil {
		return "", fmt.Errorf("%w: EAP_ID: not 0<IMSI>@nai.epc.mnc<MNC>.mcc<MCC>.3gppnetwork.org", ErrInvalid)
	}
	imsi, mnc, mcc := m[1], m[2], m[3]
	if !strings.HasPrefix(imsi, mcc+mnc) && !(mnc[0] == '0' && strings.HasPrefix(imsi, mcc+mnc[1:])) {
		return "", fmt.Errorf("%w: EAP_ID: the IMSI is not of the realm's MCC and MNC", ErrInvalid)
	}
	return imsi, nil
}

// EAPID is the EAP_ID of imsi, whose MNC has mncDigits (2 or 3) digits.
func EAPID(imsi string, mncDigits int) string {
	if len(imsi) < 6 {
		return "0" + imsi
	}
	mcc, mnc := imsi[:3], imsi[3:3+mncDigits]
	if len(mnc) == 2 {
		mnc = "0" + mnc
	}
	return "0" + imsi + "@nai.epc.mnc" + mnc + ".mcc" + mcc + ".3gppnetwork.org"
}
