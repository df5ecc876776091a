package effect

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// record is the JSON form of an intent, as the runner hands it over.
func record(t *testing.T, in pipeline.Intent, payload any, corr uuid.UUID) *bus.Message {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	in.Payload = b
	env, err := envelope.New(in, envelope.WithCorrelationID(corr))
	if err != nil {
		t.Fatal(err)
	}
	v, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return bus.FromConsumerMessage(&sarama.ConsumerMessage{Topic: "onex.cmd.platform.postgres-intents.v1", Value: v})
}

// protoRecord is record in the protobuf form the reducer writes: an
// update's payload as fields, any other as its JSON.
func protoRecord(t *testing.T, in pipeline.Intent, payload any, corr uuid.UUID) *bus.Message {
	t.Helper()
	if u, ok := payload.(pipeline.PostgresUpdatePayload); ok && in.IntentType == pipeline.PostgresUpdate {
		in.Update = &u
	} else {
		b, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		in.Payload = b
	}
	v, err := pipeline.MarshalIntent(pipeline.IntentRecord{Intent: &in, EnvelopeID: in.IntentID, CreatedAt: time.Now(), CorrelationID: corr})
	if err != nil {
		t.Fatal(err)
	}
	return bus.FromConsumerMessage(&sarama.ConsumerMessage{Topic: "onex.cmd.platform.postgres-intents.v1", Value: v,
		Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.IntentContentType)}}})
}

func TestDecode(t *testing.T) {
	for _, form := range []struct {
		name   string
		record func(*testing.T, pipeline.Intent, any, uuid.UUID) *bus.Message
	}{{"json", record}, {"protobuf", protoRecord}} {
		t.Run(form.name, func(t *testing.T) { testDecode(t, form.record) })
	}
}

// TestDecodeFormsAgree: both forms of an intent make the same write.
func TestDecodeFormsAgree(t *testing.T) {
	node, attempt, corr := uuid.New(), uuid.New(), uuid.New()
	now := pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))
	later := pipeline.T(now.Add(30 * time.Second))
	for _, tc := range []struct {
		typ     string
		payload any
	}{
		{pipeline.PostgresUpdate, pipeline.PostgresUpdatePayload{IntentType: pipeline.PostgresUpdate, CorrelationID: corr, EntityID: node, Domain: "registration",
			Updates: pipeline.ProjectionUpdate{CurrentState: "active", LivenessDeadline: &later, LastHeartbeatAt: &now, UpdatedAt: now, NodeType: "effect",
				RegisteredAt: now, LastAppliedEventID: attempt}}},
		{pipeline.PostgresUpsert, pipeline.PostgresUpsertPayload{IntentType: pipeline.PostgresUpsert, CorrelationID: corr,
			Record: pipeline.ProjectionRecord{EntityID: node, CurrentState: "awaiting_ack", Domain: "registration", NodeType: "effect",
				Data: pipeline.ProjectionData{NodeVersion: "1.2.0", Capabilities: json.RawMessage(`{"read": true}`),
					LastAppliedEventID: attempt, RegisteredAt: now, UpdatedAt: now, CorrelationID: corr}}}},
	} {
		in := pipeline.Intent{IntentID: uuid.New(), IntentType: tc.typ, Target: "postgres://node_registrations/" + node.String(),
			NodeID: node, Sequence: 7, RegistrationAttemptID: attempt, Priority: 1}
		a, b := Decode(record(t, in, tc.payload, corr)), Decode(protoRecord(t, in, tc.payload, corr))
		if a.Err != nil || b.Err != nil {
			t.Fatalf("%s: %v / %v", tc.typ, a.Err, b.Err)
		}
		// The JSON form's payload was re-formatted the Python way: the
		// same JSON, other spaces (the column is jsonb).
		for _, w := range []*store.Write{&a.Write, &b.Write} {
			var c bytes.Buffer
			if err := json.Compact(&c, w.Capabilities); err == nil {
				w.Capabilities = c.Bytes()
			}
		}
		if !reflect.DeepEqual(a.Write, b.Write) || a.CorrelationID != b.CorrelationID {
			t.Errorf("%s: json form %+v, protobuf form %+v", tc.typ, a.Write, b.Write)
		}
	}
}

