package run

import (
	"testing"

	"github.com/omninode/onex-fleet/bench/internal/report"
)

// Search steps join the curve in the order of offered load, so the chart
// and the table read from the lowest load up.
func TestAddCurvePoint(t *testing.T) {
	b := &bench{res: &report.Result{}}
	for _, r := range []float64{25, 50, 100, 35, 42, 12.5, 100} {
		b.addCurvePoint(report.CurvePoint{Offered: r})
	}
	want := []float64{12.5, 25, 35, 42, 50, 100, 100}
	for i, p := range b.res.Curve {
		if p.Offered != want[i] {
			t.Fatalf("curve %v, want offered loads %v", b.res.Curve, want)
		}
	}
}

func TestSearchBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		max  float64
	}{
		{"the defaults", Defaults(), 4000},
		{"a fixed rate above the curve", Settings{FixedRate: 300, CurveRates: []float64{25, 50}}, 600},
		{"no curve", Settings{FixedRate: 100}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := (&bench{s: tc.s}).search()
			if s.Max != tc.max || s.Min != minSearchRate || s.Threshold != saturationThreshold || s.Resolution != saturationResolution {
				t.Fatalf("search %+v, want Max %v", s, tc.max)
			}
		})
	}
}
