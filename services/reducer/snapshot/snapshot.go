// Package snapshot encodes the reducer's registration snapshot records and
// restores node states from them. A record has two parts:
//
//   - its value, exactly a Python ModelRegistrationSnapshot (spec 2.10,
//     extra="forbid"; pipeline.Snapshot): its fields in the model's order
//     and nothing else, so Python consumers of the topic validate it;
//   - its pipeline.HeaderReducerState header (x-onex-reducer-state), the
//     reducer's own state for the node (the JSON of decide.NodeState), which
//     is what the reducer restores from on start and on rebalance, and from
//     which the consul effect derives the node's Consul service
//     (ConsulOf, pkg/consulservice) for its anti-entropy.
//
// Both are in one record, so compaction keeps them together, and a
// tombstone (empty value) removes the node.
//
// The reducer, onexctl's snapshot rebuild and the benchmark's seeding all
// write snapshots through this package (Encode, or Build and
// EncodeState), so the three cannot drift apart.
//
// The reducer state does not repeat what the value holds (the declared
// capabilities) nor what can be derived (the Consul service). It carries
// next_resend_at (the attempt's next accepted resend) only while the node
// awaits its ack; a record written before the reducer resent has none, and
// its attempt's first resend is then due at once (decide.NextResend). It
// carries introspection_extras (the unknown members of the node's latest
// accepted introspection, decide.NodeState.Extras) only when there are
// some; a record written before the reducer kept them has none.
//
// Records written before the state moved into the header carry it in the
// value instead, under "reducer_state", next to the Consul derivation under
// "consul" (older ones also repeat the capabilities and the derivation
// inside reducer_state): Decode still restores from them.
package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/consulservice"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// SchemaVersion is the snapshot model version (spec 2.10).
const SchemaVersion = "1.0.0"

// ConsulPayload is the consul.register payload of a Consul derivation: what
// the reducer's register intent carries, and what the consul effect derives
// from a snapshot's reducer state (ConsulOf). It is consulservice.Payload.
func ConsulPayload(r *decide.ConsulRegistration, nodeID, corr uuid.UUID) pipeline.ConsulRegisterPayload {
	return consulservice.Payload(r, nodeID, corr)
}

// Build returns the record value of st's snapshot created at createdAt: the
// ModelRegistrationSnapshot. Its source_projection_sequence is the state's
// sequence; a writer that knows the projection's may replace it. The
// record's reducer state header is EncodeState(st).
func Build(st *decide.NodeState, createdAt time.Time) (*pipeline.Snapshot, error) {
	nt := st.NodeType
	return &pipeline.Snapshot{
		EntityID: st.NodeID, Domain: decide.Domain, CurrentState: string(st.State),
		NodeType: &nt, NodeName: modelNodeName(st.NodeName), Capabilities: st.Capabilities,
		LastStateChangeAt: pipeline.T(st.LastStateChangeAt), SnapshotVersion: max(st.Sequence, 1),
		SnapshotCreatedAt: pipeline.T(createdAt), SchemaVersion: SchemaVersion,
		SourceProjectionSequence: sourceSequence(st.Sequence),
	}, nil
}

// maxNodeName is the model's node_name max_length, in characters (Unicode
// code points, as Python counts them).
const maxNodeName = 256

// modelNodeName returns name cut to the model's max_length: an introspection
// may carry a longer name (its model has no limit), the snapshot model would
// refuse it. The reducer state keeps the whole name. An invalid UTF-8 byte
// counts as one character, the U+FFFD encoding/json writes for it.
func modelNodeName(name *string) *string {
	if name == nil || len(*name) <= maxNodeName {
		return name
	}
	n := 0
	for i := range *name {
		if n == maxNodeName {
			cut := (*name)[:i]
			return &cut
		}
		n++
	}
	return name
}

// sourceSequence is the model's source_projection_sequence (ge=0, or null)
// for a state's sequence, which the reducer never lets go below 0.
func sourceSequence(seq int64) *int64 {
	if seq < 0 {
		return nil
	}
	return &seq
}

// Record is one snapshot record as the fleet writes it.
type Record struct {
	// Value is the record value: the ModelRegistrationSnapshot.
	Value []byte
	// State is the value of the record's pipeline.HeaderReducerState
	// header: the reducer state for the node.
	State []byte
}

