package pipeline

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/omninode/onex-fleet/pkg/envelope"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

func TestIntentContentType(t *testing.T) {
	if IntentContentType != "application/x-protobuf; messageType=onex.fleet.v1.Intent" {
		t.Errorf("IntentContentType = %q", IntentContentType)
	}
}

// intentRecords are one record of each intent type the reducer writes, as
// it writes them: the update's payload as fields, the others as JSON.
func intentRecords(t testing.TB) map[string]IntentRecord {
	t.Helper()
	node, attempt, corr := uuid.New(), uuid.New(), uuid.New()
	at := T(time.Date(2026, 3, 2, 14, 5, 7, 401122000, time.UTC))
	later := T(at.Add(90 * time.Second))
	mk := func(typ string, seq int64, payload any) IntentRecord {
		in := &Intent{IntentID: uuid.New(), IntentType: typ, Target: "test://" + typ, Priority: 1, NodeID: node, Sequence: seq,
			RegistrationAttemptID: attempt}
		if u, ok := payload.(*PostgresUpdatePayload); ok {
			in.Update = u
		} else {
			b, err := json.Marshal(payload)
			if err != nil {
				t.Fatal(err)
			}
			in.Payload = b
		}
		return IntentRecord{Intent: in, EnvelopeID: in.IntentID, CreatedAt: at.Time, CorrelationID: corr}
	}
	id := node.String()
	port := 8080
	out := map[string]IntentRecord{
		PostgresUpsert: mk(PostgresUpsert, 1, PostgresUpsertPayload{IntentType: PostgresUpsert, CorrelationID: corr,
			Record: ProjectionRecord{EntityID: node, CurrentState: "awaiting_ack", Domain: "registration", NodeType: "effect",
				Data: ProjectionData{NodeVersion: "1.2.0", Capabilities: json.RawMessage(`{"read":true}`), IntentTypes: []string{},
					Protocols: []string{}, CapabilityTags: []string{"onex"}, AckDeadline: &later, LastAppliedEventID: attempt,
					RegisteredAt: at, UpdatedAt: at, CorrelationID: corr, Endpoints: map[string]string{}}}}),
		PostgresUpdate: mk(PostgresUpdate, 3, &PostgresUpdatePayload{IntentType: PostgresUpdate, CorrelationID: corr, EntityID: node,
			Domain: "registration", Updates: ProjectionUpdate{CurrentState: "active", LivenessDeadline: &later, LastHeartbeatAt: &at,
				UpdatedAt: at, NodeType: "effect", RegisteredAt: at, LastAppliedEventID: attempt}}),
		ConsulRegister: mk(ConsulRegister, 2, ConsulRegisterPayload{IntentType: ConsulRegister, CorrelationID: corr, NodeID: &id,
			ServiceID: "onex-effect-" + id, ServiceName: "onex-effect", Tags: []string{"onex"}, Port: &port,
			EventBusConfig: json.RawMessage("null"), Health: HealthWarning}),
		ConsulDeregister: mk(ConsulDeregister, 4, ConsulDeregisterPayload{IntentType: ConsulDeregister, CorrelationID: corr,
			NodeID: id, ServiceID: "onex-effect-" + id}),
	}
	lease, epoch := uuid.New(), int64(7)
	r := mk(ConsulRegister, 5, map[string]any{"intent_type": ConsulRegister})
	r.Intent.LeaseID, r.Intent.Epoch, r.Intent.Attempt, r.Intent.Refresh = &lease, &epoch, 2, true
	r.EnvelopeID = uuid.New()
	out["refresh with lease and epoch"] = r
	return out
}

// normalized is an intent as its consumers see it: an update's payload
// typed, any other payload compacted.
func normalized(t *testing.T, in *Intent) Intent {
	t.Helper()
	n := *in
	if n.IntentType == PostgresUpdate {
		u, err := in.PostgresUpdatePayload()
		if err != nil {
			t.Fatal(err)
		}
		n.Update, n.Payload = u, nil
		return n
	}
	var b bytes.Buffer
	if err := json.Compact(&b, in.Payload); err != nil {
		t.Fatal(err)
	}
	n.Payload = b.Bytes()
	return n
}

