package snapshot

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

var at = time.Date(2026, 3, 2, 14, 5, 7, 401122000, time.UTC)

func ptr[T any](v T) *T { return &v }

// active returns a node's state after introspection and ack.
func active(t testing.TB, in decide.Introspection) *decide.NodeState {
	t.Helper()
	in.HandlerCorrelationID = in.CorrelationID
	p := decide.DefaultParams()
	d := decide.DecideIntrospection(nil, in, at, p)
	a := decide.DecideAck(d.State, decide.Ack{NodeID: in.NodeID, CommandID: uuid.New()}, at.Add(time.Second), p)
	if a.State == nil || a.State.State != decide.Active {
		t.Fatalf("not active: %s", a.Reason)
	}
	return a.State
}

func effectNode(t testing.TB) *decide.NodeState {
	return active(t, decide.Introspection{NodeID: uuid.New(), NodeType: "effect", NodeVersion: "1.2.0", NodeName: ptr("embedding"),
		Capabilities:  json.RawMessage(`{"read":true,"supported_types":["x"]}`),
		Endpoints:     map[string]string{"health": "http://h:8085/health", "api": "http://h:8085/api"},
		CorrelationID: uuid.New()})
}

func mcpOrchestrator(t testing.TB) *decide.NodeState {
	return active(t, decide.Introspection{NodeID: uuid.New(), NodeType: "orchestrator", NodeVersion: "2.0.0",
		Capabilities: json.RawMessage(`{"mcp":{"expose":true,"tool_name":"Register Nodes"}}`),
		Endpoints:    map[string]string{"api": "http://o:9000/"}, MCPExpose: true, MCPToolName: ptr("Register Nodes"),
		CorrelationID: uuid.New()})
}

func TestRoundTrip(t *testing.T) {
	for name, st := range map[string]*decide.NodeState{
		"effect":                        effectNode(t),
		"mcp orchestrator":              mcpOrchestrator(t),
		"no endpoints, no capabilities": active(t, decide.Introspection{NodeID: uuid.New(), NodeType: "compute", NodeVersion: "1.0.0", CorrelationID: uuid.New()}),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(st, at)
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := decodeFast(b)
			if !ok {
				t.Fatalf("the fast decoder refused a record Encode wrote: %s", b)
			}
			ref, err := decodeReference(b)
			if err != nil {
				t.Fatal(err)
			}
			// JSON keeps times to the nanosecond and in UTC; the states
			// compare field by field through their encoding.
			want, _ := json.Marshal(st)
			for dec, got := range map[string]*decide.NodeState{"fast": fast, "reference": ref} {
				g, _ := json.Marshal(got)
				if string(g) != string(want) || string(got.Capabilities) != string(st.Capabilities) {
					t.Errorf("%s decoder restored\n%s %s, want\n%s %s", dec, g, got.Capabilities, want, st.Capabilities)
				}
				if !reflect.DeepEqual(got.ConsulRegistration(), st.ConsulRegistration()) {
					t.Errorf("%s: consul derivation %+v, want %+v", dec, got.ConsulRegistration(), st.ConsulRegistration())
				}
			}
			// The record's consul field is the derivation the consul
			// effect registers.
			snap, err := pipeline.DecodeSnapshot(b)
			if err != nil {
				t.Fatal(err)
			}
			c := ConsulPayload(st.ConsulRegistration(), st.NodeID, st.CorrelationID)
			if !reflect.DeepEqual(snap.Consul, &c) {
				t.Errorf("record consul %+v, want %+v", snap.Consul, c)
			}
			if strings.Contains(string(snap.ReducerState), "capabilities") {
				t.Errorf("reducer_state repeats the capabilities: %s", snap.ReducerState)
			}
		})
	}
}

