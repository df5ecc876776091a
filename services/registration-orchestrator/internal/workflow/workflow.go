// Package workflow routes the reducer's intents to the effects and
// aggregates the effects' results per registration attempt: it publishes
// success / partial / failed on the registration result topic, re-sends only
// a failed backend's intent (retriable failures, bounded by the contract's
// retry policy), dead-letters an intent it gives up on, and keeps its
// in-flight state on a compacted topic so a restart or a rebalance loses
// nothing.
//
// Intents and results are consumed by one consumer group with the range
// assignor: both topics are keyed by node_id and have the same partition
// count, so the instance that routes a node's intents is the one that
// receives its results, and it holds the node's aggregation in memory.
package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// Sender publishes records and returns once the broker acknowledged them.
// After a successful send each message's Partition and Offset are set.
type Sender interface {
	Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error
}

// DeadLetters publishes DLQ records (dlq.Publisher).
type DeadLetters interface {
	Publish(ctx context.Context, msg *sarama.ConsumerMessage, f dlq.Failure) error
}

// Config wires a Workflow.
type Config struct {
	// IntentsTopic and ResultsTopic are consumed; StateTopic is the
	// compacted aggregation state; ResultTopic receives registration results.
	IntentsTopic, ResultsTopic, StateTopic, ResultTopic string
	// Routes maps an intent type to its effect command topic.
	Routes map[string]string
	// AttemptIntents are the intent types that make up a registration attempt.
	AttemptIntents []string
	// Policy bounds the re-sends of a failed backend's intent.
	Policy retry.Policy
	// StepTimeout bounds the wait for a backend's result to one delivery;
	// past it the delivery counts as a retriable timeout failure
	// (TimeoutResult). Zero means 30 s (spec 6.4).
	StepTimeout time.Duration
	// Source is the header source (bus environment).
	Source string
	Send   Sender
	DLQ    DeadLetters
	Log    *slog.Logger
	// Registerer receives the workflow metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Workflow is the intent router and result aggregator. Create it with New.
type Workflow struct {
	cfg      Config
	backends []string
	expected []string
	m        *metrics
	now      func() time.Time
	rand     func() float64

	// plocks serialise the batches of one partition number (intents p and
	// results p hold the same nodes: the topics are co-partitioned and
	// keyed by node id) across the acknowledged send, which runs without
	// mu so that other partitions' batches go on meanwhile. The retry
	// loop holds every partition lock: it may touch any node.
	pmu    sync.Mutex
	plocks map[int32]*sync.Mutex

	mu         sync.Mutex
	aggs       map[uuid.UUID]*Aggregation
	dirty      map[uuid.UUID]bool
	owned      map[int32]bool
	partitions int32
	wake       chan struct{}
	// sched queues the aggregations' deadlines (re-sends, step timeouts)
	// for the retry loop; unflushed are nodes whose side effects failed and
	// are tried again shortly. wakeAt is when the loop wakes next unless
	// poked.
	sched     wakeups
	unflushed map[uuid.UUID]bool
	wakeAt    time.Time
}

type metrics struct {
	routed, results, regResults, retries, exhausted, timeouts *prometheus.CounterVec
	unrouted, superseded, abandoned                           prometheus.Counter
	inFlight                                                  prometheus.Gauge
}

// New returns a Workflow; nothing is contacted until it is used.
func New(cfg Config) *Workflow {
	w := &Workflow{cfg: cfg, now: time.Now, rand: rand.Float64,
		aggs: map[uuid.UUID]*Aggregation{}, dirty: map[uuid.UUID]bool{}, owned: map[int32]bool{}, wake: make(chan struct{}, 1),
		unflushed: map[uuid.UUID]bool{}, plocks: map[int32]*sync.Mutex{}}
	if w.cfg.Log == nil {
		w.cfg.Log = slog.Default()
	}
	if w.cfg.StepTimeout <= 0 {
		w.cfg.StepTimeout = 30 * time.Second
	}
	seen := map[string]bool{}
	for it := range cfg.Routes {
		if b := pipeline.Backend(it); !seen[b] {
			seen[b] = true
			w.backends = append(w.backends, b)
		}
	}
	slices.Sort(w.backends)
	for _, it := range cfg.AttemptIntents {
		w.expected = append(w.expected, pipeline.Backend(it))
	}
	w.m = &metrics{
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_intents_routed_total",
			Help: "Intents forwarded to an effect command topic, by intent type (re-sends included)."}, []string{"intent_type"}),
		unrouted: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_orchestrator_intents_unrouted_total",
			Help: "Intents dead-lettered because their type has no route in the contract."}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_effect_results_total",
			Help: "Effect results consumed, by backend and outcome (success, failure, untracked: not part of an attempt in flight)."},
			[]string{"backend", "outcome"}),
		regResults: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_registration_results_total",
			Help: "Registration results published, by status."}, []string{"status"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_retries_total",
			Help: "Intents re-sent to a backend after a retriable failure."}, []string{"backend"}),
		exhausted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_retries_exhausted_total",
			Help: "Intents given up (retries exhausted or failure not retriable) and dead-lettered."}, []string{"backend"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_step_timeouts_total",
			Help: "Intent deliveries that got no result from their backend within the step timeout (counted as a retriable timeout failure)."}, []string{"backend"}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_orchestrator_aggregations_abandoned_total",
			Help: "Registration attempts given up because they outlived their retry budget (restored long after they were written)."}),
		superseded: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_orchestrator_aggregations_superseded_total",
			Help: "Attempts in flight replaced by a newer attempt of the same node."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onex_orchestrator_aggregations_in_flight",
			Help: "Registration attempts this instance is aggregating."}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(w.m.routed, w.m.unrouted, w.m.results, w.m.regResults, w.m.retries, w.m.exhausted, w.m.timeouts, w.m.superseded, w.m.abandoned, w.m.inFlight)
	}
	return w
}

