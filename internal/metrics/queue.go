package metrics

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Querier is what the queue collector needs of a pool (*pgxpool.Pool).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queueStates are River's states of jobs not yet finished; the partial
// scan of river_job by state stays cheap however many finished jobs River
// keeps.
var queueStates = []string{"available", "pending", "retryable", "running", "scheduled"}

// DefaultQueueTimeout bounds the query a scrape makes.
const DefaultQueueTimeout = 2 * time.Second

// RegisterQueueDepth adds a gauge of River jobs not yet finished, by kind and
// state, counted from river_job on each scrape. A failed or slow count sets
// b24learn_river_queue_up to 0 instead of failing the whole scrape.
func (m *Metrics) RegisterQueueDepth(db Querier, timeout time.Duration, log *slog.Logger) error {
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
	db      Querier
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
		c.kinds[k[0]] = true
	}
	kinds := make([]string, 0, len(c.kinds))
	for k := range c.kinds {
		kinds = append(kinds, k)
	}
	c.mu.Unlock()
	slices.Sort(kinds)
	for _, kind := range kinds {
		for _, st := range queueStates {
			ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(counts[[2]string{kind, st}]), kind, st)
		}
	}
}

func (c *queueCollector) count() (map[[2]string]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.db.Query(ctx, `SELECT kind, state::text, count(*) FROM river_job
		WHERE state = ANY($1::river_job_state[]) GROUP BY kind, state`, queueStates)
	if err != nil {
		return nil, err
	}
	out := map[[2]string]int64{}
	var kind, state string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&kind, &state, &n}, func() error {
		out[[2]string{kind, state}] = n
		return nil
	})
	return out, err
}
