package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
)

const (
	nodeID = "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18"
	corrID = "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"
	ts     = "2026-03-02T14:05:07.401122Z"
)

func TestFixturePayloadsDecode(t *testing.T) {
	t.Run("introspection-effect", func(t *testing.T) {
		env, err := envelope.Decode(readFixture(t, "introspection-effect.json"))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := envelope.DecodePayload(env, DecodeIntrospectionEvent)
		if err != nil {
			t.Fatal(err)
		}
		if ev.NodeID.String() != nodeID || ev.NodeType != NodeKindEffect || ev.Reason != ReasonStartup ||
			ev.NodeVersion.String() != "1.2.0" || ev.CorrelationID.String() != corrID ||
			*ev.NodeName != "node_llm_embedding_effect" || ev.Endpoints["health"] != "http://embedding-effect:8085/health" {
			t.Errorf("decoded %+v", ev)
		}
		if !ev.DeclaredCapabilities.Read || *ev.DeclaredCapabilities.BatchSize != 32 || ev.DeclaredCapabilities.MCP != nil {
			t.Errorf("capabilities %+v", ev.DeclaredCapabilities)
		}
		if ev.ContractCapabilities.ContractType != "effect" || ev.PerformanceMetrics.MethodCount != 2 ||
			ev.EventBus.PublishTopics[0].Topic != "onex.evt.omnibase-infra.llm-embedding-completed.v1" {
			t.Errorf("nested %+v %+v %+v", ev.ContractCapabilities, ev.PerformanceMetrics, ev.EventBus)
		}
	})
	t.Run("heartbeat", func(t *testing.T) {
		hb, err := DecodeHeartbeatEvent(fixturePayload(t, "heartbeat.json"))
		if err != nil {
			t.Fatal(err)
		}
		if hb.UptimeSeconds != 30.02 || *hb.MemoryUsageMB != 74.5 || *hb.CPUUsagePercent != 0.8 ||
			!hb.Timestamp.Equal(time.Date(2026, 3, 2, 14, 5, 37, 410551000, time.UTC)) {
			t.Errorf("decoded %+v", hb)
		}
	})
	t.Run("ack", func(t *testing.T) {
		ack, err := DecodeRegistrationAcked(fixturePayload(t, "ack.json"))
		if err != nil {
			t.Fatal(err)
		}
		if ack.CommandID.String() != "c0ffee00-1234-4abc-8def-0123456789ab" || ack.NodeID.String() != nodeID {
			t.Errorf("decoded %+v", ack)
		}
	})
	t.Run("topic-catalog-query", func(t *testing.T) {
		q, err := DecodeTopicCatalogQuery(fixturePayload(t, "topic-catalog-query.json"))
		if err != nil {
			t.Fatal(err)
		}
		if q.ClientID != "omnidash" || *q.TopicPattern != "onex.evt.platform.*" || q.SchemaVersion != 1 || q.IncludeInactive {
			t.Errorf("decoded %+v", q)
		}
	})
	t.Run("runtime-tick", func(t *testing.T) {
		raw := readFixture(t, "runtime-tick.json")
		for _, dec := range []func([]byte) (*RuntimeTick, error){DecodeRuntimeTick, DecodeTick} {
			tick, err := dec(raw)
			if err != nil {
				t.Fatal(err)
			}
			if tick.SequenceNumber != 42 || tick.SchedulerID != "runtime-scheduler-default" || tick.TickIntervalMs != 1000 ||
				!tick.Now.Equal(time.Date(2026, 3, 2, 14, 5, 8, 0, time.UTC)) {
				t.Errorf("decoded %+v", tick)
			}
		}
	})
	t.Run("request-introspection", func(t *testing.T) {
		r, err := DecodeRequestIntrospection(readFixture(t, "request-introspection.json"))
		if err != nil {
			t.Fatal(err)
		}
		if *r.EventType != "REQUEST_INTROSPECTION" || r.CorrelationID.String() != "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6" ||
			*r.Reason != "registry_startup" || r.Timestamp == nil || r.TargetNodeID != nil || !r.AddressedTo(uuid.New()) {
			t.Errorf("decoded %+v", r)
		}
	})
}

