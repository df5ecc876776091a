package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/retry"
)

// RunnerConfig describes one consumer group.
type RunnerConfig struct {
	Brokers []string
	// Config is the group's own sarama config; the runner raises its
	// ChannelBufferSize to MaxBatch.
	Config *sarama.Config
	Group  string
	Topics []string
	// Handle handles the group's records, a batch of one partition at a
	// time (see Handle). Unused in transactional mode.
	Handle Handle
	// Transactions, if set, switches the runner to its transactional mode
	// (see Transactions): Handle, Send and DeadLetter are then unused.
	Transactions *Transactions
	// Send sends the records a Handle returns. It may be nil for a handler
	// that returns none; a batch that does return records then fails as a
	// configuration error.
	Send Sender
	// DeadLetter parks the messages a Handle rejects or whose retries are
	// spent. It may be nil for a handler that never rejects; such a message
	// then stays uncommitted and is tried again after a pause, so a
	// misbuilt runner stalls visibly instead of losing data.
	DeadLetter DeadLetterer
	// Retry spaces and bounds the attempts at a message that failed for now
	// (zero value: retry.Default(), the spec's policy).
	Retry retry.Policy
	// MaxBatch bounds a batch (default DefaultMaxBatch; 1 hands messages one
	// at a time). Linger is how long a batch that is not full waits for
	// more records (default DefaultLinger; negative: take only what is
	// already buffered).
	MaxBatch int
	Linger   time.Duration
	// DrainTimeout bounds how long shutdown waits for the messages in flight
	// (spec ONEX_DRAIN_TIMEOUT, default 30 s). At the deadline their context
	// is cancelled and their offsets stay uncommitted.
	DrainTimeout time.Duration
	Log          *slog.Logger
	// Metrics, if set, receives the lag of every claimed partition
	// (onex_consumer_lag{group=Group}), the time of every Handle call
	// (under Metrics' handler name), the messages finished by outcome and
	// the retries.
	Metrics *Metrics
	// OnAssign, if set, runs when partitions are assigned, before any message
	// of the new assignment is handled (the orchestrator restores state
	// here). An error ends the session and the runner rejoins after a pause.
	OnAssign func(ctx context.Context, claims map[string][]int32) error
	// OnRevoke, if set, runs after the handlers of a session have returned
	// and before its offsets are committed.
	OnRevoke func(claims map[string][]int32)
}

// Runner runs one consumer group until its context ends. Create it with
// NewRunner; it is single-use.
type Runner struct {
	cfg      RunnerConfig
	inflight atomic.Int64
	draining atomic.Bool
	ready    atomic.Bool
}

// NewRunner checks cfg and returns a Runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("bus: runner needs brokers")
	case cfg.Config == nil:
		return nil, errors.New("bus: runner needs a sarama config")
	case cfg.Group == "":
		return nil, errors.New("bus: runner needs a group id")
	case len(cfg.Topics) == 0:
		return nil, errors.New("bus: runner needs topics")
	case cfg.Handle == nil && cfg.Transactions == nil:
		return nil, errors.New("bus: runner needs a handler")
	case cfg.Transactions != nil && (cfg.Transactions.Producer == nil || cfg.Transactions.Claim == nil || cfg.Transactions.DeadLetter == nil):
		return nil, errors.New("bus: transactional runner needs a producer config, a claim and a dead-letter record builder")
	case cfg.Transactions != nil && cfg.Config.Consumer.Offsets.AutoCommit.Enable:
		// Offsets commit inside the transactions; the group committing
		// them too would commit records whose transaction aborted.
		return nil, errors.New("bus: transactional runner needs Consumer.Offsets.AutoCommit disabled")
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.Retry.MaxAttempts <= 0 {
		cfg.Retry = retry.Default()
	}
	// A batch is taken from the claim's channel: it must be able to hold
	// one.
	cfg.Config.ChannelBufferSize = max(cfg.Config.ChannelBufferSize, cfg.MaxBatch)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Log = cfg.Log.With("group", cfg.Group)
	return &Runner{cfg: cfg}, nil
}

// InFlight returns the number of messages being handled now.
func (r *Runner) InFlight() int64 { return r.inflight.Load() }

// Draining reports whether shutdown has begun.
func (r *Runner) Draining() bool { return r.draining.Load() }

// Assigned reports whether the runner holds a live session (it has joined
// the group and run OnAssign). It turns false during rebalances.
func (r *Runner) Assigned() bool { return r.ready.Load() }

