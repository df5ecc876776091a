// Package effect applies postgres intents to the projection in batches and
// answers each with pipeline.EffectResults.
//
// Processor.Handle is the intents consumer's bus.Handle. Its guarantees, for
// one batch of records of one partition:
//   - Nothing is lost: it returns the batch finished only once every intent
//     is applied or rejected as poison; the runner then sends the batch's
//     results (acknowledged) and parks the poison before it commits.
//   - Per-node order: the batch is applied in offset order in one
//     transaction; the sequence guards make any order safe anyway. The
//     results are returned in offset order.
//   - Retriable failures (connection, timeout, shutdown, deadlock, open
//     breaker) and other backend failures are retried in place with backoff
//     while the partition waits; while the breaker is open no database call
//     is made. Each intent's first failure is answered with a failed result
//     (Retriable true: the effect is still on it), published at once while
//     the batch waits, and its eventual application with a success result
//     among the batch's records.
//   - Poison (a record that is not an intent, a bad payload, data the table
//     refuses): a failed result when the record is an intent
//     (POSTGRES_UPSERT_ERROR or INVALID_TARGET_BACKEND, Retriable false)
//     among the batch's records, and a bus.Reject outcome, so the runner
//     dead-letters it with the content error as the reason; the rest of the
//     batch is applied without it.
//   - An intent whose record asks for failed results only
//     (pipeline.HeaderResults, an intent the orchestrator routed untracked)
//     gets its failed results but no success result; it is counted instead.
//   - Shutdown or revocation while waiting: Handle returns ErrStopped and
//     the batch stays uncommitted for the next owner (applying it again is a no-op that
//     reports Stale).
package effect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/breaker"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// ErrStopped is what Handle returns when the
// partition stopped (shutdown or revocation) before the batch was done.
var ErrStopped = retry.ErrStopped

// Applier applies writes in one transaction (store.Store).
type Applier interface {
	Apply(ctx context.Context, writes []store.Write) ([]store.Outcome, error)
}

// Results makes the records of effect results (KafkaResults): Message for
// the results a batch returns to the runner, PublishResults for the failed
// results sent while a batch waits (nil only once the broker acknowledged
// all).
type Results interface {
	Message(r *pipeline.EffectResult) (*sarama.ProducerMessage, error)
	PublishResults(ctx context.Context, res []*pipeline.EffectResult) error
}

// Metrics are the effect's series.
type Metrics struct {
	Intents   *prometheus.CounterVec // onex_projector_intents_total{intent_type,outcome}
	Results   *prometheus.CounterVec // onex_projector_results_total{success,error_code}
	NotSent   prometheus.Counter     // onex_projector_results_not_sent_total
	Failures  *prometheus.CounterVec // onex_projector_apply_failures_total{error_code}
	BatchSize prometheus.Histogram   // onex_projector_batch_size
	BatchTime prometheus.Histogram   // onex_projector_batch_apply_seconds
}

// NewMetrics creates the series and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Intents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_projector_intents_total",
			Help: "Postgres intents handled, by intent type and outcome (inserted, updated, stale, poison)."}, []string{"intent_type", "outcome"}),
		Results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_projector_results_total",
			Help: "Effect results published, by success and error code (empty on success)."}, []string{"success", "error_code"}),
		NotSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_projector_results_not_sent_total",
			Help: "Success results not published because the intent's record asked for failed results only (routed untracked)."}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_projector_apply_failures_total",
			Help: "Failed attempts to apply a batch, by error code."}, []string{"error_code"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onex_projector_batch_size",
			Help: "Intents per applied batch.", Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}}),
		BatchTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onex_projector_batch_apply_seconds",
			Help: "Time of one successful batch apply (one transaction).", Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10)}),
	}
	if reg != nil {
		reg.MustRegister(m.Intents, m.Results, m.NotSent, m.Failures, m.BatchSize, m.BatchTime)
	}
	return m
}

// Processor is the effect. Create it with New; it is safe for concurrent use
// by the partitions' consumers.
type Processor struct {
	apply   Applier
	cb      *breaker.Breaker
	results Results
	backoff retry.Policy
	timeout time.Duration
	m       *Metrics
	busm    *bus.Metrics
	log     *slog.Logger
	now     func() time.Time
}

// Options configure a Processor.
type Options struct {
	// Backoff spaces the in-place retries; attempts beyond MaxAttempts keep
	// waiting the capped delay (the effect never gives up on a backend).
	Backoff retry.Policy
	// Timeout bounds one batch apply (spec: database query timeout 30 s).
	Timeout time.Duration
	// BusMetrics, if set, counts the in-place retries with the bus's series
	// (the runner counts the records it finishes).
	BusMetrics *bus.Metrics
	Log        *slog.Logger
}

