package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/internal/liveness"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

// Run consumes until ctx ends, then drains.
func (r *Reducer) Run(ctx context.Context) error {
	cfg, err := r.consumerConfig()
	if err != nil {
		return err
	}
	client, err := service.WaitKafka(ctx, r.svc.Log, r.brokers, cfg)
	if err != nil {
		return nil // ctx ended while waiting: a stop, not a failure
	}
	defer client.Close()
	// Topics provisioned after the reducer starts (a provisioning job that
	// runs alongside the deployment) are waited for, not failed on; only a
	// layout that cannot work is fatal.
	if !service.WaitTopics(ctx, r.svc.Log, client, r.settings.Topic(topics.ReducerInput), r.settings.SnapshotsTopic, r.settings.LivenessTopic, r.settings.Topic(topics.RegistrationIntents)) {
		return nil
	}
	if err := r.checkCoPartitioned(client); err != nil {
		return err
	}
	r.svc.Health.Set(condTopics, true)
	group, err := sarama.NewConsumerGroup(r.brokers, r.settings.Group, cfg)
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "join_group"}, "consumer group", err)
	}
	defer group.Close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for err := range group.Errors() {
			r.svc.Log.Warn("consumer group error", "error", infraerr.SanitizeError(err))
		}
	}()
	// Handlers finish the batch in flight after ctx ends; the drain deadline
	// cancels work that takes longer.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(r.svc.Config.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelWork()
		case <-work.Done():
		}
	}()
	parts, err := client.Partitions(r.settings.SnapshotsTopic)
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "metadata"}, "snapshot partitions", err)
	}
	h := &handler{r: r, work: work, partitions: int32(len(parts))}
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{r.settings.Topic(topics.ReducerInput)}, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				break
			}
			r.svc.Log.Warn("consume session ended; rejoining", "error", infraerr.SanitizeError(err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	cancelWork()
	group.Close()
	wg.Wait()
	return nil
}

var errNotCoPartitioned = errors.New("reducer input, snapshot and liveness topics must be co-partitioned")

// checkCoPartitioned fails when the input, snapshot and liveness topics
// differ in partition count: a partition's state lives in the snapshot and
// liveness partitions of the same number (restore.go).
func (r *Reducer) checkCoPartitioned(client sarama.Client) error {
	input := r.settings.Topic(topics.ReducerInput)
	for _, t := range []string{r.settings.SnapshotsTopic, r.settings.LivenessTopic} {
		in, err := client.Partitions(input)
		if err != nil {
			return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "metadata", Target: input}, "partitions", err)
		}
		ps, err := client.Partitions(t)
		if err != nil {
			return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "metadata", Target: t}, "partitions", err)
		}
		if len(in) != len(ps) {
			return fmt.Errorf("reducer: %w: %s has %d partitions but %s has %d",
				errNotCoPartitioned, input, len(in), t, len(ps))
		}
	}
	return nil
}

func (r *Reducer) consumerConfig() (*sarama.Config, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: r.brokers, ClientID: "reducer", FromOldest: r.svc.Config.ConsumeFromOldest})
	if err != nil {
		return nil, err
	}
	// Offsets are committed inside the output transaction, never by the
	// consumer group itself.
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	return cfg, nil
}

// partitionState is one claimed partition's state: the nodes, the liveness
// moves not yet in their snapshots, and the next input offset. A failed
// transaction rebuilds all three from Kafka (load in ConsumeClaim).
type partitionState struct {
	part *state.Partition
	live *liveness.Tracker
	next int64
}

type handler struct {
	partitions int32 // of the snapshot and liveness topics
	r          *Reducer
	work       context.Context
}

