package app

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

// restore rebuilds partition p's state from the snapshot topic's partition p
// (the snapshot topic is co-partitioned with the input: same partition count,
// same key, same hash). It reads committed records from the oldest offset to
// the end offset taken when it starts; tombstones remove nodes. The caller
// must have initialised its transactional producer for p first, so that an
// open transaction of a previous owner is aborted and cannot appear later.
func restore(ctx context.Context, client sarama.Client, p int32, idle time.Duration) (*state.Partition, int, error) {
	part := state.NewPartition(p)
	end, err := client.GetOffset(topics.RegistrationSnapshots, p, sarama.OffsetNewest)
	if err != nil {
		return nil, 0, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "restore", Target: topics.RegistrationSnapshots}, "end offset", err)
	}
	start, err := client.GetOffset(topics.RegistrationSnapshots, p, sarama.OffsetOldest)
	if err != nil {
		return nil, 0, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "restore", Target: topics.RegistrationSnapshots}, "start offset", err)
	}
	if end <= start {
		return part, 0, nil
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, 0, fmt.Errorf("restore: consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topics.RegistrationSnapshots, p, sarama.OffsetOldest)
	if err != nil {
		return nil, 0, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "restore", Target: topics.RegistrationSnapshots}, "consume", err)
	}
	defer pc.Close()
	// The last offsets of a transactional partition are commit markers that
	// are never delivered; once nothing arrives for idle after the fetches
	// reached the end offset, the partition is fully read.
	records := 0
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, records, ctx.Err()
		case err := <-pc.Errors():
			return nil, records, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "restore", Target: topics.RegistrationSnapshots}, "fetch", err)
		case m := <-pc.Messages():
			records++
			if len(m.Value) == 0 {
				if id, err := uuid.ParseBytes(m.Key); err == nil {
					part.Delete(id)
				}
			} else if st, err := wire.RestoreState(m.Value); err == nil && st != nil {
				part.Put(st)
			} else if err != nil {
				return nil, records, fmt.Errorf("restore: partition %d offset %d: %w", p, m.Offset, err)
			}
			if m.Offset >= end-1 {
				return part, records, nil
			}
			if !timer.Stop() {
				<-timer.C
			}
			timer.Reset(idle)
		case <-timer.C:
			if pc.HighWaterMarkOffset() >= end {
				return part, records, nil
			}
			timer.Reset(idle)
		}
	}
}
