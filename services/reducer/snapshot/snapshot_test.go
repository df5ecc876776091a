package snapshot

import (
	"encoding/json"
	"fmt"
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

// awaiting returns a node's state after its introspection and one resend of
// its accepted event: it awaits its ack, with a resend scheduled.
func awaiting(t testing.TB) *decide.NodeState {
	t.Helper()
	in := decide.Introspection{NodeID: uuid.New(), NodeType: "effect", NodeVersion: "1.2.0", Capabilities: json.RawMessage(`{"read":true}`),
		Endpoints: map[string]string{"health": "http://h:8085/health"}, CorrelationID: uuid.New()}
	in.HandlerCorrelationID = in.CorrelationID
	p := decide.DefaultParams()
	d := decide.DecideIntrospection(nil, in, at, p)
	r := decide.DecideTimeout(d.State, decide.Tick{TickID: uuid.New(), Now: at.Add(2500 * time.Millisecond)}, p, false)
	if r.State.State != decide.AwaitingAck || len(r.Events) != 1 || r.State.NextResendAt == nil {
		t.Fatalf("no resend: %s", r.Reason)
	}
	return r.State
}

func effectNode(t testing.TB) *decide.NodeState {
	return active(t, decide.Introspection{NodeID: uuid.New(), NodeType: "effect", NodeVersion: "1.2.0", NodeName: ptr("embedding"),
		Capabilities:  json.RawMessage(`{"read":true,"supported_types":["x"]}`),
		Endpoints:     map[string]string{"health": "http://h:8085/health", "api": "http://h:8085/api"},
		CorrelationID: uuid.New()})
}

// withExtras is an active node whose introspection carried members the
// fleet does not know (decide.Introspection.Extras).
func withExtras(t testing.TB) *decide.NodeState {
	return active(t, decide.Introspection{NodeID: uuid.New(), NodeType: "effect", NodeVersion: "1.3.0",
		Capabilities:  json.RawMessage(`{"read":true}`),
		Endpoints:     map[string]string{"health": "http://h:8085/health"},
		Extras:        json.RawMessage(`{"flow_window":{"max_in_flight":8},"event_bus.publish_topics[0].qos":[1,2]}`),
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
		"effect":                             effectNode(t),
		"mcp orchestrator":                   mcpOrchestrator(t),
		"no endpoints, no capabilities":      active(t, decide.Introspection{NodeID: uuid.New(), NodeType: "compute", NodeVersion: "1.0.0", CorrelationID: uuid.New()}),
		"awaiting its ack, resend scheduled": awaiting(t),
		"introspection extras":               withExtras(t),
		"last introspection timestamp":       stamped(t),
	} {
		t.Run(name, func(t *testing.T) {
			rec, err := Encode(st, at)
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := decodeFast(rec.Value, rec.State)
			if !ok {
				t.Fatalf("the fast decoder refused a record Encode wrote: %s %s", rec.Value, rec.State)
			}
			ref, err := decodeReference(rec.Value, rec.State)
			if err != nil {
				t.Fatal(err)
			}
			// The same record in the layout written before the state
			// moved into the header still restores, to the same state.
			oldFast, ok := decodeFast(legacyLayout(rec), nil)
			if !ok {
				t.Fatalf("the fast decoder refused a record in the legacy layout: %s", legacyLayout(rec))
			}
			oldRef, err := decodeReference(legacyLayout(rec), nil)
			if err != nil {
				t.Fatal(err)
			}
			// JSON keeps times to the nanosecond and in UTC; the states
			// compare field by field through their encoding.
			want, _ := json.Marshal(st)
			decoded := map[string]*decide.NodeState{"fast": fast, "reference": ref, "fast, legacy layout": oldFast, "reference, legacy layout": oldRef}
			for dec, got := range decoded {
				g, _ := json.Marshal(got)
				if string(g) != string(want) || string(got.Capabilities) != string(st.Capabilities) {
					t.Errorf("%s decoder restored\n%s %s, want\n%s %s", dec, g, got.Capabilities, want, st.Capabilities)
				}
				if !reflect.DeepEqual(got.ConsulRegistration(), st.ConsulRegistration()) {
					t.Errorf("%s: consul derivation %+v, want %+v", dec, got.ConsulRegistration(), st.ConsulRegistration())
				}
			}
			// The value is a snapshot to every reader, and the consul
			// effect derives from the record the service it registers.
			if snap, err := pipeline.DecodeSnapshot(rec.Value); err != nil || snap.EntityID != st.NodeID || snap.CurrentState != string(st.State) {
				t.Fatalf("value decodes to %+v (%v)", snap, err)
			}
			c := ConsulPayload(st.ConsulRegistration(), st.NodeID, st.CorrelationID)
			if got, err := ConsulOf(rec.Value, rec.State); err != nil || !reflect.DeepEqual(got, &c) {
				t.Errorf("ConsulOf %+v (%v), want %+v", got, err, c)
			}
			if strings.Contains(string(rec.State), "capabilities") {
				t.Errorf("the reducer state repeats the capabilities: %s", rec.State)
			}
			// The resend schedule is there while the node awaits its ack,
			// and costs an ACTIVE node's record nothing.
			if has := strings.Contains(string(rec.State), `"next_resend_at"`); has != (st.NextResendAt != nil) {
				t.Errorf("next_resend_at in the reducer state: %v, want %v: %s", has, st.NextResendAt != nil, rec.State)
			}
			// The extras are there when the introspection had some, and
			// cost the others nothing.
			if has := strings.Contains(string(rec.State), `"introspection_extras"`); has != (st.Extras != nil) {
				t.Errorf("introspection_extras in the reducer state: %v, want %v: %s", has, st.Extras != nil, rec.State)
			}
			for dec, got := range decoded {
				if string(got.Extras) != string(st.Extras) {
					t.Errorf("%s decoder: extras %s, want %s", dec, got.Extras, st.Extras)
				}
			}
			// The last introspection's timestamp orders a node's
			// introspections after a restore; records without it
			// decode to zero (no ordering until the next one).
			if has := strings.Contains(string(rec.State), `"last_introspection_at"`); has != !st.LastIntrospectionAt.IsZero() {
				t.Errorf("last_introspection_at in the reducer state: %v: %s", has, rec.State)
			}
			for dec, got := range decoded {
				if !got.LastIntrospectionAt.Equal(st.LastIntrospectionAt) {
					t.Errorf("%s decoder: last introspection %v, want %v", dec, got.LastIntrospectionAt, st.LastIntrospectionAt)
				}
			}
			for dec, got := range decoded {
				if (got.NextResendAt == nil) != (st.NextResendAt == nil) || st.NextResendAt != nil && !got.NextResendAt.Equal(*st.NextResendAt) {
					t.Errorf("%s decoder: next resend %v, want %v", dec, got.NextResendAt, st.NextResendAt)
				}
			}
		})
	}
}

// legacyLayout returns rec as the reducer wrote it before the reducer state
// moved into a header: in the value, after the model's fields, the Consul
// derivation ("consul") and the state ("reducer_state").
func legacyLayout(rec Record) []byte {
	st, err := Decode(rec.Value, rec.State)
	if err != nil {
		panic(err)
	}
	c, err := json.Marshal(ConsulPayload(st.ConsulRegistration(), st.NodeID, st.CorrelationID))
	if err != nil {
		panic(err)
	}
	v := append([]byte{}, rec.Value[:len(rec.Value)-1]...)
	v = append(append(append(v, `,"consul":`...), c...), `,"reducer_state":`...)
	return append(append(v, rec.State...), '}')
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
	st, err := Decode([]byte(legacy), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(st.Capabilities) != `{"mcp":{"expose":true}}` {
		t.Errorf("capabilities %s", st.Capabilities)
	}
	want := &decide.ConsulRegistration{ServiceID: "onex-orchestrator-7c795465-f358-51dd-84c7-c32c709a3208", ServiceName: "onex-orchestrator",
		Tags: []string{"onex", "node-type:orchestrator", "mcp-enabled", "mcp-tool:registers-nodes"}, Address: ptr("10.0.0.5"), Port: ptr(9), Health: "passing"}
	if got := st.ConsulRegistration(); !reflect.DeepEqual(got, want) {
		t.Errorf("consul derivation %+v, want %+v", got, want)
	}
	if st.Sequence != 3 || st.State != decide.Active || st.LivenessDeadline == nil {
		t.Errorf("restored %+v", st)
	}
}

// A node awaiting its ack in a record written before the reducer resent
// its accepted event has no next_resend_at: it decodes, without a schedule,
// and its first resend is due at once (at the original emission).
func TestDecodesRecordsWithoutResendSchedule(t *testing.T) {
	st := awaiting(t)
	st.NextResendAt = nil
	rec, err := Encode(st, at)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec.State), "next_resend_at") {
		t.Fatalf("a state without a schedule wrote one: %s", rec.State)
	}
	for dec, decode := range map[string]func(v, s []byte) (*decide.NodeState, error){
		"fast": func(v, s []byte) (*decide.NodeState, error) {
			if s, ok := decodeFast(v, s); ok {
				return s, nil
			}
			return nil, fmt.Errorf("refused")
		},
		"reference": decodeReference,
	} {
		got, err := decode(rec.Value, rec.State)
		if err != nil {
			t.Fatalf("%s: %v", dec, err)
		}
		if got.State != decide.AwaitingAck || got.NextResendAt != nil || !decide.NextResend(got).Equal(st.LastStateChangeAt) {
			t.Errorf("%s: state %s next resend %v (%v), want awaiting_ack, none, due at %v", dec, got.State, got.NextResendAt, decide.NextResend(got), st.LastStateChangeAt)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, err := Encode(effectNode(t), at)
	if err != nil {
		t.Fatal(err)
	}
	node := uuid.NewString()
	id := `"entity_id":"` + node + `"`
	model := `{` + id + `,"current_state":"active"}`
	for name, r := range map[string]struct{ value, state string }{
		"not JSON":                         {`{"entity_id":`, ""},
		"an array":                         {`[1,2]`, ""},
		"no entity_id":                     {`{"current_state":"active","reducer_state":{}}`, ""},
		"no current_state":                 {`{` + id + `,"reducer_state":{}}`, ""},
		"no reducer state":                 {model, ""},
		"null reducer_state":               {`{` + id + `,"current_state":"active","reducer_state":null}`, ""},
		"another node's":                   {`{` + id + `,"current_state":"active","reducer_state":{"node_id":"` + uuid.NewString() + `","state":"active"}}`, ""},
		"unknown state":                    {`{` + id + `,"current_state":"active","reducer_state":{"node_id":"` + node + `","state":"dancing"}}`, ""},
		"header: sequence not an int":      {string(good.Value), strings.Replace(string(good.State), `"sequence":`, `"sequence":"`, 1)},
		"header: not JSON":                 {string(good.Value), `{"node_id":`},
		"header: null":                     {string(good.Value), `null`},
		"header: another node's":           {model, `{"node_id":"` + uuid.NewString() + `","state":"active"}`},
		"header: unknown state":            {model, `{"node_id":"` + node + `","state":"dancing"}`},
		"header: no entity_id":             {`{"current_state":"active"}`, string(good.State)},
		"state in the header and in value": {`{` + id + `,"current_state":"active","reducer_state":{"node_id":"` + node + `","state":"active"}}`, `{"node_id":"` + node + `","state":"active"}`},
	} {
		var state []byte
		if r.state != "" {
			state = []byte(r.state)
		}
		if st, err := Decode([]byte(r.value), state); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, st)
		}
	}
	for _, state := range [][]byte{nil, good.State} {
		if st, err := Decode(nil, state); st != nil || err != nil {
			t.Errorf("tombstone: %v %v", st, err)
		}
	}
}

// The fast decoder must agree with encoding/json on every input it takes:
// the same state, field for field. Inputs it does not take go to the
// reference decoder, so they cannot disagree.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, st := range []*decide.NodeState{effectNode(f), mcpOrchestrator(f), awaiting(f), withExtras(f), stamped(f)} {
		rec, err := Encode(st, at)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec.Value, rec.State)
		f.Add(legacyLayout(rec), []byte{})
		f.Add(legacyLayout(rec), rec.State) // the state in both places
	}
	f.Add([]byte(legacy), []byte{})
	f.Add([]byte(strings.Replace(legacy, `"mcp_tool"`, `"Mcp_Tool"`, 1)), []byte{})
	f.Add([]byte(`{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","current_state":"x","reducer_state":{"node_id":"7c795465-f358-51dd-84c7-c32c709a3208","state":"active","endpoints":{"a":"1","a":"2"},"sequence":1e2}}`), []byte{})
	f.Add([]byte(`{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","current_state":"x"}`),
		[]byte(` {"node_id":"7c795465-f358-51dd-84c7-c32c709a3208","state":"active","Sequence":2} `))
	for _, x := range []string{`{ "a" : [1, 2] }`, `null`, `[1]`, `{}`, `{"a":1}, "introspection_extras": {"b":2}`} {
		f.Add([]byte(`{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","current_state":"x"}`),
			[]byte(`{"node_id":"7c795465-f358-51dd-84c7-c32c709a3208","state":"active","introspection_extras":`+x+`}`))
	}
	for _, x := range []string{`null`, `"2026-03-02T14:00:01.5+01:00"`, `"x"`, `1`} {
		f.Add([]byte(`{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","current_state":"x"}`),
			[]byte(`{"node_id":"7c795465-f358-51dd-84c7-c32c709a3208","state":"active","last_introspection_at":`+x+`}`))
	}
	f.Fuzz(func(t *testing.T, value, state []byte) {
		if len(value) == 0 {
			return // a tombstone: Decode returns before either decoder
		}
		fast, ok := decodeFast(value, state)
		if !ok {
			return
		}
		ref, err := decodeReference(value, state)
		if err != nil {
			t.Fatalf("fast decoder took what the reference refuses (%v): %s %s", err, value, state)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("decoders disagree on %s %s:\nfast      %+v\nreference %+v", value, state, fast, ref)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	rec, err := Encode(effectNode(b), at)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, ok := decodeFast(rec.Value, rec.State); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := decodeReference(rec.Value, rec.State); err != nil {
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

// stamped is an ACTIVE effect node whose latest introspection's payload
// timestamp is kept (decide.NodeState.LastIntrospectionAt).
func stamped(t testing.TB) *decide.NodeState {
	st := effectNode(t)
	st.LastIntrospectionAt = time.Date(2026, 3, 2, 13, 59, 58, 250000000, time.UTC)
	return st
}
