package resource

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the resource server's own metrics (the HTTP ones are
// httpx.Observe's). A nil registry gives working, unregistered metrics.
type metrics struct {
	rejections    *prometheus.CounterVec
	keyRefreshes  *prometheus.CounterVec
	revoked       prometheus.Gauge
	feedConnected prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_resource_token_rejections_total",
			Help: "Access tokens refused, by reason (missing, invalid, expired, revoked, unavailable).",
		}, []string{"reason"}),
		keyRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_resource_key_refreshes_total",
			Help: "Fetches of keys (issuer JWKS, decryption keys), by result.",
		}, []string{"keys", "result"}),
		revoked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "numverify_resource_revoked_tokens",
			Help: "Revoked, unexpired tokens held in memory.",
		}),
		feedConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "numverify_resource_revocation_feed_connected",
			Help: "1 while the revocation listener is connected to Postgres.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.rejections, m.keyRefreshes, m.revoked, m.feedConnected)
	}
	// Pre-create the label sets so the hot path only increments.
	for _, r := range []string{"missing", "invalid", "expired", "revoked", "unavailable"} {
		m.rejections.WithLabelValues(r)
	}
	return m
}

func (m *metrics) rejected(err error) {
	var e *apiError
	reason := "invalid"
	if errors.As(err, &e) {
		switch e.orange {
		case errMissingCredentials.orange:
			reason = "missing"
		case errExpiredCredentials.orange:
			reason = "expired"
		case errUnavailable.orange:
			reason = "unavailable"
		}
	}
	m.rejectedReason(reason)
}

func (m *metrics) rejectedReason(reason string) { m.rejections.WithLabelValues(reason).Inc() }

func (m *metrics) keyRefresh(keys string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.keyRefreshes.WithLabelValues(keys, result).Inc()
}

func (m *metrics) revokedTokens(n int64) { m.revoked.Set(float64(n)) }

func (m *metrics) revocationFeed(up bool) {
	if up {
		m.feedConnected.Set(1)
	} else {
		m.feedConnected.Set(0)
	}
}
