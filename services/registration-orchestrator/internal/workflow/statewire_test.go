package workflow

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// decodeState reads a state record the workflow produced, as restore does.
func decodeState(m *sarama.ProducerMessage) (*Aggregation, error) {
	v, _ := m.Value.Encode()
	hs := make([]*sarama.RecordHeader, len(m.Headers))
	for i := range m.Headers {
		hs[i] = &m.Headers[i]
	}
	return DecodeAggregation(hs, v)
}

func stateHeader(ct string) []*sarama.RecordHeader {
	return []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(ct)}}
}

// stateAggregation is an attempt in the middle of its life: the postgres
// upsert (a protobuf record) failed and waits for its re-send, the Consul
// register (a JSON envelope) succeeded.
func stateAggregation(t testing.TB) *Aggregation {
	t.Helper()
	node, attempt, corr := uuid.New(), uuid.New(), uuid.New()
	pgIn := &pipeline.Intent{IntentID: uuid.New(), IntentType: pipeline.PostgresUpsert, Payload: []byte(`{"intent_type":"postgres.upsert_registration"}`),
		NodeID: node, Sequence: 1, RegistrationAttemptID: attempt}
	pgRecord, err := pipeline.MarshalIntent(pipeline.IntentRecord{Intent: pgIn, EnvelopeID: pgIn.IntentID, CreatedAt: t0, CorrelationID: corr})
	if err != nil {
		t.Fatal(err)
	}
	consulIn := &pipeline.Intent{IntentID: uuid.New(), IntentType: pipeline.ConsulRegister, Payload: []byte(`{"intent_type":"consul.register"}`),
		NodeID: node, Sequence: 2, RegistrationAttemptID: attempt}
	consulRecord, err := pipeline.MarshalIntentJSON(pipeline.IntentRecord{Intent: consulIn, EnvelopeID: consulIn.IntentID, CreatedAt: t0, CorrelationID: corr})
	if err != nil {
		t.Fatal(err)
	}
	code, text := "POSTGRES_CONNECTION_ERROR", "postgres operation failed: connection refused"
	retryAt, sentAt := pipeline.T(t0.Add(3*time.Second)), pipeline.T(t0.Add(time.Second))
	pg := &Tracked{IntentID: pgIn.IntentID, IntentType: pgIn.IntentType, Sequence: 1, Attempt: 1, Retries: 1, State: StateFailed,
		Last: &pipeline.EffectResult{IntentID: pgIn.IntentID, IntentType: pgIn.IntentType, Backend: "postgres", NodeID: node, CorrelationID: corr,
			RegistrationAttemptID: attempt, Sequence: 1, Attempt: 1, Error: &text, ErrorCode: &code, Retriable: true, DurationMS: 1.5,
			BackendID: "pg", Completed: pipeline.T(t0.Add(2 * time.Second))},
		NextRetryAt: &retryAt, RoutedPartition: 2, RoutedOffset: 41, SentAt: &sentAt}
	pg.setValue(pipeline.IntentContentType, pgRecord)
	consul := &Tracked{IntentID: consulIn.IntentID, IntentType: consulIn.IntentType, Sequence: 2, State: StateSucceeded,
		Last: &pipeline.EffectResult{IntentID: consulIn.IntentID, IntentType: consulIn.IntentType, Backend: "consul", NodeID: node,
			CorrelationID: corr, RegistrationAttemptID: attempt, Sequence: 2, Success: true, DurationMS: 0.5, BackendID: "agent",
			Completed: pipeline.T(t0.Add(time.Second))},
		RoutedPartition: 2, RoutedOffset: 40}
	consul.setValue("", consulRecord)
	return &Aggregation{NodeID: node, AttemptID: attempt, CorrelationID: corr, StartedAt: pipeline.T(t0),
		Expected: []string{"consul", "postgres"}, Intents: map[string]*Tracked{"postgres": pg, "consul": consul}, Published: 1}
}

func TestAggregationContentType(t *testing.T) {
	if AggregationContentType != "application/x-protobuf; messageType=onex.fleet.v1.Aggregation" {
		t.Errorf("AggregationContentType = %q", AggregationContentType)
	}
}

