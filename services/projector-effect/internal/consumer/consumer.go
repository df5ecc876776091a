// Package consumer is a consumer-group runner that hands a partition's
// records to its handler in batches: whatever the partition has buffered (up
// to MaxBatch), so that a poll of N heartbeats costs the database a few round
// trips instead of N. It keeps pkg/bus's guarantees (bus.Runner handles one
// message at a time and cannot batch):
//
//   - Per partition, batches are handled one at a time in offset order.
//   - A batch's offsets are marked only after the handler returned nil; a
//     crash or rebalance redelivers everything after the last commit
//     (at-least-once). A handler error leaves the batch unmarked and ends
//     the partition's session; it is only expected when stopping.
//   - On shutdown intake stops at once, the batches in flight finish until
//     DrainTimeout (then their context is cancelled), marked offsets are
//     committed, the group is left.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// Handler handles one batch of one partition's records, in offset order.
// stop closes when the partition stops (shutdown or revocation): the
// handler should then give up waits of its own and return an error, leaving
// the batch uncommitted. ctx is cancelled only at the drain deadline.
type Handler func(ctx context.Context, stop <-chan struct{}, msgs []*sarama.ConsumerMessage) error

// Config describes one consumer group.
type Config struct {
	Brokers []string
	Sarama  *sarama.Config
	Group   string
	Topics  []string
	Handler Handler
	// MaxBatch bounds a batch (default 500).
	MaxBatch int
	// Linger is how long a batch that is not full waits for more records
	// (default 5 ms; 0 keeps the default, a negative value disables it).
	Linger       time.Duration
	DrainTimeout time.Duration
	Log          *slog.Logger
	// Metrics, if set, receives the lag of every claimed partition and the
	// time of each handler call (one observation per batch).
	Metrics  *bus.Metrics
	OnAssign func(ctx context.Context, claims map[string][]int32) error
	OnRevoke func(claims map[string][]int32)
}

// Runner runs one consumer group until its context ends; it is single-use.
type Runner struct {
	cfg      Config
	inflight atomic.Int64
	assigned atomic.Bool
	draining atomic.Bool
}

// New checks cfg and returns a Runner.
func New(cfg Config) (*Runner, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("consumer: no brokers")
	case cfg.Sarama == nil:
		return nil, errors.New("consumer: no sarama config")
	case cfg.Group == "":
		return nil, errors.New("consumer: no group id")
	case len(cfg.Topics) == 0:
		return nil, errors.New("consumer: no topics")
	case cfg.Handler == nil:
		return nil, errors.New("consumer: no handler")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.Linger == 0 {
		cfg.Linger = 5 * time.Millisecond
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	// The claim's channel is what a batch is taken from.
	cfg.Sarama.ChannelBufferSize = max(cfg.Sarama.ChannelBufferSize, cfg.MaxBatch)
	cfg.Log = cfg.Log.With("group", cfg.Group)
	return &Runner{cfg: cfg}, nil
}

// InFlight returns the number of records being handled now.
func (r *Runner) InFlight() int64 { return r.inflight.Load() }

// Assigned reports whether the runner holds a live session.
func (r *Runner) Assigned() bool { return r.assigned.Load() }

// Draining reports whether shutdown has begun.
func (r *Runner) Draining() bool { return r.draining.Load() }

// Run consumes until ctx is done, then drains (see the package doc). It
// returns nil after a clean drain, an error if the group could not be
// created or the drain deadline passed.
func (r *Runner) Run(ctx context.Context) error {
	group, err := sarama.NewConsumerGroup(r.cfg.Brokers, r.cfg.Group, r.cfg.Sarama)
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "join_group", Target: r.cfg.Group},
			"create consumer group", err)
	}
	// Handlers get a context that outlives the shutdown signal until the
	// drain deadline, so batches in flight can finish.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	consume, stopConsume := context.WithCancel(context.Background())
	defer stopConsume()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // owned: ends when the group is closed
		defer wg.Done()
		for err := range group.Errors() {
			r.cfg.Log.Warn("consumer group error", "error", infraerr.SanitizeError(err))
		}
	}()
	expired := make(chan struct{})
	go func() { // owned: ends at shutdown or when Run returns
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-work.Done():
			return
		}
		r.draining.Store(true)
		r.cfg.Log.Info("draining", "in_flight", r.inflight.Load(), "drain_timeout", r.cfg.DrainTimeout.String())
		stopConsume()
		t := time.NewTimer(r.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			close(expired)
			r.cfg.Log.Warn("drain deadline passed; cancelling work in flight", "in_flight", r.inflight.Load())
			cancelWork()
		case <-work.Done():
		}
	}()

	h := &claimHandler{r: r, work: work}
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
	r.cfg.Log.Info("consumer stopped")
	select {
	case <-expired:
		return fmt.Errorf("consumer: drain deadline of %s passed with work in flight", r.cfg.DrainTimeout)
	default:
	}
	if closeErr != nil {
		return fmt.Errorf("consumer: close group: %w", closeErr)
	}
	return nil
}