// backendLabel keeps metric labels to the contract's backends.
func (w *Workflow) backendLabel(b string) string {
	if slices.Contains(w.backends, b) {
		return b
	}
	return "other"
}

// tracked reports whether in belongs to a registration attempt's result
// aggregation: an intent of the attempt's types that makes a registration,
// not one that refreshes it (pipeline.Intent.Refresh: the Consul register
// at the node's ack, which only moves its health), routed untracked like
// any update.
func (w *Workflow) tracked(in *pipeline.Intent) bool {
	return !in.Refresh && slices.Contains(w.cfg.AttemptIntents, in.IntentType)
}

// Handle dispatches a record of the intents or the results topic. It holds
// the record's partition lock, like a batch: a record handled alone (a
// batch's fallback) on results partition p must not change an aggregation
// while a batch of intents partition p waits for its send.
func (w *Workflow) Handle(ctx context.Context, msg *bus.Message) error {
	pl := w.partitionLock(msg.Partition)
	pl.Lock()
	defer pl.Unlock()
	if msg.Topic == w.cfg.ResultsTopic {
		return w.HandleResult(ctx, msg)
	}
	return w.HandleIntent(ctx, msg)
}

// HandleIntent routes one reducer intent to its effect command topic (the
// record value unchanged, key node_id) and, for an intent of a registration
// attempt, records it in the attempt's aggregation first. An intent type
// without a route is a configuration error (dead-lettered); a record that
// is not an intent envelope is a content error. It returns nil only once the
// routed record and the aggregation state are acknowledged by the broker.
func (w *Workflow) HandleIntent(ctx context.Context, msg *bus.Message) error {
	in, corr, err := decodeIntent(msg)
	if err != nil {
		return err
	}
	log := observability.Logger(ctx).With("node_id", in.NodeID.String(), "intent_type", in.IntentType,
		"intent_id", in.IntentID.String(), "sequence", in.Sequence)
	topic, ok := w.cfg.Routes[in.IntentType]
	if !ok {
		w.m.unrouted.Inc()
		log.Error("intent type has no route")
		return w.unrouted(in, corr)
	}
	if !w.tracked(in) {
		if _, err := w.route(ctx, topic, in, msg.Value, corr); err != nil {
			return err
		}
		log.Debug("intent routed", "topic", topic)
		return nil
	}
	return w.routeTracked(ctx, log, msg, in, corr, topic)
}

