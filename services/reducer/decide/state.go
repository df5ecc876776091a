// Package decide holds the reducer's pure decision functions: given a node's
// state, one input and the time of the decision, it returns the node's new
// state, the lifecycle events to publish and the intents for the effects.
// Nothing here does I/O, reads a clock or draws a random number: ids that the
// outputs need are derived deterministically from the inputs (UUIDv5), so a
// replay of the same input stream produces the same bytes.
//
// The decisions follow the seed's documented two-way flow (spec 4.3 "docs"
// column): introspection → awaiting_ack + accepted event + Consul register
// intent; ack → active; ack and liveness timeouts really move the state. An
// introspection of a node type the projection cannot hold (runtime_host) →
// rejected + rejected event, nothing else.
package decide

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/consulservice"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// State is a registration state (spec 2.1), serialized by its lower-case value.
type State string

// The eight registration states.
const (
	PendingRegistration State = "pending_registration"
	Accepted            State = "accepted"
	AwaitingAck         State = "awaiting_ack"
	Rejected            State = "rejected"
	AckTimedOut         State = "ack_timed_out"
	AckReceived         State = "ack_received"
	Active              State = "active"
	LivenessExpired     State = "liveness_expired"
)

// States lists every state in the spec's order.
var States = []State{PendingRegistration, Accepted, AwaitingAck, Rejected, AckTimedOut, AckReceived, Active, LivenessExpired}

// Valid reports whether s is one of the eight states.
func (s State) Valid() bool {
	for _, x := range States {
		if s == x {
			return true
		}
	}
	return false
}

// Retriable reports whether an introspection may start a new registration
// from s (documented behaviour: new, liveness_expired, rejected, ack_timed_out).
func (s State) Retriable() bool {
	return s == LivenessExpired || s == Rejected || s == AckTimedOut
}

// Terminal reports whether s has no outgoing transition of its own.
func (s State) Terminal() bool { return s == Rejected || s == LivenessExpired }

// NodeState is everything the reducer keeps about one node. It is persisted
// in the registration snapshot (see Snapshot) and restored on start.
//
// The reducer holds one per node it owns (100,000 and more), so it keeps no
// field it can derive: the node's Consul service is derived from it when an
// intent or a snapshot needs it (ConsulRegistration), and the values nodes
// share (type, version, capabilities) are shared between states rather than
// copied. Capabilities, Endpoints and Extras are never modified in place: a
// new introspection replaces them.
type NodeState struct {
	NodeID uuid.UUID `json:"node_id"`
	State  State     `json:"state"`

	// What the latest accepted introspection said; intents need it.
	NodeType    string  `json:"node_type"`
	NodeName    *string `json:"node_name"`
	NodeVersion string  `json:"node_version"`
	// Capabilities is not in the reducer state's JSON: the snapshot carries
	// it once, at its top level (spec 2.10 `capabilities`).
	Capabilities json.RawMessage `json:"-"`
	Endpoints    Endpoints       `json:"endpoints,omitempty"`
	// MCPTool is the sanitized MCP tool name of an orchestrator that exposes
	// itself over MCP (spec 4.8), nil for every other node: the one input
	// of its Consul derivation the other fields do not hold.
	MCPTool *string `json:"mcp_tool,omitempty"`
	// Extras are the unknown members of the latest accepted introspection
	// (Introspection.Extras): nil when it had none, and then omitted from
	// the JSON, so the state of a node the fleet fully knows does not grow.
	Extras json.RawMessage `json:"introspection_extras,omitempty"`
	// Declared is the node's contract and topics (nil when it declares
	// none, and then omitted from the JSON), shared between nodes.
	Declared *Declared `json:"declared,omitempty"`

	// The registration attempt in progress or last completed.
	AttemptID     uuid.UUID `json:"registration_attempt_id"`
	CorrelationID uuid.UUID `json:"correlation_id"`
	RegisteredAt  time.Time `json:"registered_at"`

	AckDeadline *time.Time `json:"ack_deadline"`
	// NextResendAt is when the accepted event of the attempt is due again
	// (see NextResend), set while the node awaits its ack and nil otherwise;
	// with resends disabled it is the ack deadline. Omitted from the JSON
	// when nil, so the snapshot of an ACTIVE node does not grow.
	NextResendAt             *time.Time `json:"next_resend_at,omitempty"`
	LivenessDeadline         *time.Time `json:"liveness_deadline"`
	LastHeartbeatAt          *time.Time `json:"last_heartbeat_at"`
	AckTimeoutEmittedAt      *time.Time `json:"ack_timeout_emitted_at"`
	LivenessTimeoutEmittedAt *time.Time `json:"liveness_timeout_emitted_at"`
	LastStateChangeAt        time.Time  `json:"last_state_change_at"`
	// LastIntrospectionAt is the payload timestamp (producer clock) of the
	// latest introspection applied (registration, update in place,
	// shutdown, rejection): an introspection stamped before it is stale
	// and changes nothing. Zero when unknown (a state restored from a
	// snapshot written before it was kept), and then omitted from the JSON.
	LastIntrospectionAt time.Time `json:"last_introspection_at,omitzero"`

	// Sequence is incremented for every intent emitted for this node and
	// carried by the intent, so the effects can refuse to move backwards.
	Sequence int64 `json:"sequence"`
}

// Clone returns a copy a decision may change without changing s. It is
// shallow: nothing writes through a NodeState's pointers or slices (a
// decision gives a field a new value, it never changes the old one in place),
// so the copy shares them, and a decision allocates one state, not one per
// field.
func (s *NodeState) Clone() *NodeState {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// ConsulRegistration derives the node's Consul service (spec 4.8).
func (s *NodeState) ConsulRegistration() *ConsulRegistration {
	r := consulservice.Derive(s.NodeID, s.NodeType, s.Endpoints, s.MCPTool)
	r.Health = ConsulHealth(s.State)
	return r
}

// ConsulHealth is the status the fleet reports in Consul for a node in
// state s (consulservice.Health): passing once ACTIVE, warning while the
// registry waits for its ack, critical otherwise.
func ConsulHealth(s State) string { return consulservice.Health(registration.State(s)) }

// Params are the reducer's tunables (spec 4.2, documented defaults).
type Params struct {
	AckTimeout       time.Duration // ack deadline after acceptance (30 s)
	LivenessInterval time.Duration // liveness deadline after activation (60 s)
	LivenessWindow   time.Duration // deadline extension per heartbeat (90 s)
	// Mass-expiry protection: hold expirations when more than MassExpiryShare
	// of a partition's ACTIVE nodes would expire within one liveness window
	// and the partition has at least MassExpiryMinActive ACTIVE nodes.
	MassExpiryShare     float64
	MassExpiryMinActive int
	// Resends of the accepted event while a node awaits its ack: the first
	// AcceptedResendInitial after the original emission, then at doubling
	// intervals capped at AcceptedResendMax (docs/reducer.md, "Accepted
	// resends"). An initial interval of 0 disables them.
	AcceptedResendInitial time.Duration // 2 s
	AcceptedResendMax     time.Duration // 8 s
}

// DefaultParams are the documented defaults.
func DefaultParams() Params {
	return Params{
		AckTimeout:          30 * time.Second,
		LivenessInterval:    60 * time.Second,
		LivenessWindow:      90 * time.Second,
		MassExpiryShare:     0.30,
		MassExpiryMinActive: 20,

		AcceptedResendInitial: 2 * time.Second,
		AcceptedResendMax:     8 * time.Second,
	}
}
