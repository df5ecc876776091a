// Package snapshot encodes the reducer's registration snapshot records and
// restores node states from them. A record (pipeline.Snapshot) carries the
// fields of the Python ModelRegistrationSnapshot (spec 2.10), the node's
// Consul derivation for the consul effect's anti-entropy, and the reducer's
// own state for the node (reducer_state), which is what the reducer restores
// from on start and on rebalance.
//
// The reducer, the projector's snapshot rebuild and the benchmark's seeding
// all write snapshots through Build, so the three cannot drift apart.
//
// reducer_state does not repeat what the record holds at its top level
// (the declared capabilities) nor what can be derived (the Consul service);
// Decode also reads the records written before it left them out.
package snapshot

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// SchemaVersion is the snapshot model version (spec 2.10).
const SchemaVersion = "1.0.0"

// ConsulPayload is the consul.register payload of a Consul derivation: what
// the reducer's register intent carries and what a snapshot's consul field
// holds.
func ConsulPayload(r *decide.ConsulRegistration, nodeID, corr uuid.UUID) pipeline.ConsulRegisterPayload {
	id := nodeID.String()
	p := pipeline.ConsulRegisterPayload{
		IntentType: pipeline.ConsulRegister, CorrelationID: corr, NodeID: &id,
		ServiceID: r.ServiceID, ServiceName: r.ServiceName, Tags: append([]string{}, r.Tags...),
		Address: r.Address, Port: r.Port, EventBusConfig: json.RawMessage("null"),
	}
	if r.HealthURL != nil {
		p.HealthCheck = &pipeline.HealthCheck{HTTP: *r.HealthURL, Interval: "10s", Timeout: "5s", DeregisterCriticalServiceAfter: "10m"}
	}
	return p
}

// Build returns the snapshot of st created at createdAt. Its
// source_projection_sequence is the state's sequence; a writer that knows the
// projection's may replace it.
func Build(st *decide.NodeState, createdAt time.Time) (*pipeline.Snapshot, error) {
	rs, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("snapshot: encode reducer state: %w", err)
	}
	nt := st.NodeType
	seq := st.Sequence
	c := ConsulPayload(st.ConsulRegistration(), st.NodeID, st.CorrelationID)
	return &pipeline.Snapshot{
		EntityID: st.NodeID, Domain: decide.Domain, CurrentState: string(st.State),
		NodeType: &nt, NodeName: st.NodeName, Capabilities: st.Capabilities,
		LastStateChangeAt: pipeline.T(st.LastStateChangeAt), SnapshotVersion: max(st.Sequence, 1),
		SnapshotCreatedAt: pipeline.T(createdAt), SchemaVersion: SchemaVersion,
		SourceProjectionSequence: &seq, Consul: &c, ReducerState: rs,
	}, nil
}

// Decode returns the node state a snapshot record value carries; a
// tombstone returns (nil, nil). Snapshots arrive from a topic other writers
// can reach, so a value that is not a consistent snapshot is an error, never
// a half-filled state.
//
// Restoring is a restart's critical path (every node the reducer owns, one
// record each), so Decode first tries a decoder that validates the record
// once and walks it without reflection; any record that decoder does not
// take as written by this package (escaped strings, unexpected keys or
// types, a missing field) goes to the encoding/json one, which is the
// reference: FuzzDecodeMatchesReference holds the two to the same result.
func Decode(value []byte) (*decide.NodeState, error) {
	if len(value) == 0 || string(value) == "null" {
		return nil, nil
	}
	if st, ok := decodeFast(value); ok {
		return st, nil
	}
	return decodeReference(value)
}

// decodeReference decodes with encoding/json.
func decodeReference(value []byte) (*decide.NodeState, error) {
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
	switch {
	case snap.EntityID == uuid.Nil:
		return nil, fmt.Errorf("snapshot: field %q: missing", "entity_id")
	case snap.CurrentState == "":
		return nil, fmt.Errorf("snapshot: field %q: missing", "current_state")
	case snap.ReducerState == nil:
		return nil, fmt.Errorf("snapshot of %s has no reducer_state", snap.EntityID)
	}
	st := snap.ReducerState
	if st.NodeID != snap.EntityID || !st.State.Valid() {
		return nil, fmt.Errorf("snapshot of %s: inconsistent reducer_state", snap.EntityID)
	}
	if !isNull(snap.Capabilities) { // a state without capabilities writes null
		st.Capabilities = snap.Capabilities
	}
	if st.MCPTool == nil {
		// Written before reducer_state kept the MCP tool name: the Consul
		// derivation's tags have it.
		var c struct {
			Tags []string `json:"tags"`
		}
		if json.Unmarshal(snap.Consul, &c) == nil {
			st.MCPTool = decide.MCPToolFromTags(c.Tags)
		}
	}
	return st, nil
}
