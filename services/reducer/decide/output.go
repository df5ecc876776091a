package decide

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/consulservice"
)

// EventKind names a lifecycle event (spec 2.7). The encoder maps each kind to
// its topic and wire model.
type EventKind string

// Lifecycle event kinds, plus the fleet's mass-expiry notice.
const (
	EventInitiated       EventKind = "NodeRegistrationInitiated"
	EventAccepted        EventKind = "NodeRegistrationAccepted"
	EventAckReceived     EventKind = "NodeRegistrationAckReceived"
	EventBecameActive    EventKind = "NodeBecameActive"
	EventAckTimedOut     EventKind = "NodeRegistrationAckTimedOut"
	EventLivenessExpired EventKind = "NodeLivenessExpired"
	EventRejected        EventKind = "NodeRegistrationRejected"
	EventMassExpiry      EventKind = "RegistrationMassExpiryProtection"
)

// Event is one lifecycle event a decision emits. Only the fields of its kind
// are set.
type Event struct {
	Kind          EventKind
	NodeID        uuid.UUID
	CorrelationID uuid.UUID
	CausationID   uuid.UUID
	EmittedAt     time.Time

	AttemptID        uuid.UUID       // Initiated
	AckDeadline      time.Time       // Accepted
	LivenessDeadline time.Time       // AckReceived
	Capabilities     json.RawMessage // BecameActive
	DeadlineAt       time.Time       // AckTimedOut
	PreviousState    State           // AckTimedOut
	LastHeartbeatAt  *time.Time      // LivenessExpired (key always present, may be null)
	RejectionReason  string          // Rejected (1..MaxRejectionReason characters)

	MassExpiry *MassExpiry // EventMassExpiry

	// ResentBy is set on an accepted event the reducer re-emits for an
	// attempt whose ack has not arrived: the input that re-emitted it. It
	// is empty on the original, and not on the wire (the copies of an
	// attempt differ only in emitted_at and causation_id).
	ResentBy Trigger
}

// MassExpiry describes a change of a partition's mass-expiry protection.
type MassExpiry struct {
	Partition   int32   `json:"partition"`
	Held        bool    `json:"held"`
	ActiveNodes int     `json:"active_nodes"`
	Expiring    int     `json:"expiring_nodes"`
	Share       float64 `json:"share"`
	Threshold   float64 `json:"threshold"`
}

// IntentType is the routing key of an intent (spec 2.11: the payload's
// intent_type, not "extension").
type IntentType string

// The intents the reducer emits.
const (
	IntentPostgresUpsert   IntentType = "postgres.upsert_registration"
	IntentPostgresUpdate   IntentType = "postgres.update_registration"
	IntentConsulRegister   IntentType = "consul.register"
	IntentConsulDeregister IntentType = "consul.deregister"
)

// IntentTypes lists every intent type the decision functions emit. The
// reducer's contract declares the same set (emitted_intents), and the
// orchestrator's contract must route each one.
var IntentTypes = []IntentType{IntentPostgresUpsert, IntentPostgresUpdate, IntentConsulRegister, IntentConsulDeregister}

// Intent is one side effect for an effect service to carry out. Every intent
// carries the node's sequence number at the time it was decided; effects
// apply an intent only if its sequence is newer than what they applied.
type Intent struct {
	ID            uuid.UUID
	Type          IntentType
	Target        string
	NodeID        uuid.UUID
	CorrelationID uuid.UUID
	AttemptID     uuid.UUID
	Sequence      int64
	// Refresh: the intent re-applies a registration the node already has
	// (pipeline.Intent.Refresh): the register at the ack.
	Refresh bool

	Upsert     *ProjectionRecord   // postgres.upsert_registration
	Update     *ProjectionUpdate   // postgres.update_registration
	Register   *ConsulRegistration // consul.register
	Deregister *ConsulDeregistration
}

// ProjectionRecord is the upsert's record (spec 2.11 ModelProjectionRecord):
// entity, state and type, plus the data columns merged into the row.
type ProjectionRecord struct {
	EntityID     uuid.UUID
	Domain       string
	CurrentState State
	NodeType     string

	NodeName           *string
	NodeVersion        string
	Capabilities       json.RawMessage
	Endpoints          map[string]string
	AckDeadline        *time.Time
	LivenessDeadline   *time.Time
	LastHeartbeatAt    *time.Time
	LastAppliedEventID uuid.UUID
	RegisteredAt       time.Time
	UpdatedAt          time.Time
	CorrelationID      uuid.UUID

	// Extras are the introspection's unknown members (Introspection.Extras),
	// nil when none: the row's introspection_extras, which every upsert
	// replaces ({} for nil).
	Extras json.RawMessage

	// Declared fills the contract and topic columns (nil: empty), and
	// CapabilityTags the capability_tags column (NodeState.CapabilityTags).
	Declared       *Declared
	CapabilityTags []string
}

// ProjectionUpdate is the update's column set. Only non-nil fields are
// written; the markers are set together with the state they cause, in one
// statement (spec 12 #3: "in one transaction set the state and the marker").
type ProjectionUpdate struct {
	CurrentState             *State
	AckDeadline              *time.Time
	LivenessDeadline         *time.Time
	LastHeartbeatAt          *time.Time
	AckTimeoutEmittedAt      *time.Time
	LivenessTimeoutEmittedAt *time.Time
	UpdatedAt                time.Time
}

// ConsulRegistration is the spec 4.8 derivation for one node
// (NodeState.ConsulRegistration). It lives in pkg/consulservice, which the
// consul effect derives it with too.
type ConsulRegistration = consulservice.Registration

// ConsulDeregistration names the service to remove.
type ConsulDeregistration struct {
	ServiceID string
}

// Decision is the result of one decision function.
type Decision struct {
	// Emit is false for a no-op; Reason then says why (the spec's strings).
	Emit   bool
	Reason string
	// State is the node's state after the decision (nil when the node is
	// still unknown). It is a new value; the input state is never mutated.
	State   *NodeState
	Events  []Event
	Intents []Intent
	// Topics is the change of the node's entry in the topic catalog's view
	// (TopicsChangeOf), nil when none. The processor sets it: it knows the
	// node's state before and after the decision.
	Topics *TopicsChange
	// LivenessOnly reports that the decision changed only the node's
	// liveness (last heartbeat, liveness deadline) and the sequence of the
	// projection update it emits: a heartbeat of a node that needed nothing
	// else. The reducer checkpoints such changes instead of writing the
	// node's snapshot.
	LivenessOnly bool
}
