package registration

import (
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
