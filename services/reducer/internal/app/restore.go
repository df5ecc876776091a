package app

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/compacted"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/liveness"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

// partitionKey returns base with the first suffix ".<i>" that sarama's hash
// partitioner sends to partition p of a topic with n partitions, so a
// record the reducer keeps for partition p (a restore marker, a liveness
// checkpoint) lands where partition p's restore reads it. The search is
// deterministic: the same base always gives the same key, which compaction
// and tombstones rely on.
func partitionKey(topic, base string, p, n int32) string {
	hp := sarama.NewHashPartitioner(topic)
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s.%d", base, i)
		got, err := hp.Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k)}, n)
		if err == nil && got == p {
			return k
		}
	}
}

// markerKey returns the restore marker's key for partition p.
func markerKey(topic string, p, n int32) string {
	return partitionKey(topic, fmt.Sprintf("%s%d", pipeline.RestoreMarkerPrefix, p), p, n)
}

// writeMarkers commits, in its own transaction, a tombstone with a marker
// key on partition p of each of the given topics and returns their offsets,
// in order. Restore reads each topic up to its marker: everything committed
// before it is then known to have been read, however the fetches are split,
// and the commit markers that end every transaction cannot make the end of
// the partition ambiguous. The key is not a node id, so snapshot readers
// ignore it, and compaction keeps one marker per partition.
func writeMarkers(prod sarama.SyncProducer, p, n int32, topics ...string) ([]int64, error) {
	if err := prod.BeginTxn(); err != nil {
		return nil, err
	}
	offs := make([]int64, len(topics))
	for i, topic := range topics {
		gotP, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(markerKey(topic, p, n))})
		if err != nil {
			_ = prod.AbortTxn()
			return nil, err
		}
		if gotP != p {
			_ = prod.AbortTxn()
			return nil, fmt.Errorf("restore marker landed on partition %d of %s, want %d", gotP, topic, p)
		}
		offs[i] = off
	}
	if err := prod.CommitTxn(); err != nil {
		_ = prod.AbortTxn()
		return nil, err
	}
	return offs, nil
}

// tuneRestore sets what a restore client needs that a consumer group's
// client does not.
func tuneRestore(cfg *sarama.Config) {
	// The restore reads up to the marker it has just committed, and the
	// marker becomes readable (read_committed) only once its transaction's
	// commit markers are written, a few milliseconds after the commit
	// returns: the fetch that asks for it too early waits MaxWaitTime for
	// data. At the default 500 ms that wait was most of an empty
	// partition's restore (680 ms) and the tail of every other.
	cfg.Consumer.MaxWaitTime = 20 * time.Millisecond
	cfg.ChannelBufferSize = restoreBuffer
	cfg.Consumer.Fetch.Default = restoreFetch
}

// A restore's fetches are larger and its buffer deeper than a consumer
// group's, so the next fetch overlaps the decoding of the last: with
// sarama's defaults (1 MiB, 256 records) a partition alternated between
// waiting for a fetch and decoding it. 100,000 nodes on one partition
// restored in 1.5-1.6 s instead of 1.65-1.75 s (TestRestore100kNodes);
// larger values gained little more and raise the restore's peak memory,
// which a memory limit counts.
const (
	restoreBuffer       = 1024
	restoreFetch  int32 = 4 << 20
)

// restore rebuilds partition p's state from partition p of the snapshot
// topic (co-partitioned with the input: same partition count, same key, same
// hash). It reads committed records from the oldest offset up to and
// including the marker at offset upTo; tombstones remove nodes. A record's
// state is in its pipeline.HeaderReducerState header, or, written before
// that header, in its value.
func restore(ctx context.Context, client sarama.Client, topic string, p int32, upTo int64) (*state.Partition, int, error) {
	part := state.NewPartition(p)
	n, err := restoreReader(client, topic).ReadPartition(ctx, p, sarama.OffsetOldest, upTo+1, func(m *sarama.ConsumerMessage) error {
		id, kerr := uuid.ParseBytes(m.Key)
		switch {
		case kerr != nil:
			// a restore marker or a foreign record: not a node
		case len(m.Value) == 0:
			part.Delete(id)
		default:
			st, err := wire.RestoreState(m.Value, pipeline.SnapshotState(m.Headers))
			if err != nil {
				return fmt.Errorf("restore: partition %d offset %d: %w", p, m.Offset, err)
			}
			part.Put(st)
		}
		return nil
	})
	if err != nil {
		return nil, n, err
	}
	return part, n, nil
}