// Run consumes until ctx is done, then drains: it stops taking messages at
// once, lets the messages in flight finish until DrainTimeout, commits the
// marked offsets and leaves the group. It returns nil after a clean drain and
// an error if the group could not be created or the drain deadline passed.
func (r *Runner) Run(ctx context.Context) error {
	group, err := sarama.NewConsumerGroup(r.cfg.Brokers, r.cfg.Group, r.cfg.Config)
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "join_group", Target: r.cfg.Group},
			"create consumer group", err)
	}

	// Handlers get a context that survives the shutdown signal and is
	// cancelled only at the drain deadline, so work in flight can finish.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	consume, stopConsume := context.WithCancel(context.Background())
	defer stopConsume()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by Run: ends when Run closes the error channel
		defer wg.Done()
		for err := range group.Errors() {
			r.cfg.Log.Warn("consumer group error", "error", infraerr.SanitizeError(err))
		}
	}()

	drainExpired := make(chan struct{})
	var drainOnce sync.Once
	go func() { // owned by Run: ends when ctx or consume ends
		select {
		case <-ctx.Done():
		case <-consume.Done():
			return
		}
		r.draining.Store(true)
		r.cfg.Log.Info("draining", "in_flight", r.inflight.Load(), "drain_timeout", r.cfg.DrainTimeout.String())
		stopConsume()
		t := time.NewTimer(r.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			drainOnce.Do(func() { close(drainExpired) })
			r.cfg.Log.Warn("drain deadline passed; cancelling work in flight", "in_flight", r.inflight.Load())
			cancelWork()
		case <-work.Done():
		}
	}()

	h := &groupHandler{r: r, work: work}
	started := time.Now()
	for consume.Err() == nil {
		if err := group.Consume(consume, r.cfg.Topics, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				break
			}
			r.cfg.Log.Warn("consume session ended with error; rejoining", "error", infraerr.SanitizeError(err))
			select {
			case <-consume.Done():
			case <-time.After(time.Second):
			}
		}
	}
	closeErr := group.Close()
	cancelWork()
	wg.Wait()
	r.cfg.Log.Info("consumer stopped", "drain_ms", time.Since(started).Milliseconds())
	select {
	case <-drainExpired:
		return fmt.Errorf("bus: drain deadline of %s passed with work in flight", r.cfg.DrainTimeout)
	default:
	}
	if closeErr != nil {
		return fmt.Errorf("bus: close consumer group: %w", closeErr)
	}
	return nil
}

type groupHandler struct {
	r    *Runner
	work context.Context
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	claims := s.Claims()
	h.r.cfg.Log.Info("partitions assigned", "claims", claims, "generation", s.GenerationID())
	if h.r.cfg.OnAssign != nil {
		if err := h.r.cfg.OnAssign(s.Context(), claims); err != nil {
			return fmt.Errorf("bus: on-assign: %w", err)
		}
	}
	h.r.ready.Store(true)
	return nil
}

func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.r.ready.Store(false)
	if h.r.cfg.OnRevoke != nil {
		h.r.cfg.OnRevoke(s.Claims())
	}
	// Commit what was marked now rather than on the next auto-commit tick,
	// so the next owner of these partitions starts right after our work.
	// (A transactional runner marks nothing: its offsets are committed.)
	if h.r.cfg.Transactions == nil {
		s.Commit()
	}
	return nil
}

// FromConsumerMessage converts a sarama record into a Message, resolving its
// correlation id from the body, then the header, then a fresh v4. A
// protobuf body (the fleet's internal records, content_type
// application/x-protobuf) is not JSON and is not scanned for one.
func FromConsumerMessage(cm *sarama.ConsumerMessage) *Message {
	m := &Message{
		Topic: cm.Topic, Partition: cm.Partition, Offset: cm.Offset,
		Key: cm.Key, Value: cm.Value, Headers: cm.Headers, Timestamp: cm.Timestamp,
	}
	if !isProtobuf(cm.Headers) {
		if id, ok := envelope.PeekCorrelationID(cm.Value); ok {
			m.CorrelationID = id
			return m
		}
	}
	if id, err := uuid.ParseBytes(m.Header("correlation_id")); err == nil {
		m.CorrelationID = id
	} else {
		m.CorrelationID = uuid.New()
	}
	return m
}

// isProtobuf reports whether a record's content_type header names a
// protobuf value (docs/architecture.md, "Two wires").
func isProtobuf(headers []*sarama.RecordHeader) bool {
	var ct []byte
	for _, h := range headers {
		if h != nil && string(h.Key) == envelope.HeaderKeyContentType {
			ct = h.Value
		}
	}
	return bytes.HasPrefix(ct, []byte("application/x-protobuf"))
}
