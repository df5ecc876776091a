package wire

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

func contentType(ct string) []*sarama.RecordHeader {
	return []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(ct)}}
}

// jsonRecord is a reducer input as the orchestrator wrote it before
// protobuf: the JSON form, with the application/json header or none.
func jsonRecord(t *testing.T, ri pipeline.ReducerInput) []byte {
	t.Helper()
	b, err := pipeline.ReducerInputLine(ri)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// protoRecord is a reducer input as the orchestrator writes it now: a
// heartbeat reduced to what ingress decoded of it, every other input with
// its value.
func protoRecord(t *testing.T, ri pipeline.ReducerInput) []byte {
	t.Helper()
	if ri.Topic == topics.NodeHeartbeat {
		env, _, err := envelope.DecodeTolerant(ri.Value)
		if err != nil {
			t.Fatal(err)
		}
		hb, _, err := registration.DecodeHeartbeatEventTolerant(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		ri.Value, ri.Heartbeat = nil, pipeline.NewHeartbeatInput(hb)
	}
	b, err := pipeline.MarshalReducerInput(ri)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var payloadTimestamp = regexp.MustCompile(`"timestamp": "[^"]*"`)

// stamped is a heartbeat record value with its payload timestamp replaced.
func stamped(value []byte, ts string) []byte {
	// The payload is the envelope's first member, its timestamp its last.
	loc := payloadTimestamp.FindIndex(value)
	return []byte(string(value[:loc[0]]) + `"timestamp": "` + ts + `"` + string(value[loc[1]:]))
}

// Every input decodes to the same processor input from either wire, so the
// reducer decides the same whichever the orchestrator wrote: for a
// heartbeat, which the protobuf form carries as decoded fields, the
// timestamp's UTC offset and a missing correlation id included.
func TestDecodeRecordBothWires(t *testing.T) {
	id := &node.Identity{NodeID: uuid.New(), Name: "embedding", Type: registration.NodeKindEffect,
		Version: envelope.SemVer{Major: 1}, Endpoints: map[string]string{"health": "http://h:8085/health"}}
	enc := &node.Encoder{Now: func() time.Time { return now }}
	at := pipeline.T(now.Add(time.Second))

	intro, err := enc.Introspection(id.Introspection(registration.ReasonStartup, uuid.New(), now))
	if err != nil {
		t.Fatal(err)
	}
	hb, err := enc.Heartbeat(id, time.Minute, node.Load{})
	if err != nil {
		t.Fatal(err)
	}
	if payloadTimestamp.FindAllIndex(hb.Value, -1) == nil {
		t.Fatalf("no payload timestamp in %s", hb.Value)
	}
	withTimestamp := func(ts string) []byte { return stamped(hb.Value, ts) }
	noCorrelation := regexp.MustCompile(`"correlation_id": "[^"]*", "timestamp"`)
	ack, err := enc.Ack(id.NodeID, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	node := id.NodeID
	cmd, err := operator.Encode(&operator.Command{CommandID: uuid.New(), Command: operator.Deregister, NodeID: &node,
		RequestedBy: "ops", RequestedAt: pipeline.T(now)}, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	tick := []byte(`{"now":"2026-03-02T14:05:40Z","tick_id":"5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b","sequence_number":42,"scheduled_at":"2026-03-02T14:05:40Z","correlation_id":"9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f","scheduler_id":"runtime-scheduler-default","tick_interval_ms":1000}`)

	for _, tt := range []struct {
		name  string
		topic string
		value []byte
	}{
		{"introspection", topics.NodeIntrospection, intro.Value},
		{"heartbeat", topics.NodeHeartbeat, hb.Value},
		{"heartbeat stamped east of UTC", topics.NodeHeartbeat, withTimestamp("2026-03-02T16:05:07.401122+02:00")},
		{"heartbeat stamped west of UTC", topics.NodeHeartbeat, withTimestamp("2026-03-02T09:35:07-04:30")},
		{"heartbeat stamped Z", topics.NodeHeartbeat, withTimestamp("2026-03-02T14:05:07.000001Z")},
		{"heartbeat without a correlation id", topics.NodeHeartbeat, noCorrelation.ReplaceAll(hb.Value, []byte(`"correlation_id": null, "timestamp"`))},
		{"ack", topics.NodeRegistrationAcked, ack.Value},
		{"tick", topics.RuntimeTick, tick},
		{"operator", topics.RegistrationAdmin, cmd},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ri := pipeline.ReducerInput{Topic: tt.topic, ReceivedAt: at, Value: tt.value}
			want, wantKind, err := DecodeRecord(nil, jsonRecord(t, ri))
			if err != nil {
				t.Fatalf("JSON form without a header: %v", err)
			}
			if tt.name == "heartbeat without a correlation id" && want.Heartbeat.CorrelationID != uuid.Nil {
				t.Fatalf("the test heartbeat has a correlation id: %s", tt.value)
			}
			got, kind, err := DecodeRecord(contentType(pipeline.ContentTypeJSON), jsonRecord(t, ri))
			if err != nil || kind != wantKind || !reflect.DeepEqual(got, want) {
				t.Errorf("JSON form with its header: %s %+v %v, want %s %+v", kind, got, err, wantKind, want)
			}
			got, kind, err = DecodeRecord(contentType(pipeline.ReducerInputContentType), protoRecord(t, ri))
			if err != nil || kind != wantKind || !reflect.DeepEqual(got, want) {
				t.Fatalf("protobuf form: %s %+v %v, want %s %+v", kind, got, err, wantKind, want)
			}
			if tt.topic == topics.NodeHeartbeat && envelope.FormatTime(got.Heartbeat.Timestamp) != envelope.FormatTime(want.Heartbeat.Timestamp) {
				t.Errorf("heartbeat timestamp %s, want %s", envelope.FormatTime(got.Heartbeat.Timestamp), envelope.FormatTime(want.Heartbeat.Timestamp))
			}
		})
	}
}

// A node's state after the same heartbeats from either wire is the same,
// down to the text of its times (the snapshot's reducer state).
func TestHeartbeatDecisionsMatchAcrossWires(t *testing.T) {
	id := &node.Identity{NodeID: uuid.New(), Name: "embedding", Type: registration.NodeKindEffect,
		Version: envelope.SemVer{Major: 1}, Endpoints: map[string]string{"health": "http://h:8085/health"}}
	at := now
	enc := &node.Encoder{Now: func() time.Time { return at }}
	intro, err := enc.Introspection(id.Introspection(registration.ReasonStartup, uuid.New(), at))
	if err != nil {
		t.Fatal(err)
	}
	inputs := []pipeline.ReducerInput{{Topic: topics.NodeIntrospection, ReceivedAt: pipeline.T(at), Value: intro.Value}}
	for i := 1; i <= 3; i++ {
		at = now.Add(time.Duration(i) * time.Second)
		hb, err := enc.Heartbeat(id, time.Minute, node.Load{})
		if err != nil {
			t.Fatal(err)
		}
		// Stamped an hour east of UTC: the state must show it as the JSON
		// form's decoding does.
		v := stamped(hb.Value, envelope.FormatTime(at.In(time.FixedZone("", 3600))))
		inputs = append(inputs, pipeline.ReducerInput{Topic: topics.NodeHeartbeat, ReceivedAt: pipeline.T(at), Value: v})
	}
	run := func(wire func(pipeline.ReducerInput) ([]*sarama.RecordHeader, []byte)) []decide.Decision {
		proc := processor.New(decide.DefaultParams(), state.NewPartition(0))
		var out []decide.Decision
		for _, ri := range inputs {
			h, v := wire(ri)
			in, _, err := DecodeRecord(h, v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, proc.Apply(in).Decisions...)
		}
		return out
	}
	fromJSON := run(func(ri pipeline.ReducerInput) ([]*sarama.RecordHeader, []byte) { return nil, jsonRecord(t, ri) })
	fromProto := run(func(ri pipeline.ReducerInput) ([]*sarama.RecordHeader, []byte) {
		return contentType(pipeline.ReducerInputContentType), protoRecord(t, ri)
	})
	if len(fromJSON) != len(fromProto) || len(fromJSON) < 4 {
		t.Fatalf("%d decisions from JSON, %d from protobuf", len(fromJSON), len(fromProto))
	}
	for i := range fromJSON {
		a, err := Decision(fromJSON[i], now)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Decision(fromProto[i], now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("decision %d (%s): its records differ between the wires", i, fromJSON[i].Reason)
		}
		sa, err := Snapshot(fromJSON[i].State, now)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := Snapshot(fromProto[i].State, now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sa, sb) {
			t.Errorf("decision %d: snapshot %s %s, want %s %s", i, sb.Value, sb.Headers, sa.Value, sa.Headers)
		}
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	hb := func(topic string, at envelope.Time) []byte {
		b, err := pipeline.MarshalReducerInput(pipeline.ReducerInput{Topic: topic, ReceivedAt: at,
			Heartbeat: &pipeline.HeartbeatInput{NodeID: uuid.New(), Timestamp: now}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		name    string
		headers []*sarama.RecordHeader
		value   []byte
		kind    string
		want    string
	}{
		{"protobuf read as JSON", nil, hb(topics.NodeHeartbeat, pipeline.T(now)), "unknown", "not valid JSON"},
		{"another content type", contentType("text/plain"), []byte(`{}`), "unknown", "unsupported content type"},
		{"a heartbeat on another topic", contentType(pipeline.ReducerInputContentType), hb(topics.NodeIntrospection, pipeline.T(now)), "unknown", "carries a heartbeat"},
		{"a heartbeat without received_at", contentType(pipeline.ReducerInputContentType), hb(topics.NodeHeartbeat, envelope.Time{}), "heartbeat", "received_at"},
		{"garbage", contentType(pipeline.ReducerInputContentType), []byte{0x0a, 0xff}, "unknown", "onex.fleet.v1.ReducerInput"},
	} {
		_, kind, err := DecodeRecord(tt.headers, tt.value)
		if err == nil || kind != tt.kind || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %s %v, want kind %s and an error with %q", tt.name, kind, err, tt.kind, tt.want)
		}
	}
}
