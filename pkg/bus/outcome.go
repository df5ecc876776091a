package bus

import (
	"context"

	"github.com/IBM/sarama"
)

// Handle is the one handler shape of the fleet: it takes consecutive
// records of one partition of one topic, in offset order, and returns the
// records they produced and what became of each of them. The Runner sends
// the records, dead-letters what the handler rejected, retries what it
// asked to retry and commits the rest; a handler does none of that itself.
//
// Returning an error means the batch failed as a whole and nothing of it is
// known to be done: its records are dropped and the Runner hands its
// messages again one at a time (a batch of one whose call fails is retried
// by the Runner's policy while the error is retriable, then dead-lettered).
// A panic is such an error, never retried.
//
// Like every at-least-once consumer, a Handle must be safe to call again
// with messages it has seen (redelivery after a crash, a rebalance or a
// failed send).
type Handle func(ctx context.Context, msgs []*Message) (Output, error)

// Output is what one Handle call produced.
type Output struct {
	// Records are sent in one acknowledged send before any offset of the
	// batch is marked, so what a message produced exists before the message
	// is committed. A failed send fails the batch (see Handle).
	Records []*sarama.ProducerMessage
	// Outcomes holds one Outcome per message of the batch, in order. nil
	// means every message is done.
	Outcomes []Outcome
}

// Verdict is what became of one message.
type Verdict uint8

const (
	// Done: handled; its offset may be committed.
	Done Verdict = iota
	// Retry: failed for now. The first Retry of a batch ends it there: the
	// messages before it are finished as their outcomes say, the Runner
	// waits its retry policy's delay and hands this message and every one
	// after it again (their outcomes in this Output are ignored, so a
	// handler should stop at a message it retries and produce no records
	// for the ones after it). Once the policy's attempts are spent the
	// message is dead-lettered with the last reason.
	Retry
	// DeadLetter: can never be handled. The Runner parks it in the
	// dead-letter queue with Outcome.Err as the reason and moves on.
	DeadLetter
)

// String names v as the logs and metrics do.
func (v Verdict) String() string {
	switch v {
	case Done:
		return "done"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead_letter"
	}
	return "unknown"
}

// Outcome is one message's verdict and, for Retry and DeadLetter, why.
type Outcome struct {
	Verdict Verdict
	Err     error
}

// Reject is the outcome of a message that can never be handled: it goes to
// the dead-letter queue with err as the reason.
func Reject(err error) Outcome { return Outcome{Verdict: DeadLetter, Err: err} }

// RetryLater is the outcome of a message that failed for now (see Retry).
func RetryLater(err error) Outcome { return Outcome{Verdict: Retry, Err: err} }

// Outcomes returns n Done outcomes, for a handler that rejects a few
// messages of a batch.
func Outcomes(n int) []Outcome { return make([]Outcome, n) }

// outcome returns the outcome of message i of out's batch.
func (o Output) outcome(i int) Outcome {
	if i < len(o.Outcomes) {
		return o.Outcomes[i]
	}
	return Outcome{}
}

// Sender sends records and returns nil only once the broker acknowledged
// every one of them (Producer).
type Sender interface {
	Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error
}
