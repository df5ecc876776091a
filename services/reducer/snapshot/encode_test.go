package snapshot

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

func encodeStates(t testing.TB) map[string]*decide.NodeState {
	full := effectNode(t)
	full.LastHeartbeatAt, full.AckTimeoutEmittedAt, full.LivenessTimeoutEmittedAt = ptr(at.Add(time.Minute)), ptr(at), ptr(at.Add(time.Hour))
	full.NodeName = ptr("<b>\"odd\" & name\u2028\x01\x7f é 😀 \xff")
	full.Endpoints = decide.Endpoints{{Name: "api", URL: "http://h:1/a?x=1&y=<2>"}, {Name: "health", URL: "http://h:1/health"}}
	offset := effectNode(t)
	offset.RegisteredAt = time.Date(2026, 3, 2, 16, 0, 0, 123456789, time.FixedZone("x", 2*3600))
	offset.LastStateChangeAt = offset.RegisteredAt
	bare := active(t, decide.Introspection{NodeID: uuid.New(), NodeType: "compute", NodeVersion: "1.0.0", CorrelationID: uuid.New()})
	html := effectNode(t)
	html.Capabilities = json.RawMessage(`{"note":"a<b"}`) // encoding/json rewrites it: the Build path
	spaced := effectNode(t)
	spaced.Capabilities = json.RawMessage(`{"read": true}`)
	resending := awaiting(t)
	resending.NextResendAt = ptr(time.Date(2026, 3, 2, 16, 0, 0, 123456789, time.FixedZone("x", -3600)))
	extras := withExtras(t)
	oddExtras := effectNode(t)
	oddExtras.Extras = json.RawMessage(`{"note":"a<b & é\u2028","spaced": [1, 2]}`) // encoding/json rewrites it: the Build path
	stamped := effectNode(t)
	stamped.LastIntrospectionAt = time.Date(2026, 3, 2, 16, 0, 0, 123456789, time.FixedZone("x", -3600))
	return map[string]*decide.NodeState{"last introspection timestamp": stamped, "introspection extras": extras, "extras encoding/json rewrites": oddExtras, "effect": effectNode(t), "mcp orchestrator": mcpOrchestrator(t), "every field, odd strings": full,
		"awaiting its ack": awaiting(t), "resend at an offset": resending,
		"non-UTC offsets": offset, "no capabilities, no endpoints": bare, "capabilities with HTML characters": html, "capabilities with spaces": spaced}
}

// The direct encoder writes exactly the bytes json.Marshal(Build(...))
// writes.
func TestEncodeMatchesBuild(t *testing.T) {
	for name, st := range encodeStates(t) {
		got, err := Encode(st, at)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := encodeBuilt(st, at)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Value) != string(want.Value) || string(got.State) != string(want.State) {
			t.Errorf("%s:\n got %s\n     %s\nwant %s\n     %s", name, got.Value, got.State, want.Value, want.State)
		}
		if s, err := EncodeState(st); err != nil || string(s) != string(want.State) {
			t.Errorf("%s: EncodeState %s (%v), want %s", name, s, err, want.State)
		}
		checkModel(t, got)
		// The value is what the Go mirror of the Python model accepts.
		if _, err := registration.DecodeRegistrationSnapshot(got.Value); err != nil {
			t.Errorf("%s: not a ModelRegistrationSnapshot: %v\n%s", name, err, got.Value)
		}
	}
	if _, ok := appendSnapshot(nil, encodeStates(t)["effect"], at); !ok {
		t.Error("the direct encoder refused an ordinary state")
	}
}

// modelFields are ModelRegistrationSnapshot's fields in its order
// (omnibase-infra 0.38.76, model_json_schema; extra="forbid").
var modelFields = []string{"entity_id", "domain", "current_state", "node_type", "node_name", "capabilities",
	"last_state_change_at", "snapshot_version", "snapshot_created_at", "schema_version", "source_projection_sequence"}

// checkModel fails unless rec's value has exactly the model's fields, in
// its order, within the model's bounds, and its reducer state is valid
// UTF-8 JSON (a Python consumer decodes every header as UTF-8).
func checkModel(t testing.TB, rec Record) {
	t.Helper()
	var keys []string
	var v struct {
		NodeName *string `json:"node_name"`
		Version  int64   `json:"snapshot_version"`
		Source   *int64  `json:"source_projection_sequence"`
	}
	if err := json.Unmarshal(rec.Value, &v); err != nil {
		t.Fatalf("value: %v", err)
	}
	pyjson.EachMember(rec.Value, func(k, _ []byte) bool {
		keys = append(keys, strings.Trim(string(k), `"`))
		return true
	})
	switch {
	case !slices.Equal(keys, modelFields):
		t.Errorf("value keys %v, want the model's %v", keys, modelFields)
	case v.NodeName != nil && utf8.RuneCountInString(*v.NodeName) > maxNodeName:
		t.Errorf("node_name of %d characters, the model allows %d", utf8.RuneCountInString(*v.NodeName), maxNodeName)
	case v.Version < 1 || v.Source != nil && *v.Source < 0:
		t.Errorf("snapshot_version %d, source_projection_sequence %d: out of the model's bounds", v.Version, *v.Source)
	case !utf8.Valid(rec.State) || !json.Valid(rec.State):
		t.Errorf("reducer state is not UTF-8 JSON: %q", rec.State)
	}
}