// HandleBatch handles consecutive records of one partition of the intents
// or the results topic (bus.BatchHandler) with one acknowledged send for the
// whole batch: every routed intent (tracked or not, in record order), then
// the state of every aggregation the batch changed; for results, every
// registration result decided and the state (or tombstone) of every
// aggregation they changed. A registration used to take seven sends, one
// after the other under the workflow's lock, and that bounded the fleet's
// registration rate. At a record that cannot be handled (not an intent or
// result, no route) what came before it is done and a *bus.BatchError names
// it: the runner hands it to Handle alone (retries, DLQ) and resumes with
// the rest. If the send fails the batch fails and the runner handles its
// records one at a time, which repeats nothing harmful: a re-routed intent
// is a duplicate the effect's sequence guard ignores, an applied result is
// not applied twice, and the pending side effects are carried out.
func (w *Workflow) HandleBatch(ctx context.Context, msgs []*bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if msgs[0].Topic == w.cfg.ResultsTopic {
		return w.handleResults(ctx, msgs)
	}
	return w.handleIntents(ctx, msgs)
}

// partitionLock returns the lock of partition number p.
func (w *Workflow) partitionLock(p int32) *sync.Mutex {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	l := w.plocks[p]
	if l == nil {
		l = &sync.Mutex{}
		w.plocks[p] = l
	}
	return l
}

// lockPartitions takes every partition lock, in ascending order (a batch
// holds one partition lock and then mu; the retry loop all of them and then
// mu: no cycle), and returns the function that releases them.
func (w *Workflow) lockPartitions() (unlock func()) {
	w.pmu.Lock()
	ps := make([]int32, 0, len(w.plocks))
	for p := range w.plocks {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	locks := make([]*sync.Mutex, len(ps))
	for i, p := range ps {
		locks[i] = w.plocks[p]
	}
	w.pmu.Unlock()
	for _, l := range locks {
		l.Lock()
	}
	return func() {
		for i := len(locks) - 1; i >= 0; i-- {
			locks[i].Unlock()
		}
	}
}

// handleIntents routes a batch of intents. The batch's records are decided
// under mu, sent without it (the partition lock keeps this partition's next
// batch, and the retry loop, from touching the same nodes meanwhile), and
// the outcome recorded under mu again: a send takes milliseconds, and with
// mu held across it every partition's batches queued behind every other's
// (make bench at 100 registrations/s: routing waited 2.9 s at p50).
func (w *Workflow) handleIntents(ctx context.Context, msgs []*bus.Message) error {
	pl := w.partitionLock(msgs[0].Partition)
	pl.Lock()
	defer pl.Unlock()
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
		stop    error
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
			stop = &bus.BatchError{Done: i, Err: err}
			break
		}
		topic, ok := w.cfg.Routes[in.IntentType]
		if !ok {
			w.m.unrouted.Inc()
			stop = &bus.BatchError{Done: i, Err: w.unrouted(in, corr)}
			break
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
		pms = append(pms, wire.Message(topic, in.NodeID.String(), msg.Value, w.cfg.Source, corr))
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
				return err
			}
			continue
		}
		if w.dirty[a.NodeID] {
			pm, err := w.stateMessage(a.NodeID, a)
			if err != nil {
				return err
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
			return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "route_intent"},
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
	return stop
}