// Both forms of every intent type decode, by content type, to the same
// intent and envelope fields.
func TestIntentBothFormsDecodeTheSame(t *testing.T) {
	for name, rec := range intentRecords(t) {
		t.Run(name, func(t *testing.T) {
			pb, err := MarshalIntent(rec)
			if err != nil {
				t.Fatal(err)
			}
			js, err := MarshalIntentJSON(rec)
			if err != nil {
				t.Fatal(err)
			}
			fromPB, err := DecodeIntentRecord(header(IntentContentType), pb)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range [][]string{nil, {ContentTypeJSON}, {"application/json; charset=utf-8"}} {
				var hs = header("")[:1]
				if h != nil {
					hs = header(h[0])
				}
				fromJSON, err := DecodeIntentRecord(hs, js)
				if err != nil {
					t.Fatalf("JSON form (%v): %v", h, err)
				}
				if fromJSON.EnvelopeID != rec.EnvelopeID || fromJSON.CorrelationID != rec.CorrelationID || !fromJSON.CreatedAt.Equal(rec.CreatedAt) {
					t.Errorf("JSON form envelope %+v, want %+v", fromJSON, rec)
				}
				if a, b := normalized(t, fromJSON.Intent), normalized(t, fromPB.Intent); !reflect.DeepEqual(a, b) {
					t.Errorf("JSON form %+v\nprotobuf form %+v", a, b)
				}
			}
			if fromPB.EnvelopeID != rec.EnvelopeID || fromPB.CorrelationID != rec.CorrelationID || !fromPB.CreatedAt.Equal(rec.CreatedAt) {
				t.Errorf("protobuf envelope %+v, want %+v", fromPB, rec)
			}
			if a, b := normalized(t, fromPB.Intent), normalized(t, rec.Intent); !reflect.DeepEqual(a, b) {
				t.Errorf("protobuf form %+v\nwant %+v", a, b)
			}
			if (fromPB.Intent.Update != nil) != (rec.Intent.IntentType == PostgresUpdate) {
				t.Errorf("typed update %v on a %s", fromPB.Intent.Update != nil, rec.Intent.IntentType)
			}
		})
	}
}

// The JSON form is what the reducer wrote before protobuf: the envelope
// around the intent, with the intents topic's event type and tag.
func TestMarshalIntentJSONIsTheEnvelope(t *testing.T) {
	rec := intentRecords(t)[PostgresUpdate]
	b, err := MarshalIntentJSON(rec)
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if env.EventType == nil || *env.EventType != "platform.registration-intents" || env.Metadata.Tags["message_category"] != "intent" ||
		env.EnvelopeID != rec.EnvelopeID || !bytes.Contains(env.Payload, []byte(`"updates"`)) {
		t.Fatalf("envelope %s", b)
	}
	in, err := DecodeIntent(env.Payload)
	if err != nil || in.Update != nil {
		t.Fatalf("payload %+v, %v", in, err)
	}
}

