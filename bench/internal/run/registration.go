package run

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/jackc/pgx/v5"

	"github.com/omninode/onex-fleet/bench/internal/report"
)

// registrationPhase measures sustained registration throughput: Window
// registrations are kept in flight (a node that is ACTIVE in both backends
// makes room for the next), and nodes per second are counted over
// RegistrationSeconds after a warm-up.
//
// A Consul agent's registration cost grows with the number of services it
// holds (its anti-entropy sync walks all of them on every change), so the
// ceiling it is compared with must start from the same agent and run as
// long: the raw ceiling runs first for the same warm-up and window, its
// services are removed, then the fleet runs.
func (b *bench) registrationPhase(ctx context.Context) error {
	if err := b.nodesUp(ctx); err != nil {
		return err
	}
	warm := 5 * time.Second
	window := time.Duration(b.s.RegistrationSeconds) * time.Second
	var ceil float64
	var held int
	if err := b.measure(ctx, "consul-ceiling-same-window", -1, func(ctx context.Context) error {
		var err error
		if held, err = b.agentServices(ctx); err != nil {
			return err
		}
		ceil, err = b.consulCeiling(ctx, warm, warm+window, "consul-ceiling-same-window")
		return err
	}); err != nil {
		return err
	}
	b.res.Detail("ceiling_consul_registrations_per_s_same_window", ceil)
	b.res.Detail("consul_services_held_before_throughput_run", float64(held))

	var started time.Time
	var n int
	err := b.measure(ctx, "registration", 10*time.Second, func(ctx context.Context) error {
		started = time.Now()
		ids := b.reg.ClosedLoop(ctx, b.s.Window, warm+window, 60*time.Second)
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
	done, inWindow := 0, 0
	for _, tl := range b.tracker.Timelines(ids) {
		a := tl.Active()
		if a.IsZero() {
			continue
		}
		done++
		if !a.Before(from) && a.Before(to) {
			inWindow++
		}
	}
	rate := float64(inWindow) / window.Seconds()
	ratio := rate / ceil
	if ph := b.res.Phase("registration"); ph != nil {
		ph.SetRate("registration", rate)
	}
	b.res.Add(report.Figure{ID: "registration", Name: "Registration: introspection → ACTIVE in PostgreSQL and Consul", Unit: "nodes/s",
		Value: rate, Target: "≥ 0.7 of Consul, ≥ 500/s", Met: report.Bool(ratio >= 0.7 && rate >= 500),
		CeilingID: ceilConsul, Ceiling: ceil, Ratio: report.Float(ratio),
		Note: fmt.Sprintf("%d nodes became ACTIVE in both backends within the %.0f s window (%d in flight at a time, acks included; "+
			"%d of %d started reached ACTIVE by the end). The Consul ceiling ran just before over the same warm-up and window, "+
			"starting from the same agent (%d services held); %.0f/s at the start of the run.",
			inWindow, window.Seconds(), b.s.Window, done, len(ids), held, b.consulEmpty)})
	b.log.Info("bench: registration", "nodes_per_s", int(rate), "consul_ceiling", int(ceil), "ratio", fmt.Sprintf("%.2f", ratio))
	if err := b.verify(ctx); err != nil {
		return err
	}
	b.emptyAgent(ctx, "latency")
	return nil
}

// emptyAgent removes the run's services from the Consul agent before the
// next measurement (the latency curve, or its next step). The local agent
// is one -dev agent holding every simulated node's service, and its
// registration cost grows with the services it holds (see the Consul
// ceiling); in a deployment each node registers with its own agent. So
// each latency step starts from an agent without the run's services,
// instead of one made slower by the phases and steps before it (after the
// registration run, thousands).
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
// saw ACTIVE are there: Consul services of the run's environment, and
// active projection rows of the run's registered nodes.
func (b *bench) verify(ctx context.Context) error {
	var seen []string
	for _, id := range b.ids[len(b.seeded):] {
		if tl, ok := b.tracker.Get(id); ok && !tl.Active().IsZero() {
			seen = append(seen, id.String())
		}
	}
	svcs, err := b.consul.Agent().ServicesWithFilterOpts(fmt.Sprintf("Meta[%q] == %q", "onex-env", b.env), (&api.QueryOptions{}).WithContext(ctx))
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
