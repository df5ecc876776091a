// Package effect applies postgres intents to the projection in batches and
// answers each with pipeline.EffectResults.
//
// Guarantees of Processor.Handle, for one batch of records of one partition:
//   - Nothing is lost: Handle returns nil (the caller may commit the batch)
//     only once every intent of the batch is applied, or dead-lettered as
//     poison, and every result is acknowledged by the broker.
//   - Per-node order: the batch is applied in offset order in one
//     transaction; the sequence guards make any order safe anyway.
//   - Retriable failures (connection, timeout, shutdown, deadlock, open
//     breaker) and other backend failures are retried in place with backoff
//     while the partition waits; while the breaker is open no database call
//     is made. Each intent's first failure is answered with a failed result
//     (Retriable true: the effect is still on it), and its eventual
//     application with a success result.
//   - Poison (a record that is not an intent, a bad payload, data the table
//     refuses): a failed result when the record is an intent
//     (POSTGRES_UPSERT_ERROR or INVALID_TARGET_BACKEND, Retriable false),
//     then the DLQ; the rest of the batch is applied without it.
//   - An intent whose record asks for failed results only
//     (pipeline.HeaderResults, an intent the orchestrator routed untracked)
//     gets its failed results but no success result; it is counted instead.
//   - Shutdown or revocation while waiting: Handle returns ErrStopped and the
//     batch stays uncommitted for the next owner (applying it again is a
//     no-op that reports Stale).
package effect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/breaker"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// ErrStopped is returned by Handle when the partition stopped (shutdown or
// revocation) before the batch was done.
var ErrStopped = retry.ErrStopped

// Applier applies writes in one transaction (store.Store).
type Applier interface {
	Apply(ctx context.Context, writes []store.Write) ([]store.Outcome, error)
}

// Results publishes effect results; nil only once the broker acknowledged all.
type Results interface {
	PublishResults(ctx context.Context, res []*pipeline.EffectResult) error
}

// DeadLetterer parks a poison record; nil only once the broker acknowledged.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, msg *sarama.ConsumerMessage, corr uuid.UUID, cause error) error
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
	dlq     DeadLetterer
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
	// BusMetrics, if set, counts consumed records and retries with the
	// bus's series.
	BusMetrics *bus.Metrics
	Log        *slog.Logger
}

// New returns a processor.
func New(a Applier, cb *breaker.Breaker, r Results, dl DeadLetterer, m *Metrics, o Options) *Processor {
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
	return &Processor{apply: a, cb: cb, results: r, dlq: dl, backoff: o.Backoff, timeout: o.Timeout, m: m,
		busm: o.BusMetrics, log: o.Log, now: time.Now}
}

// DefaultBackoff is the spec's database retry matrix (6.4): 0.5 s doubling
// to 30 s, 25 % jitter.
func DefaultBackoff() retry.Policy {
	return retry.Policy{MaxAttempts: 10, Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.25}
}

// wait sleeps the backoff of attempt, cut short when the breaker (if
// considered) lets a trial call through earlier. False when stopped.
func (p *Processor) wait(ctx context.Context, stop <-chan struct{}, attempt int, breakerAware bool) bool {
	d := p.backoff.Delay(min(attempt, p.backoff.MaxAttempts-1), rand.Float64())
	if left := p.cb.RetryAfter(); breakerAware && left > 0 && left < d {
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

func (p *Processor) count(topic, outcome string, n int) {
	if p.busm != nil && n > 0 {
		p.busm.Consumed.WithLabelValues(topic, outcome).Add(float64(n))
	}
}

// Handle processes one batch of records of one partition, in offset order.
// See the package documentation for its guarantees. stop closes when the
// partition stops (shutdown, revocation); ctx is cancelled only when work
// in flight must be abandoned.
func (p *Processor) Handle(ctx context.Context, stop <-chan struct{}, msgs []*sarama.ConsumerMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	topic := msgs[0].Topic
	items := make([]*Item, len(msgs))
	var pending, poison []*Item
	for i, m := range msgs {
		items[i] = Decode(m)
		if items[i].Err != nil {
			poison = append(poison, items[i])
		} else {
			pending = append(pending, items[i])
		}
	}
	var final []*pipeline.EffectResult
	for _, it := range poison {
		p.itemLog(ctx, it).Warn("postgres intent is poison", "error_code", it.Code,
			"error", infraerr.SanitizeError(it.Err), "error_type", infraerr.TypeName(it.Err))
		if it.Intent != nil {
			final = append(final, p.result(it, false, false, it.Err, it.Code, false, 0))
		}
	}

	reported := map[*Item]bool{}
	notSent := 0
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
				if it.FailuresOnly {
					notSent++
				} else {
					stale := outs[i] == store.Stale
					final = append(final, p.result(it, true, stale, nil, "", false, p.now().Sub(start)))
				}
				if reported[it] {
					p.itemLog(ctx, it).Info("postgres intent applied after failures", "outcome", outs[i].String(), "attempts", attempt+1)
				}
			}
			break
		}
		var be *store.BatchError
		if errors.As(err, &be) && be.Index >= 0 && store.IsDataError(be.Err) {
			// One intent's data is refused: park it, apply the rest at once.
			it := pending[be.Index]
			it.Err, it.Code = be.Err, store.CodeUpsert
			p.itemLog(ctx, it).Warn("postgres refused the intent's data", "error_code", it.Code,
				"error", infraerr.SanitizeError(be.Err), "error_type", infraerr.TypeName(be.Err))
			final = append(final, p.result(it, false, false, be.Err, it.Code, false, p.now().Sub(start)))
			poison = append(poison, it)
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
			// Best effort now; an intent whose failure could not be
			// reported is reported on the next failure, and its success
			// result is published before its offset is committed anyway.
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
		if !p.wait(ctx, stop, attempt, true) {
			return fmt.Errorf("effect: %w", ErrStopped)
		}
		attempt++
	}

	if err := p.untilDone(ctx, stop, "publish results", func(ctx context.Context) error {
		if len(final) == 0 {
			return nil
		}
		return p.results.PublishResults(ctx, final)
	}); err != nil {
		return err
	}
	p.countResults(final)
	p.m.NotSent.Add(float64(notSent))
	for _, it := range poison {
		if err := p.untilDone(ctx, stop, "dead-letter", func(ctx context.Context) error {
			return p.dlq.DeadLetter(ctx, it.Msg, it.CorrelationID, it.Err)
		}); err != nil {
			return err
		}
		typ := "unknown"
		if it.Intent != nil {
			typ = it.Intent.IntentType
		}
		p.m.Intents.WithLabelValues(typ, "poison").Inc()
		p.itemLog(ctx, it).Warn("postgres intent dead-lettered", "error_code", it.Code)
	}
	p.count(topic, "handled", len(msgs)-len(poison))
	p.count(topic, "dead_lettered", len(poison))
	return nil
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

// untilDone retries fn (a Kafka write) with backoff until it succeeds or the
// partition stops.
func (p *Processor) untilDone(ctx context.Context, stop <-chan struct{}, what string, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		p.log.Warn(what+" failed; retrying", "error", infraerr.SanitizeError(err), "attempt", attempt+1)
		if !p.wait(ctx, stop, attempt, false) {
			return fmt.Errorf("effect: %s: %w", what, ErrStopped)
		}
	}
}
