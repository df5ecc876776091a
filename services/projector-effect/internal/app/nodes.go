package app

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/registration"
)

// nodeCounts is onex_projector_nodes{state}: the registry's rows per FSM
// state, counted in PostgreSQL when scraped. Scrapes within ttl of a count
// reuse it, so several Prometheus servers, or a dashboard refreshing often,
// cost the database one grouped index scan per ttl. A failed count exports
// no series (a gap is honest; a stale number is not) and is counted in
// onex_projector_nodes_count_failures_total. The count bypasses the
// breaker, like the readiness ping: scrapes must not move it.
type nodeCounts struct {
	count    func(context.Context) (map[string]int64, error)
	ttl      time.Duration
	timeout  time.Duration
	failures prometheus.Counter

	mu     sync.Mutex
	at     time.Time
	counts map[string]int64
}

var descNodes = prometheus.NewDesc("onex_projector_nodes",
	"Registry rows per registration state in PostgreSQL (every state, 0 when none), counted when scraped and cached briefly.",
	[]string{"state"}, nil)

func newNodeCounts(count func(context.Context) (map[string]int64, error), ttl, timeout time.Duration) *nodeCounts {
	return &nodeCounts{count: count, ttl: ttl, timeout: timeout,
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_projector_nodes_count_failures_total",
			Help: "Scrape-time counts of registry rows per state that failed (onex_projector_nodes then has no series)."})}
}

func (n *nodeCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNodes
	n.failures.Describe(ch)
}

func (n *nodeCounts) Collect(ch chan<- prometheus.Metric) {
	if counts := n.current(); counts != nil {
		for _, st := range registration.States {
			ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(counts[string(st)]), string(st))
		}
	}
	n.failures.Collect(ch)
}

func (n *nodeCounts) current() map[string]int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.counts != nil && time.Since(n.at) < n.ttl {
		return n.counts
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	counts, err := n.count(ctx)
	if err != nil {
		n.failures.Inc()
		n.counts = nil
		return nil
	}
	n.counts, n.at = counts, time.Now()
	return counts
}