// Setup counts the partitions to restore before any of them starts, so
// that /readyz turns true only when the last one is restored (an instance
// that got no partition has nothing to restore and is ready).
func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	n := len(s.Claims()[h.r.settings.Topic(topics.ReducerInput)])
	h.r.restoring.Store(int32(n))
	h.r.svc.Health.Set(condAssigned, n == 0)
	h.r.svc.Log.Info("partitions assigned", "claims", s.Claims(), "generation", s.GenerationID())
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	r := h.r
	p := c.Partition()
	log := r.svc.Log.With("partition", p)
	stop := s.Context().Done()
	// The lag is reported from the claim on, restore included: records
	// waiting behind a slow restore are lag like any other.
	pos := r.busm.Track(r.settings.Group, c)
	defer pos.Close()
	// pause waits before another attempt; false when the partition stops.
	pause := func(attempt int) bool {
		select {
		case <-stop:
			return false
		case <-h.work.Done():
			return false
		case <-time.After(r.settings.Retry.Delay(min(attempt, r.settings.Retry.MaxAttempts-1), rand.Float64())):
			return true
		}
	}

	pc, err := r.producerConfig(fmt.Sprintf("%s-p%d", r.settings.Group, p))
	if err != nil {
		return err
	}
	// Initialising the transactional producer fences the previous owner of
	// this partition and aborts its open transaction before we restore.
	var prod sarama.SyncProducer
	for attempt := 0; ; attempt++ {
		if prod, err = sarama.NewSyncProducer(r.brokers, pc); err == nil {
			break
		}
		log.Error("transactional producer; retrying", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return nil
		}
	}
	defer prod.Close()

	// Each claim restores over its own connection. On a shared one, the
	// fetch a finished restore leaves behind waits Consumer.MaxWaitTime
	// (500 ms) for data past the partition's end, and the broker answers a
	// connection's requests in order: every other partition's restore would
	// stall behind it, one partition after another.
	rc, err := r.consumerConfig()
	if err != nil {
		return err
	}
	tuneRestore(rc)
	var restoreClient sarama.Client
	for attempt := 0; ; attempt++ {
		if restoreClient, err = sarama.NewClient(r.brokers, rc); err == nil {
			break
		}
		log.Error("restore client; retrying", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return nil
		}
	}
	defer restoreClient.Close()

	// ps is what the restore rebuilds and the transactions change. Its next
	// offset starts at the group's committed one: the heartbeats between
	// the last liveness checkpoint and it are replayed on restore.
	ps := &partitionState{next: c.InitialOffset()}
	load := func() error {
		start := time.Now()
		marks, err := writeMarkers(prod, p, h.partitions, r.settings.SnapshotsTopic, r.settings.LivenessTopic)
		if err != nil {
			return err
		}
		marked := time.Now()
		pt, n, err := r.restore(s.Context(), restoreClient, r.settings.SnapshotsTopic, p, marks[0])
		if err != nil {
			return err
		}
		lt, from, err := restoreLiveness(s.Context(), restoreClient, r.settings.LivenessTopic, p, marks[1])
		if err != nil {
			return err
		}
		applied := lt.Apply(pt)
		to, err := resolveOffset(restoreClient, r.settings.Topic(topics.ReducerInput), p, ps.next)
		if err != nil {
			return err
		}
		replayed, moved, err := replayHeartbeats(s.Context(), restoreClient, r.settings.Topic(topics.ReducerInput), p, from, to, pt, lt, r.settings.Params)
		if err != nil {
			return err
		}
		ps.part, ps.live, ps.next = pt, lt, to
		r.metrics.restoreSecs.Observe(time.Since(start).Seconds())
		r.metrics.replayed.Add(float64(replayed))
		log.Info("state restored", "nodes", pt.Len(), "records", n, "took_ms", time.Since(start).Milliseconds(),
			"marker_ms", marked.Sub(start).Milliseconds(), "liveness_applied", applied,
			"replay_from", from, "replay_to", to, "inputs_replayed", replayed, "heartbeats_moved", moved)
		return nil
	}
	// A partition whose state cannot be restored is not consumed (and the
	// service not ready) until it can: deciding without its state would
	// register known nodes as new.
	for attempt := 0; ; attempt++ {
		err := load()
		if err == nil {
			break
		}
		log.Error("state restore failed; retrying", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return nil
		}
	}
	if r.restoring.Add(-1) == 0 {
		r.svc.Health.Set(condAssigned, true)
		releaseRestoreGarbage(log)
	}
	proc := processor.New(r.settings.Params, ps.part)
	r.exportCounts(proc.Partition, +1)
	// proc.Partition, not ps.part: a failed transaction replaces the partition.
	defer func() { r.exportCounts(proc.Partition, -1) }()

	meta := sarama.NewConsumerGroupMetadataFromSession(s, r.settings.Group, nil)
	for {
		batch, ok := collect(stop, c.Messages(), r.settings.BatchSize, r.settings.BatchLinger)
		if len(batch) == 0 {
			if !ok {
				return nil
			}
			continue
		}
		start := time.Now()
		pos.Taken(batch[0].Offset)
		r.inflight.Add(int64(len(batch)))
		committed := h.commitBatch(prod, proc, ps, batch, meta, pause, log, load)
		r.inflight.Add(-int64(len(batch)))
		if !committed {
			return nil
		}
		pos.Done(batch[len(batch)-1].Offset)
		r.busm.ObserveHandler(r.settings.Topic(topics.ReducerInput), time.Since(start))
		if !ok {
			return nil
		}
	}
}

// commitBatch runs batch in a transaction until it commits (true) or the
// partition stops or moves (false). A failed transaction restores the
// partition's state before the batch is tried again, because the decisions
// of the aborted attempt changed it.
func (h *handler) commitBatch(prod sarama.SyncProducer, proc *processor.Processor, ps *partitionState, batch []*sarama.ConsumerMessage,
	meta *sarama.ConsumerGroupMetadata, pause func(int) bool, log *slog.Logger, load func() error) bool {
	r := h.r
	for attempt := 0; ; attempt++ {
		r.exportCounts(proc.Partition, -1)
		err := h.transact(prod, proc, ps, batch, meta)
		r.exportCounts(proc.Partition, +1)
		if err == nil {
			ps.next = batch[len(batch)-1].Offset + 1
			return true
		}
		r.metrics.txns.WithLabelValues("aborted").Inc()
		if errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch) {
			log.Warn("producer fenced: partition moved to another instance", "error", infraerr.SanitizeError(err))
			return false
		}
		log.Warn("transaction failed; restoring partition and retrying the batch", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return false
		}
		for a := 0; ; a++ {
			err := load()
			if err == nil {
				break
			}
			log.Error("state restore failed; retrying", "attempt", a, "error", infraerr.SanitizeError(err))
			if !pause(a) {
				return false
			}
		}
		r.exportCounts(proc.Partition, -1)
		proc.Partition = ps.part
		r.exportCounts(proc.Partition, +1)
	}
}

// collect waits for one message, then takes what else is ready up to max or
// until linger passes. ok is false when the claim ended.
func collect(stop <-chan struct{}, in <-chan *sarama.ConsumerMessage, max int, linger time.Duration) (batch []*sarama.ConsumerMessage, ok bool) {
	select {
	case <-stop:
		return nil, false
	case m, open := <-in:
		if !open {
			return nil, false
		}
		batch = append(batch, m)
	}
	t := time.NewTimer(linger)
	defer t.Stop()
	for len(batch) < max {
		select {
		case m, open := <-in:
			if !open {
				return batch, false
			}
			batch = append(batch, m)
		case <-t.C:
			return batch, true
		case <-stop:
			return batch, true
		}
	}
	return batch, true
}
