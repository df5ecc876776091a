// Package ticker publishes the runtime tick (spec 2.5) that drives the
// reducer's timeouts, from exactly one orchestrator replica at a time.
//
// Leadership is Kafka group membership: every replica joins one consumer
// group on the one-partition runtime-tick topic, and the replica assigned
// partition 0 is the leader. It ticks while it holds that claim and stops the
// moment the claim's session ends, which happens before the group hands the
// partition to anyone else (the eager rebalance protocol revokes every claim
// before it assigns any). Each tick goes to every partition of the reducer
// input, so timeout decisions are ordered with each node's own messages, and
// to the runtime-tick topic itself for parity with the Python scheduler.
package ticker

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// Sender publishes records and returns once the broker acknowledged them.
// Its producer must use a manual partitioner: every record carries its
// partition.
type Sender interface {
	Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error
}

// Config wires a Scheduler.
type Config struct {
	// Interval is the tick period (ONEX_RUNTIME_SCHEDULER_TICK_INTERVAL_MS).
	Interval time.Duration
	// SchedulerID is the tick's scheduler_id and record key.
	SchedulerID string
	// TickTopic is the one-partition runtime-tick topic (leadership and
	// parity copy); ReducerInput is the reducer input topic.
	TickTopic, ReducerInput string
	// Source is the header source of reducer input records.
	Source string
	Send   Sender
	// Client provides partition counts and the last tick published.
	Client sarama.Client
	Log    *slog.Logger
	// OnLead, if set, runs for as long as this replica leads (it must return
	// when its context ends). The topic catalog announces changes from here.
	OnLead     func(ctx context.Context)
	Registerer prometheus.Registerer
}

// Scheduler ticks while it leads. Create it with New; wire Assign, Revoke
// and Handle into the leadership consumer group.
type Scheduler struct {
	cfg     Config
	leading atomic.Bool

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ticks    *prometheus.CounterVec
	failures prometheus.Counter
	leader   prometheus.Gauge
}

// New returns a Scheduler.
func New(cfg Config) *Scheduler {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Scheduler{cfg: cfg,
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_ticks_published_total",
			Help: "Runtime tick records published, by destination (reducer_input: one per partition; runtime_tick: the parity copy)."},
			[]string{"destination"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_orchestrator_tick_failures_total",
			Help: "Ticks that could not be published (the next tick covers them: the reducer evaluates deadlines against tick.now)."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onex_orchestrator_tick_leader",
			Help: "1 while this replica holds the runtime-tick leadership."}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.ticks, s.failures, s.leader)
	}
	return s
}

// Leading reports whether this replica is the tick leader now.
func (s *Scheduler) Leading() bool { return s.leading.Load() }

// Handle is the leadership group's handler (bus.Handle): the records
// themselves (our ticks and any other scheduler's) carry nothing to act on,
// so every one is done and nothing is sent.
func (s *Scheduler) Handle(context.Context, []*bus.Message) (bus.Output, error) {
	return bus.Output{}, nil
}

// Assign starts leading when claims hold partition 0 of the tick topic. ctx
// is the group session's context: it ends when the session does, which
// stops the ticking even before Revoke runs.
func (s *Scheduler) Assign(ctx context.Context, claims map[string][]int32) error {
	if !slices.Contains(claims[s.cfg.TickTopic], 0) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return nil
	}
	lctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.leading.Store(true)
	s.leader.Set(1)
	s.cfg.Log.Info("runtime tick leadership acquired", "scheduler_id", s.cfg.SchedulerID, "interval", s.cfg.Interval.String())
	s.wg.Add(1)
	go func() { // owned by the Scheduler: stopped by Revoke/Stop
		defer s.wg.Done()
		defer s.leading.Store(false)
		s.lead(lctx)
	}()
	if s.cfg.OnLead != nil {
		s.wg.Add(1)
		go func() { // owned by the Scheduler: stopped by Revoke/Stop
			defer s.wg.Done()
			s.cfg.OnLead(lctx)
		}()
	}
	return nil
}

