package decide

import (
	"bytes"
	"fmt"
	"time"
)

// Reasons of the introspection decisions added for restarts, updates in
// place and shutdowns (docs/reducer.md, Decisions).
const (
	ReasonRestarted  = "Node restarted, registration updated"
	ReasonUpdated    = "Registration updated"
	ReasonNoChange   = "No change"
	ReasonStale      = "Stale introspection"
	ReasonShutDown   = "Node shut down"
	ReasonShutDownNR = "Node shut down, not registered"
)

// SameDeclaredData reports whether in declares exactly what s stores of a
// node: type, name, version, endpoints, capabilities (raw JSON, as the node
// sent it), MCP tool, introspection extras, contract and topics (Declared). An introspection that does
// is an identical one: it changes nothing and writes nothing.
func SameDeclaredData(s *NodeState, in Introspection) bool {
	if s.NodeType != in.NodeType || s.NodeVersion != in.NodeVersion || !eqStrPtr(s.NodeName, in.NodeName) {
		return false
	}
	if !bytes.Equal(s.Capabilities, in.Capabilities) || !bytes.Equal(s.Extras, extras(in.Extras)) {
		return false
	}
	if !eqStrPtr(s.MCPTool, MCPToolOf(in)) || !s.Declared.Equal(in.Declared) {
		return false
	}
	e := EndpointsOf(in.Endpoints)
	if len(e) != len(s.Endpoints) {
		return false
	}
	for i := range e {
		if e[i] != s.Endpoints[i] {
			return false
		}
	}
	return true
}

func eqStrPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// staleIntrospection reports whether in is older than the latest
// introspection applied to s (both timestamps known): it must not roll the
// node back. An introspection stamped as the latest is a redelivery, left
// to the state's own row (an ACTIVE node compares its data, a rejected one
// is answered again, …).
func staleIntrospection(s *NodeState, in Introspection) bool {
	return s != nil && !s.LastIntrospectionAt.IsZero() && !in.Timestamp.IsZero() &&
		in.Timestamp.Before(s.LastIntrospectionAt)
}

// laterIntrospection is the state's LastIntrospectionAt after applying in:
// never earlier than it was.
func laterIntrospection(s *NodeState, in Introspection) time.Time {
	if s != nil && s.LastIntrospectionAt.After(in.Timestamp) {
		return s.LastIntrospectionAt
	}
	return in.Timestamp
}

// updateActive decides a non-shutdown introspection of an ACTIVE node: a
// restart (startup) or a change it announces (capability_change,
// health_change, request, heartbeat). The node stays ACTIVE — no new
// attempt, no accepted event to ack — and what it declares now replaces
// what it declared: a projection upsert of the full row (state active, the
// deadlines as they are) and a Consul register (an upsert: the service is
// never missing while the node lives). A startup also moves the liveness
// deadline to now + the liveness interval when that is later. An
// introspection declaring what the state holds is a no-op ("No change"),
// and so is one stamped as the latest applied with other data (a
// conflicting redelivery: "Stale introspection").
func updateActive(s *NodeState, in Introspection, now time.Time, p Params) Decision {
	if SameDeclaredData(s, in) {
		return Decision{Reason: ReasonNoChange, State: s}
	}
	if !s.LastIntrospectionAt.IsZero() && in.Timestamp.Equal(s.LastIntrospectionAt) {
		return Decision{Reason: ReasonStale, State: s}
	}
	if !Projectable(in.NodeType) {
		// The projection cannot hold the row: the node keeps its
		// registration as it was (it is not rejected while ACTIVE), as
		// the rejected rows say.
		return Decision{Reason: fmt.Sprintf("State %s blocks new registration", s.State), State: s}
	}
	ns := s.Clone()
	ns.NodeType, ns.NodeName, ns.NodeVersion = in.NodeType, in.NodeName, in.NodeVersion
	ns.Capabilities, ns.Endpoints, ns.MCPTool, ns.Extras = in.Capabilities, EndpointsOf(in.Endpoints), MCPToolOf(in), extras(in.Extras)
	ns.Declared = in.Declared
	ns.LastIntrospectionAt = laterIntrospection(s, in)
	reason := ReasonUpdated
	if in.Reason == ReasonStartup {
		reason = ReasonRestarted
		if dl := now.Add(p.LivenessInterval); ns.LivenessDeadline == nil || dl.After(*ns.LivenessDeadline) {
			ns.LivenessDeadline = ptr(dl)
		}
	}
	d := Decision{Emit: true, Reason: reason, State: ns}
	up := ns.nextIntent(IntentPostgresUpsert, target(ns.NodeID))
	up.Upsert = &ProjectionRecord{
		EntityID: ns.NodeID, Domain: Domain, CurrentState: Active, NodeType: ns.NodeType,
		NodeName: ns.NodeName, NodeVersion: ns.NodeVersion, Capabilities: ns.Capabilities, Endpoints: in.Endpoints,
		Extras: ns.Extras, Declared: ns.Declared, CapabilityTags: ns.CapabilityTags(),
		AckDeadline: ns.AckDeadline, LivenessDeadline: ns.LivenessDeadline, LastHeartbeatAt: ns.LastHeartbeatAt,
		LastAppliedEventID: attemptID(in), RegisteredAt: ns.RegisteredAt, UpdatedAt: now, CorrelationID: ns.CorrelationID,
	}
	d.Intents = []Intent{up}
	if s.NodeType != ns.NodeType {
		// The Consul service id names the type: the old service goes.
		d.Intents = append(d.Intents, deregister(s.withSequence(ns)))
	}
	reg := ns.nextIntent(IntentConsulRegister, "consul://service/"+serviceName(ns.NodeType))
	reg.Register = ns.ConsulRegistration()
	d.Intents = append(d.Intents, reg)
	return d
}

