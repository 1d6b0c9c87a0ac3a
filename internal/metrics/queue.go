package metrics

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"b24learn/internal/jobs/queues"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertype"
)

// QueueCounter counts River's jobs in the given states by kind, then state.
// The jobs package's Queue is the one: it owns the reads of River's tables.
type QueueCounter interface {
	CountJobs(ctx context.Context, states ...rivertype.JobState) (map[string]map[rivertype.JobState]int64, error)
}

// DefaultQueueTimeout bounds the query a scrape makes.
const DefaultQueueTimeout = 2 * time.Second

// RegisterQueueDepth adds a gauge of River jobs not yet finished, by kind and
// state, counted on each scrape. A failed or slow count sets
// b24learn_river_queue_up to 0 instead of failing the whole scrape.
func (m *Metrics) RegisterQueueDepth(db QueueCounter, timeout time.Duration, log *slog.Logger) error {
	if timeout <= 0 {
		timeout = DefaultQueueTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return m.Registry.Register(&queueCollector{
		db: db, timeout: timeout, log: log, kinds: map[string]bool{},
		depth: prometheus.NewDesc("b24learn_river_queue_depth",
			"River jobs not yet finished, by kind and state (available, pending, retryable, running, scheduled).",
			[]string{"kind", "state"}, nil),
		up: prometheus.NewDesc("b24learn_river_queue_up",
			"1 when the last count of River's queue succeeded.", nil, nil),
	})
}

type queueCollector struct {
	db      QueueCounter
	timeout time.Duration
	log     *slog.Logger
	depth   *prometheus.Desc
	up      *prometheus.Desc

	mu sync.Mutex
	// kinds seen since start, so a kind whose queue emptied reports 0
	// rather than vanishing.
	kinds map[string]bool
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.up
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.count()
	if err != nil {
		c.log.Warn("count river queue", "error", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	c.mu.Lock()
	for k := range counts {
		c.kinds[k] = true
	}
	kinds := make([]string, 0, len(c.kinds))
	for k := range c.kinds {
		kinds = append(kinds, k)
	}
	c.mu.Unlock()
	slices.Sort(kinds)
	for _, kind := range kinds {
		for _, st := range queues.Unfinished() {
			ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(counts[kind][st]), kind, string(st))
		}
	}
}

func (c *queueCollector) count() (map[string]map[rivertype.JobState]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	// Only unfinished states: a count by state stays cheap however many
	// finished jobs River keeps.
	return c.db.CountJobs(ctx, queues.Unfinished()...)
}
