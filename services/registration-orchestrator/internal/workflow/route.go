package workflow

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// Routing: an intent goes to the effect topic its type's route names, key
// node_id, the record value unchanged (protobuf or JSON, with its content
// type); an intent of a registration attempt
// is recorded in the attempt's aggregation first, so that a fast result of
// the first backend finds the attempt expecting both. An intent routed
// untracked carries pipeline.HeaderResults: its success result would only
// be counted and dropped, so the effect sends only its failures.

// handleIntents routes a batch of intents (see Handle); the caller holds
// the batch's partition lock. The batch's records are decided under mu,
// sent without it (the partition lock keeps this partition's next batch,
// and the retry loop, from touching the same nodes meanwhile), and the
// outcome recorded under mu again: a send takes milliseconds, and with mu
// held across it every partition's batches queued behind every other's
// (make bench at 100 registrations/s: routing waited 2.9 s at p50). An
// intent type without a route is a configuration error and a record that
// is not an intent record a content error: both are rejected.
func (w *Workflow) handleIntents(ctx context.Context, msgs []*bus.Message) (bus.Output, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	type routed struct {
		in  *pipeline.Intent
		msg *bus.Message
		t   *Tracked // nil: routed untracked
	}
	var (
		pms  []*sarama.ProducerMessage
		sent []routed
		// touched are the nodes whose aggregation the batch changed; a
		// newer attempt may replace one within the batch, so they are
		// looked up again at the end.
		touched []uuid.UUID
		seen    = map[uuid.UUID]bool{}
		out     bus.Output
	)
	touch := func(a *Aggregation) {
		if !seen[a.NodeID] {
			seen[a.NodeID] = true
			touched = append(touched, a.NodeID)
		}
	}
	for i, msg := range msgs {
		in, corr, err := decodeIntent(msg)
		if err != nil {
			reject(&out, len(msgs), i, err)
			continue
		}
		topic, ok := w.cfg.Routes[in.IntentType]
		if !ok {
			w.m.unrouted.Inc()
			observability.Logger(bus.MessageContext(ctx, msg)).Error("intent type has no route", "node_id", in.NodeID.String(),
				"intent_type", in.IntentType, "intent_id", in.IntentID.String(), "sequence", in.Sequence)
			reject(&out, len(msgs), i, w.unrouted(in, corr))
			continue
		}
		r := routed{in: in, msg: msg}
		if w.tracked(in) {
			log := observability.Logger(bus.MessageContext(ctx, msg)).With("node_id", in.NodeID.String(),
				"intent_type", in.IntentType, "intent_id", in.IntentID.String(), "sequence", in.Sequence)
			agg, t, act := w.trackLocked(log, msg, in, corr, now)
			switch act {
			case trackOwned:
				touch(agg)
				continue
			case trackRoute:
				touch(agg)
				sentAt := pipeline.T(now)
				t.SentAt, r.t = &sentAt, t
			}
		}
		pms = append(pms, w.intentMessage(topic, in, msg, corr, r.t == nil))
		sent = append(sent, r)
	}
	var persisted []*Aggregation
	for _, node := range touched {
		a := w.aggs[node]
		if a == nil {
			continue
		}
		if len(a.results) > 0 || a.done || needsDeadLetter(a) {
			// Only a redelivered intent finds such side effects pending:
			// carry them out the careful way.
			if err := w.flushLocked(ctx, a); err != nil {
				return bus.Output{}, err
			}
			continue
		}
		if w.dirty[a.NodeID] {
			pm, err := w.stateMessage(a.NodeID, a)
			if err != nil {
				return bus.Output{}, err
			}
			pms = append(pms, pm)
			persisted = append(persisted, a)
		}
	}
	if len(pms) > 0 {
		w.mu.Unlock()
		err := w.cfg.Send.Send(ctx, pms...)
		w.mu.Lock()
		if err != nil {
			for _, node := range touched {
				w.laterLocked(node, now)
			}
			return bus.Output{}, infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "route_intent"},
				fmt.Sprintf("route %d intents", len(sent)))
		}
	}
	debug := observability.Logger(ctx).Enabled(ctx, slog.LevelDebug)
	for j, r := range sent {
		w.m.routed.WithLabelValues(r.in.IntentType).Inc()
		log := observability.Logger(bus.MessageContext(ctx, r.msg))
		switch {
		case r.t != nil:
			r.t.RoutedPartition, r.t.RoutedOffset = pms[j].Partition, pms[j].Offset
			log.Info("registration intent routed", "topic", pms[j].Topic, "node_id", r.in.NodeID.String(), "intent_type", r.in.IntentType,
				"intent_id", r.in.IntentID.String(), "sequence", r.in.Sequence, "registration_attempt_id", r.in.RegistrationAttemptID.String())
		case debug:
			log.Debug("intent routed", "topic", pms[j].Topic, "node_id", r.in.NodeID.String(), "intent_type", r.in.IntentType,
				"intent_id", r.in.IntentID.String(), "sequence", r.in.Sequence)
		}
	}
	for _, a := range persisted {
		delete(w.dirty, a.NodeID)
	}
	for _, node := range touched {
		if a := w.aggs[node]; a != nil {
			w.scheduleLocked(a, time.Time{})
		}
	}
	w.m.inFlight.Set(float64(len(w.aggs)))
	return out, nil
}

