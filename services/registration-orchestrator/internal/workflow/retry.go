package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// The retry loop: one goroutine, owned by the caller of RunRetries, wakes
// when an aggregation owes it something (schedule.go), gives up attempts
// past their budget, counts step timeouts, re-sends due intents and
// finishes flushes that failed, each under the node's partition lock
// (locks.go).

// idleWait is how long the retry loop sleeps with nothing scheduled; any
// change that schedules something pokes it.
const idleWait = time.Hour

// retryLater spaces the attempts to carry out side effects that failed (a
// broker hiccup).
const retryLater = time.Second

// poke wakes the retry loop to recompute its next deadline.
func (w *Workflow) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// RunRetries re-sends failed intents when their retry is due, until ctx
// ends. It also completes flushes that failed earlier (a broker hiccup after
// a re-send), so state converges without waiting for another input.
func (w *Workflow) RunRetries(ctx context.Context) {
	for {
		next := w.retryPass(ctx)
		wait := idleWait
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// retryPass handles the aggregations whose wake-up is due — step
// timeouts, due re-sends, side effects that failed before — and returns
// when the next wake-up is due (zero: none queued). It picks what is due
// under mu alone and then handles one aggregation at a time under that
// node's partition lock (retryOne), the way a batch of the partition
// would: a slow send holds back the records of that partition only, never
// the other partitions' nor the workflow's lock.
func (w *Workflow) retryPass(ctx context.Context) time.Time {
	w.mu.Lock()
	due := w.dueLocked(w.now())
	w.mu.Unlock()
	for _, a := range due {
		w.retryOne(ctx, a)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var next time.Time
	if w.sched.Len() > 0 {
		next = w.sched[0].at
	}
	if len(w.unflushed) > 0 {
		if soon := now.Add(retryLater); next.IsZero() || soon.Before(next) {
			next = soon
		}
	}
	w.wakeAt = next
	if next.IsZero() {
		w.wakeAt = now.Add(idleWait)
	}
	return next
}

// retryOne does what is due for a: abandon it past its budget, record its
// step timeouts, re-send its due intents and carry out its side effects.
// It holds a's partition lock throughout and mu except across the sends.
// Between the pass picking a and this taking the partition lock, a record
// of a's partition may have been handled: a is worked on only if it is
// still its node's aggregation, and what is due is worked out again from
// its current state (a result may have settled the retry meanwhile).
func (w *Workflow) retryOne(ctx context.Context, a *Aggregation) {
	node := a.NodeID
	pl := w.partitionLock(a.partition)
	pl.Lock()
	defer pl.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.aggs[node] != a {
		return // finished, replaced by a newer attempt, or revoked meanwhile
	}
	now := w.now()
	if now.Sub(a.StartedAt.Time) > w.budget() {
		w.abandonLocked(a, now)
	}
	w.stepTimeouts(a, now)
	failed := false
	for _, b := range a.Due(now) {
		err := w.resend(ctx, a, b, a.Intents[b], now)
		if errors.Is(err, errDropped) {
			return
		}
		if err != nil {
			w.cfg.Log.Warn("re-send failed; trying again shortly", "correlation_id", a.CorrelationID.String(),
				"node_id", node.String(), "backend", b, "error", infraerr.SanitizeError(err))
			failed = true
		}
	}
	if w.dirty[node] || len(a.results) > 0 || a.done {
		if err := w.flushUnlocked(ctx, a); err != nil {
			w.cfg.Log.Warn("aggregation flush failed; trying again shortly", "correlation_id", a.CorrelationID.String(),
				"node_id", node.String(), "error", infraerr.SanitizeError(err))
			failed = true
		}
	}
	if w.aggs[node] != a {
		return // done and removed by the flush, or revoked during it
	}
	if failed {
		w.laterLocked(node, now)
	}
	// What is still due now failed; it is retried with the failures.
	w.scheduleLocked(a, now.Add(retryLater))
}

// budget is how long an attempt can take at most when every delivery runs
// into the step timeout and waits the longest backoff: past it the attempt
// is abandoned rather than re-sent.
func (w *Workflow) budget() time.Duration {
	return time.Duration(max(w.cfg.Policy.MaxAttempts, 1)) * (w.cfg.StepTimeout + w.cfg.Policy.Max)
}

// abandonLocked gives up every unsettled intent of an attempt that outlived
// its budget: an aggregation restored long after it was written (the
// orchestrator was down, or its state topic holds attempts of a deployment
// that is gone). Re-sending such intents would, for instance, register in
// Consul a node that left hours ago; the attempt ends failed (or partial)
// instead and its intents go to the DLQ, where an operator can replay them.
// An attempt whose second intent never arrived has no result to publish
// and is dropped.
func (w *Workflow) abandonLocked(a *Aggregation, now time.Time) {
	log := w.cfg.Log.With("correlation_id", a.CorrelationID.String(), "node_id", a.NodeID.String(),
		"registration_attempt_id", a.AttemptID.String(), "started_at", envelope.FormatTime(a.StartedAt.Time), "budget", w.budget().String())
	w.m.abandoned.Inc()
	w.dirty[a.NodeID] = true
	for _, b := range a.Expected {
		if a.Intents[b] == nil {
			log.Warn("registration attempt abandoned without a result: older than its retry budget and missing an intent", "missing_backend", b)
			a.done = true
			return
		}
	}
	for _, b := range sortedBackends(a) {
		t := a.Intents[b]
		if t.State == StateSucceeded || t.State == StateGivenUp {
			continue
		}
		if t.Last == nil {
			t.Last = TimeoutResult(a, b, t, w.cfg.StepTimeout, now)
		}
		t.State, t.NextRetryAt = StateGivenUp, nil
	}
	log.Warn("registration attempt abandoned: older than its retry budget; unsettled intents go to the DLQ")
	w.logDecision(log, a, Evaluate(a, now, w.cfg.Policy, w.rand))
}

// stepTimeouts records a timeout failure for every delivery of a that has
// waited the step timeout for its result, and evaluates a: the first result
// may become due (partial) and the intent's re-send is scheduled. The side
// effects are carried out by the caller's flush.
func (w *Workflow) stepTimeouts(a *Aggregation, now time.Time) {
	changed := false
	for _, b := range a.TimedOut(now, w.cfg.StepTimeout) {
		t := a.Intents[b]
		if !Apply(t, TimeoutResult(a, b, t, w.cfg.StepTimeout, now)) {
			continue
		}
		changed = true
		w.m.timeouts.WithLabelValues(w.backendLabel(b)).Inc()
		w.cfg.Log.Warn("no result from backend within the step timeout; counted as a retriable timeout",
			"correlation_id", a.CorrelationID.String(), "node_id", a.NodeID.String(), "backend", b,
			"intent_type", t.IntentType, "attempt", t.Attempt, "step_timeout", w.cfg.StepTimeout.String())
	}
	if changed {
		w.dirty[a.NodeID] = true
		log := w.cfg.Log.With("correlation_id", a.CorrelationID.String(), "node_id", a.NodeID.String())
		w.logDecision(log, a, Evaluate(a, now, w.cfg.Policy, w.rand))
	}
}

// resend delivers attempt n+1 of a failed intent to its effect, with mu
// released across the send (sendUnlocked: the caller holds a's partition
// lock), and records it once the broker acknowledged it. It returns
// errDropped, recording nothing, if a was dropped during the send.
func (w *Workflow) resend(ctx context.Context, a *Aggregation, backend string, t *Tracked, now time.Time) error {
	n := t.Attempt + 1
	ct, value, err := attemptEnvelope(t, n, now)
	if err != nil {
		// The envelope was valid when it was routed; if it cannot be
		// rebuilt the intent can never be retried.
		t.State = StateGivenUp
		t.NextRetryAt = nil
		w.dirty[a.NodeID] = true
		w.cfg.Log.Error("cannot rebuild intent for re-send; giving up", "correlation_id", a.CorrelationID.String(), "error", infraerr.SanitizeError(err))
		Evaluate(a, now, w.cfg.Policy, w.rand)
		return nil
	}
	topic := w.cfg.Routes[t.IntentType]
	pm := wire.IntentMessage(topic, a.NodeID.String(), ct, value, w.cfg.Source, a.CorrelationID)
	if err := w.sendUnlocked(a, func() error { return w.cfg.Send.Send(ctx, pm) }); err != nil {
		return err
	}
	sent := pipeline.T(now)
	t.Attempt, t.Retries, t.State, t.NextRetryAt, t.SentAt = n, t.Retries+1, StatePending, nil, &sent
	t.RoutedPartition, t.RoutedOffset = pm.Partition, pm.Offset
	w.dirty[a.NodeID] = true
	w.m.retries.WithLabelValues(w.backendLabel(backend)).Inc()
	w.m.routed.WithLabelValues(t.IntentType).Inc()
	w.cfg.Log.Info("intent re-sent to failed backend", "correlation_id", a.CorrelationID.String(), "node_id", a.NodeID.String(),
		"backend", backend, "intent_type", t.IntentType, "attempt", n)
	return nil
}

// attemptEnvelope re-encodes a tracked intent's record for delivery attempt
// n, in the form the reducer wrote it, and returns it with its content
// type: the intent's attempt field is set and the record gets an envelope
// id of its own, so the effect can tell a re-send from a redelivery.
func attemptEnvelope(t *Tracked, n int, now time.Time) (string, []byte, error) {
	ct, v := t.value()
	b, err := pipeline.ReattemptIntent(ct, v, n, uuid.NewSHA1(t.IntentID, fmt.Appendf(nil, "attempt:%d", n)), now)
	if err != nil {
		return "", nil, err
	}
	return ct, b, nil
}