// The Python-ordered encoder reproduces the older fixtures' payloads (the
// compatibility floor) exactly, but for the fields added since, which it
// writes with their defaults (the heartbeat's flow_window, null). The
// current goldens are checked in golden_test.go.
func TestFixturePayloadsReencodeExactly(t *testing.T) {
	same := func(_ testing.TB, b []byte) []byte { return b }
	tests := []struct {
		file   string
		decode func([]byte) (json.Marshaler, error)
		want   func(testing.TB, []byte) []byte
	}{
		{"introspection-effect.json", func(b []byte) (json.Marshaler, error) { return DecodeIntrospectionEvent(b) }, same},
		{"heartbeat.json", func(b []byte) (json.Marshaler, error) { return DecodeHeartbeatEvent(b) }, func(t testing.TB, b []byte) []byte {
			return withFieldsNull(t, b, "correlation_id", "flow_window")
		}},
		{"ack.json", func(b []byte) (json.Marshaler, error) { return DecodeRegistrationAcked(b) }, same},
		{"topic-catalog-query.json", func(b []byte) (json.Marshaler, error) { return DecodeTopicCatalogQuery(b) }, same},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			payload := fixturePayload(t, tt.file)
			m, err := tt.decode(payload)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(t, payload); !bytes.Equal(out, want) {
				t.Fatalf("re-encoded payload differs\n got: %s\nwant: %s", out, want)
			}
		})
	}
}

