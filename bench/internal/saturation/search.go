// Package saturation finds the registration rate the fleet sustains: the
// rate a step of offered load achieved, and a stepped search over offered
// rates for the highest one achieved at (nearly) the rate offered.
package saturation

import (
	"math"
	"sort"
)

// Point is one step of offered load and the rate it achieved, per second.
type Point struct {
	Offered, Achieved float64
}

// Search is a stepped search for the saturation rate: the highest offered
// rate whose achieved rate is at least Threshold of it. It brackets that
// rate between the highest sustained step and the lowest failing step
// above it, and offers the rate between them until they are within
// Resolution of each other.
type Search struct {
	// Threshold is the share of the offered rate a step must achieve to
	// count as sustained (0.9).
	Threshold float64
	// Resolution is the ratio of the failing rate to the sustained one at
	// which the search stops (1.2: the answer is within 20 %).
	Resolution float64
	// Min and Max bound the rates the search offers below the lowest step
	// (when none is sustained) and above the highest (when every step is).
	Min, Max float64
}

// Outcome is where a search stands.
type Outcome struct {
	// Rate is the saturation rate: the highest sustained offered rate (0
	// when no step was sustained).
	Rate float64
	// Achieved is what the step at Rate achieved.
	Achieved float64
	// Failed is the lowest offered rate above Rate that was not sustained;
	// 0 when none was tried, so that Rate is only a lower bound.
	Failed float64
}

// Sustained reports whether p achieved at least the threshold of its
// offered rate.
func (s Search) Sustained(p Point) bool {
	return p.Offered > 0 && p.Achieved >= s.Threshold*p.Offered
}

// Outcome returns the saturation rate the points give. The highest
// sustained rate counts even if a lower one failed: a noisy step below
// does not lower what a step above has shown.
func (s Search) Outcome(points []Point) Outcome {
	var o Outcome
	for _, p := range points {
		if s.Sustained(p) && p.Offered > o.Rate {
			o.Rate, o.Achieved = p.Offered, p.Achieved
		}
	}
	for _, p := range points {
		if p.Offered > o.Rate && !s.Sustained(p) && (o.Failed == 0 || p.Offered < o.Failed) {
			o.Failed = p.Offered
		}
	}
	return o
}

// Next returns the next offered rate to try, or false when the search is
// done: halfway (geometrically) between the bracket's ends while they are
// further apart than Resolution; twice the highest rate when every step
// was sustained, up to Max; half the lowest when none was, down to Min.
func (s Search) Next(points []Point) (float64, bool) {
	var tried []float64
	for _, p := range points {
		if p.Offered > 0 {
			tried = append(tried, p.Offered)
		}
	}
	if len(tried) == 0 {
		return 0, false
	}
	sort.Float64s(tried)
	o := s.Outcome(points)
	var next float64
	switch {
	case o.Rate == 0:
		if next = Round(tried[0] / 2); next < s.Min {
			return 0, false
		}
		return next, true
	case o.Failed == 0:
		if next = Round(o.Rate * 2); next > s.Max {
			return 0, false
		}
		return next, true
	case o.Failed/o.Rate <= s.Resolution:
		return 0, false
	}
	next = Round(math.Sqrt(o.Rate * o.Failed))
	if next <= o.Rate || next >= o.Failed {
		return 0, false // the bracket is narrower than the rounding
	}
	return next, true
}

// Round rounds a rate to a whole number per second (to tenths below
// 10/s), so that the steps' rates read as the rates they are.
func Round(r float64) float64 {
	switch {
	case r <= 0 || math.IsNaN(r) || math.IsInf(r, 0):
		return 0
	case r >= 10:
		return math.Round(r)
	}
	return math.Round(r*10) / 10
}