func TestDecodeIntentRecordRefuses(t *testing.T) {
	good := intentRecords(t)[PostgresUpdate]
	mutate := func(f func(m *fleetv1.Intent)) []byte {
		m, err := good.Proto()
		if err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pb := mutate(func(*fleetv1.Intent) {})
	for _, tc := range []struct {
		name, ct, want string
		value          []byte
	}{
		{"reducer input message", ReducerInputContentType, "unsupported content type", pb},
		{"no message named", ContentTypeProtobuf, "unsupported content type", pb},
		{"text", "text/plain", "unsupported content type", pb},
		{"protobuf as JSON", ContentTypeJSON, "envelope", pb},
		{"not protobuf", IntentContentType, "not a onex.fleet.v1.Intent", []byte{0xff, 0xff}},
		{"no intent id", IntentContentType, `"intent_id": missing`, mutate(func(m *fleetv1.Intent) { m.IntentId = "" })},
		{"bad node id", IntentContentType, `"node_id"`, mutate(func(m *fleetv1.Intent) { m.NodeId = "node-1" })},
		{"no node id", IntentContentType, `"node_id": missing`, mutate(func(m *fleetv1.Intent) { m.NodeId = "" })},
		{"no type", IntentContentType, `"intent_type": missing`, mutate(func(m *fleetv1.Intent) {
			m.IntentType, m.Payload = "", &fleetv1.Intent_PayloadJson{PayloadJson: []byte(`{}`)}
		})},
		{"no payload", IntentContentType, `"payload": missing`, mutate(func(m *fleetv1.Intent) { m.Payload = nil })},
		{"null payload", IntentContentType, `"payload": missing`,
			mutate(func(m *fleetv1.Intent) { m.Payload = &fleetv1.Intent_PayloadJson{PayloadJson: []byte("null")} })},
		{"payload not JSON", IntentContentType, "not valid JSON",
			mutate(func(m *fleetv1.Intent) { m.Payload = &fleetv1.Intent_PayloadJson{PayloadJson: []byte("{")} })},
		{"typed update on a register", IntentContentType, "only a postgres.update_registration",
			mutate(func(m *fleetv1.Intent) { m.IntentType = ConsulRegister })},
		{"bad correlation", IntentContentType, `"correlation_id"`, mutate(func(m *fleetv1.Intent) { m.CorrelationId = "x" })},
		{"bad entity id", IntentContentType, "entity_id", mutate(func(m *fleetv1.Intent) { m.GetPostgresUpdate().EntityId = "x" })},
		{"time out of range", IntentContentType, "updated_at",
			mutate(func(m *fleetv1.Intent) { m.GetPostgresUpdate().UpdatedAt.Seconds = 1 << 40 })},
		{"bad nanos", IntentContentType, "created_at", mutate(func(m *fleetv1.Intent) { m.CreatedAt.Nanos = -1 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeIntentRecord(header(tc.ct), tc.value)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// A re-send keeps the form and every field but the attempt, the envelope
// id and the time.
func TestReattemptIntent(t *testing.T) {
	now := time.Date(2026, 3, 2, 15, 0, 0, 123456789, time.UTC)
	for name, rec := range intentRecords(t) {
		for _, form := range []struct {
			ct     string
			encode func(IntentRecord) ([]byte, error)
		}{{IntentContentType, MarshalIntent}, {ContentTypeJSON, MarshalIntentJSON}} {
			v, err := form.encode(rec)
			if err != nil {
				t.Fatal(err)
			}
			id := uuid.New()
			again, err := ReattemptIntent(form.ct, v, 3, id, now)
			if err != nil {
				t.Fatalf("%s %s: %v", name, form.ct, err)
			}
			got, err := DecodeIntentRecord(header(form.ct), again)
			if err != nil {
				t.Fatalf("%s %s: %v", name, form.ct, err)
			}
			want := normalized(t, rec.Intent)
			want.Attempt = 3
			if g := normalized(t, got.Intent); !reflect.DeepEqual(g, want) || got.EnvelopeID != id ||
				!got.CreatedAt.Equal(now.Truncate(time.Microsecond)) || got.CorrelationID != rec.CorrelationID {
				t.Errorf("%s %s: %+v %+v", name, form.ct, got, g)
			}
		}
	}
	if _, err := ReattemptIntent(ReducerInputContentType, nil, 1, uuid.New(), now); err == nil {
		t.Error("a record of another message was re-encoded")
	}
}

// FuzzUnmarshalIntent feeds arbitrary record values to the protobuf
// decoder: it must never panic, and what it accepts must survive another
// round through the wire unchanged.
func FuzzUnmarshalIntent(f *testing.F) {
	for _, rec := range intentRecords(f) {
		b, err := MarshalIntent(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte(`{"payload":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalIntent(b)
		if err != nil {
			return
		}
		again, err := MarshalIntent(r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := UnmarshalIntent(again)
		if err != nil {
			t.Fatalf("decode of re-encoded %+v: %v", r, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip %+v\nbecame %+v", r, back)
		}
	})
}
