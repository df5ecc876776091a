package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
)

// Transactions switches a Runner to its transactional mode, for a
// consume-transform-produce handler that must be exactly-once (the
// reducer). Each claimed partition gets a transactional producer of its
// own, and each batch is one Kafka transaction: the records the handler
// returned, the dead-letter records of the messages it rejected and the
// batch's input offsets commit together or not at all.
//
// Guarantees, in addition to the Runner's ordering and draining:
//   - The producer of partition p is initialised before anything of the
//     claim is handled; as its transactional id is the same for every
//     owner of p, that fences the previous owner and aborts its open
//     transaction.
//   - A failed transaction is aborted, the handler is told (Aborted: the
//     state its decisions changed must be rebuilt) and, after the Retry
//     policy's delay, the same batch is handed again, without end: a batch
//     of a transactional handler is never split, skipped or dead-lettered
//     for a failure of Kafka. A fenced producer ends the claim (the
//     partition has a new owner).
//   - Offsets are committed only in transactions: the group's config must
//     disable auto-commit, and the runner marks nothing.
//
// Trade-offs: a transaction per batch costs a few broker round trips, paid
// once per batch rather than per record; Retry outcomes are not supported
// (a transactional batch is all or nothing: return an error instead).
type Transactions struct {
	// Producer returns the config of the transactional producer of a
	// claimed partition. Its transactional id must be stable per group and
	// partition ("<group>-p<partition>"), so the next owner fences this one.
	Producer func(topic string, partition int32) (*sarama.Config, error)
	// Claim sets up a claimed partition (the reducer restores its state
	// here) once its producer is initialised, and returns its handler. An
	// error is retried with the Retry policy's delays until it succeeds or
	// the claim stops; the partition is not consumed meanwhile.
	Claim func(ctx context.Context, c PartitionClaim, prod sarama.SyncProducer) (TxnHandler, error)
	// DeadLetter builds the dead-letter record of a message the handler
	// rejected; it goes out in the batch's transaction.
	DeadLetter func(m *Message, cause error) (*sarama.ProducerMessage, error)
	// Step, if set, observes the time of each step of a transaction:
	// "decide" (the handler), "send", "offsets", "commit".
	Step func(step string, d time.Duration)
}

// PartitionClaim names a partition a transactional runner claimed.
type PartitionClaim struct {
	Topic     string
	Partition int32
	// InitialOffset is the group's committed offset of the partition (or
	// the reset position): the first record the claim will hand over.
	InitialOffset int64
}

// TxnHandler is the handler of one claimed partition in transactional
// mode. Its methods are called from the claim's goroutine only.
type TxnHandler interface {
	// Handle decides a batch, as a Handle does (Retry outcomes are not
	// supported). An error aborts the batch like a failed transaction.
	Handle(ctx context.Context, msgs []*Message) (Output, error)
	// Committed runs once the batch's transaction committed.
	Committed(msgs []*Message, out Output)
	// Aborted runs after a transaction of msgs failed and was aborted,
	// before the batch is handed again: what Handle changed for it was not
	// committed. An error is retried until it succeeds or the claim stops.
	Aborted(ctx context.Context) error
	// Close runs when the claim ends.
	Close()
}

// errFenced ends a claim whose producer a newer owner fenced.
var errFenced = errors.New("bus: transactional producer fenced: the partition moved to another instance")

// consumeTransactions is ConsumeClaim in transactional mode.
func (h *groupHandler) consumeTransactions(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	r := h.r
	tx := r.cfg.Transactions
	stop := s.Context().Done()
	log := r.cfg.Log.With("topic", c.Topic(), "partition", c.Partition())
	b := &claimBatch{h: h, s: s, stop: stop}
	pause := func(attempt int) bool {
		return b.pause(r.cfg.Retry.Delay(min(attempt, r.cfg.Retry.MaxAttempts-1), rand.Float64()))
	}
	pos := r.cfg.Metrics.Track(r.cfg.Group, c)
	defer pos.Close()

	pc, err := tx.Producer(c.Topic(), c.Partition())
	if err != nil {
		return fmt.Errorf("bus: transactional producer config: %w", err)
	}
	var prod sarama.SyncProducer
	for attempt := 0; ; attempt++ {
		if prod, err = sarama.NewSyncProducer(r.cfg.Brokers, pc); err == nil {
			break
		}
		log.Error("transactional producer; retrying", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return nil
		}
	}
	defer prod.Close()
	var th TxnHandler
	for attempt := 0; ; attempt++ {
		if th, err = tx.Claim(s.Context(), PartitionClaim{Topic: c.Topic(), Partition: c.Partition(), InitialOffset: c.InitialOffset()}, prod); err == nil {
			break
		}
		log.Error("claim setup failed; retrying", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return nil
		}
	}
	defer th.Close()

	meta := sarama.NewConsumerGroupMetadataFromSession(s, r.cfg.Group, nil)
	t := &txnBatch{claimBatch: b, tx: tx, th: th, prod: prod, meta: meta, log: log}
	for {
		batch, msgs, ok := h.take(c, pos, stop)
		if !ok {
			return nil
		}
		start := time.Now()
		r.inflight.Add(int64(len(msgs)))
		committed := t.commit(msgs, batch[len(batch)-1], pause)
		r.inflight.Add(-int64(len(msgs)))
		if !committed {
			return nil
		}
		pos.Done(batch[len(batch)-1].Offset)
		r.cfg.Metrics.ObserveHandler(c.Topic(), time.Since(start))
	}
}

