package bus

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the message series every consuming service exposes, with the
// same names in every service (all consume through a Runner). Label values are topic names from contracts, group ids,
// partition numbers, handler names chosen in code and fixed outcome words:
// never free text. The service label is added by the Registerer
// (service.Service.Registerer).
type Metrics struct {
	// Consumed is onex_messages_consumed_total{topic,outcome}: records taken
	// off a topic and finished, outcome handled or dead_lettered.
	Consumed *prometheus.CounterVec
	// Produced is onex_messages_produced_total{topic}: records the broker
	// acknowledged (or, for transactional producers, committed). DLQ records
	// are counted by onex_dlq_messages_total instead.
	Produced *prometheus.CounterVec
	// Duration is onex_handler_duration_seconds{topic,handler}: one
	// observation per handler call, retries included; for batch handlers a
	// call handles a batch.
	Duration *prometheus.HistogramVec
	// Retries is onex_handler_retries_total{topic}.
	Retries *prometheus.CounterVec
	// Lag is onex_consumer_lag{group,topic,partition}.
	Lag *Lag

	handler string
	// byTopic overrides handler per topic (TopicHandlers).
	byTopic map[string]string
}

// DefaultHandler is the handler label of a Metrics not given one with
// Handler.
const DefaultHandler = "message"

// NewMetrics creates the bus series and registers them on reg (which may be
// nil for tests that do not scrape).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onex_messages_consumed_total",
			Help: "Messages consumed and finished, by topic and outcome (handled, dead_lettered).",
		}, []string{"topic", "outcome"}),
		Produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onex_messages_produced_total",
			Help: "Messages acknowledged by the broker (committed, for transactional producers), by topic; DLQ records excluded.",
		}, []string{"topic"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "onex_handler_duration_seconds",
			Help:    "Time of one handler call including retries (a batch, for batch handlers), by topic and handler.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"topic", "handler"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onex_handler_retries_total",
			Help: "Handler retries after retriable errors, by topic.",
		}, []string{"topic"}),
		Lag:     &Lag{positions: map[*Position]struct{}{}},
		handler: DefaultHandler,
	}
	if reg != nil {
		reg.MustRegister(m.Consumed, m.Produced, m.Duration, m.Retries, m.Lag)
	}
	return m
}

// Handler returns a copy of m whose handler latency is labelled
// handler=name; the series are shared with m.
func (m *Metrics) Handler(name string) *Metrics {
	if m == nil {
		return nil
	}
	c := *m
	c.handler = name
	return &c
}

// TopicHandlers returns a copy of m whose handler latency on each topic of
// names is labelled with that topic's handler name, for a runner whose
// batch handler serves several topics with different handlers; other
// topics keep m's label.
func (m *Metrics) TopicHandlers(names map[string]string) *Metrics {
	if m == nil {
		return nil
	}
	c := *m
	c.byTopic = names
	return &c
}

// ObserveHandler records one handler call on topic that took d.
func (m *Metrics) ObserveHandler(topic string, d time.Duration) {
	if m == nil {
		return
	}
	h := m.handler
	if n, ok := m.byTopic[topic]; ok {
		h = n
	}
	m.Duration.WithLabelValues(topic, h).Observe(d.Seconds())
}

// Track starts lag tracking of one claimed partition of group (nil when m
// is nil; a nil *Position ignores every call).
func (m *Metrics) Track(group string, c Claim) *Position {
	if m == nil {
		return nil
	}
	return m.Lag.Track(group, c)
}

// Claim is the part of sarama.ConsumerGroupClaim lag tracking reads.
type Claim interface {
	Topic() string
	Partition() int32
	InitialOffset() int64
	HighWaterMarkOffset() int64
}

var descLag = prometheus.NewDesc("onex_consumer_lag",
	"Records in the partition after the group's position (high-water mark minus the next offset to handle), per claimed partition.",
	[]string{"group", "topic", "partition"}, nil)

// Lag is the onex_consumer_lag collector. It costs nothing per message
// beyond two atomic stores: the value is computed when scraped, from the
// high-water mark sarama's fetcher last saw for each claimed partition
// (no broker request) and the next offset the consumer will handle. A
// partition appears while claimed, so a revoked partition's series
// disappears with the claim instead of freezing at its last value.
//
// Two consequences to know when reading it: a partition whose position is
// not known yet (a group without committed offsets, before its first
// record) is not reported; and on a topic written in Kafka transactions the
// commit marker after the last record occupies an offset, so an idle
// partition that has seen a transaction reads 1, not 0.
type Lag struct {
	mu        sync.Mutex
	positions map[*Position]struct{}
}

// Track starts reporting the lag of claim c of group until Close.
func (l *Lag) Track(group string, c Claim) *Position {
	if l == nil {
		return nil
	}
	p := &Position{l: l, group: group, topic: c.Topic(), partition: strconv.Itoa(int(c.Partition())), claim: c}
	p.next.Store(c.InitialOffset())
	l.mu.Lock()
	l.positions[p] = struct{}{}
	l.mu.Unlock()
	return p
}

// Describe implements prometheus.Collector.
func (l *Lag) Describe(ch chan<- *prometheus.Desc) { ch <- descLag }

// Collect implements prometheus.Collector.
func (l *Lag) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range l.positions {
		if v, ok := p.Value(); ok {
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(v), p.group, p.topic, p.partition)
		}
	}
}

// Position is the consumer's position in one claimed partition.
type Position struct {
	l         *Lag
	group     string
	topic     string
	partition string
	claim     Claim
	next      atomic.Int64
}

// Taken records that the record at offset is being handled: it and what
// follows are still to do.
func (p *Position) Taken(offset int64) {
	if p != nil {
		p.next.Store(offset)
	}
}

// Done records that every record up to and including offset is handled.
func (p *Position) Done(offset int64) {
	if p != nil {
		p.next.Store(offset + 1)
	}
}

// Value returns the lag now; ok is false while the position is unknown.
func (p *Position) Value() (lag int64, ok bool) {
	if p == nil {
		return 0, false
	}
	next := p.next.Load()
	if next < 0 {
		return 0, false
	}
	return max(p.claim.HighWaterMarkOffset()-next, 0), true
}

// Close stops reporting the partition (its claim ended).
func (p *Position) Close() {
	if p == nil {
		return
	}
	p.l.mu.Lock()
	delete(p.l.positions, p)
	p.l.mu.Unlock()
}
