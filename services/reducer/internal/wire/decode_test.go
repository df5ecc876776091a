package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
)

// newerNode's records are those of a node newer than the fleet: its
// envelope's metadata and its payload carry fields the fleet does not know.
func newerNode(t *testing.T) (*node.Identity, *node.Encoder) {
	t.Helper()
	id := &node.Identity{NodeID: uuid.New(), Name: "embedding", Type: registration.NodeKindEffect,
		Version: envelope.SemVer{Major: 1, Minor: 2}, Endpoints: map[string]string{"health": "http://h:8085/health"}}
	return id, &node.Encoder{Now: func() time.Time { return now }}
}

// withUnknown adds unknown members to a Python-encoded envelope: to its
// top level, its metadata, its version and the start of its payload.
func withUnknown(t *testing.T, value []byte, payloadMembers string) []byte {
	t.Helper()
	v := string(value)
	for old, new := range map[string]string{
		`"payload": {`:                    `"payload": {` + payloadMembers + `, `,
		`"tags": {}}, "security_context"`: `"tags": {}, "baggage": "k=v"}, "security_context"`,
		`"build": null}}`:                 `"build": null, "label": "x"}, "x_envelope_field": 1}`,
	} {
		if strings.Count(v, old) != 1 {
			t.Fatalf("no single %s in %s", old, v)
		}
		v = strings.Replace(v, old, new, 1)
	}
	return []byte(v)
}

func input(t *testing.T, topic string, value []byte) pipeline.ReducerInput {
	t.Helper()
	env, _, err := envelope.DecodeTolerant(value)
	if err != nil {
		t.Fatalf("the test record is not a tolerable envelope: %v\n%s", err, value)
	}
	// The record is one a strict decoder refuses: what the test is about.
	strict := map[string]func([]byte) error{
		topics.NodeIntrospection:     func(b []byte) error { _, err := registration.DecodeIntrospectionEvent(b); return err },
		topics.NodeHeartbeat:         func(b []byte) error { _, err := registration.DecodeHeartbeatEvent(b); return err },
		topics.NodeRegistrationAcked: func(b []byte) error { _, err := registration.DecodeRegistrationAcked(b); return err },
	}[topic]
	if err := strict(env.Payload); err == nil {
		t.Fatalf("a strict decode accepts the payload: the test proves nothing\n%s", env.Payload)
	}
	return pipeline.ReducerInput{Topic: topic, ReceivedAt: pipeline.T(now), Value: value}
}