// New returns a processor.
func New(a Applier, cb *breaker.Breaker, r Results, m *Metrics, o Options) *Processor {
	if m == nil {
		m = NewMetrics(nil)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Backoff.MaxAttempts <= 0 {
		o.Backoff = DefaultBackoff()
	}
	return &Processor{apply: a, cb: cb, results: r, backoff: o.Backoff, timeout: o.Timeout, m: m,
		busm: o.BusMetrics, log: o.Log, now: time.Now}
}

// DefaultBackoff is the spec's database retry matrix (6.4): 0.5 s doubling
// to 30 s, 25 % jitter.
func DefaultBackoff() retry.Policy {
	return retry.Policy{MaxAttempts: 10, Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.25}
}

// wait sleeps the backoff of attempt, cut short when the breaker lets a
// trial call through earlier. False when stopped.
func (p *Processor) wait(ctx context.Context, stop <-chan struct{}, attempt int) bool {
	d := p.backoff.Delay(min(attempt, p.backoff.MaxAttempts-1), rand.Float64())
	if left := p.cb.RetryAfter(); left > 0 && left < d {
		d = left + 10*time.Millisecond
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

func (p *Processor) itemLog(ctx context.Context, it *Item) *slog.Logger {
	l := observability.Logger(observability.WithCorrelation(ctx, p.log, it.CorrelationID)).With(
		"topic", it.Msg.Topic, "partition", it.Msg.Partition, "offset", it.Msg.Offset)
	if it.Intent != nil {
		l = l.With("intent_id", it.Intent.IntentID.String(), "intent_type", it.Intent.IntentType,
			"node_id", it.Intent.NodeID.String(), "sequence", it.Intent.Sequence)
	}
	return l
}

func (p *Processor) result(it *Item, success, stale bool, err error, code string, retriable bool, took time.Duration) *pipeline.EffectResult {
	in := it.Intent
	r := &pipeline.EffectResult{
		IntentID: in.IntentID, IntentType: in.IntentType, Backend: store.Backend, NodeID: in.NodeID,
		CorrelationID: it.CorrelationID, RegistrationAttemptID: in.RegistrationAttemptID, Sequence: in.Sequence,
		Attempt: in.Attempt, Success: success, Stale: stale, Retriable: retriable,
		DurationMS: float64(took.Microseconds()) / 1000, BackendID: store.Backend, Completed: pipeline.T(p.now()),
	}
	if !success {
		text := store.ResultError(err)
		r.Error, r.ErrorCode = &text, &code
	}
	return r
}

// Handle is the effect's bus.Handle: it processes one batch of records of
// one partition, in offset order. See the package documentation for its
// guarantees. The runner's stop channel (bus.Stopping) closes when the
// partition stops (shutdown, revocation); ctx is cancelled only when work in
// flight must be abandoned.
func (p *Processor) Handle(ctx context.Context, msgs []*bus.Message) (bus.Output, error) {
	if len(msgs) == 0 {
		return bus.Output{}, nil
	}
	stop := bus.Stopping(ctx)
	topic := msgs[0].Topic
	items := make([]*Item, len(msgs))
	var pending []*Item
	for i, m := range msgs {
		it := Decode(m)
		items[i] = it
		// The runner cannot read a protobuf intent's correlation id: the
		// message carries the intent's, so its dead letter does too.
		m.CorrelationID = it.CorrelationID
		if it.Err == nil {
			pending = append(pending, it)
			continue
		}
		p.itemLog(ctx, it).Warn("postgres intent is poison", "error_code", it.Code,
			"error", infraerr.SanitizeError(it.Err), "error_type", infraerr.TypeName(it.Err))
		if it.Intent != nil {
			it.result = p.result(it, false, false, it.Err, it.Code, false, 0)
		}
	}

	reported := map[*Item]bool{}
	start := p.now()
	for attempt := 0; len(pending) > 0; {
		writes := make([]store.Write, len(pending))
		for i, it := range pending {
			writes[i] = it.Write
		}
		var outs []store.Outcome
		t0 := p.now()
		err := p.cb.Do("apply", func() error {
			actx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			var err error
			outs, err = p.apply.Apply(actx, writes)
			return err
		})
		if err == nil {
			took := p.now().Sub(t0)
			p.m.BatchSize.Observe(float64(len(writes)))
			p.m.BatchTime.Observe(took.Seconds())
			for i, it := range pending {
				p.m.Intents.WithLabelValues(it.Intent.IntentType, outs[i].String()).Inc()
				if !it.FailuresOnly {
					stale := outs[i] == store.Stale
					it.result = p.result(it, true, stale, nil, "", false, p.now().Sub(start))
				}
				if reported[it] {
					p.itemLog(ctx, it).Info("postgres intent applied after failures", "outcome", outs[i].String(), "attempts", attempt+1)
				}
			}
			break
		}
		var be *store.BatchError
		if errors.As(err, &be) && be.Index >= 0 && store.IsDataError(be.Err) {
			// One intent's data is refused: reject it, apply the rest at once.
			it := pending[be.Index]
			it.Err, it.Code = be.Err, store.CodeUpsert
			p.itemLog(ctx, it).Warn("postgres refused the intent's data", "error_code", it.Code,
				"error", infraerr.SanitizeError(be.Err), "error_type", infraerr.TypeName(be.Err))
			it.result = p.result(it, false, false, be.Err, it.Code, false, p.now().Sub(start))
			pending = append(pending[:be.Index:be.Index], pending[be.Index+1:]...)
			continue
		}
		code := store.ResultCode(err)
		if code == store.CodeUpsert {
			// A content error not tied to one write cannot happen; treat it
			// like any unexplained backend failure rather than drop data.
			code = store.CodeUnknown
		}
		p.m.Failures.WithLabelValues(code).Inc()
		var first []*pipeline.EffectResult
		var firstItems []*Item
		for _, it := range pending {
			if !reported[it] {
				first = append(first, p.result(it, false, false, err, code, true, p.now().Sub(start)))
				firstItems = append(firstItems, it)
			}
		}
		if len(first) > 0 {
			for _, it := range firstItems {
				p.itemLog(ctx, it).Warn("postgres intent not applied yet; retrying in place", "error_code", code,
					"error", infraerr.SanitizeError(err))
			}
			// Sent now, while the batch waits, not with the batch's records:
			// the orchestrator learns of the failure while it lasts. Best
			// effort: an intent whose failure could not be reported is
			// reported on the next failure, and its success result is sent
			// before its offset is committed anyway.
			if perr := p.results.PublishResults(ctx, first); perr == nil {
				for _, it := range firstItems {
					reported[it] = true
				}
				p.countResults(first)
			} else {
				p.log.Warn("could not publish failed results", "error", infraerr.SanitizeError(perr), "count", len(first))
			}
		}
		p.log.Warn("postgres batch failed; waiting to retry", "error_code", code, "error", infraerr.SanitizeError(err),
			"batch", len(pending), "attempt", attempt+1, "breaker_state", p.cb.State(), "partition", msgs[0].Partition)
		if p.busm != nil {
			p.busm.Retries.WithLabelValues(topic).Inc()
		}
		if !p.wait(ctx, stop, attempt) {
			return bus.Output{}, fmt.Errorf("effect: %w", ErrStopped)
		}
		attempt++
	}
	return p.finish(msgs, items)
}

// finish turns a handled batch into its output: the final results as
// records in offset order, for the runner to send before it commits, and a
// rejection (its dead letter) for every poison record.
func (p *Processor) finish(msgs []*bus.Message, items []*Item) (bus.Output, error) {
	var out bus.Output
	var final []*pipeline.EffectResult
	notSent := 0
	for i, it := range items {
		if it.result != nil {
			rec, err := p.results.Message(it.result)
			if err != nil {
				return bus.Output{}, err
			}
			out.Records = append(out.Records, rec)
			final = append(final, it.result)
		}
		if it.Err == nil {
			if it.FailuresOnly {
				notSent++
			}
			continue
		}
		if out.Outcomes == nil {
			out.Outcomes = bus.Outcomes(len(msgs))
		}
		out.Outcomes[i] = bus.Reject(it.Err)
		typ := "unknown"
		if it.Intent != nil {
			typ = it.Intent.IntentType
		}
		p.m.Intents.WithLabelValues(typ, "poison").Inc()
	}
	p.countResults(final)
	p.m.NotSent.Add(float64(notSent))
	return out, nil
}

func (p *Processor) countResults(rs []*pipeline.EffectResult) {
	for _, r := range rs {
		code := ""
		if r.ErrorCode != nil {
			code = *r.ErrorCode
		}
		p.m.Results.WithLabelValues(fmt.Sprint(r.Success), code).Inc()
	}
}