// Headers returns the record headers that carry r's reducer state.
func (r Record) Headers() []sarama.RecordHeader {
	return []sarama.RecordHeader{{Key: []byte(pipeline.HeaderReducerState), Value: r.State}}
}

// Decode returns the node state a snapshot record carries, given its value
// and its pipeline.HeaderReducerState header (pipeline.SnapshotState; nil
// when the record has none, as the records written before the header did:
// their value carries the state). An empty value is a tombstone and returns
// (nil, nil), whatever the header. Snapshots arrive from a topic other
// writers can reach, so a record that is not a consistent snapshot is an
// error, never a half-filled state.
//
// Restoring is a restart's critical path (every node the reducer owns, one
// record each), so Decode first tries a decoder that validates the record
// once and walks it without reflection; any record that decoder does not
// take as written by this package (escaped strings, unexpected keys or
// types, a missing field) goes to the encoding/json one, which is the
// reference: FuzzDecodeMatchesReference holds the two to the same result.
func Decode(value, state []byte) (*decide.NodeState, error) {
	if len(value) == 0 || string(value) == "null" {
		return nil, nil
	}
	if st, ok := decodeFast(value, state); ok {
		return st, nil
	}
	return decodeReference(value, state)
}

// ConsulOf returns the Consul registration (the consul.register payload the
// reducer's register intent carries) of the node a snapshot record stands
// for, derived from the record's reducer state as the reducer derives it. A
// tombstone, and a record that carries no reducer state at all (not written
// by the fleet), return (nil, nil); a reducer state that is not the node's
// is an error. It is consulservice.FromSnapshot, which the consul effect
// reads the topic with: consul_test.go holds it to Decode's states.
func ConsulOf(value, state []byte) (*pipeline.ConsulRegisterPayload, error) {
	return consulservice.FromSnapshot(value, state)
}

var errNoState = errors.New("no reducer state (no " + pipeline.HeaderReducerState + " header, no reducer_state)")

// decodeReference decodes with encoding/json.
func decodeReference(value, state []byte) (*decide.NodeState, error) {
	var snap struct {
		EntityID     uuid.UUID         `json:"entity_id"`
		CurrentState string            `json:"current_state"`
		Capabilities json.RawMessage   `json:"capabilities"`
		Consul       json.RawMessage   `json:"consul"`
		ReducerState *decide.NodeState `json:"reducer_state"`
	}
	if err := json.Unmarshal(value, &snap); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	legacy := len(state) == 0 // written before the state moved into the header
	if !legacy {
		if snap.ReducerState != nil {
			return nil, fmt.Errorf("snapshot of %s has a reducer state in its value and in its %s header", snap.EntityID, pipeline.HeaderReducerState)
		}
		snap.ReducerState = &decide.NodeState{}
		if err := json.Unmarshal(state, snap.ReducerState); err != nil {
			return nil, fmt.Errorf("snapshot of %s: header %s: %w", snap.EntityID, pipeline.HeaderReducerState, err)
		}
	}
	switch {
	case snap.EntityID == uuid.Nil:
		return nil, fmt.Errorf("snapshot: field %q: missing", "entity_id")
	case snap.CurrentState == "":
		return nil, fmt.Errorf("snapshot: field %q: missing", "current_state")
	case snap.ReducerState == nil:
		return nil, fmt.Errorf("snapshot of %s: %w", snap.EntityID, errNoState)
	}
	st := snap.ReducerState
	if st.NodeID != snap.EntityID || !st.State.Valid() {
		return nil, fmt.Errorf("snapshot of %s: inconsistent reducer state", snap.EntityID)
	}
	if !isNull(snap.Capabilities) { // a state without capabilities writes null
		st.Capabilities = snap.Capabilities
	}
	if legacy && st.MCPTool == nil {
		// Written before reducer_state kept the MCP tool name: the Consul
		// derivation's tags have it.
		var c struct {
			Tags []string `json:"tags"`
		}
		if json.Unmarshal(snap.Consul, &c) == nil {
			st.MCPTool = consulservice.MCPToolFromTags(c.Tags)
		}
	}
	return st, nil
}
