package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/retry"
)

// PanicError is what a Handle's panic becomes. It is a bug, not bad input
// and not a transient failure: it is not retried and the message that
// caused it goes to the DLQ.
type PanicError struct {
	Value any
	Stack string
}

func (p *PanicError) Error() string { return fmt.Sprintf("handler panic: %v", p.Value) }

// Default batch bounds (RunnerConfig.MaxBatch, Linger).
const (
	DefaultMaxBatch = 500
	DefaultLinger   = 5 * time.Millisecond
)

// ConsumeClaim takes what the claim has buffered (up to MaxBatch, waiting
// at most Linger for more), hands it to the Handle and finishes it, batch
// after batch, in offset order.
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	if h.r.cfg.Transactions != nil {
		return h.consumeTransactions(s, c)
	}
	stop := s.Context().Done()
	pos := h.r.cfg.Metrics.Track(h.r.cfg.Group, c)
	defer pos.Close()
	for {
		_, msgs, ok := h.take(c, pos, stop)
		if !ok {
			return nil
		}
		b := &claimBatch{h: h, s: s, pos: pos, stop: stop}
		if !b.run(msgs) {
			return nil
		}
	}
}

// take waits for the claim's next record and returns the batch that
// starts with it (fill), as records and as Messages; false when the claim
// stops or ends first. Stop is checked first: once the session ends nothing
// new is taken even if the channel still has buffered records.
func (h *groupHandler) take(c sarama.ConsumerGroupClaim, pos *Position, stop <-chan struct{}) ([]*sarama.ConsumerMessage, []*Message, bool) {
	select {
	case <-stop:
		return nil, nil, false
	default:
	}
	var batch []*sarama.ConsumerMessage
	select {
	case <-stop:
		return nil, nil, false
	case cm, ok := <-c.Messages():
		if !ok {
			return nil, nil, false
		}
		batch = append(batch, cm)
	}
	pos.Taken(batch[0].Offset)
	batch = h.fill(batch, c, stop)
	msgs := make([]*Message, len(batch))
	for i, cm := range batch {
		msgs[i] = FromConsumerMessage(cm)
	}
	return batch, msgs, true
}

// fill adds what the claim has buffered, up to MaxBatch, waiting at most
// Linger in total for a batch that is not full.
func (h *groupHandler) fill(batch []*sarama.ConsumerMessage, c sarama.ConsumerGroupClaim, stop <-chan struct{}) []*sarama.ConsumerMessage {
	var linger <-chan time.Time
	if h.r.cfg.Linger > 0 && h.r.cfg.MaxBatch > 1 {
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

// claimBatch finishes one batch of a claim: Handle, send, dead letters,
// retries, marks.
type claimBatch struct {
	h    *groupHandler
	s    sarama.ConsumerGroupSession
	pos  *Position
	stop <-chan struct{}
}

// run handles msgs until every one is finished (true) or the claim stops
// with some unfinished (false: their offsets stay unmarked).
func (b *claimBatch) run(msgs []*Message) bool {
	cfg := b.h.r.cfg
	for len(msgs) > 0 {
		out, err := b.call(msgs)
		if err == nil {
			err = b.send(msgs, out.Records)
		}
		if err != nil {
			if b.stopping(err) {
				// A handler that gave up because the claim is stopping
				// has not failed: the batch stays unmarked for the next
				// owner, and nothing of it is tried again or
				// dead-lettered here.
				return false
			}
			if len(msgs) > 1 {
				// Which message failed is unknown: hand them one at a time,
				// so one poison record costs one message's slow path.
				cfg.Log.Warn("batch failed; handling its messages one at a time", "topic", msgs[0].Topic, "partition", msgs[0].Partition,
					"first_offset", msgs[0].Offset, "last_offset", msgs[len(msgs)-1].Offset,
					"error", infraerr.SanitizeError(err), "error_code", infraerr.Code(err))
				for _, m := range msgs {
					if !b.run([]*Message{m}) {
						return false
					}
				}
				return true
			}
			out = Output{Outcomes: []Outcome{failed(err)}}
		}
		next, ok := b.finish(msgs, out)
		if !ok {
			return false
		}
		msgs = next
	}
	return true
}

// failed is the outcome of a batch of one whose Handle or send failed:
// retried while the error is retriable, else dead-lettered.
func failed(err error) Outcome {
	var p *PanicError
	if errors.As(err, &p) || !infraerr.Retriable(err) {
		return Reject(err)
	}
	return RetryLater(err)
}

// finish carries out out's outcomes for msgs in order and marks what is
// finished. It returns the messages to hand again (from the first Retry on;
// nil when all are finished) and false when the claim stopped.
func (b *claimBatch) finish(msgs []*Message, out Output) ([]*Message, bool) {
	cfg := b.h.r.cfg
	handled := 0
	for i, m := range msgs {
		o := out.outcome(i)
		switch o.Verdict {
		case Done:
			handled++
		case DeadLetter:
			if !b.deadLetter(m, o.Err) {
				b.counted(msgs[0].Topic, handled)
				b.markBefore(msgs, i)
				return nil, false
			}
		default: // Retry, and any verdict this code does not know
			b.counted(msgs[0].Topic, handled)
			b.markBefore(msgs, i)
			if b.stopping(o.Err) {
				return nil, false
			}
			if o.Err == nil {
				o.Err = fmt.Errorf("handler asked to retry with verdict %s", o.Verdict)
			}
			if m.Attempt+1 >= cfg.Retry.MaxAttempts {
				cfg.Log.Warn("retries spent; dead-lettering", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
					"correlation_id", m.CorrelationID.String(), "attempts", m.Attempt+1)
				if !b.deadLetter(m, o.Err) {
					return nil, false
				}
				b.mark(m)
				return msgs[i+1:], true
			}
			if cfg.Metrics != nil {
				cfg.Metrics.Retries.WithLabelValues(m.Topic).Inc()
			}
			wait := cfg.Retry.Delay(m.Attempt, rand.Float64())
			cfg.Log.Warn("handler failed, will retry", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
				"correlation_id", m.CorrelationID.String(), "attempt", m.Attempt, "wait_ms", wait.Milliseconds(),
				"error", infraerr.SanitizeError(o.Err), "error_code", infraerr.Code(o.Err))
			if !b.pause(wait) {
				return nil, false
			}
			m.Attempt++
			return msgs[i:], true
		}
	}
	b.counted(msgs[0].Topic, handled)
	b.mark(msgs[len(msgs)-1])
	return nil, true
}

// call runs the Handle once, turning a panic into a *PanicError, and times
// the call (RunnerConfig.Metrics, one observation per call).
func (b *claimBatch) call(msgs []*Message) (out Output, err error) {
	r := b.h.r
	topic := msgs[0].Topic
	ctx := observability.WithLogger(withStop(b.h.work, b.stop), r.cfg.Log.With("topic", topic, "partition", msgs[0].Partition))
	n := int64(len(msgs))
	r.inflight.Add(n)
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: string(debug.Stack())}
			r.cfg.Log.Error("handler panicked", "topic", topic, "partition", msgs[0].Partition,
				"panic", infraerr.SanitizeString(fmt.Sprint(p)), "stack", err.(*PanicError).Stack)
		}
		r.inflight.Add(-n)
		r.cfg.Metrics.ObserveHandler(topic, time.Since(start))
	}()
	out, err = r.cfg.Handle(ctx, msgs)
	if err == nil && out.Outcomes != nil && len(out.Outcomes) != len(msgs) {
		err = fmt.Errorf("bus: handler returned %d outcomes for %d messages", len(out.Outcomes), len(msgs))
	}
	return out, err
}

