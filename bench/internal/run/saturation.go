package run

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/omninode/onex-fleet/bench/internal/report"
	"github.com/omninode/onex-fleet/bench/internal/saturation"
)

// The saturation search: a step is sustained when it achieved 90 % of the
// rate offered; the search stops when the failing rate is within 20 % of
// the sustained one; below the curve it goes no lower than minSearchRate.
const (
	saturationThreshold  = 0.9
	saturationResolution = 1.2
	minSearchRate        = 5
)

// search is the run's saturation search; above the curve it goes no
// higher than twice its highest rate.
func (b *bench) search() saturation.Search {
	top := b.s.FixedRate
	if len(b.s.CurveRates) > 0 {
		top = max(top, slices.Max(b.s.CurveRates))
	}
	return saturation.Search{Threshold: saturationThreshold, Resolution: saturationResolution, Min: minSearchRate, Max: 2 * top}
}

// curvePoints are the curve's steps as the search sees them.
func curvePoints(curve []report.CurvePoint) []saturation.Point {
	out := make([]saturation.Point, len(curve))
	for i, p := range curve {
		out[i] = saturation.Point{Offered: p.Offered, Achieved: p.Achieved}
	}
	return out
}

// saturationPhase follows the latency curve: it narrows the saturation
// rate down between the highest sustained step and the lowest failing one
// above it with up to SearchSteps more steps (which join the curve), then
// offers half the saturation rate for HalfSeconds and records its
// latencies: issue #17's latency goals are set at half the fleet's
// capacity, not at a fixed rate, so that they measure the fleet's own
// latency rather than a backlog.
func (b *bench) saturationPhase(ctx context.Context, search saturation.Search) error {
	step := time.Duration(b.s.StepSeconds) * time.Second
	for i := 0; i < b.s.SearchSteps; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rate, more := search.Next(curvePoints(b.res.Curve))
		if !more {
			break
		}
		p, _, ok, err := b.offer(ctx, fmt.Sprintf("saturation-%g", rate), rate, step, true, false)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		b.addCurvePoint(p)
	}
	o := search.Outcome(curvePoints(b.res.Curve))
	b.log.Info("bench: saturation", "rate", o.Rate, "achieved", fmt.Sprintf("%.1f", o.Achieved), "first_failing", o.Failed)
	if len(b.res.Curve) == 0 {
		return nil
	}
	b.res.Detail(keySaturation, o.Rate)
	if o.Rate == 0 {
		b.res.Note("saturation: no offered rate was achieved at %.0f %% (down to %g/s); no half-saturation run", saturationThreshold*100, o.Failed)
		return nil
	}
	b.res.Detail("saturation_achieved_per_s", o.Achieved)
	if o.Failed > 0 {
		b.res.Detail("saturation_first_failing_per_s", o.Failed)
	} else {
		b.res.Note("saturation: every offered rate up to %g/s was achieved at %.0f %%; the saturation rate is at least that", o.Rate, saturationThreshold*100)
	}
	if r, more := search.Next(curvePoints(b.res.Curve)); more {
		b.res.Note("saturation: the search stopped after %d steps; %g/s would have been next (-search-steps)", b.s.SearchSteps, r)
	}

	half := o.Rate / 2
	p, _, ok, err := b.offer(ctx, "latency-half-saturation", half, time.Duration(b.s.HalfSeconds)*time.Second, true, false)
	if err != nil || !ok {
		return err
	}
	b.res.HalfSaturation = &p
	b.res.Detail("half_saturation_offered_per_s", half)
	b.res.Detail("half_saturation_achieved_per_s", p.Achieved)
	b.res.Detail("half_saturation_registrations", float64(p.Active.N+p.Active.Missing))
	b.res.Detail(keyHalfNotAccepted, float64(p.Accepted.Missing))
	b.res.Detail(keyHalfNotActive, float64(p.Active.Missing))
	if p.Accepted.N > 0 {
		b.res.Detail(keyP99AcceptedHalf, p.Accepted.P99)
	}
	if p.Active.N > 0 {
		b.res.Detail(keyP99ActiveHalf, p.Active.P99)
	}
	return nil
}
