package pipeline

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// NodeTopics is the value of a record on the compacted node-topics topic
// (topics.NodeTopics), keyed by node_id: the topics an ACTIVE node declares
// in its introspection's event_bus. The reducer writes it in the same
// transaction as the decision that changes it (a node becoming ACTIVE with
// topics, an update in place that changes them) and a tombstone when the
// node stops contributing (it leaves ACTIVE, or declares no topics any
// more). The orchestrator's topic catalog counts publishers and subscribers
// from the latest record of every node.
//
// Evolution: fields are only added; a reader ignores fields it does not know.
type NodeTopics struct {
	NodeID          uuid.UUID `json:"node_id"`
	NodeType        string    `json:"node_type"`
	SubscribeTopics []string  `json:"subscribe_topics"`
	PublishTopics   []string  `json:"publish_topics"`
	// Sequence is the reducer's sequence number of the node when the record
	// was written (informational: compaction keeps the latest per key).
	Sequence int64 `json:"sequence"`
}

// EncodeNodeTopics encodes a node-topics record value.
func EncodeNodeTopics(t NodeTopics) ([]byte, error) {
	if t.SubscribeTopics == nil {
		t.SubscribeTopics = []string{}
	}
	if t.PublishTopics == nil {
		t.PublishTopics = []string{}
	}
	return json.Marshal(t)
}

// DecodeNodeTopics decodes a node-topics record value. A nil or empty value
// is a tombstone and returns (nil, nil).
func DecodeNodeTopics(b []byte) (*NodeTopics, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var t NodeTopics
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("node topics: %w", err)
	}
	if t.NodeID == uuid.Nil {
		return nil, fmt.Errorf("node topics: field %q: missing", "node_id")
	}
	return &t, nil
}
