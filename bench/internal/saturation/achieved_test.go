package saturation

import (
	"math"
	"testing"
	"time"
)

func TestAchieved(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	// offers returns n introspections at rate per second.
	offers := func(n int, rate float64) []time.Time {
		out := make([]time.Time, n)
		for i := range out {
			out[i] = t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		}
		return out
	}
	// after returns each time of ts plus its latency, leaving out the
	// indexes lost says never became ACTIVE.
	after := func(ts []time.Time, latency func(i int) time.Duration, lost func(i int) bool) []time.Time {
		var out []time.Time
		for i, at := range ts {
			if lost == nil || !lost(i) {
				out = append(out, at.Add(latency(i)))
			}
		}
		return out
	}
	const ms = time.Millisecond
	steady := offers(800, 100)
	for _, tc := range []struct {
		name               string
		introduced, active []time.Time
		want, tolerance    float64
	}{
		{"keeps up: the latency is not a lower rate", steady, after(steady, func(int) time.Duration { return 900 * ms }, nil), 100, 1e-9},
		{"keeps up with jitter", steady, after(steady, func(i int) time.Duration { return time.Duration(50+i%7*40) * ms }, nil), 100, 1},
		{"a slow first node does not shorten the span", steady, after(steady, func(i int) time.Duration {
			if i == 0 {
				return 2 * time.Second
			}
			return 50 * ms
		}, nil), 100, 1e-9},
		{"falls behind: the completions' rate", steady, after(steady, func(i int) time.Duration {
			// served at 50/s from the start: node i done at i/50 s
			return time.Duration(i)*20*ms - time.Duration(i)*10*ms + 30*ms
		}, nil), 50, 1e-9},
		{"lost nodes lower the rate", steady, after(steady, func(int) time.Duration { return 50 * ms }, func(i int) bool { return i%10 == 9 }), 90, 0.2},
		{"a lost tail lowers the rate", steady, after(steady, func(int) time.Duration { return 50 * ms }, func(i int) bool { return i >= 600 }), 75, 0.1},
		{"one node done", steady, steady[:1], 0, 0},
		{"none done", steady, nil, 0, 0},
		{"all at one instant", []time.Time{t0, t0}, []time.Time{t0, t0}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Achieved(tc.introduced, tc.active); math.Abs(got-tc.want) > tc.tolerance {
				t.Fatalf("Achieved = %v, want %v ± %v", got, tc.want, tc.tolerance)
			}
		})
	}
}