// handleResults applies a batch of effect results (see HandleBatch).
func (w *Workflow) handleResults(ctx context.Context, msgs []*bus.Message) error {
	pl := w.partitionLock(msgs[0].Partition)
	pl.Lock()
	defer pl.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var (
		touched []*Aggregation
		seen    = map[uuid.UUID]bool{}
		stop    error
	)
	for i, msg := range msgs {
		_, res, err := DecodeResult(msg.Value)
		if err != nil {
			stop = &bus.BatchError{Done: i, Err: err}
			break
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
				return err
			}
			continue
		}
		p := pending{a: a}
		for k, r := range a.results {
			pm, err := w.resultMessage(a, r, a.Published-len(a.results)+k)
			if err != nil {
				return err
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
				return err
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
			return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish_result", Target: w.cfg.ResultTopic},
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
	return stop
}

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

// decodeIntent decodes an intent record and its correlation id (the
// envelope's, else the message's).
func decodeIntent(msg *bus.Message) (*pipeline.Intent, uuid.UUID, error) {
	env, err := envelope.Decode(msg.Value)
	if err != nil {
		return nil, uuid.Nil, infraerr.ContentWrap("intent envelope", err)
	}
	in, err := pipeline.DecodeIntent(env.Payload)
	if err != nil {
		return nil, uuid.Nil, infraerr.ContentWrap("intent payload", err)
	}
	corr := msg.CorrelationID
	if env.CorrelationID != nil && *env.CorrelationID != uuid.Nil {
		corr = *env.CorrelationID
	}
	return in, corr, nil
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
		w.aggs[in.NodeID] = agg
	case agg.AttemptID != in.RegistrationAttemptID && in.Sequence > agg.MaxSequence():
		log.Info("newer registration attempt replaces the one in flight", "previous_attempt_id", agg.AttemptID.String())
		w.m.superseded.Inc()
		agg = NewAggregation(in, corr, w.expected, now)
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
			Envelope: json.RawMessage(msg.Value), Attempt: in.Attempt, State: StatePending}
		agg.Intents[b] = t
	}
	w.dirty[in.NodeID] = true
	return agg, t, trackRoute
}

// routeTracked routes an intent of a registration attempt and records it in
// the attempt's aggregation, one record at a time (the batch path is
// handleIntents).
func (w *Workflow) routeTracked(ctx context.Context, log *slog.Logger, msg *bus.Message, in *pipeline.Intent, corr uuid.UUID, topic string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	agg, t, act := w.trackLocked(log, msg, in, corr, now)
	switch act {
	case trackForward:
		_, err := w.route(ctx, topic, in, msg.Value, corr)
		return err
	case trackOwned:
		return w.flushLocked(ctx, agg)
	}
	w.m.inFlight.Set(float64(len(w.aggs)))
	pm, err := w.route(ctx, topic, in, msg.Value, corr)
	if err != nil {
		w.laterLocked(in.NodeID, now)
		return err
	}
	sent := pipeline.T(now)
	t.RoutedPartition, t.RoutedOffset, t.SentAt = pm.Partition, pm.Offset, &sent
	w.scheduleLocked(agg, time.Time{})
	log.Info("registration intent routed", "topic", topic, "registration_attempt_id", in.RegistrationAttemptID.String())
	return w.flushLocked(ctx, agg)
}

// route publishes an intent record to topic keyed by node_id.
func (w *Workflow) route(ctx context.Context, topic string, in *pipeline.Intent, value []byte, corr uuid.UUID) (*sarama.ProducerMessage, error) {
	pm := wire.Message(topic, in.NodeID.String(), value, w.cfg.Source, corr)
	if err := w.cfg.Send.Send(ctx, pm); err != nil {
		return nil, infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "route_intent", Target: topic, CorrelationID: corr}, "route intent")
	}
	w.m.routed.WithLabelValues(in.IntentType).Inc()
	return pm, nil
}

// DecodeResult decodes an effect result record. Unknown fields are accepted
// (a newer effect may add some); the identity fields are required.
func DecodeResult(value []byte) (*envelope.Envelope, *pipeline.EffectResult, error) {
	env, err := envelope.Decode(value)
	if err != nil {
		return nil, nil, infraerr.ContentWrap("effect result envelope", err)
	}
	var res pipeline.EffectResult
	if err := json.Unmarshal(env.Payload, &res); err != nil {
		return nil, nil, infraerr.ContentWrap("effect result payload", err)
	}
	switch {
	case res.IntentID == uuid.Nil:
		return nil, nil, infraerr.Content("payload.intent_id", "missing")
	case res.NodeID == uuid.Nil:
		return nil, nil, infraerr.Content("payload.node_id", "missing")
	case res.IntentType == "":
		return nil, nil, infraerr.Content("payload.intent_type", "missing")
	}
	if res.Backend == "" {
		res.Backend = pipeline.Backend(res.IntentType)
	}
	return env, &res, nil
}

