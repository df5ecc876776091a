package decide

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/consulservice"
)

// Domain is the projection domain of every registration row.
const Domain = "registration"

func target(nodeID uuid.UUID) string { return "postgres://node_registrations/" + nodeID.String() }

// attemptID derives the registration attempt id from the introspection, so a
// redelivered introspection yields the same attempt (and the same envelope
// ids downstream) instead of a second one.
func attemptID(in Introspection) uuid.UUID {
	return uuid.NewSHA1(in.CorrelationID, []byte("registration_attempt:"+in.NodeID.String()))
}

// intentID is unique per node and sequence number.
func intentID(nodeID uuid.UUID, seq int64) uuid.UUID {
	return uuid.NewSHA1(nodeID, []byte("intent:"+strconv.FormatInt(seq, 10)))
}

func (s *NodeState) nextIntent(t IntentType, tgt string) Intent {
	s.Sequence++
	return Intent{
		ID: intentID(s.NodeID, s.Sequence), Type: t, Target: tgt, NodeID: s.NodeID,
		CorrelationID: s.CorrelationID, AttemptID: s.AttemptID, Sequence: s.Sequence,
	}
}

func ptr[T any](v T) *T { return &v }

// extras is an introspection's unknown members as the state keeps them: nil
// when there are none, so an empty object costs a state nothing.
func extras(x json.RawMessage) json.RawMessage {
	if len(x) == 0 || string(x) == "{}" || string(x) == "null" {
		return nil
	}
	return x
}

// ProjectionNodeTypes are the node types the registry registers: the
// projection's valid_node_type check (migrations/000001, spec 5.2) allows
// only these. EnumNodeKind has a fifth, runtime_host, a valid introspection
// the registry cannot project: DecideIntrospection rejects it.
var ProjectionNodeTypes = []string{"effect", "compute", "reducer", "orchestrator"}

// Projectable reports whether the registry can register a node of nodeType
// (one of ProjectionNodeTypes).
func Projectable(nodeType string) bool {
	for _, t := range ProjectionNodeTypes {
		if nodeType == t {
			return true
		}
	}
	return false
}

// MaxRejectionReason is the longest rejection_reason the Python model
// accepts (ModelNodeRegistrationRejected, max_length 1024 characters).
const MaxRejectionReason = 1024

// RejectionReason is the rejection_reason of an introspection of a node type
// the registry does not register: what the node reads in its rejected event.
func RejectionReason(nodeType string) string {
	r := fmt.Sprintf("node type %s is not registered by this registry: it is not projectable "+
		"(the registration projection accepts only %s nodes)", nodeType, strings.Join(ProjectionNodeTypes, ", "))
	n := 0
	for i := range r { // characters, as Python counts them
		if n == MaxRejectionReason {
			return r[:i]
		}
		n++
	}
	return r
}

