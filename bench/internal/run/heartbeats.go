package run

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/omninode/onex-fleet/bench/internal/kafkalog"
	"github.com/omninode/onex-fleet/bench/internal/load"
	"github.com/omninode/onex-fleet/bench/internal/procs"
	"github.com/omninode/onex-fleet/bench/internal/report"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// heartbeatPhase sends the seeded fleet's heartbeats at HeartbeatRate and
// measures how many per second the projection reflects, over
// HeartbeatSeconds after a warm-up. The sender keeps at most two seconds of
// offered load in flight (heartbeats sent but not yet applied by the
// projector), so the pipeline is full without an unbounded backlog.
func (b *bench) heartbeatPhase(ctx context.Context) error {
	if len(b.seeded) == 0 {
		return errors.New("no seeded fleet (the reducer phase failed)")
	}
	idents := make([]node.Identity, len(b.seeded))
	for i, n := range b.seeded {
		idents[i] = n.Identity
	}
	hb := &load.Heartbeats{Brokers: b.s.Brokers, Nodes: idents, Source: b.env, Namespace: b.ns}
	proj, red := b.fleet.svc[Projector], b.fleet.svc[Reducer]
	updates := map[string]string{"intent_type": pipeline.PostgresUpdate}

	m0, err := proj.Metrics(ctx)
	if err != nil {
		return err
	}
	base := m0.Sum("onex_projector_intents_total", updates)
	var applied atomic.Int64
	sctx, stopScrape := context.WithCancel(ctx)
	defer stopScrape()
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				if m, err := proj.Metrics(sctx); err == nil {
					applied.Store(int64(m.Sum("onex_projector_intents_total", updates) - base))
				}
			}
		}
	}()
	// In flight: at most five seconds of what the projector currently
	// applies, and never less than 10,000: throughput is what is in flight
	// over the pipeline's latency, so the floor must be high enough for
	// the rate to rise until a stage saturates; the bound keeps the backlog
	// short enough to drain before the next phase.
	var applyRate atomic.Int64 // applied per second, smoothed
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		prev, r := applied.Load(), 0.0
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				cur := applied.Load()
				r = 0.7*r + 0.3*float64(cur-prev)*2
				prev = cur
				applyRate.Store(int64(r))
			}
		}
	}()
	allow := func() bool { return hb.Sent()-applied.Load() < max(5*applyRate.Load(), 10_000) }

	warm := time.Duration(b.s.HeartbeatWarmup) * time.Second
	window := time.Duration(b.s.HeartbeatSeconds) * time.Second
	genErr := make(chan error, 1)
	go func() {
		_, err := hb.Run(ctx, b.s.HeartbeatRate, warm+window, allow)
		genErr <- err
	}()
	select {
	case <-time.After(warm):
	case err := <-genErr:
		return fmt.Errorf("heartbeats stopped during warm-up: %w", err)
	}
	// The fleet's CPU and the ends of Kafka's topics are read at the same
	// instants as what was sent and what the projection reflects, so the
	// issue #17 ratios divide quantities of one window.
	kafka, err := b.kafkaClient("bench-records")
	if err != nil {
		return err
	}
	defer kafka.Close()
	fleetCPU := b.serviceGroups()
	var cA, cB, sentA, sentB int64
	var tA, tB time.Time
	var rA, rB float64
	var cpuA, cpuB procs.CPUSample
	var endsA, endsB kafkalog.Ends
	var endsErr error
	err = b.measure(ctx, "heartbeats", 5*time.Second, func(ctx context.Context) error {
		var err error
		sentA = hb.Sent()
		endsA, endsErr = kafkalog.ReadEnds(kafka)
		cpuA = procs.SampleCPU(fleetCPU)
		if cA, tA, err = hb.Reflected(ctx, b.pool); err != nil {
			return err
		}
		if m, err := red.Metrics(ctx); err == nil {
			rA = m.Sum("onex_reducer_inputs_total", map[string]string{"kind": "heartbeat"})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-genErr:
			genErr <- err
		}
		sentB = hb.Sent()
		if endsErr == nil {
			endsB, endsErr = kafkalog.ReadEnds(kafka)
		}
		cpuB = procs.SampleCPU(fleetCPU)
		cB, tB, err = hb.Reflected(ctx, b.pool)
		if m, err := red.Metrics(ctx); err == nil {
			rB = m.Sum("onex_reducer_inputs_total", map[string]string{"kind": "heartbeat"})
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := <-genErr; err != nil {
		return err
	}
	secs := tB.Sub(tA).Seconds()
	rate := float64(cB-cA) / secs
	offered := float64(sentB-sentA) / secs
	// Drain: how long until the projection reflects everything sent.
	drainStart := time.Now()
	var last int64
	for time.Since(drainStart) < 60*time.Second {
		c, _, err := hb.Reflected(ctx, b.pool)
		if err != nil {
			return err
		}
		last = c
		if c >= hb.Sent() {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.drain(ctx, 45*time.Second)
	if ph := b.res.Phase("heartbeats"); ph != nil {
		ph.SetRate("heartbeat", rate)
	}
	b.res.Detail("heartbeats_offered_per_s", offered)
	b.res.Detail("heartbeats_decided_by_reducer_per_s", (rB-rA)/secs)
	b.res.Detail("heartbeats_drain_s", time.Since(drainStart).Seconds())
	b.res.Detail("heartbeats_unreflected_after_drain", float64(hb.Sent()-last))
	b.res.Detail(keyCPUPerHeartbeat, procs.PerItem(cpuA, cpuB, float64(cB-cA), serviceNames...)*1e6)
	if b.pg > 0 {
		b.res.Detail(keyHeartbeatsOverPG, rate/b.pg)
	}
	if endsErr != nil {
		b.res.Note("Kafka records per heartbeat not measured: %v", endsErr)
	} else {
		b.recordsPerHeartbeat(ctx, endsA, endsB, float64(sentB-sentA))
	}
	ratio := rate / b.kafka
	met := rate >= 20_000 && ratio >= 0.25
	b.res.Add(report.Figure{ID: "heartbeats", Name: "Heartbeats into the projection, 100,000 ACTIVE nodes", Unit: "/s",
		Value: rate, Target: "≥ 20,000/s and ≥ 0.25 of Kafka", Met: report.Bool(met),
		CeilingID: ceilKafka, Ceiling: b.kafka, Ratio: report.Float(ratio),
		Note: fmt.Sprintf("%d heartbeats reflected in last_heartbeat_at over %.0f s (sent %.0f/s, in flight at most 5 s of the applied rate or 10,000); "+
			"the reducer decided %.0f/s. Against the PostgreSQL update ceiling (%.0f rows/s) the ratio is %.2f. "+
			"Draining the backlog after the last send took %.1f s.",
			cB-cA, secs, offered, (rB-rA)/secs, b.pg, rate/b.pg, time.Since(drainStart).Seconds())})
	b.log.Info("bench: heartbeats", "reflected_per_s", int(rate), "offered_per_s", int(offered), "ratio_to_kafka", fmt.Sprintf("%.2f", ratio))
	return nil
}