// HandleResult applies one effect result to its attempt's aggregation and
// carries out what follows: publishing the result, scheduling a re-send,
// dead-lettering an intent given up. Results that belong to no attempt in
// flight (updates, deregistrations, finished or replaced attempts) are
// counted and dropped.
func (w *Workflow) HandleResult(ctx context.Context, msg *bus.Message) error {
	_, res, err := DecodeResult(msg.Value)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	agg := w.applyResultLocked(ctx, res)
	if agg == nil {
		return nil
	}
	return w.flushLocked(ctx, agg)
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

// flushLocked carries out the aggregation's pending side effects in order —
// results, dead letters, then its state (or tombstone) — and stops at the
// first failure, leaving the rest for the next flush. Every step is
// idempotent (deterministic result ids, at-least-once DLQ), so repeating a
// flush after a crash is safe.
func (w *Workflow) flushLocked(ctx context.Context, a *Aggregation) error {
	if err := w.flushOnce(ctx, a); err != nil {
		// The caller's input is redelivered, but if it never is (its
		// retries ran out), the retry loop still finishes the job.
		w.laterLocked(a.NodeID, w.now())
		return err
	}
	return nil
}

func (w *Workflow) flushOnce(ctx context.Context, a *Aggregation) error {
	for len(a.results) > 0 {
		r := a.results[0]
		if err := w.publishResult(ctx, a, r, a.Published-len(a.results)); err != nil {
			return err
		}
		w.m.regResults.WithLabelValues(r.Status).Inc()
		a.results = a.results[1:]
	}
	for _, b := range sortedBackends(a) {
		t := a.Intents[b]
		if t.State == StateGivenUp && !t.DeadLettered {
			if err := w.deadLetter(ctx, a, b, t); err != nil {
				return err
			}
			t.DeadLettered = true
			w.dirty[a.NodeID] = true
		}
	}
	if a.done {
		if err := w.persist(ctx, a.NodeID, nil); err != nil {
			return err
		}
		delete(w.aggs, a.NodeID)
		delete(w.dirty, a.NodeID)
		w.m.inFlight.Set(float64(len(w.aggs)))
		return nil
	}
	if w.dirty[a.NodeID] {
		if err := w.persist(ctx, a.NodeID, a); err != nil {
			return err
		}
		delete(w.dirty, a.NodeID)
	}
	return nil
}

func (w *Workflow) publishResult(ctx context.Context, a *Aggregation, r pipeline.RegistrationResult, index int) error {
	pm, err := w.resultMessage(a, r, index)
	if err != nil {
		return err
	}
	if err := w.cfg.Send.Send(ctx, pm); err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish_result", Target: w.cfg.ResultTopic, CorrelationID: a.CorrelationID}, "registration result")
	}
	return nil
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
func (w *Workflow) persist(ctx context.Context, node uuid.UUID, a *Aggregation) error {
	pm, err := w.stateMessage(node, a)
	if err != nil {
		return err
	}
	if err := w.cfg.Send.Send(ctx, pm); err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "persist_aggregation", Target: w.cfg.StateTopic}, "aggregation state")
	}
	return nil
}

// stateMessage is the state record of node's aggregation a (nil: a
// tombstone).
func (w *Workflow) stateMessage(node uuid.UUID, a *Aggregation) (*sarama.ProducerMessage, error) {
	pm := &sarama.ProducerMessage{Topic: w.cfg.StateTopic, Key: sarama.StringEncoder(node.String())}
	if a != nil {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, infraerr.Configuration(infraerr.Context{Operation: "encode_aggregation"}, "aggregation state", err)
		}
		pm.Value = sarama.ByteEncoder(b)
	}
	return pm, nil
}