// withSequence returns a copy of s (its type, for the old Consul service)
// that takes its next sequence number from ns, then hands it back.
func (s *NodeState) withSequence(ns *NodeState) *NodeState {
	old := s.Clone()
	old.Sequence = ns.Sequence
	ns.Sequence++ // the deregister takes it
	return old
}

// decideShutdown decides an introspection with reason shutdown (a node's
// SIGTERM). A node that is registered or registering (active, accepted,
// awaiting_ack) leaves Consul at once: it moves to liveness_expired (the
// Python package's EnumRegistrationState has no deregistered) with its
// liveness timeout marker stamped (no expiry fires later), a
// NodeLivenessExpired event, the projection update and a Consul
// deregister; the reason "Node shut down" tells it from an expiry
// (onex_reducer_shutdowns_total). liveness_expired is retriable: the
// node's next startup registers it again. Any other node is not in Consul:
// nothing is written, but the shutdown's timestamp is kept (a late startup
// sent before it must not register the node).
func decideShutdown(s *NodeState, in Introspection, now time.Time) Decision {
	if s == nil {
		return Decision{Reason: ReasonShutDownNR}
	}
	if staleIntrospection(s, in) {
		return Decision{Reason: ReasonStale, State: s}
	}
	switch s.State {
	case Active, Accepted, AwaitingAck:
	default:
		if at := laterIntrospection(s, in); !at.Equal(s.LastIntrospectionAt) {
			ns := s.Clone()
			ns.LastIntrospectionAt = at
			return Decision{Emit: true, Reason: ReasonShutDownNR, State: ns}
		}
		return Decision{Reason: ReasonShutDownNR, State: s}
	}
	ns := s.Clone()
	ns.State = LivenessExpired
	ns.NextResendAt = nil
	ns.LivenessTimeoutEmittedAt = ptr(now)
	ns.LastStateChangeAt = now
	ns.LastIntrospectionAt = laterIntrospection(s, in)
	d := Decision{Emit: true, Reason: ReasonShutDown, State: ns}
	d.Events = []Event{{Kind: EventLivenessExpired, NodeID: s.NodeID, CorrelationID: handlerCorrelation(in), CausationID: in.CorrelationID,
		EmittedAt: now, LastHeartbeatAt: s.LastHeartbeatAt}}
	up := ns.nextIntent(IntentPostgresUpdate, target(s.NodeID))
	up.Update = &ProjectionUpdate{CurrentState: ptr(LivenessExpired), LivenessTimeoutEmittedAt: ns.LivenessTimeoutEmittedAt, UpdatedAt: now}
	d.Intents = []Intent{up, deregister(ns)}
	return d
}
