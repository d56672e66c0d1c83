package entitlement

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/numverify/numverify/internal/milenage"
	"github.com/numverify/numverify/network/eapaka"
)

// answer processes the device's EAP relay answer to its session's challenge:
// receive, decide (RES, resynchronisation, failure), commit (mint the token
// or advance SQN), answer.
func (s *Server) answer(w http.ResponseWriter, r *http.Request) {
	var body RelayBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&body); err != nil {
		s.fail(w, "malformed", http.StatusBadRequest, "the body is not an EAP relay message")
		return
	}
	packet, err := base64.StdEncoding.DecodeString(body.Packet)
	if err != nil || len(packet) < 4 {
		s.fail(w, "malformed", http.StatusBadRequest, "eap-relay-packet is not a base64 EAP packet")
		return
	}
	identifier := packet[1]
	cookie, err := r.Cookie(sessionCookie)
	if err != nil {
		s.eapFailure(w, "no_session", identifier)
		return
	}
	sess, live := s.sessions.take(cookie.Value, s.now())
	if !live {
		s.eapFailure(w, "no_session", identifier) // unknown, expired, or already answered (a replay)
		return
	}
	verdict, err := sess.challenge.Verify(packet)
	switch {
	case err != nil:
		s.eapFailure(w, verifyOutcome(err), identifier)
	case verdict.Resync:
		s.resynchronise(w, r.Context(), cookie.Value, sess, verdict.AUTS)
	default:
		s.issue(w, r.Context(), sess)
	}
}

func verifyOutcome(err error) string {
	switch {
	case errors.Is(err, eapaka.ErrBadMAC):
		return "bad_mac"
	case errors.Is(err, eapaka.ErrWrongRES):
		return "wrong_res"
	case errors.Is(err, eapaka.ErrRejected):
		return "rejected"
	case errors.Is(err, eapaka.ErrClientError):
		return "client_error"
	}
	return "malformed"
}

// resynchronise recovers SQN_MS from AUTS (RFC 4187 §6.3.1: the server checks
// AUTS with f1* and f5*), stores it as SQN_HE, and sends a fresh challenge in
// the same session.
func (s *Server) resynchronise(w http.ResponseWriter, ctx context.Context, id string, sess *session, auts [milenage.AUTSSize]byte) {
	identifier := sess.challenge.Identifier + 1
	if sess.resyncs >= maxResyncs {
		s.eapFailure(w, "resync_exhausted", identifier)
		return
	}
	sqnMS, err := sess.cipher.Resynchronise(sess.challenge.Vector.RAND, auts)
	if err != nil {
		s.eapFailure(w, "bad_auts", identifier)
		return
	}
	if err := s.sims.Resynchronise(ctx, sess.imsi, sqnMS); err != nil {
		s.unavailable(w, err)
		return
	}
	request, err := s.challenge(ctx, sess, identifier)
	if err != nil {
		s.unavailable(w, err)
		return
	}
	sess.resyncs++
	if !s.sessions.put(id, sess, s.now()) {
		w.Header().Set("Retry-After", "1")
		s.fail(w, "overloaded", http.StatusServiceUnavailable, "too many authentications in progress")
		return
	}
	s.metrics.outcome("resync")
	s.relay(w, http.StatusOK, request)
}

// issue mints the operator token for the SIM's MSISDN and the session's
// client, and answers TS.43's AcquireTemporaryToken characteristic.
func (s *Server) issue(w http.ResponseWriter, ctx context.Context, sess *session) {
	token, expiresAt, err := s.tokens.MintOperatorToken(ctx, sess.msisdn, sess.clientID)
	if err != nil {
		s.unavailable(w, err)
		return
	}
	s.metrics.outcome("token")
	s.logger.Info("entitlement: operator token issued", "app", sess.app, "resyncs", sess.resyncs)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(map[string]any{
		"Vers": Vers{Version: "1", Validity: "0"},
		sess.app: TemporaryToken{
			TemporaryToken:       token,
			TemporaryTokenExpiry: expiresAt.UTC().Format(time.RFC3339),
			OperationTargets:     sess.operationTargets,
		},
	})
}

// relay answers an EAP packet in an EAP relay body.
func (s *Server) relay(w http.ResponseWriter, status int, packet []byte) {
	w.Header().Set("Content-Type", ContentTypeEAPRelay)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(RelayBody{Packet: base64.StdEncoding.EncodeToString(packet)})
}

// eapFailure ends an authentication: 403 with EAP-Failure.
func (s *Server) eapFailure(w http.ResponseWriter, outcome string, identifier uint8) {
	s.metrics.outcome(outcome)
	s.logger.Info("entitlement: authentication failed", "outcome", outcome)
	s.relay(w, http.StatusForbidden, eapaka.Failure(identifier))
}

// fail answers a request that is not a step of an authentication.
func (s *Server) fail(w http.ResponseWriter, outcome string, status int, description string) {
	s.metrics.outcome(outcome)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": http.StatusText(status), "error_description": description})
}

// unavailable: the database (or the token store) did not answer.
func (s *Server) unavailable(w http.ResponseWriter, err error) {
	s.logger.Warn("entitlement: store error", "err", err)
	w.Header().Set("Retry-After", "1")
	s.fail(w, "error", http.StatusServiceUnavailable, "try again")
}