// decodeIntent decodes an intent record, in either form
// (pipeline.DecodeIntentRecord), and its correlation id (the record's,
// else the message's).
func decodeIntent(msg *bus.Message) (*pipeline.Intent, uuid.UUID, error) {
	r, err := pipeline.DecodeIntentRecord(msg.Headers, msg.Value)
	if err != nil {
		return nil, uuid.Nil, infraerr.ContentWrap("intent record", err)
	}
	corr := msg.CorrelationID
	if r.CorrelationID != uuid.Nil {
		corr = r.CorrelationID
	}
	return r.Intent, corr, nil
}

func (w *Workflow) unrouted(in *pipeline.Intent, corr uuid.UUID) error {
	return infraerr.Configuration(infraerr.Context{Operation: "route_intent", Target: w.cfg.IntentsTopic, CorrelationID: corr},
		fmt.Sprintf("intent_type %q has no route in the contract's intent_routing", in.IntentType), nil)
}

// What trackLocked decided for an intent of a registration attempt.
type trackAction int

const (
	// trackRoute: route it; it is the attempt's pending delivery.
	trackRoute trackAction = iota
	// trackForward: route it untracked (an older attempt's intent).
	trackForward
	// trackOwned: route nothing; the aggregation owns it already (a
	// redelivery after it was answered or re-sent).
	trackOwned
)

// trackLocked records an intent of a registration attempt in the node's
// aggregation (starting or replacing it) and says what to do with it.
func (w *Workflow) trackLocked(log *slog.Logger, msg *bus.Message, in *pipeline.Intent, corr uuid.UUID, now time.Time) (*Aggregation, *Tracked, trackAction) {
	agg := w.aggs[in.NodeID]
	switch {
	case agg == nil:
		agg = NewAggregation(in, corr, w.expected, now)
		agg.partition = msg.Partition
		w.aggs[in.NodeID] = agg
	case agg.AttemptID != in.RegistrationAttemptID && in.Sequence > agg.MaxSequence():
		log.Info("newer registration attempt replaces the one in flight", "previous_attempt_id", agg.AttemptID.String())
		w.m.superseded.Inc()
		agg = NewAggregation(in, corr, w.expected, now)
		agg.partition = msg.Partition
		w.aggs[in.NodeID] = agg
	case agg.AttemptID != in.RegistrationAttemptID:
		// An older attempt's intent redelivered after a newer attempt began:
		// forward it (the effect's sequence guard makes it a no-op) but do not
		// let it disturb the newer attempt.
		return agg, nil, trackForward
	}
	b := pipeline.Backend(in.IntentType)
	t := agg.Intents[b]
	if t != nil && t.IntentID == in.IntentID && (t.Last != nil || t.Attempt > 0) {
		return agg, t, trackOwned
	}
	if t == nil || t.IntentID != in.IntentID {
		t = &Tracked{IntentID: in.IntentID, IntentType: in.IntentType, Sequence: in.Sequence,
			Attempt: in.Attempt, State: StatePending}
		t.setValue(pipeline.ContentType(msg.Headers), msg.Value)
		agg.Intents[b] = t
	}
	w.dirty[in.NodeID] = true
	return agg, t, trackRoute
}

// intentMessage builds the record that routes an intent. One routed
// untracked (not part of a registration attempt, or an older attempt's
// redelivered intent) asks the effect for failed results only: nothing
// waits for its success, and a heartbeat's update is most of the traffic.
// A tracked one asks for every result, which its aggregation needs. The
// value goes on unchanged, with the content type it came with.
func (w *Workflow) intentMessage(topic string, in *pipeline.Intent, msg *bus.Message, corr uuid.UUID, untracked bool) *sarama.ProducerMessage {
	pm := wire.IntentMessage(topic, in.NodeID.String(), pipeline.ContentType(msg.Headers), msg.Value, w.cfg.Source, corr)
	if untracked {
		pm.Headers = append(pm.Headers, pipeline.FailuresOnlyHeader())
	}
	return pm
}
