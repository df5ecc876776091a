package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	consul "github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Suite 10 — an ACTIVE node's later introspections (docs/reducer.md,
// "Restarts, updates and shutdowns" and "Declared capabilities and
// topics"): updates in place in any order, MCP discovery from the
// projection, rejection of runtime_host nodes, a restart while the registry
// awaits the ack, a shutdown and the registration after it.

const (
	// updNodes nodes get updSteps introspections each after they are ACTIVE.
	updNodes = 100
	updSteps = 10
	// updDupShare of the shuffled stream's records are published twice.
	updDupShare = 0.2
)

// updateStep is one introspection of a node's update stream: what the node
// declares then, why, and when (the payload timestamp orders the stream).
type updateStep struct {
	id     node.Identity // its NodeID is ignored: encodeStep names the node
	reason registration.IntrospectionReason
	at     time.Time
	corr   uuid.UUID
}

// Suite 10 — 1,000 updates of 100 ACTIVE nodes, published shuffled across
// nodes and within each node, unkeyed as Python nodes publish them, a fifth
// of them twice, end with every node's row and Consul service equal to
// what its last introspection (by payload timestamp) declares: version,
// endpoints (the Consul address and port come from the health URL),
// declared capabilities, contract, capability tags with the derived ones,
// topics. A twin set of 100 nodes gets the same updates keyed and in order;
// its rows and services must be the shuffled set's but for the node id,
// which also compares what the expectation does not model (the Consul
// check digest, the capabilities' JSON, the extras). No update starts a
// registration (no lifecycle event, registered_at kept) and nothing is
// dead-lettered. Stale copies published after the fleet settled change
// nothing, and introspections identical to the last one write nothing.
func TestSuite10_ShuffledUpdates(t *testing.T) {
	ctx := context.Background()
	seed := updatesSeed(t)
	r := rand.New(rand.NewPCG(seed, seed^0x5eed5eed))
	dlq := recordFromEnd(t, dlqTopics...)
	ns := startNodes(t, heartbeat)

	kinds := []registration.NodeKind{registration.NodeKindEffect, registration.NodeKindCompute,
		registration.NodeKindReducer, registration.NodeKindOrchestrator}
	shuffled := make([]node.Identity, updNodes) // set A: the shuffled stream
	ordered := make([]node.Identity, updNodes)  // set B: the same stream in order
	for i := range updNodes {
		base := node.Identity{
			Name: fmt.Sprintf("e2e_update_%02d", i), Type: kinds[i%len(kinds)], Version: envelope.SemVer{Major: 1},
			Endpoints: map[string]string{"health": fmt.Sprintf("http://127.10.%d.0:40999/health", i)},
		}
		shuffled[i], ordered[i] = base, base
		shuffled[i].NodeID, ordered[i].NodeID = uuid.New(), uuid.New()
	}
	all := append(slices.Clone(shuffled), ordered...)
	registering := time.Now()
	addNodes(t, ns, all)
	waitRegistered(t, 120*time.Second, ids(all...)...)
	t.Logf("%d nodes ACTIVE in PostgreSQL and Consul in %s", len(all), time.Since(registering).Round(time.Millisecond))
	registered, err := db.DeclaredRows(ctx, ids(all...)...)
	if err != nil {
		t.Fatal(err)
	}

	// The stream is stamped from a minute ahead (ingress accepts up to
	// 300 s of skew): an introspection a test node itself publishes
	// meanwhile (it answers any re-introspection request with what it
	// declared at start) is then older than every update and stale, so
	// only the test's stream decides the final state.
	start := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	steps := make([][]updateStep, updNodes)
	for i := range updNodes {
		steps[i] = planUpdates(r, i, shuffled[i], start)
	}
	enc := &node.Encoder{Source: "e2e"}
	var inOrder, stream []*sarama.ProducerMessage
	published := make([][]*sarama.ProducerMessage, updNodes) // set A's records by node and step
	for k := range updSteps {
		for i := range updNodes {
			inOrder = append(inOrder, encodeStep(t, enc, ordered[i].NodeID, steps[i][k], true))
		}
	}
	for i := range updNodes {
		for k := range updSteps {
			m := encodeStep(t, enc, shuffled[i].NodeID, steps[i][k], false)
			published[i] = append(published[i], m)
			stream = append(stream, m)
			if r.Float64() < updDupShare {
				stream = append(stream, copyMessage(m))
			}
		}
	}
	r.Shuffle(len(stream), func(a, b int) { stream[a], stream[b] = stream[b], stream[a] })
	late := lateInPublishOrder(stream)

	sent := time.Now()
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); errB = sendAll(inOrder) }()
	go func() { defer wg.Done(); errA = sendAll(stream) }()
	wg.Wait()
	if err := errors.Join(errA, errB); err != nil {
		t.Fatal(err)
	}
	t.Logf("published %d in-order and %d shuffled introspections (%d duplicates; %d published after a later one of their node) in %s",
		len(inOrder), len(stream), len(stream)-updNodes*updSteps, late, time.Since(sent).Round(time.Millisecond))

	check := func(ctx context.Context) error {
		return compareFinal(ctx, shuffled, ordered, steps)
	}
	if err := harness.Eventually(ctx, 90*time.Second, check); err != nil {
		t.Fatalf("registry after the update streams: %v", err)
	}
	t.Logf("every node equals its last introspection %s after the first publish", time.Since(sent).Round(time.Millisecond))

	// Settled is not final: a stale update still in flight could roll a
	// node back. Once the fleet has handled everything published, and again
	// after late copies of earlier updates (one exact duplicate and one
	// re-sent with a new correlation id per node, both older than the
	// node's last), every node must still be at its last introspection.
	drainFleet(t)
	if err := check(ctx); err != nil {
		t.Fatalf("after the fleet handled every update: %v", err)
	}
	var stale []*sarama.ProducerMessage
	for i := range updNodes {
		k := r.IntN(updSteps - 1)
		stale = append(stale, copyMessage(published[i][k]))
		old := steps[i][r.IntN(updSteps-1)]
		old.corr = uuid.New()
		stale = append(stale, encodeStep(t, enc, shuffled[i].NodeID, old, false))
	}
	if err := sendAll(stale); err != nil {
		t.Fatal(err)
	}
	drainFleet(t)
	if err := check(ctx); err != nil {
		t.Fatalf("after %d stale introspections: %v", len(stale), err)
	}

	// An introspection declaring what the node holds writes nothing,
	// whatever its reason (a restart included). The reducer emits an
	// update's projection upsert and Consul register together, so the
	// row's registration_sequence (the sequence of the last upsert; a
	// heartbeat does not move it) staying put shows that neither was
	// emitted. The Consul service's own sequence is not a witness: the
	// consul effect's anti-entropy may rewrite a service from the
	// reducer's snapshots, under a later sequence, at any time.
	before := upsertSequences(t, shuffled)
	var same []*sarama.ProducerMessage
	for i := range updNodes {
		s := steps[i][updSteps-1]
		s.at, s.corr = s.at.Add(time.Second), uuid.New()
		s.reason = []registration.IntrospectionReason{registration.ReasonStartup, registration.ReasonRequest}[i%2]
		same = append(same, encodeStep(t, enc, shuffled[i].NodeID, s, false))
	}
	if err := sendAll(same); err != nil {
		t.Fatal(err)
	}
	drainFleet(t)
	after := upsertSequences(t, shuffled)
	for key, seq := range before {
		if after[key] != seq {
			t.Errorf("node %s: an identical introspection was written: registration_sequence %d -> %d", key, seq, after[key])
		}
	}
	if err := check(ctx); err != nil {
		t.Fatalf("after identical introspections: %v", err)
	}

	// Updates in place are not registrations: no lifecycle event and the
	// first registration's time.
	final, err := db.DeclaredRows(ctx, ids(all...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range all {
		key := id.NodeID.String()
		if got, want := final[key].RegisteredAt, registered[key].RegisteredAt; !got.Equal(want) {
			t.Errorf("node %s: registered_at moved from %s to %s", key, want, got)
		}
		c := countEvents(key)
		for topic, n := range map[string]int{topics.NodeRegistrationInitiated: 1, topics.NodeRegistrationAckReceived: 1,
			topics.NodeBecameActive: 1, topics.NodeLivenessExpired: 0, topics.NodeRegistrationAckTimedOut: 0} {
			if c[topic] != n {
				t.Errorf("node %s: %d %s events after its updates, want %d", key, c[topic], shortTopic(topic), n)
			}
		}
		noAcceptedSince(t, key, 1, sent)
	}
	checkNoDeadLetters(t, dlq, ids(all...))
}

// Suite 10 — MCP discovery from the projection (spec 4.8): an ACTIVE
// orchestrator exposing an MCP tool has mcp-enabled, mcp-tool:<sanitized
// name> and node-type:orchestrator in its row's capability_tags, so the
// spec's query (current_state 'active', capability_tags contain
// mcp-enabled) finds it; an orchestrator that does not expose itself, or
// another node type that says it does, has no MCP tag and is not found.
func TestSuite10_MCPDiscoveryFromProjection(t *testing.T) {
	ctx := context.Background()
	ns := startNodes(t, heartbeat)
	desc := "Billing Workflow / EU"
	cases := []struct {
		name        string
		kind        registration.NodeKind
		mcp         *registration.MCPContractConfig
		description *string
		tags        []string // the contract's capability_tags
		wantTool    string   // "" when the node must not be discoverable
	}{
		{name: "orchestrator exposing a named tool", kind: registration.NodeKindOrchestrator,
			mcp:  &registration.MCPContractConfig{Expose: true, ToolName: ptrTo("E2E Search_Tool (v2)"), TimeoutSeconds: 30},
			tags: []string{"search", "cap.read"}, wantTool: "e2e-search-tool-v2"},
		{name: "orchestrator exposing a tool named by its description", kind: registration.NodeKindOrchestrator,
			mcp: &registration.MCPContractConfig{Expose: true, TimeoutSeconds: 30}, description: &desc, wantTool: "billing-workflow-eu"},
		{name: "orchestrator not exposing", kind: registration.NodeKindOrchestrator,
			mcp: &registration.MCPContractConfig{Expose: false, ToolName: ptrTo("hidden"), TimeoutSeconds: 30}, tags: []string{"cap.read"}},
		{name: "effect saying it exposes", kind: registration.NodeKindEffect,
			mcp: &registration.MCPContractConfig{Expose: true, ToolName: ptrTo("effect tool"), TimeoutSeconds: 30}},
		{name: "effect without MCP", kind: registration.NodeKindEffect, tags: []string{"cap.write"}},
	}
	idents := make([]node.Identity, len(cases))
	for i, c := range cases {
		id := identity(c.kind, fmt.Sprintf("e2e_mcp_%d", i))
		id.Capabilities.MCP = c.mcp
		id.Metadata.Description = c.description
		id.ContractCapabilities = &registration.ContractCapabilities{ContractType: string(c.kind),
			ContractVersion: envelope.SemVer{Major: 1}, CapabilityTags: c.tags}
		idents[i] = id
		ns.add(id, node.Options{})
	}
	waitRegistered(t, 60*time.Second, ids(idents...)...)
	rows, err := db.DeclaredRows(ctx, ids(idents...)...)
	if err != nil {
		t.Fatal(err)
	}
	discovered, err := db.ActiveWithCapabilityTags(ctx, "mcp-enabled")
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := harness.ConsulServices(servers.ConsulAddr)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := idents[i].NodeID.String()
			want := append(slices.Clone(c.tags), "node-type:"+string(c.kind))
			if c.wantTool != "" {
				want = append(want, "mcp-enabled", "mcp-tool:"+c.wantTool)
			}
			slices.Sort(want)
			if got := rows[key].CapabilityTags; !slices.Equal(got, want) {
				t.Errorf("capability_tags %v, want %v", got, want)
			}
			if discovered[key] != (c.wantTool != "") {
				t.Errorf("found by the MCP discovery query: %v, want %v", discovered[key], c.wantTool != "")
			}
			if c.wantTool != "" {
				byTool, err := db.ActiveWithCapabilityTags(ctx, "mcp-enabled", "mcp-tool:"+c.wantTool)
				if err != nil {
					t.Fatal(err)
				}
				if !byTool[key] {
					t.Errorf("not found by its tool tag mcp-tool:%s", c.wantTool)
				}
			}
			s := svcs[key]
			if s == nil {
				t.Fatal("not in Consul")
			}
			if slices.Contains(s.Tags, "mcp-enabled") != (c.wantTool != "") ||
				(c.wantTool != "" && !slices.Contains(s.Tags, "mcp-tool:"+c.wantTool)) {
				t.Errorf("Consul tags %v, want MCP tool %q", s.Tags, c.wantTool)
			}
		})
	}
}

