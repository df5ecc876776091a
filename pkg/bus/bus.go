// Package bus is the Kafka plumbing every service shares: a sarama
// configuration with the fleet's guarantees, a producer, and a consumer-group
// runner that hands each message to a plain handler function.
//
// Guarantees of Runner:
//   - Per partition, messages are handled one at a time in offset order, so
//     every record of one key (node_id) is handled in order by one instance.
//     In batch mode (RunnerConfig.BatchHandler) a partition's consecutive
//     records are handed over together, batch after batch, in offset order;
//     a failed batch falls back to the per-message handler (BatchError).
//   - An offset is marked for commit only after its message was handled or
//     accepted by the dead-letter publisher; a crash or a rebalance redelivers
//     everything after the last committed offset (at-least-once).
//   - Retriable failures are retried with the spec's exponential backoff and
//     jitter; content errors and exhausted retries go to the DLQ, and the
//     partition moves on.
//   - On shutdown intake stops at once, the message in flight finishes (up to
//     the drain deadline), marked offsets are committed, then the group is left.
//
// Cross-cutting behaviour is composed from middlewares (Correlation, Recover,
// Metrics, Retry, DeadLetter), each a function wrapping a Handler.
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

// Handler handles one message. Returning nil means the message is done and
// its offset may be committed. Handlers must be safe to call again with the
// same message (redelivery after a crash).
type Handler func(ctx context.Context, msg *Message) error

// Middleware wraps a Handler with one cross-cutting behaviour.
type Middleware func(Handler) Handler

// Chain wraps h in mws so that mws[0] is outermost: Chain(h, a, b)(ctx, m)
// runs a, which calls b, which calls h.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
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
