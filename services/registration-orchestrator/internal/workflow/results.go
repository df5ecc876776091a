package workflow

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// Results: an effect's result is applied to its attempt's aggregation,
// which decides what follows (a registration result, a re-send, a dead
// letter); flush.go carries that out. A result of no attempt in flight is
// counted and dropped.

// handleResults applies a batch of effect results and carries out what
// they decided: publishing registration results, scheduling re-sends,
// dead-lettering intents given up (see Handle); the caller holds the
// batch's partition lock. Results that belong to no attempt in flight
// (updates, deregistrations, finished or replaced attempts) are counted and
// dropped; a record that is not an effect result is rejected (a content
// error).
func (w *Workflow) handleResults(ctx context.Context, msgs []*bus.Message) (bus.Output, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var (
		touched []*Aggregation
		seen    = map[uuid.UUID]bool{}
		out     bus.Output
	)
	for i, msg := range msgs {
		res, err := DecodeResult(msg.Headers, msg.Value)
		if err != nil {
			reject(&out, len(msgs), i, err)
			continue
		}
		if a := w.applyResultLocked(bus.MessageContext(ctx, msg), res); a != nil && !seen[a.NodeID] {
			seen[a.NodeID] = true
			touched = append(touched, a)
		}
	}
	type pending struct {
		a       *Aggregation
		results int
		state   bool
	}
	var (
		pms   []*sarama.ProducerMessage
		batch []pending
	)
	for _, a := range touched {
		if needsDeadLetter(a) {
			if err := w.flushLocked(ctx, a); err != nil {
				return bus.Output{}, err
			}
			continue
		}
		p := pending{a: a}
		for k, r := range a.results {
			pm, err := w.resultMessage(a, r, a.Published-len(a.results)+k)
			if err != nil {
				return bus.Output{}, err
			}
			pms = append(pms, pm)
			p.results++
		}
		switch {
		case a.done:
			pm, _ := w.stateMessage(a.NodeID, nil)
			pms, p.state = append(pms, pm), true
		case w.dirty[a.NodeID]:
			pm, err := w.stateMessage(a.NodeID, a)
			if err != nil {
				return bus.Output{}, err
			}
			pms, p.state = append(pms, pm), true
		}
		batch = append(batch, p)
	}
	if len(pms) > 0 {
		w.mu.Unlock() // see handleIntents
		err := w.cfg.Send.Send(ctx, pms...)
		w.mu.Lock()
		if err != nil {
			for _, p := range batch {
				w.laterLocked(p.a.NodeID, now)
			}
			return bus.Output{}, infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish_result", Target: w.cfg.ResultTopic},
				fmt.Sprintf("side effects of %d aggregations", len(batch)))
		}
	}
	for _, p := range batch {
		a := p.a
		for _, r := range a.results[:p.results] {
			w.m.regResults.WithLabelValues(r.Status).Inc()
		}
		a.results = a.results[p.results:]
		switch {
		case a.done && p.state:
			delete(w.aggs, a.NodeID)
			delete(w.dirty, a.NodeID)
		case p.state:
			delete(w.dirty, a.NodeID)
		}
	}
	w.m.inFlight.Set(float64(len(w.aggs)))
	return out, nil
}

// DecodeResult decodes an effect result record in either form, by its
// content type (pipeline.DecodeEffectResultRecord): protobuf, or the JSON
// envelope of an effect that predates it. Unknown fields are accepted (a
// newer effect may add some); the identity fields are required, and an
// empty backend is the intent type's.
func DecodeResult(headers []*sarama.RecordHeader, value []byte) (*pipeline.EffectResult, error) {
	r, err := pipeline.DecodeEffectResultRecord(headers, value)
	if err != nil {
		return nil, infraerr.ContentWrap("effect result record", err)
	}
	return r.Result, nil
}

// applyResultLocked applies res to its aggregation and returns it, or nil
// when res belongs to no attempt in flight.
func (w *Workflow) applyResultLocked(ctx context.Context, res *pipeline.EffectResult) *Aggregation {
	log := observability.Logger(ctx).With("node_id", res.NodeID.String(), "backend", res.Backend, "intent_type", res.IntentType,
		"attempt", res.Attempt, "success", res.Success)
	outcome := "failure"
	if res.Success {
		outcome = "success"
	}
	agg := w.aggs[res.NodeID]
	var t *Tracked
	if agg != nil && agg.AttemptID == res.RegistrationAttemptID {
		t = agg.Intents[res.Backend]
	}
	if t == nil || t.IntentID != res.IntentID {
		w.m.results.WithLabelValues(w.backendLabel(res.Backend), "untracked").Inc()
		if !res.Success {
			// Not part of an attempt: an update (the next update carries the
			// node's full state and repairs it) or a deregistration.
			log.Warn("effect reported a failure outside a registration attempt", "error_code", deref(res.ErrorCode), "retriable", res.Retriable)
		}
		return nil
	}
	w.m.results.WithLabelValues(w.backendLabel(res.Backend), outcome).Inc()
	if Apply(t, res) {
		w.dirty[res.NodeID] = true
		d := Evaluate(agg, w.now(), w.cfg.Policy, w.rand)
		w.logDecision(log, agg, d)
		w.scheduleLocked(agg, time.Time{})
	}
	return agg
}

func (w *Workflow) logDecision(log *slog.Logger, agg *Aggregation, d Decision) {
	for _, b := range d.Scheduled {
		t := agg.Intents[b]
		log.Warn("backend failed; retry scheduled", "retry_backend", b, "retries_so_far", t.Retries,
			"next_retry_at", envelope.FormatTime(t.NextRetryAt.Time), "error_code", deref(t.Last.ErrorCode))
	}
	for _, b := range d.GivenUp {
		t := agg.Intents[b]
		w.m.exhausted.WithLabelValues(w.backendLabel(b)).Inc()
		log.Error("backend given up; intent will be dead-lettered", "retry_backend", b, "retries", t.Retries,
			"retriable", t.Last != nil && t.Last.Retriable)
	}
	if d.Result != "" {
		log.Info("registration result decided", "status", d.Result, "registration_attempt_id", agg.AttemptID.String())
	}
}
