package decide

import (
	"reflect"
	"testing"
	"time"
)

func TestNewDeclared(t *testing.T) {
	tests := []struct {
		name string
		in   DeclaredInput
		want *Declared
	}{
		{"nothing", DeclaredInput{}, nil},
		{"empty contract fields", DeclaredInput{HasContract: true}, nil},
		{"contract", DeclaredInput{HasContract: true, ContractType: "effect", ContractVersion: "1.2.0",
			IntentTypes: []string{"b", "a", "b"}, Protocols: []string{"P", ""}, CapabilityTags: []string{"z", "a", "z"}},
			&Declared{ContractType: ptr("effect"), ContractVersion: ptr("1.2.0"), IntentTypes: []string{"b", "a"},
				Protocols: []string{"P"}, CapabilityTags: []string{"a", "z"}}},
		{"topics only, repeats dropped, order kept", DeclaredInput{SubscribeTopics: []string{"t2", "t1", "t2"}, PublishTopics: []string{"p"}},
			&Declared{SubscribeTopics: []string{"t2", "t1"}, PublishTopics: []string{"p"}}},
		{"contract ignored without HasContract", DeclaredInput{ContractType: "effect", PublishTopics: []string{"p"}},
			&Declared{PublishTopics: []string{"p"}}},
		{"contract type the projection holds, any case", DeclaredInput{HasContract: true, ContractType: "Compute"},
			&Declared{ContractType: ptr("compute")}},
		{"contract type the projection does not hold", DeclaredInput{HasContract: true, ContractType: "service"},
			&Declared{ContractType: ptr("unknown")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NewDeclared(tc.in)
			if !got.Equal(tc.want) {
				t.Fatalf("NewDeclared = %+v, want %+v", got, tc.want)
			}
			if got == nil {
				return
			}
			back, ok := DeclaredFromJSON(got.JSON())
			if !ok || !back.Equal(got) || string(back.JSON()) != string(got.JSON()) {
				t.Fatalf("JSON round trip: %s -> %+v", got.JSON(), back)
			}
		})
	}
	if _, ok := DeclaredFromJSON([]byte(`[1]`)); ok {
		t.Fatal("DeclaredFromJSON accepted an array")
	}
}

func TestCapabilityTags(t *testing.T) {
	s := &NodeState{NodeType: "orchestrator", Declared: NewDeclared(DeclaredInput{CapabilityTags: []string{"zeta", "mcp-enabled", "alpha"}})}
	if got, want := s.CapabilityTags(), []string{"alpha", "mcp-enabled", "node-type:orchestrator", "zeta"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tags %v, want %v", got, want)
	}
	s.MCPTool = ptr("registry-tool")
	if got, want := s.CapabilityTags(), []string{"alpha", "mcp-enabled", "mcp-tool:registry-tool", "node-type:orchestrator", "zeta"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tags %v, want %v", got, want)
	}
	if got := (&NodeState{NodeType: "effect"}).CapabilityTags(); !reflect.DeepEqual(got, []string{"node-type:effect"}) {
		t.Fatalf("tags of a node declaring nothing: %v", got)
	}
	// The shared declaration is never written through.
	if !reflect.DeepEqual(s.Declared.CapabilityTags, []string{"alpha", "mcp-enabled", "zeta"}) {
		t.Fatalf("CapabilityTags changed the declaration: %v", s.Declared.CapabilityTags)
	}
}

// MCP discovery from the projection (spec 4.8): an orchestrator exposing
// MCP is registered with mcp-enabled and its tool name in capability_tags.
func TestRegistrationProjectsDeclaredAndMCP(t *testing.T) {
	in := intro()
	in.NodeType, in.MCPExpose, in.MCPToolName = "orchestrator", true, ptr("Registry Tool")
	in.Declared = NewDeclared(DeclaredInput{HasContract: true, ContractType: "orchestrator", ContractVersion: "2.0.0",
		Protocols: []string{"ProtocolX"}, CapabilityTags: []string{"node.orchestrator"}, PublishTopics: []string{"onex.evt.x.y.v1"}})
	d := DecideIntrospection(nil, in, t0, params)
	up := d.Intents[0].Upsert
	if up == nil || up.Declared != in.Declared {
		t.Fatalf("upsert without the declaration: %+v", d.Intents[0])
	}
	want := []string{"mcp-enabled", "mcp-tool:registry-tool", "node-type:orchestrator", "node.orchestrator"}
	if !reflect.DeepEqual(up.CapabilityTags, want) {
		t.Fatalf("capability_tags %v, want %v", up.CapabilityTags, want)
	}
}

