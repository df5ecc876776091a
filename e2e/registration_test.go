package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Suite 1 — node startup and introspection: every node type publishes its
// introspection on start, with its id, type and custom endpoints, and the
// endpoints survive into the registry.
func TestSuite1_IntrospectionOnStartupForEveryNodeType(t *testing.T) {
	ns := startNodes(t, heartbeat)
	var idents []node.Identity
	for _, kind := range []registration.NodeKind{registration.NodeKindEffect, registration.NodeKindCompute,
		registration.NodeKindReducer, registration.NodeKindOrchestrator} {
		id := identity(kind, "e2e_"+string(kind))
		id.Endpoints["metrics"] = "http://127.0.0.1:9/custom/metrics"
		id.Endpoints["custom"] = "https://example.invalid:8443/x"
		ns.add(id, node.Options{})
		idents = append(idents, id)
	}
	waitRegistered(t, 60*time.Second, ids(idents...)...)

	rows, err := db.Rows(context.Background(), ids(idents...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range idents {
		intros := rec.Records(topics.NodeIntrospection, id.NodeID.String())
		if len(intros) == 0 {
			t.Fatalf("no introspection of %s on %s", id.NodeID, topics.NodeIntrospection)
		}
		env, err := envelope.Decode(intros[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := envelope.DecodePayload(env, registration.DecodeIntrospectionEvent)
		if err != nil {
			t.Fatalf("introspection does not decode as the Python model: %v", err)
		}
		if ev.NodeID != id.NodeID || ev.NodeType != id.Type || ev.Reason != registration.ReasonStartup || ev.Endpoints["custom"] != id.Endpoints["custom"] {
			t.Errorf("introspection of %s: %+v", id.Type, ev)
		}
		row := rows[id.NodeID.String()]
		if row.NodeType != string(id.Type) || row.NodeName == nil || *row.NodeName != id.Name || row.NodeVersion != "1.0.0" {
			t.Errorf("row of %s: %+v", id.Type, row)
		}
		for k, v := range id.Endpoints {
			if row.Endpoints[k] != v {
				t.Errorf("row of %s: endpoint %s = %q, want %q", id.Type, k, row.Endpoints[k], v)
			}
		}
	}
}

// Suite 2 — registry dual registration: one introspection leads to the
// PostgreSQL row and the Consul service, the two-way lifecycle events once
// each (the accepted event once or more: it is re-sent until the ack
// arrives, every copy of the attempt alike), and a success result naming
// both backends. An introspection of an ACTIVE node changes nothing; after
// liveness expiry (a retriable state) a new introspection registers the
// node again with Initiated first.
func TestSuite2_DualRegistration(t *testing.T) {
	ns := startNodes(t, heartbeat)
	id := identity(registration.NodeKindEffect, "e2e_dual")
	ns.add(id, node.Options{})
	key := id.NodeID.String()
	waitRegistered(t, 60*time.Second, key)

	svcs, err := harness.ConsulServices(servers.ConsulAddr)
	if err != nil {
		t.Fatal(err)
	}
	svc := svcs[key]
	if svc.ID != "onex-effect-"+key || svc.Meta["onex-node-type"] != "effect" {
		t.Errorf("consul service %+v", svc)
	}

	want := []string{topics.NodeRegistrationInitiated, topics.NodeRegistrationAccepted, topics.NodeRegistrationAckReceived, topics.NodeBecameActive}
	waitEvents(t, key, map[string]int{want[0]: 1, want[1]: 1, want[2]: 1, want[3]: 1})
	result := waitResult(t, key, func(r pipeline.RegistrationResult) bool { return r.Status == "success" })
	if !result.PostgresApplied || !result.ConsulApplied {
		t.Errorf("success result without both backends applied: %+v", result)
	}

	// Introspecting again while ACTIVE is a no-op: no new lifecycle event.
	before := countEvents(key)
	sent := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ns.fleet.Introspect(ctx, id.NodeID, registration.ReasonStartup, uuid.New()); err != nil {
		t.Fatal(err)
	}
	waitCount(t, topics.NodeIntrospection, key, before[topics.NodeIntrospection]+1)
	time.Sleep(3 * time.Second)
	after := countEvents(key)
	for _, topic := range want {
		if topic == topics.NodeRegistrationAccepted {
			continue // a copy re-sent before the ack may be recorded late: checked by time below
		}
		if after[topic] != before[topic] {
			t.Errorf("re-introspection of an ACTIVE node emitted %s (%d -> %d)", shortTopic(topic), before[topic], after[topic])
		}
	}
	noAcceptedSince(t, key, 1, sent)

	// The node dies: after the liveness window it expires, leaves Consul,
	// and its next introspection registers it again.
	ns.stop()
	err = harness.Eventually(context.Background(), livenessWindow+30*time.Second, func(ctx context.Context) error {
		rows, err := db.Rows(ctx, key)
		if err != nil {
			return err
		}
		if rows[key].State != "liveness_expired" {
			return fmt.Errorf("state %s", rows[key].State)
		}
		svcs, err := harness.ConsulServices(servers.ConsulAddr)
		if err != nil {
			return err
		}
		if _, ok := svcs[key]; ok {
			return fmt.Errorf("still in Consul")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("expiry: %v", err)
	}
	if n := countEvents(key)[topics.NodeLivenessExpired]; n != 1 {
		t.Errorf("%d liveness-expired events, want 1", n)
	}
	again := startNodes(t, heartbeat)
	again.add(id, node.Options{})
	waitRegistered(t, 60*time.Second, key)
	// Spec 10.5 suite 2: a retriable state re-registers, Initiated and
	// Accepted again (here the second of each), then the ack path.
	waitEvents(t, key, map[string]int{
		topics.NodeRegistrationInitiated: 2, topics.NodeRegistrationAccepted: 2,
		topics.NodeRegistrationAckReceived: 2, topics.NodeBecameActive: 2, topics.NodeLivenessExpired: 1,
	})
}

// Suite 6 — many nodes: ten concurrent introspections of one node give one
// ACTIVE row and one registration; two hundred nodes at once all register
// in both backends.
func TestSuite6_ConcurrentIntrospectionAndManyNodes(t *testing.T) {
	ns := startNodes(t, heartbeat)
	id := identity(registration.NodeKindCompute, "e2e_race")
	key := id.NodeID.String()
	ns.add(id, node.Options{})

	cfg, err := bus.NewConfig(bus.Options{Brokers: servers.KafkaBrokers, ClientID: "e2e-race"})
	if err != nil {
		t.Fatal(err)
	}
	harness.NamespaceProducers(cfg)
	p, err := sarama.NewSyncProducer(servers.KafkaBrokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	enc := &node.Encoder{Source: "e2e"}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := enc.Introspection(id.Introspection(registration.ReasonStartup, uuid.New(), time.Now()))
			if err != nil {
				t.Error(err)
				return
			}
			m := r.ProducerMessage()
			m.Key = nil // unkeyed, as a Python node sends it: ordering is the orchestrator's job
			if _, _, err := p.SendMessage(m); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	waitRegistered(t, 60*time.Second, key)
	time.Sleep(3 * time.Second)
	c := countEvents(key)
	for _, topic := range []string{topics.NodeRegistrationInitiated, topics.NodeBecameActive} {
		if c[topic] != 1 {
			t.Errorf("%d %s events for 11 concurrent introspections, want 1", c[topic], shortTopic(topic))
		}
	}
	if a := acceptedAttempts(t, key); len(a) != 1 {
		t.Errorf("accepted events of %d registration attempts for 11 concurrent introspections, want 1: %+v", len(a), a)
	}
	rows, err := db.Rows(context.Background(), key)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v %v", rows, err)
	}

	var many []node.Identity
	for i := 0; i < 200; i++ {
		many = append(many, identity(registration.NodeKindEffect, fmt.Sprintf("e2e_many_%d", i)))
	}
	for _, m := range many {
		m := m
		wg.Add(1)
		go func() { defer wg.Done(); ns.add(m, node.Options{}) }()
	}
	wg.Wait()
	waitRegistered(t, 120*time.Second, ids(many...)...)
}

// waitEvents waits until node has exactly the given number of events on
// each topic (order across topics is not observable: they are different
// partitions of different topics). On the accepted topic the number is of
// registration attempts: the reducer re-sends an attempt's accepted event
// until the node's ack reaches it, so each attempt has one copy or more,
// all with the attempt's correlation id and ack deadline.
func waitEvents(t *testing.T, key string, want map[string]int) {
	t.Helper()
	err := harness.Eventually(context.Background(), 30*time.Second, func(context.Context) error {
		got := countEvents(key)
		for topic, n := range want {
			if topic == topics.NodeRegistrationAccepted {
				a, err := harness.AcceptedAttempts(rec.Records(topic, key))
				if err != nil {
					return err
				}
				if len(a) != n {
					return fmt.Errorf("accepted events of %d registration attempts (%d events), want %d (all: %v)", len(a), got[topic], n, got)
				}
				continue
			}
			if got[topic] != n {
				return fmt.Errorf("%d %s events, want %d (all: %v)", got[topic], shortTopic(topic), n, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// acceptedAttempts returns the registration attempts of node that its
// accepted events show (harness.AcceptedAttempts), failing the test on an
// accepted event that is not the bare model or disagrees with its attempt.
func acceptedAttempts(t *testing.T, key string) []harness.AcceptedAttempt {
	t.Helper()
	a, err := harness.AcceptedAttempts(rec.Records(topics.NodeRegistrationAccepted, key))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// noAcceptedSince checks that node's accepted events are of attempts
// attempts and none was emitted at or after since: copies re-sent earlier
// may be recorded later, none may be new.
func noAcceptedSince(t *testing.T, key string, attempts int, since time.Time) {
	t.Helper()
	a := acceptedAttempts(t, key)
	if len(a) != attempts {
		t.Errorf("accepted events of %d registration attempts, want %d: %+v", len(a), attempts, a)
	}
	for _, at := range a {
		if !at.Last.Before(since) {
			t.Errorf("accepted event of attempt %s emitted at %s, after %s", at.CorrelationID, at.Last, since)
		}
	}
}

func waitCount(t *testing.T, topic, key string, n int) {
	t.Helper()
	err := harness.Eventually(context.Background(), 30*time.Second, func(context.Context) error {
		if got := len(rec.Records(topic, key)); got < n {
			return fmt.Errorf("%d records of %s on %s, want %d", got, key, topic, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// results decodes the node's registration results in order.
func results(t *testing.T, key string) []pipeline.RegistrationResult {
	t.Helper()
	var out []pipeline.RegistrationResult
	for _, r := range rec.Records(topics.NodeRegistrationResult, key) {
		var res pipeline.RegistrationResult
		if _, err := r.Envelope(&res); err != nil {
			t.Fatalf("result does not decode: %v", err)
		}
		out = append(out, res)
	}
	return out
}

// waitResult waits for a registration result of node that satisfies ok.
func waitResult(t *testing.T, key string, ok func(pipeline.RegistrationResult) bool) pipeline.RegistrationResult {
	t.Helper()
	var found pipeline.RegistrationResult
	err := harness.Eventually(context.Background(), 60*time.Second, func(context.Context) error {
		rs := results(t, key)
		for _, r := range rs {
			if ok(r) {
				found = r
				return nil
			}
		}
		return fmt.Errorf("results so far %+v", rs)
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