// pinned is a fixed ACTIVE orchestrator exposed over MCP, with a long odd
// name, a heartbeat and both endpoints.
func pinned(t testing.TB) *decide.NodeState {
	t.Helper()
	t0 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	p := decide.DefaultParams()
	id := uuid.MustParse("5b0f3c2e-9a41-4c7d-8e2f-1d6a7b3c9e05")
	name := "Ingest & <route>"
	in := decide.Introspection{NodeID: id, NodeType: "orchestrator", NodeVersion: "2.1.0", NodeName: &name,
		Capabilities: json.RawMessage(`{"read":true,"supported_types":["x"],"mcp":{"expose":true,"tool_name":"Route Things"}}`),
		Endpoints:    map[string]string{"health": "http://10.0.0.7:8085/health", "api": "http://10.0.0.7:8085/api"},
		MCPExpose:    true, MCPToolName: ptr("Route Things"),
		CorrelationID: uuid.MustParse("a3c1e1f4-2b7d-4f0e-9c55-0e8d2f6b7a11")}
	in.HandlerCorrelationID = in.CorrelationID
	d := decide.DecideIntrospection(nil, in, t0, p)
	a := decide.DecideAck(d.State, decide.Ack{NodeID: id, CommandID: uuid.MustParse("c0ffee00-0000-4000-8000-000000000001")}, t0.Add(time.Second), p)
	if a.State == nil || a.State.State != decide.Active {
		t.Fatalf("not active: %s", a.Reason)
	}
	hb := t0.Add(20 * time.Second)
	a.State.LastHeartbeatAt = &hb
	// The sequence the recorded records of testdata have: since, the ack
	// also re-registers the node in Consul (health passing), one more.
	a.State.Sequence = 3
	return a.State
}

