package registration

import (
	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// RegistrationSnapshot is ModelRegistrationSnapshot, published bare (not
// enveloped) on the registration-snapshots topic, keyed by entity_id
// (extra="forbid").
type RegistrationSnapshot struct {
	// EntityID is required.
	EntityID uuid.UUID
	// Domain is 1..128 characters, default "registration".
	Domain string
	// CurrentState is required.
	CurrentState State
	NodeType     *NodeKind
	// NodeName is at most 256 characters, or nil.
	NodeName     *string
	Capabilities *NodeCapabilities
	// LastStateChangeAt is required.
	LastStateChangeAt envelope.Time
	// SnapshotVersion is required, >= 1.
	SnapshotVersion int
	// SnapshotCreatedAt is required.
	SnapshotCreatedAt envelope.Time
	// SchemaVersion is a semver *string*, default "1.0.0".
	SchemaVersion string
	// SourceProjectionSequence is nil or >= 0.
	SourceProjectionSequence *int
}

func (s *RegistrationSnapshot) pyName() string { return "ModelRegistrationSnapshot" }

func (s *RegistrationSnapshot) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("entity_id", &s.EntityID, pyjson.UUID),
		pyjson.Def("domain", &s.Domain, pyjson.String, "registration"),
		pyjson.Req("current_state", &s.CurrentState, stateC),
		pyjson.Prop("node_type", &s.NodeType, nullNodeKindC),
		pyjson.Prop("node_name", &s.NodeName, nullString),
		pyjson.Prop("capabilities", &s.Capabilities, nullCapabilitiesC),
		pyjson.Req("last_state_change_at", &s.LastStateChangeAt, timeC),
		pyjson.Req("snapshot_version", &s.SnapshotVersion, pyjson.Int),
		pyjson.Req("snapshot_created_at", &s.SnapshotCreatedAt, timeC),
		pyjson.Def("schema_version", &s.SchemaVersion, pyjson.String, "1.0.0"),
		pyjson.Prop("source_projection_sequence", &s.SourceProjectionSequence, nullInt),
	}}
}

// Validate checks domain, state, node type, name length, versions and the
// sequence.
func (s *RegistrationSnapshot) Validate() error {
	var caps, schema error
	if s.Capabilities != nil {
		caps = nested("capabilities", s.Capabilities.Validate())
	}
	if _, err := envelope.ParseSemVer(s.SchemaVersion); err != nil {
		schema = fieldf("schema_version", "%v", err)
	}
	return firstErr(
		strLen("domain", s.Domain, 1, 128),
		enumField("current_state", s.CurrentState),
		optEnum("node_type", s.NodeType),
		optStrLen("node_name", s.NodeName, 0, 256),
		caps,
		intMin("snapshot_version", s.SnapshotVersion, 1),
		schema,
		optIntMin("source_projection_sequence", s.SourceProjectionSequence, 0),
	)
}
