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
//
// Workflow.Handle is the group's one handler (bus.Handle). It sends what a
// batch produces itself instead of returning it to the runner: the lock of
// the batch's partition, which the retry loop shares, must cover the send
// and the bookkeeping that needs its acknowledgement (see Handle and
// locks.go).
package workflow

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
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

	// plocks serialise the work on one partition number's nodes — its
	// batches of either topic, and the retry loop's work on its
	// aggregations — across the acknowledged send, which runs without mu so
	// that other partitions go on meanwhile (locks.go).
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

// Handle handles consecutive records of one partition of the intents or the
// results topic (bus.Handle) with one acknowledged send for the whole batch:
// for intents, every routed intent (tracked or not, in record order), then
// the state of every aggregation the batch changed; for results, every
// registration result decided and the state (or tombstone) of every
// aggregation they changed. A registration used to take seven sends, one
// after the other under the workflow's lock, and that bounded the fleet's
// registration rate. A record that is not an intent or a result (a content
// error) or an intent whose type has no route (a configuration error) is
// rejected, for the runner to dead-letter, and the rest of the batch is
// handled.
//
// Unlike the fleet's other handlers, Handle sends the batch's records
// itself and returns outcomes only: what follows the send needs the
// partition lock across it. The lock is held from the decision to the
// recording of the send's outcome — where each tracked intent landed
// (Tracked.RoutedPartition and RoutedOffset, known once acknowledged), the
// state no longer dirty, a finished aggregation dropped, the step timeouts
// queued — so that the node's next record and the retry loop, which takes
// the same lock for its re-sends of the partition's nodes, see that
// outcome; a failed send must hand the batch's aggregations to the retry
// loop (laterLocked) under it too. Records returned in Output.Records would
// be sent by the runner after Handle returned and released the lock, with
// no step of the workflow after the acknowledgement to record it.
//
// If the send fails the batch fails (the error) and the runner hands its
// records again one at a time, which repeats nothing harmful: a re-routed
// intent is a duplicate the effect's sequence guard ignores, an applied
// result is not applied twice, and the pending side effects are carried
// out.
func (w *Workflow) Handle(ctx context.Context, msgs []*bus.Message) (bus.Output, error) {
	if len(msgs) == 0 {
		return bus.Output{}, nil
	}
	pl := w.partitionLock(msgs[0].Partition)
	pl.Lock()
	defer pl.Unlock()
	if msgs[0].Topic == w.cfg.ResultsTopic {
		return w.handleResults(ctx, msgs)
	}
	return w.handleIntents(ctx, msgs)
}

// reject records that message i of a batch of n is dead-lettered for err.
func reject(out *bus.Output, n, i int, err error) {
	if out.Outcomes == nil {
		out.Outcomes = bus.Outcomes(n)
	}
	out.Outcomes[i] = bus.Reject(err)
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
