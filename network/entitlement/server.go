package entitlement

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/internal/milenage"
	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/network/eapaka"
)

// TokenMinter mints the operator token once the SIM is proven: the network
// component's operator-token store.
type TokenMinter interface {
	MintOperatorToken(ctx context.Context, msisdn, clientID string) (token string, expiresAt time.Time, err error)
}

var _ TokenMinter = (*network.Store)(nil)

// Defaults of Config.
const (
	DefaultSessionTTL  = time.Minute
	defaultMaxSessions = 100_000
	maxResyncs         = 2 // per session, as the Android TS.43 client follows
	maxBodyBytes       = 8 << 10
	sessionCookie      = "numverify_ecs"
)

// Config is what the entitlement server needs.
type Config struct {
	SIMs        *SIMStore
	Tokens      TokenMinter
	Logger      *slog.Logger
	Registerer  prometheus.Registerer // nil: no metrics
	SessionTTL  time.Duration         // 0: DefaultSessionTTL
	MaxSessions int                   // 0: defaultMaxSessions
	Now         func() time.Time      // nil: time.Now
	AMF         [milenage.AMFSize]byte
}

// Server is the entitlement server's HTTP handler.
type Server struct {
	sims     *SIMStore
	tokens   TokenMinter
	logger   *slog.Logger
	now      func() time.Time
	amf      [milenage.AMFSize]byte
	ttl      time.Duration
	sessions *sessions
	metrics  *metrics
}

var _ http.Handler = (*Server)(nil)

// NewServer validates cfg and returns the server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.SIMs == nil || cfg.Tokens == nil || cfg.Logger == nil {
		return nil, errors.New("entitlement: SIMs, Tokens and Logger are required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = defaultMaxSessions
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AMF == [2]byte{} {
		cfg.AMF = [2]byte{0x80, 0x00} // the separation bit, as EPS vectors carry it
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Server{sims: cfg.SIMs, tokens: cfg.Tokens, logger: cfg.Logger, now: cfg.Now, amf: cfg.AMF,
		ttl: cfg.SessionTTL, sessions: newSessions(cfg.MaxSessions, cfg.SessionTTL, func(n int) { m.sessions.Set(float64(n)) }), metrics: m}, nil
}

// ServeHTTP routes: an EAP relay body answers a challenge, anything else on
// GET or POST starts an authentication.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet:
		s.start(w, r, r.URL.Query().Get)
	case http.MethodPost:
		media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch media {
		case ContentTypeEAPRelay:
			s.answer(w, r)
		case "application/json":
			params, err := readParams(w, r)
			if err != nil {
				s.fail(w, "malformed", http.StatusBadRequest, err.Error())
				return
			}
			s.start(w, r, func(k string) string { return params[k] })
		default:
			s.fail(w, "malformed", http.StatusUnsupportedMediaType, "send application/json or "+ContentTypeEAPRelay)
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		s.fail(w, "malformed", http.StatusMethodNotAllowed, "GET or POST")
	}
}

// readParams reads a JSON object of TS.43 parameters (strings; others are ignored).
func readParams(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	var raw map[string]any
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&raw); err != nil {
		return nil, errors.New("the body is not a JSON object of parameters")
	}
	params := map[string]string{}
	for k, v := range raw {
		if str, ok := v.(string); ok {
			params[k] = str
		}
	}
	return params, nil
}

// start checks the request parameters, advances the SIM's SQN and sends the
// first EAP-Request/AKA-Challenge with a new session cookie.
func (s *Server) start(w http.ResponseWriter, r *http.Request, param func(string) string) {
	sess, problem := newSession(param)
	if problem != "" {
		s.fail(w, "malformed", http.StatusBadRequest, problem)
		return
	}
	identifier := randomByte()
	request, err := s.challenge(r.Context(), sess, identifier)
	switch {
	case errors.Is(err, errUnknownSIM):
		s.eapFailure(w, "unknown_sim", identifier)
		return
	case err != nil:
		s.unavailable(w, err)
		return
	}
	id, ok := s.sessions.add(sess, s.now())
	if !ok {
		w.Header().Set("Retry-After", "1")
		s.fail(w, "overloaded", http.StatusServiceUnavailable, "too many authentications in progress")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(s.ttl.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	s.relay(w, http.StatusOK, request)
}

// newSession reads the parameters of the first request.
func newSession(param func(string) string) (*session, string) {
	eapID := param(ParamEAPID)
	imsi, err := ParseEAPID(eapID)
	switch {
	case eapID == "":
		return nil, "EAP_ID is required"
	case err != nil:
		return nil, "EAP_ID is not 0<IMSI>@nai.epc.mnc<MNC>.mcc<MCC>.3gppnetwork.org of the IMSI's MCC and MNC"
	case param(ParamApp) != AppPhoneNumber && param(ParamApp) != appAuthentication:
		return nil, "app must be " + AppPhoneNumber + " or " + appAuthentication
	case param(ParamOperation) != OperationAcquireTemporaryToken:
		return nil, "operation must be " + OperationAcquireTemporaryToken
	}
	clientID := param(ParamClientID)
	if !network.ValidClientID(clientID) { // the rule the minter applies
		return nil, fmt.Sprintf("client_id (the SP client the token is for) is required: 1 to %d characters, no spaces", network.MaxClientIDLength)
	}
	targets := param(ParamOperationTargets)
	if len(targets) > 1024 {
		return nil, "operation_targets is too long"
	}
	return &session{imsi: imsi, identity: eapID, app: param(ParamApp), clientID: clientID, operationTargets: targets}, ""
}

// challenge takes the SIM's next SQN and makes the session's challenge.
func (s *Server) challenge(ctx context.Context, sess *session, identifier uint8) ([]byte, error) {
	sim, err := s.sims.nextChallenge(ctx, sess.imsi)
	if err != nil {
		return nil, err
	}
	cipher, err := sim.cipher()
	if err != nil {
		return nil, err
	}
	var rnd [milenage.RANDSize]byte
	rand.Read(rnd[:])
	challenge, request := eapaka.NewChallenge(sess.identity, identifier, cipher.Vector(rnd, sim.SQN, s.amf))
	sess.challenge, sess.msisdn, sess.cipher = challenge, sim.MSISDN, cipher
	return request, nil
}

func randomByte() uint8 {
	var b [1]byte
	rand.Read(b[:])
	return b[0]
}
