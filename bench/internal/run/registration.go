package run

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omninode/onex-fleet/bench/internal/ceiling"
	"github.com/omninode/onex-fleet/bench/internal/kafkalog"
	"github.com/omninode/onex-fleet/bench/internal/procs"
	"github.com/omninode/onex-fleet/bench/internal/report"
)

// registrationPhase measures sustained registration throughput with
// HeldServices services already in Consul: Window registrations are kept
// in flight (a node that is ACTIVE in both backends makes room for the
// next), and nodes per second are counted over RegistrationSeconds after a
// warm-up.
//
// The consul effect registers through the catalog API (catalog mode), whose
// cost also grows with what the catalog holds, so the fleet agent is first
// filled with HeldServices external services of the effect's shape (of
// another environment: anti-entropy leaves them alone), then the raw
// catalog ceiling runs for the same warm-up and window and its services
// are removed, then the fleet runs. The agent API's ceiling with as many
// held (ceilings phase) is the second yardstick: the issue the catalog
// mode answers is that it fell to 30/s there.
func (b *bench) registrationPhase(ctx context.Context) error {
	if err := b.nodesUp(ctx); err != nil {
		return err
	}
	warm := 5 * time.Second
	window := time.Duration(b.s.RegistrationSeconds) * time.Second
	t0 := time.Now()
	heldNodes, err := ceiling.FillCatalog(ctx, b.consul, b.s.HeldServices, b.env+"-held")
	if err != nil {
		return fmt.Errorf("fill the catalog: %w", err)
	}
	b.log.Info("bench: catalog holding services", "services", len(heldNodes), "took", time.Since(t0).Round(time.Millisecond))
	defer b.removeHeld(ctx, heldNodes)
	var before float64
	var held int
	if err := b.measure(ctx, "consul-ceiling-same-window", -1, func(ctx context.Context) error {
		var err error
		if held, err = b.onexServices(ctx); err != nil {
			return err
		}
		before, err = b.catalogCeiling(ctx, warm, warm+window, "consul-ceiling-same-window")
		return err
	}); err != nil {
		return err
	}
	b.res.Detail("ceiling_consul_catalog_per_s_10k_before", before)
	b.res.Detail("consul_services_held_before_throughput_run", float64(held))

	var started time.Time
	var n int
	// The fleet's CPU over the counted window, not the warm-up: in the
	// closed loop as many registrations are in flight at its end as at its
	// start, so the CPU in between is that of the registrations completed
	// in between.
	fleetCPU := b.serviceGroups()
	var cpuA, cpuB procs.CPUSample
	// The ends of Kafka's topics are read at the same instants, for the
	// records per registration.
	kafka, err := b.kafkaClient("bench-records")
	if err != nil {
		return err
	}
	defer kafka.Close()
	var endsA, endsB kafkalog.Ends
	var endsErr error
	b.tracker.SetPollInterval(b.s.ThroughputPollInterval)
	defer b.tracker.SetPollInterval(b.s.PollInterval)
	err = b.measure(ctx, "registration", 10*time.Second, func(ctx context.Context) error {
		started = time.Now()
		sampled := make(chan struct{})
		timer := time.AfterFunc(warm, func() {
			cpuA = procs.SampleCPU(fleetCPU)
			endsA, endsErr = kafkalog.ReadEnds(kafka)
			close(sampled)
		})
		ids := b.reg.ClosedLoop(ctx, b.s.Window, warm+window, 60*time.Second)
		cpuB = procs.SampleCPU(fleetCPU)
		if !timer.Stop() {
			<-sampled
			if endsErr == nil {
				endsB, endsErr = kafkalog.ReadEnds(kafka)
			}
		}
		b.remember(ids)
		n = len(ids)
		return nil
	})
	if err != nil {
		return err
	}
	ids := b.ids[len(b.ids)-n:]
	b.reg.Wait()
	b.waitDone(ids, 10*time.Second)
	// The latency curve comes next and must start from an idle fleet.
	if d := b.drain(ctx, 90*time.Second); d > 89*time.Second {
		b.res.Note("the registration run's backlog had not drained after 90 s; the latency curve started with it")
	}
	from, to := started.Add(warm), started.Add(warm+window)
	done, inWindow, inCPU := 0, 0, 0
	for _, tl := range b.tracker.Timelines(ids) {
		a := tl.Active()
		if a.IsZero() {
			continue
		}
		done++
		if !a.Before(from) && a.Before(to) {
			inWindow++
		}
		if !cpuA.At.IsZero() && !a.Before(cpuA.At) && a.Before(cpuB.At) {
			inCPU++
		}
	}
	if !cpuA.At.IsZero() {
		b.res.Detail(keyCPUPerRegistration, procs.PerItem(cpuA, cpuB, float64(inCPU), serviceNames...)*1e3)
		if endsErr != nil {
			b.res.Note("Kafka records per registration not measured: %v", endsErr)
		} else if endsB != nil {
			b.recordsPerRegistration(ctx, endsA, endsB, float64(inCPU))
		}
	}
	if err := b.verify(ctx); err != nil {
		return err
	}
	b.emptyAgent(ctx, "catalog ceiling after")
	ceil := before
	how := fmt.Sprintf("The catalog ceiling ran just before over the same warm-up and window, starting from the same agent (%d services held)", held)
	after, err := b.ceilingAfter(ctx, warm, window, held)
	if err != nil {
		// The fleet's figure stands on the first ceiling alone rather than
		// not at all; the note says so.
		b.res.Note("the catalog ceiling after the fleet's run failed (%v): the figure's ceiling is the one before it alone", err)
		b.log.Warn("bench: catalog ceiling after the fleet's run", "error", err)
	} else {
		ceil = (before + after) / 2
		how = fmt.Sprintf("The catalog ceiling is the mean of two runs over the same warm-up and window from the same agent (%d services held), "+
			"%.0f/s just before the fleet's and %.0f/s just after", held, before, after)
	}
	b.res.Detail("ceiling_consul_catalog_per_s_10k", ceil)
	agentBefore, agentAfter, agentTwice := b.agentCeilingAfter(ctx)
	rate := float64(inWindow) / window.Seconds()
	ratio := rate / ceil
	b.res.Detail("registrations_per_s_10k_held", rate)
	if ph := b.res.Phase("registration"); ph != nil {
		ph.SetRate("registration", rate)
	}
	b.res.Add(report.Figure{ID: "registration", Name: fmt.Sprintf("Registration, %s services held: introspection → ACTIVE in PostgreSQL and Consul", thousands(held)),
		Unit: "nodes/s", Value: rate, Target: "≥ 0.7 of Consul's catalog API, ≥ 500/s", Met: report.Bool(ratio >= 0.7 && rate >= 500),
		CeilingID: ceilConsulCatalog, Ceiling: ceil, Ratio: report.Float(ratio),
		Note: fmt.Sprintf("%d nodes became ACTIVE in both backends within the %.0f s window (%d in flight at a time, acks included; "+
			"%d of %d started reached ACTIVE by the end), the consul effect in catalog mode. %s; %.0f/s into the empty agent at the start of the run.",
			inWindow, window.Seconds(), b.s.Window, done, len(ids), how, b.catalogEmpty)})
	vsAgent := report.Figure{ID: "registration-vs-agent", Name: "The same registrations against Consul's agent API (as many held)",
		Unit: "nodes/s", Value: rate, Target: "≥ 5× the agent API", CeilingID: ceilConsulAgent, Ceiling: b.agent10k,
		Note: fmt.Sprintf("the agent API's ceiling: eight workers registering into an agent of its own that held %d services of "+
			"the agent mode's shape (ceilings phase)", b.s.HeldServices)}
	if agentTwice {
		vsAgent.Note += fmt.Sprintf("; the mean of %.1f/s then and %.1f/s on the same agent right after the registration run", agentBefore, agentAfter)
	}
	if b.agent10k > 0 {
		vsAgent.Ratio, vsAgent.Met = report.Float(rate/b.agent10k), report.Bool(rate >= 5*b.agent10k)
	}
	b.res.Add(vsAgent)
	b.log.Info("bench: registration", "nodes_per_s", int(rate), "catalog_ceiling", int(ceil), "catalog_ceiling_before", int(before),
		"catalog_ceiling_after", int(after), "ratio", fmt.Sprintf("%.2f", ratio), "agent_ceiling", int(b.agent10k))
	return nil
}

