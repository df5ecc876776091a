package run

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/bench/internal/ceiling"
	"github.com/omninode/onex-fleet/bench/internal/consulagent"
	"github.com/omninode/onex-fleet/bench/internal/procs"
	"github.com/omninode/onex-fleet/bench/internal/profiles"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/node/sim"
)

// Ceiling ids, as the table names them.
const (
	ceilKafka = "kafka"
	ceilPG    = "postgres"
	// ceilConsulCatalog: Consul's catalog API with 10,000 services held,
	// the way the fleet registers (catalog mode).
	ceilConsulCatalog = "consul-catalog-10k"
	// ceilConsulAgent: Consul's agent API into an agent holding 10,000
	// services of its own, the agent mode's way.
	ceilConsulAgent = "consul-agent-10k"
)

// ceilings measures the raw Kafka and Consul rates (the PostgreSQL one is
// measured while seeding, see reducerPhase; the catalog API's with
// 10,000 held right before the registration run, see registrationPhase).
func (b *bench) ceilings(ctx context.Context) error {
	d := time.Duration(b.s.CeilingSeconds) * time.Second
	return b.measure(ctx, "ceilings", -1, func(ctx context.Context) error {
		// The message is a real heartbeat record (value and headers) of a
		// simulated node: what the fleet moves most of.
		plan := sim.Plan(sim.Options{Nodes: 1, Seed: b.env + "/sample"}, "")
		rec, err := (&node.Encoder{Source: b.env}).Heartbeat(&plan[0].Identity, time.Minute, node.Load{})
		if err != nil {
			return err
		}
		topic := "onex.evt." + b.env + ".bench-ceiling.v1"
		k, err := ceiling.Kafka(ctx, b.s.Brokers, topic, 6, rec.Value, rec.Headers, d)
		if err != nil {
			return err
		}
		b.kafka = k.Rate.PerSecond()
		b.res.Detail("ceiling_kafka_msgs_per_s", b.kafka)
		b.res.Detail("ceiling_kafka_message_bytes", float64(k.MessageBytes))
		b.res.Detail("kafka_acked_produce_round_trip_ms_p50", k.RoundTrip.P50)
		b.res.Detail("kafka_acked_produce_round_trip_ms_p99", k.RoundTrip.P99)
		b.log.Info("bench: kafka ceiling", "msgs_per_s", int(b.kafka), "message_bytes", k.MessageBytes, "round_trip_p50_ms", k.RoundTrip.P50)

		r, err := b.catalogCeiling(ctx, 0, d, "")
		if err != nil {
			return err
		}
		b.catalogEmpty = r
		b.res.Detail("ceiling_consul_catalog_per_s_empty_agent", r)
		a, err := b.agentCeiling(ctx, d)
		if err != nil {
			return err
		}
		b.agent10k = a
		b.res.Detail("ceiling_consul_agent_per_s_10k", a)
		b.res.Detail("ceiling_consul_agent_per_s_10k_before", a)
		return nil
	})
}

// catalogCeiling measures raw catalog registrations into the fleet's
// agent for d (counting those after warm) and removes what it registered.
// The services have the catalog mode's shape: an external node each, the
// service, its liveness check (no HTTP check: see docs/performance.md).
// With a phase name it also profiles the agent meanwhile (a -dev agent
// serves /debug/pprof), into that phase's profiles.
func (b *bench) catalogCeiling(ctx context.Context, warm, d time.Duration, phase string) (float64, error) {
	before, err := b.onexServices(ctx)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	if phase != "" && b.s.ProfileSeconds > 0 {
		wg.Go(func() { b.profileConsul(ctx, phase, warm) })
	}
	defer wg.Wait()
	r, nodes, err := ceiling.ConsulCatalog(ctx, b.consul, 8, warm, d, b.env+"-ceiling")
	if err != nil {
		return 0, err
	}
	if err := ceiling.DeleteCatalogNodes(ctx, b.consul, nodes); err != nil {
		b.log.Warn("bench: consul catalog ceiling clean-up", "error", err)
	}
	b.log.Info("bench: consul catalog ceiling", "registrations_per_s", int(r.PerSecond()), "services_held", before)
	return r.PerSecond(), nil
}

// agentCeiling measures raw agent API registrations for d into an agent of
// its own that already holds HeldServices services of the agent mode's
// shape (an agent's cost per registration grows with the services it
// holds), removes what it registered, and pauses that agent for the
// second measurement after the fleet's registration run
// (agentCeilingAfter), which stops it.
func (b *bench) agentCeiling(ctx context.Context, d time.Duration) (float64, error) {
	bin, err := consulagent.Bin()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	agent, err := consulagent.Start(ctx, bin, filepath.Join(b.s.LogDir, b.env), "agent-ceiling")
	if err != nil {
		return 0, err
	}
	keep := false
	defer func() {
		if !keep {
			agent.Stop()
		}
	}()
	client, err := ceiling.NewConsulClient(agent.Addr, 16)
	if err != nil {
		return 0, err
	}
	if err := ceiling.FillAgent(ctx, client, 8, b.s.HeldServices, b.env+"-held"); err != nil {
		return 0, err
	}
	b.log.Info("bench: agent holding its services", "services", b.s.HeldServices, "took", time.Since(t0).Round(time.Millisecond))
	r, err := b.agentRate(ctx, client, d, b.env+"-ceiling")
	if err != nil {
		return 0, err
	}
	if err := agent.Pause(); err != nil {
		b.log.Warn("bench: pausing the agent API ceiling's agent; it is measured once", "error", err)
	} else {
		keep = true
		b.heldAgent, b.heldAgentClient = agent, client
	}
	b.log.Info("bench: consul agent API ceiling", "registrations_per_s", int(r), "services_held", b.s.HeldServices)
	return r, nil
}

