// Package gen generates realistic postgres-intent streams for the
// projector's tests by running the reducer's real decision code
// (services/reducer/decide) over simulated node lives: introspection, ack or
// ack timeout, heartbeats, liveness expiry and re-registration. Intents are
// encoded the way the reducer's wire package encodes them (an envelope whose
// payload is a pipeline.Intent; updates carry the node's full mutable state).
package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// Intent is one generated postgres intent.
type Intent struct {
	NodeID   uuid.UUID
	Sequence int64
	Type     string
	// Value is the record value: an ONEX envelope around a pipeline.Intent.
	Value []byte
}

// Stream is the intents of every node, each node's in sequence order.
type Stream struct {
	Nodes map[uuid.UUID][]Intent
	Total int
}

var nodeTypes = []string{"effect", "compute", "reducer", "orchestrator"}

// Generate simulates nodes until they have produced about total postgres
// intents in all (every node at least one), deterministically for seed.
func Generate(seed uint64, nodes, total int) (*Stream, error) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := decide.DefaultParams()
	base := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	s := &Stream{Nodes: map[uuid.UUID][]Intent{}}
	per := max(total/nodes, 1)
	for i := range nodes {
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "gen-node-%d-%d", seed, i))
		want := per
		if i < total-per*nodes { // spread the remainder
			want++
		}
		out, err := life(r, p, id, nodeTypes[i%len(nodeTypes)], base.Add(time.Duration(r.IntN(3600))*time.Second), want)
		if err != nil {
			return nil, err
		}
		s.Nodes[id] = out
		s.Total += len(out)
	}
	return s, nil
}

