package registration

// NodeKind is EnumNodeKind, the node_type of a node.
type NodeKind string

// Node kinds. The PostgreSQL projection accepts only the first four.
const (
	NodeKindEffect       NodeKind = "effect"
	NodeKindCompute      NodeKind = "compute"
	NodeKindReducer      NodeKind = "reducer"
	NodeKindOrchestrator NodeKind = "orchestrator"
	NodeKindRuntimeHost  NodeKind = "runtime_host"
)

// NodeKinds lists every node kind in the enum's declaration order.
var NodeKinds = []NodeKind{NodeKindEffect, NodeKindCompute, NodeKindReducer, NodeKindOrchestrator, NodeKindRuntimeHost}

// Valid reports whether k is one of the five node kinds.
func (k NodeKind) Valid() bool {
	switch k {
	case NodeKindEffect, NodeKindCompute, NodeKindReducer, NodeKindOrchestrator, NodeKindRuntimeHost:
		return true
	}
	return false
}

// State is EnumRegistrationState, the registration FSM state (also the
// PostgreSQL enum registration_state).
type State string

// Registration states.
const (
	StatePendingRegistration State = "pending_registration"
	StateAccepted            State = "accepted"
	StateAwaitingAck         State = "awaiting_ack"
	StateRejected            State = "rejected"
	StateAckTimedOut         State = "ack_timed_out"
	StateAckReceived         State = "ack_received"
	StateActive              State = "active"
	StateLivenessExpired     State = "liveness_expired"
)

// States lists every registration state in the enum's declaration order.
var States = []State{
	StatePendingRegistration, StateAccepted, StateAwaitingAck, StateRejected,
	StateAckTimedOut, StateAckReceived, StateActive, StateLivenessExpired,
}

// Valid reports whether s is one of the eight states.
func (s State) Valid() bool {
	switch s {
	case StatePendingRegistration, StateAccepted, StateAwaitingAck, StateRejected,
		StateAckTimedOut, StateAckReceived, StateActive, StateLivenessExpired:
		return true
	}
	return false
}

// IntrospectionReason is EnumIntrospectionReason, why a node introspected.
type IntrospectionReason string

// Introspection reasons.
const (
	ReasonStartup          IntrospectionReason = "startup"
	ReasonShutdown         IntrospectionReason = "shutdown"
	ReasonRequest          IntrospectionReason = "request"
	ReasonHeartbeat        IntrospectionReason = "heartbeat"
	ReasonHealthChange     IntrospectionReason = "health_change"
	ReasonCapabilityChange IntrospectionReason = "capability_change"
)

// IntrospectionReasons lists every reason in the enum's declaration order.
var IntrospectionReasons = []IntrospectionReason{
	ReasonStartup, ReasonShutdown, ReasonRequest, ReasonHeartbeat, ReasonHealthChange, ReasonCapabilityChange,
}

// Valid reports whether r is one of the six reasons.
func (r IntrospectionReason) Valid() bool {
	switch r {
	case ReasonStartup, ReasonShutdown, ReasonRequest, ReasonHeartbeat, ReasonHealthChange, ReasonCapabilityChange:
		return true
	}
	return false
}
