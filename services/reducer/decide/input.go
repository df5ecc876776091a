package decide

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Introspection is what the decision needs from a node's introspection event
// (spec 2.2).
type Introspection struct {
	NodeID      uuid.UUID
	NodeType    string
	NodeName    *string
	NodeVersion string // string form, e.g. "1.2.0"
	// Capabilities is declared_capabilities exactly as the node sent it.
	Capabilities json.RawMessage
	Endpoints    map[string]string
	Description  *string // metadata.description
	MCPExpose    bool    // declared_capabilities.mcp.expose
	MCPToolName  *string // declared_capabilities.mcp.tool_name
	// CorrelationID is the payload's correlation_id: the causation of the
	// events it leads to.
	CorrelationID uuid.UUID
	// HandlerCorrelationID is the envelope's correlation_id (the payload's
	// when the envelope has none); events carry it.
	HandlerCorrelationID uuid.UUID
	// Extras are the members of the payload the fleet does not know (a
	// node newer than it): a compact JSON object, each key the member's
	// JSON path relative to the payload ("flow_x",
	// "declared_capabilities.new_thing"), each value its exact JSON, in the
	// order met; nil when there are none (never {}). They are kept with the
	// node: in its state, its snapshot and its projection row
	// (introspection_extras).
	Extras json.RawMessage
	// Declared is the node's contract_capabilities and event_bus topics
	// (NewDeclared), nil when it declares none.
	Declared *Declared
	// Reason is the payload's reason (EnumIntrospectionReason: startup,
	// shutdown, capability_change, health_change, request, heartbeat);
	// the decoder defaults it to startup, as the Python model does.
	Reason string
	// Timestamp is the payload's timestamp, the producer's clock: it
	// orders a node's introspections (a late one never rolls it back).
	// Zero when unknown (tests): then no ordering is applied.
	Timestamp time.Time
}

// The introspection reasons (EnumIntrospectionReason) the decisions tell
// apart; the others (capability_change, health_change, request, heartbeat)
// update an ACTIVE node in place as startup does, without moving its
// liveness deadline.
const (
	ReasonStartup  = "startup"
	ReasonShutdown = "shutdown"
)

// Ack is a node's registration ack (spec 2.4).
type Ack struct {
	NodeID        uuid.UUID
	CommandID     uuid.UUID
	CorrelationID uuid.UUID
	Timestamp     time.Time
}

// Heartbeat is a node's heartbeat (spec 2.3). Timestamp is the producer's
// clock and drives the liveness deadline.
type Heartbeat struct {
	NodeID        uuid.UUID
	Timestamp     time.Time
	CorrelationID uuid.UUID
}

// Tick is a runtime tick (spec 2.5). Now is the authoritative time of every
// timeout decision it causes.
type Tick struct {
	TickID        uuid.UUID
	CorrelationID uuid.UUID
	Now           time.Time
}