// Both forms of a state record decode, by content type, to the same
// aggregation: the protobuf one the orchestrator writes, and the JSON one
// older orchestrators wrote, still on the compacted topic.
func TestAggregationBothFormsDecodeTheSame(t *testing.T) {
	for name, a := range map[string]*Aggregation{
		"in the middle": stateAggregation(t),
		"just started":  NewAggregation(&pipeline.Intent{NodeID: uuid.New(), RegistrationAttemptID: uuid.New()}, uuid.New(), nil, t0),
		"given up, dead": func() *Aggregation {
			a := stateAggregation(t)
			a.Intents["postgres"].State, a.Intents["postgres"].DeadLettered = StateGivenUp, true
			return a
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			pb, err := MarshalAggregation(a)
			if err != nil {
				t.Fatal(err)
			}
			again, err := MarshalAggregation(a)
			if err != nil || string(again) != string(pb) {
				t.Fatalf("two encodings of one aggregation differ (%v)", err)
			}
			fromPB, err := DecodeAggregation(stateHeader(AggregationContentType), pb)
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := DecodeAggregation(nil, js)
			if err != nil {
				t.Fatal(err)
			}
			want := *a
			if len(want.Expected) == 0 {
				want.Expected = nil // absent on the protobuf wire
			}
			if !reflect.DeepEqual(fromPB, &want) {
				t.Errorf("protobuf form %+v\nwant %+v", fromPB, &want)
			}
			if len(fromJSON.Expected) == 0 {
				fromJSON.Expected = nil
			}
			// The JSON form holds an envelope as JSON, which encoding/json
			// compacts; the protobuf form keeps its bytes as they came.
			for _, tr := range fromPB.Intents {
				if tr.Envelope != nil {
					var c bytes.Buffer
					if err := json.Compact(&c, tr.Envelope); err != nil {
						t.Fatal(err)
					}
					tr.Envelope = c.Bytes()
				}
			}
			if !reflect.DeepEqual(fromJSON, fromPB) {
				t.Errorf("JSON form %+v\nprotobuf form %+v", fromJSON, fromPB)
			}
		})
	}
}

