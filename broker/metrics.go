package broker

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the broker's Prometheus series. Labels are bounded: routes
// are the mux patterns, codes are our catalogue's, IdPs and platforms come
// from config; nothing from a request becomes a label.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	oauth    *prometheus.CounterVec
	upstream *prometheus.HistogramVec
	// keyReloads counts signing-key reloads by outcome, so that an alert
	// fires when replicas keep failing to pick up a rotation.
	keyReloads *prometheus.CounterVec
	// risk counts the suspicious-context rule's verdicts by reason.
	risk *prometheus.CounterVec
	// civilRegistry counts the civil registry's outcomes.
	civilRegistry *prometheus.CounterVec
}

// NewMetrics registers the series on a fresh registry (with the Go runtime
// and process collectors).
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		registry: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_http_requests_total", Help: "HTTP requests by platform, route and status.",
		}, []string{"platform", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sesame_http_request_duration_seconds", Help: "HTTP request latency by platform and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 6, 10},
		}, []string{"platform", "route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_idp_logins_total", Help: "Returns from identity providers by outcome: ok, or the error code shown.",
		}, []string{"platform", "idp", "outcome"}),
		oauth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_oauth_errors_total", Help: "OAuth errors answered to SPs, by endpoint and registered code.",
		}, []string{"platform", "endpoint", "error"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sesame_idp_exchange_duration_seconds", Help: "Code exchange, id_token check and userinfo at an IdP.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 4, 6, 10},
		}, []string{"idp"}),
		keyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_signing_key_reloads_total", Help: "Reloads of a platform's signing keys (SIGHUP and periodic) by outcome: ok or failed.",
		}, []string{"platform", "outcome"}),
		risk: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_risk_suspicious_total", Help: "Authorization requests found suspicious, by reason (deny_network, failed_trips, waf): eidas1-only IdPs were greyed out for them. A request may count under several reasons.",
		}, []string{"platform", "reason"}),
	}
	m.civilRegistry = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sesame_civil_registry_checks_total", Help: "Civil registry (RNIPP) checks by outcome: found, corrected, not_found, deceased, unavailable (no answer), circuit_open (not asked: the circuit is open).",
	}, []string{"platform", "outcome"})
	r.MustRegister(m.civilRegistry)
	r.MustRegister(m.requests, m.duration, m.logins, m.oauth, m.upstream, m.keyReloads, m.risk,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics, for a listener that is not public.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// statusRecorder keeps the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// observe wraps a handler with request counts and latency by route.
func (m *Metrics) observe(platform string, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		m.requests.WithLabelValues(platform, route, strconv.Itoa(rec.status)).Inc()
		m.duration.WithLabelValues(platform, route).Observe(time.Since(start).Seconds())
	})
}

func (m *Metrics) login(platform, idp, outcome string) {
	if m != nil {
		m.logins.WithLabelValues(platform, idp, outcome).Inc()
	}
}

func (m *Metrics) civilRegistryCheck(platform, outcome string) {
	if m != nil {
		m.civilRegistry.WithLabelValues(platform, outcome).Inc()
	}
}

func (m *Metrics) oauthError(platform, endpoint, code string) {
	if m != nil {
		m.oauth.WithLabelValues(platform, endpoint, code).Inc()
	}
}

func (m *Metrics) keyReload(platform, outcome string) {
	if m != nil {
		m.keyReloads.WithLabelValues(platform, outcome).Inc()
	}
}

func (m *Metrics) suspicious(platform string, reasons []string) {
	if m != nil {
		for _, r := range reasons {
			m.risk.WithLabelValues(platform, r).Inc()
		}
	}
}

func (m *Metrics) exchange(idp string, d time.Duration) {
	if m != nil {
		m.upstream.WithLabelValues(idp).Observe(d.Seconds())
	}
}

// CountFunc registers a counter whose value fn reads at each scrape, for
// the parts the broker's process runs beside it (the history feeder, the
// mail queue), under one name with an outcome label.
func (m *Metrics) CountFunc(name, help, outcome string, fn func() float64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: name, Help: help, ConstLabels: prometheus.Labels{"outcome": outcome},
	}, fn))
}
