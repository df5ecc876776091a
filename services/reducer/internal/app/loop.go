package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// Run consumes until ctx ends, then drains. The reducer is a bus.Runner in
// its transactional mode: each claimed partition is restored (claim), then
// every batch is decided (partitionHandler.Handle) and committed with its
// outputs and input offsets in one Kafka transaction by the runner.
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
	parts, err := client.Partitions(r.settings.SnapshotsTopic)
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "metadata"}, "snapshot partitions", err)
	}
	partitions := int32(len(parts))
	input := r.settings.Topic(topics.ReducerInput)
	runner, err := bus.NewRunner(bus.RunnerConfig{
		Brokers: r.brokers, Config: cfg, Group: r.settings.Group, Topics: []string{input},
		Transactions: &bus.Transactions{
			Producer: func(_ string, p int32) (*sarama.Config, error) {
				return r.producerConfig(fmt.Sprintf("%s-p%d", r.settings.Group, p))
			},
			Claim: func(ctx context.Context, c bus.PartitionClaim, prod sarama.SyncProducer) (bus.TxnHandler, error) {
				return r.claim(ctx, c, prod, partitions)
			},
			DeadLetter: r.deadLetterRecord,
			Step:       func(step string, d time.Duration) { r.metrics.txnSteps.WithLabelValues(step).Observe(d.Seconds()) },
		},
		Retry: r.settings.Retry, MaxBatch: r.settings.BatchSize, Linger: r.settings.BatchLinger,
		DrainTimeout: r.svc.Config.DrainTimeout, Log: r.svc.Log, Metrics: r.busm,
		// Counts the partitions to restore before any of them starts, so
		// that /readyz turns true only when the last one is restored (an
		// instance that got no partition has nothing to restore and is
		// ready).
		OnAssign: func(_ context.Context, claims map[string][]int32) error {
			n := len(claims[input])
			r.restoring.Store(int32(n))
			r.svc.Health.Set(condAssigned, n == 0)
			return nil
		},
	})
	if err != nil {
		return err
	}
	r.svc.Health.SetInFlight(runner.InFlight)
	return runner.Run(ctx)
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
// transaction rebuilds all three from Kafka (partitionHandler.load).
type partitionState struct {
	part *state.Partition
	live *liveness.Tracker
	next int64
}

// handler decides batches; the tests drive decideBatch through it.
type handler struct {
	partitions int32 // of the snapshot and liveness topics
	r          *Reducer
}

// partitionHandler is one claimed partition's bus.TxnHandler.
type partitionHandler struct {
	handler
	p             int32
	log           *slog.Logger
	prod          sarama.SyncProducer
	restoreClient sarama.Client
	ps            *partitionState
	proc          *processor.Processor
	// last is the output of the batch decided last, counted once its
	// transaction commits.
	last batchOutput
}

// claim restores a claimed partition: its producer is initialised (the
// previous owner fenced, its open transaction aborted), so its snapshot
// and liveness topics hold everything that owner committed. A partition
// whose state cannot be restored is not consumed (and the service not
// ready) until it can: the runner calls claim again; deciding without its
// state would register known nodes as new.
func (r *Reducer) claim(ctx context.Context, c bus.PartitionClaim, prod sarama.SyncProducer, partitions int32) (bus.TxnHandler, error) {
	// Each claim restores over its own connection. On a shared one, the
	// fetch a finished restore leaves behind waits Consumer.MaxWaitTime
	// (500 ms) for data past the partition's end, and the broker answers a
	// connection's requests in order: every other partition's restore would
	// stall behind it, one partition after another.
	rc, err := r.consumerConfig()
	if err != nil {
		return nil, err
	}
	tuneRestore(rc)
	restoreClient, err := sarama.NewClient(r.brokers, rc)
	if err != nil {
		return nil, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "restore_client"}, "restore client", err)
	}
	// ps.next starts at the group's committed offset: the heartbeats
	// between the last liveness checkpoint and it are replayed on restore.
	h := &partitionHandler{handler: handler{r: r, partitions: partitions}, p: c.Partition, log: r.svc.Log.With("partition", c.Partition),
		prod: prod, restoreClient: restoreClient, ps: &partitionState{next: c.InitialOffset}}
	if err := h.load(ctx); err != nil {
		restoreClient.Close()
		return nil, err
	}
	if r.restoring.Add(-1) == 0 {
		r.svc.Health.Set(condAssigned, true)
		releaseRestoreGarbage(h.log)
	}
	h.proc = processor.New(r.settings.Params, h.ps.part)
	r.exportCounts(h.proc.Partition, +1)
	return h, nil
}

