package replay

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
)

// Replay header names (spec 8.4), written in this order.
const (
	HeaderReplayCount         = dlq.HeaderReplayCount
	HeaderReplayedAt          = "x-replayed-at"
	HeaderReplayedBy          = "x-replayed-by"
	HeaderOriginalDLQOffset   = "x-original-dlq-offset"
	HeaderReplayCorrelationID = "x-replay-correlation-id"
)

// ReplayedBy is the x-replayed-by header and the quarantined_by member: the
// spec's fixed name of the replay engine, kept so that Python tooling that
// looks for it recognizes replays made by this one.
const ReplayedBy = "node_dlq_replay_effect"

var kafkaNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func validKafkaName(s string) bool { return kafkaNameRE.MatchString(s) && s != "." && s != ".." }

// originalPartition travels in ProducerMessage.Metadata to Partitioner.
type originalPartition int32

// ReplayMessage builds the record that replays the DLQ record e (spec 8.4):
//   - topic original_topic, key original_message.key (none when null),
//     value original_message.value, byte for byte as stored — or, for a
//     protobuf original, the bytes dlq.RestoreValue gives back;
//   - headers, in this order: x-replay-count = retry_count + 1,
//     x-replayed-at (now, isoformat), x-replayed-by =
//     node_dlq_replay_effect, x-original-dlq-offset = e's offset,
//     x-replay-correlation-id = runID (one per run), correlation_id = the
//     record's correlation id, as stored, then for a protobuf original its
//     content_type, which its readers go by.
//
// It fails, and builds nothing, when the original value cannot be restored
// (see Decide): a record is never replayed as other bytes than it had.
//
// The original partition, when the record has one, rides along for
// Partitioner, so the replay lands where the original producer put the
// message and keeps its order relative to the key's other messages.
func ReplayMessage(e *Entry, runID uuid.UUID, now time.Time) (*sarama.ProducerMessage, error) {
	if e.Record == nil {
		return nil, errors.New("replay: only a decoded DLQ record can be replayed")
	}
	r := e.Record
	if !validKafkaName(r.OriginalTopic) {
		return nil, fmt.Errorf("replay: original_topic %q is not a valid Kafka topic name", r.OriginalTopic)
	}
	value, contentType, err := dlq.RestoreValue(r.OriginalMessage.Value, e.Header)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	h := func(k, v string) sarama.RecordHeader { return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	pm := &sarama.ProducerMessage{
		Topic: r.OriginalTopic,
		Value: sarama.ByteEncoder(value),
		Headers: []sarama.RecordHeader{
			h(HeaderReplayCount, strconv.Itoa(r.RetryCount+1)),
			h(HeaderReplayedAt, dlq.FormatTimestamp(now)),
			h(HeaderReplayedBy, ReplayedBy),
			h(HeaderOriginalDLQOffset, strconv.FormatInt(e.Offset, 10)),
			h(HeaderReplayCorrelationID, runID.String()),
			h(dlq.HeaderCorrelationID, r.CorrelationID),
		},
	}
	if contentType != "" {
		pm.Headers = append(pm.Headers, h(dlq.HeaderContentType, contentType))
	}
	if r.OriginalMessage.Key != nil {
		pm.Key = sarama.ByteEncoder([]byte(*r.OriginalMessage.Key))
	}
	if p := r.OriginalMessage.Partition; p != nil && *p >= 0 {
		pm.Metadata = originalPartition(*p)
	}
	return pm, nil
}

// Partitioner is the sarama PartitionerConstructor of the replay producer:
// a message built by ReplayMessage goes to its original partition when the
// topic still has it, anything else is hashed like the fleet's producers
// (sarama's FNV-1a hash partitioner).
func Partitioner(topic string) sarama.Partitioner {
	return partitioner{hash: sarama.NewHashPartitioner(topic)}
}

type partitioner struct{ hash sarama.Partitioner }

func (p partitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	if op, ok := m.Metadata.(originalPartition); ok && int32(op) < n {
		return int32(op), nil
	}
	return p.hash.Partition(m, n)
}

// RequiresConsistency is true: a key must map to the same partition.
func (p partitioner) RequiresConsistency() bool { return true }
