package consulservice

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/google/uuid"
)

func TestFromSnapshot(t *testing.T) {
	id, corr := uuid.New(), uuid.New()
	value := fmt.Sprintf(`{"entity_id":%q,"domain":"registration","current_state":"active","snapshot_version":3}`, id)
	state := fmt.Sprintf(`{"node_id":%q,"state":"active","node_type":"effect","endpoints":{"health":"http://h:8/health"},"correlation_id":%q,"sequence":3}`, id, corr)
	legacy := value[:len(value)-1] + `,"reducer_state":` + state + `}`
	mcpState := fmt.Sprintf(`{"node_id":%q,"state":"awaiting_ack","node_type":"orchestrator","correlation_id":%q}`, id, corr)
	mcpLegacy := value[:len(value)-1] + `,"consul":{"tags":["onex","mcp-enabled","mcp-tool:t"]},"reducer_state":` + mcpState + `}`
	tests := []struct {
		name         string
		value, state string
		wantNone     bool
		wantErr      bool
		wantTags     int
		wantHealth   string
	}{
		{name: "state in the header", value: value, state: state, wantTags: 2, wantHealth: "passing"},
		{name: "state in the value", value: legacy, wantTags: 2, wantHealth: "passing"},
		{name: "MCP tool from the old derivation's tags", value: mcpLegacy, wantTags: 4, wantHealth: "warning"},
		{name: "tombstone", value: "", state: state, wantNone: true},
		{name: "null value", value: "null", wantNone: true},
		{name: "no reducer state", value: value, wantNone: true},
		{name: "not JSON", value: `{"entity_id":`, wantErr: true},
		{name: "no entity_id", value: `{"current_state":"active"}`, state: state, wantErr: true},
		{name: "no current_state", value: fmt.Sprintf(`{"entity_id":%q}`, id), state: state, wantErr: true},
		{name: "header not JSON", value: value, state: `{"node_id":`, wantErr: true},
		{name: "header null", value: value, state: `null`, wantErr: true},
		{name: "another node's state", value: value, state: fmt.Sprintf(`{"node_id":%q,"state":"active"}`, uuid.New()), wantErr: true},
		{name: "not a registration state", value: value, state: fmt.Sprintf(`{"node_id":%q,"state":"dancing"}`, id), wantErr: true},
		{name: "endpoints not strings", value: value, state: fmt.Sprintf(`{"node_id":%q,"state":"active","endpoints":{"api":1}}`, id), wantErr: true},
		{name: "state in the header and in the value", value: legacy, state: state, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st []byte
			if tt.state != "" {
				st = []byte(tt.state)
			}
			p, err := FromSnapshot([]byte(tt.value), st)
			switch {
			case tt.wantErr:
				if err == nil {
					t.Fatalf("FromSnapshot = %+v, want an error", p)
				}
			case err != nil:
				t.Fatal(err)
			case tt.wantNone:
				if p != nil {
					t.Fatalf("FromSnapshot = %+v, want none", p)
				}
			case p == nil:
				t.Fatal("no derivation")
			case *p.NodeID != id.String() || p.CorrelationID != corr || len(p.Tags) != tt.wantTags || p.Health != tt.wantHealth:
				t.Errorf("FromSnapshot = %+v", p)
			}
		})
	}
}

// The record the reducer writes takes the fast path, to the state the
// reference reads.
func TestFastTakesTheReducersRecord(t *testing.T) {
	v, s := []byte(fuzzValue), []byte(fuzzState)
	fast, ok := fromSnapshotFast(v, s)
	if !ok {
		t.Fatal("the fast path refused the reducer's record")
	}
	ref, err := fromSnapshotReference(v, s)
	if err != nil || !reflect.DeepEqual(fast, ref) {
		t.Fatalf("fast %+v, reference %+v (%v)", fast, ref, err)
	}
	if fast.MCPTool == nil || *fast.MCPTool != "t" || len(fast.Endpoints) != 2 || fast.NodeType != "orchestrator" {
		t.Errorf("fast %+v", fast)
	}
}

// A record as the reducer writes it (services/reducer/snapshot).
const (
	fuzzID    = "7c795465-f358-51dd-84c7-c32c709a3208"
	fuzzValue = `{"entity_id":"` + fuzzID + `","domain":"registration","current_state":"active","node_type":"effect","node_name":null,` +
		`"capabilities":{"read":true},"last_state_change_at":"2026-03-02T14:00:01Z","snapshot_version":3,` +
		`"snapshot_created_at":"2026-03-02T14:00:00Z","schema_version":"1.0.0","source_projection_sequence":3}`
	fuzzState = `{"node_id":"` + fuzzID + `","state":"active","node_type":"orchestrator","node_name":"n","node_version":"1.0.0",` +
		`"endpoints":{"api":"http://10.0.0.5:9/x","health":"http://10.0.0.5:9/h"},"mcp_tool":"t",` +
		`"registration_attempt_id":"cf771aaf-9f48-58e0-99dc-e0674384e73c","correlation_id":"38183d6b-0027-5f5a-b6e8-ef24dbf81e1b",` +
		`"registered_at":"2026-03-02T14:00:00Z","ack_deadline":null,"liveness_deadline":"2026-03-02T14:01:01Z","sequence":3}`
)

// The fast path must agree with encoding/json on every record it takes:
// the same state, field for field. Records it does not take go to the
// reference, so they cannot disagree.
func FuzzFastMatchesReference(f *testing.F) {
	id, value, state := fuzzID, fuzzValue, fuzzState
	f.Add([]byte(value), []byte(state))
	f.Add([]byte(value), []byte(`{"node_id":"`+id+`","state":"active","Node_Type":"x","endpoints":{"a":"1","a":"2"}}`))
	f.Add([]byte(value), []byte(`{"node_id":"`+id+`","state":"active","mcp_tool":"a","mcp_tool":null}`))
	f.Add([]byte(value), []byte(`{"node_id":"`+id+`","state":"active","endpoints":{"api":"x"},"endpoints":{"health":"y"}}`))
	f.Add([]byte(value), []byte(`{"node_id":"`+id+`","state":"active","node_type":"a\u0062"}`))
	f.Add([]byte(value), []byte(` {"node_id":"`+id+`","state":"active"} `))
	f.Add([]byte(value[:len(value)-1]+`,"consul":{"tags":["mcp-enabled","mcp-tool:x"]}}`), []byte(state))
	f.Fuzz(func(t *testing.T, value, state []byte) {
		if len(value) == 0 || string(value) == "null" {
			return // a tombstone: FromSnapshot returns before either
		}
		fast, ok := fromSnapshotFast(value, state)
		if !ok {
			return
		}
		ref, err := fromSnapshotReference(value, state)
		if err != nil {
			t.Fatalf("the fast path took what the reference refuses (%v): %s %s", err, value, state)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("fast and reference disagree on %s %s:\nfast      %+v\nreference %+v", value, state, fast, ref)
		}
	})
}
