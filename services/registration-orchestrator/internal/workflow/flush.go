package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// Flush: what a change of an aggregation decided is carried out in a fixed
// order — registration results, dead letters, then the aggregation's state
// or tombstone — so that a crash at any step, which redelivers the input,
// repeats only idempotent steps.

// needsDeadLetter reports whether a has a given-up intent not yet in the
// DLQ.
func needsDeadLetter(a *Aggregation) bool {
	for _, t := range a.Intents {
		if t.State == StateGivenUp && !t.DeadLettered {
			return true
		}
	}
	return false
}

// outbound carries out one network call of a flush: with mu held across it
// (heldAcross) or released (sendUnlocked).
type outbound func(send func() error) error

// heldAcross runs send with mu held.
func heldAcross(send func() error) error { return send() }

// flushLocked carries out the aggregation's pending side effects in order —
// results, dead letters, then its state (or tombstone) — and stops at the
// first failure, leaving the rest for the next flush. Every step is
// idempotent (deterministic result ids, at-least-once DLQ), so repeating a
// flush after a crash is safe. mu is held across its sends; the retry
// loop's flush is flushUnlocked.
func (w *Workflow) flushLocked(ctx context.Context, a *Aggregation) error {
	return w.flush(ctx, a, heldAcross)
}

// flushUnlocked is flushLocked with mu released across each send
// (sendUnlocked): the caller holds a's partition lock. It stops without an
// error if a is dropped meanwhile.
func (w *Workflow) flushUnlocked(ctx context.Context, a *Aggregation) error {
	err := w.flush(ctx, a, func(send func() error) error { return w.sendUnlocked(a, send) })
	if errors.Is(err, errDropped) {
		return nil
	}
	return err
}

// flush carries out a's side effects (see flushLocked), each network call
// through out, which decides whether mu is held across it.
func (w *Workflow) flush(ctx context.Context, a *Aggregation, out outbound) error {
	if err := w.flushOnce(ctx, a, out); err != nil {
		if errors.Is(err, errDropped) {
			return err
		}
		// The caller's input is redelivered, but if it never is (its
		// retries ran out), the retry loop still finishes the job.
		w.laterLocked(a.NodeID, w.now())
		return err
	}
	return nil
}

func (w *Workflow) flushOnce(ctx context.Context, a *Aggregation, out outbound) error {
	for len(a.results) > 0 {
		r := a.results[0]
		if err := w.publishResult(ctx, a, r, a.Published-len(a.results), out); err != nil {
			return err
		}
		w.m.regResults.WithLabelValues(r.Status).Inc()
		a.results = a.results[1:]
	}
	for _, b := range sortedBackends(a) {
		t := a.Intents[b]
		if t.State == StateGivenUp && !t.DeadLettered {
			if err := w.deadLetter(ctx, a, b, t, out); err != nil {
				return err
			}
			t.DeadLettered = true
			w.dirty[a.NodeID] = true
		}
	}
	if a.done {
		if err := w.persist(ctx, a.NodeID, nil, out); err != nil {
			return err
		}
		delete(w.aggs, a.NodeID)
		delete(w.dirty, a.NodeID)
		w.m.inFlight.Set(float64(len(w.aggs)))
		return nil
	}
	if w.dirty[a.NodeID] {
		if err := w.persist(ctx, a.NodeID, a, out); err != nil {
			return err
		}
		delete(w.dirty, a.NodeID)
	}
	return nil
}

func (w *Workflow) publishResult(ctx context.Context, a *Aggregation, r pipeline.RegistrationResult, index int, out outbound) error {
	pm, err := w.resultMessage(a, r, index)
	if err != nil {
		return err
	}
	err = out(func() error { return w.cfg.Send.Send(ctx, pm) })
	if err != nil && !errors.Is(err, errDropped) {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish_result", Target: w.cfg.ResultTopic, CorrelationID: a.CorrelationID}, "registration result")
	}
	return err
}

// resultMessage is the record of a's registration result number index.
func (w *Workflow) resultMessage(a *Aggregation, r pipeline.RegistrationResult, index int) (*sarama.ProducerMessage, error) {
	// One id per (attempt, result index): a result published again after a
	// crash carries the same envelope id and consumers can drop it.
	id := uuid.NewSHA1(a.AttemptID, fmt.Appendf(nil, "registration-result:%d", index))
	b, err := wire.Envelope(r, w.cfg.ResultTopic, id, a.CorrelationID, "ModelNodeRegistrationResult", "event")
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Operation: "encode_result", CorrelationID: a.CorrelationID}, "registration result", err)
	}
	return wire.Message(w.cfg.ResultTopic, a.NodeID.String(), b, w.cfg.Source, a.CorrelationID), nil
}

