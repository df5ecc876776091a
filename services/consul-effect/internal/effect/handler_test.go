package effect

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// slowAgent is a Consul agent whose calls take a while; it records the
// order of registrations per service and the most calls it saw at once.
type slowAgent struct {
	delay time.Duration

	mu       sync.Mutex
	now, max int
	services map[string]*api.AgentService
	order    map[string][]string // service id -> sequences registered
}

func (a *slowAgent) enter() func() {
	a.mu.Lock()
	a.now++
	a.max = max(a.max, a.now)
	a.mu.Unlock()
	time.Sleep(a.delay)
	return func() { a.mu.Lock(); a.now--; a.mu.Unlock() }
}

func (a *slowAgent) Service(_ context.Context, id string) (*api.AgentService, []*api.AgentCheck, error) {
	defer a.enter()()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.services[id], nil, nil
}

func (a *slowAgent) Services(context.Context, string) (map[string]*api.AgentService, map[string][]*api.AgentCheck, error) {
	return nil, nil, nil
}

func (a *slowAgent) Register(_ context.Context, reg *api.AgentServiceRegistration) error {
	defer a.enter()()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.services[reg.ID] = &api.AgentService{ID: reg.ID, Service: reg.Name, Tags: reg.Tags, Meta: reg.Meta, Address: reg.Address, Port: reg.Port}
	a.order[reg.ID] = append(a.order[reg.ID], reg.Meta[MetaSequence])
	return nil
}

// registrations counts the registrations that reached the agent.
func (a *slowAgent) registrations() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, seqs := range a.order {
		n += len(seqs)
	}
	return n
}

func (a *slowAgent) Deregister(_ context.Context, id string) error {
	defer a.enter()()
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.services, id)
	return nil
}

// testResults builds the handler's result records in tests.
var testResults = Results{Topic: "onex.evt.platform.effect-results.v1", Source: "test"}

// sent decodes the result records a Handle returned, in order.
func sent(t *testing.T, recs []*sarama.ProducerMessage) []*pipeline.EffectResult {
	t.Helper()
	out := make([]*pipeline.EffectResult, 0, len(recs))
	for _, m := range recs {
		hs := recordHeaders(m)
		v, err := m.Value.Encode()
		if err != nil {
			t.Fatal(err)
		}
		rec, err := pipeline.DecodeEffectResultRecord(hs, v)
		if err != nil {
			t.Fatal(err)
		}
		if key, _ := m.Key.Encode(); m.Topic != testResults.Topic || string(key) != rec.Result.NodeID.String() {
			t.Fatalf("record on %s keyed %s, want %s keyed by its node %s", m.Topic, key, testResults.Topic, rec.Result.NodeID)
		}
		out = append(out, rec.Result)
	}
	return out
}