// legacy is a snapshot as the reducer wrote it before reducer_state left out
// the capabilities and the Consul derivation and kept the MCP tool name.
const legacy = `{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","domain":"registration","current_state":"active",` +
	`"node_type":"orchestrator","node_name":null,"capabilities":{"mcp":{"expose":true}},"last_state_change_at":"2026-03-02T14:00:01Z",` +
	`"snapshot_version":3,"snapshot_created_at":"2026-03-02T14:00:00Z","schema_version":"1.0.0","source_projection_sequence":3,` +
	`"consul":{"intent_type":"consul.register","correlation_id":"38183d6b-0027-5f5a-b6e8-ef24dbf81e1b","node_id":"7c795465-f358-51dd-84c7-c32c709a3208",` +
	`"service_id":"onex-orchestrator-7c795465-f358-51dd-84c7-c32c709a3208","service_name":"onex-orchestrator",` +
	`"tags":["onex","node-type:orchestrator","mcp-enabled","mcp-tool:registers-nodes"],"address":"10.0.0.5","port":9,"health_check":null,"event_bus_config":null},` +
	`"reducer_state":{"node_id":"7c795465-f358-51dd-84c7-c32c709a3208","state":"active","node_type":"orchestrator","node_name":null,` +
	`"node_version":"1.0.0","capabilities":{"mcp":{"expose":true}},"endpoints":{"api":"http://10.0.0.5:9/x"},` +
	`"description":"Registers nodes","consul":{"service_id":"onex-orchestrator-7c795465-f358-51dd-84c7-c32c709a3208",` +
	`"service_name":"onex-orchestrator","tags":["onex","node-type:orchestrator","mcp-enabled","mcp-tool:registers-nodes"],` +
	`"address":"10.0.0.5","port":9,"health_url":null},"registration_attempt_id":"cf771aaf-9f48-58e0-99dc-e0674384e73c",` +
	`"correlation_id":"38183d6b-0027-5f5a-b6e8-ef24dbf81e1b","registered_at":"2026-03-02T14:00:00Z","ack_deadline":"2026-03-02T14:00:30Z",` +
	`"liveness_deadline":"2026-03-02T14:01:01Z","last_heartbeat_at":null,"ack_timeout_emitted_at":null,` +
	`"liveness_timeout_emitted_at":null,"last_state_change_at":"2026-03-02T14:00:01Z","sequence":3}}`

func TestDecodesLegacyRecords(t *testing.T) {
	st, err := Decode([]byte(legacy))
	if err != nil {
		t.Fatal(err)
	}
	if string(st.Capabilities) != `{"mcp":{"expose":true}}` {
		t.Errorf("capabilities %s", st.Capabilities)
	}
	want := &decide.ConsulRegistration{ServiceID: "onex-orchestrator-7c795465-f358-51dd-84c7-c32c709a3208", ServiceName: "onex-orchestrator",
		Tags: []string{"onex", "node-type:orchestrator", "mcp-enabled", "mcp-tool:registers-nodes"}, Address: ptr("10.0.0.5"), Port: ptr(9)}
	if got := st.ConsulRegistration(); !reflect.DeepEqual(got, want) {
		t.Errorf("consul derivation %+v, want %+v", got, want)
	}
	if st.Sequence != 3 || st.State != decide.Active || st.LivenessDeadline == nil {
		t.Errorf("restored %+v", st)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, err := Encode(effectNode(t), at)
	if err != nil {
		t.Fatal(err)
	}
	id := `"entity_id":"` + uuid.NewString() + `"`
	for name, v := range map[string]string{
		"not JSON":            `{"entity_id":`,
		"an array":            `[1,2]`,
		"no entity_id":        `{"current_state":"active","reducer_state":{}}`,
		"no current_state":    `{` + id + `,"reducer_state":{}}`,
		"no reducer_state":    `{` + id + `,"current_state":"active"}`,
		"null reducer_state":  `{` + id + `,"current_state":"active","reducer_state":null}`,
		"another node's":      `{` + id + `,"current_state":"active","reducer_state":{"node_id":"` + uuid.NewString() + `","state":"active"}}`,
		"unknown state":       `{` + id + `,"current_state":"active","reducer_state":{"node_id":` + id[len(`"entity_id":`):] + `,"state":"dancing"}}`,
		"sequence not an int": strings.Replace(string(good), `"sequence":`, `"sequence":"`, 1),
	} {
		if st, err := Decode([]byte(v)); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, st)
		}
	}
	if st, err := Decode(nil); st != nil || err != nil {
		t.Errorf("tombstone: %v %v", st, err)
	}
}

// The fast decoder must agree with encoding/json on every input it takes:
// the same state, field for field. Inputs it does not take go to the
// reference decoder, so they cannot disagree.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, st := range []*decide.NodeState{effectNode(f), mcpOrchestrator(f)} {
		b, err := Encode(st, at)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(legacy))
	f.Add([]byte(strings.Replace(legacy, `"mcp_tool"`, `"Mcp_Tool"`, 1)))
	f.Add([]byte(`{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","current_state":"x","reducer_state":{"node_id":"7c795465-f358-51dd-84c7-c32c709a3208","state":"active","endpoints":{"a":"1","a":"2"},"sequence":1e2}}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		fast, ok := decodeFast(value)
		if !ok {
			return
		}
		ref, err := decodeReference(value)
		if err != nil {
			t.Fatalf("fast decoder took what the reference refuses (%v): %s", err, value)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("decoders disagree on %s:\nfast      %+v\nreference %+v", value, fast, ref)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	v, err := Encode(effectNode(b), at)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, ok := decodeFast(v); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := decodeReference(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	st := effectNode(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Encode(st, at); err != nil {
			b.Fatal(err)
		}
	}
}
