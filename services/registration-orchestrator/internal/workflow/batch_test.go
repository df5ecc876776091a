package workflow

import (
	"context"
	"encoding/json"
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
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
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

// HandleBatch sends the batch's intents, tracked or not, in record order in
// one send with the state of the aggregations they changed, and at an
// unroutable record sends what came before and names it.
func TestHandleBatchIntents(t *testing.T) {
	s := &sender{}
	cfg := attemptConfig(s, noDLQ{})
	cfg.Routes[pipeline.PostgresUpdate] = "pg"
	w := New(cfg)
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
	// One send up to the culprit: the intents in record order, then the
	// state of the aggregation the tracked intent opened.
	want := []string{"pg:10,pg:11,pg:12,pg:13,state", "pg:15"}
	if !slices.Equal(got, want) {
		t.Fatalf("sends %q, want %q", got, want)
	}
	agg, ok := w.InFlight(a)
	if !ok || agg.AttemptID != attempt || agg.Intents["postgres"] == nil || agg.Intents["postgres"].RoutedOffset != 2 {
		t.Fatalf("aggregation of the tracked intent %+v (in flight %v)", agg, ok)
	}
}

// attemptConfig is a workflow whose registration attempt is a postgres
// upsert and a Consul registration, routed to topics "pg" and "consul".
func attemptConfig(send Sender, dl DeadLetters) Config {
	return Config{IntentsTopic: "intents", ResultsTopic: "results", StateTopic: "state", ResultTopic: "result",
		Routes:         map[string]string{pipeline.PostgresUpsert: "pg", pipeline.ConsulRegister: "consul"},
		AttemptIntents: []string{pipeline.PostgresUpsert, pipeline.ConsulRegister}, Policy: policy, Source: "test",
		Send: send, DLQ: dl, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// resultMsg is the effect result record of backend for delivery attempt of
// the tracked intent of node's aggregation in w, in the protobuf form the
// effects write; a failure is a retriable <BACKEND>_CONNECTION_ERROR.
func resultMsg(t testing.TB, w *Workflow, node uuid.UUID, backend string, attempt int, ok bool) *bus.Message {
	t.Helper()
	rec := resultRecord(t, w, node, backend, attempt, ok)
	b, err := pipeline.MarshalEffectResult(rec)
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Topic: "results", Key: []byte(node.String()), Value: b,
		Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.EffectResultContentType)}}}
}

// jsonResultMsg is resultMsg in the JSON form of an effect that predates
// protobuf: an envelope, without a content_type header.
func jsonResultMsg(t testing.TB, w *Workflow, node uuid.UUID, backend string, attempt int, ok bool) *bus.Message {
	t.Helper()
	rec := resultRecord(t, w, node, backend, attempt, ok)
	b, err := wire.Envelope(rec.Result, "results", rec.EnvelopeID, uuid.New(), "EffectResult", "event")
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Topic: "results", Key: []byte(node.String()), Value: b}
}

func resultRecord(t testing.TB, w *Workflow, node uuid.UUID, backend string, attempt int, ok bool) pipeline.EffectResultRecord {
	t.Helper()
	agg, found := w.InFlight(node)
	if !found {
		t.Fatalf("no aggregation for %s", node)
	}
	tr := agg.Intents[backend]
	res := pipeline.EffectResult{IntentID: tr.IntentID, IntentType: tr.IntentType, Backend: backend, NodeID: node,
		RegistrationAttemptID: agg.AttemptID, Sequence: tr.Sequence, Attempt: attempt, Success: ok, Retriable: !ok}
	if !ok {
		code := strings.ToUpper(backend) + "_CONNECTION_ERROR"
		res.ErrorCode = &code
	}
	return pipeline.EffectResultRecord{Result: &res, EnvelopeID: uuid.New()}
}

