package bus

import "github.com/rcrowley/go-metrics"

// sarama records go-metrics meters and histograms on every request and
// response (sizes, latencies, rates per broker and topic), behind a lock
// and a sample heap each. The fleet reads none of them: its Kafka figures
// are the Prometheus series of this package (metrics.go). Switching them
// off, as sarama's Config.MetricRegistry documentation says to, is a
// process-wide setting of go-metrics, so it is made once here, for every
// process that talks to Kafka through this package.
func init() {
	metrics.UseNilMetrics = true
}
