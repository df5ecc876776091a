package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
)

// BatchHandler handles consecutive records of one partition, in offset
// order, in one call: what the partition has buffered, up to
// RunnerConfig.MaxBatch. Returning nil means every message is done and the
// batch's offsets may be committed. To report that only a prefix is done,
// return a *BatchError; any other error means none is known to be done.
// Like Handler it must be safe to call again with the same messages.
type BatchHandler func(ctx context.Context, msgs []*Message) error

// BatchError reports that a BatchHandler finished msgs[:Done] and stopped
// at msgs[Done] because of Err. The runner commits the prefix, hands
// msgs[Done] alone to RunnerConfig.Handler (retries, dead letter) and then
// gives the rest to the BatchHandler again, so one bad record costs one
// message's slow path and the records after it keep their order.
type BatchError struct {
	Done int
	Err  error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("batch stopped at message %d: %v", e.Done, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// Default batch bounds (RunnerConfig.MaxBatch, Linger).
const (
	DefaultMaxBatch = 500
	DefaultLinger   = 5 * time.Millisecond
)

// consumeBatches is ConsumeClaim in batch mode: take what the claim has
// buffered (up to MaxBatch, waiting at most Linger for more), hand it to the
// BatchHandler, mark the last offset once it returned nil.
func (h *groupHandler) consumeBatches(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	stop := s.Context().Done()
	pos := h.r.cfg.Metrics.Track(h.r.cfg.Group, c)
	defer pos.Close()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var batch []*sarama.ConsumerMessage
		select {
		case <-stop:
			return nil
		case cm, ok := <-c.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, cm)
		}
		pos.Taken(batch[0].Offset)
		batch = h.fill(batch, c, stop)
		msgs := make([]*Message, len(batch))
		for i, cm := range batch {
			msgs[i] = FromConsumerMessage(cm)
		}
		if !h.handleBatch(s, pos, batch, msgs) {
			return nil
		}
	}
}

// fill adds what the claim has buffered, up to MaxBatch, waiting at most
// Linger in total for a batch that is not full.
func (h *groupHandler) fill(batch []*sarama.ConsumerMessage, c sarama.ConsumerGroupClaim, stop <-chan struct{}) []*sarama.ConsumerMessage {
	var linger <-chan time.Time
	if h.r.cfg.Linger > 0 {
		t := time.NewTimer(h.r.cfg.Linger)
		defer t.Stop()
		linger = t.C
	}
	for len(batch) < h.r.cfg.MaxBatch {
		select {
		case cm, ok := <-c.Messages():
			if !ok {
				return batch
			}
			batch = append(batch, cm)
			continue
		default:
		}
		if linger == nil {
			return batch
		}
		select {
		case cm, ok := <-c.Messages():
			if !ok {
				return batch
			}
			batch = append(batch, cm)
		case <-linger:
			return batch
		case <-stop:
			return batch
		}
	}
	return batch
}

// handleBatch runs the BatchHandler on msgs and marks what it finished. A
// failed batch falls back to Handler, one message at a time: for a
// *BatchError only the message it names (then the rest is a batch again),
// for any other error every message of the batch, since which one failed is
// unknown. It returns false when the claim stops with work left undone.
func (h *groupHandler) handleBatch(s sarama.ConsumerGroupSession, pos *Position, cms []*sarama.ConsumerMessage, msgs []*Message) bool {
	stop := s.Context().Done()
	mark := func(cm *sarama.ConsumerMessage) {
		s.MarkMessage(cm, "")
		pos.Done(cm.Offset)
	}
	for len(msgs) > 0 {
		err := h.callBatch(withStop(h.work, stop), msgs)
		if err == nil {
			mark(cms[len(cms)-1])
			return true
		}
		var be *BatchError
		done := -1
		if errors.As(err, &be) && be.Done >= 0 && be.Done < len(msgs) {
			done = be.Done
			if done > 0 {
				h.r.cfg.Metrics.batchHandled(msgs[0].Topic, done)
				mark(cms[done-1])
			}
		}
		select {
		case <-stop:
			return false
		case <-h.work.Done():
			return false
		default:
		}
		if done < 0 {
			h.r.cfg.Log.Warn("batch failed; handling its messages one at a time", "topic", msgs[0].Topic, "partition", msgs[0].Partition,
				"first_offset", msgs[0].Offset, "last_offset", msgs[len(msgs)-1].Offset, "error", infraerr.SanitizeError(err))
			for i, m := range msgs {
				if !h.handle(s, m) {
					return false
				}
				mark(cms[i])
			}
			return true
		}
		m := msgs[done]
		h.r.cfg.Log.Debug("batch stopped at a message; handling it alone", "topic", m.Topic, "partition", m.Partition,
			"offset", m.Offset, "correlation_id", m.CorrelationID.String(), "error", infraerr.SanitizeError(err))
		if !h.handle(s, m) {
			return false
		}
		mark(cms[done])
		msgs, cms = msgs[done+1:], cms[done+1:]
	}
	return true
}

// callBatch runs the BatchHandler once, turning a panic into a *PanicError
// (the messages then go through Handler, whose Recover sends the culprit to
// the dead-letter queue), and counts and times (RunnerConfig.Metrics, one
// observation per call) the messages of a batch that succeeded.
func (h *groupHandler) callBatch(ctx context.Context, msgs []*Message) (err error) {
	topic := msgs[0].Topic
	ctx = observability.WithLogger(ctx, h.r.cfg.Log.With("topic", topic, "partition", msgs[0].Partition))
	n := len(msgs)
	h.r.inflight.Add(int64(n))
	m := h.r.cfg.Metrics
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: string(debug.Stack())}
		}
		h.r.inflight.Add(-int64(n))
		m.ObserveHandler(topic, time.Since(start))
		if err == nil {
			m.batchHandled(topic, n)
		}
	}()
	return h.r.cfg.BatchHandler(ctx, msgs)
}

// batchHandled counts n messages of topic handled by a BatchHandler.
func (m *Metrics) batchHandled(topic string, n int) {
	if m != nil {
		m.Consumed.WithLabelValues(topic, "handled").Add(float64(n))
	}
}

// MessageContext is the context a batch handler gives a step about one of
// its messages: the batch's logger with the message's offset and
// correlation_id, as Correlation gives a per-message handler.
func MessageContext(ctx context.Context, msg *Message) context.Context {
	return observability.WithCorrelation(ctx, observability.Logger(ctx).With("offset", msg.Offset), msg.CorrelationID)
}
