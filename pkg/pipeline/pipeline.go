// Package pipeline defines the messages on the fleet's internal topics
// (docs/architecture.md, "Topics"): the canonical reducer input, the intents
// the reducer issues and the orchestrator routes to the effects, the effect
// results, and the registration result the orchestrator publishes.
//
// The intent payloads keep the Python models' field names (spec 2.11) and
// add what the fleet needs: the node's sequence number (the effects' guard
// against replays and reordering) and the registration attempt they belong to.
package pipeline

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

// ReducerInput is one record of the reducer's input topic, and one line of
// `onexctl reducer replay`: the original record's topic and value, byte for
// byte, and the orchestrator's receive time, which is the reducer's "now".
// Its JSON form is the topic's older wire; the orchestrator now writes
// protobuf (reducerinput.go), where a heartbeat carries the fields ingress
// decoded instead of its value.
type ReducerInput struct {
	Topic      string          `json:"topic"`
	ReceivedAt envelope.Time   `json:"received_at"`
	Value      json.RawMessage `json:"value"`
	// Heartbeat, set only from the protobuf form, replaces Value for a
	// heartbeat. The JSON form has no place for it (ReducerInputLine).
	Heartbeat *HeartbeatInput `json:"-"`
}

// Intent is a ModelIntent (spec 2.11) as the fleet carries it between
// services, keyed by node_id: a protobuf onex.fleet.v1.Intent, or in the
// older JSON form the payload of an envelope (intentwire.go).
type Intent struct {
	IntentID   uuid.UUID       `json:"intent_id"`
	IntentType string          `json:"intent_type"`
	Target     string          `json:"target"`
	Payload    json.RawMessage `json:"payload"`
	Priority   int             `json:"priority"`
	LeaseID    *uuid.UUID      `json:"lease_id"`
	Epoch      *int64          `json:"epoch"`

	// NodeID is the node the intent is about.
	NodeID uuid.UUID `json:"node_id"`
	// Sequence is the reducer's per-node sequence number: strictly greater
	// for every later intent of the node.
	Sequence int64 `json:"sequence"`
	// RegistrationAttemptID groups the intents of one registration attempt
	// for the orchestrator's result aggregation.
	RegistrationAttemptID uuid.UUID `json:"registration_attempt_id"`
	// Attempt is the orchestrator's delivery attempt: 0 first, +1 per retry
	// of a failed backend.
	Attempt int `json:"attempt"`
	// Refresh marks an intent that re-applies a registration the node
	// already has rather than making one (the Consul register at the
	// node's ack, which only moves its health to passing): the orchestrator
	// routes it untracked, outside the attempt's result aggregation, like
	// any update. Omitted when false.
	Refresh bool `json:"refresh,omitempty"`

	// Update, set only from the protobuf form (intentwire.go), is a
	// postgres.update_registration's payload as fields, in place of
	// Payload: the hot record's payload is never JSON there. Read an
	// update's payload with PostgresUpdatePayload, which takes either.
	Update *PostgresUpdatePayload `json:"-"`
}

// Backend returns the backend an intent type belongs to: the part before the
// first dot ("postgres", "consul").
func Backend(intentType string) string {
	for i := 0; i < len(intentType); i++ {
		if intentType[i] == '.' {
			return intentType[:i]
		}
	}
	return intentType
}

// Intent types.
const (
	PostgresUpsert   = "postgres.upsert_registration"
	PostgresUpdate   = "postgres.update_registration"
	ConsulRegister   = "consul.register"
	ConsulDeregister = "consul.deregister"
)

// PostgresUpsertPayload is ModelPayloadPostgresUpsertRegistration.
type PostgresUpsertPayload struct {
	IntentType    string           `json:"intent_type"`
	CorrelationID uuid.UUID        `json:"correlation_id"`
	Record        ProjectionRecord `json:"record"`
}

// ProjectionRecord is ModelProjectionRecord; Data holds the projection
// columns that are merged into the row (spec 4.7).
type ProjectionRecord struct {
	EntityID     uuid.UUID      `json:"entity_id"`
	CurrentState string         `json:"current_state"`
	Domain       string         `json:"domain"`
	NodeType     string         `json:"node_type"`
	Data         ProjectionData `json:"data"`
}