// DecideIntrospection decides a node's introspection (spec 4.3, documented
// column). A new node, or one in a retriable state (liveness_expired,
// rejected, ack_timed_out), starts a registration attempt: it moves to
// awaiting_ack with an ack deadline, the Initiated and Accepted events are
// emitted, and the projection upsert and Consul register intents are issued.
// Every other state blocks a new registration (no-op), whatever the
// introspection's node type.
//
// An introspection that would start a registration but whose node type the
// projection cannot hold (not Projectable: runtime_host) is rejected
// instead: the node moves to rejected and the Rejected event tells it why;
// nothing is written to the projection or to Consul (reject).
//
// Restarts, updates and shutdowns (docs/reducer.md, Decisions): an
// introspection older than the latest applied one (payload timestamps) is
// stale and changes nothing; one with reason shutdown takes a registered
// or registering node out of Consul (decideShutdown); any other from an
// ACTIVE node updates it in place when its data differ (updateActive).
func DecideIntrospection(s *NodeState, in Introspection, now time.Time, p Params) Decision {
	if in.Reason == ReasonShutdown {
		return decideShutdown(s, in, now)
	}
	if staleIntrospection(s, in) {
		return Decision{Reason: ReasonStale, State: s}
	}
	if s != nil && s.State == Active {
		return updateActive(s, in, now, p)
	}
	if s != nil && (s.State == AwaitingAck || s.State == Accepted) && Projectable(in.NodeType) && !SameDeclaredData(s, in) &&
		(s.LastIntrospectionAt.IsZero() || !in.Timestamp.Equal(s.LastIntrospectionAt)) {
		// The node restarted (or changed) before it acked: the attempt in
		// flight describes a process that is gone. A new attempt with the
		// new data replaces it (below); the new process acks its own.
		return register(s, in, now, p, ReasonReregistered)
	}
	if s != nil && !s.State.Retriable() {
		if s.State == AwaitingAck {
			// The node announces itself again while the registry waits
			// for its ack: it may have missed its accepted event.
			if p.resends() && resendDue(s, now) {
				ns := s.Clone()
				d := Decision{Emit: true, Reason: "Waiting for ack, accepted re-sent", State: ns}
				d.Events = []Event{resend(ns, now, in.CorrelationID, TriggerIntrospection, p)}
				return d
			}
			return Decision{Reason: "Waiting for ack", State: s}
		}
		return Decision{Reason: fmt.Sprintf("State %s blocks new registration", s.State), State: s}
	}
	if !Projectable(in.NodeType) {
		return reject(s, in, handlerCorrelation(in), now)
	}
	return register(s, in, now, p, "Registration initiated")
}

// ReasonReregistered: a node awaiting its ack introspected with other data.
const ReasonReregistered = "Registration replaced while awaiting ack"

// register starts a registration attempt for in: the node moves to
// awaiting_ack, the Initiated and Accepted events are emitted, and the
// projection upsert and Consul register intents issued (preceded by the
// deregister of the old Consul service when a registering node's type
// changed: the service id names the type).
func register(s *NodeState, in Introspection, now time.Time, p Params, reason string) Decision {
	corr := handlerCorrelation(in)
	ns := &NodeState{
		NodeID: in.NodeID, State: AwaitingAck,
		NodeType: in.NodeType, NodeName: in.NodeName, NodeVersion: in.NodeVersion,
		Capabilities: in.Capabilities, Endpoints: EndpointsOf(in.Endpoints), MCPTool: MCPToolOf(in), Extras: extras(in.Extras),
		Declared: in.Declared, AttemptID: attemptID(in), CorrelationID: corr, RegisteredAt: now,
		AckDeadline: ptr(now.Add(p.AckTimeout)), LastStateChangeAt: now,
		LastIntrospectionAt: laterIntrospection(s, in),
	}
	ns.NextResendAt = ns.AckDeadline // resends disabled: none before the deadline
	if p.resends() {
		ns.NextResendAt = ptr(now.Add(p.AcceptedResendInitial))
	}
	if s != nil {
		// registered_at is the first registration (spec 10.5 suite 5), and the
		// sequence continues so effects never see it go back. A node
		// rejected before it ever registered has no registered_at.
		if !s.RegisteredAt.IsZero() {
			ns.RegisteredAt = s.RegisteredAt
		}
		ns.Sequence = s.Sequence
	}
	d := Decision{Emit: true, Reason: reason, State: ns}
	d.Events = []Event{
		{Kind: EventInitiated, NodeID: in.NodeID, CorrelationID: corr, CausationID: in.CorrelationID, EmittedAt: now, AttemptID: ns.AttemptID},
		{Kind: EventAccepted, NodeID: in.NodeID, CorrelationID: corr, CausationID: in.CorrelationID, EmittedAt: now, AckDeadline: *ns.AckDeadline},
	}
	up := ns.nextIntent(IntentPostgresUpsert, target(in.NodeID))
	up.Upsert = &ProjectionRecord{
		EntityID: in.NodeID, Domain: Domain, CurrentState: AwaitingAck, NodeType: in.NodeType,
		NodeName: in.NodeName, NodeVersion: in.NodeVersion, Capabilities: in.Capabilities, Endpoints: in.Endpoints,
		Extras: ns.Extras, Declared: ns.Declared, CapabilityTags: ns.CapabilityTags(),
		AckDeadline: ns.AckDeadline, LastAppliedEventID: ns.AttemptID,
		RegisteredAt: ns.RegisteredAt, UpdatedAt: now, CorrelationID: corr,
	}
	d.Intents = []Intent{up}
	if s != nil && (s.State == AwaitingAck || s.State == Accepted) && s.NodeType != ns.NodeType {
		d.Intents = append(d.Intents, deregister(s.withSequence(ns)))
	}
	reg := ns.nextIntent(IntentConsulRegister, "consul://service/"+serviceName(in.NodeType))
	reg.Register = ns.ConsulRegistration()
	d.Intents = append(d.Intents, reg)
	return d
}