// send sends a batch's records. Send errors keep their classification; a
// runner without a Sender cannot send and fails as a configuration error.
func (b *claimBatch) send(msgs []*Message, recs []*sarama.ProducerMessage) error {
	if len(recs) == 0 {
		return nil
	}
	r := b.h.r
	if r.cfg.Send == nil {
		return infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish", Target: msgs[0].Topic},
			"runner has no sender for the handler's records", nil)
	}
	ctx := withStop(b.h.work, b.stop)
	return r.cfg.Send.Send(ctx, recs...)
}

// deadLetter parks m with cause, retrying a failed DLQ write with backoff
// until it succeeds or the claim stops (false: m stays uncommitted, neither
// lost nor skipped).
func (b *claimBatch) deadLetter(m *Message, cause error) bool {
	cfg := b.h.r.cfg
	if cause == nil {
		cause = errors.New("handler rejected the message without a reason")
	}
	log := cfg.Log.With("topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "correlation_id", m.CorrelationID.String())
	for attempt := 0; ; attempt++ {
		err := errors.New("runner has no dead-letter publisher")
		if cfg.DeadLetter != nil {
			err = cfg.DeadLetter.DeadLetter(withStop(b.h.work, b.stop), m, cause)
		}
		if err == nil {
			break
		}
		log.Error("dead-letter publish failed; message stays uncommitted", "attempt", attempt,
			"error", infraerr.SanitizeError(err), "cause", infraerr.SanitizeError(cause))
		if !b.pause(deadLetterBackoff.Delay(min(attempt, deadLetterBackoff.MaxAttempts-1), rand.Float64())) {
			return false
		}
	}
	m.deadLettered = true
	if cfg.Metrics != nil {
		cfg.Metrics.Consumed.WithLabelValues(m.Topic, "dead_lettered").Inc()
	}
	log.Warn("message dead-lettered",
		"error", infraerr.SanitizeError(cause), "error_type", infraerr.TypeName(cause), "error_code", infraerr.Code(cause))
	return true
}

// deadLetterBackoff spaces the attempts at a DLQ write: the broker is the
// problem, so the runner keeps trying, at most every 10 s.
var deadLetterBackoff = retry.Policy{MaxAttempts: 10, Initial: 200 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.25}

// pause waits d; false when the claim stops or the drain deadline passes
// first.
func (b *claimBatch) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.stop:
		return false
	case <-b.h.work.Done():
		return false
	case <-t.C:
		return true
	}
}

// stopping reports whether the claim is stopping (shutdown, revocation,
// the drain deadline) or err says a handler gave up because of it.
func (b *claimBatch) stopping(err error) bool {
	if errors.Is(err, retry.ErrStopped) {
		return true
	}
	select {
	case <-b.stop:
		return true
	case <-b.h.work.Done():
		return true
	default:
		return false
	}
}

// markBefore marks the message before msgs[i], if any.
func (b *claimBatch) markBefore(msgs []*Message, i int) {
	if i > 0 {
		b.mark(msgs[i-1])
	}
}

// mark marks m's offset for commit: every message up to it is finished.
func (b *claimBatch) mark(m *Message) {
	b.s.MarkOffset(m.Topic, m.Partition, m.Offset+1, "")
	b.pos.Done(m.Offset)
}

// counted counts n messages of topic handled.
func (b *claimBatch) counted(topic string, n int) {
	if m := b.h.r.cfg.Metrics; m != nil && n > 0 {
		m.Consumed.WithLabelValues(topic, "handled").Add(float64(n))
	}
}

// MessageContext is the context a batch handler gives a step about one of
// its messages: the batch's logger with the message's offset and
// correlation_id.
func MessageContext(ctx context.Context, msg *Message) context.Context {
	return observability.WithCorrelation(ctx, observability.Logger(ctx).With("offset", msg.Offset), msg.CorrelationID)
}