// The exact bytes of a snapshot record for a fixed state. The value was
// checked once with the pinned Python package:
//
//	ModelRegistrationSnapshot.model_validate_json(value)  # omnibase-infra 0.38.76: valid
//
// A change here changes what Python consumers of the topic read (value) or
// what every deployed reducer and consul effect must decode (state).
func TestEncodePinnedBytes(t *testing.T) {
	const wantValue = `{"entity_id":"5b0f3c2e-9a41-4c7d-8e2f-1d6a7b3c9e05","domain":"registration","current_state":"active",` +
		`"node_type":"orchestrator","node_name":"Ingest \u0026 \u003croute\u003e",` +
		`"capabilities":{"read":true,"supported_types":["x"],"mcp":{"expose":true,"tool_name":"Route Things"}},` +
		`"last_state_change_at":"2026-03-02T14:00:01Z","snapshot_version":3,"snapshot_created_at":"2026-03-02T14:00:21Z",` +
		`"schema_version":"1.0.0","source_projection_sequence":3}`
	const wantState = `{"node_id":"5b0f3c2e-9a41-4c7d-8e2f-1d6a7b3c9e05","state":"active","node_type":"orchestrator",` +
		`"node_name":"Ingest \u0026 \u003croute\u003e","node_version":"2.1.0",` +
		`"endpoints":{"api":"http://10.0.0.7:8085/api","health":"http://10.0.0.7:8085/health"},"mcp_tool":"route-things",` +
		`"registration_attempt_id":"f0997f47-a01e-5cfd-b47a-701f19e18e1c","correlation_id":"a3c1e1f4-2b7d-4f0e-9c55-0e8d2f6b7a11",` +
		`"registered_at":"2026-03-02T14:00:00Z","ack_deadline":"2026-03-02T14:00:30Z","liveness_deadline":"2026-03-02T14:01:01Z",` +
		`"last_heartbeat_at":"2026-03-02T14:00:20Z","ack_timeout_emitted_at":null,"liveness_timeout_emitted_at":null,` +
		`"last_state_change_at":"2026-03-02T14:00:01Z","sequence":3}`
	rec, err := Encode(pinned(t), time.Date(2026, 3, 2, 14, 0, 21, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Value) != wantValue {
		t.Errorf("value\n got %s\nwant %s", rec.Value, wantValue)
	}
	if string(rec.State) != wantState {
		t.Errorf("reducer state\n got %s\nwant %s", rec.State, wantState)
	}
	h := rec.Headers()
	if len(h) != 1 || string(h[0].Key) != "x-onex-reducer-state" || string(h[0].Value) != wantState {
		t.Errorf("headers %q", h)
	}
	checkModel(t, rec)
}

// A record the reducer wrote before the state moved into the header
// (testdata/record-state-in-value.json, recorded from the previous encoder
// for the pinned state) restores to the state the current record restores
// to, and derives the same Consul service.
func TestDecodesRecordedStateInValue(t *testing.T) {
	old, err := os.ReadFile("testdata/record-state-in-value.json")
	if err != nil {
		t.Fatal(err)
	}
	old = bytes.TrimSpace(old)
	rec, err := Encode(pinned(t), time.Date(2026, 3, 2, 14, 0, 21, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Decode(rec.Value, rec.State)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]func() (*decide.NodeState, error){
		// (Its node name has escapes, which the fast decoder leaves to
		// the reference.)
		"Decode":    func() (*decide.NodeState, error) { return Decode(old, nil) },
		"reference": func() (*decide.NodeState, error) { return decodeReference(old, nil) },
	} {
		st, err := got()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(st, want) {
			t.Errorf("%s restored\n%+v, want\n%+v", name, st, want)
		}
	}
	// Its consul key is what ConsulOf derives, from either record.
	var v struct {
		Consul *pipeline.ConsulRegisterPayload `json:"consul"`
	}
	if err := json.Unmarshal(old, &v); err != nil || v.Consul == nil {
		t.Fatalf("recorded consul: %v", err)
	}
	v.Consul.Health = "passing" // derived from the state since; the recorded key predates it
	for name, r := range map[string]Record{"recorded": {Value: old}, "current": rec} {
		if c, err := ConsulOf(r.Value, r.State); err != nil || !reflect.DeepEqual(c, v.Consul) {
			t.Errorf("%s: ConsulOf %+v (%v), want %+v", name, c, err, v.Consul)
		}
	}
}

// The model allows node_name at most 256 characters; an introspection may
// carry more. The value cuts it there, the reducer state keeps all of it.
func TestLongNodeName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want int // characters in the value
	}{
		{strings.Repeat("a", 256), 256},
		{strings.Repeat("a", 300), 256},
		{strings.Repeat("é", 200), 200},
		{strings.Repeat("é", 300), 256},
		{strings.Repeat("\xff", 300), 256},
		{strings.Repeat("😀", 257), 256},
	} {
		st := effectNode(t)
		st.NodeName = &tt.name
		rec, err := Encode(st, at)
		if err != nil {
			t.Fatal(err)
		}
		checkModel(t, rec)
		var v struct {
			NodeName string `json:"node_name"`
		}
		if err := json.Unmarshal(rec.Value, &v); err != nil || utf8.RuneCountInString(v.NodeName) != tt.want {
			t.Errorf("%d bytes: node_name of %d characters, want %d (%v)", len(tt.name), utf8.RuneCountInString(v.NodeName), tt.want, err)
		}
		got, err := Decode(rec.Value, rec.State)
		if err != nil || got.NodeName == nil || *got.NodeName != string([]rune(tt.name)) {
			t.Errorf("%d bytes: the reducer state lost the name (%v)", len(tt.name), err)
		}
	}
}

func FuzzEncodeMatchesBuild(f *testing.F) {
	f.Add("sim_effect_0", "http://127.0.0.1:9/x", "1.0.0", []byte(`{"read":true}`), int64(3), int64(0))
	f.Add("a<b>&\u2028\x00", "h\xff\"\\", "2.0.0-rc.1", []byte(`{"a":"é"}`), int64(-1), int64(1<<62))
	f.Fuzz(func(t *testing.T, name, url, version string, caps []byte, seq, nanos int64) {
		st := effectNode(t)
		st.NodeName, st.NodeVersion, st.Sequence = &name, version, seq
		st.Endpoints = decide.Endpoints{{Name: "api", URL: url}}
		if json.Valid(caps) {
			st.Capabilities = caps
			if seq%3 != 1 && utf8.Valid(caps) { // wire keeps extras valid UTF-8
				st.Extras = caps
			}
		}
		ts := time.Unix(0, nanos).UTC()
		st.LastHeartbeatAt = &ts
		if seq%2 == 0 {
			st.NextResendAt = &ts
		}
		if seq%3 == 0 {
			st.LastIntrospectionAt = ts
		}
		got, err := Encode(st, at)
		want, werr := encodeBuilt(st, at)
		if (err == nil) != (werr == nil) || string(got.Value) != string(want.Value) || string(got.State) != string(want.State) {
			t.Fatalf("direct %s %s (%v)\nBuild  %s %s (%v)", got.Value, got.State, err, want.Value, want.State, werr)
		}
		if err == nil && json.Valid(got.Value) {
			checkModel(t, got)
		}
	})
}