// handlerCorrelation is the correlation id of the events an introspection
// leads to: the envelope's, else the payload's.
func handlerCorrelation(in Introspection) uuid.UUID {
	if in.HandlerCorrelationID != uuid.Nil {
		return in.HandlerCorrelationID
	}
	return in.CorrelationID
}

// reject decides an introspection the registry cannot accept (its node type
// is not projectable) from a node that is new or in a retriable state. The
// node moves to rejected (terminal, and retriable: a later introspection of
// a projectable type registers it) and the Rejected event carries a reason
// the node can read. No intent: the projection's valid_node_type refuses
// such a row (an earlier registration's row, if any, stays as it was) and
// the node is not in Consul (an earlier registration was deregistered when
// it timed out). The state records what was rejected (type, name, version,
// capabilities, the introspection's attempt and correlation) and is written
// to the snapshot like any other, so a duplicated or replayed introspection
// is answered the same way: rejected again, the same event (its
// deterministic ids come from the introspection). The rejection takes a
// sequence number, so its snapshot is newer than the node's previous one;
// registered_at stays the first registration's (zero if none), and
// last_state_change_at stays the first rejection's while the node stays
// rejected.
func reject(s *NodeState, in Introspection, corr uuid.UUID, now time.Time) Decision {
	ns := &NodeState{
		NodeID: in.NodeID, State: Rejected,
		NodeType: in.NodeType, NodeName: in.NodeName, NodeVersion: in.NodeVersion, Capabilities: in.Capabilities,
		AttemptID: attemptID(in), CorrelationID: corr, LastStateChangeAt: now,
		LastIntrospectionAt: laterIntrospection(s, in),
	}
	if s != nil {
		ns.RegisteredAt = s.RegisteredAt
		ns.Sequence = s.Sequence
		if s.State == Rejected {
			ns.LastStateChangeAt = s.LastStateChangeAt
		}
	}
	ns.Sequence++
	d := Decision{Emit: true, Reason: "Registration rejected: node type " + in.NodeType + " is not projectable", State: ns}
	d.Events = []Event{{Kind: EventRejected, NodeID: in.NodeID, CorrelationID: corr, CausationID: in.CorrelationID,
		EmittedAt: now, RejectionReason: RejectionReason(in.NodeType)}}
	return d
}

// DecideAck decides a node's registration ack (spec 4.4).
func DecideAck(s *NodeState, a Ack, now time.Time, p Params) Decision {
	if s == nil {
		return Decision{Reason: "Unknown node"}
	}
	switch s.State {
	case Accepted, AwaitingAck:
	case AckReceived, Active:
		return Decision{Reason: "Duplicate ack", State: s}
	case PendingRegistration:
		return Decision{Reason: "Ack too early", State: s}
	case AckTimedOut:
		return Decision{Reason: "Ack too late", State: s}
	default:
		return Decision{Reason: "Terminal state", State: s}
	}
	ns := s.Clone()
	ns.State = Active
	ns.NextResendAt = nil
	ns.LivenessDeadline = ptr(now.Add(p.LivenessInterval))
	ns.LivenessTimeoutEmittedAt = nil
	ns.LastStateChangeAt = now
	d := Decision{Emit: true, Reason: "Ack received, transitioning to ACTIVE", State: ns}
	d.Events = []Event{
		{Kind: EventAckReceived, NodeID: s.NodeID, CorrelationID: s.CorrelationID, CausationID: a.CommandID, EmittedAt: now, LivenessDeadline: *ns.LivenessDeadline},
		{Kind: EventBecameActive, NodeID: s.NodeID, CorrelationID: s.CorrelationID, CausationID: a.CommandID, EmittedAt: now, Capabilities: s.Capabilities},
	}
	up := ns.nextIntent(IntentPostgresUpdate, target(s.NodeID))
	up.Update = &ProjectionUpdate{CurrentState: ptr(Active), LivenessDeadline: ns.LivenessDeadline, UpdatedAt: now}
	// The node's Consul service was registered awaiting its ack (health
	// warning); now it is confirmed (passing).
	reg := ns.nextIntent(IntentConsulRegister, "consul://service/"+serviceName(ns.NodeType))
	reg.Register, reg.Refresh = ns.ConsulRegistration(), true
	d.Intents = []Intent{up, reg}
	return d
}