// withKey returns the JSON object doc with key set to the raw JSON value
// (added or replaced); value "" deletes the key. Key order is not kept.
func withKey(t testing.TB, doc []byte, key, value string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	if value == "" {
		delete(m, key)
	} else {
		m[key] = json.RawMessage(value)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type decoder func([]byte) (any, error)

func dec[T any](f func([]byte) (*T, error)) decoder {
	return func(b []byte) (any, error) { return f(b) }
}

// validDocs holds one minimal valid document per strict model.
func validDocs(t testing.TB) map[string]struct {
	decode decoder
	doc    string
} {
	intro := string(fixturePayload(t, "introspection-effect.json"))
	lc := `"entity_id": "` + nodeID + `", "node_id": "` + nodeID + `", "correlation_id": "` + corrID + `", "causation_id": "` + corrID + `", "emitted_at": "` + ts + `"`
	return map[string]struct {
		decode decoder
		doc    string
	}{
		"IntrospectionEvent":        {dec(DecodeIntrospectionEvent), intro},
		"IntrospectionEventMinimal": {dec(DecodeIntrospectionEvent), `{"node_id": "` + nodeID + `", "node_type": "compute", "correlation_id": "` + corrID + `", "timestamp": "` + ts + `"}`},
		"HeartbeatEvent":            {dec(DecodeHeartbeatEvent), string(fixturePayload(t, "heartbeat.json"))},
		"RegistrationAcked":         {dec(DecodeRegistrationAcked), string(fixturePayload(t, "ack.json"))},
		"RuntimeTick":               {dec(DecodeRuntimeTick), string(readFixture(t, "runtime-tick.json"))},
		"TopicCatalogQuery":         {dec(DecodeTopicCatalogQuery), string(fixturePayload(t, "topic-catalog-query.json"))},
		"TopicCatalogResponse":      {dec(DecodeTopicCatalogResponse), `{"correlation_id": "` + corrID + `", "topics": [{"topic_suffix": "onex.evt.platform.node-heartbeat.v1", "topic_name": "onex.evt.platform.node-heartbeat.v1", "partitions": 6, "publisher_count": 2, "is_active": false}], "catalog_version": 3, "node_count": 2, "generated_at": "` + ts + `", "warnings": ["partial"]}`},
		"TopicCatalogChanged":       {dec(DecodeTopicCatalogChanged), `{"correlation_id": "` + corrID + `", "catalog_version": 4, "topics_added": ["b", "a"], "changed_at": "` + ts + `"}`},
		"RegistrationAccepted":      {dec(DecodeRegistrationAccepted), `{` + lc + `, "ack_deadline": "` + ts + `"}`},
		"RegistrationRejected":      {dec(DecodeRegistrationRejected), `{` + lc + `, "rejection_reason": "runtime_host not allowed"}`},
		"RegistrationSnapshot":      {dec(DecodeRegistrationSnapshot), `{"entity_id": "` + nodeID + `", "current_state": "active", "node_type": "effect", "capabilities": {"postgres": true}, "last_state_change_at": "` + ts + `", "snapshot_version": 1, "snapshot_created_at": "` + ts + `", "source_projection_sequence": 17}`},
	}
}

// Every model round-trips: Decode → MarshalJSON → Decode → MarshalJSON is
// stable.
func TestRoundTripAllModels(t *testing.T) {
	for name, c := range validDocs(t) {
		t.Run(name, func(t *testing.T) {
			v, err := c.decode([]byte(c.doc))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			out1, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			v2, err := c.decode(out1)
			if err != nil {
				t.Fatalf("decode(encode): %v\n%s", err, out1)
			}
			out2, err := json.Marshal(v2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out1, out2) {
				t.Fatalf("unstable:\n%s\n%s", out1, out2)
			}
		})
	}
}

func TestUnknownKeyRejectedInForbidModels(t *testing.T) {
	for name, c := range validDocs(t) {
		t.Run(name, func(t *testing.T) {
			_, err := c.decode(withKey(t, []byte(c.doc), "surprise_key", `1`))
			var fe *envelope.FieldError
			if !errors.As(err, &fe) || fe.Field != "surprise_key" {
				t.Fatalf("err = %v, want FieldError naming surprise_key", err)
			}
			if !strings.Contains(err.Error(), `field "surprise_key"`) || fe.Model == "" {
				t.Fatalf("message %q", err)
			}
		})
	}
}

func TestNestedUnknownKeyNamed(t *testing.T) {
	intro := fixturePayload(t, "introspection-effect.json")
	doc := bytes.Replace(intro, []byte(`"has_fsm": false`), []byte(`"has_fsm": false, "bogus": 1`), 1)
	_, err := DecodeIntrospectionEvent(doc)
	var fe *envelope.FieldError
	if !errors.As(err, &fe) || fe.Field != "discovered_capabilities.bogus" || fe.Model != "ModelNodeIntrospectionEvent" {
		t.Fatalf("err = %v", err)
	}
	doc = bytes.Replace(intro, []byte(`"message_category": "EVENT", "description": null}]`), []byte(`"message_category": "EVENT", "description": null, "x": 2}]`), 1)
	_, err = DecodeIntrospectionEvent(doc)
	if !errors.As(err, &fe) || fe.Field != "event_bus.subscribe_topics[0].x" {
		t.Fatalf("err = %v", err)
	}
}

func TestFieldErrors(t *testing.T) {
	intro := fixturePayload(t, "introspection-effect.json")
	hb := fixturePayload(t, "heartbeat.json")
	ack := fixturePayload(t, "ack.json")
	tick := readFixture(t, "runtime-tick.json")
	query := fixturePayload(t, "topic-catalog-query.json")
	docs := validDocs(t)
	doc := func(name string) []byte { return []byte(docs[name].doc) }
	tests := []struct {
		name      string
		decode    decoder
		in        []byte
		wantField string
	}{
		{"naive introspection timestamp", dec(DecodeIntrospectionEvent), withKey(t, intro, "timestamp", `"2026-03-02T14:05:07.401122"`), "timestamp"},
		{"naive heartbeat timestamp", dec(DecodeHeartbeatEvent), withKey(t, hb, "timestamp", `"2026-03-02T14:05:37"`), "timestamp"},
		{"naive ack timestamp", dec(DecodeRegistrationAcked), withKey(t, ack, "timestamp", `"2026-03-02T14:05:37"`), "timestamp"},
		{"naive tick now", dec(DecodeRuntimeTick), withKey(t, tick, "now", `"2026-03-02T14:05:08"`), "now"},
		{"bad node_type", dec(DecodeIntrospectionEvent), withKey(t, intro, "node_type", `"widget"`), "node_type"},
		{"upper-case node_type", dec(DecodeHeartbeatEvent), withKey(t, hb, "node_type", `"EFFECT"`), "node_type"},
		{"bad reason", dec(DecodeIntrospectionEvent), withKey(t, intro, "reason", `"bogus"`), "reason"},
		{"bad snapshot state", dec(DecodeRegistrationSnapshot), withKey(t, doc("RegistrationSnapshot"), "current_state", `"ACTIVE"`), "current_state"},
		{"missing correlation_id", dec(DecodeIntrospectionEvent), withKey(t, intro, "correlation_id", ""), "correlation_id"},
		{"missing timestamp", dec(DecodeIntrospectionEvent), withKey(t, intro, "timestamp", ""), "timestamp"},
		{"node_id not uuid", dec(DecodeIntrospectionEvent), withKey(t, intro, "node_id", `"node-1"`), "node_id"},
		{"introspection node_version string", dec(DecodeIntrospectionEvent), withKey(t, intro, "node_version", `"1.2.0"`), "node_version"},
		{"endpoint without host", dec(DecodeIntrospectionEvent), withKey(t, intro, "endpoints", `{"health": "/health"}`), "endpoints.health"},
		{"endpoint without scheme", dec(DecodeIntrospectionEvent), withKey(t, intro, "endpoints", `{"api": "ok", "health": "embedding:8085"}`), "endpoints.api"},
		{"endpoint not string", dec(DecodeIntrospectionEvent), withKey(t, intro, "endpoints", `{"health": 1}`), "endpoints.health"},
		{"negative epoch", dec(DecodeIntrospectionEvent), withKey(t, intro, "epoch", `-1`), "epoch"},
		{"negative perf timing", dec(DecodeIntrospectionEvent), bytes.Replace(intro, []byte(`"get_endpoints_ms": 0.05`), []byte(`"get_endpoints_ms": -0.05`), 1), "performance_metrics.get_endpoints_ms"},
		{"capabilities bool as string", dec(DecodeIntrospectionEvent), bytes.Replace(intro, []byte(`"read": true`), []byte(`"read": "true"`), 1), "declared_capabilities.read"},
		{"mcp timeout out of range", dec(DecodeRegistrationSnapshot), withKey(t, doc("RegistrationSnapshot"), "capabilities", `{"mcp": {"timeout_seconds": 0}}`), "capabilities.mcp.timeout_seconds"},
		{"rollout out of range", dec(DecodeRegistrationSnapshot), withKey(t, doc("RegistrationSnapshot"), "capabilities", `{"feature_flags": {"flag_metadata": {"f": {"rollout_percentage": 101}}}}`), "capabilities.feature_flags.flag_metadata.f.rollout_percentage"},
		{"cpu over 100", dec(DecodeHeartbeatEvent), withKey(t, hb, "cpu_usage_percent", `100.5`), "cpu_usage_percent"},
		{"negative uptime", dec(DecodeHeartbeatEvent), withKey(t, hb, "uptime_seconds", `-1`), "uptime_seconds"},
		{"uptime missing", dec(DecodeHeartbeatEvent), withKey(t, hb, "uptime_seconds", ""), "uptime_seconds"},
		{"heartbeat bad version string", dec(DecodeHeartbeatEvent), withKey(t, hb, "node_version", `"1.2"`), "node_version"},
		{"tick interval too small", dec(DecodeRuntimeTick), withKey(t, tick, "tick_interval_ms", `50`), "tick_interval_ms"},
		{"tick empty scheduler", dec(DecodeRuntimeTick), withKey(t, tick, "scheduler_id", `""`), "scheduler_id"},
		{"tick negative sequence", dec(DecodeRuntimeTick), withKey(t, tick, "sequence_number", `-1`), "sequence_number"},
		{"query empty client", dec(DecodeTopicCatalogQuery), withKey(t, query, "client_id", `""`), "client_id"},
		{"query bad pattern", dec(DecodeTopicCatalogQuery), withKey(t, query, "topic_pattern", `"onex.evt/[x]"`), "topic_pattern"},
		{"query schema 0", dec(DecodeTopicCatalogQuery), withKey(t, query, "schema_version", `0`), "schema_version"},
		{"response entry partitions", dec(DecodeTopicCatalogResponse), withKey(t, doc("TopicCatalogResponse"), "topics", `[{"topic_suffix": "a", "topic_name": "a", "partitions": 0}]`), "topics[0].partitions"},
		{"changed cas with version", dec(DecodeTopicCatalogChanged), withKey(t, doc("TopicCatalogChanged"), "cas_failure", `true`), "catalog_version"},
		{"rejected empty reason", dec(DecodeRegistrationRejected), withKey(t, doc("RegistrationRejected"), "rejection_reason", `""`), "rejection_reason"},
		{"snapshot version 0", dec(DecodeRegistrationSnapshot), withKey(t, doc("RegistrationSnapshot"), "snapshot_version", `0`), "snapshot_version"},
		{"snapshot schema_version object", dec(DecodeRegistrationSnapshot), withKey(t, doc("RegistrationSnapshot"), "schema_version", `{"major": 1, "minor": 0, "patch": 0}`), "schema_version"},
		{"not an object", dec(DecodeHeartbeatEvent), []byte(`[]`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.decode(tt.in)
			var fe *envelope.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if fe.Field != tt.wantField {
				t.Fatalf("field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			}
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, in := range []string{``, `{"node_id": `, `{"a":1}}`} {
		_, err := DecodeIntrospectionEvent([]byte(in))
		var se *json.SyntaxError
		if !errors.Is(err, envelope.ErrSyntax) || !errors.As(err, &se) {
			t.Errorf("DecodeIntrospectionEvent(%q) err = %v, want syntax error", in, err)
		}
	}
}

func TestHeartbeatVersionForms(t *testing.T) {
	hb := fixturePayload(t, "heartbeat.json")
	for _, v := range []string{`"1.2.0"`, `{"major": 1, "minor": 2, "patch": 0}`} {
		ev, err := DecodeHeartbeatEvent(withKey(t, hb, "node_version", v))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		out, _ := ev.MarshalJSON()
		if ev.NodeVersion.String() != "1.2.0" || !bytes.Contains(out, []byte(`"node_version": {"major": 1, "minor": 2, "patch": 0, "prerelease": null, "build": null}`)) {
			t.Fatalf("%s: %s", v, out)
		}
	}
	ev, err := DecodeHeartbeatEvent(withKey(t, hb, "node_version", ""))
	if err != nil || ev.NodeVersion.String() != "1.0.0" {
		t.Fatalf("default node_version: %v %v", ev, err)
	}
}

func TestExtrasPreserved(t *testing.T) {
	intro := fixturePayload(t, "introspection-effect.json")
	doc := bytes.Replace(intro, []byte(`"mcp": null}`), []byte(`"mcp": null, "gpu": {"count": 2}, "zone": "eu"}`), 1)
	doc = bytes.Replace(doc, []byte(`"meta": null}`), []byte(`"meta": null, "team": "ml"}`), 1)
	ev, err := DecodeIntrospectionEvent(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.DeclaredCapabilities.Extra) != 2 || len(ev.Metadata.Extra) != 1 {
		t.Fatalf("extras: %+v %+v", ev.DeclaredCapabilities.Extra, ev.Metadata.Extra)
	}
	out, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, doc) {
		t.Fatalf("extras not re-encoded in place\n got: %s\nwant: %s", out, doc)
	}
}

func TestDecodeTickShapes(t *testing.T) {
	bare := readFixture(t, "runtime-tick.json")
	env, err := envelope.New(json.RawMessage(bare))
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tick, err := DecodeTick(wrapped)
	if err != nil || tick.SequenceNumber != 42 {
		t.Fatalf("enveloped tick: %+v %v", tick, err)
	}
	env.Payload = withKey(t, bare, "tick_interval_ms", `5`)
	wrapped, _ = env.Encode()
	_, err = DecodeTick(wrapped)
	var fe *envelope.FieldError
	if !errors.As(err, &fe) || fe.Field != "payload.tick_interval_ms" {
		t.Fatalf("err = %v", err)
	}
	if _, err := DecodeTick([]byte(`{"payload": {}, "priority": 0}`)); !errors.As(err, &fe) || fe.Field != "priority" {
		t.Fatalf("bad envelope: err = %v", err)
	}
	if _, err := DecodeTick([]byte(`{"now"`)); !errors.Is(err, envelope.ErrSyntax) {
		t.Fatalf("syntax: err = %v", err)
	}
}

func TestRequestIntrospectionLenient(t *testing.T) {
	node := uuid.MustParse(nodeID)
	tests := []struct {
		name      string
		in        string
		addressed bool
		corr      bool
	}{
		{"empty value", ``, true, false},
		{"whitespace", "  \n", true, false},
		{"empty object", `{}`, true, false},
		{"array", `[1]`, true, false},
		{"bad correlation", `{"correlation_id": "x", "timestamp": 5}`, true, false},
		{"targeted to me", `{"correlation_id": "` + corrID + `", "target_node_id": "` + strings.ToUpper(nodeID) + `"}`, true, true},
		{"targeted elsewhere", `{"target_node_id": "` + corrID + `"}`, false, false},
		{"target not uuid", `{"target_node_id": "node-7"}`, false, false},
		{"target wrong type", `{"target_node_id": 7}`, true, false},
		{"enveloped: payload target unseen", `{"payload": {"target_node_id": "` + corrID + `"}, "correlation_id": "` + corrID + `"}`, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRequestIntrospection([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if r.AddressedTo(node) != tt.addressed || (r.CorrelationID != nil) != tt.corr {
				t.Fatalf("got %+v addressed=%v", r, r.AddressedTo(node))
			}
		})
	}
	if _, err := DecodeRequestIntrospection([]byte(`{"a":`)); !errors.Is(err, envelope.ErrSyntax) {
		t.Fatalf("malformed JSON: err = %v", err)
	}
	et, reason := "REQUEST_INTROSPECTION", "registry_startup"
	id := uuid.MustParse(corrID)
	out, err := json.Marshal(RequestIntrospection{EventType: &et, CorrelationID: &id, Reason: &reason})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"event_type":"REQUEST_INTROSPECTION","correlation_id":"` + corrID + `","reason":"registry_startup"}`; string(out) != want {
		t.Fatalf("MarshalJSON = %s, want %s", out, want)
	}
}

func TestCatalogNormalization(t *testing.T) {
	docs := validDocs(t)
	resp, err := DecodeTopicCatalogResponse([]byte(docs["TopicCatalogResponse"].doc))
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Topics[0].IsActive {
		t.Fatal("is_active not recomputed from publisher_count")
	}
	ch, err := DecodeTopicCatalogChanged([]byte(docs["TopicCatalogChanged"].doc))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ch.TopicsAdded, ",") != "a,b" {
		t.Fatalf("topics_added = %v", ch.TopicsAdded)
	}
	added := []string{"z", "m"}
	entry := TopicCatalogEntry{TopicSuffix: "s", TopicName: "s", Partitions: 1, SubscriberCount: 1}
	out, err := json.Marshal(TopicCatalogChanged{TopicsAdded: added})
	if err != nil || !bytes.Contains(out, []byte(`"topics_added":["m","z"]`)) || added[0] != "z" {
		t.Fatalf("marshal sorted copy: %s %v %v", out, err, added)
	}
	if out, _ := json.Marshal(entry); !bytes.Contains(out, []byte(`"is_active":true`)) || entry.IsActive {
		t.Fatalf("entry marshal: %s", out)
	}
}

func TestEnums(t *testing.T) {
	if len(States) != 8 {
		t.Fatalf("States = %d", len(States))
	}
	for _, s := range States {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	for _, bad := range []string{"", "Active", "registered"} {
		if State(bad).Valid() || NodeKind(bad).Valid() || IntrospectionReason(bad).Valid() {
			t.Errorf("%q accepted", bad)
		}
	}
	if !NodeKindRuntimeHost.Valid() || !ReasonCapabilityChange.Valid() {
		t.Error("valid value rejected")
	}
}