type claimHandler struct {
	r    *Runner
	work context.Context
}

func (h *claimHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.r.cfg.Log.Info("partitions assigned", "claims", s.Claims(), "generation", s.GenerationID())
	if h.r.cfg.OnAssign != nil {
		if err := h.r.cfg.OnAssign(s.Context(), s.Claims()); err != nil {
			return fmt.Errorf("consumer: on-assign: %w", err)
		}
	}
	h.r.assigned.Store(true)
	return nil
}

func (h *claimHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.r.assigned.Store(false)
	if h.r.cfg.OnRevoke != nil {
		h.r.cfg.OnRevoke(s.Claims())
	}
	s.Commit()
	return nil
}

func (h *claimHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	stop := s.Context().Done()
	cfg := h.r.cfg
	pos := cfg.Metrics.Track(cfg.Group, c)
	defer pos.Close()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var batch []*sarama.ConsumerMessage
		select {
		case <-stop:
			return nil
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, m)
		}
		pos.Taken(batch[0].Offset)
		batch = h.fill(batch, c, stop)
		last := batch[len(batch)-1]
		if !h.handle(stop, batch) {
			return nil
		}
		s.MarkMessage(last, "")
		pos.Done(last.Offset)
	}
}

// handle runs the handler until it succeeds or the partition stops. A
// handler is expected to fail only when stopping; any other error is logged
// and the same batch is tried again after a pause rather than skipped.
func (h *claimHandler) handle(stop <-chan struct{}, batch []*sarama.ConsumerMessage) bool {
	cfg := h.r.cfg
	first, last := batch[0], batch[len(batch)-1]
	for {
		h.r.inflight.Add(int64(len(batch)))
		start := time.Now()
		err := cfg.Handler(h.work, stop, batch)
		cfg.Metrics.ObserveHandler(last.Topic, time.Since(start))
		h.r.inflight.Add(-int64(len(batch)))
		if err == nil {
			return true
		}
		cfg.Log.Warn("batch left uncommitted", "topic", last.Topic, "partition", last.Partition,
			"first_offset", first.Offset, "last_offset", last.Offset, "error", infraerr.SanitizeError(err))
		select {
		case <-stop:
			return false
		case <-h.work.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

// fill adds what the claim has buffered, up to MaxBatch, waiting at most
// Linger for a batch that is not full.
func (h *claimHandler) fill(batch []*sarama.ConsumerMessage, c sarama.ConsumerGroupClaim, stop <-chan struct{}) []*sarama.ConsumerMessage {
	cfg := h.r.cfg
	var linger <-chan time.Time
	if cfg.Linger > 0 {
		t := time.NewTimer(cfg.Linger)
		defer t.Stop()
		linger = t.C
	}
	for len(batch) < cfg.MaxBatch {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return batch
			}
			batch = append(batch, m)
			continue
		default:
		}
		if linger == nil {
			return batch
		}
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return batch
			}
			batch = append(batch, m)
		case <-linger:
			return batch
		case <-stop:
			return batch
		}
	}
	return batch
}
