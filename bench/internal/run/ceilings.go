package run

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/bench/internal/ceiling"
	"github.com/omninode/onex-fleet/bench/internal/procs"
	"github.com/omninode/onex-fleet/bench/internal/profiles"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/node/sim"
)

// Ceiling ids, as the table names them.
const (
	ceilKafka  = "kafka"
	ceilPG     = "postgres"
	ceilConsul = "consul"
)

// ceilings measures the raw Kafka and Consul rates (the PostgreSQL one is
// measured while seeding, see reducerPhase).
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

		r, err := b.consulCeiling(ctx, 0, d, "")
		if err != nil {
			return err
		}
		b.consulEmpty = r
		b.res.Detail("ceiling_consul_registrations_per_s_empty_agent", r)
		return nil
	})
}

// consulCeiling measures raw registrations for d (counting those after
// warm) and removes what it registered. The services have no HTTP check,
// like the benchmark's nodes (see docs/performance.md for why). With a
// phase name it also profiles the agent meanwhile (a -dev agent serves
// /debug/pprof), into that phase's profiles.
func (b *bench) consulCeiling(ctx context.Context, warm, d time.Duration, phase string) (float64, error) {
	before, err := b.agentServices(ctx)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	if phase != "" && b.s.ProfileSeconds > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.profileConsul(ctx, phase, warm)
		}()
	}
	defer wg.Wait()
	r, ids, err := ceiling.Consul(ctx, b.consul, 8, warm, d, b.env+"-ceiling", func(uuid.UUID) string { return "" })
	if err != nil {
		return 0, err
	}
	if _, err := ceiling.ConsulDeregister(ctx, b.consul, 8, ids); err != nil {
		b.log.Warn("bench: consul ceiling clean-up", "error", err)
	}
	b.log.Info("bench: consul ceiling", "registrations_per_s", int(r.PerSecond()), "services_in_agent", before)
	return r.PerSecond(), nil
}

// agentServices counts the services the agent holds.
func (b *bench) agentServices(ctx context.Context) (int, error) {
	m, err := b.consul.Agent().ServicesWithFilterOpts("", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("consul: list services: %w", err)
	}
	return len(m), nil
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
