package gen

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// The reducer's decisions, as far as a node's postgres intents go
// (services/reducer/decide; docs/reducer.md). The projector may not import
// the reducer (services never import each other), so gen plays this model
// of them instead. It follows decide on the paths a generated life takes —
// registration (new, or after a timeout), ack, heartbeat, ack timeout,
// liveness expiry — down to the intent ids, the sequence numbers (a Consul
// intent takes one too, so a node's postgres intents have gaps) and every
// column; resends of the accepted event write nothing and are left out. The
// end-to-end suite runs the real reducer against the projector.

// The reducer's default parameters (decide.DefaultParams).
const (
	ackTimeout       = 30 * time.Second
	livenessInterval = 60 * time.Second
	livenessWindow   = 90 * time.Second
)

// domain is the projection domain of every registration row.
const domain = "registration"

// node is what the reducer keeps of one node (decide.NodeState), as far as
// its postgres intents need it. The zero node (state "") is a node the
// reducer does not know yet.
type node struct {
	id           uuid.UUID
	state        registration.State
	nodeType     string
	attempt      uuid.UUID
	corr         uuid.UUID
	registeredAt time.Time

	ackDeadline              *time.Time
	livenessDeadline         *time.Time
	lastHeartbeatAt          *time.Time
	ackTimeoutEmittedAt      *time.Time
	livenessTimeoutEmittedAt *time.Time

	sequence int64
}

// introspection is what a registration reads of a node's introspection
// (decide.Introspection).
type introspection struct {
	nodeType     string
	nodeName     *string
	nodeVersion  string
	capabilities json.RawMessage
	endpoints    map[string]string
	// correlationID is the payload's, handlerCorrelationID the envelope's:
	// the attempt id derives from the first, the intents carry the second.
	correlationID        uuid.UUID
	handlerCorrelationID uuid.UUID
}

// decided is one postgres intent of a decision, its payload not yet encoded.
type decided struct {
	id       uuid.UUID
	typ      string
	sequence int64
	attempt  uuid.UUID
	corr     uuid.UUID
	payload  any
}

// next numbers the node's next intent (decide's nextIntent): the sequence
// goes up by one and the intent id derives from the node and it.
func (n *node) next(typ string, payload any) decided {
	n.sequence++
	return decided{id: uuid.NewSHA1(n.id, []byte("intent:"+strconv.FormatInt(n.sequence, 10))), typ: typ,
		sequence: n.sequence, attempt: n.attempt, corr: n.corr, payload: payload}
}

// skip takes the sequence number of a Consul intent of the decision.
func (n *node) skip() { n.sequence++ }

// register starts a registration attempt of a new node or of one in a
// retriable state (decide's register): awaiting_ack with an ack deadline,
// the projection upsert of the whole row, then the Consul register.
// registered_at stays the first registration's, the sequence goes on.
func (n *node) register(in introspection, now time.Time) []decided {
	corr := in.handlerCorrelationID
	if corr == uuid.Nil {
		corr = in.correlationID
	}
	registeredAt := now
	if !n.registeredAt.IsZero() {
		registeredAt = n.registeredAt
	}
	*n = node{id: n.id, state: registration.StateAwaitingAck, nodeType: in.nodeType,
		attempt: uuid.NewSHA1(in.correlationID, []byte("registration_attempt:"+n.id.String())), corr: corr,
		registeredAt: registeredAt, ackDeadline: ptr(now.Add(ackTimeout)), sequence: n.sequence}
	up := n.next(pipeline.PostgresUpsert, pipeline.PostgresUpsertPayload{
		IntentType: pipeline.PostgresUpsert, CorrelationID: corr,
		Record: pipeline.ProjectionRecord{
			EntityID: n.id, CurrentState: string(n.state), Domain: domain, NodeType: in.nodeType,
			Data: pipeline.ProjectionData{
				NodeVersion: in.nodeVersion, Capabilities: in.capabilities,
				IntentTypes: []string{}, Protocols: []string{}, CapabilityTags: []string{},
				AckDeadline: pipeline.TP(n.ackDeadline), LastAppliedEventID: n.attempt,
				RegisteredAt: pipeline.T(n.registeredAt), UpdatedAt: pipeline.T(now),
				CorrelationID: corr, NodeName: in.nodeName, Endpoints: in.endpoints,
			},
		},
	})
	n.skip() // consul.register
	return []decided{up}
}

// ack decides the ack of a node awaiting it (decide.DecideAck): active,
// with a liveness deadline, then the Consul register that confirms it.
func (n *node) ack(now time.Time) []decided {
	n.state = registration.StateActive
	n.livenessDeadline = ptr(now.Add(livenessInterval))
	n.livenessTimeoutEmittedAt = nil
	up := n.update(now)
	n.skip() // consul.register
	return []decided{up}
}

// heartbeat decides a heartbeat stamped at ts of an active node
// (decide.DecideHeartbeat): the liveness deadline becomes ts plus the
// window, never earlier than it was; a heartbeat not after the last one
// changes nothing.
func (n *node) heartbeat(ts, now time.Time) []decided {
	if n.lastHeartbeatAt != nil && !ts.After(*n.lastHeartbeatAt) {
		return nil
	}
	n.lastHeartbeatAt = ptr(ts)
	if deadline := ts.Add(livenessWindow); n.livenessDeadline == nil || deadline.After(*n.livenessDeadline) {
		n.livenessDeadline = ptr(deadline)
	}
	return []decided{n.update(now)}
}

// tick decides a tick at now (decide.DecideTimeout, no mass-expiry hold):
// a passed ack deadline times the node's ack out, a passed liveness
// deadline expires an active node; either deregisters it from Consul.
func (n *node) tick(now time.Time) []decided {
	switch {
	case n.state == registration.StateAwaitingAck && n.ackDeadline != nil && n.ackTimeoutEmittedAt == nil && now.After(*n.ackDeadline):
		n.state = registration.StateAckTimedOut
		n.ackTimeoutEmittedAt = ptr(now)
	case n.state == registration.StateActive && n.livenessDeadline != nil && n.livenessTimeoutEmittedAt == nil && now.After(*n.livenessDeadline):
		n.state = registration.StateLivenessExpired
		n.livenessTimeoutEmittedAt = ptr(now)
	default:
		return nil
	}
	up := n.update(now)
	n.skip() // consul.deregister
	return []decided{up}
}

// update is the projection update of the node's mutable state as it is now
// (the reducer's wire encoding: an update carries all of it).
func (n *node) update(now time.Time) decided {
	return n.next(pipeline.PostgresUpdate, pipeline.PostgresUpdatePayload{
		IntentType: pipeline.PostgresUpdate, CorrelationID: n.corr, EntityID: n.id, Domain: domain,
		Updates: pipeline.ProjectionUpdate{
			CurrentState: string(n.state), AckDeadline: pipeline.TP(n.ackDeadline),
			LivenessDeadline: pipeline.TP(n.livenessDeadline), LastHeartbeatAt: pipeline.TP(n.lastHeartbeatAt),
			AckTimeoutEmittedAt: pipeline.TP(n.ackTimeoutEmittedAt), LivenessTimeoutEmittedAt: pipeline.TP(n.livenessTimeoutEmittedAt),
			UpdatedAt: pipeline.T(now), NodeType: n.nodeType,
			RegisteredAt: pipeline.T(n.registeredAt), LastAppliedEventID: n.attempt,
		},
	})
}

func ptr[T any](v T) *T { return &v }
