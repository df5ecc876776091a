package wire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
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
	st, err := RestoreState(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if st.NodeID != d.State.NodeID || st.State != decide.AwaitingAck || st.Sequence != 2 || !st.AckDeadline.Equal(*d.State.AckDeadline) || st.ConsulRegistration().ServiceID != d.State.ConsulRegistration().ServiceID || string(st.Capabilities) != `{"read":true}` {
		t.Fatalf("restored %+v from %+v", st, d.State)
	}
	snap, _ := pipeline.DecodeSnapshot(rec.Value)
	if snap.Consul == nil || snap.Consul.HealthCheck == nil || snap.Consul.HealthCheck.HTTP != "http://h:8085/health" {
		t.Fatalf("snapshot carries no consul derivation: %+v", snap.Consul)
	}
	if st, err := RestoreState(nil); st != nil || err != nil {
		t.Fatal("tombstone must restore to nothing")
	}
	if _, err := RestoreState([]byte(`{"entity_id":"3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18","current_state":"active"}`)); err == nil {
		t.Fatal("a snapshot without reducer_state must be refused")
	}
}

func TestIntentsCarryFullMutableState(t *testing.T) {
	d := registered(t)
	ack := decide.DecideAck(d.State, decide.Ack{NodeID: d.State.NodeID, CommandID: uuid.New()}, now.Add(time.Second), decide.DefaultParams())
	rec, err := Intent(ack.Intents[0], ack.State, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.Decode(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	in, err := pipeline.DecodeIntent(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var up pipeline.PostgresUpdatePayload
	if err := json.Unmarshal(in.Payload, &up); err != nil {
		t.Fatal(err)
	}
	u := up.Updates
	if u.CurrentState != "active" || u.LivenessDeadline == nil || u.AckDeadline == nil || u.NodeType != "effect" ||
		u.LastAppliedEventID != ack.State.AttemptID || in.Sequence != 3 || env.EnvelopeID != in.IntentID {
		t.Fatalf("update intent %+v / %+v", in, u)
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
			st, err := RestoreState([]byte(tc.value))
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
	if st, err := RestoreState([]byte("null")); st != nil || err != nil {
		t.Fatal("a null value is a tombstone")
	}
}
