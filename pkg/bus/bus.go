// Package bus is the Kafka plumbing every service shares: a sarama
// configuration with the fleet's guarantees, a producer, and a consumer-group
// runner that hands batches of records to one handler function and carries
// out what it returns.
//
// Guarantees of Runner:
//   - Per partition, records are handed to the group's Handle in batches of
//     consecutive records, one batch after the other in offset order, so
//     every record of one key (node_id) is handled in order by one instance.
//   - The records a batch produced are sent, and acknowledged, before any
//     of its offsets is marked; an offset is marked only once its message
//     is done or accepted by the dead-letter publisher. A crash or a
//     rebalance redelivers everything after the last committed offset
//     (at-least-once).
//   - What became of each message is the handler's Outcome: done, retry
//     (with the group's backoff and jitter, then the DLQ once the attempts
//     are spent) or dead letter with a reason. A batch that fails as a
//     whole is handed again one message at a time, so one poison record
//     costs one message's slow path and the partition moves on.
//   - On shutdown intake stops at once, the batch in flight finishes (up to
//     the drain deadline), marked offsets are committed, then the group is
//     left.
//
// The runner is the only consumer loop of the services. Its transactional
// mode (Transactions) commits each batch's records and offsets in one Kafka
// transaction, for the reducer (docs/architecture.md, "One consumer loop").
package bus

import (
	"context"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
)

// Message is one consumed Kafka record as handlers see it.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []*sarama.RecordHeader
	Timestamp time.Time
	// CorrelationID is the body's top-level correlation_id when it is a UUID,
	// else the correlation_id header, else a fresh v4 (spec 1.5: the body is
	// authoritative, the header is random on Python envelope publishes).
	CorrelationID uuid.UUID
	// Attempt counts handler attempts for this delivery, starting at 0.
	Attempt int

	deadLettered bool
}

// DeadLettered reports whether the message was parked in the DLQ rather than
// handled.
func (m *Message) DeadLettered() bool { return m.deadLettered }

// Header returns the value of the first header named key, or nil.
func (m *Message) Header(key string) []byte {
	for _, h := range m.Headers {
		if h != nil && string(h.Key) == key {
			return h.Value
		}
	}
	return nil
}

// ConsumerMessage rebuilds the sarama form of m, for publishers (DLQ) that
// take it.
func (m *Message) ConsumerMessage() *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Key: m.Key, Value: m.Value, Headers: m.Headers, Timestamp: m.Timestamp,
	}
}

type stopKey struct{}

// withStop attaches the channel that closes when the runner stops taking new
// work for this message's partition (shutdown or rebalance).
func withStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}

// Stopping returns a channel closed when the runner is shutting down or the
// partition of the message being handled is being revoked. Handlers may keep
// working on the message in flight (their ctx is cancelled only at the drain
// deadline) but should not start waits of their own, such as retry backoff.
// Outside a runner it returns nil, which blocks forever in a select.
func Stopping(ctx context.Context) <-chan struct{} {
	c, _ := ctx.Value(stopKey{}).(<-chan struct{})
	return c
}
