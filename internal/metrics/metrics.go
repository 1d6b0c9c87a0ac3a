// Package metrics holds the service's Prometheus collectors in a registry of
// its own (no global state), and feeds River's job events into them.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
)

// Metrics is the registry and the collectors other packages update.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec
	Jobs         *prometheus.CounterVec
	JobDuration  *prometheus.HistogramVec

	Syncs        *prometheus.CounterVec
	SyncDuration *prometheus.HistogramVec
	SyncObjects  *prometheus.CounterVec

	// B24Refused counts Bitrix24 frame POSTs and app events answered without
	// asking the OAuth server, by reason.
	B24Refused *prometheus.CounterVec
}

// New registers the collectors, including Go runtime and process metrics.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.HTTPRequests = m.counter("b24learn_http_requests_total",
		"HTTP requests by route pattern, method and status code.", "route", "method", "code")
	m.HTTPDuration = m.histogram("b24learn_http_request_duration_seconds",
		"HTTP request duration by route pattern.", prometheus.DefBuckets, "route")
	m.Jobs = m.counter("b24learn_jobs_total",
		"River jobs worked by kind and outcome (completed, failed, cancelled, snoozed).", "kind", "outcome")
	m.JobDuration = m.histogram("b24learn_job_duration_seconds",
		"River job run duration by kind.", []float64{.01, .05, .1, .5, 1, 5, 15, 60, 300, 1800}, "kind")
	m.Syncs = m.counter("b24learn_syncs_total",
		"Sync runs by trigger (scheduled, manual, approved, preview) and result (succeeded, partial, held, failed, previewed, interrupted, cancelled).",
		"trigger", "result")
	m.SyncDuration = m.histogram("b24learn_sync_duration_seconds",
		"Sync run duration by trigger.", []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200}, "trigger")
	m.SyncObjects = m.counter("b24learn_sync_objects_total",
		"Objects handled by sync runs (previews excluded) by kind (user, department) and action (create, update, move, deactivate, reactivate, set_supervisor, link, refused, failed, held).",
		"kind", "action")
	m.B24Refused = m.counter("b24learn_b24_refused_total",
		"Bitrix24 frame POSTs and app events refused before any OAuth call, by reason (malformed, address_limit, portal_limit, portal_users_limit, portal_admins_limit, portal_token_events_limit, unknown_limit, unknown_address_limit, unknown_portal, unknown_oauth_server).",
		"reason")
	return m
}

// counter registers a counter vector with the given labels.
func (m *Metrics) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.Registry.MustRegister(c)
	return c
}

// histogram registers a histogram vector with the given buckets and labels.
func (m *Metrics) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	m.Registry.MustRegister(h)
	return h
}

// Handler serves the registry in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ObserveHTTP records one finished request. method must be a standard
// method or "_OTHER" (the server folds the client's free text): each new
// label value is a series kept for the life of the process.
func (m *Metrics) ObserveHTTP(route, method string, code int, d time.Duration) {
	m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.HTTPDuration.WithLabelValues(route).Observe(d.Seconds())
}

// ObserveSync records one finished sync run: its trigger, result (the
// run's status), duration and the run's counts keyed "kind.action"
// ("user.create"). A preview's counts are a plan, not changes, so they are
// not added to the objects counter.
func (m *Metrics) ObserveSync(trigger, result string, d time.Duration, counts map[string]int) {
	m.Syncs.WithLabelValues(trigger, result).Inc()
	if result != SyncInterrupted && result != SyncCancelled {
		// A cut run's time says when it was stopped, not how long syncs take.
		m.SyncDuration.WithLabelValues(trigger).Observe(d.Seconds())
	}
	if result == "previewed" {
		return
	}
	for key, n := range counts {
		if n <= 0 {
			continue
		}
		kind, action, ok := strings.Cut(key, ".")
		if !ok {
			kind, action = "", key
		}
		if kind == "learn" {
			continue // the write concurrency and 429s of the run: figures, not objects
		}
		m.SyncObjects.WithLabelValues(kind, action).Add(float64(n))
	}
}

// SyncInterrupted is the result of a run cut by the process's shutdown; its
// job goes back to the queue and the run is resumed, by this process or another.
const SyncInterrupted = "interrupted"

// SyncCancelled is the result of a run cut because its job was cancelled
// from River UI or the console: the job is not retried.
const SyncCancelled = "cancelled"

// WatchRiver counts River's job events until ctx ends. The client must be
// configured to work jobs.
func WatchRiver[TTx any](ctx context.Context, m *Metrics, client *river.Client[TTx]) {
	events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobCancelled, river.EventKindJobSnoozed)
	go func() {
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				m.Jobs.WithLabelValues(ev.Job.Kind, string(ev.Kind)).Inc()
				if ev.JobStats != nil {
					m.JobDuration.WithLabelValues(ev.Job.Kind).Observe(ev.JobStats.RunDuration.Seconds())
				}
			}
		}
	}()
}
