package workflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// sender records every Send call, numbering records per topic like a
// broker would.
type sender struct {
	calls   [][]*sarama.ProducerMessage
	offsets map[string]int64
}

func (s *sender) Send(_ context.Context, msgs ...*sarama.ProducerMessage) error {
	if s.offsets == nil {
		s.offsets = map[string]int64{}
	}
	for _, m := range msgs {
		m.Offset = s.offsets[m.Topic]
		s.offsets[m.Topic]++
	}
	s.calls = append(s.calls, msgs)
	return nil
}

type noDLQ struct{}

func (noDLQ) Publish(context.Context, *sarama.ConsumerMessage, dlq.Failure) error {
	return errors.New("the workflow must not dead-letter here")
}

func intentMsg(t *testing.T, node uuid.UUID, typ string, seq int64, attempt uuid.UUID) *bus.Message {
	t.Helper()
	in := pipeline.Intent{IntentID: uuid.NewSHA1(node, fmt.Appendf(nil, "intent:%d", seq)), IntentType: typ, Target: "test://" + typ,
		Payload: []byte(`{"intent_type":"` + typ + `"}`), Priority: 1, NodeID: node, Sequence: seq, RegistrationAttemptID: attempt}
	env, err := envelope.New(in, envelope.WithCorrelationID(uuid.New()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Topic: "intents", Key: []byte(node.String()), Value: b, CorrelationID: uuid.New()}
}

// HandleBatch sends untracked intents together, sends a node's pending
// records before its tracked intent, and at an unroutable record sends
// what came before and names it.
func TestHandleBatchIntents(t *testing.T) {
	s := &sender{}
	w := New(Config{IntentsTopic: "intents", ResultsTopic: "results", StateTopic: "state", ResultTopic: "result",
		Routes:         map[string]string{pipeline.PostgresUpdate: "pg", pipeline.PostgresUpsert: "pg", pipeline.ConsulRegister: "consul"},
		AttemptIntents: []string{pipeline.PostgresUpsert, pipeline.ConsulRegister}, Policy: policy, Source: "test",
		Send: s, DLQ: noDLQ{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	a, b, c, attempt := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	msgs := []*bus.Message{
		intentMsg(t, a, pipeline.PostgresUpdate, 10, uuid.Nil),
		intentMsg(t, b, pipeline.PostgresUpdate, 11, uuid.Nil),
		intentMsg(t, a, pipeline.PostgresUpsert, 12, attempt), // tracked: a's update goes first
		intentMsg(t, a, pipeline.PostgresUpdate, 13, uuid.Nil),
		intentMsg(t, b, "vault.write", 14, uuid.Nil), // no route
		intentMsg(t, c, pipeline.PostgresUpdate, 15, uuid.Nil),
	}
	err := w.HandleBatch(context.Background(), msgs)
	var be *bus.BatchError
	if !errors.As(err, &be) || be.Done != 4 {
		t.Fatalf("error %v, want a BatchError at 4", err)
	}
	if k, _ := infraerr.KindOf(be.Err); k != infraerr.KindConfiguration || !strings.Contains(be.Err.Error(), "vault.write") {
		t.Fatalf("culprit error %v", be.Err)
	}
	if err := w.HandleBatch(context.Background(), msgs[5:]); err != nil {
		t.Fatal(err)
	}
	// Per call: topic:sequence of each record (state records as "state").
	var got []string
	for _, call := range s.calls {
		var recs []string
		for _, m := range call {
			if m.Topic == "state" {
				recs = append(recs, "state")
				continue
			}
			v, _ := m.Value.Encode()
			env, err := envelope.Decode(v)
			if err != nil {
				t.Fatal(err)
			}
			in, err := pipeline.DecodeIntent(env.Payload)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, fmt.Sprintf("%s:%d", m.Topic, in.Sequence))
		}
		got = append(got, strings.Join(recs, ","))
	}
	want := []string{"pg:10,pg:11", "pg:12", "state", "pg:13", "pg:15"}
	if !slices.Equal(got, want) {
		t.Fatalf("sends %q, want %q", got, want)
	}
	agg, ok := w.InFlight(a)
	if !ok || agg.AttemptID != attempt || agg.Intents["postgres"] == nil || agg.Intents["postgres"].RoutedOffset != 2 {
		t.Fatalf("aggregation of the tracked intent %+v (in flight %v)", agg, ok)
	}
}