func testDecode(t *testing.T, record func(*testing.T, pipeline.Intent, any, uuid.UUID) *bus.Message) {
	node, attempt, corr := uuid.New(), uuid.New(), uuid.New()
	now := pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))
	upsert := func(mut func(*pipeline.PostgresUpsertPayload)) pipeline.PostgresUpsertPayload {
		p := pipeline.PostgresUpsertPayload{IntentType: pipeline.PostgresUpsert, CorrelationID: corr,
			Record: pipeline.ProjectionRecord{EntityID: node, CurrentState: "awaiting_ack", Domain: "registration", NodeType: "effect",
				Data: pipeline.ProjectionData{NodeVersion: "1.2.0", Capabilities: json.RawMessage(`{"read": true}`),
					LastAppliedEventID: attempt, RegisteredAt: now, UpdatedAt: now, CorrelationID: corr}}}
		if mut != nil {
			mut(&p)
		}
		return p
	}
	update := func(mut func(*pipeline.PostgresUpdatePayload)) pipeline.PostgresUpdatePayload {
		p := pipeline.PostgresUpdatePayload{IntentType: pipeline.PostgresUpdate, CorrelationID: corr, EntityID: node, Domain: "registration",
			Updates: pipeline.ProjectionUpdate{CurrentState: "active", LivenessDeadline: &now, UpdatedAt: now, NodeType: "effect",
				RegisteredAt: now, LastAppliedEventID: attempt}}
		if mut != nil {
			mut(&p)
		}
		return p
	}
	intent := func(typ string, seq int64) pipeline.Intent {
		return pipeline.Intent{IntentID: uuid.New(), IntentType: typ, Target: "postgres://node_registrations/" + node.String(),
			NodeID: node, Sequence: seq, RegistrationAttemptID: attempt, Priority: 1}
	}
	tests := []struct {
		name   string
		msg    *bus.Message
		kind   store.Kind
		code   string // "" = valid
		intent bool
	}{
		{"upsert", record(t, intent(pipeline.PostgresUpsert, 1), upsert(nil), corr), store.Upsert, "", true},
		{"update", record(t, intent(pipeline.PostgresUpdate, 3), update(nil), corr), store.Update, "", true},
		{"not json", bus.FromConsumerMessage(&sarama.ConsumerMessage{Value: []byte("{")}), 0, store.CodeUpsert, false},
		{"consul intent", record(t, intent(pipeline.ConsulRegister, 2), upsert(nil), corr), 0, CodeInvalidTarget, true},
		{"unknown postgres intent", record(t, intent("postgres.deactivate_registration", 2), update(nil), corr), 0, store.CodeUpsert, true},
		{"entity differs", record(t, intent(pipeline.PostgresUpsert, 1), upsert(func(p *pipeline.PostgresUpsertPayload) { p.Record.EntityID = uuid.New() }), corr), 0, store.CodeUpsert, true},
		{"bad state", record(t, intent(pipeline.PostgresUpdate, 1), update(func(p *pipeline.PostgresUpdatePayload) { p.Updates.CurrentState = "asleep" }), corr), 0, store.CodeUpsert, true},
		{"bad node type", record(t, intent(pipeline.PostgresUpsert, 1), upsert(func(p *pipeline.PostgresUpsertPayload) { p.Record.NodeType = "runtime_host" }), corr), 0, store.CodeUpsert, true},
		{"capabilities not an object", record(t, intent(pipeline.PostgresUpsert, 1), upsert(func(p *pipeline.PostgresUpsertPayload) { p.Record.Data.Capabilities = json.RawMessage(`[1]`) }), corr), 0, store.CodeUpsert, true},
		{"wrong domain", record(t, intent(pipeline.PostgresUpdate, 1), update(func(p *pipeline.PostgresUpdatePayload) { p.Domain = "billing" }), corr), 0, store.CodeUpsert, true},
		{"negative sequence", record(t, intent(pipeline.PostgresUpdate, -1), update(nil), corr), 0, store.CodeUpsert, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := Decode(tt.msg)
			if (it.Intent != nil) != tt.intent {
				t.Errorf("intent decoded = %v, want %v", it.Intent != nil, tt.intent)
			}
			if tt.code == "" {
				if it.Err != nil {
					t.Fatalf("unexpected error %v", it.Err)
				}
				if it.Write.Kind != tt.kind || it.Write.NodeID != node || it.Write.AttemptID != attempt || it.CorrelationID != corr {
					t.Errorf("write %+v", it.Write)
				}
				return
			}
			if it.Err == nil || !infraerr.IsContent(it.Err) || it.Code != tt.code {
				t.Errorf("err %v (content %v), code %q; want content error with %s", it.Err, infraerr.IsContent(it.Err), it.Code, tt.code)
			}
		})
	}
}
