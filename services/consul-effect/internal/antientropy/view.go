// Package antientropy keeps Consul true to the registry: a View of the
// compacted registration snapshot topic (what should be registered) and a
// Reconciler that compares it with the onex-tagged services Consul holds
// (the agent's in agent mode, the catalog's in catalog mode), registering
// what is missing or differs and removing orphans.
package antientropy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/compacted"
	"github.com/omninode/onex-fleet/pkg/consulservice"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// DesiredStates are the registration states in which a node with a Consul
// derivation should be in Consul. A node is registered at introspection (the
// reducer emits consul.register with the upsert), so it is desired from
// accepted/awaiting_ack on, through ack_received to active; ack_timed_out and
// liveness_expired deregister it, rejected never registered it.
var DesiredStates = map[string]bool{"accepted": true, "awaiting_ack": true, "ack_received": true, "active": true}

// Entry is what the view keeps of one node's latest snapshot.
type Entry struct {
	NodeID   uuid.UUID
	State    string
	Sequence int64
	Consul   *pipeline.ConsulRegisterPayload
}

// Desired reports whether the node should have a Consul service.
func (e Entry) Desired() bool {
	return DesiredStates[e.State] && e.Consul != nil && e.Consul.ServiceID != ""
}

// View is the in-memory map node_id → latest snapshot, fed from the
// snapshot topic. It is safe for concurrent use.
type View struct {
	mu    sync.RWMutex
	nodes map[uuid.UUID]Entry
	ready chan struct{}
	once  sync.Once

	size prometheus.Gauge
	bad  prometheus.Counter
}

// NewView returns an empty view; its gauges are registered on reg (nil: not).
func NewView(reg prometheus.Registerer) *View {
	v := &View{nodes: map[uuid.UUID]Entry{}, ready: make(chan struct{}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onex_consul_snapshot_nodes",
			Help: "Nodes in the consul effect's view of the registration snapshot topic."}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_consul_snapshot_invalid_total",
			Help: "Snapshot records the consul effect could not decode and ignored."}),
	}
	if reg != nil {
		reg.MustRegister(v.size, v.bad)
	}
	return v
}

// Apply folds one snapshot record into the view, given its key, value and
// reducer state header (pipeline.SnapshotState of its headers): a tombstone
// (empty value) removes the node, a snapshot replaces it unless the view
// already holds a newer sequence for it. The node's Consul service is
// derived from the record's reducer state as the reducer derives its
// consul.register intents (consulservice.FromSnapshot; in a record written
// before the state moved into the header, the state in its value); a
// record without a reducer state leaves the node without one. A record that does
// not decode is ignored and reported (it is state, not a command: there is
// nobody to dead-letter to).
func (v *View) Apply(key, value, state []byte) error {
	snap, err := pipeline.DecodeSnapshot(value)
	if err != nil {
		v.bad.Inc()
		return infraerr.ContentWrap("snapshot", err)
	}
	var consul *pipeline.ConsulRegisterPayload
	if snap != nil {
		if consul, err = consulservice.FromSnapshot(value, state); err != nil {
			v.bad.Inc()
			return infraerr.ContentWrap("snapshot", err)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if snap == nil {
		if pipeline.IsRestoreMarker(key) {
			return nil // the reducer's, names no node
		}
		id, err := uuid.ParseBytes(key)
		if err != nil {
			v.bad.Inc()
			return infraerr.Content("key", "tombstone key is not a node id")
		}
		delete(v.nodes, id)
		v.size.Set(float64(len(v.nodes)))
		return nil
	}
	seq := snap.SnapshotVersion
	if snap.SourceProjectionSequence != nil {
		seq = *snap.SourceProjectionSequence
	}
	if old, ok := v.nodes[snap.EntityID]; ok && old.Sequence > seq {
		return nil
	}
	v.nodes[snap.EntityID] = Entry{NodeID: snap.EntityID, State: snap.CurrentState, Sequence: seq, Consul: consul}
	v.size.Set(float64(len(v.nodes)))
	return nil
}

// Get returns the node's entry.
func (v *View) Get(id uuid.UUID) (Entry, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.nodes[id]
	return e, ok
}

// Desired returns a copy of the entries that should be in Consul.
func (v *View) Desired() []Entry {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]Entry, 0, len(v.nodes))
	for _, e := range v.nodes {
		if e.Desired() {
			out = append(out, e)
		}
	}
	return out
}

// Ready is closed once the view has read every partition up to the end
// offset it found when Follow started.
func (v *View) Ready() <-chan struct{} { return v.ready }

// CaughtUp reports whether Ready is closed.
func (v *View) CaughtUp() bool {
	select {
	case <-v.ready:
		return true
	default:
		return false
	}
}

// Follow consumes every partition of topic from the oldest record into the
// view until ctx ends, closing Ready once all partitions are read to the end
// offsets they had at start. client must be configured read_committed (the
// reducer writes snapshots in transactions). The last offsets of a
// transactional partition are commit markers that are never delivered: a
// partition that delivers nothing for idle is checked against the broker
// (compacted.Reader.Settle) to tell them from records still on their way.
func (v *View) Follow(ctx context.Context, client sarama.Client, topic string, idle time.Duration, log *slog.Logger) error {
	rd := compacted.Reader{Client: client, Topic: topic, Settle: idle, Operation: "snapshot_view",
		FetchErrors: func(cerr *sarama.ConsumerError) {
			// sarama keeps retrying the fetch; the error is only reported.
			log.Warn("snapshot fetch failed", "partition", cerr.Partition, "error", infraerr.SanitizeError(cerr.Err))
		}}
	return rd.FollowTopic(ctx, nil, func() {
		log.Info("snapshot view caught up", "topic", topic, "nodes", v.len())
		v.markReady()
	}, func(m *sarama.ConsumerMessage) error {
		if err := v.Apply(m.Key, m.Value, pipeline.SnapshotState(m.Headers)); err != nil {
			log.Warn("snapshot ignored", "partition", m.Partition, "offset", m.Offset, "error", infraerr.SanitizeError(err))
		}
		return nil
	})
}

func (v *View) markReady() { v.once.Do(func() { close(v.ready) }) }

func (v *View) len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.nodes)
}
