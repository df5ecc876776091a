package pipeline

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

// Snapshot is the value of a record on the compacted registration snapshot
// topic, keyed by the node id. It has every field of the Python
// ModelRegistrationSnapshot (spec 2.10), plus two the fleet needs:
//   - Consul: the node's Consul service as derived at registration (spec 4.8),
//     which the consul effect's anti-entropy compares with the catalog;
//   - ReducerState: the reducer's full state for the node, opaque to every
//     other reader, from which the reducer restores on start and rebalance.
//
// A tombstone (null value) removes the node.
type Snapshot struct {
	EntityID                 uuid.UUID       `json:"entity_id"`
	Domain                   string          `json:"domain"`
	CurrentState             string          `json:"current_state"`
	NodeType                 *string         `json:"node_type"`
	NodeName                 *string         `json:"node_name"`
	Capabilities             json.RawMessage `json:"capabilities"`
	LastStateChangeAt        envelope.Time   `json:"last_state_change_at"`
	SnapshotVersion          int64           `json:"snapshot_version"`
	SnapshotCreatedAt        envelope.Time   `json:"snapshot_created_at"`
	SchemaVersion            string          `json:"schema_version"`
	SourceProjectionSequence *int64          `json:"source_projection_sequence"`

	Consul       *ConsulRegisterPayload `json:"consul,omitempty"`
	ReducerState json.RawMessage        `json:"reducer_state,omitempty"`
}

// DecodeSnapshot decodes a snapshot record value. A nil or empty value is a
// tombstone and returns (nil, nil).
func DecodeSnapshot(b []byte) (*Snapshot, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if s.EntityID == uuid.Nil {
		return nil, fmt.Errorf("snapshot: field %q: missing", "entity_id")
	}
	if s.CurrentState == "" {
		return nil, fmt.Errorf("snapshot: field %q: missing", "current_state")
	}
	return &s, nil
}
