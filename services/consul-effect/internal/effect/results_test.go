package effect

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// refusingAgent is an agent whose registrations fail.
type refusingAgent struct{ *slowAgent }

func (refusingAgent) Register(context.Context, *api.AgentServiceRegistration) error {
	return errors.New("connection refused")
}

// A consul intent routed untracked (pipeline.HeaderResults: the refresh
// register at a node's ack) gets no success result, only a failed one; a
// record without the header (the tracked register at introspection, or any
// record of an older orchestrator) is answered as before. Both the batch
// path and a record handled alone.
func TestUntrackedIntentsGetFailedResultsOnly(t *testing.T) {
	tests := []struct {
		name     string
		headers  []bool // per record: routed untracked
		refuse   bool
		want     []bool // per published result: success
		notSent  float64
		register int // registrations that reached the agent
	}{
		{"refresh applied", []bool{true}, false, nil, 1, 1},
		{"register without the header applied", []bool{false}, false, []bool{true}, 0, 1},
		{"mixed batch", []bool{true, false, true}, false, []bool{true}, 2, 3},
		{"refresh refused", []bool{true}, true, []bool{false}, 0, 0},
		{"register without the header refused", []bool{false}, true, []bool{false}, 0, 0},
	}
	for _, path := range []string{"batch", "alone"} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				slow := &slowAgent{services: map[string]*api.AgentService{}, order: map[string][]string{}}
				var agent AgentAPI = slow
				if tt.refuse {
					agent = refusingAgent{slow}
				}
				pub := &recPublisher{}
				reg := prometheus.NewRegistry()
				h := NewHandler(NewRegistrar(NewAgentStore(agent), "test", nil), pub, reg, 4)
				var msgs []*bus.Message
				for i, untracked := range tt.headers {
					m := registerMsg(t, uuid.New(), int64(i+1), "onex-effect")
					if untracked {
						hd := pipeline.FailuresOnlyHeader()
						m.Headers = append(m.Headers, &hd)
					}
					msgs = append(msgs, m)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if path == "batch" {
					if err := h.HandleBatch(ctx, msgs); err != nil {
						t.Fatal(err)
					}
				} else {
					for _, m := range msgs {
						if err := h.Handle(ctx, m); err != nil {
							t.Fatal(err)
						}
					}
				}
				var got []bool
				for _, call := range pub.calls {
					for _, r := range call {
						got = append(got, r.Success)
					}
				}
				if len(got) != len(tt.want) {
					t.Fatalf("published results (success) %v, want %v", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("published results (success) %v, want %v", got, tt.want)
					}
				}
				if n := testutil.ToFloat64(h.notSent); n != tt.notSent {
					t.Errorf("results not sent %v, want %v", n, tt.notSent)
				}
				registered := 0
				for _, seqs := range slow.order {
					registered += len(seqs)
				}
				if registered != tt.register {
					t.Errorf("%d registrations reached the agent, want %d", registered, tt.register)
				}
				if n := testutil.CollectAndCount(reg, "onex_consul_results_not_sent_total"); n != 1 {
					t.Errorf("onex_consul_results_not_sent_total: %d series registered, want 1", n)
				}
			})
		}
	}
}
