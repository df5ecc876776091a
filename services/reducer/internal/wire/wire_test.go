package wire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

var now = time.Date(2026, 3, 2, 14, 5, 7, 401122000, time.UTC)

func registered(t *testing.T) decide.Decision {
	t.Helper()
	in := decide.Introspection{NodeID: uuid.New(), NodeType: "effect", NodeVersion: "1.2.0",
		Capabilities: json.RawMessage(`{"read":true}`), Endpoints: map[string]string{"health": "http://h:8085/health"},
		CorrelationID: uuid.New()}
	in.HandlerCorrelationID = in.CorrelationID
	return decide.DecideIntrospection(nil, in, now, decide.DefaultParams())
}

func TestSnapshotRoundTrip(t *testing.T) {
	d := registered(t)
	rec, err := Snapshot(d.State, now)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Topic != topics.RegistrationSnapshots || rec.Key != d.State.NodeID.String() {
		t.Fatalf("snapshot record %s/%s", rec.Topic, rec.Key)
	}
	// The state travels in the record's one header, as a consumer reads it.
	msg := rec.ProducerMessage("test")
	if len(msg.Headers) != 1 || string(msg.Headers[0].Key) != pipeline.HeaderReducerState {
		t.Fatalf("snapshot headers %q, want only %s", msg.Headers, pipeline.HeaderReducerState)
	}
	state := pipeline.SnapshotState([]*sarama.RecordHeader{&msg.Headers[0]})
	st, err := RestoreState(rec.Value, state)
	if err != nil {
		t.Fatal(err)
	}
	if st.NodeID != d.State.NodeID || st.State != decide.AwaitingAck || st.Sequence != 2 || !st.AckDeadline.Equal(*d.State.AckDeadline) || st.ConsulRegistration().ServiceID != d.State.ConsulRegistration().ServiceID || string(st.Capabilities) != `{"read":true}` {
		t.Fatalf("restored %+v from %+v", st, d.State)
	}
	// The value is the bare model: nothing of the fleet's own.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(rec.Value, &keys); err != nil || len(keys) != 11 || keys["consul"] != nil || keys["reducer_state"] != nil {
		t.Fatalf("snapshot value %s", rec.Value)
	}
	if st, err := RestoreState(nil, state); st != nil || err != nil {
		t.Fatal("tombstone must restore to nothing")
	}
	if _, err := RestoreState(rec.Value, nil); err == nil {
		t.Fatal("a snapshot without its reducer state must be refused")
	}
}

