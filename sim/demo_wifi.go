package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/numverify/numverify/internal/phone"
)

// clientAuthMethod names how the demo SP authenticates at /token.
func (d *demo) clientAuthMethod() string {
	if d.cfg.RP.ClientKey != nil {
		return "private_key_jwt"
	}
	return "client_secret_basic"
}

// wifiFlows is the first subscriber's phone on Wi-Fi (the address the
// refusal above came from): it proves its SIM to the entitlement server by
// EAP-AKA and hands the operator token to the SP, which redeems it by the
// JWT-bearer grant, then (with a second token) by CIBA in poll mode; each
// access token answers verify. A token presented twice is refused.
// mobileSubject is the subject the same subscriber got on mobile data ("":
// unknown), which the CIBA ID token must repeat (pairwise per client).
func (d *demo) wifiFlows(ctx context.Context, mobileSubject string) {
	s := d.cfg.Subscribers[0]
	d.heading("The same phone (SIM %s) on Wi-Fi at %s: an operator token by EAP-AKA (TS.43), handed to the SP", phone.Mask(s.MSISDN), d.cfg.WiFi)
	device := &WiFiDevice{SIM: d.cfg.WiFiSIM, EntitlementURL: d.cfg.EntitlementURL, LocalAddr: d.cfg.WiFi}

	token, ok := d.acquire(ctx, device)
	if !ok {
		return
	}
	tokens, err := d.rp.JWTBearer(ctx, token, "")
	okTokens := err == nil && tokens.AccessToken != ""
	answer := []any{"-"}
	if okTokens {
		answer = []any{cut(tokens.AccessToken)}
	}
	d.check(okTokens, "SP       POST /token (jwt-bearer, assertion sub=operatortoken:%s…, scope %s, private_key_jwt)",
		"access_token %s… (no refresh token, no ID token)", []any{cut(token), OperatorTokenScope}, answer, err)
	if okTokens {
		d.verifyWiFi(ctx, tokens.AccessToken, s.MSISDN)
	}
	_, err = d.rp.JWTBearer(ctx, token, "")
	var apiErr *APIError
	refused := errors.As(err, &apiErr) && apiErr.Status == 400 && apiErr.Code == "invalid_grant"
	result := "400 invalid_grant: an operator token is redeemed once"
	if err == nil {
		result = "redeemed again: an operator token must be single-use"
	} else if refused {
		err = nil
	}
	d.check(refused, "SP       POST /token (jwt-bearer) again with the same operator token", "%s", nil, []any{result}, err)

	token, ok = d.acquire(ctx, device)
	if !ok {
		return
	}
	started := time.Now()
	tokens, err = d.rp.CIBA(ctx, token, "")
	okTokens = err == nil && tokens.AccessToken != "" && tokens.Subject != "" && tokens.Subject != s.MSISDN &&
		slices.Contains(tokens.AMR, "sim") && (mobileSubject == "" || tokens.Subject == mobileSubject)
	answer = []any{"-", "-", "-", time.Duration(0)}
	if tokens != nil {
		answer = []any{cut(tokens.AccessToken), cut(tokens.Subject), strings.Join(tokens.AMR, ","), time.Since(started).Round(100 * time.Millisecond)}
	}
	d.check(okTokens, "SP       POST /bc-authorize (login_hint=operatortoken:%s…, scope openid %s), then polls /token every interval",
		"access_token %s…, ID token sub %s… (the same pseudonym as on mobile data), amr [%s], after %s", []any{cut(token), OperatorTokenScope}, answer, err)
	if okTokens {
		d.verifyWiFi(ctx, tokens.AccessToken, s.MSISDN)
	}
}

// acquire runs TS.43 AcquireTemporaryToken (EAP-AKA) for the demo SP.
func (d *demo) acquire(ctx context.Context, device *WiFiDevice) (string, bool) {
	token, err := device.AcquireOperatorToken(ctx, d.cfg.RP.ClientID, "")
	ok := err == nil && token.Token != ""
	answer := []any{"-", 0}
	if ok {
		answer = []any{cut(token.Token), int(time.Until(token.ExpiresAt).Round(time.Second).Seconds())}
	}
	d.check(ok, "device   POST entitlement server (EAP_ID %s, AcquireTemporaryToken): EAP-AKA challenge, RES, MAC",
		"operator token %s…, single-use, expires in %d s", []any{maskIdentity(device.SIM.eapID())}, answer, err)
	return token.Token, ok
}

func (d *demo) verifyWiFi(ctx context.Context, accessToken, number string) {
	got, err := d.rp.Verify(ctx, accessToken, number, false)
	d.check(err == nil && got, "SP       POST /verify {phoneNumber %s}", "devicePhoneNumberVerified: %t (expected true)",
		[]any{phone.Mask(number)}, []any{got}, err)
}

// maskIdentity hides the IMSI digits of an EAP identity but its first 6
// (MCC, MNC) and the realm.
func maskIdentity(id string) string {
	user, realm, _ := strings.Cut(id, "@")
	if len(user) > 7 {
		user = user[:7] + strings.Repeat("•", len(user)-7)
	}
	return fmt.Sprintf("%s@%s", user, realm)
}
