// Package snapshot rebuilds the compacted registration snapshot topic from
// the PostgreSQL projection, read through the registry API: one record per
// node, keyed by node id, as the reducer writes it (services/reducer/snapshot):
// its value a pipeline.Snapshot (the bare ModelRegistrationSnapshot), its
// x-onex-reducer-state header (pipeline.HeaderReducerState) the reducer
// state the reducer restores from (services/reducer/decide.NodeState) and
// the consul effect derives the node's Consul service from (spec 4.8).
//
// The projection lags the reducer, so a rebuilt snapshot can be older than
// the one on the topic. Rebuild therefore skips every node whose snapshot on
// the topic is at least as new (by reducer sequence) unless forced: a rebuild
// while the reducer runs never moves a node's restored state backwards.
//
// It is `onexctl snapshots rebuild` and lives with onexctl, a client of both
// services: it reads the projector's API and writes the reducer's record
// with the reducer's own encoder, and services never import each other.
package snapshot

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/snapshot"
)

// SchemaVersion is the snapshot model version (spec 2.10).
const SchemaVersion = snapshot.SchemaVersion

func stateName(s registryv1.RegistrationState) decide.State {
	n := registryv1.RegistrationState_name[int32(s)]
	return decide.State(strings.ToLower(strings.TrimPrefix(n, "REGISTRATION_STATE_")))
}

func tp(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime().UTC()
	return &v
}

// mcp reads declared_capabilities.mcp (spec 2.2) for the Consul tags.
func mcp(caps json.RawMessage) (expose bool, tool *string) {
	var c struct {
		MCP *struct {
			Expose   bool    `json:"expose"`
			ToolName *string `json:"tool_name"`
		} `json:"mcp"`
	}
	if json.Unmarshal(caps, &c) != nil || c.MCP == nil {
		return false, nil
	}
	return c.MCP.Expose, c.MCP.ToolName
}

// State returns the reducer state of a projection row.
//
// Sequence is the row's sequence plus one: the reducer also numbers its
// Consul intents, and the Consul intent of a decision directly follows its
// postgres intent, so the consul effect may have seen one more than the
// projection. Starting above it keeps every later intent newer for both
// effects. Fields the projection does not keep (the node's description)
// stay empty; the MCP tool name then falls back to the service name.
func State(n *registryv1.Node) (*decide.NodeState, error) {
	id, err := uuid.Parse(n.GetNodeId())
	if err != nil {
		return nil, fmt.Errorf("snapshot: node_id %q: not a UUID", n.GetNodeId())
	}
	st := stateName(n.GetState())
	if !st.Valid() {
		return nil, fmt.Errorf("snapshot: node %s: state %v is not a registration state", id, n.GetState())
	}
	attempt, err := uuid.Parse(n.GetRegistrationAttemptId())
	if err != nil {
		return nil, fmt.Errorf("snapshot: node %s: registration_attempt_id: not a UUID", id)
	}
	var corr uuid.UUID
	if c := n.GetCorrelationId(); c != "" {
		if corr, err = uuid.Parse(c); err != nil {
			return nil, fmt.Errorf("snapshot: node %s: correlation_id: not a UUID", id)
		}
	}
	caps := json.RawMessage(n.GetCapabilitiesJson())
	if len(caps) == 0 || !json.Valid(caps) {
		caps = json.RawMessage(`{}`)
	}
	expose, tool := mcp(caps)
	ns := &decide.NodeState{
		NodeID: id, State: st, NodeType: n.GetNodeType(), NodeName: n.NodeName, NodeVersion: n.GetNodeVersion(),
		Capabilities: caps, Endpoints: decide.EndpointsOf(n.GetEndpoints()),
		MCPTool:   decide.MCPToolOf(decide.Introspection{NodeType: n.GetNodeType(), MCPExpose: expose, MCPToolName: tool}),
		AttemptID: attempt, CorrelationID: corr, RegisteredAt: n.GetRegisteredAt().AsTime().UTC(),
		AckDeadline: tp(n.GetAckDeadline()), LivenessDeadline: tp(n.GetLivenessDeadline()),
		LastHeartbeatAt: tp(n.GetLastHeartbeatAt()), AckTimeoutEmittedAt: tp(n.GetAckTimeoutEmittedAt()),
		LivenessTimeoutEmittedAt: tp(n.GetLivenessTimeoutEmittedAt()), LastStateChangeAt: n.GetUpdatedAt().AsTime().UTC(),
		Sequence: n.GetSequence() + 1,
	}
	ns.Declared = declared(n, ns.MCPTool != nil)
	if x := json.RawMessage(n.GetIntrospectionExtrasJson()); len(x) > 2 && x[0] == '{' && json.Valid(x) {
		ns.Extras = x // "{}" (none) stays nil, as the reducer keeps it
	}
	return ns, nil
}

