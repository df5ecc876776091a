package bus

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the bus's Prometheus series. Label values are topic names from
// contracts, partition numbers and fixed outcome words: never free text.
type Metrics struct {
	Consumed *prometheus.CounterVec   // onex_messages_consumed_total{topic,outcome}
	Produced *prometheus.CounterVec   // onex_messages_produced_total{topic}
	Duration *prometheus.HistogramVec // onex_handler_duration_seconds{topic}
	Retries  *prometheus.CounterVec   // onex_handler_retries_total{topic}
	Lag      *prometheus.GaugeVec     // onex_consumer_lag{topic,partition}
	InFlight prometheus.Gauge         // onex_messages_in_flight
}

// NewMetrics creates the bus series and registers them on reg (which may be
// nil for tests that do not scrape).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onex_messages_consumed_total",
			Help: "Messages consumed, by topic and outcome (handled, dead_lettered).",
		}, []string{"topic", "outcome"}),
		Produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onex_messages_produced_total",
			Help: "Messages acknowledged by the broker, by topic.",
		}, []string{"topic"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "onex_handler_duration_seconds",
			Help:    "Time to handle one message including retries, by topic.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"topic"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onex_handler_retries_total",
			Help: "Handler retries after retriable errors, by topic.",
		}, []string{"topic"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "onex_consumer_lag",
			Help: "Records behind the partition's high-water mark when the last message was taken.",
		}, []string{"topic", "partition"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "onex_messages_in_flight",
			Help: "Messages being handled right now.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Consumed, m.Produced, m.Duration, m.Retries, m.Lag, m.InFlight)
	}
	return m
}

func (m *Metrics) lag(topic string, partition int32, hwm, offset int64) {
	if m == nil {
		return
	}
	l := hwm - offset - 1
	if l < 0 {
		l = 0
	}
	m.Lag.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(l))
}
