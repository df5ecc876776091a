package run

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/bench/internal/load"
	"github.com/omninode/onex-fleet/bench/internal/observe"
	"github.com/omninode/onex-fleet/bench/internal/report"
	"github.com/omninode/onex-fleet/bench/internal/saturation"
	"github.com/omninode/onex-fleet/bench/internal/stats"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/node/sim"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// planned is how many node identities the registration phases may use.
const planned = 150_000

// nodesUp starts the simulated node fleet (one pkg/node Fleet: one producer
// and the lifecycle consumers for every node) and the observers.
func (b *bench) nodesUp(ctx context.Context) error {
	if b.reg != nil {
		return nil
	}
	plan := sim.Plan(sim.Options{Nodes: planned, Seed: b.env + "/registrations"}, "")
	apiEndpoints(plan)
	b.tracker = observe.NewTracker()
	quiet := slog.New(slog.NewTextHandler(b.logWriter("nodes"), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Registered nodes stay silent afterwards (a heartbeat an hour): each
	// phase measures its own load only.
	f, err := node.NewFleet(node.Config{Brokers: b.s.Brokers, Environment: b.env, Namespace: b.ns, HeartbeatInterval: time.Hour,
		ClientID: "bench-nodes", Logger: quiet, OnTransition: b.tracker.Transition})
	if err != nil {
		return err
	}
	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.stopNodes = cancel
	runErr := make(chan error, 1)
	go func() { runErr <- f.Run(nctx) }()
	select {
	case <-f.Ready():
	case err := <-runErr:
		return err
	case <-time.After(time.Minute):
		return fmt.Errorf("node fleet not ready after a minute")
	}
	ready := make(chan struct{})
	go func() {
		if err := b.tracker.FollowConsul(nctx, b.s.Brokers, b.ns.Physical(topics.EffectResults), ready); err != nil {
			b.log.Error("bench: consul observer", "error", err)
		}
	}()
	select {
	case <-ready:
	case <-time.After(time.Minute):
		return fmt.Errorf("consul observer not ready after a minute")
	}
	go func() {
		if err := b.tracker.PollPostgres(nctx, b.pool, b.s.PollInterval); err != nil {
			b.log.Error("bench: projection observer", "error", err)
		}
	}()
	b.reg = &load.Registrar{Fleet: f, Tracker: b.tracker, Plan: plan, Log: quiet}
	return nil
}

// waitDone waits until every id is ACTIVE in both backends or grace passed
// since the call.
func (b *bench) waitDone(ids []uuid.UUID, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		done := true
		for _, tl := range b.tracker.Timelines(ids) {
			if tl.Active().IsZero() {
				done = false
				break
			}
		}
		if done {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// segments summarises the latencies from the introspection to each
// observation.
func segments(tls []observe.Timeline) map[string]stats.Summary {
	get := map[string]func(observe.Timeline) time.Time{
		"accepted (node sees the accepted event)": func(t observe.Timeline) time.Time { return t.Accepted },
		"broker ack of the introspection":         func(t observe.Timeline) time.Time { return t.Published },
		"node sees became-active":                 func(t observe.Timeline) time.Time { return t.NodeActive },
		"row active in PostgreSQL":                func(t observe.Timeline) time.Time { return t.PGActive },
		"service registered in Consul":            func(t observe.Timeline) time.Time { return t.Consul },
		"ACTIVE in both PostgreSQL and Consul":    observe.Timeline.Active,
	}
	out := map[string]stats.Summary{}
	for name, fn := range get {
		var ds []time.Duration
		missing := 0
		for _, t := range tls {
			at := fn(t)
			if at.IsZero() || t.Introduced.IsZero() {
				missing++
				continue
			}
			ds = append(ds, at.Sub(t.Introduced))
		}
		out[name] = stats.Summarize(ds, missing)
	}
	return out
}

const (
	segAccepted = "accepted (node sees the accepted event)"
	segActive   = "ACTIVE in both PostgreSQL and Consul"
)

// step offers rate registrations per second for d and returns the curve
// point once its nodes are done (or a grace period passed); with hops set it
// also splits their latency hop by hop.
func (b *bench) step(ctx context.Context, rate float64, d time.Duration, hops bool) (report.CurvePoint, map[string]stats.Summary, []uuid.UUID) {
	var from offsets
	if hops {
		from = b.offsetsNow()
	}
	ids := b.reg.OpenLoop(ctx, rate, d)
	b.remember(ids)
	b.reg.Wait()
	b.waitDone(ids, 15*time.Second)
	if hops && from != nil {
		if to := b.offsetsNow(); to != nil {
			hs, err := b.hopReport(ctx, from, to, ids)
			if err != nil {
				b.log.Warn("bench: hops", "error", err)
			}
			b.res.Hops = hs
		}
	}
	// A saturated step leaves a backlog; the next step starts without it.
	if left := b.drain(ctx, 45*time.Second); left > 44*time.Second {
		b.res.Note("the backlog of the %.0f/s step had not drained 45 s after the 15 s wait for its nodes", rate)
	}
	tls := b.tracker.Timelines(ids)
	seg := segments(tls)
	var introduced, active []time.Time
	for _, t := range tls {
		introduced = append(introduced, t.Introduced)
		if a := t.Active(); !a.IsZero() {
			active = append(active, a)
		}
	}
	p := report.CurvePoint{Offered: rate, Accepted: seg[segAccepted], Active: seg[segActive],
		Achieved: saturation.Achieved(introduced, active)}
	return p, seg, ids
}

// offer runs one step of the curve (or of the saturation search) as the
// phase name: rate registrations per second for d. After a step before it
// (prepare), it first waits for that step's backlog to drain and removes
// the run's services from the catalog, so that every step starts from the
// same idle fleet and catalog. It returns false, with a note, when the
// run's node identities would not last the step.
func (b *bench) offer(ctx context.Context, name string, rate float64, d time.Duration, prepare, fixed bool) (report.CurvePoint, map[string]stats.Summary, bool, error) {
	if b.reg.Remaining() < int(rate*d.Seconds()) {
		b.res.Note("no step at %g/s: the run's %d node identities are used up", rate, planned)
		return report.CurvePoint{}, nil, false, nil
	}
	if prepare {
		// A saturated step leaves a backlog; the next step starts
		// without it.
		if left := b.drain(ctx, 45*time.Second); left > 44*time.Second {
			b.res.Note("the backlog before the %g/s step had not drained after 45 s", rate)
		}
		b.emptyAgent(ctx, fmt.Sprintf("the %g/s step", rate))
	}
	var p report.CurvePoint
	var seg map[string]stats.Summary
	profileAfter := time.Duration(-1)
	if fixed {
		profileAfter = 5 * time.Second
	}
	if err := b.measure(ctx, name, profileAfter, func(ctx context.Context) error {
		p, seg, _ = b.step(ctx, rate, d, fixed)
		return nil
	}); err != nil {
		return p, seg, false, err
	}
	b.log.Info("bench: step", "phase", name, "offered", rate, "achieved", fmt.Sprintf("%.1f", p.Achieved), "p99_accepted_ms", p.Accepted.P99,
		"p99_active_ms", p.Active.P99, "not_active", p.Active.Missing)
	return p, seg, true, nil
}

// addCurvePoint puts p on the curve in the order of offered load.
func (b *bench) addCurvePoint(p report.CurvePoint) {
	i := sort.Search(len(b.res.Curve), func(i int) bool { return b.res.Curve[i].Offered > p.Offered })
	b.res.Curve = slices.Insert(b.res.Curve, i, p)
}

// latencyPhase measures the latency curve: offered loads from the lowest
// up; the fixed load (100/s) runs longer and gives the latency figures.
// The curve stops after the first saturated step above the fixed load
// (every step below it is run, so a fleet saturated at the fixed load still
// has a curve). The saturation search then narrows down the highest rate
// the curve sustained, and the fleet is run at half of it.
func (b *bench) latencyPhase(ctx context.Context) error {
	if err := b.nodesUp(ctx); err != nil {
		return err
	}
	rates := append([]float64{}, b.s.CurveRates...)
	if !slices.Contains(rates, b.s.FixedRate) {
		rates = append(rates, b.s.FixedRate)
	}
	slices.Sort(rates)
	search := b.search()
	for i, rate := range rates {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fixed := rate == b.s.FixedRate
		d, name := time.Duration(b.s.StepSeconds)*time.Second, fmt.Sprintf("latency-%g", rate)
		if fixed {
			d, name = time.Duration(b.s.FixedSeconds)*time.Second, "latency-fixed"
		}
		p, seg, ok, err := b.offer(ctx, name, rate, d, i > 0, fixed)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		b.addCurvePoint(p)
		if fixed {
			b.fixedFigures(seg)
		}
		saturated := !search.Sustained(saturation.Point{Offered: rate, Achieved: p.Achieved}) ||
			p.Active.P99 > 2000 || p.Active.Missing > p.Active.N/100
		if saturated && rate >= b.s.FixedRate {
			break // the next step would only queue
		}
	}
	return b.saturationPhase(ctx, search)
}

func (b *bench) fixedFigures(seg map[string]stats.Summary) {
	b.res.Latency = seg
	acc, act := seg[segAccepted], seg[segActive]
	b.res.Add(report.Figure{ID: "latency_accepted_p99", Name: fmt.Sprintf("p99 introspection → accepted at %.0f/s", b.s.FixedRate),
		Unit: "ms", Value: acc.P99, Target: "≤ 25 ms", Met: report.Bool(acc.P99 <= 25 && acc.Missing == 0),
		Note: fmt.Sprintf("p50 %.1f ms, max %.1f ms over %d registrations (%d without an accepted event)", acc.P50, acc.Max, acc.N, acc.Missing)})
	b.res.Add(report.Figure{ID: "latency_active_p99", Name: fmt.Sprintf("p99 introspection → ACTIVE at %.0f/s", b.s.FixedRate),
		Unit: "ms", Value: act.P99, Target: "≤ 100 ms", Met: report.Bool(act.P99 <= 100 && act.Missing == 0),
		Note: fmt.Sprintf("ACTIVE = row active in PostgreSQL and the service registered in Consul; p50 %.1f ms, max %.1f ms over %d (%d not ACTIVE "+
			"within 15 s of the last introspection, so not in the percentiles). The node saw became-active at p99 %.1f ms, the row was active at "+
			"p99 %.1f ms, the service registered at p99 %.1f ms.", act.P50, act.Max, act.N, act.Missing, seg["node sees became-active"].P99,
			seg["row active in PostgreSQL"].P99, seg["service registered in Consul"].P99)})
}

// offsetsNow returns the end offsets of the topics a registration crosses
// (nil, logged, if the broker does not answer).
func (b *bench) offsetsNow() offsets {
	cfg, err := bus.NewConfig(bus.Options{Brokers: b.s.Brokers, ClientID: "bench-hops"})
	if err != nil {
		return nil
	}
	client, err := sarama.NewClient(b.s.Brokers, cfg)
	if err != nil {
		b.log.Warn("bench: hops", "error", err)
		return nil
	}
	defer client.Close()
	o, err := hopOffsets(client, b.ns)
	if err != nil {
		b.log.Warn("bench: hops", "error", err)
		return nil
	}
	return o
}