// load restores the partition's state: it commits restore markers, reads
// the snapshots and the liveness checkpoint up to them, and replays the
// heartbeats from the checkpoint's head to the next input offset.
func (h *partitionHandler) load(ctx context.Context) error {
	r, p := h.r, h.p
	start := time.Now()
	marks, err := writeMarkers(h.prod, p, h.partitions, r.settings.SnapshotsTopic, r.settings.LivenessTopic)
	if err != nil {
		return err
	}
	marked := time.Now()
	pt, n, err := r.restore(ctx, h.restoreClient, r.settings.SnapshotsTopic, p, marks[0])
	if err != nil {
		return err
	}
	lt, from, err := restoreLiveness(ctx, h.restoreClient, r.settings.LivenessTopic, p, marks[1])
	if err != nil {
		return err
	}
	applied := lt.Apply(pt)
	to, err := resolveOffset(h.restoreClient, r.settings.Topic(topics.ReducerInput), p, h.ps.next)
	if err != nil {
		return err
	}
	replayed, moved, err := replayHeartbeats(ctx, h.restoreClient, r.settings.Topic(topics.ReducerInput), p, from, to, pt, lt, r.settings.Params)
	if err != nil {
		return err
	}
	h.ps.part, h.ps.live, h.ps.next = pt, lt, to
	r.metrics.restoreSecs.Observe(time.Since(start).Seconds())
	r.metrics.replayed.Add(float64(replayed))
	h.log.Info("state restored", "nodes", pt.Len(), "records", n, "took_ms", time.Since(start).Milliseconds(),
		"marker_ms", marked.Sub(start).Milliseconds(), "liveness_applied", applied,
		"replay_from", from, "replay_to", to, "inputs_replayed", replayed, "heartbeats_moved", moved)
	return nil
}

// Handle decides a batch (decideBatch) and returns its outputs for the
// runner's transaction.
func (h *partitionHandler) Handle(_ context.Context, msgs []*bus.Message) (bus.Output, error) {
	r := h.r
	// The node counts follow the partition's decisions; an aborted batch's
	// are taken back when its state is rebuilt (Aborted).
	r.exportCounts(h.proc.Partition, -1)
	out, err := h.decideBatch(h.proc, h.ps, msgs)
	r.exportCounts(h.proc.Partition, +1)
	if err != nil {
		return bus.Output{}, err
	}
	h.last = out
	// The encoders name the registry's topics; the namespace goes on here
	// (Physical is idempotent: the snapshot and liveness topics have it).
	for _, m := range out.msgs {
		m.Topic = r.settings.Topic(m.Topic)
	}
	res := bus.Output{Records: out.msgs}
	if len(out.rejected) > 0 {
		res.Outcomes = bus.Outcomes(len(msgs))
		for i, cause := range out.rejected {
			res.Outcomes[i] = bus.Reject(cause)
		}
	}
	return res, nil
}

// Committed counts a committed batch.
func (h *partitionHandler) Committed(msgs []*bus.Message, _ bus.Output) {
	h.ps.next = msgs[len(msgs)-1].Offset + 1
	h.r.committed(h.last, len(msgs))
	h.last = batchOutput{}
}

// Aborted rebuilds the partition after a failed transaction: the decisions
// of the aborted attempt changed it.
func (h *partitionHandler) Aborted(ctx context.Context) error {
	r := h.r
	r.metrics.txns.WithLabelValues("aborted").Inc()
	h.last = batchOutput{}
	if err := h.load(ctx); err != nil {
		return err
	}
	r.exportCounts(h.proc.Partition, -1)
	h.proc.Partition = h.ps.part
	r.exportCounts(h.proc.Partition, +1)
	return nil
}

// Close releases the claim.
func (h *partitionHandler) Close() {
	h.r.exportCounts(h.proc.Partition, -1)
	h.restoreClient.Close()
}
