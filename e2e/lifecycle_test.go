package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

func introspections(t *testing.T, key string) []*registration.IntrospectionEvent {
	t.Helper()
	var out []*registration.IntrospectionEvent
	for _, r := range rec.Records(topics.NodeIntrospection, key) {
		env, err := envelope.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := envelope.DecodePayload(env, registration.DecodeIntrospectionEvent)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// waitAnswer waits for an introspection of key answering correlation.
func waitAnswer(t *testing.T, key string, correlation uuid.UUID) {
	t.Helper()
	err := harness.Eventually(context.Background(), 30*time.Second, func(context.Context) error {
		for _, ev := range introspections(t, key) {
			if ev.Reason == registration.ReasonRequest && ev.CorrelationID == correlation {
				return nil
			}
		}
		return fmt.Errorf("no introspection of %s answering %s", key, correlation)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Suite 3 — re-introspection: a raw REQUEST_INTROSPECTION on the request
// topic makes every node answer with a fresh introspection carrying the
// request's correlation id; the orchestrator asks on every start.
func TestSuite3_ReIntrospection(t *testing.T) {
	ns := startNodes(t, heartbeat)
	a, b := identity(registration.NodeKindEffect, "e2e_reintro_a"), identity(registration.NodeKindCompute, "e2e_reintro_b")
	ns.add(a, node.Options{})
	ns.add(b, node.Options{})
	waitRegistered(t, 60*time.Second, ids(a, b)...)

	cfg, err := bus.NewConfig(bus.Options{Brokers: servers.KafkaBrokers, ClientID: "e2e-request"})
	if err != nil {
		t.Fatal(err)
	}
	harness.NamespaceProducers(cfg)
	p, err := sarama.NewSyncProducer(servers.KafkaBrokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	corr := uuid.New()
	raw := fmt.Sprintf(`{"event_type": "REQUEST_INTROSPECTION", "correlation_id": "%s", "timestamp": "%s", "reason": "e2e"}`,
		corr, time.Now().UTC().Format(time.RFC3339Nano))
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topics.RequestIntrospection, Value: sarama.StringEncoder(raw)}); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, a.NodeID.String(), corr)
	waitAnswer(t, b.NodeID.String(), corr)

	// A targeted request: only b answers.
	corr2 := uuid.New()
	raw = fmt.Sprintf(`{"event_type": "REQUEST_INTROSPECTION", "correlation_id": "%s", "target_node_id": "%s"}`, corr2, b.NodeID)
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topics.RequestIntrospection, Value: sarama.StringEncoder(raw)}); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, b.NodeID.String(), corr2)
	for _, ev := range introspections(t, a.NodeID.String()) {
		if ev.CorrelationID == corr2 {
			t.Error("node a answered a request addressed to node b")
		}
	}

	// The orchestrator's start-up request reaches the running nodes.
	n := len(introspections(t, a.NodeID.String()))
	if err := fleet.Stop("registration-orchestrator"); err != nil {
		t.Fatal(err)
	}
	if err := fleet.Start("registration-orchestrator"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := fleet.WaitReady(ctx, "registration-orchestrator"); err != nil {
		t.Fatal(err)
	}
	err = harness.Eventually(context.Background(), 30*time.Second, func(context.Context) error {
		evs := introspections(t, a.NodeID.String())
		for _, ev := range evs[n:] {
			if ev.Reason == registration.ReasonRequest {
				return nil
			}
		}
		return fmt.Errorf("no answer to the orchestrator's start-up request yet")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Suite 4 — heartbeats: a node heartbeats at its interval with the spec's
// fields, and each heartbeat moves the projection's liveness forward.
func TestSuite4_Heartbeats(t *testing.T) {
	ns := startNodes(t, time.Second)
	id := identity(registration.NodeKindReducer, "e2e_heartbeat")
	key := id.NodeID.String()
	ns.add(id, node.Options{})
	waitRegistered(t, 60*time.Second, key)
	rows, err := db.Rows(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	firstRow := rows[key]
	waitCount(t, topics.NodeHeartbeat, key, 5)

	beats := rec.Records(topics.NodeHeartbeat, key)
	var stamps []time.Time
	for _, r := range beats {
		env, err := envelope.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		hb, err := envelope.DecodePayload(env, registration.DecodeHeartbeatEvent)
		if err != nil {
			t.Fatalf("heartbeat does not decode as the Python model: %v", err)
		}
		if hb.NodeID != id.NodeID || hb.NodeType != id.Type || hb.UptimeSeconds < 0 || hb.ActiveOperationsCount < 0 {
			t.Errorf("heartbeat %+v", hb)
		}
		stamps = append(stamps, hb.Timestamp.Time)
	}
	avg := stamps[len(stamps)-1].Sub(stamps[0]) / time.Duration(len(stamps)-1)
	if avg < 800*time.Millisecond || avg > 1300*time.Millisecond {
		t.Errorf("average heartbeat interval %s, want about 1s", avg)
	}
	err = harness.Eventually(context.Background(), 30*time.Second, func(ctx context.Context) error {
		rows, err := db.Rows(ctx, key)
		if err != nil {
			return err
		}
		r := rows[key]
		if r.LastHeartbeatAt == nil || r.LivenessDL == nil {
			return fmt.Errorf("no heartbeat in the projection: %+v", r)
		}
		if firstRow.LivenessDL != nil && !r.LivenessDL.After(*firstRow.LivenessDL) {
			return fmt.Errorf("liveness deadline %s did not move past %s", r.LivenessDL, firstRow.LivenessDL)
		}
		if got := r.LivenessDL.Sub(*r.LastHeartbeatAt); got != livenessWindow {
			return fmt.Errorf("liveness deadline is last heartbeat + %s, want + %s", got, livenessWindow)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Suite 5 — recovery after restart: kill -9 every service, start them
// again: the projection is intact, registered nodes stay ACTIVE without a
// single new lifecycle event, and new nodes register as before.
func TestSuite5_RecoveryAfterRestart(t *testing.T) {
	ns := startNodes(t, heartbeat)
	old := identity(registration.NodeKindOrchestrator, "e2e_recovery")
	key := old.NodeID.String()
	ns.add(old, node.Options{})
	waitRegistered(t, 60*time.Second, key)
	waitEvents(t, key, map[string]int{topics.NodeBecameActive: 1})
	rows, err := db.Rows(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	before := rows[key]
	events := countEvents(key)
	killed := time.Now()

	for _, s := range harness.Services {
		if err := fleet.Kill(s); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := fleet.StartAll(ctx); err != nil {
		t.Fatal(err)
	}

	fresh := identity(registration.NodeKindEffect, "e2e_after_restart")
	ns.add(fresh, node.Options{})
	waitRegistered(t, 60*time.Second, key, fresh.NodeID.String())
	// Heartbeats of the old node keep flowing through the restarted fleet.
	err = harness.Eventually(context.Background(), 30*time.Second, func(ctx context.Context) error {
		rows, err := db.Rows(ctx, key)
		if err != nil {
			return err
		}
		r := rows[key]
		if r.State != "active" || r.RegisteredAt != before.RegisteredAt || r.NodeVersion != "1.0.0" || r.NodeType != "orchestrator" {
			return fmt.Errorf("row after restart %+v, before %+v", r, before)
		}
		if r.LastHeartbeatAt == nil || before.LastHeartbeatAt != nil && !r.LastHeartbeatAt.After(*before.LastHeartbeatAt) {
			return fmt.Errorf("no heartbeat applied since the restart")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after := countEvents(key)
	for _, topic := range []string{topics.NodeRegistrationInitiated, topics.NodeRegistrationAckReceived,
		topics.NodeBecameActive, topics.NodeLivenessExpired, topics.NodeRegistrationAckTimedOut} {
		if after[topic] != events[topic] {
			t.Errorf("%s events of a registered node went %d -> %d across the restart", shortTopic(topic), events[topic], after[topic])
		}
	}
	// Accepted events: copies re-sent before the ack may be recorded late,
	// none may be emitted after the restart.
	noAcceptedSince(t, key, 1, killed)
}

// Suite 8 — self-registration: the fleet's own four services are ONEX
// nodes in the registry, ACTIVE in PostgreSQL and in Consul; the
// orchestrator (the registry) with health and api endpoints and its
// handler capabilities.
func TestSuite8_SelfRegistration(t *testing.T) {
	want := map[string]string{
		"node_registration_orchestrator":     "orchestrator",
		"node_registration_reducer":          "reducer",
		"node_registration_projector_effect": "effect",
		"node_registration_consul_effect":    "effect",
	}
	var found map[string]harness.Row
	err := harness.Eventually(context.Background(), 90*time.Second, func(ctx context.Context) error {
		rows, err := db.Rows(ctx)
		if err != nil {
			return err
		}
		found = map[string]harness.Row{}
		for _, r := range rows {
			if r.NodeName != nil && want[*r.NodeName] != "" && r.State == "active" {
				found[*r.NodeName] = r
			}
		}
		if len(found) != len(want) {
			return fmt.Errorf("active fleet services in the registry: %d of %d", len(found), len(want))
		}
		svcs, err := harness.ConsulServices(servers.ConsulAddr)
		if err != nil {
			return err
		}
		for name, r := range found {
			if _, ok := svcs[r.NodeID]; !ok {
				return fmt.Errorf("%s not in Consul", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, kind := range want {
		if found[name].NodeType != kind {
			t.Errorf("%s registered as %s, want %s", name, found[name].NodeType, kind)
		}
	}
	orch := found["node_registration_orchestrator"]
	if orch.Endpoints["health"] == "" || orch.Endpoints["api"] == "" {
		t.Errorf("registry endpoints %v, want health and api", orch.Endpoints)
	}
	if orch.Capabilities["processing"] != true || orch.Capabilities["routing"] != true {
		t.Errorf("registry capabilities %v, want processing and routing", orch.Capabilities)
	}
	if st, ok := orch.Capabilities["supported_types"].([]any); !ok || len(st) != 3 {
		t.Errorf("registry supported_types %v, want its three handlers", orch.Capabilities["supported_types"])
	}
	// Its health endpoint is real.
	if err := harness.Eventually(context.Background(), 5*time.Second, func(ctx context.Context) error {
		return httpOK(ctx, orch.Endpoints["health"])
	}); err != nil {
		t.Error(err)
	}
}
