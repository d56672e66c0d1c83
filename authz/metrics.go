package authz

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the authorization server's own Prometheus metrics (the HTTP
// ones are httpx's). Every label value comes from a fixed set: outcomes and
// errors are RFC 6749 error codes, reasons are this file's constants.
type metrics struct {
	logins      *prometheus.CounterVec
	tokens      *prometheus.CounterVec
	tokenErrors *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
}

// Reasons of a login outcome.
const (
	reasonNone                = ""
	reasonNotOnNetwork        = "not_on_network"       // no session holds the address
	reasonNoAddress           = "no_address"           // the client address cannot be told
	reasonResolverUnavailable = "resolver_unavailable" // the network could not answer
	reasonStoreUnavailable    = "store_unavailable"    // Postgres could not answer
	reasonRateLimitedIP       = "rate_limited_ip"
	reasonRateLimitedClient   = "rate_limited_client"
	reasonRequest             = "invalid_request_parameters" // the request itself was refused
)

// newMetrics registers the metrics on reg; with a nil reg they are kept but
// not exported. Registering on a registry that already has them (a second
// server in one process) reuses the registered ones.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &metrics{
		logins: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_authz_logins_total",
			Help: "Authorization requests by outcome (success or the OAuth2 error) and reason.",
		}, []string{"outcome", "reason"})),
		tokens: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_authz_tokens_issued_total",
			Help: "Access tokens issued by format and grant type.",
		}, []string{"format", "grant_type"})),
		tokenErrors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_authz_token_errors_total",
			Help: "Token endpoint errors by RFC 6749 error code.",
		}, []string{"error"})),
		rateLimited: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_authz_rate_limited_total",
			Help: "Requests refused by the abuse limits, by endpoint and key (ip or client).",
		}, []string{"endpoint", "key"})),
	}
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// refusal is the cause of a refused login, naming its reason.
type refusal struct {
	reason string
	cause  error
}

func (e *refusal) Error() string {
	if e.cause != nil {
		return e.reason + ": " + e.cause.Error()
	}
	return e.reason
}

func (e *refusal) Unwrap() error { return e.cause }

// loginReason is the reason recorded for a refused login.
func loginReason(err error) string {
	var r *refusal
	switch {
	case errors.As(err, &r):
		return r.reason
	case unavailable(err):
		return reasonStoreUnavailable
	}
	return reasonRequest
}