// txnBatch runs a claim's batches in transactions.
type txnBatch struct {
	*claimBatch
	tx   *Transactions
	th   TxnHandler
	prod sarama.SyncProducer
	meta *sarama.ConsumerGroupMetadata
	log  *slog.Logger
}

// commit runs msgs in a transaction until it commits (true) or the claim
// stops or its producer is fenced (false). last is the batch's last record,
// whose offset the transaction commits.
func (t *txnBatch) commit(msgs []*Message, last *sarama.ConsumerMessage, pause func(int) bool) bool {
	for attempt := 0; ; attempt++ {
		out, err := t.transact(msgs, last)
		if err == nil {
			t.committed(msgs, out)
			return true
		}
		if errors.Is(err, errFenced) {
			t.log.Warn("producer fenced: partition moved to another instance", "error", infraerr.SanitizeError(err))
			return false
		}
		t.log.Warn("transaction failed; the handler rebuilds its state and the batch is tried again", "attempt", attempt,
			"first_offset", msgs[0].Offset, "last_offset", last.Offset, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return false
		}
		for a := 0; ; a++ {
			err := t.th.Aborted(withStop(t.h.work, t.stop))
			if err == nil {
				break
			}
			t.log.Error("rebuilding state after an aborted transaction failed; retrying", "attempt", a, "error", infraerr.SanitizeError(err))
			if !pause(a) {
				return false
			}
		}
		for _, m := range msgs {
			m.Attempt++
		}
	}
}

// transact is one attempt: decide, then begin, send, add the offsets and
// commit, aborting on any failure.
func (t *txnBatch) transact(msgs []*Message, last *sarama.ConsumerMessage) (Output, error) {
	t0 := time.Now()
	step := func(name string) {
		if t.tx.Step != nil {
			now := time.Now()
			t.tx.Step(name, now.Sub(t0))
			t0 = now
		}
	}
	out, err := t.decide(msgs)
	if err != nil {
		return out, err
	}
	recs := out.Records
	for i, m := range msgs {
		switch o := out.outcome(i); o.Verdict {
		case Done:
		case DeadLetter:
			rec, err := t.tx.DeadLetter(m, o.Err)
			if err != nil {
				return out, fmt.Errorf("bus: dead-letter record: %w", err)
			}
			recs = append(recs, rec)
		default:
			return out, fmt.Errorf("bus: outcome %s in a transactional batch", o.Verdict)
		}
	}
	step("decide")
	if err := t.prod.BeginTxn(); err != nil {
		return out, fenced(err)
	}
	abort := func(cause error) error {
		if aerr := t.prod.AbortTxn(); aerr != nil {
			t.log.Warn("abort transaction", "error", infraerr.SanitizeError(aerr))
		}
		return fenced(cause)
	}
	if len(recs) > 0 {
		if err := t.prod.SendMessages(recs); err != nil {
			return out, abort(err)
		}
	}
	step("send")
	if err := t.prod.AddMessageToTxnWithGroupMetadata(last, t.meta, nil); err != nil {
		return out, abort(err)
	}
	step("offsets")
	if err := t.prod.CommitTxn(); err != nil {
		return out, abort(err)
	}
	step("commit")
	return out, nil
}

// fenced marks err as errFenced when the broker says a newer producer
// took the transactional id.
func fenced(err error) error {
	if errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch) {
		return fmt.Errorf("%w: %w", errFenced, err)
	}
	return err
}

// decide runs the handler once, turning a panic into a *PanicError (the
// batch is then aborted and tried again: a transactional handler's batch
// is never dead-lettered whole), and checks its outcomes.
func (t *txnBatch) decide(msgs []*Message) (out Output, err error) {
	r := t.h.r
	ctx := observability.WithLogger(withStop(t.h.work, t.stop), r.cfg.Log.With("topic", msgs[0].Topic, "partition", msgs[0].Partition))
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: string(debug.Stack())}
			r.cfg.Log.Error("handler panicked", "topic", msgs[0].Topic, "partition", msgs[0].Partition,
				"panic", infraerr.SanitizeString(fmt.Sprint(p)), "stack", err.(*PanicError).Stack)
		}
	}()
	out, err = t.th.Handle(ctx, msgs)
	if err == nil && out.Outcomes != nil && len(out.Outcomes) != len(msgs) {
		err = fmt.Errorf("bus: handler returned %d outcomes for %d messages", len(out.Outcomes), len(msgs))
	}
	return out, err
}

// committed counts a committed batch and tells the handler.
func (t *txnBatch) committed(msgs []*Message, out Output) {
	if m := t.h.r.cfg.Metrics; m != nil {
		dead := 0
		for i, msg := range msgs {
			if out.outcome(i).Verdict == DeadLetter {
				msg.deadLettered = true
				dead++
			}
		}
		topic := msgs[0].Topic
		t.counted(topic, len(msgs)-dead)
		if dead > 0 {
			m.Consumed.WithLabelValues(topic, "dead_lettered").Add(float64(dead))
		}
		for _, rec := range out.Records {
			m.Produced.WithLabelValues(rec.Topic).Inc()
		}
	}
	t.th.Committed(msgs, out)
}
