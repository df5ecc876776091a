package workflow

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// protoIntentMsg is intentMsg in the protobuf form the reducer writes.
func protoIntentMsg(t *testing.T, node uuid.UUID, typ string, seq int64, attempt uuid.UUID) *bus.Message {
	t.Helper()
	in := &pipeline.Intent{IntentID: uuid.NewSHA1(node, fmt.Appendf(nil, "intent:%d", seq)), IntentType: typ, Target: "test://" + typ,
		Payload: []byte(`{"intent_type":"` + typ + `"}`), Priority: 1, NodeID: node, Sequence: seq, RegistrationAttemptID: attempt}
	if typ == pipeline.PostgresUpdate {
		in.Payload, in.Update = nil, &pipeline.PostgresUpdatePayload{IntentType: typ, EntityID: node, Domain: "registration",
			Updates: pipeline.ProjectionUpdate{CurrentState: "active", UpdatedAt: pipeline.T(t0), RegisteredAt: pipeline.T(t0)}}
	}
	corr := uuid.New()
	b, err := pipeline.MarshalIntent(pipeline.IntentRecord{Intent: in, EnvelopeID: in.IntentID, CreatedAt: t0, CorrelationID: corr})
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Message{Topic: "intents", Key: []byte(node.String()), Value: b, CorrelationID: corr,
		Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.IntentContentType)}}}
}

// producedContentType is the content_type header of a produced record.
func producedContentType(m *sarama.ProducerMessage) string {
	hs := make([]*sarama.RecordHeader, len(m.Headers))
	for i := range m.Headers {
		hs[i] = &m.Headers[i]
	}
	return pipeline.ContentType(hs)
}

// A protobuf intent is routed as it came, value and content type; the
// aggregation keeps its bytes through the state topic, and a re-send is
// the same protobuf record with its own attempt, envelope id and time.
func TestProtobufIntentsRoutedKeptAndResent(t *testing.T) {
	s := &sender{}
	cfg := attemptConfig(s, noDLQ{})
	cfg.Routes[pipeline.PostgresUpdate] = "pg"
	w := New(cfg)
	clock := t0
	w.now, w.rand = func() time.Time { return clock }, half
	node, other, attempt := uuid.New(), uuid.New(), uuid.New()
	msgs := []*bus.Message{
		protoIntentMsg(t, other, pipeline.PostgresUpdate, 3, uuid.Nil),
		protoIntentMsg(t, node, pipeline.PostgresUpsert, 1, attempt),
		intentMsg(t, node, pipeline.ConsulRegister, 2, attempt), // an older reducer's JSON record
	}
	mustHandle(t, w, msgs...)
	var routed []*sarama.ProducerMessage
	var state *sarama.ProducerMessage
	for _, m := range s.calls[0] {
		if m.Topic == "state" {
			state = m
			continue
		}
		routed = append(routed, m)
	}
	if len(routed) != 3 {
		t.Fatalf("routed %d records, want 3", len(routed))
	}
	for i, m := range routed {
		v, _ := m.Value.Encode()
		want := pipeline.IntentContentType
		if i == 2 {
			want = pipeline.ContentTypeJSON
		}
		if !bytes.Equal(v, msgs[i].Value) || producedContentType(m) != want {
			t.Errorf("record %d routed with content type %q (want %q), value unchanged %v", i, producedContentType(m), want, bytes.Equal(v, msgs[i].Value))
		}
	}

	// The state record keeps both forms, and a restore reads them back.
	restored, err := decodeState(state)
	if err != nil {
		t.Fatal(err)
	}
	pg, consul := restored.Intents["postgres"], restored.Intents["consul"]
	if pg == nil || consul == nil || !bytes.Equal(pg.Record, msgs[1].Value) || pg.ContentType != pipeline.IntentContentType || pg.Envelope != nil ||
		consul.Record != nil || consul.ContentType != "" {
		t.Fatalf("state %+v", restored)
	}
	if r, err := pipeline.DecodeIntentRecord(nil, consul.Envelope); err != nil || r.Intent.IntentID != consul.IntentID {
		t.Fatalf("JSON intent kept in the state: %v", err)
	}

	// A failed upsert is re-sent as protobuf, attempt 1.
	mustHandle(t, w, resultMsg(t, w, node, "postgres", 0, false))
	mustHandle(t, w, resultMsg(t, w, node, "consul", 0, true))
	clock = t0.Add(2 * time.Second)
	n := len(s.calls)
	w.retryPass(context.Background())
	var resent *sarama.ProducerMessage
	for _, call := range s.calls[n:] {
		for _, m := range call {
			if m.Topic == "pg" {
				resent = m
			}
		}
	}
	if resent == nil {
		t.Fatal("no re-send")
	}
	if ct := producedContentType(resent); ct != pipeline.IntentContentType {
		t.Fatalf("re-sent with content type %q", ct)
	}
	v, _ := resent.Value.Encode()
	r, err := pipeline.UnmarshalIntent(v)
	if err != nil {
		t.Fatal(err)
	}
	if r.Intent.Attempt != 1 || r.Intent.IntentID != uuid.NewSHA1(node, []byte("intent:1")) || r.EnvelopeID == r.Intent.IntentID ||
		!r.CreatedAt.Equal(clock) || r.CorrelationID != msgs[1].CorrelationID || string(r.Intent.Payload) != `{"intent_type":"postgres.upsert_registration"}` {
		t.Fatalf("re-sent intent %+v %+v", r, r.Intent)
	}
}

// A JSON intent's re-send stays JSON (the intent's attempt in the envelope).
func TestAttemptEnvelopeKeepsTheForm(t *testing.T) {
	node := uuid.New()
	for _, msg := range []*bus.Message{intentMsg(t, node, pipeline.PostgresUpsert, 1, uuid.New()), protoIntentMsg(t, node, pipeline.PostgresUpsert, 1, uuid.New())} {
		tr := &Tracked{IntentID: uuid.NewSHA1(node, []byte("intent:1"))}
		tr.setValue(pipeline.ContentType(msg.Headers), msg.Value)
		ct, v, err := attemptEnvelope(tr, 2, t0)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pipeline.DecodeIntentRecord([]*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(ct)}}, v)
		if err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		if ct != pipeline.ContentType(msg.Headers) && !(ct == pipeline.ContentTypeJSON && msg.Headers == nil) {
			t.Errorf("form %q became %q", pipeline.ContentType(msg.Headers), ct)
		}
		if r.Intent.Attempt != 2 || r.EnvelopeID != uuid.NewSHA1(tr.IntentID, []byte("attempt:2")) || !r.CreatedAt.Equal(t0) {
			t.Errorf("%s: re-encoded %+v %+v", ct, r, r.Intent)
		}
		if ct == pipeline.ContentTypeJSON {
			if _, err := envelope.Decode(v); err != nil {
				t.Errorf("JSON re-send is no envelope: %v", err)
			}
		}
	}
}
