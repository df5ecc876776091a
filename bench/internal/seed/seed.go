// Package seed puts a large ACTIVE fleet in place without registering it
// node by node: the reducer state each node would have after its
// introspection and ack, computed with the reducer's own decision functions
// (services/reducer/decide), written as the reducer writes it — snapshots
// on the compacted snapshot topic (what the reducer restores from) and rows
// in registration_projections (what the projector would have written).
//
// Registering 100,000 nodes through the fleet would take minutes at the
// measured registration rate; the heartbeat and reducer figures need the
// nodes to exist, not to have just registered.
package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/bench/internal/ceiling"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/node/sim"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/snapshot"
)

// Node is one seeded node: its identity (what its heartbeats say) and the
// reducer state it is seeded with.
type Node struct {
	Identity node.Identity
	State    *decide.NodeState
}

// Active returns plan's nodes as the reducer leaves them after introspection
// at `at` and ack a second later: ACTIVE, with the liveness deadline p gives.
func Active(plan []sim.Planned, at time.Time, p decide.Params) ([]Node, error) {
	enc := &node.Encoder{}
	out := make([]Node, len(plan))
	for i, pl := range plan {
		id := pl.Identity
		ev := id.Introspection(registration.ReasonStartup, uuid.NewSHA1(id.NodeID, []byte("seed-correlation")), at)
		rec, err := enc.Introspection(ev)
		if err != nil {
			return nil, err
		}
		caps, err := declaredCapabilities(rec.Value)
		if err != nil {
			return nil, err
		}
		in := decide.Introspection{
			NodeID: id.NodeID, NodeType: string(id.Type), NodeVersion: ev.NodeVersion.String(),
			NodeName: ev.NodeName, Capabilities: caps, Endpoints: ev.Endpoints,
			CorrelationID: ev.CorrelationID, HandlerCorrelationID: ev.CorrelationID,
		}
		d := decide.DecideIntrospection(nil, in, at, p)
		a := decide.DecideAck(d.State, decide.Ack{NodeID: id.NodeID, CommandID: uuid.NewSHA1(id.NodeID, []byte("seed-ack")),
			CorrelationID: d.State.CorrelationID, Timestamp: at.Add(time.Second)}, at.Add(time.Second), p)
		if a.State == nil || a.State.State != decide.Active {
			return nil, fmt.Errorf("seed: node %s did not become active: %s", id.NodeID, a.Reason)
		}
		out[i] = Node{Identity: id, State: a.State}
	}
	return out, nil
}

// declaredCapabilities extracts payload.declared_capabilities from an
// introspection envelope, compacted, as the reducer keeps it.
func declaredCapabilities(envelopeJSON []byte) (json.RawMessage, error) {
	var v struct {
		Payload struct {
			Declared json.RawMessage `json:"declared_capabilities"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(envelopeJSON, &v); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v.Payload.Declared); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Snapshot encodes st as the reducer's snapshot record: its value (the bare
// ModelRegistrationSnapshot) and its reducer state header.
func Snapshot(st *decide.NodeState, createdAt time.Time) (snapshot.Record, error) {
	return snapshot.Encode(st, createdAt)
}

// Publish writes the nodes' snapshots to topic, the reducer's snapshot
// topic (keyed by node id, so each lands on its node's partition, the one
// the reducer restores it from), as the reducer writes them (value and
// reducer state header), and returns how many bytes of value and header it
// wrote.
func Publish(ctx context.Context, brokers []string, topic string, nodes []Node, at time.Time) (int64, error) {
	msgs := make([]*sarama.ProducerMessage, 0, len(nodes))
	var bytes int64
	for _, n := range nodes {
		rec, err := Snapshot(n.State, at)
		if err != nil {
			return 0, err
		}
		bytes += int64(len(rec.Value) + len(pipeline.HeaderReducerState) + len(rec.State))
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
			Key: sarama.StringEncoder(n.State.NodeID.String()), Value: sarama.ByteEncoder(rec.Value), Headers: rec.Headers()})
	}
	return bytes, send(ctx, brokers, msgs)
}

func send(ctx context.Context, brokers []string, msgs []*sarama.ProducerMessage) error {
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "bench-seed"})
	if err != nil {
		return err
	}
	cfg.Producer.Flush.Bytes = 1 << 20
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	p, err := bus.NewProducer(brokers, cfg, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	for len(msgs) > 0 {
		n := min(len(msgs), 5000)
		if err := p.Send(ctx, msgs[:n]...); err != nil {
			return fmt.Errorf("seed: publish: %w", err)
		}
		msgs = msgs[n:]
	}
	return nil
}

// Row is the projection row the projector holds for st after applying its
// upsert (sequence 1) and every later update.
func Row(st *decide.NodeState) ceiling.Row {
	return ceiling.Row{
		EntityID: st.NodeID, State: string(st.State), NodeType: st.NodeType, NodeVersion: st.NodeVersion,
		Capabilities: st.Capabilities, Endpoints: st.Endpoints.Map(), NodeName: st.NodeName,
		AckDeadline: st.AckDeadline, LivenessDeadline: st.LivenessDeadline, LastHeartbeatAt: st.LastHeartbeatAt,
		AttemptID: st.AttemptID, Sequence: st.Sequence, RegistrationSeq: 1,
		RegisteredAt: st.RegisteredAt, UpdatedAt: st.LastStateChangeAt, CorrelationID: st.CorrelationID,
	}
}