// declared recovers what the node declared (decide.Declared) from its row:
// the contract and topic columns as they are, and its capability tags
// without the ones the reducer derives (node-type:, and the MCP tags of a
// node with an MCP tool), which it derives again.
func declared(n *registryv1.Node, mcpTool bool) *decide.Declared {
	in := decide.DeclaredInput{
		HasContract: n.ContractType != nil || n.ContractVersion != nil, ContractType: n.GetContractType(),
		ContractVersion: n.GetContractVersion(), IntentTypes: n.GetIntentTypes(), Protocols: n.GetProtocols(),
		SubscribeTopics: n.GetSubscribeTopics(), PublishTopics: n.GetPublishTopics(),
	}
	for _, t := range n.GetCapabilityTags() {
		derived := strings.HasPrefix(t, "node-type:") ||
			mcpTool && (t == "mcp-enabled" || strings.HasPrefix(t, "mcp-tool:"))
		if !derived {
			in.CapabilityTags = append(in.CapabilityTags, t)
		}
	}
	return decide.NewDeclared(in)
}

// FromNode builds the snapshot (the record value) of a projection row,
// created at createdAt.
func FromNode(n *registryv1.Node, createdAt time.Time) (*pipeline.Snapshot, error) {
	st, err := State(n)
	if err != nil {
		return nil, err
	}
	return fromState(n, st, createdAt)
}

// Record returns the snapshot record of a projection row, created at
// createdAt: its value (FromNode) and its reducer state header (State).
func Record(n *registryv1.Node, createdAt time.Time) (snapshot.Record, error) {
	st, err := State(n)
	if err != nil {
		return snapshot.Record{}, err
	}
	s, err := fromState(n, st, createdAt)
	if err != nil {
		return snapshot.Record{}, err
	}
	v, err := json.Marshal(s)
	if err != nil {
		return snapshot.Record{}, fmt.Errorf("snapshot: node %s: %w", st.NodeID, err)
	}
	rs, err := snapshot.EncodeState(st)
	if err != nil {
		return snapshot.Record{}, err
	}
	return snapshot.Record{Value: v, State: rs}, nil
}

func fromState(n *registryv1.Node, st *decide.NodeState, createdAt time.Time) (*pipeline.Snapshot, error) {
	snap, err := snapshot.Build(st, createdAt)
	if err != nil {
		return nil, err
	}
	// The row's own sequence and domain, not the reducer's.
	src := n.GetSequence()
	snap.SourceProjectionSequence = &src
	if d := n.GetDomain(); d != "" {
		snap.Domain = d
	}
	return snap, nil
}

// Sequence returns the reducer sequence a snapshot record stands for, given
// its value and its pipeline.HeaderReducerState header (nil if it has none):
// the reducer state's sequence (from the header, or from the value's
// reducer_state in a record written before the header), else its
// source_projection_sequence; ok is false for a tombstone or a value that
// is not a snapshot.
func Sequence(value, state []byte) (seq int64, ok bool) {
	s, err := pipeline.DecodeSnapshot(value)
	if err != nil || s == nil {
		return 0, false
	}
	if len(state) == 0 {
		var legacy struct {
			ReducerState json.RawMessage `json:"reducer_state"`
		}
		if json.Unmarshal(value, &legacy) == nil {
			state = legacy.ReducerState
		}
	}
	if len(state) > 0 {
		var rs struct {
			Sequence *int64 `json:"sequence"`
		}
		if json.Unmarshal(state, &rs) == nil && rs.Sequence != nil {
			return *rs.Sequence, true
		}
	}
	if s.SourceProjectionSequence != nil {
		return *s.SourceProjectionSequence, true
	}
	return 0, true
}
