package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/retry"
)

// Correlation puts msg.CorrelationID and a logger carrying it into the
// handler's context, so every log line about the message has correlation_id.
func Correlation(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msg *Message) error {
			l := log.With("topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset)
			return next(observability.WithCorrelation(ctx, l, msg.CorrelationID), msg)
		}
	}
}

// PanicError is what Recover turns a handler panic into. It is a bug, not bad
// input and not a transient failure: it is not retried and goes to the DLQ.
type PanicError struct {
	Value any
	Stack string
}

func (p *PanicError) Error() string { return fmt.Sprintf("handler panic: %v", p.Value) }

// Recover turns a panic in the handler into a *PanicError so one poison
// message cannot kill the partition's consumer.
func Recover() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msg *Message) (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = &PanicError{Value: r, Stack: string(debug.Stack())}
				}
			}()
			return next(ctx, msg)
		}
	}
}

// Measure records handling time (labelled with m's handler name, see
// Metrics.Handler) and the outcome of each message. A nil m measures nothing.
func Measure(m *Metrics) Middleware {
	return func(next Handler) Handler {
		if m == nil {
			return next
		}
		return func(ctx context.Context, msg *Message) error {
			start := time.Now()
			err := next(ctx, msg)
			m.ObserveHandler(msg.Topic, time.Since(start))
			if err == nil && !msg.deadLettered {
				m.Consumed.WithLabelValues(msg.Topic, "handled").Inc()
			}
			return err
		}
	}
}

// Retry retries the handler with policy p while its error is retriable by
// infraerr's classification (connection, timeout, unavailable, rate limited).
// Content and configuration errors, panics and exhausted retries are returned
// for DeadLetter to park. While waiting between attempts it gives up with
// retry.ErrStopped when the partition is revoked or the service stops, leaving
// the message uncommitted for the next owner.
func Retry(p retry.Policy, m *Metrics) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msg *Message) error {
			return retry.Do(ctx, p, Stopping(ctx), retriable,
				func(attempt int, err error, wait time.Duration) {
					if m != nil {
						m.Retries.WithLabelValues(msg.Topic).Inc()
					}
					observability.Logger(ctx).Warn("handler failed, will retry",
						"attempt", attempt, "wait_ms", wait.Milliseconds(),
						"error", infraerr.SanitizeError(err), "error_code", infraerr.Code(err))
				},
				func(ctx context.Context, attempt int) error {
					msg.Attempt = attempt
					return next(ctx, msg)
				})
		}
	}
}

func retriable(err error) bool {
	var p *PanicError
	if errors.As(err, &p) {
		return false
	}
	return infraerr.Retriable(err)
}

// DeadLetterer parks a message that could not be handled. DeadLetter must
// return nil only once the broker has acknowledged the DLQ record, because
// the runner commits the message's offset right after.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, msg *Message, cause error) error
}

// DeadLetter sends every message whose handler failed for good to dl, then
// reports it handled so the partition moves on. A failed DLQ write is retried
// with backoff until it succeeds or the partition stops; the message then
// stays uncommitted, so it is neither lost nor skipped. retry.ErrStopped passes
// through untouched: a stopped retry is not a failure.
func DeadLetter(dl DeadLetterer, m *Metrics) Middleware {
	backoff := retry.Policy{MaxAttempts: 10, Initial: 200 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.25}
	return func(next Handler) Handler {
		return func(ctx context.Context, msg *Message) error {
			err := next(ctx, msg)
			if err == nil || errors.Is(err, retry.ErrStopped) {
				return err
			}
			log := observability.Logger(ctx)
			var p *PanicError
			if errors.As(err, &p) {
				log.Error("handler panicked", "panic", infraerr.SanitizeString(fmt.Sprint(p.Value)), "stack", p.Stack)
			}
			for {
				derr := retry.Do(ctx, backoff, Stopping(ctx), nil, nil, func(ctx context.Context, _ int) error {
					return dl.DeadLetter(ctx, msg, err)
				})
				if derr == nil {
					break
				}
				log.Error("dead-letter publish failed; message stays uncommitted",
					"error", infraerr.SanitizeError(derr))
				if errors.Is(derr, retry.ErrStopped) {
					return derr
				}
			}
			msg.deadLettered = true
			if m != nil {
				m.Consumed.WithLabelValues(msg.Topic, "dead_lettered").Inc()
			}
			log.Warn("message dead-lettered",
				"error", infraerr.SanitizeError(err), "error_type", infraerr.TypeName(err), "error_code", infraerr.Code(err))
			return nil
		}
	}
}

// Standard composes the middlewares every consuming service uses, in order:
// correlation, metrics, dead letter, retry, panic recovery.
func Standard(h Handler, log *slog.Logger, m *Metrics, p retry.Policy, dl DeadLetterer) Handler {
	return Chain(h, Correlation(log), Measure(m), DeadLetter(dl, m), Retry(p, m), Recover())
}