// Suite 10 — a runtime_host node's introspection is valid but cannot be
// registered (the projection holds four node types): the registry answers
// it with a node-registration-rejected event whose payload is the Python
// ModelNodeRegistrationRejected, and writes nothing: no row, no Consul
// service, no dead letter, no registration event. A redelivery of the same
// introspection is answered again; an older one is stale and answered by
// nothing.
func TestSuite10_RuntimeHostRejected(t *testing.T) {
	ctx := context.Background()
	recs := recordFromEnd(t, append([]string{topics.NodeRegistrationRejected}, dlqTopics...)...)
	id := identity(registration.NodeKindRuntimeHost, "e2e_runtime_host")
	key := id.NodeID.String()
	enc := &node.Encoder{Source: "e2e"}
	at := time.Now()
	intro := encodeStep(t, enc, id.NodeID, updateStep{id: id, reason: registration.ReasonStartup, at: at, corr: uuid.New()}, false)
	older := encodeStep(t, enc, id.NodeID, updateStep{id: id, reason: registration.ReasonStartup, at: at.Add(-time.Second), corr: uuid.New()}, false)

	// The redelivery and the older one go together: whichever the fleet
	// sees first, the older one is stale and the redelivery is answered.
	steps := []struct {
		name string
		msgs []*sarama.ProducerMessage
		want int // rejected events of the node so far
	}{
		{"first introspection", []*sarama.ProducerMessage{intro}, 1},
		{"the same introspection redelivered, and an older one", []*sarama.ProducerMessage{copyMessage(intro), older}, 2},
	}
	for _, s := range steps {
		if err := sendAll(s.msgs); err != nil {
			t.Fatal(err)
		}
		drainFleet(t)
		err := harness.Eventually(ctx, 10*time.Second, func(context.Context) error {
			if n := len(recs.Records(topics.NodeRegistrationRejected, key)); n < s.want {
				return fmt.Errorf("%d rejected events, want %d", n, s.want)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		time.Sleep(time.Second) // for a further event to be recorded, if one was published
		if n := len(recs.Records(topics.NodeRegistrationRejected, key)); n != s.want {
			t.Errorf("%s: %d rejected events, want %d", s.name, n, s.want)
		}
	}

	for _, r := range recs.Records(topics.NodeRegistrationRejected, key) {
		env, err := envelope.Decode(r.Value)
		if err != nil {
			t.Fatalf("rejected event is not an envelope: %v", err)
		}
		ev, err := envelope.DecodePayload(env, registration.DecodeRegistrationRejected)
		if err != nil {
			t.Fatalf("rejected payload is not a valid ModelNodeRegistrationRejected: %v", err)
		}
		if ev.EntityID != id.NodeID || ev.NodeID != id.NodeID {
			t.Errorf("rejected event names entity %s, node %s; want %s", ev.EntityID, ev.NodeID, key)
		}
		if env.CorrelationID == nil || *env.CorrelationID != ev.CorrelationID {
			t.Errorf("rejected event: envelope correlation %v, payload %s", env.CorrelationID, ev.CorrelationID)
		}
		if want := intro; ev.CausationID != correlationOf(t, want) {
			t.Errorf("rejected event caused by %s, want the introspection's correlation id %s", ev.CausationID, correlationOf(t, want))
		}
		if !strings.Contains(ev.RejectionReason, "runtime_host") {
			t.Errorf("rejection_reason %q does not name the node type", ev.RejectionReason)
		}
	}
	rows, err := db.DeclaredRows(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := rows[key]; ok {
		t.Errorf("a rejected node has a projection row: %+v", r)
	}
	svcs, err := harness.ConsulServices(servers.ConsulAddr)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := svcs[key]; ok {
		t.Errorf("a rejected node is in Consul: %s", s.ID)
	}
	c := countEvents(key)
	for _, topic := range []string{topics.NodeRegistrationInitiated, topics.NodeRegistrationAccepted, topics.NodeBecameActive} {
		if c[topic] != 0 {
			t.Errorf("%d %s events for a rejected node", c[topic], shortTopic(topic))
		}
	}
	checkNoDeadLetters(t, recs, []string{key})
}

// Suite 10 — a node restarted (startup, new version, endpoints, contract)
// while the registry still awaits its ack. The attempt in flight describes
// a process that is gone, so a new attempt with the restart's data replaces
// it ("Registration replaced while awaiting ack", docs/reducer.md): within
// one round trip the row (still awaiting_ack) and the Consul service hold
// the new data, and there are two attempts. The restarted process acks its
// own attempt and the node is ACTIVE with the restart's data.
func TestSuite10_RestartWhileAwaitingAck(t *testing.T) {
	ctx := context.Background()
	ns := startNodes(t, heartbeat)
	first := identity(registration.NodeKindEffect, "e2e_restart_awaiting_ack")
	key := first.NodeID.String()
	// The node never acks, so the registry keeps awaiting it.
	ns.add(first, node.Options{NeverAck: true})
	err := harness.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		rows, err := db.DeclaredRows(ctx, key)
		if err != nil {
			return err
		}
		if st := rows[key].State; st != "awaiting_ack" {
			return fmt.Errorf("state %q, want awaiting_ack", st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	restarted := first
	restarted.Version = envelope.SemVer{Major: 2, Minor: 1}
	restarted.Endpoints = map[string]string{"health": "http://127.12.0.1:40123/health"}
	restarted.ContractCapabilities = &registration.ContractCapabilities{ContractType: "effect",
		ContractVersion: envelope.SemVer{Major: 2}, Protocols: []string{"http"}, CapabilityTags: []string{"cap.v2"}}
	restarted.EventBus = &registration.NodeEventBusConfig{PublishTopics: []registration.EventBusTopicEntry{{Topic: "onex.evt.e2e.restarted.v1"}}}
	enc := &node.Encoder{Source: "e2e"}
	if err := sendAll([]*sarama.ProducerMessage{encodeStep(t, enc, first.NodeID,
		updateStep{id: restarted, reason: registration.ReasonStartup, at: time.Now(), corr: uuid.New()}, false)}); err != nil {
		t.Fatal(err)
	}
	drainFleet(t)

	// The attempt in flight described a process that is gone: a new attempt
	// with the restart's data replaces it.
	want := expectRow(restarted)
	want.State = "awaiting_ack"
	err = harness.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		return compareNode(ctx, first.NodeID, want, expectService(restarted))
	})
	if err != nil {
		t.Fatalf("after a restart while awaiting the ack the registry must hold the restart's data: %v", err)
	}
	attempts := acceptedAttempts(t, key)
	if n := countEvents(key)[topics.NodeRegistrationInitiated]; n != 2 || len(attempts) != 2 {
		t.Fatalf("%d initiated events and %d attempts after a restart while awaiting the ack, want 2 and 2", n, len(attempts))
	}

	// The restarted process acks its own attempt (the newest).
	latest := attempts[0]
	for _, a := range attempts[1:] {
		if a.First.After(latest.First) {
			latest = a
		}
	}
	ack, err := enc.Ack(first.NodeID, latest.CorrelationID)
	if err != nil {
		t.Fatal(err)
	}
	if err := sendAll([]*sarama.ProducerMessage{ack.ProducerMessage()}); err != nil {
		t.Fatal(err)
	}
	want.State = "active"
	err = harness.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		return compareNode(ctx, first.NodeID, want, expectService(restarted))
	})
	if err != nil {
		t.Fatalf("after the ack: %v", err)
	}
}

// Suite 10 — shutdown and the registration after it: a node's shutdown
// introspection takes it out of Consul at once (well within the liveness
// window, so not by expiry) and its row to liveness_expired; a startup
// stamped before the shutdown (a late one) does not register it again;
// the node's next start does (Initiated a second time, ACTIVE, in Consul).
func TestSuite10_ShutdownThenStartup(t *testing.T) {
	ctx := context.Background()
	ns := startNodes(t, heartbeat)
	id := identity(registration.NodeKindCompute, "e2e_shutdown")
	key := id.NodeID.String()
	ns.add(id, node.Options{})
	waitRegistered(t, 60*time.Second, key)

	// The process stops: its last record is the shutdown introspection.
	ns.stop()
	enc := &node.Encoder{Source: "e2e"}
	beforeShutdown := time.Now().Add(-time.Millisecond)
	if err := sendAll([]*sarama.ProducerMessage{encodeStep(t, enc, id.NodeID,
		updateStep{id: id, reason: registration.ReasonShutdown, at: time.Now(), corr: uuid.New()}, false)}); err != nil {
		t.Fatal(err)
	}
	shutdown := time.Now()
	gone := func(ctx context.Context) error {
		rows, err := db.DeclaredRows(ctx, key)
		if err != nil {
			return err
		}
		if st := rows[key].State; st != "liveness_expired" {
			return fmt.Errorf("state %q, want liveness_expired", st)
		}
		svcs, err := harness.ConsulServices(servers.ConsulAddr)
		if err != nil {
			return err
		}
		if _, ok := svcs[key]; ok {
			return errors.New("still in Consul")
		}
		return nil
	}
	if err := harness.Eventually(ctx, livenessWindow/2, gone); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	t.Logf("out of Consul %s after its shutdown introspection", time.Since(shutdown).Round(time.Millisecond))
	waitEvents(t, key, map[string]int{topics.NodeLivenessExpired: 1, topics.NodeRegistrationInitiated: 1})

	// A startup the node sent before its shutdown, delivered late.
	if err := sendAll([]*sarama.ProducerMessage{encodeStep(t, enc, id.NodeID,
		updateStep{id: id, reason: registration.ReasonStartup, at: beforeShutdown, corr: uuid.New()}, false)}); err != nil {
		t.Fatal(err)
	}
	drainFleet(t)
	if err := gone(ctx); err != nil {
		t.Fatalf("a startup older than the shutdown registered the node again: %v", err)
	}

	again := startNodes(t, heartbeat)
	again.add(id, node.Options{})
	waitRegistered(t, 60*time.Second, key)
	waitEvents(t, key, map[string]int{topics.NodeRegistrationInitiated: 2, topics.NodeBecameActive: 2, topics.NodeLivenessExpired: 1})
}

// planUpdates draws node i's update stream: updSteps introspections stamped
// 10 ms apart from start, each with a random reason and new data (version,
// endpoints, declared capabilities with or without an MCP tool, contract,
// topics; lists in random order with repeats, contract and event bus
// sometimes absent).
func planUpdates(r *rand.Rand, i int, base node.Identity, start time.Time) []updateStep {
	reasons := []registration.IntrospectionReason{registration.ReasonCapabilityChange, registration.ReasonHealthChange,
		registration.ReasonRequest, registration.ReasonStartup}
	intentPool := []string{"postgres.upsert_registration", "postgres.update_registration", "consul.register", "consul.deregister", "kafka.publish"}
	protocolPool := []string{"kafka", "http", "grpc", "mcp", "postgres"}
	tagPool := []string{"cap.read", "cap.write", "cap.batch", "zone-a", "zone-b", "tier:gold", "tier:silver"}
	typePool := []string{"orders", "invoices", "audit", "metrics"}
	topicPool := []string{"onex.evt.e2e.orders-created.v1", "onex.cmd.e2e.orders-process.v1", "onex.evt.e2e.invoices-sent.v1",
		"onex.intent.e2e.audit.v1", "onex.evt.platform.node-heartbeat.v1", "onex.evt.e2e.metrics.v1"}
	out := make([]updateStep, updSteps)
	for k := range out {
		id := node.Identity{Name: base.Name, Type: base.Type, Version: envelope.SemVer{Major: 1, Minor: k + 1, Patch: r.IntN(3)}}
		id.Endpoints = map[string]string{"health": fmt.Sprintf("http://127.10.%d.%d:%d/health", i, k+1, 41000+r.IntN(1000))}
		if r.IntN(2) == 0 {
			id.Endpoints["api"] = fmt.Sprintf("http://127.11.%d.%d:%d/api", i, k+1, 42000+r.IntN(1000))
		}
		id.Capabilities = registration.NodeCapabilities{Processing: r.IntN(2) == 0, Routing: r.IntN(2) == 0,
			SupportedTypes: pick(r, typePool)}
		if r.IntN(3) > 0 {
			m := &registration.MCPContractConfig{Expose: r.IntN(3) > 0, TimeoutSeconds: 30}
			switch r.IntN(3) {
			case 0:
				m.ToolName = ptrTo(fmt.Sprintf("E2E Tool %d.%d", i, k))
			case 1:
				id.Metadata.Description = ptrTo(fmt.Sprintf("Workflow #%d step %d", i, k))
			}
			id.Capabilities.MCP = m
		}
		if r.IntN(5) > 0 {
			ct := string(base.Type)
			if r.IntN(4) == 0 {
				ct = "unknown"
			}
			id.ContractCapabilities = &registration.ContractCapabilities{ContractType: ct,
				ContractVersion: envelope.SemVer{Major: 1, Minor: k}, IntentTypes: pick(r, intentPool),
				Protocols: pick(r, protocolPool), CapabilityTags: pick(r, tagPool)}
		}
		if r.IntN(5) > 0 {
			id.EventBus = &registration.NodeEventBusConfig{SubscribeTopics: entries(pick(r, topicPool)),
				PublishTopics: entries(pick(r, topicPool))}
		}
		out[k] = updateStep{id: id, reason: reasons[r.IntN(len(reasons))], at: start.Add(time.Duration(k) * 10 * time.Millisecond), corr: uuid.New()}
	}
	return out
}

// pick returns a random selection of pool in random order, sometimes with
// one value twice (the registry drops repeats).
func pick(r *rand.Rand, pool []string) []string {
	perm := r.Perm(len(pool))
	out := make([]string, 0, len(pool)+1)
	for _, j := range perm[:r.IntN(len(pool)+1)] {
		out = append(out, pool[j])
	}
	if len(out) > 0 && r.IntN(4) == 0 {
		out = append(out, out[r.IntN(len(out))])
	}
	return out
}

func entries(names []string) []registration.EventBusTopicEntry {
	out := make([]registration.EventBusTopicEntry, len(names))
	for i, n := range names {
		out[i] = registration.EventBusTopicEntry{Topic: n, MessageCategory: "EVENT"}
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

// updatesSeed is the stream's random seed: ONEX_E2E_UPDATES_SEED replays a
// failed run's stream.
func updatesSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ONEX_E2E_UPDATES_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ONEX_E2E_UPDATES_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("update stream seed %d (ONEX_E2E_UPDATES_SEED replays it)", seed)
	return seed
}

// addNodes starts the nodes on ns at once.
func addNodes(t *testing.T, ns *nodes, idents []node.Identity) {
	t.Helper()
	errs := make([]error, len(idents))
	var wg sync.WaitGroup
	for i, id := range idents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs[i] = ns.fleet.Add(ctx, id, node.Options{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// encodeStep encodes step s as node nodeID's introspection record; unkeyed
// as a Python node publishes it (the orchestrator keys it by node id), or
// keyed as a Go node does.
func encodeStep(t *testing.T, enc *node.Encoder, nodeID uuid.UUID, s updateStep, keyed bool) *sarama.ProducerMessage {
	t.Helper()
	id := s.id
	id.NodeID = nodeID
	rec, err := enc.Introspection(id.Introspection(s.reason, s.corr, s.at))
	if err != nil {
		t.Fatal(err)
	}
	m := rec.ProducerMessage()
	if !keyed {
		m.Key = nil
	}
	return m
}

// copyMessage is a second publish of the same record (sarama does not take
// a message twice).
func copyMessage(m *sarama.ProducerMessage) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers}
}

// correlationOf is the payload correlation id of an introspection record.
func correlationOf(t *testing.T, m *sarama.ProducerMessage) uuid.UUID {
	t.Helper()
	b, err := m.Value.Encode()
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := envelope.DecodePayload(env, registration.DecodeIntrospectionEvent)
	if err != nil {
		t.Fatal(err)
	}
	return ev.CorrelationID
}

// lateInPublishOrder counts the introspections published after a later
// stamped one of the same node: each would be stale if the fleet saw the
// records in publish order (unkeyed records spread over partitions, so it
// does not exactly).
func lateInPublishOrder(msgs []*sarama.ProducerMessage) int {
	latest := map[string]time.Time{}
	n := 0
	for _, m := range msgs {
		b, _ := m.Value.Encode()
		env, err := envelope.Decode(b)
		if err != nil {
			continue
		}
		ev, err := envelope.DecodePayload(env, registration.DecodeIntrospectionEvent)
		if err != nil {
			continue
		}
		k := ev.NodeID.String()
		if ev.Timestamp.Before(latest[k]) {
			n++
		} else {
			latest[k] = ev.Timestamp.Time
		}
	}
	return n
}

// sendAll publishes msgs with one idempotent producer, in order per
// partition.
func sendAll(msgs []*sarama.ProducerMessage) error {
	cfg, err := bus.NewConfig(bus.Options{Brokers: servers.KafkaBrokers, ClientID: "e2e-updates"})
	if err != nil {
		return err
	}
	harness.NamespaceProducers(cfg)
	p, err := sarama.NewSyncProducer(servers.KafkaBrokers, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.SendMessages(msgs)
}

// recordFromEnd records topics from their current end for the test's
// duration.
func recordFromEnd(t *testing.T, topicNames ...string) *harness.Recorder {
	t.Helper()
	r, err := harness.NewRecorder(servers.KafkaBrokers, sarama.OffsetNewest, topicNames...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// drainFleet waits until the fleet has handled everything published so
// far, hop by hop, down to PostgreSQL and Consul (harness.WaitConsumed).
func drainFleet(t *testing.T) {
	t.Helper()
	primeOnce.Do(func() { primeErr = primeNodeTopics() })
	if primeErr != nil {
		t.Fatalf("publishing a no-op record to every node topic partition: %v", primeErr)
	}
	start := time.Now()
	for _, hop := range [][]string{
		{topics.NodeIntrospection, topics.NodeRegistrationAcked},
		{topics.ReducerInput},
		{topics.RegistrationIntents},
		{topics.PostgresIntents, topics.ConsulIntents},
	} {
		if err := harness.WaitConsumed(context.Background(), servers.KafkaBrokers, 60*time.Second, hop...); err != nil {
			t.Fatalf("waiting for the fleet to handle %v: %v", hop, err)
		}
	}
	t.Logf("fleet drained in %s", time.Since(start).Round(time.Millisecond))
}

var (
	primeOnce sync.Once
	primeErr  error
)

// primeNodeTopics publishes, to every partition of the node topics
// drainFleet waits on, a record the registry decides as a no-op: the
// shutdown introspection of a node it never saw ("Node shut down, not
// registered") and the ack of a node it does not know ("Unknown node").
// The orchestrator's node-facing groups start at the newest record
// (spec 3.4), so a partition that got nothing since they joined has no
// committed offset, and a drain could not tell it from one not read yet;
// after these records every partition has one.
func primeNodeTopics() error {
	cfg, err := bus.NewConfig(bus.Options{Brokers: servers.KafkaBrokers, ClientID: "e2e-drain-prime"})
	if err != nil {
		return err
	}
	harness.NamespaceProducers(cfg)
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	client, err := sarama.NewClient(servers.KafkaBrokers, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return err
	}
	defer p.Close()
	enc := &node.Encoder{Source: "e2e"}
	var msgs []*sarama.ProducerMessage
	for _, topic := range []string{topics.NodeIntrospection, topics.NodeRegistrationAcked} {
		parts, err := client.Partitions(harness.Namespace.Physical(topic))
		if err != nil {
			return err
		}
		for _, part := range parts {
			var rec node.Record
			if topic == topics.NodeIntrospection {
				id := identity(registration.NodeKindEffect, "e2e_drain_probe")
				rec, err = enc.Introspection(id.Introspection(registration.ReasonShutdown, uuid.New(), time.Now()))
			} else {
				rec, err = enc.Ack(uuid.New(), uuid.New())
			}
			if err != nil {
				return err
			}
			m := rec.ProducerMessage()
			m.Partition = part
			msgs = append(msgs, m)
		}
	}
	return p.SendMessages(msgs)
}

// checkNoDeadLetters fails the test for every dead letter recorded by rec
// that names one of nodeIDs (DLQ records carry the original key and value).
func checkNoDeadLetters(t *testing.T, rec *harness.Recorder, nodeIDs []string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range nodeIDs {
		want[id] = true
	}
	for _, topic := range dlqTopics {
		for _, r := range rec.Records(topic) {
			for id := range want {
				if r.Key == id || strings.Contains(string(r.Value), id) {
					t.Errorf("dead letter for node %s: %s[%d]@%d: %.600s", id, r.Topic, r.Partition, r.Offset, r.Value)
					break
				}
			}
		}
	}
}

// upsertSequences returns each node's registration_sequence: the reducer
// sequence of the last projection upsert applied to its row.
func upsertSequences(t *testing.T, idents []node.Identity) map[string]int64 {
	t.Helper()
	rows, err := db.DeclaredRows(context.Background(), ids(idents...)...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, id := range idents {
		out[id.NodeID.String()] = rows[id.NodeID.String()].RegistrationSequence
	}
	return out
}

// rowView is what the test compares of a projection row, the node id and
// times aside.
type rowView struct {
	State, NodeType, NodeName, NodeVersion string
	Endpoints                              map[string]string
	Capabilities                           map[string]any
	ContractType, ContractVersion          string // "" for NULL
	IntentTypes, Protocols, CapabilityTags []string
	SubscribeTopics, PublishTopics         []string
	Extras                                 map[string]any
}

func viewOfRow(r harness.DeclaredRow) rowView {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	list := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return rowView{State: r.State, NodeType: r.NodeType, NodeName: deref(r.NodeName), NodeVersion: r.NodeVersion,
		Endpoints: r.Endpoints, Capabilities: r.Capabilities,
		ContractType: deref(r.ContractType), ContractVersion: deref(r.ContractVersion),
		IntentTypes: list(r.IntentTypes), Protocols: list(r.Protocols), CapabilityTags: list(r.CapabilityTags),
		SubscribeTopics: list(r.SubscribeTopics), PublishTopics: list(r.PublishTopics), Extras: r.Extras}
}

// expectRow is the ACTIVE row an introspection declaring id leads to
// (docs/reducer.md, "Declared capabilities and topics"): capabilities as
// sent; contract lists in the node's order without repeats; capability
// tags sorted without repeats, with node-type:<type> and, for an
// orchestrator exposing an MCP tool, mcp-enabled and mcp-tool:<name>;
// topic names in the node's order without repeats.
func expectRow(id node.Identity) rowView {
	uniq := func(in []string) []string {
		out := []string{}
		for _, s := range in {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	caps := map[string]any{}
	if b, err := json.Marshal(id.Capabilities); err == nil {
		_ = json.Unmarshal(b, &caps)
	}
	v := id.Version
	if v.String() == "0.0.0" {
		v = envelope.Version100 // what a node sends for an unset version
	}
	w := rowView{State: "active", NodeType: string(id.Type), NodeName: id.Name, NodeVersion: v.String(),
		Endpoints: id.Endpoints, Capabilities: caps, IntentTypes: []string{}, Protocols: []string{},
		SubscribeTopics: []string{}, PublishTopics: []string{}, Extras: map[string]any{}}
	var tags []string
	if c := id.ContractCapabilities; c != nil {
		w.ContractType, w.ContractVersion = c.ContractType, c.ContractVersion.String()
		w.IntentTypes, w.Protocols = uniq(c.IntentTypes), uniq(c.Protocols)
		tags = slices.Clone(c.CapabilityTags)
	}
	tags = append(tags, "node-type:"+string(id.Type))
	if tool := expectTool(id); tool != "" {
		tags = append(tags, "mcp-enabled", "mcp-tool:"+tool)
	}
	slices.Sort(tags)
	w.CapabilityTags = slices.Compact(tags)
	if eb := id.EventBus; eb != nil {
		for _, e := range eb.SubscribeTopics {
			w.SubscribeTopics = append(w.SubscribeTopics, e.Topic)
		}
		for _, e := range eb.PublishTopics {
			w.PublishTopics = append(w.PublishTopics, e.Topic)
		}
		w.SubscribeTopics, w.PublishTopics = uniq(w.SubscribeTopics), uniq(w.PublishTopics)
	}
	return w
}

// expectTool is the MCP tool a node exposes (spec 4.8): only an
// orchestrator with mcp.expose; named by its tool_name, else its
// metadata description, else its service name; sanitized.
func expectTool(id node.Identity) string {
	m := id.Capabilities.MCP
	if id.Type != registration.NodeKindOrchestrator || m == nil || !m.Expose {
		return ""
	}
	switch {
	case m.ToolName != nil && *m.ToolName != "":
		return mcpToolTag(*m.ToolName)
	case id.Metadata.Description != nil && *id.Metadata.Description != "":
		return mcpToolTag(*id.Metadata.Description)
	}
	return "onex-" + string(id.Type)
}

// serviceView is what the test compares of a Consul service: the id with
// the node id replaced, and the meta without the node id and the sequence
// (which counts the node's applied updates).
type serviceView struct {
	ID, Service, Address string
	Port                 int
	Tags                 []string // sorted
	Meta                 map[string]string
}

func viewOfService(s *consul.AgentService, nodeID string) serviceView {
	meta := map[string]string{}
	for k, v := range s.Meta {
		if k != "onex-node-id" && k != "onex-sequence" {
			meta[k] = v
		}
	}
	tags := slices.Clone(s.Tags)
	slices.Sort(tags)
	return serviceView{ID: strings.ReplaceAll(s.ID, nodeID, "<node>"), Service: s.Service, Address: s.Address,
		Port: s.Port, Tags: tags, Meta: meta}
}

// expectService is the Consul service an introspection declaring id
// leads to (spec 4.8): address and port of the health URL, tags onex,
// node-type:<type> and the MCP ones. Meta holds only the keys the test
// can predict; compareNode checks those.
func expectService(id node.Identity) serviceView {
	s := serviceView{ID: "onex-" + string(id.Type) + "-<node>", Service: "onex-" + string(id.Type),
		Tags: []string{"onex", "node-type:" + string(id.Type)}, Meta: map[string]string{"onex-node-type": string(id.Type)}}
	if tool := expectTool(id); tool != "" {
		s.Tags = append(s.Tags, "mcp-enabled", "mcp-tool:"+tool)
	}
	slices.Sort(s.Tags)
	if u, err := url.Parse(id.Endpoints["health"]); err == nil {
		s.Address = u.Hostname()
		s.Port, _ = strconv.Atoi(u.Port())
	}
	return s
}

// fieldDiffs names the fields in which two values of one struct type
// differ.
func fieldDiffs(got, want any) []string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	var out []string
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s = %v, want %v", g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface()))
		}
	}
	return out
}

// compareNode compares one node's row and Consul service with the
// expectation.
func compareNode(ctx context.Context, nodeID uuid.UUID, want rowView, svc serviceView) error {
	key := nodeID.String()
	rows, err := db.DeclaredRows(ctx, key)
	if err != nil {
		return err
	}
	r, ok := rows[key]
	if !ok {
		return errors.New("no row")
	}
	if d := fieldDiffs(viewOfRow(r), want); len(d) > 0 {
		return fmt.Errorf("row: %s", strings.Join(d, "; "))
	}
	svcs, err := harness.ConsulServices(servers.ConsulAddr)
	if err != nil {
		return err
	}
	s, ok := svcs[key]
	if !ok {
		return errors.New("not in Consul")
	}
	if d := checkService(s, key, svc); len(d) > 0 {
		return fmt.Errorf("consul: %s", strings.Join(d, "; "))
	}
	return nil
}

// checkService compares the agent's service of node key with an
// expectation: id, name, address, port, tags, and the meta keys expected.
func checkService(s *consul.AgentService, key string, want serviceView) []string {
	got := viewOfService(s, key)
	var out []string
	for k, v := range want.Meta {
		if got.Meta[k] != v {
			out = append(out, fmt.Sprintf("meta %s = %q, want %q", k, got.Meta[k], v))
		}
	}
	if s.Meta["onex-node-id"] != key {
		out = append(out, fmt.Sprintf("meta onex-node-id = %q", s.Meta["onex-node-id"]))
	}
	got.Meta, want.Meta = nil, nil
	return append(out, fieldDiffs(got, want)...)
}

// compareFinal checks every node of both sets against its last update, and
// each shuffled node against its in-order twin (everything but the node
// id, Consul meta included). It reports the first few differences.
func compareFinal(ctx context.Context, shuffled, ordered []node.Identity, steps [][]updateStep) error {
	rows, err := db.DeclaredRows(ctx, append(ids(shuffled...), ids(ordered...)...)...)
	if err != nil {
		return err
	}
	svcs, err := harness.ConsulServices(servers.ConsulAddr)
	if err != nil {
		return err
	}
	var problems []string
	bad := 0
	for i := range shuffled {
		last := steps[i][len(steps[i])-1].id
		want, wantSvc := expectRow(last), expectService(last)
		var diffs []string
		views := map[string]rowView{}
		svcViews := map[string]serviceView{}
		for set, id := range map[string]node.Identity{"shuffled": shuffled[i], "in-order": ordered[i]} {
			key := id.NodeID.String()
			r, ok := rows[key]
			if !ok {
				diffs = append(diffs, set+": no row")
				continue
			}
			views[set] = viewOfRow(r)
			for _, d := range fieldDiffs(views[set], want) {
				diffs = append(diffs, set+" row: "+d)
			}
			s, ok := svcs[key]
			if !ok {
				diffs = append(diffs, set+": not in Consul")
				continue
			}
			svcViews[set] = viewOfService(s, key)
			for _, d := range checkService(s, key, wantSvc) {
				diffs = append(diffs, set+" consul: "+d)
			}
		}
		if len(views) == 2 {
			for _, d := range fieldDiffs(views["shuffled"], views["in-order"]) {
				diffs = append(diffs, "shuffled vs in-order row: "+d)
			}
		}
		if len(svcViews) == 2 {
			for _, d := range fieldDiffs(svcViews["shuffled"], svcViews["in-order"]) {
				diffs = append(diffs, "shuffled vs in-order consul: "+d)
			}
		}
		if len(diffs) > 0 {
			bad++
			if len(problems) < 3 {
				problems = append(problems, fmt.Sprintf("node %d (%s / %s): %s", i, shuffled[i].NodeID, ordered[i].NodeID, strings.Join(diffs, "; ")))
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d node pairs not at their last introspection, e.g. %s", bad, len(shuffled), strings.Join(problems, " | "))
	}
	return nil
}
