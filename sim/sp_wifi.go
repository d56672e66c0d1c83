package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/numverify/numverify/internal/phone"
)

// handleWiFi is POST /wifi: a device off the mobile data path hands over
// the operator token it got from the operator's entitlement server (TS.43,
// EAP-AKA) with the number to verify (form fields phoneNumber,
// operatorToken — with or without its "operatortoken:" prefix — and flow,
// jwt-bearer by default or ciba). The backend exchanges the token by that
// flow (private_key_jwt) and asks verify. The answer is the result page, or
// WiFiResult as JSON when the request accepts application/json first (the
// device's app). No session, no cookie: the token itself is single-use and
// bound to this client.
func (s *SP) handleWiFi(w http.ResponseWriter, r *http.Request) {
	typed := r.FormValue("phoneNumber")
	number, err := phone.Normalize(typed)
	if err != nil {
		s.answerWiFi(w, r, http.StatusBadRequest, pageData{Form: true, Number: typed,
			Problem: "Type the number in international form, with + and the country code."}, "")
		return
	}
	token := strings.TrimPrefix(strings.TrimSpace(r.FormValue("operatorToken")), OperatorTokenPrefix)
	flowName := r.FormValue("flow")
	if flowName == "" {
		flowName = string(FlowJWTBearer)
	}
	flow, err := ParseOperatorTokenFlow(flowName)
	if token == "" || err != nil {
		s.answerWiFi(w, r, http.StatusBadRequest, pageData{Form: true, Number: typed,
			Problem: "An operator token and a flow (jwt-bearer or ciba) are required."}, "")
		return
	}
	if s.cfg.ClientKey == nil {
		s.answerWiFi(w, r, http.StatusNotImplemented, pageData{Result: true, Title: "Not verified", Number: number,
			Detail: "This SP has no private_key_jwt key (numverify sp --sp-client-key), which operator tokens need."}, flow)
		return
	}
	rp, err := s.relyingParty(r.Context())
	if err != nil {
		s.logger.Warn("sp: discovery failed", "err", err)
		s.answerWiFi(w, r, http.StatusServiceUnavailable, pageData{Result: true, Title: "Not verified",
			Detail: "The operator's authorization server cannot be reached; try again."}, flow)
		return
	}
	tokens, err := rp.RedeemOperatorToken(r.Context(), flow, token, "")
	if err != nil {
		s.logger.Info("sp: operator token refused", "flow", flow, "err", redactTokens(errorSummary(err)))
		status, code := http.StatusBadGateway, ""
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status/100 == 4 {
			status, code = http.StatusOK, apiErr.Code
		}
		s.answerWiFi(w, r, status, pageData{Result: true, Title: "Not verified", Number: number, Code: code,
			Detail: "The operator refused the operator token (" + string(flow) + "): " + errorSummary(err)}, flow)
		return
	}
	verified, err := rp.Verify(r.Context(), tokens.AccessToken, number, false)
	if err != nil {
		s.logger.Warn("sp: verify failed", "err", err)
		s.answerWiFi(w, r, http.StatusBadGateway, pageData{Result: true, Title: "Not verified", Number: number,
			Detail: "The Number Verification API answered with an error: " + errorSummary(err)}, flow)
		return
	}
	s.logger.Info("sp: verification done", "verified", verified, "flow", flow)
	if verified {
		s.answerWiFi(w, r, http.StatusOK, pageData{Result: true, Verified: true, Title: "Verified: " + number, Number: number,
			Detail: "The operator confirms this is the number of the SIM that obtained the operator token (" + string(flow) + ")."}, flow)
		return
	}
	s.answerWiFi(w, r, http.StatusOK, pageData{Result: true, Title: "Not verified", Number: number,
		Detail: "The SIM that obtained the operator token does not have this number."}, flow)
}

// WiFiResult is POST /wifi's JSON answer.
type WiFiResult struct {
	Verified bool   `json:"verified"`
	Flow     string `json:"flow,omitempty"`
	Error    string `json:"error,omitempty"` // the operator's error code, when it refused the token
	Detail   string `json:"detail"`
}

// answerWiFi renders the page, or JSON for a client whose Accept names
// application/json first.
func (s *SP) answerWiFi(w http.ResponseWriter, r *http.Request, status int, data pageData, flow OperatorTokenFlow) {
	first, _, _ := strings.Cut(r.Header.Get("Accept"), ",")
	if media, _, err := mime.ParseMediaType(first); err != nil || media != "application/json" {
		s.render(w, status, data)
		return
	}
	detail := data.Detail
	if data.Problem != "" {
		detail = data.Problem
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(WiFiResult{Verified: data.Verified, Flow: string(flow), Error: data.Code, Detail: detail})
}

// HandOverOperatorToken is the device's app on Wi-Fi handing its operator
// token and number to the SP's POST /wifi (spURL is the SP's base URL); it
// returns the SP's answer.
func HandOverOperatorToken(ctx context.Context, spURL, number, token string, flow OperatorTokenFlow) (WiFiResult, error) {
	form := url.Values{"phoneNumber": {number}, "operatorToken": {token}, "flow": {string(flow)}}
	endpoint := strings.TrimRight(spURL, "/") + "/wifi"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return WiFiResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return WiFiResult{}, &ConnectionError{Method: http.MethodPost, URL: endpoint, Err: err}
	}
	defer resp.Body.Close()
	var result WiFiResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&result); err != nil {
		return WiFiResult{}, &ProtocolError{Step: "sp", Problem: fmt.Sprintf("HTTP %d, not the SP's JSON answer", resp.StatusCode)}
	}
	if resp.StatusCode != http.StatusOK {
		return result, &APIError{Method: http.MethodPost, URL: endpoint, Status: resp.StatusCode, Code: result.Error, Message: result.Detail}
	}
	return result, nil
}