// agentRate registers into the agent API for d and deregisters what it
// registered, so a later measurement starts from the same HeldServices.
func (b *bench) agentRate(ctx context.Context, client *api.Client, d time.Duration, env string) (float64, error) {
	r, ids, err := ceiling.Consul(ctx, client, 8, 0, d, env, func(uuid.UUID) string { return "" })
	if err != nil {
		return 0, err
	}
	if _, err := ceiling.ConsulDeregister(ctx, client, 8, ids); err != nil {
		return 0, fmt.Errorf("remove the agent API ceiling's services: %w", err)
	}
	return r.PerSecond(), nil
}

// agentCeilingAfter measures the agent API's ceiling a second time, on the
// agent of the ceilings phase (paused since, so it cost nothing in
// between), right after the fleet's registration run, and makes the
// figure's agent ceiling the mean of the two: the same bracketing as the
// catalog ceiling's (docs/performance.md), for the same reason. It stops
// that agent. Without the ceilings phase there is nothing to measure.
func (b *bench) agentCeilingAfter(ctx context.Context) (before, after float64, ok bool) {
	if b.heldAgent == nil {
		return 0, 0, false
	}
	agent, client := b.heldAgent, b.heldAgentClient
	b.heldAgent, b.heldAgentClient = nil, nil
	defer agent.Stop()
	err := b.measure(ctx, "consul-agent-ceiling-after", -1, func(ctx context.Context) error {
		if err := agent.Resume(); err != nil {
			return err
		}
		if err := agent.Leader(ctx, 30*time.Second); err != nil {
			return err
		}
		// The timers that came due while it was paused (its anti-entropy
		// sync over everything it holds among them) fire at once: let
		// them run before the window, not in it.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(3 * time.Second):
		}
		var err error
		after, err = b.agentRate(ctx, client, time.Duration(b.s.CeilingSeconds)*time.Second, b.env+"-ceiling-after")
		return err
	})
	if err != nil {
		b.res.Note("the agent API ceiling after the registration run was not measured: %v", err)
		return 0, 0, false
	}
	before = b.agent10k
	b.agent10k = (before + after) / 2
	b.res.Detail("ceiling_consul_agent_per_s_10k_after", after)
	b.res.Detail("ceiling_consul_agent_per_s_10k", b.agent10k)
	b.log.Info("bench: consul agent API ceiling after", "registrations_per_s", int(after), "before", int(before), "mean", int(b.agent10k))
	return before, after, true
}

// onexServices counts the onex-tagged services in the fleet agent's
// catalog.
func (b *bench) onexServices(ctx context.Context) (int, error) {
	nodes, err := b.catalogNodes(ctx, "")
	return len(nodes), err
}

// catalogNodes returns the external catalog nodes holding the onex-tagged
// services of environment env (every environment when env is empty), one
// per service. Agents' nodes are never returned: deleting one would take
// the agent out of the catalog.
func (b *bench) catalogNodes(ctx context.Context, env string) ([]string, error) {
	q := func() *api.QueryOptions { return (&api.QueryOptions{}).WithContext(ctx) }
	names, _, err := b.consul.Catalog().Services(q())
	if err != nil {
		return nil, fmt.Errorf("consul: list services: %w", err)
	}
	var out []string
	for name, tags := range names {
		if !slices.Contains(tags, "onex") {
			continue
		}
		opts := q()
		opts.Filter = fmt.Sprintf("NodeMeta[%q] == %q", "external-node", "true")
		if env != "" {
			opts.Filter += fmt.Sprintf(" and ServiceMeta[%q] == %q", "onex-env", env)
		}
		svcs, _, err := b.consul.Catalog().Service(name, "onex", opts)
		if err != nil {
			return nil, fmt.Errorf("consul: list %s: %w", name, err)
		}
		for _, s := range svcs {
			out = append(out, s.Node)
		}
	}
	return out, nil
}

// profileConsul takes a CPU profile of the Consul agent after `after` and
// adds its summary to phase's profiles (recorded when the phase ends).
func (b *bench) profileConsul(ctx context.Context, phase string, after time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(after):
	}
	addr := b.s.ConsulAddr
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	svc := &procs.Service{Name: "consul", HTTPAddr: strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")}
	path := filepath.Join(b.s.ResultsDir, "profiles", phase+"-consul.pprof")
	if err := svc.CPUProfile(ctx, b.s.ProfileSeconds, path); err != nil {
		b.log.Warn("bench: consul profile (a -dev agent serves /debug/pprof)", "error", err)
		return
	}
	sum, err := profiles.Summarize(path, 12)
	if err != nil {
		b.log.Warn("bench: consul profile", "error", err)
		return
	}
	b.extraMu.Lock()
	if b.extraProfiles == nil {
		b.extraProfiles = map[string]map[string]profiles.Summary{}
	}
	if b.extraProfiles[phase] == nil {
		b.extraProfiles[phase] = map[string]profiles.Summary{}
	}
	b.extraProfiles[phase]["consul"] = sum
	b.extraMu.Unlock()
}
