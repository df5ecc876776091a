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
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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

// mustHandle hands msgs to w.Handle as one batch and fails the test unless
// every record is done.
func mustHandle(t testing.TB, w *Workflow, msgs ...*bus.Message) {
	t.Helper()
	if err := handled(w, msgs...); err != nil {
		t.Fatal(err)
	}
}

// handled hands msgs to w.Handle as one batch and returns its error, or one
// naming the first record that is not done.
func handled(w *Workflow, msgs ...*bus.Message) error {
	out, err := w.Handle(context.Background(), msgs)
	if err != nil {
		return err
	}
	if len(out.Records) > 0 {
		return fmt.Errorf("%d records returned: the workflow sends its own", len(out.Records))
	}
	if out.Outcomes != nil && len(out.Outcomes) != len(msgs) {
		return fmt.Errorf("%d outcomes for %d records", len(out.Outcomes), len(msgs))
	}
	for i, o := range out.Outcomes {
		if o.Verdict != bus.Done {
			return fmt.Errorf("record %d: %s: %w", i, o.Verdict, o.Err)
		}
	}
	return nil
}

// sent lists the records of each send, a routed intent as topic:sequence
// and a state record as "state".
func sent(t *testing.T, calls [][]*sarama.ProducerMessage) []string {
	t.Helper()
	var got []string
	for _, call := range calls {
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
	return got
}

// Handle sends a batch's intents, tracked or not, in record order in one
// send with the state of the aggregations they changed. A record that is
// not an intent and an intent without a route are rejected, each with its
// reason, and the rest of the batch is routed.
func TestHandleIntents(t *testing.T) {
	s := &sender{}
	cfg := attemptConfig(s, noDLQ{})
	cfg.Routes[pipeline.PostgresUpdate] = "pg"
	cfg.Registerer = prometheus.NewRegistry()
	w := New(cfg)
	a, b, c, attempt := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	msgs := []*bus.Message{
		intentMsg(t, a, pipeline.PostgresUpdate, 10, uuid.Nil),
		intentMsg(t, b, pipeline.PostgresUpdate, 11, uuid.Nil),
		{Topic: "intents", Key: []byte(c.String()), Value: []byte("not an intent record"), CorrelationID: uuid.New()},
		intentMsg(t, a, pipeline.PostgresUpsert, 12, attempt), // tracked: a's update goes first
		intentMsg(t, a, pipeline.PostgresUpdate, 13, uuid.Nil),
		intentMsg(t, b, "vault.write", 14, uuid.Nil), // no route
		intentMsg(t, c, pipeline.PostgresUpdate, 15, uuid.Nil),
	}
	out, err := w.Handle(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 0 || len(out.Outcomes) != len(msgs) {
		t.Fatalf("output %d records, %d outcomes; want outcomes only, one per record", len(out.Records), len(out.Outcomes))
	}
	for i, o := range out.Outcomes {
		var ok bool
		switch i {
		case 2:
			ok = o.Verdict == bus.DeadLetter && infraerr.IsContent(o.Err)
		case 5:
			k, _ := infraerr.KindOf(o.Err)
			ok = o.Verdict == bus.DeadLetter && k == infraerr.KindConfiguration && strings.Contains(o.Err.Error(), "vault.write")
		default:
			ok = o.Verdict == bus.Done
		}
		if !ok {
			t.Errorf("record %d: outcome %s (%v)", i, o.Verdict, o.Err)
		}
	}
	// One send: the routable intents in record order, then the state of
	// the aggregation the tracked intent opened.
	want := []string{"pg:10,pg:11,pg:12,pg:13,pg:15,state"}
	if got := sent(t, s.calls); !slices.Equal(got, want) {
		t.Fatalf("sends %q, want %q", got, want)
	}
	agg, ok := w.InFlight(a)
	if !ok || agg.AttemptID != attempt || agg.Intents["postgres"] == nil || agg.Intents["postgres"].RoutedOffset != 2 {
		t.Fatalf("aggregation of the tracked intent %+v (in flight %v)", agg, ok)
	}
	if n := testutil.ToFloat64(w.m.unrouted); n != 1 {
		t.Errorf("unrouted counted %v, want 1", n)
	}
	if n := testutil.ToFloat64(w.m.routed.WithLabelValues(pipeline.PostgresUpdate)); n != 4 {
		t.Errorf("updates routed counted %v, want 4", n)
	}
}

// A batch whose send fails fails as a whole: nothing of it is recorded as
// routed or published, its aggregations are handed to the retry loop, and
// the same records handed again one at a time (as the runner does then)
// are all carried out.
func TestHandleFailedSendFailsTheBatch(t *testing.T) {
	for _, topic := range []string{"pg", "result"} {
		t.Run(topic, func(t *testing.T) {
			s := &sender{}
			f := &failOnce{sender: s, topic: topic}
			cfg := attemptConfig(f, noDLQ{})
			cfg.Routes[pipeline.PostgresUpdate] = "pg"
			cfg.Registerer = prometheus.NewRegistry()
			w := New(cfg)
			w.now = func() time.Time { return t0 }
			node, other, attempt := uuid.New(), uuid.New(), uuid.New()
			msgs := []*bus.Message{intentMsg(t, node, pipeline.PostgresUpsert, 1, attempt),
				intentMsg(t, other, pipeline.PostgresUpdate, 2, uuid.Nil), intentMsg(t, node, pipeline.ConsulRegister, 3, attempt)}
			if topic == "result" {
				mustHandle(t, w, msgs...)
				msgs = []*bus.Message{resultMsg(t, w, node, "postgres", 0, true), resultMsg(t, w, node, "consul", 0, true)}
			}
			before := len(s.calls)
			out, err := w.Handle(context.Background(), msgs)
			if err == nil || out.Outcomes != nil || out.Records != nil {
				t.Fatalf("output %+v, error %v; want the send's error alone", out, err)
			}
			if len(s.calls) != before {
				t.Fatalf("%d sends went through a failing broker", len(s.calls)-before)
			}
			if !w.unflushed[node] || !w.wakeAt.Equal(t0.Add(retryLater)) {
				t.Fatalf("retry loop not asked to finish %s (unflushed %v, wakes at %v)", node, w.unflushed, w.wakeAt)
			}
			agg, _ := w.InFlight(node)
			switch topic {
			case "pg":
				if n := testutil.ToFloat64(w.m.routed.WithLabelValues(pipeline.PostgresUpdate)); n != 0 {
					t.Fatalf("routed counted %v for a failed send", n)
				}
			case "result":
				if n := testutil.ToFloat64(w.m.regResults.WithLabelValues(pipeline.StatusSuccess)); n != 0 || len(agg.results) != 1 {
					t.Fatalf("result counted %v for a failed send, %d pending", n, len(agg.results))
				}
			}
			for _, m := range msgs {
				mustHandle(t, w, m)
			}
			switch topic {
			case "pg":
				if got, want := sent(t, s.calls[before:]), []string{"pg:1,state", "pg:2", "consul:3,state"}; !slices.Equal(got, want) {
					t.Fatalf("sends one at a time %q, want %q", got, want)
				}
				if agg, ok := w.InFlight(node); !ok || agg.Intents["postgres"].SentAt == nil || agg.Intents["consul"].SentAt == nil {
					t.Fatalf("aggregation %+v (in flight %v), want both intents sent", agg, ok)
				}
			case "result":
				if n := testutil.ToFloat64(w.m.regResults.WithLabelValues(pipeline.StatusSuccess)); n != 1 {
					t.Fatalf("success results counted %v, want 1", n)
				}
				if _, ok := w.InFlight(node); ok {
					t.Fatal("finished aggregation still in flight")
				}
			}
		})
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
func TestHandleResults(t *testing.T) {
	s := &sender{}
	w := New(attemptConfig(s, noDLQ{}))
	a, b := uuid.New(), uuid.New()
	var intents []*bus.Message
	for i, n := range []uuid.UUID{a, b} {
		att := uuid.New()
		intents = append(intents, intentMsg(t, n, pipeline.PostgresUpsert, int64(10*i+1), att), intentMsg(t, n, pipeline.ConsulRegister, int64(10*i+2), att))
	}
	mustHandle(t, w, intents...)
	s.calls = nil
	// a: both succeed (done); b: postgres succeeds, consul fails (partial,
	// retry scheduled, still in flight). One result is in the JSON form of
	// an effect that predates protobuf.
	results := []*bus.Message{jsonResultMsg(t, w, a, "postgres", 0, true), resultMsg(t, w, b, "postgres", 0, true),
		resultMsg(t, w, a, "consul", 0, true), resultMsg(t, w, b, "consul", 0, false)}
	mustHandle(t, w, results...)
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
func TestHandleNewerAttemptInSameBatch(t *testing.T) {
	s := &sender{}
	w := New(attemptConfig(s, noDLQ{}))
	n, first, second := uuid.New(), uuid.New(), uuid.New()
	msgs := []*bus.Message{intentMsg(t, n, pipeline.PostgresUpsert, 1, first), intentMsg(t, n, pipeline.ConsulRegister, 2, first),
		intentMsg(t, n, pipeline.PostgresUpsert, 3, second), intentMsg(t, n, pipeline.ConsulRegister, 4, second)}
	mustHandle(t, w, msgs...)
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
	mustHandle(t, w, msgs...)
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
// protobuf content type) is rejected with a content error, so the bus
// dead-letters it, and the results around it are applied: the attempt
// finishes.
func TestHandleResultOfUnknownContentType(t *testing.T) {
	s := &sender{}
	w := New(attemptConfig(s, noDLQ{}))
	n, attempt := uuid.New(), uuid.New()
	mustHandle(t, w, intentMsg(t, n, pipeline.PostgresUpsert, 1, attempt), intentMsg(t, n, pipeline.ConsulRegister, 2, attempt))
	bad := resultMsg(t, w, n, "consul", 0, true)
	bad.Headers = []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.IntentContentType)}}
	s.calls = nil
	out, err := w.Handle(context.Background(), []*bus.Message{resultMsg(t, w, n, "postgres", 0, true), bad, resultMsg(t, w, n, "consul", 0, true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Outcomes) != 3 || out.Outcomes[0].Verdict != bus.Done || out.Outcomes[2].Verdict != bus.Done {
		t.Fatalf("outcomes %+v, want the good results done", out.Outcomes)
	}
	if o := out.Outcomes[1]; o.Verdict != bus.DeadLetter || !infraerr.IsContent(o.Err) || !strings.Contains(o.Err.Error(), "unsupported content type") {
		t.Fatalf("outcome of the unreadable result %s (%v), want a content error to dead-letter", o.Verdict, o.Err)
	}
	if agg, ok := w.InFlight(n); ok {
		t.Fatalf("aggregation %+v still in flight after both results", agg)
	}
	if len(s.calls) != 1 || len(s.calls[0]) != 2 || s.calls[0][0].Topic != "result" || s.calls[0][1].Value != nil {
		t.Fatalf("sends %v, want the success result and the tombstone", s.calls)
	}
}

// A result that gives up an intent (a non-retriable failure) decides the
// attempt within the batch: the registration result is published, the
// intent dead-lettered and the aggregation's tombstone written, and the
// result record is done.
func TestHandleResultGivesUpIntent(t *testing.T) {
	s, dl := &sender{}, &recDLQ{}
	cfg := attemptConfig(s, dl)
	cfg.Registerer = prometheus.NewRegistry()
	w := New(cfg)
	node, attempt := uuid.New(), uuid.New()
	mustHandle(t, w, intentMsg(t, node, pipeline.PostgresUpsert, 1, attempt), intentMsg(t, node, pipeline.ConsulRegister, 2, attempt))
	rec := resultRecord(t, w, node, "postgres", 0, false)
	rec.Result.Retriable = false
	b, err := pipeline.MarshalEffectResult(rec)
	if err != nil {
		t.Fatal(err)
	}
	failed := &bus.Message{Topic: "results", Key: []byte(node.String()), Value: b,
		Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.EffectResultContentType)}}}
	mustHandle(t, w, resultMsg(t, w, node, "consul", 0, true), failed)
	if len(dl.failures) != 1 || !strings.Contains(dl.failures[0].Err.Error(), "non-retriable") {
		t.Fatalf("dead letters %+v, want the postgres intent given up", dl.failures)
	}
	if n := testutil.ToFloat64(w.m.exhausted.WithLabelValues("postgres")); n != 1 {
		t.Errorf("given up counted %v, want 1", n)
	}
	if n := testutil.ToFloat64(w.m.regResults.WithLabelValues(pipeline.StatusPartial)); n != 1 {
		t.Errorf("partial results counted %v, want 1", n)
	}
	if _, ok := w.InFlight(node); ok {
		t.Fatal("decided aggregation still in flight")
	}
	last := s.calls[len(s.calls)-1]
	if len(last) != 1 || last[0].Topic != "state" || last[0].Value != nil {
		t.Fatalf("last send %v, want the tombstone", last)
	}
}