// ProjectionData are the upsert's extra columns. Markers are written as null
// so a re-registration clears them (spec 12 #3).
type ProjectionData struct {
	NodeVersion              string            `json:"node_version"`
	Capabilities             json.RawMessage   `json:"capabilities"`
	ContractType             *string           `json:"contract_type"`
	IntentTypes              []string          `json:"intent_types"`
	Protocols                []string          `json:"protocols"`
	CapabilityTags           []string          `json:"capability_tags"`
	ContractVersion          *string           `json:"contract_version"`
	AckDeadline              *envelope.Time    `json:"ack_deadline"`
	LivenessDeadline         *envelope.Time    `json:"liveness_deadline"`
	LastHeartbeatAt          *envelope.Time    `json:"last_heartbeat_at"`
	AckTimeoutEmittedAt      *envelope.Time    `json:"ack_timeout_emitted_at"`
	LivenessTimeoutEmittedAt *envelope.Time    `json:"liveness_timeout_emitted_at"`
	LastAppliedEventID       uuid.UUID         `json:"last_applied_event_id"`
	RegisteredAt             envelope.Time     `json:"registered_at"`
	UpdatedAt                envelope.Time     `json:"updated_at"`
	CorrelationID            uuid.UUID         `json:"correlation_id"`
	NodeName                 *string           `json:"node_name"`
	Endpoints                map[string]string `json:"endpoints"`

	// IntrospectionExtras are the members of the node's introspection the
	// fleet does not know (a node newer than it): a JSON object, JSON path
	// relative to the payload → the member's value. Omitted when there are
	// none, so the records of reducers that predate it decode as before;
	// the projector writes {} for it then (an upsert replaces the extras).
	IntrospectionExtras json.RawMessage `json:"introspection_extras,omitempty"`

	// SubscribeTopics and PublishTopics are the topic names of the node's
	// event_bus declaration (the columns subscribe_topics and
	// publish_topics, JSON arrays of names), in the node's order without
	// repeats. Omitted when none; the projector then writes [].
	SubscribeTopics []string `json:"subscribe_topics,omitempty"`
	PublishTopics   []string `json:"publish_topics,omitempty"`
}

// PostgresUpdatePayload is ModelPayloadPostgresUpdateRegistration.
type PostgresUpdatePayload struct {
	IntentType    string           `json:"intent_type"`
	CorrelationID uuid.UUID        `json:"correlation_id"`
	EntityID      uuid.UUID        `json:"entity_id"`
	Domain        string           `json:"domain"`
	Updates       ProjectionUpdate `json:"updates"`
}

// ProjectionUpdate is the column set of an update. It is a superset of the
// Python ack and heartbeat update models (spec 2.11): every update carries the
// node's complete mutable state (state, deadlines, heartbeat, markers) plus
// the row identity (node type, attempt, registration time), so that updates
// commute. With the intent's sequence number as the guard, the projector can
// apply intents in any order, duplicated, and end with the row the in-order
// stream leaves: the newest sequence wins for the mutable columns, the newest
// upsert for the static ones, and an update that arrives before its upsert
// can create the row.
type ProjectionUpdate struct {
	CurrentState             string         `json:"current_state"`
	AckDeadline              *envelope.Time `json:"ack_deadline"`
	LivenessDeadline         *envelope.Time `json:"liveness_deadline"`
	LastHeartbeatAt          *envelope.Time `json:"last_heartbeat_at"`
	AckTimeoutEmittedAt      *envelope.Time `json:"ack_timeout_emitted_at"`
	LivenessTimeoutEmittedAt *envelope.Time `json:"liveness_timeout_emitted_at"`
	UpdatedAt                envelope.Time  `json:"updated_at"`

	NodeType           string        `json:"node_type"`
	RegisteredAt       envelope.Time `json:"registered_at"`
	LastAppliedEventID uuid.UUID     `json:"last_applied_event_id"`
}

// ConsulRegisterPayload is the historical ModelPayloadConsulRegister (spec
// 2.11, 4.8), plus the node's health endpoint for an HTTP check.
type ConsulRegisterPayload struct {
	IntentType     string          `json:"intent_type"`
	CorrelationID  uuid.UUID       `json:"correlation_id"`
	NodeID         *string         `json:"node_id"`
	ServiceID      string          `json:"service_id"`
	ServiceName    string          `json:"service_name"`
	Tags           []string        `json:"tags"`
	Address        *string         `json:"address"`
	Port           *int            `json:"port"`
	HealthCheck    *HealthCheck    `json:"health_check"`
	EventBusConfig json.RawMessage `json:"event_bus_config"`

	// Health is the status the fleet reports for the node in Consul's
	// catalog mode (the check the consul effect writes on the node's
	// service): HealthPassing once the node is ACTIVE, HealthWarning while
	// it awaits its ack. Omitted by reducers that predate it; read as
	// passing then. The agent mode ignores it.
	Health string `json:"health,omitempty"`
}