// DecideHeartbeat decides a node's heartbeat (spec 4.5). The liveness
// deadline becomes the heartbeat's own timestamp plus the liveness window,
// but never moves backwards: a heartbeat delivered late after a newer one
// changes nothing (the Python code would shorten the deadline).
func DecideHeartbeat(s *NodeState, h Heartbeat, now time.Time, p Params) Decision {
	if s == nil {
		return Decision{Reason: "Unknown node"}
	}
	if s.State.Terminal() {
		return Decision{Reason: fmt.Sprintf("Terminal state %s — heartbeat ignored", s.State), State: s}
	}
	deadline := h.Timestamp.Add(p.LivenessWindow)
	if s.LastHeartbeatAt != nil && !h.Timestamp.After(*s.LastHeartbeatAt) {
		return Decision{Reason: "Stale heartbeat", State: s}
	}
	ns := s.Clone()
	ns.LastHeartbeatAt = ptr(h.Timestamp)
	if ns.LivenessDeadline == nil || deadline.After(*ns.LivenessDeadline) {
		ns.LivenessDeadline = ptr(deadline)
	}
	d := Decision{Emit: true, Reason: "Heartbeat recorded", State: ns, LivenessOnly: true}
	if p.resends() && resendDue(s, now) {
		d.LivenessOnly = false
		// A node that heartbeats while the registry waits for its ack is
		// alive and may have missed its accepted event.
		d.Reason = "Heartbeat recorded, accepted re-sent"
		d.Events = []Event{resend(ns, now, heartbeatCause(h), TriggerHeartbeat, p)}
	}
	up := ns.nextIntent(IntentPostgresUpdate, target(s.NodeID))
	up.Update = &ProjectionUpdate{LastHeartbeatAt: ns.LastHeartbeatAt, LivenessDeadline: ns.LivenessDeadline, UpdatedAt: now}
	d.Intents = []Intent{up}
	return d
}