// Revoke stops leading (if it did) and waits until no tick is in flight.
func (s *Scheduler) Revoke(map[string][]int32) { s.Stop() }

// Stop stops leading and waits for the tick loop to end.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.cancel = nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	s.leading.Store(false)
	cancel()
	s.wg.Wait()
	s.leader.Set(0)
	s.cfg.Log.Info("runtime tick leadership released")
}

func (s *Scheduler) lead(ctx context.Context) {
	seq := s.lastSequence(ctx) + 1
	start := time.Now()
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return
		}
		s.tick(ctx, seq, start.Add(time.Duration(n)*s.cfg.Interval))
		seq++
	}
}

// tick publishes one tick to every reducer input partition and to the tick
// topic, as one acknowledged batch.
func (s *Scheduler) tick(ctx context.Context, seq int, scheduled time.Time) {
	now := time.Now().UTC()
	tk := registration.RuntimeTick{
		Now: pipeline.T(now), TickID: uuid.New(), SequenceNumber: seq, ScheduledAt: pipeline.T(scheduled),
		CorrelationID: uuid.New(), SchedulerID: s.cfg.SchedulerID, TickIntervalMs: int(s.cfg.Interval / time.Millisecond),
	}
	body, err := json.Marshal(tk) // compact, as the Python scheduler's model_dump_json
	if err != nil {
		s.failures.Inc()
		s.cfg.Log.Error("tick encoding failed", "error", infraerr.SanitizeError(err))
		return
	}
	parts, err := s.cfg.Client.Partitions(s.cfg.ReducerInput)
	if err != nil {
		s.failures.Inc()
		s.cfg.Log.Warn("reducer input partitions unknown; tick skipped", "error", infraerr.SanitizeError(err))
		return
	}
	ri := pipeline.ReducerInput{Topic: topics.RuntimeTick, ReceivedAt: pipeline.T(now), Value: body}
	msgs := make([]*sarama.ProducerMessage, 0, len(parts)+1)
	for _, p := range parts {
		m := wire.InputMessage(s.cfg.ReducerInput, s.cfg.SchedulerID, ri, s.cfg.Source, tk.CorrelationID)
		m.Partition = p
		msgs = append(msgs, m)
	}
	// The parity copy carries the Python scheduler's headers (spec 2.5).
	h := envelope.NewHeaders(s.cfg.TickTopic, "runtime-scheduler."+s.cfg.SchedulerID)
	h.CorrelationID, h.MessageID, h.EventType = tk.CorrelationID, tk.TickID, "runtime.tick.v1"
	msgs = append(msgs, &sarama.ProducerMessage{Topic: s.cfg.TickTopic, Partition: 0, Key: sarama.StringEncoder(s.cfg.SchedulerID),
		Value: sarama.ByteEncoder(body), Headers: h.Records()})
	if err := s.cfg.Send.Send(ctx, msgs...); err != nil {
		s.failures.Inc()
		s.cfg.Log.Warn("tick not published", "correlation_id", tk.CorrelationID.String(), "sequence_number", seq, "error", infraerr.SanitizeError(err))
		return
	}
	s.ticks.WithLabelValues("reducer_input").Add(float64(len(parts)))
	s.ticks.WithLabelValues("runtime_tick").Inc()
}

// lastSequence reads the last tick on the tick topic so a new leader
// continues this scheduler's sequence instead of restarting it at 0
// (the Python scheduler persists it in Valkey for the same reason). -1 when
// there is none or it is another scheduler's.
func (s *Scheduler) lastSequence(ctx context.Context) int {
	v, ok := wire.LastRecord(ctx, s.cfg.Client, s.cfg.TickTopic, 0)
	if !ok {
		return -1
	}
	tk, err := registration.DecodeTick(v)
	if err != nil || tk.SchedulerID != s.cfg.SchedulerID {
		return -1
	}
	return tk.SequenceNumber
}
