// Package consulservice derives the Consul service the fleet keeps for an
// ONEX node (spec 4.8): its id, name and tags from the node's type, id and
// MCP tool, its address and port from the node's endpoints, its check's
// status from the node's registration state. The reducer derives it for its
// consul.register intents; the consul effect derives it again from a
// registration snapshot (FromSnapshot) for its anti-entropy. Both use this
// package, so the service anti-entropy keeps is the one the intents
// registered.
package consulservice

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// Registration is the spec 4.8 derivation for one node.
type Registration struct {
	ServiceID   string   `json:"service_id"`
	ServiceName string   `json:"service_name"`
	Tags        []string `json:"tags"`
	Address     *string  `json:"address"`
	Port        *int     `json:"port"`
	// HealthURL is the node's health endpoint when it declares one; the
	// Consul effect registers an HTTP check on it.
	HealthURL *string `json:"health_url"`
	// Health is the status of the node's check in Consul's catalog mode
	// (Health of its state); empty when derived without a state.
	Health string `json:"health,omitempty"`
}

// Endpoints looks a node's endpoints (spec 2.2 `endpoints`) up by name.
type Endpoints interface {
	Get(name string) (url string, ok bool)
}

// EndpointMap is Endpoints over the map a node declares.
type EndpointMap map[string]string

// Get returns the URL of the endpoint named name.
func (m EndpointMap) Get(name string) (string, bool) {
	u, ok := m[name]
	return u, ok
}

// Name is the Consul service name of the nodes of a type.
func Name(nodeType string) string { return "onex-" + nodeType }

// ID is the Consul service id of a node.
func ID(nodeType string, nodeID uuid.UUID) string {
	return "onex-" + nodeType + "-" + nodeID.String()
}

// Tag values of the derivation: every service is tagged onex and with its
// node type; an orchestrator exposing an MCP tool also mcp-enabled and with
// the tool's name.
const (
	tagNodeType   = "node-type:"
	tagMCPEnabled = "mcp-enabled"
	tagMCPTool    = "mcp-tool:"
)

// Derive returns the Consul service of a node of nodeType: tagged onex and
// node-type:<type>, plus mcp-enabled and mcp-tool:<name> when mcpTool (the
// sanitized tool name of an orchestrator exposing itself over MCP) is set;
// addressed at the host and port of its health endpoint, else of its api
// endpoint; with the health endpoint as HealthURL when there is one. Health
// is left empty for the caller that knows the node's state.
func Derive(nodeID uuid.UUID, nodeType string, endpoints Endpoints, mcpTool *string) *Registration {
	r := &Registration{
		ServiceID:   ID(nodeType, nodeID),
		ServiceName: Name(nodeType),
		Tags:        []string{"onex", tagNodeType + nodeType},
	}
	if mcpTool != nil {
		r.Tags = append(r.Tags, tagMCPEnabled, tagMCPTool+*mcpTool)
	}
	if endpoints == nil {
		return r
	}
	for _, key := range []string{"health", "api"} {
		raw, ok := endpoints.Get(key)
		if !ok {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			continue
		}
		r.Address = ptr(u.Hostname())
		if port, err := strconv.Atoi(u.Port()); err == nil {
			r.Port = &port
		}
		break
	}
	if h, ok := endpoints.Get("health"); ok {
		r.HealthURL = ptr(h)
	}
	return r
}

// Health is the status the fleet reports in Consul for a node in state s
// (the consul effect's catalog mode writes it as the check of the node's
// service): passing once ACTIVE, warning while the registry waits for its
// ack (registered, not yet confirmed: `?passing` queries leave it out),
// critical otherwise (a node in any other state is deregistered).
func Health(s registration.State) string {
	switch s {
	case registration.StateActive:
		return "passing"
	case registration.StateAccepted, registration.StateAwaitingAck, registration.StateAckReceived, registration.StatePendingRegistration:
		return "warning"
	}
	return "critical"
}

// MCPToolFromTags recovers the sanitized MCP tool name from the tags of a
// derivation (the inverse of Derive's MCP tags), nil when the tags do not
// enable MCP. Snapshots written before the reducer kept the tool name carry
// only the tags.
func MCPToolFromTags(tags []string) *string {
	enabled := false
	var tool *string
	for _, t := range tags {
		switch {
		case t == tagMCPEnabled:
			enabled = true
		case strings.HasPrefix(t, tagMCPTool):
			tool = ptr(strings.TrimPrefix(t, tagMCPTool))
		}
	}
	if !enabled {
		return nil
	}
	return tool
}

// Payload is the consul.register payload of a derivation: what the
// reducer's register intent carries, and what FromSnapshot derives.
func Payload(r *Registration, nodeID, corr uuid.UUID) pipeline.ConsulRegisterPayload {
	id := nodeID.String()
	p := pipeline.ConsulRegisterPayload{
		IntentType: pipeline.ConsulRegister, CorrelationID: corr, NodeID: &id,
		ServiceID: r.ServiceID, ServiceName: r.ServiceName, Tags: append([]string{}, r.Tags...),
		Address: r.Address, Port: r.Port, EventBusConfig: json.RawMessage("null"), Health: r.Health,
	}
	if r.HealthURL != nil {
		p.HealthCheck = &pipeline.HealthCheck{HTTP: *r.HealthURL, Interval: "10s", Timeout: "5s", DeregisterCriticalServiceAfter: "10m"}
	}
	return p
}

func ptr[T any](v T) *T { return &v }
