package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric gathers g and returns the sum over the series of metric name whose
// labels include every pair of labels (other labels are summed over): the
// value of counters and gauges, the observation count of histograms and
// summaries. No matching series reads 0; MetricSeries tells absent from zero.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := MetricSeries(t, g, name, labels)
	return v
}

// MetricSeries is Metric that also returns how many series matched.
func MetricSeries(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) (float64, int) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	sum, n := 0.0, 0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			n++
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			case m.Summary != nil:
				sum += float64(m.GetSummary().GetSampleCount())
			case m.Untyped != nil:
				sum += m.GetUntyped().GetValue()
			}
		}
	}
	return sum, n
}
