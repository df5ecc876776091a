package decide

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

// TriggerOperator is an operator command (pkg/operator): deregister or evict.
const TriggerOperator Trigger = "operator"

// Reasons of the operator decisions (docs/reducer.md, Decisions).
const (
	ReasonDeregistered  = "Deregistered by operator"
	ReasonEvicted       = "Evicted by operator"
	ReasonNotRegistered = "Not registered"
)

// Operator is an operator command as the decisions take it.
type Operator struct {
	CommandID uuid.UUID
	// CorrelationID is the command envelope's: the events it leads to
	// carry it.
	CorrelationID uuid.UUID
	// Evict is false for a deregister of NodeID, true for an evict of the
	// nodes in State for longer than OlderThan.
	Evict       bool
	NodeID      uuid.UUID
	State       State
	OlderThan   time.Duration
	Reason      string
	RequestedBy string
	// RequestedAt is when the operator asked (the requester's clock): the
	// command acts on the nodes as they were then, so a command delivered
	// late, or replayed, never undoes what happened since.
	RequestedAt time.Time
}

// ReasonStaleOperator: the node's state changed after the command was
// requested.
const ReasonStaleOperator = "Stale operator command"

// asOf is the time an operator command judges nodes at: when it was
// requested, or now when that is unknown or later.
func (op Operator) asOf(now time.Time) time.Time {
	if !op.RequestedAt.IsZero() && op.RequestedAt.Before(now) {
		return op.RequestedAt
	}
	return now
}

// Deregistrable reports whether a node in state s is registered, or being
// registered, in Consul: what an operator command can take out.
func Deregistrable(s State) bool {
	return s == Active || s == Accepted || s == AwaitingAck || s == AckReceived
}

// EvictDue reports whether an evict of op selects s at now: s is in the
// evicted state and has been since before OlderThan before the request (or
// now, when earlier).
func EvictDue(s *NodeState, op Operator, now time.Time) bool {
	return s != nil && s.State == op.State && Deregistrable(s.State) && s.LastStateChangeAt.Before(op.asOf(now).Add(-op.OlderThan))
}

// DecideOperator decides an operator command for one node: a deregister of
// it, or its part of an evict (the caller selects the nodes with EvictDue).
// A registered or registering node leaves Consul as at a shutdown: it moves
// to liveness_expired with its liveness timeout marker stamped, a
// NodeLivenessExpired event says so, and the projection update and the
// Consul deregister follow. The node is not banned: liveness_expired is
// retriable, and its next introspection registers it again. A node that is
// not registered (unknown, or in a terminal or timed-out state) is left as
// it is, and so is one whose state changed after the command was requested
// ("Stale operator command": a late or replayed command never undoes a
// later registration).
func DecideOperator(s *NodeState, op Operator, now time.Time) Decision {
	if s == nil {
		return Decision{Reason: "Unknown node"}
	}
	if !Deregistrable(s.State) {
		return Decision{Reason: ReasonNotRegistered, State: s}
	}
	if s.LastStateChangeAt.After(op.asOf(now)) {
		// The node registered again (or changed state) after the operator
		// looked: the command is about a registration that is gone.
		return Decision{Reason: ReasonStaleOperator, State: s}
	}
	ns := s.Clone()
	ns.State = LivenessExpired
	ns.NextResendAt = nil
	ns.LivenessTimeoutEmittedAt = ptr(now)
	ns.LastStateChangeAt = now
	reason := ReasonDeregistered
	if op.Evict {
		reason = ReasonEvicted
	}
	d := Decision{Emit: true, Reason: reason, State: ns}
	d.Events = []Event{{Kind: EventLivenessExpired, NodeID: s.NodeID, CorrelationID: op.CorrelationID, CausationID: op.CommandID,
		EmittedAt: now, LastHeartbeatAt: s.LastHeartbeatAt}}
	up := ns.nextIntent(IntentPostgresUpdate, target(s.NodeID))
	up.Update = &ProjectionUpdate{CurrentState: ptr(LivenessExpired), LivenessTimeoutEmittedAt: ns.LivenessTimeoutEmittedAt, UpdatedAt: now}
	d.Intents = []Intent{up, deregister(ns)}
	return d
}

// EvictOrder sorts the nodes an evict selects by node id, so that the
// decisions, and their records, come in the same order on every replay.
func EvictOrder(nodes []*NodeState) {
	slices.SortFunc(nodes, func(a, b *NodeState) int {
		return slices.Compare(a.NodeID[:], b.NodeID[:])
	})
}
