// Package gen generates realistic postgres-intent streams for the
// projector's tests by playing simulated node lives through a model of the
// reducer's decisions (reducer.go): introspection, ack or ack timeout,
// heartbeats, liveness expiry and re-registration. Intents are encoded the
// way the reducer's wire package encodes them (a protobuf
// onex.fleet.v1.Intent, updates as fields carrying the node's full mutable
// state, upserts as their JSON payload).
package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// Intent is one generated postgres intent.
type Intent struct {
	NodeID   uuid.UUID
	Sequence int64
	Type     string
	// Value is the record value: a protobuf onex.fleet.v1.Intent, or with
	// ContentType JSON (or empty) an ONEX envelope around a
	// pipeline.Intent.
	Value []byte
	// ContentType is the record's content_type header
	// (pipeline.IntentContentType for what Generate makes).
	ContentType string
}

// Headers are the record's headers: its content type, when it has one.
func (in Intent) Headers() []sarama.RecordHeader {
	if in.ContentType == "" {
		return nil
	}
	return []sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(in.ContentType)}}
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
	base := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	s := &Stream{Nodes: map[uuid.UUID][]Intent{}}
	per := max(total/nodes, 1)
	for i := range nodes {
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "gen-node-%d-%d", seed, i))
		want := per
		if i < total-per*nodes { // spread the remainder
			want++
		}
		out, err := life(r, id, nodeTypes[i%len(nodeTypes)], base.Add(time.Duration(r.IntN(3600))*time.Second), want)
		if err != nil {
			return nil, err
		}
		s.Nodes[id] = out
		s.Total += len(out)
	}
	return s, nil
}

// life plays one node until it produced want postgres intents.
func life(r *rand.Rand, id uuid.UUID, nodeType string, now time.Time, want int) ([]Intent, error) {
	var out []Intent
	n := &node{id: id}
	name := "node-" + id.String()[:8]
	emit := func(ds []decided, at time.Time) error {
		for _, d := range ds {
			b, err := encode(id, d, at)
			if err != nil {
				return err
			}
			out = append(out, Intent{NodeID: id, Sequence: d.sequence, Type: d.typ, Value: b, ContentType: pipeline.IntentContentType})
		}
		return nil
	}
	introspect := func() error {
		caps := fmt.Sprintf(`{"postgres": %v, "read": true, "write": %v, "batch_size": %d}`, r.IntN(2) == 0, r.IntN(2) == 0, r.IntN(100))
		in := introspection{
			nodeType: nodeType, nodeName: &name, nodeVersion: fmt.Sprintf("1.%d.%d", r.IntN(5), r.IntN(10)),
			capabilities:  json.RawMessage(caps),
			endpoints:     map[string]string{"health": fmt.Sprintf("http://10.0.%d.%d:8080/health", r.IntN(255), r.IntN(255))},
			correlationID: rid(r), handlerCorrelationID: rid(r),
		}
		return emit(n.register(in, now), now)
	}
	tick := func() error {
		rid(r) // the tick's id and correlation id: only its events carry them
		rid(r)
		return emit(n.tick(now), now)
	}
	if err := introspect(); err != nil {
		return nil, err
	}
	for len(out) < want {
		switch n.state {
		case registration.StateAwaitingAck:
			if r.IntN(10) < 8 {
				now = now.Add(time.Duration(1+r.IntN(20)) * time.Second)
				rid(r) // the ack's command and correlation ids: only its events carry them
				rid(r)
				if err := emit(n.ack(now), now); err != nil {
					return nil, err
				}
			} else {
				now = n.ackDeadline.Add(time.Second)
				if err := tick(); err != nil {
					return nil, err
				}
			}
		case registration.StateActive:
			if r.IntN(12) == 0 {
				now = n.livenessDeadline.Add(time.Second)
				if err := tick(); err != nil {
					return nil, err
				}
				continue
			}
			now = now.Add(time.Duration(25+r.IntN(10)) * time.Second)
			ts := now.Add(-time.Duration(r.IntN(500)) * time.Millisecond)
			rid(r) // the heartbeat's correlation id: only its events carry it
			if err := emit(n.heartbeat(ts, now), now); err != nil {
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

// encode mirrors services/reducer/internal/wire.Intent for postgres
// intents: a protobuf intent stamped now, an update's payload as fields.
func encode(nodeID uuid.UUID, d decided, now time.Time) ([]byte, error) {
	pi := &pipeline.Intent{IntentID: d.id, IntentType: d.typ, Target: "postgres://node_registrations/" + nodeID.String(),
		Priority: 1, NodeID: nodeID, Sequence: d.sequence, RegistrationAttemptID: d.attempt}
	if u, ok := d.payload.(pipeline.PostgresUpdatePayload); ok {
		pi.Update = &u
	} else {
		body, err := json.Marshal(d.payload)
		if err != nil {
			return nil, err
		}
		pi.Payload = body
	}
	return pipeline.MarshalIntent(pipeline.IntentRecord{Intent: pi, EnvelopeID: d.id, CreatedAt: now.UTC().Truncate(time.Microsecond), CorrelationID: d.corr})
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
