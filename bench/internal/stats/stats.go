// Package stats summarises latency samples.
package stats

import (
	"math"
	"slices"
	"time"
)

// Summary are the percentiles of a set of latencies, in milliseconds.
type Summary struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
	// Missing counts the samples that never completed (not in the
	// percentiles).
	Missing int `json:"missing"`
}

// Summarize sorts a copy of ds and returns its percentiles (nearest rank).
func Summarize(ds []time.Duration, missing int) Summary {
	s := Summary{N: len(ds), Missing: missing}
	if len(ds) == 0 {
		return s
	}
	v := slices.Clone(ds)
	slices.Sort(v)
	var sum time.Duration
	for _, d := range v {
		sum += d
	}
	s.P50, s.P90, s.P99 = ms(rank(v, 0.50)), ms(rank(v, 0.90)), ms(rank(v, 0.99))
	s.Max = ms(v[len(v)-1])
	s.Mean = ms(sum / time.Duration(len(v)))
	return s
}

// rank is the nearest-rank percentile of sorted v.
func rank(v []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(v)))) - 1
	return v[min(max(i, 0), len(v)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
