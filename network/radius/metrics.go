package radius

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/network"
)

// metrics are the accounting server's. A nil registry gives working,
// unregistered metrics.
type metrics struct {
	requests    *prometheus.CounterVec // status_type, outcome
	rejected    *prometheus.CounterVec // reason
	sessions    prometheus.Gauge       // open sessions (all sources)
	batchSize   prometheus.Histogram   // requests per commit
	commitTime  prometheus.Histogram   // seconds per commit
	queueLength prometheus.GaugeFunc   // requests waiting for a commit
	remembered  prometheus.Counter     // Opens answered from the open-session memory
}

// The outcomes of a request besides the store's (network.Outcome…).
const (
	outcomeIgnored  = "ignored"   // answered, nothing to record (another status type, no number or address)
	outcomeDropped  = "dropped"   // not answered: unauthenticated, malformed, overloaded
	outcomeFailed   = "failed"    // not answered: the commit failed (the NAS retransmits)
	outcomeInFlight = "in_flight" // a retransmission of a request waiting for its commit, answered by it
)

// Reasons a request was not recorded.
const (
	reasonUnknownClient      = "unknown_client"
	reasonBadAuthenticator   = "bad_authenticator"
	reasonMalformed          = "malformed"
	reasonNotAccounting      = "not_accounting_request"
	reasonMissingStatusType  = "missing_status_type"
	reasonMissingSessionID   = "missing_session_id"
	reasonMissingMSISDN      = "missing_msisdn"
	reasonInvalidMSISDN      = "invalid_msisdn"
	reasonMissingAddress     = "missing_address"
	reasonUnsupportedAddress = "unsupported_address"
	reasonOverloaded         = "overloaded"
	reasonStoreError         = "store_error"
)

func newMetrics(reg prometheus.Registerer, queueLength func() float64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_radius_requests_total",
			Help: "Accounting-Requests by Acct-Status-Type and outcome (opened, confirmed, known, stopped, late, closed, no_session, ignored, in_flight, dropped, failed).",
		}, []string{"status_type", "outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_radius_rejected_total",
			Help: "Accounting-Requests not recorded, by reason; unknown_client, bad_authenticator, malformed, not_accounting_request, missing_status_type, missing_session_id, overloaded and store_error get no answer.",
		}, []string{"reason"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "numverify_network_sessions_open",
			Help: "Open network sessions (refreshed every few seconds by the accounting server).",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "numverify_radius_commit_batch_size",
			Help:    "Accounting-Requests committed together in one transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "numverify_radius_commit_seconds",
			Help:    "Time to commit one batch of accounting changes durably.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		}),
		queueLength: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "numverify_radius_queue_length",
			Help: "Accounting-Requests decided and waiting for their commit.",
		}, queueLength),
		remembered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "numverify_radius_remembered_total",
			Help: "Interim-Updates (and retransmitted Starts) of sessions this server committed as open, answered without the table (also counted as confirmed).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.rejected, m.sessions, m.batchSize, m.commitTime, m.queueLength, m.remembered)
	}
	for _, status := range []string{statusStart, statusInterim, statusStop} {
		for _, o := range []network.AccountingOutcome{network.OutcomeOpened, network.OutcomeConfirmed, network.OutcomeClosed} {
			m.requests.WithLabelValues(status, string(o))
		}
	}
	for _, r := range []string{reasonUnknownClient, reasonBadAuthenticator, reasonMalformed, reasonMissingMSISDN, reasonInvalidMSISDN, reasonMissingAddress} {
		m.rejected.WithLabelValues(r)
	}
	return m
}