// ceilingAfter measures the catalog ceiling again once the fleet's run is
// over and its services are removed, from the agent the first ceiling and
// the fleet started from (held onex services), over the same warm-up and
// window. This machine's speed drifts by tens of percent within minutes,
// so one ceiling run before the fleet's could be taken in a fast or a
// slow minute the fleet's did not share; the mean of one before and one
// after brackets the fleet's window.
func (b *bench) ceilingAfter(ctx context.Context, warm, window time.Duration, held int) (float64, error) {
	var after float64
	err := b.measure(ctx, "consul-ceiling-after", -1, func(ctx context.Context) error {
		n, err := b.onexServices(ctx)
		if err != nil {
			return err
		}
		// The fleet's own self-registrations were removed with the run's
		// services, so the second may start with a few fewer than the first.
		if n < b.s.HeldServices || n > held {
			b.res.Note("the second catalog ceiling started with %d onex services in the agent, the first with %d (%d held)", n, held, b.s.HeldServices)
		}
		after, err = b.catalogCeiling(ctx, warm, warm+window, "")
		return err
	})
	if err != nil {
		return 0, err
	}
	b.res.Detail("ceiling_consul_catalog_per_s_10k_after", after)
	return after, nil
}

// removeHeld takes the held services out of the catalog again, so the
// latency curve starts from the agent it started from before.
func (b *bench) removeHeld(ctx context.Context, nodes []string) {
	t0 := time.Now()
	if err := ceiling.DeleteCatalogNodes(ctx, b.consul, nodes); err != nil {
		b.log.Warn("bench: removing the held services", "error", err)
		return
	}
	b.log.Info("bench: removed the held services", "services", len(nodes), "took", time.Since(t0).Round(time.Millisecond))
}

