package saturation

import (
	"slices"
	"time"
)

// Achieved is the rate at which a step's nodes reached ACTIVE: the lower
// of the rate of the completions in their middle (between the first and
// the last tenth of them, in the order they came) and the completions per
// second of offering (the nodes that became ACTIVE, less one, over the
// time from the first introspection to the last).
//
// The middle of the completions measures the rate they came at without
// the step's edges: counting from the first introspection to the last
// node ACTIVE would add one latency to a step of a few seconds, and
// counting from the first completion to the last would add the spread of
// the latencies, either calling a fleet that keeps up saturated. When the
// fleet falls behind, its backlog spaces the completions at its capacity,
// which is then what the middle measures. The completions per second of
// offering bound it from below, so that nodes that never became ACTIVE
// lower the rate even when those that did came at the rate offered.
// introduced holds every node the step started, active the times of those
// that became ACTIVE.
func Achieved(introduced, active []time.Time) float64 {
	n := len(active)
	if n < 2 {
		return 0
	}
	done := slices.Clone(active)
	slices.SortFunc(done, time.Time.Compare)
	lo, hi := n/10, n-1-n/10
	if hi <= lo {
		lo, hi = 0, n-1
	}
	middle := done[hi].Sub(done[lo])
	if middle <= 0 {
		return 0
	}
	rate := float64(hi-lo) / middle.Seconds()
	if offering := spread(introduced); offering > 0 {
		rate = min(rate, float64(n-1)/offering.Seconds())
	}
	return rate
}

// spread is the time from the earliest of ts to the latest.
func spread(ts []time.Time) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	first, last := ts[0], ts[0]
	for _, t := range ts[1:] {
		if t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return last.Sub(first)
}