// A batch of results is applied together: one send carries the results it
// decided and the state or tombstone of every aggregation it changed.
func TestHandleBatchResults(t *testing.T) {
	s := &sender{}
	w := New(attemptConfig(s, noDLQ{}))
	a, b := uuid.New(), uuid.New()
	var intents []*bus.Message
	for i, n := range []uuid.UUID{a, b} {
		att := uuid.New()
		intents = append(intents, intentMsg(t, n, pipeline.PostgresUpsert, int64(10*i+1), att), intentMsg(t, n, pipeline.ConsulRegister, int64(10*i+2), att))
	}
	if err := w.HandleBatch(context.Background(), intents); err != nil {
		t.Fatal(err)
	}
	s.calls = nil
	// a: both succeed (done); b: postgres succeeds, consul fails (partial,
	// retry scheduled, still in flight). One result is in the JSON form of
	// an effect that predates protobuf.
	results := []*bus.Message{jsonResultMsg(t, w, a, "postgres", 0, true), resultMsg(t, w, b, "postgres", 0, true),
		resultMsg(t, w, a, "consul", 0, true), resultMsg(t, w, b, "consul", 0, false)}
	if err := w.HandleBatch(context.Background(), results); err != nil {
		t.Fatal(err)
	}
	if len(s.calls) != 1 {
		t.Fatalf("%d sends for a batch of results, want 1", len(s.calls))
	}
	var got []string
	for _, m := range s.calls[0] {
		k, _ := m.Key.Encode()
		who := map[string]string{a.String(): "a", b.String(): "b"}[string(k)]
		switch {
		case m.Topic == "state" && m.Value == nil:
			got = append(got, "tombstone:"+who)
		case m.Topic == "state":
			got = append(got, "state:"+who)
		default:
			v, _ := m.Value.Encode()
			env, err := envelope.Decode(v)
			if err != nil {
				t.Fatal(err)
			}
			var r pipeline.RegistrationResult
			if err := json.Unmarshal(env.Payload, &r); err != nil {
				t.Fatal(err)
			}
			got = append(got, r.Status+":"+who)
		}
	}
	want := []string{"success:a", "tombstone:a", "partial:b", "state:b"}
	if !slices.Equal(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	if _, ok := w.InFlight(a); ok {
		t.Error("a's finished aggregation is still in flight")
	}
	if agg, ok := w.InFlight(b); !ok || agg.Intents["consul"].NextRetryAt == nil {
		t.Errorf("b's aggregation %+v (in flight %v), want a consul retry scheduled", agg, ok)
	}
}

// A newer attempt that replaces the one in flight within one batch is the
// one whose state is written and whose results count.
func TestHandleBatchNewerAttemptInSameBatch(t *testing.T) {
	s := &sender{}
	w := New(attemptConfig(s, noDLQ{}))
	n, first, second := uuid.New(), uuid.New(), uuid.New()
	msgs := []*bus.Message{intentMsg(t, n, pipeline.PostgresUpsert, 1, first), intentMsg(t, n, pipeline.ConsulRegister, 2, first),
		intentMsg(t, n, pipeline.PostgresUpsert, 3, second), intentMsg(t, n, pipeline.ConsulRegister, 4, second)}
	if err := w.HandleBatch(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	var states []Aggregation
	for _, m := range s.calls[0] {
		if m.Topic != "state" {
			continue
		}
		a, err := decodeState(m)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, *a)
	}
	if len(states) != 1 || states[0].AttemptID != second || len(states[0].Intents) != 2 {
		t.Fatalf("state records %+v, want one of the second attempt with both intents", states)
	}
	if agg, ok := w.InFlight(n); !ok || agg.AttemptID != second || agg.wakeAt.IsZero() {
		t.Fatalf("in flight %+v (%v), want the second attempt with its step timeout queued", agg, ok)
	}
}

// A refresh (the Consul register at a node's ack) is routed untracked: it
// opens no aggregation, so no attempt waits for a postgres result that
// never comes, and it leaves an attempt in flight as it is.
func TestRefreshRoutedUntracked(t *testing.T) {
	s := &sender{}
	w := New(attemptConfig(s, noDLQ{}))
	a, b, attempt := uuid.New(), uuid.New(), uuid.New()
	refresh := func(node uuid.UUID, seq int64) *bus.Message {
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
	msgs := []*bus.Message{
		refresh(a, 3), // no attempt in flight
		intentMsg(t, b, pipeline.PostgresUpsert, 1, attempt),
		refresh(b, 2), // an attempt in flight
	}
	if err := w.HandleBatch(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if agg, ok := w.InFlight(a); ok {
		t.Fatalf("a refresh opened an aggregation: %+v", agg)
	}
	agg, ok := w.InFlight(b)
	if !ok || agg.Intents["consul"] != nil || agg.Intents["postgres"] == nil {
		t.Fatalf("the refresh changed the attempt in flight: %+v", agg)
	}
	routed := 0
	for _, call := range s.calls {
		for _, m := range call {
			if m.Topic == "consul" {
				routed++
			}
		}
	}
	if routed != 2 {
		t.Fatalf("%d refreshes routed to consul, want 2", routed)
	}
}

// A result record the orchestrator cannot read (here: another message's
// protobuf content type) stops the batch at it with a content error, so
// the bus dead-letters it; the results before it are applied.
func TestHandleBatchResultOfUnknownContentType(t *testing.T) {
	s := &sender{}
	w := New(attemptConfig(s, noDLQ{}))
	n, attempt := uuid.New(), uuid.New()
	if err := w.HandleBatch(context.Background(), []*bus.Message{intentMsg(t, n, pipeline.PostgresUpsert, 1, attempt),
		intentMsg(t, n, pipeline.ConsulRegister, 2, attempt)}); err != nil {
		t.Fatal(err)
	}
	bad := resultMsg(t, w, n, "consul", 0, true)
	bad.Headers = []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.IntentContentType)}}
	err := w.HandleBatch(context.Background(), []*bus.Message{resultMsg(t, w, n, "postgres", 0, true), bad})
	var be *bus.BatchError
	if !errors.As(err, &be) || be.Done != 1 || !infraerr.IsContent(be.Err) || !strings.Contains(be.Err.Error(), "unsupported content type") {
		t.Fatalf("error %v, want a content BatchError at 1", err)
	}
	if agg, ok := w.InFlight(n); !ok || agg.Intents["postgres"].State != StateSucceeded || agg.Intents["consul"].State != StatePending {
		t.Fatalf("aggregation %+v (in flight %v)", agg, ok)
	}
}
