package run

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/bench/internal/observe"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		topic, value, want string
	}{
		{topics.NodeIntrospection, `{}`, recIntrospection},
		{topics.ReducerInput, `{"topic": "onex.evt.platform.node-introspection.v1", "received_at": "x"}`, recInputIntro},
		{topics.ReducerInput, `{"topic":"onex.cmd.platform.node-registration-acked.v1","value":{}}`, recInputAck},
		{topics.ReducerInput, `{"topic": "onex.evt.platform.node-heartbeat.v1"}`, ""},
		{topics.RegistrationIntents, `{"payload": {"intent_type": "postgres.update_registration", "payload": {"updates": {"current_state": "active"}}}}`, recUpdateIntent},
		{topics.PostgresIntents, `{"payload": {"intent_type": "postgres.update_registration", "payload": {"updates": {"current_state": "active"}}}}`, recUpdateRouted},
		{topics.PostgresIntents, `{"payload": {"intent_type": "postgres.update_registration", "payload": {"updates": {"current_state": null}}}}`, ""},
		{topics.RegistrationIntents, `{"payload": {"intent_type": "consul.register"}}`, recRegisterIntent},
		{topics.ConsulIntents, `{"payload": {"intent_type": "consul.register"}}`, recRegisterRouted},
		{topics.EffectResults, `{"payload": {"intent_type": "consul.register", "success": true}}`, recConsulResult},
		{topics.EffectResults, `{"payload": {"intent_type": "postgres.upsert_registration"}}`, ""},
	} {
		if got := classify(tc.topic, nil, []byte(tc.value)); got != tc.want {
			t.Errorf("classify(%s, %s) = %q, want %q", tc.topic, tc.value, got, tc.want)
		}
	}
	// The orchestrator writes the reducer input in protobuf, whose first
	// field is the topic: classify still finds it in the first bytes.
	for topic, want := range map[string]string{topics.NodeIntrospection: recInputIntro, topics.NodeRegistrationAcked: recInputAck} {
		v, err := pipeline.MarshalReducerInput(pipeline.ReducerInput{Topic: topic, Value: []byte(`{"payload": {}}`)})
		if err != nil {
			t.Fatal(err)
		}
		if got := classify(topics.ReducerInput, nil, v); got != want {
			t.Errorf("classify of a protobuf reducer input of %s = %q, want %q", topic, got, want)
		}
	}
}

// The reducer writes intents in protobuf (header content_type): classify
// decodes them.
func TestClassifyProtobufIntents(t *testing.T) {
	node := uuid.New()
	at := pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))
	hs := []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.IntentContentType)}}
	record := func(typ, state string) []byte {
		in := &pipeline.Intent{IntentID: uuid.New(), IntentType: typ, NodeID: node, Payload: []byte(`{"intent_type":"` + typ + `"}`)}
		if typ == pipeline.PostgresUpdate {
			in.Payload, in.Update = nil, &pipeline.PostgresUpdatePayload{IntentType: typ, EntityID: node,
				Updates: pipeline.ProjectionUpdate{CurrentState: state, UpdatedAt: at, RegisteredAt: at}}
		}
		b, err := pipeline.MarshalIntent(pipeline.IntentRecord{Intent: in})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		topic string
		value []byte
		want  string
	}{
		{topics.RegistrationIntents, record(pipeline.PostgresUpdate, "active"), recUpdateIntent},
		{topics.PostgresIntents, record(pipeline.PostgresUpdate, "active"), recUpdateRouted},
		{topics.PostgresIntents, record(pipeline.PostgresUpdate, "awaiting_ack"), ""},
		{topics.RegistrationIntents, record(pipeline.ConsulRegister, ""), recRegisterIntent},
		{topics.ConsulIntents, record(pipeline.ConsulRegister, ""), recRegisterRouted},
		{topics.ConsulIntents, record(pipeline.ConsulDeregister, ""), ""},
		{topics.ConsulIntents, []byte("not protobuf"), ""},
	} {
		if got := classify(tc.topic, hs, tc.value); got != tc.want {
			t.Errorf("classify(%s, %x) = %q, want %q", tc.topic, tc.value, got, tc.want)
		}
	}
}

// The effects write results in protobuf (header content_type): classify
// decodes them.
func TestClassifyProtobufResults(t *testing.T) {
	hs := []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.EffectResultContentType)}}
	record := func(typ string, ok bool) []byte {
		b, err := pipeline.MarshalEffectResult(pipeline.EffectResultRecord{Result: &pipeline.EffectResult{
			IntentID: uuid.New(), IntentType: typ, NodeID: uuid.New(), Success: ok}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		value []byte
		want  string
	}{
		{record(pipeline.ConsulRegister, true), recConsulResult},
		{record(pipeline.ConsulRegister, false), recConsulResult},
		{record(pipeline.PostgresUpsert, true), ""},
		{record(pipeline.ConsulDeregister, true), ""},
		{[]byte("not protobuf " + pipeline.ConsulRegister), ""},
	} {
		if got := classify(topics.EffectResults, hs, tc.value); got != tc.want {
			t.Errorf("classify(%x) = %q, want %q", tc.value, got, tc.want)
		}
	}
}

func TestHopSummary(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	a, b := uuid.New(), uuid.New()
	times := map[uuid.UUID]map[string]time.Time{
		a: {recIntrospection: ms(0), recInputIntro: ms(3), recAccepted: ms(10)},
		b: {recIntrospection: ms(0), recInputIntro: ms(5)}, // its accepted event was not read
	}
	tls := map[uuid.UUID]observe.Timeline{a: {Accepted: ms(14)}, b: {Accepted: ms(20)}}
	got := map[string]hopStat{}
	for _, h := range hopSummary(times, tls) {
		got[h.What] = hopStat{N: h.Time.N, Missing: h.Time.Missing, P50: h.Time.P50, Max: h.Time.Max}
	}
	for what, want := range map[string]hopStat{
		"orchestrator ingress (introspection)":                        {N: 2, P50: 3, Max: 5},
		"reducer: batch, decide, produce (introspection)":             {N: 1, Missing: 1, P50: 7, Max: 7},
		"reducer commit + delivery of the accepted event to the node": {N: 1, Missing: 1, P50: 4, Max: 4},
	} {
		if got[what] != want {
			t.Errorf("%s: got %+v, want %+v", what, got[what], want)
		}
	}
}

// Copies of a record (accepted events the reducer re-sent, the node's acks
// of them) do not move a hop: the first of each kind counts, in whatever
// order the partitions are read.
func TestKeepFirst(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	id := uuid.New()
	out := map[uuid.UUID]map[string]time.Time{}
	for _, s := range []int{3, 1, 7} {
		keepFirst(out, id, recAccepted, t0.Add(time.Duration(s)*time.Second))
		keepFirst(out, id, recAck, t0.Add(time.Duration(s)*time.Second+time.Millisecond))
	}
	if !out[id][recAccepted].Equal(t0.Add(time.Second)) || !out[id][recAck].Equal(t0.Add(time.Second+time.Millisecond)) {
		t.Fatalf("kept %v", out[id])
	}
}

// hopStat is the part of a summary the test compares.
type hopStat struct {
	N, Missing int
	P50, Max   float64
}