// DecideTimeout decides what a tick does to a node that is due (spec 4.6).
// An ack deadline that passed moves the node to ack_timed_out; a liveness
// deadline that passed moves it to liveness_expired (unless hold is set by
// mass-expiry protection). Both stamp their marker in the same projection
// update as the state, so the timeout is emitted once even across restarts,
// and both deregister the node from Consul. Before its ack deadline, a node
// awaiting its ack whose next resend time has passed gets its accepted event
// again.
func DecideTimeout(s *NodeState, t Tick, p Params, hold bool) Decision {
	if s == nil {
		return Decision{Reason: "Unknown node"}
	}
	now := t.Now
	switch {
	case (s.State == Accepted || s.State == AwaitingAck) && s.AckDeadline != nil && s.AckTimeoutEmittedAt == nil && now.After(*s.AckDeadline):
		ns := s.Clone()
		ns.State = AckTimedOut
		ns.NextResendAt = nil
		ns.AckTimeoutEmittedAt = ptr(now)
		ns.LastStateChangeAt = now
		d := Decision{Emit: true, Reason: "Ack deadline passed", State: ns}
		d.Events = []Event{{Kind: EventAckTimedOut, NodeID: s.NodeID, CorrelationID: t.CorrelationID, CausationID: t.TickID,
			EmittedAt: now, DeadlineAt: *s.AckDeadline, PreviousState: s.State}}
		up := ns.nextIntent(IntentPostgresUpdate, target(s.NodeID))
		up.Update = &ProjectionUpdate{CurrentState: ptr(AckTimedOut), AckTimeoutEmittedAt: ns.AckTimeoutEmittedAt, UpdatedAt: now}
		d.Intents = []Intent{up, deregister(ns)}
		return d
	case resendDue(s, now):
		ns := s.Clone()
		if !p.resends() {
			// Scheduled while resends were enabled (or restored from a
			// snapshot without a schedule): none before the deadline.
			ns.NextResendAt = ns.AckDeadline
			return Decision{Emit: true, Reason: "Accepted resends disabled", State: ns}
		}
		d := Decision{Emit: true, Reason: "Accepted re-sent", State: ns}
		d.Events = []Event{resend(ns, now, t.TickID, TriggerTick, p)}
		return d
	case s.State == Active && s.LivenessDeadline != nil && s.LivenessTimeoutEmittedAt == nil && now.After(*s.LivenessDeadline):
		if hold {
			return Decision{Reason: "Liveness expiry held by mass-expiry protection", State: s}
		}
		ns := s.Clone()
		ns.State = LivenessExpired
		ns.LivenessTimeoutEmittedAt = ptr(now)
		ns.LastStateChangeAt = now
		d := Decision{Emit: true, Reason: "Liveness deadline passed", State: ns}
		d.Events = []Event{{Kind: EventLivenessExpired, NodeID: s.NodeID, CorrelationID: t.CorrelationID, CausationID: t.TickID,
			EmittedAt: now, LastHeartbeatAt: s.LastHeartbeatAt}}
		up := ns.nextIntent(IntentPostgresUpdate, target(s.NodeID))
		up.Update = &ProjectionUpdate{CurrentState: ptr(LivenessExpired), LivenessTimeoutEmittedAt: ns.LivenessTimeoutEmittedAt, UpdatedAt: now}
		d.Intents = []Intent{up, deregister(ns)}
		return d
	}
	return Decision{Reason: "No timeouts detected", State: s}
}

// Resends of the accepted event (docs/reducer.md, "Accepted resends").
//
// A node may miss its accepted event: a Python node starts listening for it
// only after it published its introspection, in a new consumer group that
// starts at the newest record, up to seconds later. While the node awaits
// its ack, the reducer publishes the event again, driven by ticks through
// the deadline index, and by the node's heartbeats and repeated
// introspections, each at most as often as the schedule allows. Every copy
// of an attempt carries the attempt's correlation_id and ack_deadline; only
// emitted_at (the decision's now) and causation_id (the input's id) differ.

func (p Params) resends() bool { return p.AcceptedResendInitial > 0 }

// NextResend is when the accepted event of s's attempt is due again: an
// input strictly after it may re-emit it. A state restored from a snapshot
// written before the reducer resent has no schedule; its first resend is
// due at once (at its original emission, LastStateChangeAt), or at the ack
// deadline, that is never, if the state has no such time.
func NextResend(s *NodeState) time.Time {
	switch {
	case s.NextResendAt != nil:
		return *s.NextResendAt
	case !s.LastStateChangeAt.IsZero():
		return s.LastStateChangeAt
	case s.AckDeadline != nil:
		return *s.AckDeadline
	}
	return time.Time{}
}

// resendDue reports whether an input at now may re-emit s's accepted event:
// s awaits its ack, its ack deadline has not passed, its next resend time
// has.
func resendDue(s *NodeState, now time.Time) bool {
	return s != nil && (s.State == AwaitingAck || s.State == Accepted) && s.AckDeadline != nil && s.AckTimeoutEmittedAt == nil &&
		!now.After(*s.AckDeadline) && now.After(NextResend(s))
}