// A node newer than the fleet sends fields it does not know. The
// orchestrator's ingress accepted the records; the reducer must decide them
// too, not dead-letter them, and keeps an introspection's unknown members.
func TestDecodeToleratesUnknownFields(t *testing.T) {
	id, enc := newerNode(t)
	ev := id.Introspection(registration.ReasonStartup, uuid.New(), now)
	rec, err := enc.Introspection(ev)
	if err != nil {
		t.Fatal(err)
	}
	value := withUnknown(t, rec.Value, `"flow_window": {"max_in_flight": 8, "note": "a<b"}, "shard": null`)
	value = []byte(strings.Replace(string(value), `"declared_capabilities": {`, `"declared_capabilities": {"new_thing": [1, 2], `, 1))
	got, kind, err := Decode(input(t, topics.NodeIntrospection, value))
	if err != nil || kind != "introspection" || got.Kind != processor.KindIntrospection {
		t.Fatalf("introspection with unknown fields: %s %v", kind, err)
	}
	in := got.Introspection
	if in.NodeID != id.NodeID || in.NodeType != "effect" || in.NodeVersion != "1.2.0" {
		t.Errorf("introspection decoded as %+v", in)
	}
	// Every unknown member of the payload, by its path, compact, in order.
	const want = `{"flow_window":{"max_in_flight":8,"note":"a<b"},"shard":null,"declared_capabilities.new_thing":[1,2]}`
	if string(in.Extras) != want {
		t.Errorf("extras %s, want %s", in.Extras, want)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(in.Extras, &obj); err != nil || len(obj) != 3 {
		t.Errorf("extras are not a JSON object of 3 members: %s (%v)", in.Extras, err)
	}
	// declared_capabilities is kept as the node sent it, its new key too.
	if !strings.Contains(string(in.Capabilities), `"new_thing":[1,2]`) {
		t.Errorf("capabilities %s lost the node's key", in.Capabilities)
	}

	// An introspection without unknown members has no extras (nil, not {}).
	rec, err = enc.Introspection(id.Introspection(registration.ReasonStartup, uuid.New(), now))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = Decode(pipeline.ReducerInput{Topic: topics.NodeIntrospection, ReceivedAt: pipeline.T(now), Value: rec.Value})
	if err != nil || got.Introspection.Extras != nil {
		t.Errorf("plain introspection: extras %q (%v), want nil", got.Introspection.Extras, err)
	}

	hb, err := enc.Heartbeat(id, time.Minute, node.Load{})
	if err != nil {
		t.Fatal(err)
	}
	value = withUnknown(t, hb.Value, `"queue_depth": {"in_flight": 3}`)
	got, kind, err = Decode(input(t, topics.NodeHeartbeat, value))
	if err != nil || kind != "heartbeat" || got.Kind != processor.KindHeartbeat || got.Heartbeat.NodeID != id.NodeID || !got.Heartbeat.Timestamp.Equal(now) {
		t.Fatalf("heartbeat with unknown fields: %s %+v %v", kind, got.Heartbeat, err)
	}

	ack, err := enc.Ack(id.NodeID, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	value = withUnknown(t, ack.Value, `"ack_latency_ms": 12`)
	got, kind, err = Decode(input(t, topics.NodeRegistrationAcked, value))
	if err != nil || kind != "ack" || got.Ack.NodeID != id.NodeID {
		t.Fatalf("ack with unknown fields: %s %+v %v", kind, got.Ack, err)
	}

	// Tolerance is for unknown fields only: a known field that is wrong
	// still fails, naming it.
	bad := strings.Replace(string(withUnknown(t, hb.Value, `"x": 1`)), `"node_type": "effect"`, `"node_type": "gizmo"`, 1)
	if _, _, err := Decode(pipeline.ReducerInput{Topic: topics.NodeHeartbeat, ReceivedAt: pipeline.T(now), Value: []byte(bad)}); err == nil || !strings.Contains(err.Error(), "node_type") {
		t.Errorf("a heartbeat with a bad node_type: %v, want an error naming node_type", err)
	}
}

// The extras go into a header Python decodes as UTF-8 and into a jsonb
// column, which refuses U+0000: neither can come through.
func TestExtrasObjectIsSafe(t *testing.T) {
	got := extrasObject(pyjson.Members{
		{Key: "a\x00", Value: json.RawMessage(`"x\u0000y \\u0000 \ufffd"`)},
		{Key: "b", Value: json.RawMessage("[\"\xff\", 1,\n 2]")},
	})
	const want = `{"a\ufffd":"x\ufffdy \\u0000 \ufffd","b":["` + "\uFFFD" + `",1,2]}`
	if string(got) != want || !utf8.Valid(got) || !json.Valid(got) {
		t.Errorf("extras %s, want %s", got, want)
	}
	if extrasObject(nil) != nil {
		t.Error("no members must give nil extras")
	}
}

// The upsert intent carries the extras to the projector, and omits the key
// when there are none (what the projector of an older release reads).
func TestUpsertIntentCarriesExtras(t *testing.T) {
	for _, extras := range []string{`{"flow_window":{"max_in_flight":8}}`, ""} {
		in := decide.Introspection{NodeID: uuid.New(), NodeType: "effect", NodeVersion: "1.2.0", CorrelationID: uuid.New()}
		if extras != "" {
			in.Extras = json.RawMessage(extras)
		}
		d := decide.DecideIntrospection(nil, in, now, decide.DefaultParams())
		rec, err := Intent(d.Intents[0], d.State, now)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pipeline.UnmarshalIntent(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		pi := r.Intent
		var up struct {
			Record struct {
				Data map[string]json.RawMessage `json:"data"`
			} `json:"record"`
		}
		if err := json.Unmarshal(pi.Payload, &up); err != nil {
			t.Fatal(err)
		}
		got, has := up.Record.Data["introspection_extras"]
		if has != (extras != "") || has && !jsonSame(got, extras) {
			t.Errorf("extras %q: upsert data carries %s (%v)", extras, got, has)
		}
	}
}

func jsonSame(a json.RawMessage, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}
