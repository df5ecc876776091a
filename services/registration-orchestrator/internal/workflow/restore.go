package workflow

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/compacted"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// ReadState reads the compacted aggregation topic from its start to the
// high-water mark each partition had when the read began, all partitions at
// once, and returns the latest aggregation per node (tombstones remove). A
// value is read in either form, protobuf or the older JSON
// (DecodeAggregation); one that does not decode is skipped with a warning:
// one bad record must not block start-up.
// It fails when reading a partition makes no progress for timeout (no
// record arrives while records are due): a bound on the whole read would,
// once the topic held more than the bound's worth of records, fail every
// restart and keep the orchestrator from ever becoming ready.
func (w *Workflow) ReadState(ctx context.Context, client sarama.Client, timeout time.Duration) (map[uuid.UUID]*Aggregation, error) {
	out := map[uuid.UUID]*Aggregation{}
	var mu sync.Mutex
	rd := compacted.Reader{Client: client, Topic: w.cfg.StateTopic, Operation: "restore_aggregations", Stall: timeout}
	if _, err := rd.ReadTopic(ctx, func(m *sarama.ConsumerMessage) error {
		mu.Lock()
		defer mu.Unlock()
		w.applyStateRecord(out, m)
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}

func (w *Workflow) applyStateRecord(out map[uuid.UUID]*Aggregation, m *sarama.ConsumerMessage) {
	node, err := uuid.ParseBytes(m.Key)
	if err != nil {
		w.cfg.Log.Warn("aggregation record with a key that is not a node id skipped", "partition", m.Partition, "offset", m.Offset)
		return
	}
	if len(m.Value) == 0 {
		delete(out, node)
		return
	}
	a, err := DecodeAggregation(m.Headers, m.Value)
	if err == nil && a.NodeID != node {
		err = fmt.Errorf("aggregation of node %s under key %s", a.NodeID, node)
	}
	if err != nil {
		w.cfg.Log.Warn("undecodable aggregation record skipped", "node_id", node.String(), "partition", m.Partition, "offset", m.Offset,
			"error", infraerr.SanitizeError(err))
		return
	}
	out[node] = a
}

// partitionOf is the intents-topic partition of a node (the hash partitioner
// every producer of the node-keyed topics uses).
func partitionOf(topic string, node uuid.UUID, n int32) int32 {
	p, err := sarama.NewHashPartitioner(topic).Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(node.String())}, n)
	if err != nil {
		return -1
	}
	return p
}

// Assign takes over the aggregations of the intents-topic partitions in
// claims: it reads the state topic and keeps the nodes that hash to them,
// then wakes the retry loop so retries re-arm from their stored
// next_retry_at. It runs before any record of the new assignment is
// handled (bus.RunnerConfig.OnAssign).
func (w *Workflow) Assign(ctx context.Context, client sarama.Client, claims map[string][]int32, timeout time.Duration) error {
	parts := claims[w.cfg.IntentsTopic]
	if err := client.RefreshMetadata(w.cfg.IntentsTopic, w.cfg.ResultsTopic); err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "metadata"}, "refresh metadata")
	}
	ip, err := client.Partitions(w.cfg.IntentsTopic)
	if err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "metadata", Target: w.cfg.IntentsTopic}, "partitions")
	}
	state := map[uuid.UUID]*Aggregation{}
	if len(parts) > 0 {
		if state, err = w.ReadState(ctx, client, timeout); err != nil {
			return err
		}
	}
	owned := map[int32]bool{}
	for _, p := range parts {
		owned[p] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.owned, w.partitions = owned, int32(len(ip))
	w.aggs, w.dirty = map[uuid.UUID]*Aggregation{}, map[uuid.UUID]bool{}
	due := 0
	for node, a := range state {
		if p := partitionOf(w.cfg.IntentsTopic, node, w.partitions); owned[p] {
			a.partition = p
			w.aggs[node] = a
			if !a.NextDue().IsZero() {
				due++
			}
		}
	}
	w.m.inFlight.Set(float64(len(w.aggs)))
	w.resetScheduleLocked()
	w.cfg.Log.Info("aggregations restored", "partitions", parts, "in_flight", len(w.aggs), "retries_armed", due)
	return nil
}

// Revoke drops the in-memory state of every partition (the consumer group
// revokes all partitions on a rebalance). Work not yet persisted is not
// lost: its input was not committed, or its retry is stored.
func (w *Workflow) Revoke() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aggs, w.dirty, w.owned = map[uuid.UUID]*Aggregation{}, map[uuid.UUID]bool{}, map[int32]bool{}
	w.resetScheduleLocked()
	w.m.inFlight.Set(0)
}
