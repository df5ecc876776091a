package registration

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// LifecycleHeader holds the fields every registration lifecycle event
// starts with (spec §2.7), all required. It is embedded in each event.
type LifecycleHeader struct {
	// EntityID is the registration entity id (= NodeID).
	EntityID      uuid.UUID
	NodeID        uuid.UUID
	CorrelationID uuid.UUID
	// CausationID is the id of the message that caused the event.
	CausationID uuid.UUID
	EmittedAt   envelope.Time
}

func (h *LifecycleHeader) fields(extra ...pyjson.Field) []pyjson.Field {
	return append([]pyjson.Field{
		pyjson.Req("entity_id", &h.EntityID, pyjson.UUID),
		pyjson.Req("node_id", &h.NodeID, pyjson.UUID),
		pyjson.Req("correlation_id", &h.CorrelationID, pyjson.UUID),
		pyjson.Req("causation_id", &h.CausationID, pyjson.UUID),
		pyjson.Req("emitted_at", &h.EmittedAt, timeC),
	}, extra...)
}

func forbid(fields []pyjson.Field) pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: fields}
}

// RegistrationInitiated is ModelNodeRegistrationInitiated
// (onex.evt.platform.node-registration-initiated.v1).
type RegistrationInitiated struct {
	LifecycleHeader
	RegistrationAttemptID uuid.UUID
}

func (e *RegistrationInitiated) pyName() string { return "ModelNodeRegistrationInitiated" }
func (e *RegistrationInitiated) spec() pyjson.Spec {
	return forbid(e.fields(pyjson.Req("registration_attempt_id", &e.RegistrationAttemptID, pyjson.UUID)))
}

// Validate has nothing to check beyond JSON types.
func (e *RegistrationInitiated) Validate() error { return nil }

// RegistrationAccepted is ModelNodeRegistrationAccepted
// (onex.evt.platform.node-registration-accepted.v1).
type RegistrationAccepted struct {
	LifecycleHeader
	AckDeadline envelope.Time
}

func (e *RegistrationAccepted) pyName() string { return "ModelNodeRegistrationAccepted" }
func (e *RegistrationAccepted) spec() pyjson.Spec {
	return forbid(e.fields(pyjson.Req("ack_deadline", &e.AckDeadline, timeC)))
}

// Validate has nothing to check beyond JSON types.
func (e *RegistrationAccepted) Validate() error { return nil }

// RegistrationAckReceived is ModelNodeRegistrationAckReceived
// (onex.evt.platform.node-registration-ack-received.v1).
type RegistrationAckReceived struct {
	LifecycleHeader
	LivenessDeadline envelope.Time
}

func (e *RegistrationAckReceived) pyName() string { return "ModelNodeRegistrationAckReceived" }
func (e *RegistrationAckReceived) spec() pyjson.Spec {
	return forbid(e.fields(pyjson.Req("liveness_deadline", &e.LivenessDeadline, timeC)))
}

// Validate has nothing to check beyond JSON types.
func (e *RegistrationAckReceived) Validate() error { return nil }

// BecameActive is ModelNodeBecameActive
// (onex.evt.platform.node-became-active.v1).
type BecameActive struct {
	LifecycleHeader
	// Capabilities is required.
	Capabilities NodeCapabilities
}

func (e *BecameActive) pyName() string { return "ModelNodeBecameActive" }
func (e *BecameActive) spec() pyjson.Spec {
	return forbid(e.fields(pyjson.Req("capabilities", &e.Capabilities, capabilitiesC)))
}

// Validate checks the capabilities.
func (e *BecameActive) Validate() error { return nested("capabilities", e.Capabilities.Validate()) }

// RegistrationAckTimedOut is ModelNodeRegistrationAckTimedOut
// (onex.evt.platform.node-registration-ack-timed-out.v1).
type RegistrationAckTimedOut struct {
	LifecycleHeader
	DeadlineAt envelope.Time
	// PreviousState is nil by default.
	PreviousState *State
}

func (e *RegistrationAckTimedOut) pyName() string { return "ModelNodeRegistrationAckTimedOut" }
func (e *RegistrationAckTimedOut) spec() pyjson.Spec {
	return forbid(e.fields(
		pyjson.Req("deadline_at", &e.DeadlineAt, timeC),
		pyjson.Prop("previous_state", &e.PreviousState, nullStateC),
	))
}

// Validate checks previous_state.
func (e *RegistrationAckTimedOut) Validate() error { return optEnum("previous_state", e.PreviousState) }

