package effect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
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
	a.services[reg.ID] = &api.AgentService{ID: reg.ID, Service: reg.Name, Tags: reg.Tags, Meta: reg.Meta}
	a.order[reg.ID] = append(a.order[reg.ID], reg.Meta[MetaSequence])
	return nil
}

func (a *slowAgent) Deregister(_ context.Context, id string) error {
	defer a.enter()()
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.services, id)
	return nil
}

type recPublisher struct {
	calls [][]*pipeline.EffectResult
}

func (p *recPublisher) PublishResult(ctx context.Context, r *pipeline.EffectResult) error {
	return p.PublishResults(ctx, []*pipeline.EffectResult{r})
}

func (p *recPublisher) PublishResults(_ context.Context, rs []*pipeline.EffectResult) error {
	p.calls = append(p.calls, rs)
	return nil
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

// A batch applies different nodes' intents at once (up to the
// parallelism), each node's in record order, publishes every result in one
// send, and stops at a record that is not a consul intent.
func TestHandleBatchParallelPerNodeOrder(t *testing.T) {
	agent := &slowAgent{delay: 20 * time.Millisecond, services: map[string]*api.AgentService{}, order: map[string][]string{}}
	pub := &recPublisher{}
	h := NewHandler(NewRegistrar(NewAgentStore(agent), "test", nil), pub, nil, 4)
	nodes := make([]uuid.UUID, 8)
	for i := range nodes {
		nodes[i] = uuid.New()
	}
	var msgs []*bus.Message
	for seq := int64(1); seq <= 3; seq++ {
		for _, n := range nodes {
			msgs = append(msgs, registerMsg(t, n, seq, fmt.Sprintf("svc-%d", seq)))
		}
	}
	good := len(msgs)
	msgs = append(msgs, &bus.Message{Topic: "consul-intents", Value: []byte("{not json")}, registerMsg(t, nodes[0], 9, "after"))

	err := h.HandleBatch(context.Background(), msgs)
	var be *bus.BatchError
	if !errors.As(err, &be) || be.Done != good {
		t.Fatalf("err = %v, want a BatchError at %d", err, good)
	}
	if len(pub.calls) != 1 || len(pub.calls[0]) != good {
		t.Fatalf("published %d calls (first %v), want one call with %d results", len(pub.calls), pub.calls, good)
	}
	for i, r := range pub.calls[0] {
		if want := msgs[i]; r.NodeID.String() != string(want.Key) || !r.Success {
			t.Fatalf("result %d: node %s success %v, want node %s and success", i, r.NodeID, r.Success, want.Key)
		}
	}
	if agent.max < 2 || agent.max > 4 {
		t.Fatalf("at most %d calls at once, want 2..4 (parallelism 4)", agent.max)
	}
	for _, n := range nodes {
		if got := fmt.Sprint(agent.order["onex-"+n.String()]); got != "[1 2 3]" {
			t.Fatalf("node %s registered in order %s, want [1 2 3]", n, got)
		}
	}
}
