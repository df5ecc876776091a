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

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

// markerKey returns a key that sarama's hash partitioner sends to partition
// p of a topic with n partitions, so the restore marker lands where it is read.
func markerKey(topic string, p, n int32) string {
	hp := sarama.NewHashPartitioner(topic)
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s%d.%d", pipeline.RestoreMarkerPrefix, p, i)
		got, err := hp.Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k)}, n)
		if err == nil && got == p {
			return k
		}
	}
}

// writeMarker commits, in its own transaction, a tombstone with a marker key
// on partition p of the snapshot topic and returns its offset. Restore reads
// up to that offset: everything committed before it is then known to have
// been read, however the fetches are split, and the commit markers that end
// every transaction cannot make the end of the partition ambiguous. The key
// is not a node id, so snapshot readers ignore it, and compaction keeps one
// marker per partition.
func writeMarker(prod sarama.SyncProducer, topic string, p, n int32) (int64, error) {
	if err := prod.BeginTxn(); err != nil {
		return 0, err
	}
	gotP, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(markerKey(topic, p, n))})
	if err != nil {
		_ = prod.AbortTxn()
		return 0, err
	}
	if gotP != p {
		_ = prod.AbortTxn()
		return 0, fmt.Errorf("restore marker landed on partition %d, want %d", gotP, p)
	}
	if err := prod.CommitTxn(); err != nil {
		_ = prod.AbortTxn()
		return 0, err
	}
	return off, nil
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
	start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
	if err != nil {
		return nil, 0, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "restore", Target: topic}, "start offset", err)
	}
	if upTo < start {
		return part, 0, nil
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, 0, fmt.Errorf("restore: consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
	if err != nil {
		return nil, 0, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "restore", Target: topic}, "consume", err)
	}
	defer pc.Close()
	records := 0
	for {
		select {
		case <-ctx.Done():
			return nil, records, ctx.Err()
		case err := <-pc.Errors():
			return nil, records, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "restore", Target: topic}, "fetch", err)
		case m := <-pc.Messages():
			records++
			id, kerr := uuid.ParseBytes(m.Key)
			switch {
			case kerr != nil:
				// a restore marker or a foreign record: not a node
			case len(m.Value) == 0:
				part.Delete(id)
			default:
				st, err := wire.RestoreState(m.Value, pipeline.SnapshotState(m.Headers))
				if err != nil {
					return nil, records, fmt.Errorf("restore: partition %d offset %d: %w", p, m.Offset, err)
				}
				part.Put(st)
			}
			if m.Offset >= upTo {
				return part, records, nil
			}
		}
	}
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