// LivenessExpired is ModelNodeLivenessExpired, events variant
// (onex.evt.platform.node-liveness-expired.v1) — the shape Go producers
// emit. The last_heartbeat_at key is required but may be null.
type LivenessExpired struct {
	LifecycleHeader
	LastHeartbeatAt *envelope.Time
}

func (e *LivenessExpired) pyName() string { return "ModelNodeLivenessExpired" }
func (e *LivenessExpired) spec() pyjson.Spec {
	return forbid(e.fields(pyjson.Req("last_heartbeat_at", &e.LastHeartbeatAt, nullTime)))
}

// Validate has nothing to check beyond JSON types.
func (e *LivenessExpired) Validate() error { return nil }

// LivenessExpiredCoordinator is the second, incompatible liveness-expired
// shape the Python ServiceTimeoutEmitter publishes on the same topic
// (orchestrator-local ModelNodeLivenessExpired): no entity_id/emitted_at,
// but liveness_deadline and detected_at.
type LivenessExpiredCoordinator struct {
	NodeID           uuid.UUID
	LivenessDeadline envelope.Time
	DetectedAt       envelope.Time
	LastHeartbeatAt  *envelope.Time
	CorrelationID    uuid.UUID
	// CausationID is the tick_id.
	CausationID uuid.UUID
}

func (e *LivenessExpiredCoordinator) pyName() string {
	return "ModelNodeLivenessExpired(orchestrator)"
}

func (e *LivenessExpiredCoordinator) spec() pyjson.Spec {
	return forbid([]pyjson.Field{
		pyjson.Req("node_id", &e.NodeID, pyjson.UUID),
		pyjson.Req("liveness_deadline", &e.LivenessDeadline, timeC),
		pyjson.Req("detected_at", &e.DetectedAt, timeC),
		pyjson.Prop("last_heartbeat_at", &e.LastHeartbeatAt, nullTime),
		pyjson.Req("correlation_id", &e.CorrelationID, pyjson.UUID),
		pyjson.Req("causation_id", &e.CausationID, pyjson.UUID),
	})
}

// Validate has nothing to check beyond JSON types.
func (e *LivenessExpiredCoordinator) Validate() error { return nil }

// Event converts the coordinator shape to the events variant: entity_id =
// node_id, emitted_at = detected_at. LivenessDeadline has no counterpart
// and is dropped.
func (e *LivenessExpiredCoordinator) Event() LivenessExpired {
	return LivenessExpired{
		LifecycleHeader: LifecycleHeader{
			EntityID:      e.NodeID,
			NodeID:        e.NodeID,
			CorrelationID: e.CorrelationID,
			CausationID:   e.CausationID,
			EmittedAt:     e.DetectedAt,
		},
		LastHeartbeatAt: e.LastHeartbeatAt,
	}
}

// DecodeLivenessExpired decodes either liveness-expired shape found on
// onex.evt.platform.node-liveness-expired.v1: an object with a
// "detected_at" key is the coordinator shape, decoded strictly with
// DecodeLivenessExpiredCoordinator and converted with Event; anything else
// is decoded strictly as the events variant.
func DecodeLivenessExpired(data []byte) (*LivenessExpired, error) {
	if err := pyjson.CheckSyntax(data); err != nil {
		return nil, fmt.Errorf("ModelNodeLivenessExpired: %w", err)
	}
	members, err := pyjson.ParseMembers(data)
	if err != nil {
		return nil, pyjson.WithModel("ModelNodeLivenessExpired", err)
	}
	if _, coord := pyjson.Members(members).Get("detected_at"); coord {
		c, err := DecodeLivenessExpiredCoordinator(data)
		if err != nil {
			return nil, err
		}
		ev := c.Event()
		return &ev, nil
	}
	return decodeAs[LivenessExpired](data)
}

// RegistrationRejected is ModelNodeRegistrationRejected
// (onex.evt.platform.node-registration-rejected.v1).
type RegistrationRejected struct {
	LifecycleHeader
	// RejectionReason is 1..1024 characters.
	RejectionReason string
}

func (e *RegistrationRejected) pyName() string { return "ModelNodeRegistrationRejected" }
func (e *RegistrationRejected) spec() pyjson.Spec {
	return forbid(e.fields(pyjson.Req("rejection_reason", &e.RejectionReason, pyjson.String)))
}

// Validate checks the rejection_reason length.
func (e *RegistrationRejected) Validate() error {
	return strLen("rejection_reason", e.RejectionReason, 1, 1024)
}
