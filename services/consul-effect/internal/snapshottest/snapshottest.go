// Package snapshottest writes registration snapshot records for the consul
// effect's tests, in the reducer's layout: the bare ModelRegistrationSnapshot
// as value, the reducer's state for the node (the JSON of the reducer's
// NodeState) as the pipeline.HeaderReducerState header. The consul effect
// does not import the reducer (services never import each other); the
// reducer's own tests hold consulservice.FromSnapshot, which reads these
// records, to the records the reducer writes.
package snapshottest

import (
	"encoding/json"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// Node is what a record says about a node.
type Node struct {
	ID       uuid.UUID
	State    string
	Sequence int64
	// NodeType defaults to effect.
	NodeType     string
	Endpoints    map[string]string
	Capabilities json.RawMessage
	// CorrelationID of the node's registration attempt; random when nil.
	CorrelationID uuid.UUID
}

// state is the reducer state's JSON as the reducer writes it (the fields
// of its NodeState a node of these tests has).
type state struct {
	NodeID                   uuid.UUID         `json:"node_id"`
	State                    string            `json:"state"`
	NodeType                 string            `json:"node_type"`
	NodeName                 *string           `json:"node_name"`
	NodeVersion              string            `json:"node_version"`
	Endpoints                map[string]string `json:"endpoints,omitempty"`
	AttemptID                uuid.UUID         `json:"registration_attempt_id"`
	CorrelationID            uuid.UUID         `json:"correlation_id"`
	RegisteredAt             time.Time         `json:"registered_at"`
	AckDeadline              *time.Time        `json:"ack_deadline"`
	LivenessDeadline         *time.Time        `json:"liveness_deadline"`
	LastHeartbeatAt          *time.Time        `json:"last_heartbeat_at"`
	AckTimeoutEmittedAt      *time.Time        `json:"ack_timeout_emitted_at"`
	LivenessTimeoutEmittedAt *time.Time        `json:"liveness_timeout_emitted_at"`
	LastStateChangeAt        time.Time         `json:"last_state_change_at"`
	Sequence                 int64             `json:"sequence"`
}

// Record returns n's snapshot record created at now: its value and its
// reducer state header.
func Record(n Node, now time.Time) (value, header []byte, err error) {
	now = now.UTC()
	if n.NodeType == "" {
		n.NodeType = "effect"
	}
	if n.CorrelationID == uuid.Nil {
		n.CorrelationID = uuid.New()
	}
	seq := max(n.Sequence, 0)
	value, err = json.Marshal(pipeline.Snapshot{
		EntityID: n.ID, Domain: "registration", CurrentState: n.State, NodeType: &n.NodeType, Capabilities: n.Capabilities,
		LastStateChangeAt: pipeline.T(now), SnapshotVersion: max(n.Sequence, 1), SnapshotCreatedAt: pipeline.T(now),
		SchemaVersion: "1.0.0", SourceProjectionSequence: &seq,
	})
	if err != nil {
		return nil, nil, err
	}
	header, err = json.Marshal(state{NodeID: n.ID, State: n.State, NodeType: n.NodeType, NodeVersion: "1.0.0", Endpoints: n.Endpoints,
		AttemptID: uuid.New(), CorrelationID: n.CorrelationID, RegisteredAt: now, LastStateChangeAt: now, Sequence: n.Sequence})
	if err != nil {
		return nil, nil, err
	}
	return value, header, nil
}

// Headers returns the record headers that carry a reducer state header.
func Headers(header []byte) []sarama.RecordHeader {
	return []sarama.RecordHeader{{Key: []byte(pipeline.HeaderReducerState), Value: header}}
}