// thousands formats n with a comma every three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// emptyAgent removes the run's services from the Consul agent before the
// next measurement (the latency curve, or its next step), so each latency
// step starts from an agent without the run's services instead of one
// holding the thousands the phases and steps before it registered.
func (b *bench) emptyAgent(ctx context.Context, before string) {
	t0 := time.Now()
	n, err := b.deregisterRun(ctx)
	if err != nil {
		b.log.Warn("bench: removing the run's Consul services", "before", before, "error", err)
		return
	}
	b.log.Info("bench: removed the run's Consul services", "before", before, "services", n, "took", time.Since(t0).Round(time.Millisecond))
}

// verify checks, straight in the backends, that the nodes the observers
// saw ACTIVE are there: Consul services of the run's environment (in the
// catalog, on external nodes), and active projection rows of the run's
// registered nodes.
func (b *bench) verify(ctx context.Context) error {
	var seen []string
	for _, id := range b.ids[len(b.seeded):] {
		if tl, ok := b.tracker.Get(id); ok && !tl.Active().IsZero() {
			seen = append(seen, id.String())
		}
	}
	svcs, err := b.catalogNodes(ctx, b.env)
	if err != nil {
		return err
	}
	var rows int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM registration_projections WHERE entity_id = ANY($1::uuid[]) AND current_state = 'active'`,
		seen).Scan(&rows); err != nil && err != pgx.ErrNoRows {
		return err
	}
	b.res.Detail("verified_active_rows", float64(rows))
	b.res.Detail("verified_consul_services", float64(len(svcs)))
	b.res.Detail("observed_active_nodes", float64(len(seen)))
	if rows < len(seen) || len(svcs) < len(seen) {
		b.res.Note("verification: %d nodes observed ACTIVE, but %d active rows and %d Consul services of the run", len(seen), rows, len(svcs))
	}
	return nil
}