// A state record an orchestrator wrote before protobuf (no content type,
// the JSON envelope of the intent in "envelope", no sent_at) restores.
func TestOldJSONStateRestores(t *testing.T) {
	node, intent := uuid.New(), uuid.New()
	old := `{"node_id":"` + node.String() + `","registration_attempt_id":"` + uuid.NewString() + `","correlation_id":"` + uuid.NewString() +
		`","started_at":"2026-11-26T12:00:00.000000+00:00","expected_backends":["consul","postgres"],"intents":{"postgres":{"intent_id":"` +
		intent.String() + `","intent_type":"postgres.upsert_registration","sequence":1,"envelope":{"envelope_id":"x"},"attempt":0,"retries":0,` +
		`"state":"pending","last_result":null,"next_retry_at":null,"dead_lettered":false,"routed_partition":1,"routed_offset":7}},"results_published":0}`
	a, err := DecodeAggregation(nil, []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	pg := a.Intents["postgres"]
	if a.NodeID != node || pg == nil || pg.IntentID != intent || string(pg.Envelope) != `{"envelope_id":"x"}` || pg.Record != nil ||
		pg.SentAt != nil || !a.StartedAt.Equal(t0) {
		t.Fatalf("restored %+v %+v", a, pg)
	}
	if ct, v := pg.value(); ct != pipeline.ContentTypeJSON || string(v) != `{"envelope_id":"x"}` {
		t.Fatalf("value %q %s", ct, v)
	}
}

func TestDecodeAggregationRefuses(t *testing.T) {
	good := stateAggregation(t)
	mutate := func(f func(m *fleetv1.Aggregation)) []byte {
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
	pg := func(f func(m *fleetv1.Tracked)) []byte {
		return mutate(func(m *fleetv1.Aggregation) { f(m.Intents["postgres"]) })
	}
	pb := mutate(func(*fleetv1.Aggregation) {})
	ct := AggregationContentType
	for _, tc := range []struct {
		name, ct, want string
		value          []byte
	}{
		{"intent message", pipeline.IntentContentType, "unsupported content type", pb},
		{"no message named", pipeline.ContentTypeProtobuf, "unsupported content type", pb},
		{"text", "text/plain", "unsupported content type", pb},
		{"protobuf as JSON", "", "not valid JSON", pb},
		{"not protobuf", ct, "not a onex.fleet.v1.Aggregation", []byte{0xff, 0xff}},
		{"JSON without node id", "", `"node_id": missing`, []byte(`{"intents":{}}`)},
		{"JSON without intents", "", `"intents": missing`, []byte(`{"node_id":"` + uuid.NewString() + `"}`)},
		{"no node id", ct, `"node_id": missing`, mutate(func(m *fleetv1.Aggregation) { m.NodeId = "" })},
		{"bad node id", ct, `"node_id"`, mutate(func(m *fleetv1.Aggregation) { m.NodeId = "node-1" })},
		{"bad attempt id", ct, `"registration_attempt_id"`, mutate(func(m *fleetv1.Aggregation) { m.RegistrationAttemptId = "x" })},
		{"bad correlation", ct, `"correlation_id"`, mutate(func(m *fleetv1.Aggregation) { m.CorrelationId = "x" })},
		{"negative results", ct, `"results_published"`, mutate(func(m *fleetv1.Aggregation) { m.ResultsPublished = -1 })},
		{"started out of range", ct, `"started_at"`, mutate(func(m *fleetv1.Aggregation) { m.StartedAt.Seconds = 1 << 40 })},
		{"no backend", ct, "without a backend", mutate(func(m *fleetv1.Aggregation) { m.Intents[""] = m.Intents["postgres"] })},
		{"no intent id", ct, `"intent_id": missing`, pg(func(m *fleetv1.Tracked) { m.IntentId = "" })},
		{"bad intent id", ct, `"intent_id"`, pg(func(m *fleetv1.Tracked) { m.IntentId = "x" })},
		{"no intent type", ct, `"intent_type": missing`, pg(func(m *fleetv1.Tracked) { m.IntentType = "" })},
		{"no record", ct, `"record": missing`, pg(func(m *fleetv1.Tracked) { m.Record = nil })},
		{"negative attempt", ct, "negative", pg(func(m *fleetv1.Tracked) { m.Attempt = -1 })},
		{"negative retries", ct, "negative", pg(func(m *fleetv1.Tracked) { m.Retries = -2 })},
		{"unknown state", ct, `"state"`, pg(func(m *fleetv1.Tracked) { m.State = "waiting" })},
		{"last result without node", ct, `"last_result"`, pg(func(m *fleetv1.Tracked) { m.LastResult.NodeId = "" })},
		{"bad retry time", ct, `"next_retry_at"`, pg(func(m *fleetv1.Tracked) { m.NextRetryAt.Nanos = -1 })},
		{"bad sent time", ct, `"sent_at"`, pg(func(m *fleetv1.Tracked) { m.SentAt.Seconds = -1 << 40 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeAggregation(stateHeader(tc.ct), tc.value)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// The state record is protobuf with its content type; a tombstone has
// neither value nor headers; an aggregation protobuf refuses is written as
// JSON without a content type.
func TestStateMessage(t *testing.T) {
	w := New(attemptConfig(&sender{}, noDLQ{}))
	a := stateAggregation(t)
	m, err := w.stateMessage(a.NodeID, a)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := m.Key.Encode(); m.Topic != "state" || string(k) != a.NodeID.String() || producedContentType(m) != AggregationContentType {
		t.Fatalf("state record %s %s %q", m.Topic, k, producedContentType(m))
	}
	if got, err := decodeState(m); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	pipeline.SetWrites(pipeline.WireJSON)
	m, err = w.stateMessage(a.NodeID, a)
	pipeline.SetWrites(pipeline.WireProtobuf)
	if err != nil {
		t.Fatal(err)
	}
	if m.Headers != nil {
		t.Fatalf("ONEX_INTERNAL_WIRE=json: record headers %v, want none (JSON)", m.Headers)
	}
	// The JSON form an older orchestrator restores: json.Marshal of the
	// aggregation, byte for byte.
	want, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Value.Encode(); string(v) != string(want) {
		t.Fatalf("ONEX_INTERNAL_WIRE=json: value %s\nwant %s", v, want)
	}
	if got, err := decodeState(m); err != nil || got.NodeID != a.NodeID || len(got.Intents) != len(a.Intents) {
		t.Fatalf("ONEX_INTERNAL_WIRE=json: decoded %+v, %v", got, err)
	}
	tomb, err := w.stateMessage(a.NodeID, nil)
	if err != nil || tomb.Value != nil || tomb.Headers != nil {
		t.Fatalf("tombstone %+v, %v", tomb, err)
	}
	a.Intents["postgres"].Last.BackendID = "pg-\xff"
	m, err = w.stateMessage(a.NodeID, a)
	if err != nil {
		t.Fatal(err)
	}
	if m.Headers != nil {
		t.Fatalf("fallback record headers %v, want none (JSON)", m.Headers)
	}
	if got, err := decodeState(m); err != nil || got.Intents["postgres"].Last.BackendID != "pg-\ufffd" {
		t.Fatalf("fallback decoded %+v, %v", got, err)
	}
}

// Restore applies the records of the state topic in order, whatever their
// form: a protobuf record replaces an older JSON one, a tombstone removes,
// a record under another node's key or undecodable is skipped.
func TestApplyStateRecord(t *testing.T) {
	w := New(attemptConfig(&sender{}, noDLQ{}))
	a, b := stateAggregation(t), stateAggregation(t)
	js, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	a2 := stateAggregation(t)
	a2.NodeID = a.NodeID
	pb, err := MarshalAggregation(a2)
	if err != nil {
		t.Fatal(err)
	}
	bpb, err := MarshalAggregation(b)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(key uuid.UUID, hs []*sarama.RecordHeader, v []byte) *sarama.ConsumerMessage {
		return &sarama.ConsumerMessage{Key: []byte(key.String()), Headers: hs, Value: v}
	}
	out := map[uuid.UUID]*Aggregation{}
	w.applyStateRecord(out, rec(a.NodeID, nil, js))
	if got := out[a.NodeID]; got == nil || got.AttemptID != a.AttemptID {
		t.Fatalf("JSON record not restored: %+v", got)
	}
	w.applyStateRecord(out, rec(a.NodeID, stateHeader(AggregationContentType), pb))
	w.applyStateRecord(out, rec(b.NodeID, stateHeader(AggregationContentType), bpb))
	if got := out[a.NodeID]; got == nil || got.AttemptID != a2.AttemptID || out[b.NodeID] == nil {
		t.Fatalf("protobuf records not restored: %+v", out)
	}
	w.applyStateRecord(out, rec(a.NodeID, stateHeader(AggregationContentType), bpb)) // b's state under a's key
	w.applyStateRecord(out, rec(a.NodeID, stateHeader(pipeline.IntentContentType), pb))
	w.applyStateRecord(out, rec(a.NodeID, stateHeader(AggregationContentType), []byte{0xff}))
	if got := out[a.NodeID]; got == nil || got.AttemptID != a2.AttemptID {
		t.Fatalf("a bad record replaced the state: %+v", got)
	}
	w.applyStateRecord(out, rec(b.NodeID, nil, nil))
	if _, ok := out[b.NodeID]; ok || len(out) != 1 {
		t.Fatalf("tombstone not applied: %+v", out)
	}
}

// FuzzUnmarshalAggregation feeds arbitrary state record values to the
// protobuf decoder: it must never panic, and what it accepts must survive
// another round through the wire unchanged.
func FuzzUnmarshalAggregation(f *testing.F) {
	for _, a := range []*Aggregation{stateAggregation(f), NewAggregation(&pipeline.Intent{NodeID: uuid.New()}, uuid.Nil, nil, t0)} {
		b, err := MarshalAggregation(a)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte(`{"node_id":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := UnmarshalAggregation(b)
		if err != nil {
			return
		}
		again, err := MarshalAggregation(a)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := UnmarshalAggregation(again)
		if err != nil {
			t.Fatalf("decode of re-encoded %+v: %v", a, err)
		}
		if !reflect.DeepEqual(back, a) {
			t.Fatalf("round trip %+v\nbecame %+v", a, back)
		}
	})
}