func registerMsg(t *testing.T, node uuid.UUID, seq int64, name string) *bus.Message {
	t.Helper()
	port := 8080
	pl, err := json.Marshal(pipeline.ConsulRegisterPayload{IntentType: pipeline.ConsulRegister, ServiceID: "onex-" + node.String(),
		ServiceName: name, Tags: []string{"onex"}, Port: &port})
	if err != nil {
		t.Fatal(err)
	}
	in := pipeline.Intent{IntentID: uuid.NewSHA1(node, fmt.Appendf(nil, "%d", seq)), IntentType: pipeline.ConsulRegister,
		Target: "consul://register", Payload: pl, Priority: 1, NodeID: node, Sequence: seq}
	env, err := envelope.New(in, envelope.WithCorrelationID(uuid.New()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Topic: "consul-intents", Key: []byte(node.String()), Value: b, CorrelationID: uuid.New()}
}

func deregisterMsg(t *testing.T, node uuid.UUID, seq int64, serviceID string) *bus.Message {
	t.Helper()
	pl, err := json.Marshal(pipeline.ConsulDeregisterPayload{IntentType: pipeline.ConsulDeregister, NodeID: node.String(), ServiceID: serviceID})
	if err != nil {
		t.Fatal(err)
	}
	in := pipeline.Intent{IntentID: uuid.NewSHA1(node, fmt.Appendf(nil, "%d", seq)), IntentType: pipeline.ConsulDeregister,
		Target: "consul://deregister", Payload: pl, Priority: 1, NodeID: node, Sequence: seq}
	env, err := envelope.New(in, envelope.WithCorrelationID(uuid.New()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Topic: "consul-intents", Key: []byte(node.String()), Value: b, CorrelationID: uuid.New()}
}

// A batch applies different nodes' intents at once (up to the
// parallelism), each node's in record order, and returns one result record
// per intent in record order. Records that are not usable consul intents
// are rejected as content errors and the intents after them applied all
// the same. Handling the batch again (a redelivery) writes nothing and
// yields the same results under the same envelope ids.
func TestHandleParallelPerNodeOrder(t *testing.T) {
	agent := &slowAgent{delay: 20 * time.Millisecond, services: map[string]*api.AgentService{}, order: map[string][]string{}}
	h := NewHandler(NewRegistrar(NewAgentStore(agent), "test", nil), testResults, nil, 4)
	nodes := make([]uuid.UUID, 8)
	for i := range nodes {
		nodes[i] = uuid.New()
	}
	var msgs []*bus.Message
	for seq := int64(1); seq <= 3; seq++ {
		for _, n := range nodes {
			msgs = append(msgs, registerMsg(t, n, seq, fmt.Sprintf("svc-%d", seq)))
		}
		if seq == 1 {
			msgs = append(msgs, &bus.Message{Topic: "consul-intents", Value: []byte("{not json")})
		}
	}
	msgs = append(msgs, deregisterMsg(t, nodes[1], 4, ""), registerMsg(t, nodes[0], 9, "after"))
	rejected := map[int]bool{len(nodes): true, len(msgs) - 2: true}

	ctx := context.Background()
	out, err := h.Handle(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Outcomes) != len(msgs) {
		t.Fatalf("%d outcomes for %d messages", len(out.Outcomes), len(msgs))
	}
	var good []*bus.Message
	for i, o := range out.Outcomes {
		switch {
		case rejected[i]:
			if o.Verdict != bus.DeadLetter || !infraerr.IsContent(o.Err) {
				t.Fatalf("outcome %d: %v (%v), want a dead letter for a content error", i, o.Verdict, o.Err)
			}
		case o.Verdict != bus.Done:
			t.Fatalf("outcome %d: %v (%v), want done", i, o.Verdict, o.Err)
		default:
			good = append(good, msgs[i])
		}
	}
	res := sent(t, out.Records)
	if len(res) != len(good) {
		t.Fatalf("%d result records, want one per intent (%d)", len(res), len(good))
	}
	for i, r := range res {
		if want := good[i]; r.NodeID.String() != string(want.Key) || !r.Success || r.Stale {
			t.Fatalf("result %d: node %s success %v stale %v, want node %s applied", i, r.NodeID, r.Success, r.Stale, want.Key)
		}
	}
	if agent.max < 2 || agent.max > 4 {
		t.Fatalf("at most %d calls at once, want 2..4 (parallelism 4)", agent.max)
	}
	for i, n := range nodes {
		want := "[1 2 3]"
		if i == 0 {
			want = "[1 2 3 9]"
		}
		if got := fmt.Sprint(agent.order["onex-"+n.String()]); got != want {
			t.Fatalf("node %s registered in order %s, want %s", n, got, want)
		}
	}

	written := agent.registrations()
	again, err := h.Handle(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range again.Outcomes {
		if rejected[i] != (o.Verdict == bus.DeadLetter) {
			t.Fatalf("again, outcome %d: %v (%v)", i, o.Verdict, o.Err)
		}
	}
	if len(again.Records) != len(out.Records) {
		t.Fatalf("again, %d result records, want %d", len(again.Records), len(out.Records))
	}
	for i, r := range sent(t, again.Records) {
		if !r.Success || r.IntentID != res[i].IntentID {
			t.Fatalf("again, result %d: %+v, want the success of intent %s", i, r, res[i].IntentID)
		}
		if a, b := envelope.HeadersFromRecords(recordHeaders(again.Records[i])).MessageID,
			envelope.HeadersFromRecords(recordHeaders(out.Records[i])).MessageID; a != b {
			t.Fatalf("again, result %d has envelope id %s, first %s", i, a, b)
		}
	}
	if n := agent.registrations(); n != written {
		t.Fatalf("handled again, %d registrations reached the agent, want none", n-written)
	}
}

func recordHeaders(m *sarama.ProducerMessage) []*sarama.RecordHeader {
	hs := make([]*sarama.RecordHeader, len(m.Headers))
	for i := range m.Headers {
		hs[i] = &m.Headers[i]
	}
	return hs
}
