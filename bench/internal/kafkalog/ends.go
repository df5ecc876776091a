// Package kafkalog tells what was written to Kafka between two instants:
// the end (high-water mark) of every partition of every topic at each, the
// stretch of log each partition grew by in between, and how much of that
// stretch is records rather than transaction markers.
package kafkalog

import (
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// Ends are the high-water marks of partitions, by topic and partition:
// the offset the next record written will take.
type Ends map[string]map[int32]int64

// Internal reports a topic of Kafka's own (__consumer_offsets,
// __transaction_state): what the clients write there is their offsets and
// transaction state, not records of the fleet's.
func Internal(topic string) bool { return strings.HasPrefix(topic, "__") }

// ReadEnds reads the high-water mark of every partition of every topic
// but Kafka's own, in one ListOffsets request per broker, so that the
// reading is close to one instant. The request reads uncommitted: the
// high-water mark, past open transactions, not the last stable offset.
func ReadEnds(client sarama.Client) (Ends, error) {
	if err := client.RefreshMetadata(); err != nil {
		return nil, fmt.Errorf("kafka metadata: %w", err)
	}
	names, err := client.Topics()
	if err != nil {
		return nil, fmt.Errorf("kafka topics: %w", err)
	}
	reqs := map[*sarama.Broker]*sarama.OffsetRequest{}
	for _, t := range names {
		if Internal(t) {
			continue
		}
		parts, err := client.Partitions(t)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", t, err)
		}
		for _, p := range parts {
			leader, err := client.Leader(t, p)
			if err != nil {
				return nil, fmt.Errorf("leader of %s/%d: %w", t, p, err)
			}
			req := reqs[leader]
			if req == nil {
				req = sarama.NewOffsetRequest(client.Config().Version)
				reqs[leader] = req
			}
			req.AddBlock(t, p, sarama.OffsetNewest, 1)
		}
	}
	out := Ends{}
	for broker, req := range reqs {
		resp, err := broker.GetAvailableOffsets(req)
		if err != nil {
			return nil, fmt.Errorf("list offsets on broker %d: %w", broker.ID(), err)
		}
		for t, blocks := range resp.Blocks {
			for p, blk := range blocks {
				if errors.Is(blk.Err, sarama.ErrUnknownTopicOrPartition) {
					continue // deleted since the metadata was read
				}
				if !errors.Is(blk.Err, sarama.ErrNoError) {
					return nil, fmt.Errorf("end of %s/%d: %w", t, p, blk.Err)
				}
				if len(blk.Offsets) != 1 {
					return nil, fmt.Errorf("end of %s/%d: %d offsets in the answer", t, p, len(blk.Offsets))
				}
				if out[t] == nil {
					out[t] = map[int32]int64{}
				}
				out[t][p] = blk.Offsets[0]
			}
		}
	}
	return out, nil
}