// life plays one node until it produced want postgres intents.
func life(r *rand.Rand, p decide.Params, id uuid.UUID, nodeType string, now time.Time, want int) ([]Intent, error) {
	var (
		st  *decide.NodeState
		out []Intent
	)
	name := "node-" + id.String()[:8]
	emit := func(d decide.Decision, at time.Time) error {
		if d.State != nil {
			st = d.State
		}
		for _, in := range d.Intents {
			if in.Type != decide.IntentPostgresUpsert && in.Type != decide.IntentPostgresUpdate {
				continue
			}
			b, err := encode(in, st, at)
			if err != nil {
				return err
			}
			out = append(out, Intent{NodeID: id, Sequence: in.Sequence, Type: string(in.Type), Value: b})
		}
		return nil
	}
	introspect := func() error {
		caps := fmt.Sprintf(`{"postgres": %v, "read": true, "write": %v, "batch_size": %d}`, r.IntN(2) == 0, r.IntN(2) == 0, r.IntN(100))
		in := decide.Introspection{
			NodeID: id, NodeType: nodeType, NodeName: &name, NodeVersion: fmt.Sprintf("1.%d.%d", r.IntN(5), r.IntN(10)),
			Capabilities:  json.RawMessage(caps),
			Endpoints:     map[string]string{"health": fmt.Sprintf("http://10.0.%d.%d:8080/health", r.IntN(255), r.IntN(255))},
			CorrelationID: rid(r), HandlerCorrelationID: rid(r),
		}
		return emit(decide.DecideIntrospection(st, in, now, p), now)
	}
	tick := func() error {
		t := decide.Tick{TickID: rid(r), CorrelationID: rid(r), Now: now}
		return emit(decide.DecideTimeout(st, t, p, false), now)
	}
	if err := introspect(); err != nil {
		return nil, err
	}
	for len(out) < want {
		switch {
		case st.State == decide.AwaitingAck:
			if r.IntN(10) < 8 {
				now = now.Add(time.Duration(1+r.IntN(20)) * time.Second)
				a := decide.Ack{NodeID: id, CommandID: rid(r), CorrelationID: rid(r), Timestamp: now}
				if err := emit(decide.DecideAck(st, a, now, p), now); err != nil {
					return nil, err
				}
			} else {
				now = st.AckDeadline.Add(time.Second)
				if err := tick(); err != nil {
					return nil, err
				}
			}
		case st.State == decide.Active:
			if r.IntN(12) == 0 {
				now = st.LivenessDeadline.Add(time.Second)
				if err := tick(); err != nil {
					return nil, err
				}
				continue
			}
			now = now.Add(time.Duration(25+r.IntN(10)) * time.Second)
			h := decide.Heartbeat{NodeID: id, Timestamp: now.Add(-time.Duration(r.IntN(500)) * time.Millisecond), CorrelationID: rid(r)}
			if err := emit(decide.DecideHeartbeat(st, h, now, p), now); err != nil {
				return nil, err
			}
		default: // ack_timed_out, liveness_expired: the node comes back
			now = now.Add(time.Duration(5+r.IntN(60)) * time.Second)
			if err := introspect(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// rid draws a v4-shaped UUID from r, so a seed gives the same stream.
func rid(r *rand.Rand) uuid.UUID {
	var u uuid.UUID
	for i := 0; i < 16; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			u[i+j] = byte(v >> (8 * j))
		}
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// encode mirrors services/reducer/internal/wire.Intent for postgres intents.
func encode(in decide.Intent, st *decide.NodeState, now time.Time) ([]byte, error) {
	var payload any
	switch in.Type {
	case decide.IntentPostgresUpsert:
		u := in.Upsert
		payload = pipeline.PostgresUpsertPayload{
			IntentType: pipeline.PostgresUpsert, CorrelationID: in.CorrelationID,
			Record: pipeline.ProjectionRecord{
				EntityID: u.EntityID, CurrentState: string(u.CurrentState), Domain: u.Domain, NodeType: u.NodeType,
				Data: pipeline.ProjectionData{
					NodeVersion: u.NodeVersion, Capabilities: u.Capabilities,
					IntentTypes: []string{}, Protocols: []string{}, CapabilityTags: []string{},
					AckDeadline: pipeline.TP(u.AckDeadline), LivenessDeadline: pipeline.TP(u.LivenessDeadline),
					LastHeartbeatAt: pipeline.TP(u.LastHeartbeatAt), LastAppliedEventID: u.LastAppliedEventID,
					RegisteredAt: pipeline.T(u.RegisteredAt), UpdatedAt: pipeline.T(u.UpdatedAt),
					CorrelationID: u.CorrelationID, NodeName: u.NodeName, Endpoints: u.Endpoints,
					IntrospectionExtras: u.Extras,
				},
			},
		}
	case decide.IntentPostgresUpdate:
		payload = pipeline.PostgresUpdatePayload{
			IntentType: pipeline.PostgresUpdate, CorrelationID: in.CorrelationID, EntityID: in.NodeID, Domain: decide.Domain,
			Updates: pipeline.ProjectionUpdate{
				CurrentState: string(st.State), AckDeadline: pipeline.TP(st.AckDeadline),
				LivenessDeadline: pipeline.TP(st.LivenessDeadline), LastHeartbeatAt: pipeline.TP(st.LastHeartbeatAt),
				AckTimeoutEmittedAt: pipeline.TP(st.AckTimeoutEmittedAt), LivenessTimeoutEmittedAt: pipeline.TP(st.LivenessTimeoutEmittedAt),
				UpdatedAt: pipeline.T(in.Update.UpdatedAt), NodeType: st.NodeType,
				RegisteredAt: pipeline.T(st.RegisteredAt), LastAppliedEventID: st.AttemptID,
			},
		}
	default:
		return nil, fmt.Errorf("gen: not a postgres intent: %s", in.Type)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	pi := pipeline.Intent{IntentID: in.ID, IntentType: string(in.Type), Target: in.Target, Payload: body, Priority: 1,
		NodeID: in.NodeID, Sequence: in.Sequence, RegistrationAttemptID: in.AttemptID}
	env, err := envelope.New(pi, envelope.WithEnvelopeID(in.ID), envelope.WithCorrelationID(in.CorrelationID),
		envelope.WithTimestamp(now), envelope.WithEventType(envelope.EventTypeFromTopic(topics.RegistrationIntents)),
		envelope.WithTag("message_category", "intent"))
	if err != nil {
		return nil, err
	}
	return env.Encode()
}

// InOrder interleaves the nodes' intents at random, keeping each node's
// order: what a keyed topic delivers.
func (s *Stream) InOrder(seed uint64) []Intent {
	r := rand.New(rand.NewPCG(seed, 1))
	queues := make([][]Intent, 0, len(s.Nodes))
	for _, q := range s.sortedNodes() {
		queues = append(queues, s.Nodes[q])
	}
	out := make([]Intent, 0, s.Total)
	for len(queues) > 0 {
		i := r.IntN(len(queues))
		out = append(out, queues[i][0])
		queues[i] = queues[i][1:]
		if len(queues[i]) == 0 {
			queues = append(queues[:i], queues[i+1:]...)
		}
	}
	return out
}

// Shuffled returns every intent in a random order, with a share dup of them
// (0..1) delivered a second time at another random place.
func (s *Stream) Shuffled(seed uint64, dup float64) []Intent {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([]Intent, 0, s.Total+int(float64(s.Total)*dup)+1)
	for _, id := range s.sortedNodes() {
		for _, in := range s.Nodes[id] {
			out = append(out, in)
			if r.Float64() < dup {
				out = append(out, in)
			}
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (s *Stream) sortedNodes() []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(s.Nodes))
	for id := range s.Nodes {
		ids = append(ids, id)
	}
	// Map order is random; sort so a seed always gives the same stream.
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}