// restoreLiveness reads partition p of the liveness topic up to and
// including the marker at offset upTo and returns the partition's tracker
// and the input offset its heartbeat replay starts from (-1: none).
func restoreLiveness(ctx context.Context, client sarama.Client, topic string, p int32, upTo int64) (*liveness.Tracker, int64, error) {
	latest := map[string][]byte{}
	_, err := restoreReader(client, topic).ReadPartition(ctx, p, sarama.OffsetOldest, upTo+1, func(m *sarama.ConsumerMessage) error {
		if len(m.Value) == 0 {
			delete(latest, string(m.Key)) // a tombstone, or a restore marker
			return nil
		}
		latest[string(m.Key)] = m.Value
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	values := make([][]byte, 0, len(latest))
	for _, v := range latest {
		values = append(values, v)
	}
	return liveness.Load(p, 0, values)
}

// replayHeartbeats re-applies the liveness moves of the heartbeats in
// partition p of the input from offset from up to (not including) offset
// to: those committed after the last liveness checkpoint, whose moves no
// record holds. Everything else those inputs did is in the snapshots
// already (every other change writes one), so only a heartbeat that moves
// nothing but liveness is applied, and nothing is emitted. A heartbeat that
// the snapshots already cover is stale against them and changes nothing.
func replayHeartbeats(ctx context.Context, client sarama.Client, topic string, p int32, from, to int64,
	part *state.Partition, live *liveness.Tracker, params decide.Params) (replayed, moved int, err error) {
	if from < 0 || from >= to {
		return 0, 0, nil
	}
	replayed, err = restoreReader(client, topic).ReadPartition(ctx, p, from, to, func(m *sarama.ConsumerMessage) error {
		if replayHeartbeat(m, part, live, params) {
			moved++
		}
		return nil
	})
	return replayed, moved, err
}

// replayHeartbeat re-applies one input record of a restore's replay and
// reports whether it moved a node's liveness.
func replayHeartbeat(m *sarama.ConsumerMessage, part *state.Partition, live *liveness.Tracker, params decide.Params) bool {
	in, _, err := decodeInput(m.Headers, m.Value)
	if err != nil || in.Kind != processor.KindHeartbeat {
		return false // dead-lettered, or no liveness of its own
	}
	d := decide.DecideHeartbeat(part.Get(in.Heartbeat.NodeID), in.Heartbeat, in.Now, params)
	if !d.Emit || !d.LivenessOnly {
		return false
	}
	part.Put(d.State)
	live.Moved(d.State)
	return true
}

// resolveOffset turns a consumer group's initial offset, which is a
// sentinel when the group has not committed one, into an offset.
func resolveOffset(client sarama.Client, topic string, p int32, off int64) (int64, error) {
	if off >= 0 {
		return off, nil
	}
	got, err := client.GetOffset(topic, p, off)
	if err != nil {
		return 0, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "restore", Target: topic}, "offset", err)
	}
	return got, nil
}

// restoreReader reads the reducer's restores from the claim's own client
// (tuneRestore). Each of them normally ends at a record that is delivered
// (the marker it wrote; the input record before the group's offset), and
// then ends the moment that record arrives; only a range whose last offsets
// hold no record waits out the reader's Settle.
func restoreReader(client sarama.Client, topic string) compacted.Reader {
	return compacted.Reader{Client: client, Topic: topic, Operation: "restore"}
}

// releaseRestoreGarbage collects what the restores of a session left behind
// and returns the freed pages to the OS, once every claimed partition is
// restored. A restore allocates about as much short-lived memory (fetched
// batches, decoding) as the state it builds, and a GC cycle that runs in the
// middle of it sets the heap goal from that peak: the runtime then keeps the
// pages, and a reducer holding 100,000 nodes in 50 MiB of live heap stayed at
// 200 MiB resident. One collection here (tens of milliseconds at that size)
// puts the goal back at twice the state.
func releaseRestoreGarbage(log *slog.Logger) {
	start := time.Now()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	log.Info("restore garbage released", "heap_live_mib", m.HeapAlloc>>20, "heap_released_mib", m.HeapReleased>>20,
		"next_gc_mib", m.NextGC>>20, "took_ms", time.Since(start).Milliseconds())
}
