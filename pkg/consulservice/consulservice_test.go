package consulservice

import (
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/registration"
)

func TestDerive(t *testing.T) {
	id := uuid.MustParse("7c795465-f358-51dd-84c7-c32c709a3208")
	sid := "onex-effect-" + id.String()
	tests := []struct {
		name      string
		nodeType  string
		endpoints Endpoints
		mcpTool   *string
		want      *Registration
	}{
		{name: "no endpoints", nodeType: "effect",
			want: &Registration{ServiceID: sid, ServiceName: "onex-effect", Tags: []string{"onex", "node-type:effect"}}},
		{name: "health first, its URL the check", nodeType: "effect",
			endpoints: EndpointMap{"api": "http://10.0.0.1:9/api", "health": "http://10.0.0.2:8080/health"},
			want: &Registration{ServiceID: sid, ServiceName: "onex-effect", Tags: []string{"onex", "node-type:effect"},
				Address: ptr("10.0.0.2"), Port: ptr(8080), HealthURL: ptr("http://10.0.0.2:8080/health")}},
		{name: "api when there is no health", nodeType: "effect", endpoints: EndpointMap{"api": "http://h:9/api"},
			want: &Registration{ServiceID: sid, ServiceName: "onex-effect", Tags: []string{"onex", "node-type:effect"}, Address: ptr("h"), Port: ptr(9)}},
		{name: "a health URL without a host falls back to api", nodeType: "effect",
			endpoints: EndpointMap{"api": "http://h/api", "health": "/health"},
			want: &Registration{ServiceID: sid, ServiceName: "onex-effect", Tags: []string{"onex", "node-type:effect"},
				Address: ptr("h"), HealthURL: ptr("/health")}},
		{name: "MCP tool", nodeType: "orchestrator", mcpTool: ptr("do-things"),
			want: &Registration{ServiceID: "onex-orchestrator-" + id.String(), ServiceName: "onex-orchestrator",
				Tags: []string{"onex", "node-type:orchestrator", "mcp-enabled", "mcp-tool:do-things"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Derive(id, tt.nodeType, tt.endpoints, tt.mcpTool)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Derive = %+v, want %+v", got, tt.want)
			}
			if tool := MCPToolFromTags(got.Tags); !reflect.DeepEqual(tool, tt.mcpTool) {
				t.Errorf("MCPToolFromTags(%v) = %v, want %v", got.Tags, tool, tt.mcpTool)
			}
		})
	}
}

func TestMCPToolFromTags(t *testing.T) {
	tests := []struct {
		tags []string
		want *string
	}{
		{tags: nil},
		{tags: []string{"mcp-tool:x"}}, // not enabled
		{tags: []string{"mcp-enabled"}},
		{tags: []string{"onex", "mcp-enabled", "mcp-tool:x"}, want: ptr("x")},
	}
	for _, tt := range tests {
		if got := MCPToolFromTags(tt.tags); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("MCPToolFromTags(%v) = %v, want %v", tt.tags, got, tt.want)
		}
	}
}

func TestHealth(t *testing.T) {
	want := map[registration.State]string{
		registration.StateActive: "passing", registration.StateAccepted: "warning", registration.StateAwaitingAck: "warning",
		registration.StateAckReceived: "warning", registration.StatePendingRegistration: "warning",
		registration.StateRejected: "critical", registration.StateAckTimedOut: "critical", registration.StateLivenessExpired: "critical",
	}
	for _, s := range registration.States {
		if got := Health(s); got != want[s] {
			t.Errorf("Health(%s) = %q, want %q", s, got, want[s])
		}
	}
}

func TestPayload(t *testing.T) {
	id, corr := uuid.New(), uuid.New()
	r := Derive(id, "effect", EndpointMap{"health": "http://h:1/health"}, nil)
	r.Health = "warning"
	p := Payload(r, id, corr)
	if p.IntentType != "consul.register" || p.CorrelationID != corr || *p.NodeID != id.String() || p.ServiceID != r.ServiceID ||
		p.Health != "warning" || p.HealthCheck == nil || p.HealthCheck.HTTP != "http://h:1/health" || string(p.EventBusConfig) != "null" {
		t.Errorf("Payload = %+v", p)
	}
	p.Tags[0] = "changed"
	if r.Tags[0] != "onex" {
		t.Error("the payload shares the derivation's tags")
	}
	if p := Payload(Derive(id, "effect", nil, nil), id, corr); p.HealthCheck != nil {
		t.Errorf("a check without a health endpoint: %+v", p.HealthCheck)
	}
}
