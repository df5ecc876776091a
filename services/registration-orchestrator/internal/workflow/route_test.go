package workflow

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// refreshMsg is the Consul register the reducer sends at a node's ack
// (pipeline.Intent.Refresh), of the node's attempt.
func refreshMsg(t *testing.T, node uuid.UUID, seq int64, attempt uuid.UUID) *bus.Message {
	t.Helper()
	in := pipeline.Intent{IntentID: uuid.NewSHA1(node, fmt.Appendf(nil, "intent:%d", seq)), IntentType: pipeline.ConsulRegister,
		Target: "test://consul", Payload: []byte(`{"intent_type":"consul.register"}`), Priority: 1, NodeID: node, Sequence: seq,
		RegistrationAttemptID: attempt, Refresh: true}
	env, err := envelope.New(in, envelope.WithCorrelationID(uuid.New()))
	if err != nil {
		t.Fatal(err)
	}
	v, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Topic: "intents", Key: []byte(node.String()), Value: v, CorrelationID: uuid.New()}
}

// Every record routed untracked asks the effect for failed results only
// (pipeline.HeaderResults); a tracked one asks for every result, which its
// aggregation needs. In one batch and in batches of one (how the runner
// hands the records again after a failed send).
func TestRoutedRecordsAskForTheResultsTheirRouteNeeds(t *testing.T) {
	a, b, first, second := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	type rec struct {
		name        string
		msg         *bus.Message
		failureOnly bool
	}
	recs := func(t *testing.T) []rec {
		return []rec{
			{"update", intentMsg(t, a, pipeline.PostgresUpdate, 1, uuid.Nil), true},
			{"deregister", intentMsg(t, a, pipeline.ConsulDeregister, 2, uuid.Nil), true},
			{"tracked upsert", intentMsg(t, b, pipeline.PostgresUpsert, 3, first), false},
			{"tracked register", intentMsg(t, b, pipeline.ConsulRegister, 4, first), false},
			{"refresh at the ack", refreshMsg(t, b, 5, first), true},
			{"newer attempt's upsert", intentMsg(t, b, pipeline.PostgresUpsert, 6, second), false},
			{"older attempt's register redelivered", intentMsg(t, b, pipeline.ConsulRegister, 4, first), true},
		}
	}
	for _, path := range []struct {
		name   string
		handle func(w *Workflow, msgs []*bus.Message) error
	}{
		{"batch", func(w *Workflow, msgs []*bus.Message) error { return handled(w, msgs...) }},
		{"one at a time", func(w *Workflow, msgs []*bus.Message) error {
			for _, m := range msgs {
				if err := handled(w, m); err != nil {
					return err
				}
			}
			return nil
		}},
	} {
		t.Run(path.name, func(t *testing.T) {
			s := &sender{}
			cfg := attemptConfig(s, noDLQ{})
			cfg.Routes[pipeline.PostgresUpdate] = "pg"
			cfg.Routes[pipeline.ConsulDeregister] = "consul"
			w := New(cfg)
			rs := recs(t)
			var msgs []*bus.Message
			for _, r := range rs {
				msgs = append(msgs, r.msg)
			}
			if err := path.handle(w, msgs); err != nil {
				t.Fatal(err)
			}
			var routed []*sarama.ProducerMessage
			for _, call := range s.calls {
				for _, m := range call {
					if m.Topic == "pg" || m.Topic == "consul" {
						routed = append(routed, m)
					}
				}
			}
			if len(routed) != len(rs) {
				t.Fatalf("%d records routed, want %d", len(routed), len(rs))
			}
			for i, r := range rs {
				var hs []*sarama.RecordHeader
				for j := range routed[i].Headers {
					hs = append(hs, &routed[i].Headers[j])
				}
				if got := pipeline.FailuresOnly(hs); got != r.failureOnly {
					t.Errorf("%s: routed asking for failures only = %v, want %v", r.name, got, r.failureOnly)
				}
				if v, _ := routed[i].Value.Encode(); string(v) != string(r.msg.Value) {
					t.Errorf("%s: routed value changed", r.name)
				}
			}
		})
	}
}