// attemptEnvelope re-encodes a tracked intent's envelope for delivery
// attempt n: the payload's attempt field is set and the envelope gets an id
// of its own, so the effect can tell a re-send from a redelivery.
func attemptEnvelope(t *Tracked, n int, now time.Time) ([]byte, error) {
	env, err := envelope.Decode(t.Envelope)
	if err != nil {
		return nil, err
	}
	var in pipeline.Intent
	if err := json.Unmarshal(env.Payload, &in); err != nil {
		return nil, err
	}
	in.Attempt = n
	p, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	env.Payload = p
	env.EnvelopeID = uuid.NewSHA1(t.IntentID, fmt.Appendf(nil, "attempt:%d", n))
	env.EnvelopeTimestamp = pipeline.T(now)
	return env.Encode()
}

// deadLetter parks a given-up intent in the DLQ: the record is the intent as
// last sent, located where it was routed, with error_type and
// failure_reason from the last result.
func (w *Workflow) deadLetter(ctx context.Context, a *Aggregation, backend string, t *Tracked) error {
	topic := w.cfg.Routes[t.IntentType]
	value, err := attemptEnvelope(t, t.Attempt, w.now())
	if err != nil {
		value = t.Envelope
	}
	cause := exhaustion(a, backend, t, topic, w.cfg.Policy)
	cm := &sarama.ConsumerMessage{Topic: topic, Partition: t.RoutedPartition, Offset: t.RoutedOffset, Key: []byte(a.NodeID.String()), Value: value}
	err = w.cfg.DLQ.Publish(ctx, cm, dlq.Failure{Err: cause, Type: dlq.FailureTypeInfra, Class: dlq.ClassConsumerError,
		CorrelationID: a.CorrelationID, RetryCount: t.Retries})
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
// when the next wake-up is due (zero: none queued).
func (w *Workflow) retryPass(ctx context.Context) time.Time {
	defer w.lockPartitions()()
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	for _, a := range w.dueLocked(now) {
		node := a.NodeID
		if now.Sub(a.StartedAt.Time) > w.budget() {
			w.abandonLocked(a, now)
		}
		w.stepTimeouts(a, now)
		failed := false
		for _, b := range a.Due(now) {
			if err := w.resend(ctx, a, b, a.Intents[b], now); err != nil {
				w.cfg.Log.Warn("re-send failed; trying again shortly", "correlation_id", a.CorrelationID.String(),
					"node_id", node.String(), "backend", b, "error", infraerr.SanitizeError(err))
				failed = true
			}
		}
		if w.dirty[node] || len(a.results) > 0 || a.done {
			if err := w.flushLocked(ctx, a); err != nil {
				w.cfg.Log.Warn("aggregation flush failed; trying again shortly", "correlation_id", a.CorrelationID.String(),
					"node_id", node.String(), "error", infraerr.SanitizeError(err))
				failed = true
			}
		}
		if w.aggs[node] != a {
			continue // done and removed by the flush
		}
		if failed {
			w.laterLocked(node, now)
		}
		// What is still due now failed; it is retried with the failures.
		w.scheduleLocked(a, now.Add(retryLater))
	}
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

// resend delivers attempt n+1 of a failed intent to its effect.
func (w *Workflow) resend(ctx context.Context, a *Aggregation, backend string, t *Tracked, now time.Time) error {
	n := t.Attempt + 1
	value, err := attemptEnvelope(t, n, now)
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
	pm := wire.Message(topic, a.NodeID.String(), value, w.cfg.Source, a.CorrelationID)
	if err := w.cfg.Send.Send(ctx, pm); err != nil {
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

// InFlight returns a copy of the aggregation of node, if one is in flight
// on this instance (for tests and diagnostics).
func (w *Workflow) InFlight(node uuid.UUID) (Aggregation, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.aggs[node]
	if !ok {
		return Aggregation{}, false
	}
	return *a, true
}
