// Package decide holds the reducer's pure decision functions: given a node's
// state, one input and the time of the decision, it returns the node's new
// state, the lifecycle events to publish and the intents for the effects.
// Nothing here does I/O, reads a clock or draws a random number: ids that the
// outputs need are derived deterministically from the inputs (UUIDv5), so a
// replay of the same input stream produces the same bytes.
//
// The decisions follow the seed's documented two-way flow (spec 4.3 "docs"
// column): introspection → awaiting_ack + accepted event + Consul register
// intent; ack → active; ack and liveness timeouts really move the state.
package decide

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// State is a registration state (spec 2.1), serialized by its lower-case value.
type State string

// The eight registration states.
const (
	PendingRegistration State = "pending_registration"
	Accepted            State = "accepted"
	AwaitingAck         State = "awaiting_ack"
	Rejected            State = "rejected"
	AckTimedOut         State = "ack_timed_out"
	AckReceived         State = "ack_received"
	Active              State = "active"
	LivenessExpired     State = "liveness_expired"
)

// States lists every state in the spec's order.
var States = []State{PendingRegistration, Accepted, AwaitingAck, Rejected, AckTimedOut, AckReceived, Active, LivenessExpired}

// Valid reports whether s is one of the eight states.
func (s State) Valid() bool {
	for _, x := range States {
		if s == x {
			return true
		}
	}
	return false
}

// Retriable reports whether an introspection may start a new registration
// from s (documented behaviour: new, liveness_expired, rejected, ack_timed_out).
func (s State) Retriable() bool {
	return s == LivenessExpired || s == Rejected || s == AckTimedOut
}

// Terminal reports whether s has no outgoing transition of its own.
func (s State) Terminal() bool { return s == Rejected || s == LivenessExpired }

// NodeState is everything the reducer keeps about one node. It is persisted
// in the registration snapshot (see Snapshot) and restored on start.
type NodeState struct {
	NodeID uuid.UUID `json:"node_id"`
	State  State     `json:"state"`

	// What the latest accepted introspection said; intents need it.
	NodeType     string            `json:"node_type"`
	NodeName     *string           `json:"node_name"`
	NodeVersion  string            `json:"node_version"`
	Capabilities json.RawMessage   `json:"capabilities,omitempty"`
	Endpoints    map[string]string `json:"endpoints,omitempty"`
	Description  *string           `json:"description,omitempty"`
	// Consul is the node's Consul service as derived at registration
	// (spec 4.8); snapshots carry it for the consul effect's anti-entropy.
	Consul *ConsulRegistration `json:"consul,omitempty"`

	// The registration attempt in progress or last completed.
	AttemptID     uuid.UUID `json:"registration_attempt_id"`
	CorrelationID uuid.UUID `json:"correlation_id"`
	RegisteredAt  time.Time `json:"registered_at"`

	AckDeadline              *time.Time `json:"ack_deadline"`
	LivenessDeadline         *time.Time `json:"liveness_deadline"`
	LastHeartbeatAt          *time.Time `json:"last_heartbeat_at"`
	AckTimeoutEmittedAt      *time.Time `json:"ack_timeout_emitted_at"`
	LivenessTimeoutEmittedAt *time.Time `json:"liveness_timeout_emitted_at"`
	LastStateChangeAt        time.Time  `json:"last_state_change_at"`

	// Sequence is incremented for every intent emitted for this node and
	// carried by the intent, so the effects can refuse to move backwards.
	Sequence int64 `json:"sequence"`
}

// Clone returns a deep copy, so a decision never mutates its input.
func (s *NodeState) Clone() *NodeState {
	if s == nil {
		return nil
	}
	c := *s
	if s.Capabilities != nil {
		c.Capabilities = append(json.RawMessage(nil), s.Capabilities...)
	}
	if s.Endpoints != nil {
		c.Endpoints = make(map[string]string, len(s.Endpoints))
		for k, v := range s.Endpoints {
			c.Endpoints[k] = v
		}
	}
	if s.Consul != nil {
		cr := *s.Consul
		cr.Tags = append([]string(nil), s.Consul.Tags...)
		c.Consul = &cr
	}
	c.NodeName = clonePtr(s.NodeName)
	c.Description = clonePtr(s.Description)
	c.AckDeadline = clonePtr(s.AckDeadline)
	c.LivenessDeadline = clonePtr(s.LivenessDeadline)
	c.LastHeartbeatAt = clonePtr(s.LastHeartbeatAt)
	c.AckTimeoutEmittedAt = clonePtr(s.AckTimeoutEmittedAt)
	c.LivenessTimeoutEmittedAt = clonePtr(s.LivenessTimeoutEmittedAt)
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Params are the reducer's tunables (spec 4.2, documented defaults).
type Params struct {
	AckTimeout       time.Duration // ack deadline after acceptance (30 s)
	LivenessInterval time.Duration // liveness deadline after activation (60 s)
	LivenessWindow   time.Duration // deadline extension per heartbeat (90 s)
	// Mass-expiry protection: hold expirations when more than MassExpiryShare
	// of a partition's ACTIVE nodes would expire within one liveness window
	// and the partition has at least MassExpiryMinActive ACTIVE nodes.
	MassExpiryShare     float64
	MassExpiryMinActive int
}

// DefaultParams are the documented defaults.
func DefaultParams() Params {
	return Params{
		AckTimeout:          30 * time.Second,
		LivenessInterval:    60 * time.Second,
		LivenessWindow:      90 * time.Second,
		MassExpiryShare:     0.30,
		MassExpiryMinActive: 20,
	}
}