// The statuses of Health (Consul's check statuses).
const (
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
)

// HealthCheck is the Consul check registered with a service.
type HealthCheck struct {
	HTTP                           string `json:"http"`
	Interval                       string `json:"interval"`
	Timeout                        string `json:"timeout"`
	DeregisterCriticalServiceAfter string `json:"deregister_critical_service_after"`
}

// ConsulDeregisterPayload removes a node's service.
type ConsulDeregisterPayload struct {
	IntentType    string    `json:"intent_type"`
	CorrelationID uuid.UUID `json:"correlation_id"`
	NodeID        string    `json:"node_id"`
	ServiceID     string    `json:"service_id"`
}

// EffectResult is what an effect publishes for every intent it consumed
// (ModelBackendResult plus the intent's identity).
type EffectResult struct {
	IntentID              uuid.UUID `json:"intent_id"`
	IntentType            string    `json:"intent_type"`
	Backend               string    `json:"backend"`
	NodeID                uuid.UUID `json:"node_id"`
	CorrelationID         uuid.UUID `json:"correlation_id"`
	RegistrationAttemptID uuid.UUID `json:"registration_attempt_id"`
	Sequence              int64     `json:"sequence"`
	Attempt               int       `json:"attempt"`
	Success               bool      `json:"success"`
	// Stale is set when the effect skipped the intent because it had already
	// applied a newer one for the node; that counts as success.
	Stale      bool          `json:"stale"`
	Error      *string       `json:"error"`      // sanitized
	ErrorCode  *string       `json:"error_code"` // e.g. POSTGRES_CONNECTION_ERROR
	Retriable  bool          `json:"retriable"`
	DurationMS float64       `json:"duration_ms"`
	BackendID  string        `json:"backend_id"`
	Completed  envelope.Time `json:"completed_at"`
}

// Registration result statuses (spec 6.1 all_or_partial).
const (
	StatusSuccess = "success"
	StatusPartial = "partial"
	StatusFailed  = "failed"
)

// RegistrationResult is the payload of node-registration-result: the
// ModelOrchestratorOutput shape (spec 2.8) widened to two backends.
type RegistrationResult struct {
	CorrelationID         uuid.UUID      `json:"correlation_id"`
	NodeID                uuid.UUID      `json:"node_id"`
	RegistrationAttemptID uuid.UUID      `json:"registration_attempt_id"`
	Status                string         `json:"status"`
	PostgresApplied       bool           `json:"postgres_applied"`
	PostgresError         *string        `json:"postgres_error"`
	ConsulApplied         bool           `json:"consul_applied"`
	ConsulError           *string        `json:"consul_error"`
	IntentResults         []IntentResult `json:"intent_results"`
	Retries               map[string]int `json:"retries"`
	TotalExecutionTimeMS  float64        `json:"total_execution_time_ms"`
	EmittedAt             envelope.Time  `json:"emitted_at"`
}

// IntentResult is one entry of RegistrationResult.IntentResults.
type IntentResult struct {
	IntentKind      string  `json:"intent_kind"`
	Success         bool    `json:"success"`
	Error           *string `json:"error"`
	ExecutionTimeMS float64 `json:"execution_time_ms"`
}

// Aggregate applies spec 6.1's all_or_partial table to per-backend outcomes.
func Aggregate(ok map[string]bool) string {
	succeeded := 0
	for _, v := range ok {
		if v {
			succeeded++
		}
	}
	switch {
	case len(ok) > 0 && succeeded == len(ok):
		return StatusSuccess
	case succeeded > 0:
		return StatusPartial
	default:
		return StatusFailed
	}
}

// T converts a time to the wire type, truncated to microseconds as Python does.
func T(t time.Time) envelope.Time { return envelope.Time{Time: t.UTC().Truncate(time.Microsecond)} }

// TP is T for optional times.
func TP(t *time.Time) *envelope.Time {
	if t == nil {
		return nil
	}
	v := T(*t)
	return &v
}

// DecodeIntent decodes an intent (the JSON form's envelope payload) and
// checks the fields every consumer relies on. A consumer of an intent topic
// reads its records with DecodeIntentRecord, which takes both forms.
func DecodeIntent(b []byte) (*Intent, error) {
	var in Intent
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("intent: %w", err)
	}
	if err := checkIntent(&in); err != nil {
		return nil, err
	}
	return &in, nil
}