func TestIntentsCarryFullMutableState(t *testing.T) {
	d := registered(t)
	ack := decide.DecideAck(d.State, decide.Ack{NodeID: d.State.NodeID, CommandID: uuid.New()}, now.Add(time.Second), decide.DefaultParams())
	rec, err := Intent(ack.Intents[0], ack.State, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if rec.ContentType != pipeline.IntentContentType {
		t.Fatalf("intent content type %q", rec.ContentType)
	}
	r, err := pipeline.UnmarshalIntent(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	in := r.Intent
	if in.Update == nil || in.Payload != nil {
		t.Fatalf("the update's payload is not carried as fields: %+v", in)
	}
	u := in.Update.Updates
	if u.CurrentState != "active" || u.LivenessDeadline == nil || u.AckDeadline == nil || u.NodeType != "effect" ||
		u.LastAppliedEventID != ack.State.AttemptID || in.Sequence != 3 || r.EnvelopeID != in.IntentID ||
		in.Update.EntityID != in.NodeID || in.Update.Domain != decide.Domain || r.CorrelationID != ack.Intents[0].CorrelationID {
		t.Fatalf("update intent %+v / %+v", in, u)
	}
}

// The reducer's intents are protobuf records with the content type that
// says so; their JSON form (pipeline.MarshalIntentJSON, what the reducer
// wrote before) decodes to the same intent.
func TestIntentRecordsAreProtobuf(t *testing.T) {
	d := registered(t)
	ack := decide.DecideAck(d.State, decide.Ack{NodeID: d.State.NodeID, CommandID: uuid.New()}, now.Add(time.Second), decide.DefaultParams())
	var recs []Record
	for _, dec := range []decide.Decision{d, ack} {
		rs, err := Decision(dec, now)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rs...)
	}
	types := map[string]bool{}
	for _, rec := range recs {
		if rec.Kind != "intent" {
			continue
		}
		msg := rec.ProducerMessage("local")
		hs := headerPtrs(msg.Headers)
		if ct := pipeline.ContentType(hs); ct != pipeline.IntentContentType {
			t.Fatalf("%s: content_type %q", rec.IntentType, ct)
		}
		pb, err := pipeline.DecodeIntentRecord(hs, rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		js, err := pipeline.MarshalIntentJSON(pb)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, err := pipeline.DecodeIntentRecord(nil, js)
		if err != nil {
			t.Fatal(err)
		}
		if fromJSON.EnvelopeID != pb.EnvelopeID || fromJSON.CorrelationID != pb.CorrelationID || !fromJSON.CreatedAt.Equal(pb.CreatedAt) ||
			fromJSON.Intent.IntentID != pb.Intent.IntentID || fromJSON.Intent.Sequence != pb.Intent.Sequence || fromJSON.Intent.IntentType != rec.IntentType {
			t.Errorf("%s: protobuf %+v, JSON %+v", rec.IntentType, pb, fromJSON)
		}
		types[rec.IntentType] = true
	}
	if len(types) < 3 {
		t.Fatalf("intent types checked: %v", types)
	}
}

// With ONEX_INTERNAL_WIRE=json the reducer writes every intent in the JSON
// form an older orchestrator or effect reads: the same intent, no protobuf
// content type.
func TestIntentRecordsInJSONWhenAsked(t *testing.T) {
	pipeline.SetWrites(pipeline.WireJSON)
	t.Cleanup(func() { pipeline.SetWrites(pipeline.WireProtobuf) })
	d := registered(t)
	recs, err := Decision(d, now)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rec := range recs {
		if rec.Kind != "intent" {
			continue
		}
		n++
		hs := headerPtrs(rec.ProducerMessage("local").Headers)
		if ct := pipeline.ContentType(hs); !pipeline.IsJSON(ct) {
			t.Fatalf("%s: content_type %q, want JSON", rec.IntentType, ct)
		}
		if _, err := envelope.Decode(rec.Value); err != nil {
			t.Fatalf("%s: not a JSON envelope: %v", rec.IntentType, err)
		}
		got, err := pipeline.DecodeIntentRecord(hs, rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		if got.Intent.IntentType != rec.IntentType || got.EnvelopeID != rec.MessageID || got.CorrelationID != rec.CorrelationID {
			t.Fatalf("%s: decoded %+v", rec.IntentType, got)
		}
	}
	if n == 0 {
		t.Fatal("the registration decided no intent")
	}
}

func TestEventsAreDeterministicEnvelopes(t *testing.T) {
	d := registered(t)
	a, _ := Decision(d, now)
	b, _ := Decision(d, now)
	for i := range a {
		if string(a[i].Value) != string(b[i].Value) {
			t.Fatalf("record %d differs between two encodings", i)
		}
	}
	env, err := envelope.Decode(a[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	want := envelope.DeterministicID(d.State.CorrelationID, "ModelNodeRegistrationInitiated", 0)
	if env.EnvelopeID != want || *env.EventType != "platform.node-registration-initiated" {
		t.Fatalf("envelope id %s event type %s", env.EnvelopeID, *env.EventType)
	}
	msg := a[0].ProducerMessage("local")
	if len(msg.Headers) < 10 || string(msg.Headers[0].Key) != "content_type" {
		t.Fatal("events must carry the standard ONEX headers")
	}
}

func TestRestoreStateRefusesBrokenSnapshots(t *testing.T) {
	const id = "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18"
	state := func(nodeID, st string) string {
		return `{"node_id":"` + nodeID + `","state":"` + st + `","node_type":"effect","node_version":"1.0.0","registration_attempt_id":"` + id +
			`","correlation_id":"` + id + `","registered_at":"2026-03-02T14:00:00Z","last_state_change_at":"2026-03-02T14:00:00Z","sequence":3}`
	}
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"valid", `{"entity_id":"` + id + `","current_state":"active","consul":{"service_id":"x"},"reducer_state":` + state(id, "active") + `}`, true},
		{"not JSON", `{"entity_id":`, false},
		{"no entity id", `{"current_state":"active","reducer_state":` + state(id, "active") + `}`, false},
		{"no current state", `{"entity_id":"` + id + `","reducer_state":` + state(id, "active") + `}`, false},
		{"null reducer state", `{"entity_id":"` + id + `","current_state":"active","reducer_state":null}`, false},
		{"state of another node", `{"entity_id":"` + id + `","current_state":"active","reducer_state":` + state(uuid.NewString(), "active") + `}`, false},
		{"unknown state", `{"entity_id":"` + id + `","current_state":"active","reducer_state":` + state(id, "sleeping") + `}`, false},
		{"reducer state not an object", `{"entity_id":"` + id + `","current_state":"active","reducer_state":"x"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := RestoreState([]byte(tc.value), nil)
			if tc.ok {
				if err != nil || st == nil || st.NodeID.String() != id || st.Sequence != 3 {
					t.Fatalf("restored %+v, %v", st, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("restored %+v from a broken snapshot", st)
			}
		})
	}
	if st, err := RestoreState([]byte("null"), nil); st != nil || err != nil {
		t.Fatal("a null value is a tombstone")
	}
}

// The accepted event is the bare ModelNodeRegistrationAccepted, byte for byte
// what Python's json.dumps writes for the model (checked against the pinned
// omnibase-infra: model_validate_json accepts it and
// json.dumps(model_dump(mode="json")) gives the same bytes), keyed by the
// node id. A resend differs only in emitted_at and causation_id.
func TestAcceptedIsTheBareModel(t *testing.T) {
	e := decide.Event{
		Kind:          decide.EventAccepted,
		NodeID:        uuid.MustParse("3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18"),
		CorrelationID: uuid.MustParse("b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"),
		CausationID:   uuid.MustParse("5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"),
		EmittedAt:     time.Date(2026, 3, 2, 14, 5, 7, 401122789, time.UTC), // sub-microsecond digits are dropped
		AckDeadline:   time.Date(2026, 3, 2, 14, 5, 37, 0, time.UTC),
	}
	const want = `{"entity_id": "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18", "node_id": "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18", ` +
		`"correlation_id": "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d", "causation_id": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b", ` +
		`"emitted_at": "2026-03-02T14:05:07.401122Z", "ack_deadline": "2026-03-02T14:05:37Z"}`
	for _, resentBy := range []decide.Trigger{"", decide.TriggerTick} {
		e.ResentBy = resentBy
		rec, err := Event(e, 1)
		if err != nil {
			t.Fatal(err)
		}
		if string(rec.Value) != want {
			t.Fatalf("accepted value\n got %s\nwant %s", rec.Value, want)
		}
		if rec.Kind != "event" || rec.Topic != topics.NodeRegistrationAccepted || rec.Key != e.NodeID.String() || rec.CorrelationID != e.CorrelationID {
			t.Fatalf("accepted record %s %s key %s correlation %s", rec.Kind, rec.Topic, rec.Key, rec.CorrelationID)
		}
	}
	// The Go mirror of the model (extra="forbid") takes it as it is.
	m, err := registration.DecodeRegistrationAccepted([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	if m.EntityID != e.NodeID || m.NodeID != e.NodeID || m.CorrelationID != e.CorrelationID || m.CausationID != e.CausationID ||
		!m.EmittedAt.Equal(e.EmittedAt.Truncate(time.Microsecond)) || !m.AckDeadline.Equal(e.AckDeadline) {
		t.Fatalf("decoded %+v", m)
	}
	// What a node's ack listener reads: entity_id and correlation_id on top.
	var top map[string]any
	if err := json.Unmarshal([]byte(want), &top); err != nil || top["entity_id"] != e.NodeID.String() || top["correlation_id"] != e.CorrelationID.String() {
		t.Fatalf("top level %v (%v)", top, err)
	}
	// Every other lifecycle event stays an envelope.
	d := registered(t)
	recs, err := Decision(d, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Kind == "intent" {
			continue // protobuf (TestIntentRecordsAreProtobuf)
		}
		_, err := envelope.Decode(r.Value)
		if r.Topic == topics.NodeRegistrationAccepted {
			if err == nil {
				t.Error("the accepted event decodes as an envelope")
			}
			if _, err := registration.DecodeRegistrationAccepted(r.Value); err != nil {
				t.Errorf("accepted event of a decision: %v", err)
			}
		} else if err != nil {
			t.Errorf("%s is not an envelope: %v", r.Topic, err)
		}
	}
}

// The Python bus writes an envelope's id as the message_id header and its
// correlation id as the correlation_id header; every envelope the reducer
// writes (events), and every intent record, does the same, so the headers of a retried
// transaction's records are the same too.
func TestEnvelopeHeadersCarryTheEnvelopeIdentity(t *testing.T) {
	recs, err := Decision(registered(t), now)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range recs {
		if r.Kind == "snapshot" || r.Topic == topics.NodeRegistrationAccepted {
			continue // bare records: no envelope
		}
		hs := headerPtrs(r.ProducerMessage("local").Headers)
		var id, corr uuid.UUID
		if r.Kind == "intent" {
			ir, err := pipeline.DecodeIntentRecord(hs, r.Value)
			if err != nil {
				t.Fatalf("%s: %v", r.Topic, err)
			}
			id, corr = ir.EnvelopeID, ir.CorrelationID
		} else {
			env, err := envelope.Decode(r.Value)
			if err != nil {
				t.Fatalf("%s: %v", r.Topic, err)
			}
			if env.CorrelationID == nil {
				t.Fatalf("%s: no correlation id", r.Topic)
			}
			id, corr = env.EnvelopeID, *env.CorrelationID
		}
		h := envelope.HeadersFromRecords(hs)
		if h.MessageID != id || h.CorrelationID != corr {
			t.Errorf("%s: headers message_id %s correlation_id %s, envelope id %s correlation id %v",
				r.Topic, h.MessageID, h.CorrelationID, id, corr)
		}
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d envelope records checked", checked)
	}
}

func headerPtrs(hs []sarama.RecordHeader) []*sarama.RecordHeader {
	out := make([]*sarama.RecordHeader, len(hs))
	for i := range hs {
		out[i] = &hs[i]
	}
	return out
}
