package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The SP backend's side of a device off the mobile data path: the device
// hands over the operator token it obtained from the entitlement server
// (TS.43, EAP-AKA), and the backend exchanges it for an access token by the
// JWT-bearer grant (RFC 7523) or CIBA in poll mode, the two ways CAMARA
// Number Verification 2.x names. Both need the client's private_key_jwt key
// (RPConfig.ClientKey).

// OperatorTokenScope is the scope of the operator-token flows: exactly one
// purpose and the verify permission.
const OperatorTokenScope = "dpv:FraudPreventionAndDetection number-verification:verify"

// OperatorTokenPrefix prefixes the operator token where the SP names it:
// the JWT-bearer assertion's sub and CIBA's login_hint.
const OperatorTokenPrefix = "operatortoken:"

// Grant types of the operator-token flows.
const (
	GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantTypeCIBA      = "urn:openid:params:grant-type:ciba"
)

// OperatorTokenFlow names how the SP redeems an operator token.
type OperatorTokenFlow string

const (
	FlowJWTBearer OperatorTokenFlow = "jwt-bearer"
	flowCIBA      OperatorTokenFlow = "ciba"
)

// ParseOperatorTokenFlow reads "jwt-bearer" or "ciba".
func ParseOperatorTokenFlow(s string) (OperatorTokenFlow, error) {
	switch f := OperatorTokenFlow(s); f {
	case FlowJWTBearer, flowCIBA:
		return f, nil
	}
	return "", errors.New(`the flow is "jwt-bearer" or "ciba"`)
}

// RedeemOperatorToken exchanges token by flow with scope ("" for
// OperatorTokenScope).
func (rp *RelyingParty) RedeemOperatorToken(ctx context.Context, flow OperatorTokenFlow, token, scope string) (*Tokens, error) {
	if flow == flowCIBA {
		return rp.CIBA(ctx, token, scope)
	}
	return rp.JWTBearer(ctx, token, scope)
}

// JWTBearerAssertion is the signed assertion of a JWT-bearer grant for an
// operator token: sub operatortoken:<token>, the scope as a claim.
func (rp *RelyingParty) JWTBearerAssertion(token, scope string) (string, error) {
	if rp.cfg.ClientKey == nil {
		return "", errors.New("the JWT-bearer grant needs the client's private_key_jwt key")
	}
	if scope == "" {
		scope = OperatorTokenScope
	}
	return rp.cfg.ClientKey.Assertion(rp.cfg.ClientID, rp.cfg.Issuer, OperatorTokenPrefix+token, map[string]any{"scope": scope})
}

// JWTBearer redeems an operator token through the JWT-bearer grant: one
// POST /token with the assertion, the client authenticated with
// private_key_jwt. The answer is an access token alone.
func (rp *RelyingParty) JWTBearer(ctx context.Context, token, scope string) (*Tokens, error) {
	assertion, err := rp.JWTBearerAssertion(token, scope)
	if err != nil {
		return nil, err
	}
	return rp.TokenRequest(ctx, url.Values{"grant_type": {GrantTypeJWTBearer}, "assertion": {assertion}})
}

// CIBA redeems an operator token through CIBA in poll mode: POST
// /bc-authorize with login_hint=operatortoken:<token>, then /token every
// interval (5 s more after slow_down) until the tokens or an error.
func (rp *RelyingParty) CIBA(ctx context.Context, token, scope string) (*Tokens, error) {
	if scope == "" {
		scope = "openid " + OperatorTokenScope
	}
	if rp.backchannelURL == "" {
		return nil, &ProtocolError{Step: "discovery", Problem: "the issuer lists no backchannel_authentication_endpoint"}
	}
	var started struct {
		AuthReqID string `json:"auth_req_id"`
		ExpiresIn int    `json:"expires_in"`
		Interval  int    `json:"interval"`
	}
	if err := rp.postClientForm(ctx, rp.backchannelURL, url.Values{"login_hint": {OperatorTokenPrefix + token}, "scope": {scope}}, &started); err != nil {
		return nil, err
	}
	if started.AuthReqID == "" {
		return nil, &ProtocolError{Step: "bc-authorize", Problem: "no auth_req_id in the answer"}
	}
	interval := time.Duration(max(started.Interval, 1)) * time.Second
	deadline := time.Now().Add(time.Duration(max(started.ExpiresIn, 1)) * time.Second)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		tokens, err := rp.PollCIBA(ctx, started.AuthReqID)
		var apiErr *APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Code == "authorization_pending" && time.Now().Before(deadline):
			continue
		case errors.As(err, &apiErr) && apiErr.Code == "slow_down" && time.Now().Before(deadline):
			interval += 5 * time.Second
			continue
		}
		return tokens, err
	}
}

// PollCIBA asks /token once for the tokens of authReqID.
func (rp *RelyingParty) PollCIBA(ctx context.Context, authReqID string) (*Tokens, error) {
	return rp.TokenRequest(ctx, url.Values{"grant_type": {GrantTypeCIBA}, "auth_req_id": {authReqID}})
}

// TokenRequest posts form to the token endpoint with the client's
// private_key_jwt authentication; an ID token in the answer is verified.
func (rp *RelyingParty) TokenRequest(ctx context.Context, form url.Values) (*Tokens, error) {
	var answer struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
		IDToken     string `json:"id_token"`
		Refresh     string `json:"refresh_token"`
	}
	if err := rp.postClientForm(ctx, rp.oauth.Endpoint.TokenURL, form, &answer); err != nil {
		return nil, err
	}
	if answer.AccessToken == "" {
		return nil, &ProtocolError{Step: "token", Problem: "no access_token in the answer"}
	}
	if answer.Refresh != "" {
		return nil, &ProtocolError{Step: "token", Problem: "a refresh token was issued for an operator token"}
	}
	out := &Tokens{AccessToken: answer.AccessToken, Scope: answer.Scope, Expiry: time.Now().Add(time.Duration(answer.ExpiresIn) * time.Second)}
	if answer.IDToken == "" {
		return out, nil
	}
	idToken, amr, err := rp.verifyIDToken(ctx, answer.IDToken)
	if err != nil {
		return out, err
	}
	out.RawIDToken, out.Subject, out.AMR = answer.IDToken, idToken.Subject, amr
	return out, nil
}

// postClientForm posts form with private_key_jwt client authentication and
// decodes a 200 answer into out; an RFC 6749 §5.2 error is an *APIError.
func (rp *RelyingParty) postClientForm(ctx context.Context, endpoint string, form url.Values, out any) error {
	if rp.cfg.ClientKey == nil {
		return errors.New("the operator-token flows need the client's private_key_jwt key")
	}
	auth, err := rp.cfg.ClientKey.ClientAuth(rp.cfg.ClientID, rp.cfg.Issuer)
	if err != nil {
		return err
	}
	for name, value := range auth {
		form.Set(name, value)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := rp.client(ctx).Do(req)
	if err != nil {
		return &ConnectionError{Method: http.MethodPost, URL: endpoint, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &ConnectionError{Method: http.MethodPost, URL: endpoint, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(raw, &e)
		return &APIError{Method: http.MethodPost, URL: endpoint, Status: resp.StatusCode, Code: e.Error, Message: e.Description}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &ProtocolError{Step: endpoint, Problem: "undecodable answer: " + err.Error()}
	}
	return nil
}
