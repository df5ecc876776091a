package saturation

import (
	"math"
	"testing"
)

// search is the one the benchmark runs.
var search = Search{Threshold: 0.9, Resolution: 1.2, Min: 5, Max: 4000}

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name   string
		points []Point
		want   Outcome
	}{
		{"nothing tried", nil, Outcome{}},
		{"bracketed", []Point{{25, 24.6}, {50, 41.7}, {100, 85.6}}, Outcome{Rate: 25, Achieved: 24.6, Failed: 50}},
		{"exactly the threshold is sustained", []Point{{100, 90}, {200, 179}}, Outcome{Rate: 100, Achieved: 90, Failed: 200}},
		{"out of order", []Point{{100, 85}, {25, 25}, {35, 34}, {50, 40}}, Outcome{Rate: 35, Achieved: 34, Failed: 50}},
		{"a noisy failure below does not count", []Point{{25, 20}, {50, 49}, {100, 60}}, Outcome{Rate: 50, Achieved: 49, Failed: 100}},
		{"every step sustained", []Point{{25, 25}, {50, 50}}, Outcome{Rate: 50, Achieved: 50}},
		{"none sustained", []Point{{25, 10}, {50, 12}}, Outcome{Failed: 25}},
		{"a zero rate is no step", []Point{{0, 0}, {25, 25}}, Outcome{Rate: 25, Achieved: 25}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := search.Outcome(tc.points); got != tc.want {
				t.Fatalf("Outcome = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name   string
		points []Point
		want   float64 // 0: the search is done
	}{
		{"nothing tried", nil, 0},
		{"between the bracket's ends", []Point{{25, 25}, {50, 40}, {100, 60}}, 35},
		{"the bracket narrows", []Point{{25, 25}, {35, 34}, {50, 40}}, 42},
		{"the bracket narrows from above", []Point{{25, 25}, {35, 30}, {50, 40}}, 30},
		{"within the resolution", []Point{{25, 25}, {35, 34}, {42, 36}, {50, 40}}, 0},
		{"a wider bracket", []Point{{400, 398}, {700, 500}}, 529},
		{"every step sustained: twice the highest", []Point{{25, 25}, {50, 50}}, 100},
		{"every step sustained up to the maximum", []Point{{2000, 1990}, {4000, 3900}}, 0},
		{"none sustained: half the lowest", []Point{{25, 20}, {50, 30}}, 13},
		{"none sustained, still above the minimum", []Point{{13, 10}, {25, 20}}, 6.5},
		{"none sustained down to the minimum", []Point{{6.5, 5}, {13, 10}}, 0},
		{"a bracket within the resolution", []Point{{100, 100}, {110, 80}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := search.Next(tc.points)
			if ok != (tc.want != 0) || got != tc.want {
				t.Fatalf("Next = %v, %v; want %v", got, ok, tc.want)
			}
		})
	}
}

func TestNextWithinTheRounding(t *testing.T) {
	fine := search
	fine.Resolution = 1
	if got, ok := fine.Next([]Point{{100, 100}, {101, 80}}); ok {
		t.Fatalf("Next offered %v, which is no rate between 100 and 101", got)
	}
}

// A fleet that sustains any rate up to its capacity and achieves its
// capacity above it: the search, started from the benchmark's curve,
// brackets the capacity within its resolution, in at most two more steps
// when the capacity is within the curve.
func TestSearchConverges(t *testing.T) {
	curve := []float64{25, 50, 100, 200, 400, 700, 1000, 1500, 2000}
	for _, capacity := range []float64{3, 8, 30, 47, 90, 160, 333, 650, 1800, 2500, 5000} {
		fleet := func(offered float64) Point { return Point{offered, min(offered, capacity)} }
		var points []Point
		for _, r := range curve {
			p := fleet(r)
			points = append(points, p)
			if !search.Sustained(p) && r >= 100 {
				break // the curve stops after its first saturated step from 100/s
			}
		}
		steps := 0
		for ; steps < 10; steps++ {
			r, ok := search.Next(points)
			if !ok {
				break
			}
			points = append(points, fleet(r))
		}
		o := search.Outcome(points)
		switch {
		case capacity >= 25 && capacity/search.Threshold < 2000 && steps > 2:
			t.Errorf("capacity %v: %d steps after the curve", capacity, steps)
		case o.Rate > capacity/search.Threshold:
			t.Errorf("capacity %v: %+v sustained above it", capacity, o)
		case o.Rate == 0 && capacity >= search.Min:
			t.Errorf("capacity %v: nothing sustained (%v)", capacity, points)
		case o.Failed == 0 && o.Rate < search.Max:
			t.Errorf("capacity %v: no failing rate above %+v", capacity, o)
		case o.Rate > 0 && o.Failed != 0 && o.Failed/o.Rate > search.Resolution:
			t.Errorf("capacity %v: %+v is wider than the resolution", capacity, o)
		}
	}
}

func TestRound(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{282.84, 283}, {35.36, 35}, {836.6, 837}, {12.5, 13}, {6.5, 6.5}, {3.25, 3.3}, {0.123, 0.1}, {1500, 1500},
		{0, 0}, {-3, 0}, {math.NaN(), 0}, {math.Inf(1), 0},
	} {
		if got := Round(tc.in); got != tc.want {
			t.Errorf("Round(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
