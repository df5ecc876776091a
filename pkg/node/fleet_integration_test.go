package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// registrySide plays the registry against a real broker: it watches what
// the nodes publish and publishes lifecycle events to them. Only records
// of the test's own nodes are kept, so foreign traffic on the shared
// topics does not matter.
type registrySide struct {
	t        *testing.T
	ns       topicns.Namespace
	brokers  []string
	producer sarama.SyncProducer
	mine     map[uuid.UUID]bool

	mu   sync.Mutex
	seen map[string][]*sarama.ConsumerMessage // canonical topic -> records of our nodes
}

// provision creates the registry's topics on a namespace of the test's
// own (KAFKA_TOPIC_NAMESPACE, as a Python node would use it), deleted when
// the test ends, so the nodes' records never reach the topics a `make run`
// fleet reads.
func provision(t *testing.T, brokers []string) topicns.Namespace {
	t.Helper()
	ns := topicns.MustParse("nodetest" + testkit.Unique())
	admin, err := sarama.NewClusterAdmin(brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		for _, s := range topics.Platform() {
			_ = admin.DeleteTopic(ns.Physical(s.Name))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := topics.Provision(ctx, admin, topics.Platform(), topics.Options{Namespace: ns}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return ns
}

func newRegistrySide(t *testing.T, ctx context.Context, brokers []string, ns topicns.Namespace, nodes ...uuid.UUID) *registrySide {
	t.Helper()
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "node-test-registry"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	r := &registrySide{t: t, ns: ns, brokers: brokers, producer: p, mine: map[uuid.UUID]bool{}, seen: map[string][]*sarama.ConsumerMessage{}}
	for _, n := range nodes {
		r.mine[n] = true
	}
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, topic := range ns.PhysicalAll([]string{topics.NodeIntrospection, topics.NodeHeartbeat, topics.NodeRegistrationAcked}) {
		parts, err := c.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range parts {
			pc, err := c.ConsumePartition(topic, part, sarama.OffsetNewest)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for {
					select {
					case m := <-pc.Messages():
						if id, err := uuid.Parse(string(m.Key)); err == nil && r.mine[id] {
							r.mu.Lock()
							r.seen[ns.Canonical(m.Topic)] = append(r.seen[ns.Canonical(m.Topic)], m)
							r.mu.Unlock()
						}
					case <-ctx.Done():
						pc.AsyncClose()
						return
					}
				}
			}()
		}
	}
	return r
}

// wait returns the records of topic for node once there are at least n.
func (r *registrySide) wait(topic string, nodeID uuid.UUID, n int, timeout time.Duration) []*sarama.ConsumerMessage {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		var got []*sarama.ConsumerMessage
		for _, m := range r.seen[topic] {
			if string(m.Key) == nodeID.String() {
				got = append(got, m)
			}
		}
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: %d records of node %s after %s, want %d", topic, len(got), nodeID, timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *registrySide) count(topic string, nodeID uuid.UUID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.seen[topic] {
		if string(m.Key) == nodeID.String() {
			n++
		}
	}
	return n
}

// lifecycle publishes a lifecycle event for node the way the reducer does,
// keyed by node id: an envelope, except the accepted event, which is the
// bare ModelNodeRegistrationAccepted.
func (r *registrySide) lifecycle(topic string, nodeID, corr uuid.UUID) {
	r.t.Helper()
	if topic == topics.NodeRegistrationAccepted {
		now := time.Now().UTC().Truncate(time.Microsecond)
		b, err := registration.RegistrationAccepted{
			LifecycleHeader: registration.LifecycleHeader{EntityID: nodeID, NodeID: nodeID, CorrelationID: corr, CausationID: uuid.New(),
				EmittedAt: envelope.Time{Time: now}},
			AckDeadline: envelope.Time{Time: now.Add(30 * time.Second)},
		}.MarshalJSON()
		if err != nil {
			r.t.Fatal(err)
		}
		r.send(topic, nodeID.String(), b)
		return
	}
	opts := []envelope.Option{envelope.WithCorrelationID(corr)}
	env, err := envelope.New(map[string]any{"node_id": nodeID.String(), "entity_id": nodeID.String()}, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	b, err := env.Encode()
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(topic, nodeID.String(), b)
}

func (r *registrySide) send(topic, key string, value []byte) {
	r.t.Helper()
	if _, _, err := r.producer.SendMessage(&sarama.ProducerMessage{Topic: r.ns.Physical(topic), Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value)}); err != nil {
		r.t.Fatal(err)
	}
}

func decodeIntrospection(t *testing.T, m *sarama.ConsumerMessage) *registration.IntrospectionEvent {
	t.Helper()
	env, err := envelope.Decode(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := envelope.DecodePayload(env, registration.DecodeIntrospectionEvent)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func waitStatus(t *testing.T, f *node.Fleet, id uuid.UUID, want node.Status) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s, _ := f.Status(id); s == want {
			return
		}
		if time.Now().After(deadline) {
			s, _ := f.Status(id)
			t.Fatalf("node %s status %s, want %s", id, s, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func identity(name string) node.Identity {
	return node.Identity{
		NodeID:    uuid.New(),
		Name:      name,
		Type:      registration.NodeKindEffect,
		Version:   envelope.SemVer{Major: 2},
		Endpoints: map[string]string{"health": "http://127.0.0.1:1/healthz", "api": "http://127.0.0.1:1/api"},
	}
}

// TestFleetTwoWayRegistration walks one node through the documented flow
// against the real broker: introspection on start, ack of its accepted
// event with the accepted event's correlation id, ACTIVE on became-active,
// heartbeats at the interval, an answer to a targeted re-introspection
// request with the request's correlation id, and a re-announcement after
// liveness expiry. A second node with NeverAck and DieAfter shows the
// faults.
func TestFleetTwoWayRegistration(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	ns := provision(t, brokers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	good, silent := identity("node_good"), identity("node_faulty")
	reg := newRegistrySide(t, ctx, brokers, ns, good.NodeID, silent.NodeID)

	var transitions sync.Map
	f, err := node.NewFleet(node.Config{
		Brokers:           brokers,
		Environment:       "test",
		Namespace:         ns,
		HeartbeatInterval: 300 * time.Millisecond,
		Logger:            slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnTransition: func(id uuid.UUID, from, to node.Status) {
			transitions.Store(fmt.Sprintf("%s:%s->%s", id, from, to), true)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	<-f.Ready()

	if err := f.Add(ctx, good, node.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(ctx, silent, node.Options{NeverAck: true, DieAfter: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(ctx, good, node.Options{}); err == nil {
		t.Error("adding the same node twice succeeded")
	}

	// Startup introspection, keyed by node id, with the identity's fields.
	intro := decodeIntrospection(t, reg.wait(topics.NodeIntrospection, good.NodeID, 1, 10*time.Second)[0])
	if intro.Reason != registration.ReasonStartup || intro.NodeType != registration.NodeKindEffect ||
		intro.NodeVersion.String() != "2.0.0" || intro.Endpoints["api"] != "http://127.0.0.1:1/api" {
		t.Errorf("startup introspection %+v", intro)
	}
	if s, _ := f.Status(good.NodeID); s != node.StatusIntroducing {
		t.Errorf("status after introspection %s", s)
	}

	// Accepted → ack with the accepted event's correlation id.
	acceptCorr := uuid.New()
	reg.lifecycle(topics.NodeRegistrationAccepted, good.NodeID, acceptCorr)
	ackMsg := reg.wait(topics.NodeRegistrationAcked, good.NodeID, 1, 10*time.Second)[0]
	env, err := envelope.Decode(ackMsg.Value)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := envelope.DecodePayload(env, registration.DecodeRegistrationAcked)
	if err != nil {
		t.Fatal(err)
	}
	if ack.NodeID != good.NodeID || ack.CorrelationID != acceptCorr || *env.CorrelationID != acceptCorr {
		t.Errorf("ack %+v (envelope correlation %v), want correlation %s", ack, env.CorrelationID, acceptCorr)
	}
	waitStatus(t, f, good.NodeID, node.StatusAcked)
	reg.lifecycle(topics.NodeBecameActive, good.NodeID, acceptCorr)
	waitStatus(t, f, good.NodeID, node.StatusActive)
	if _, ok := transitions.Load(fmt.Sprintf("%s:%s->%s", good.NodeID, node.StatusAcked, node.StatusActive)); !ok {
		t.Error("OnTransition was not told acked -> active")
	}

	// The registry re-sends the accepted event of the attempt (it had not
	// read the ack yet): the node acks the copy too, with the same
	// correlation id, and stays active.
	reg.lifecycle(topics.NodeRegistrationAccepted, good.NodeID, acceptCorr)
	reack := reg.wait(topics.NodeRegistrationAcked, good.NodeID, 2, 10*time.Second)[1]
	if env, err := envelope.Decode(reack.Value); err != nil || env.CorrelationID == nil || *env.CorrelationID != acceptCorr {
		t.Errorf("ack of the re-sent accepted event: %v %v", env, err)
	}
	time.Sleep(200 * time.Millisecond)
	if s, _ := f.Status(good.NodeID); s != node.StatusActive {
		t.Errorf("status after a re-sent accepted event %s, want it to stay active", s)
	}
	if _, ok := transitions.Load(fmt.Sprintf("%s:%s->%s", good.NodeID, node.StatusActive, node.StatusAccepted)); ok {
		t.Error("a re-sent accepted event moved the node back to accepted")
	}

	// The faulty node never acks its accepted event.
	reg.lifecycle(topics.NodeRegistrationAccepted, silent.NodeID, uuid.New())
	waitStatus(t, f, silent.NodeID, node.StatusAccepted)

	// Heartbeats at the interval, with the spec's fields.
	hbs := reg.wait(topics.NodeHeartbeat, good.NodeID, 3, 10*time.Second)
	for _, m := range hbs {
		env, err := envelope.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		hb, err := envelope.DecodePayload(env, registration.DecodeHeartbeatEvent)
		if err != nil {
			t.Fatal(err)
		}
		if hb.NodeID != good.NodeID || hb.UptimeSeconds <= 0 || hb.CorrelationID == nil || hb.NodeVersion.String() != "2.0.0" {
			t.Errorf("heartbeat %+v", hb)
		}
	}
	gap := hbs[2].Timestamp.Sub(hbs[1].Timestamp)
	if gap < 200*time.Millisecond || gap > 2*time.Second {
		t.Errorf("heartbeats %s apart, want about the 300ms interval", gap)
	}

	// A request addressed to the good node only: it answers with the
	// request's correlation id; the faulty node (alive still) does not.
	before := reg.count(topics.NodeIntrospection, silent.NodeID)
	reqCorr := uuid.New()
	reg.send(topics.RequestIntrospection, "", []byte(fmt.Sprintf(
		`{"event_type": "REQUEST_INTROSPECTION", "correlation_id": "%s", "reason": "test", "target_node_id": "%s"}`, reqCorr, good.NodeID)))
	answer := decodeIntrospection(t, reg.wait(topics.NodeIntrospection, good.NodeID, 2, 10*time.Second)[1])
	if answer.Reason != registration.ReasonRequest || answer.CorrelationID != reqCorr {
		t.Errorf("answer reason %s correlation %s, want request %s", answer.Reason, answer.CorrelationID, reqCorr)
	}

	// The faulty node dies: its heartbeats stop, and a broadcast request
	// gets no answer from it.
	waitStatus(t, f, silent.NodeID, node.StatusDead)
	// A beat published just before dying may still be in flight: wait until
	// the count has been still for a second.
	for last, still := -1, time.Now(); time.Since(still) < time.Second; time.Sleep(100 * time.Millisecond) {
		if n := reg.count(topics.NodeHeartbeat, silent.NodeID); n != last {
			last, still = n, time.Now()
		}
	}
	beats := reg.count(topics.NodeHeartbeat, silent.NodeID)
	reg.send(topics.RequestIntrospection, "", []byte(`{"event_type": "REQUEST_INTROSPECTION"}`))
	reg.wait(topics.NodeIntrospection, good.NodeID, 3, 10*time.Second)
	time.Sleep(time.Second)
	if n := reg.count(topics.NodeHeartbeat, silent.NodeID); n != beats {
		t.Errorf("dead node kept heartbeating: %d -> %d", beats, n)
	}
	if n := reg.count(topics.NodeIntrospection, silent.NodeID); n != before {
		t.Errorf("silent node answered requests: %d introspections, want %d", n, before)
	}

	// Liveness expired while alive: the node announces itself again.
	reg.lifecycle(topics.NodeLivenessExpired, good.NodeID, uuid.New())
	again := decodeIntrospection(t, reg.wait(topics.NodeIntrospection, good.NodeID, 4, 10*time.Second)[3])
	if again.Reason != registration.ReasonHealthChange {
		t.Errorf("re-announcement reason %s", again.Reason)
	}

	// An ack that reached the registry too late: the node announces again.
	reg.lifecycle(topics.NodeRegistrationAckTimedOut, good.NodeID, uuid.New())
	reg.wait(topics.NodeIntrospection, good.NodeID, 5, 10*time.Second)

	st := f.Stats()
	if st.Nodes != 2 || st.Acks != 2 || st.Introspections != 2 || st.Reintrospections != 4 || st.Heartbeats < 3 || st.PerStatus[node.StatusDead] != 1 {
		t.Errorf("stats %+v", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestFleetWaitsForBroker: Run keeps retrying while the broker is
// unreachable and returns the context's error, without panicking.
func TestFleetWaitsForBroker(t *testing.T) {
	f, err := node.NewFleet(node.Config{Brokers: []string{"127.0.0.1:1"}, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = f.Run(ctx)
	if err == nil {
		t.Fatal("Run returned nil without a broker")
	}
	select {
	case <-f.Ready():
		t.Fatal("ready without a broker")
	default:
	}
	if _, err := node.NewFleet(node.Config{}); err == nil {
		t.Error("NewFleet without brokers succeeded")
	}
}

// TestFleetReannouncesUntilAnswered: a node whose introspection the
// registry never answers (its node-facing groups started at the newest
// record after the node announced itself) announces itself again at its
// heartbeats, every Reannounce, until its accepted event arrives; then it
// stops.
func TestFleetReannouncesUntilAnswered(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	ns := provision(t, brokers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	id := identity("node_unanswered")
	reg := newRegistrySide(t, ctx, brokers, ns, id.NodeID)
	f, err := node.NewFleet(node.Config{Brokers: brokers, Environment: "test", Namespace: ns, HeartbeatInterval: 100 * time.Millisecond,
		Reannounce: time.Second, Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	<-f.Ready()
	start := time.Now()
	if err := f.Add(ctx, id, node.Options{}); err != nil {
		t.Fatal(err)
	}
	got := reg.wait(topics.NodeIntrospection, id.NodeID, 3, 15*time.Second)
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("three introspections within %s: re-announced faster than every second", took)
	}
	for i, m := range got[:3] {
		want := registration.ReasonHeartbeat
		if i == 0 {
			want = registration.ReasonStartup
		}
		if r := decodeIntrospection(t, m).Reason; r != want {
			t.Errorf("introspection %d reason %s, want %s", i, r, want)
		}
	}
	reg.lifecycle(topics.NodeRegistrationAccepted, id.NodeID, uuid.New())
	waitStatus(t, f, id.NodeID, node.StatusAcked)
	time.Sleep(300 * time.Millisecond) // one already on its way may still land
	settled := reg.count(topics.NodeIntrospection, id.NodeID)
	time.Sleep(2500 * time.Millisecond)
	if n := reg.count(topics.NodeIntrospection, id.NodeID); n > settled {
		t.Errorf("%d introspections after the accepted event, want none", n-settled)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
