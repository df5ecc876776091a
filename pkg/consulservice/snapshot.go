package consulservice

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// reducerState is what the derivation reads of the reducer state a
// registration snapshot carries (the JSON of the reducer's NodeState, in
// the record's pipeline.HeaderReducerState header). The reducer's tests
// hold FromSnapshot to the reducer's own restore of its records
// (services/reducer/snapshot), so the two cannot drift apart.
type reducerState struct {
	NodeID        uuid.UUID          `json:"node_id"`
	State         registration.State `json:"state"`
	NodeType      string             `json:"node_type"`
	Endpoints     EndpointMap        `json:"endpoints"`
	MCPTool       *string            `json:"mcp_tool"`
	CorrelationID uuid.UUID          `json:"correlation_id"`
}

// FromSnapshot returns the consul.register payload of the node a
// registration snapshot record stands for, given the record's value and its
// pipeline.HeaderReducerState header (pipeline.SnapshotState; nil when the
// record has none): the derivation of the reducer state, with the health of
// its state, as the reducer's register intent carries it.
//
// A record written before the state moved into the header carries it in
// its value, under "reducer_state", next to the derivation of the time
// under "consul", whose tags give the MCP tool name of a state that does
// not keep it. A tombstone (empty value), and a record without any reducer
// state (not written by the fleet), return (nil, nil). Snapshots arrive
// from a topic other writers can reach, so a record whose state is not the
// node's, or not a registration state, is an error; of the state's fields
// only those the derivation reads are checked.
func FromSnapshot(value, state []byte) (*pipeline.ConsulRegisterPayload, error) {
	if len(value) == 0 || string(value) == "null" {
		return nil, nil
	}
	st, ok := fromSnapshotFast(value, state)
	if !ok {
		var err error
		if st, err = fromSnapshotReference(value, state); st == nil || err != nil {
			return nil, err
		}
	}
	r := Derive(st.NodeID, st.NodeType, st.Endpoints, st.MCPTool)
	r.Health = Health(st.State)
	p := Payload(r, st.NodeID, st.CorrelationID)
	return &p, nil
}

// fromSnapshotReference reads the reducer state of a record that is not a
// tombstone with encoding/json; nil without an error when it has none.
func fromSnapshotReference(value, state []byte) (*reducerState, error) {
	var snap struct {
		EntityID     uuid.UUID       `json:"entity_id"`
		CurrentState string          `json:"current_state"`
		Consul       json.RawMessage `json:"consul"`
		ReducerState *reducerState   `json:"reducer_state"`
	}
	if err := json.Unmarshal(value, &snap); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	legacy := len(state) == 0 // written before the state moved into the header
	if !legacy {
		if snap.ReducerState != nil {
			return nil, fmt.Errorf("snapshot of %s has a reducer state in its value and in its %s header", snap.EntityID, pipeline.HeaderReducerState)
		}
		snap.ReducerState = &reducerState{}
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
		return nil, nil
	}
	st := snap.ReducerState
	if st.NodeID != snap.EntityID || !st.State.Valid() {
		return nil, fmt.Errorf("snapshot of %s: inconsistent reducer state", snap.EntityID)
	}
	if legacy && st.MCPTool == nil {
		// Written before the state kept the MCP tool name: the derivation
		// of the time has it in its tags (a derivation that does not
		// decode has none, as the reducer's restore reads it).
		var c struct {
			Tags []string `json:"tags"`
		}
		if json.Unmarshal(snap.Consul, &c) == nil {
			st.MCPTool = MCPToolFromTags(c.Tags)
		}
	}
	return st, nil
}