func TestTopicsChangeOf(t *testing.T) {
	topicsA := NewDeclared(DeclaredInput{SubscribeTopics: []string{"a"}})
	topicsB := NewDeclared(DeclaredInput{SubscribeTopics: []string{"a"}, PublishTopics: []string{"b"}})
	contractOnly := NewDeclared(DeclaredInput{HasContract: true, ContractType: "effect"})
	st := func(s State, d *Declared) *NodeState {
		return &NodeState{NodeID: nodeID, NodeType: "effect", State: s, Declared: d, Sequence: 7}
	}
	tests := []struct {
		name      string
		old, next *NodeState
		want      string // "", "entry", "tombstone"
	}{
		{"new node awaiting ack", nil, st(AwaitingAck, topicsA), ""},
		{"becomes active with topics", st(AwaitingAck, topicsA), st(Active, topicsA), "entry"},
		{"becomes active without topics", st(AwaitingAck, contractOnly), st(Active, contractOnly), ""},
		{"heartbeat, same topics", st(Active, topicsA), st(Active, topicsA), ""},
		{"update adds a topic", st(Active, topicsA), st(Active, topicsB), "entry"},
		{"update drops every topic", st(Active, topicsA), st(Active, contractOnly), "tombstone"},
		{"expires", st(Active, topicsA), st(LivenessExpired, topicsA), "tombstone"},
		{"expired node stays expired", st(LivenessExpired, topicsA), st(LivenessExpired, topicsA), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := TopicsChangeOf(tc.old, tc.next)
			got := ""
			switch {
			case c != nil && c.Topics != nil:
				got = "entry"
				if c.Topics.Sequence != 7 || !reflect.DeepEqual(c.Topics.SubscribeTopics, tc.next.Declared.SubscribeTopics) {
					t.Errorf("entry %+v", c.Topics)
				}
			case c != nil:
				got = "tombstone"
			}
			if got != tc.want {
				t.Fatalf("change %q, want %q", got, tc.want)
			}
		})
	}
}

// A change of the declaration alone is an update in place.
func TestDeclaredChangeUpdatesActive(t *testing.T) {
	s := activeState(t0.Add(-time.Minute))
	in := intro()
	in.Reason = "capability_change"
	in.Declared = NewDeclared(DeclaredInput{PublishTopics: []string{"onex.evt.x.y.v1"}})
	d := DecideIntrospection(s, in, t0.Add(10*time.Second), params)
	if d.Reason != ReasonUpdated || d.State.Declared != in.Declared {
		t.Fatalf("decision %q, declared %+v", d.Reason, d.State.Declared)
	}
	again := DecideIntrospection(d.State, in, t0.Add(20*time.Second), params)
	if again.Emit || again.Reason != ReasonNoChange {
		t.Fatalf("the same declaration again: %q", again.Reason)
	}
}

func TestConsulHealth(t *testing.T) {
	want := map[State]string{Active: "passing", AwaitingAck: "warning", Accepted: "warning", AckReceived: "warning",
		PendingRegistration: "warning", LivenessExpired: "critical", AckTimedOut: "critical", Rejected: "critical"}
	for _, s := range States {
		if got := ConsulHealth(s); got != want[s] {
			t.Errorf("ConsulHealth(%s) = %q, want %q", s, got, want[s])
		}
	}
	if r := DecideIntrospection(nil, intro(), t0, params); r.Intents[1].Register.Health != "warning" {
		t.Errorf("register at introspection has health %q, want warning", r.Intents[1].Register.Health)
	}
}