// resend re-emits the accepted event of ns's attempt at now, caused by the
// input cause (of kind trig), and schedules the next resend.
func resend(ns *NodeState, now time.Time, cause uuid.UUID, trig Trigger, p Params) Event {
	ns.NextResendAt = ptr(ResendAfter(ns.LastStateChangeAt, now, p))
	return Event{Kind: EventAccepted, NodeID: ns.NodeID, CorrelationID: ns.CorrelationID, CausationID: cause,
		EmittedAt: now, AckDeadline: *ns.AckDeadline, ResentBy: trig}
}

// ResendAfter returns the next resend time after a resend at now, for an
// attempt whose accepted event was first emitted at emitted. The schedule
// is fixed by the original emission: emitted + initial, then intervals
// doubling up to the maximum (with 2 s and 8 s: +2, +6, +14, +22, +30 s, ...).
// The next resend is the first point of it at least one initial interval
// after now, so a resend that came late (ticks come at their own pace, a
// heartbeat whenever the node sends it) is never followed by another one
// sooner than that.
func ResendAfter(emitted, now time.Time, p Params) time.Time {
	step := p.AcceptedResendInitial
	maxStep := max(p.AcceptedResendMax, step)
	earliest := now.Add(step)
	at := emitted.Add(step)
	for at.Before(earliest) && step < maxStep {
		step = min(2*step, maxStep)
		at = at.Add(step)
	}
	if at.Before(earliest) {
		// At the cap: whole steps up to earliest, computed at once (an old
		// emission time must not cost a loop, nor overflow a Duration).
		gap := earliest.Sub(at) // saturates rather than overflows
		n := gap / step
		if gap%step != 0 {
			n++
		}
		if n > 1<<20 {
			return earliest
		}
		at = at.Add(n * step)
	}
	return at
}

// heartbeatCause is the causation id of an accepted event a heartbeat
// re-emits: the heartbeat's correlation id, or one derived from the
// heartbeat when it has none.
func heartbeatCause(h Heartbeat) uuid.UUID {
	if h.CorrelationID != uuid.Nil {
		return h.CorrelationID
	}
	return uuid.NewSHA1(h.NodeID, []byte("heartbeat:"+h.Timestamp.UTC().Format(time.RFC3339Nano)))
}

func deregister(ns *NodeState) Intent {
	in := ns.nextIntent(IntentConsulDeregister, "consul://service/"+serviceName(ns.NodeType))
	in.Deregister = &ConsulDeregistration{ServiceID: ServiceID(ns.NodeType, ns.NodeID)}
	return in
}

// MassExpiryHold applies the mass-expiry protection rule (docs/reducer.md):
// hold when the partition had at least MassExpiryMinActive ACTIVE nodes and
// more than MassExpiryShare of them would expire within one liveness window,
// counting both the nodes due now and those expired during the last window.
func MassExpiryHold(active, due, recentlyExpired int, p Params) (hold bool, share float64) {
	base := active + recentlyExpired
	if base == 0 {
		return false, 0
	}
	share = float64(due+recentlyExpired) / float64(base)
	return base >= p.MassExpiryMinActive && share > p.MassExpiryShare, share
}

func serviceName(nodeType string) string { return consulservice.Name(nodeType) }

// ServiceID is the Consul service id of a node (spec 4.8).
func ServiceID(nodeType string, nodeID uuid.UUID) string { return consulservice.ID(nodeType, nodeID) }

var nonAlnum = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// MCPToolName sanitizes a tool name per spec 4.8: lowercase, every run of
// non-alphanumerics becomes "-", trimmed of "-", at most 63 characters.
func MCPToolName(s string) string {
	s = strings.Trim(nonAlnum.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// MCPToolOf is the sanitized MCP tool name of an orchestrator that exposes
// itself over MCP (its tool_name, else its description, else its service
// name), nil for every other node.
func MCPToolOf(in Introspection) *string {
	if in.NodeType != "orchestrator" || !in.MCPExpose {
		return nil
	}
	tool := serviceName(in.NodeType)
	switch {
	case in.MCPToolName != nil && *in.MCPToolName != "":
		tool = *in.MCPToolName
	case in.Description != nil && *in.Description != "":
		tool = *in.Description
	}
	return ptr(MCPToolName(tool))
}