// persist writes the aggregation (nil: a tombstone) keyed by node_id.
func (w *Workflow) persist(ctx context.Context, node uuid.UUID, a *Aggregation, out outbound) error {
	pm, err := w.stateMessage(node, a)
	if err != nil {
		return err
	}
	err = out(func() error { return w.cfg.Send.Send(ctx, pm) })
	if err != nil && !errors.Is(err, errDropped) {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "persist_aggregation", Target: w.cfg.StateTopic}, "aggregation state")
	}
	return err
}

// stateMessage is the state record of node's aggregation a (nil: a
// tombstone, without headers): a protobuf onex.fleet.v1.Aggregation
// (MarshalAggregation) with the content type that says so. Should a not
// encode (a string that is no valid UTF-8, which protobuf refuses), it is
// written as its JSON without a content type instead: restore reads both,
// and the state is never lost to its encoding.
func (w *Workflow) stateMessage(node uuid.UUID, a *Aggregation) (*sarama.ProducerMessage, error) {
	pm := &sarama.ProducerMessage{Topic: w.cfg.StateTopic, Key: sarama.StringEncoder(node.String())}
	if a == nil {
		return pm, nil
	}
	if pipeline.WritesJSON() {
		// ONEX_INTERNAL_WIRE=json: the form every orchestrator reads.
	} else if b, err := MarshalAggregation(a); err == nil {
		pm.Value = sarama.ByteEncoder(b)
		pm.Headers = []sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(AggregationContentType)}}
		return pm, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Operation: "encode_aggregation"}, "aggregation state", err)
	}
	pm.Value = sarama.ByteEncoder(b)
	return pm, nil
}

// deadLetter parks a given-up intent in the DLQ: the record is the intent as
// last sent, located where it was routed, with error_type and
// failure_reason from the last result.
func (w *Workflow) deadLetter(ctx context.Context, a *Aggregation, backend string, t *Tracked, out outbound) error {
	topic := w.cfg.Routes[t.IntentType]
	ct, value, err := attemptEnvelope(t, t.Attempt, w.now())
	if err != nil {
		ct, value = t.value()
	}
	cause := exhaustion(a, backend, t, topic, w.cfg.Policy)
	cm := &sarama.ConsumerMessage{Topic: topic, Partition: t.RoutedPartition, Offset: t.RoutedOffset, Key: []byte(a.NodeID.String()), Value: value,
		// The content type says how to read the value: a protobuf intent
		// must be dead-lettered, and replayed, as what it is.
		Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(ct)}}}
	f := dlq.Failure{Err: cause, Type: dlq.FailureTypeInfra, Class: dlq.ClassConsumerError, CorrelationID: a.CorrelationID, RetryCount: t.Retries}
	err = out(func() error { return w.cfg.DLQ.Publish(ctx, cm, f) })
	if errors.Is(err, errDropped) {
		return err
	}
	if err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "dead_letter", Target: topic, CorrelationID: a.CorrelationID}, "dead-letter intent")
	}
	w.cfg.Log.Warn("intent dead-lettered", "correlation_id", a.CorrelationID.String(), "node_id", a.NodeID.String(),
		"backend", backend, "intent_type", t.IntentType, "retries", t.Retries, "failure_reason", infraerr.SanitizeError(cause))
	return nil
}

// exhaustion is the error recorded in the DLQ for a given-up intent. Its
// kind follows the effect's error code, so error_type names the Python class
// the failure stands for (e.g. InfraConnectionError for
// CONSUL_CONNECTION_ERROR).
func exhaustion(a *Aggregation, backend string, t *Tracked, topic string, p retry.Policy) *infraerr.Error {
	kind := infraerr.KindRuntime
	code, text := "", ""
	retriable := false
	if r := t.Last; r != nil {
		code, text, retriable = deref(r.ErrorCode), deref(r.Error), r.Retriable
	}
	switch {
	case strings.HasSuffix(code, "_TIMEOUT_ERROR"):
		kind = infraerr.KindTimeout
	case strings.HasSuffix(code, "_CONNECTION_ERROR"):
		kind = infraerr.KindConnection
	case strings.HasSuffix(code, "_AUTH_ERROR"):
		kind = infraerr.KindAuthentication
	case retriable:
		kind = infraerr.KindUnavailable
	}
	why := fmt.Sprintf("%s gave up on %s after %d attempts (retry policy max_attempts %d)", backend, t.IntentType, 1+t.Retries, p.MaxAttempts)
	if !retriable {
		why = fmt.Sprintf("%s failed %s with a non-retriable error after %d attempts", backend, t.IntentType, 1+t.Retries)
	}
	last := strings.TrimPrefix(strings.Join([]string{code, text}, ": "), ": ")
	if last != "" {
		why += "; last error: " + last
	}
	return infraerr.New(kind, infraerr.Context{Operation: "retry_" + t.IntentType, Target: topic, CorrelationID: a.CorrelationID}, why, nil)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
