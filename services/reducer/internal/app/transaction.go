package app

import (
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/liveness"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

func (r *Reducer) producerConfig(txnID string) (*sarama.Config, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: r.brokers, ClientID: "reducer"})
	if err != nil {
		return nil, err
	}
	cfg.Producer.Transaction.ID = txnID
	// A killed instance leaves its open transaction, and with it the
	// group's offsets, unstable until the broker aborts it at this timeout:
	// the successor cannot fetch offsets and so cannot start before then. A
	// batch's transaction takes milliseconds, so a short timeout costs
	// nothing and bounds the recovery after kill -9.
	cfg.Producer.Transaction.Timeout = 10 * time.Second
	// The broker answers CONCURRENT_TRANSACTIONS to a transaction that
	// begins while the previous one's commit markers are still being
	// written, which with one transaction per batch is most of them.
	// sarama waits Retry.Backoff (100 ms by default) before asking again,
	// and that wait was most of a batch's time at low load; the Java client
	// retries this case after 20 ms. Start at 5 ms, double to 100 ms.
	cfg.Producer.Transaction.Retry.BackoffFunc = txnBackoff
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Compression = sarama.CompressionLZ4
	return cfg, cfg.Validate()
}

// txnBackoff is the wait before retry number retries of a transactional
// request: 5 ms, doubling, at most 100 ms. Asking every 3 ms instead made
// the send step slower (56 ms against 49 ms on average at 25
// registrations/s in make bench): the wait is for the previous commit's
// markers, which take tens of milliseconds on a loaded broker, and more
// requests load it further.
func txnBackoff(retries, _ int) time.Duration {
	return min(5*time.Millisecond<<min(retries, 5), 100*time.Millisecond)
}

// committed counts what a committed batch of n inputs decided; the
// runner counts the fleet-wide series (consumed, produced).
func (r *Reducer) committed(out batchOutput, n int) {
	r.metrics.txns.WithLabelValues("committed").Inc()
	r.metrics.batchSize.Observe(float64(n))
	for k, c := range out.counts {
		r.metrics.outputs.WithLabelValues(k).Add(float64(c))
	}
	for _, in := range out.inputs {
		r.metrics.inputs.WithLabelValues(in[0], in[1]).Inc()
	}
	for trig, c := range out.resent {
		r.metrics.resent.WithLabelValues(string(trig)).Add(float64(c))
	}
	r.metrics.shutdowns.Add(float64(out.shutdowns))
	for _, o := range out.operators {
		r.metrics.operators.WithLabelValues(o.command, o.outcome).Inc()
		r.metrics.operatorNodes.WithLabelValues(o.command).Add(float64(len(o.nodes)))
		o.log(r.svc.Log)
	}
	input := r.settings.Topic(topics.ReducerInput)
	for range out.rejected {
		r.dlqm.Written(input, dlq.TopicFor(input), rejectFailure)
	}
}

// rejectFailure is the failure of every input the reducer rejects: one it
// cannot decode (the wire's content), never a decision.
var rejectFailure = dlq.Failure{Type: "content", Class: dlq.ClassPublisherMalformed}

// deadLetterRecord builds the DLQ record of a rejected input; the runner
// commits it in the batch's transaction.
func (r *Reducer) deadLetterRecord(m *bus.Message, cause error) (*sarama.ProducerMessage, error) {
	f := rejectFailure
	f.Err, f.CorrelationID = cause, m.CorrelationID
	return dlq.Build(m.ConsumerMessage(), f, r.svc.Config.Environment, time.Now())
}

type batchOutput struct {
	msgs []*sarama.ProducerMessage // events, intents, snapshots
	// rejected are the batch's inputs that cannot be decoded, by index,
	// with the reason: the runner dead-letters them in the transaction.
	rejected map[int]error
	counts   map[string]int
	inputs   [][2]string
	// resent counts the accepted events published again, by trigger.
	resent map[decide.Trigger]int
	// shutdowns counts the nodes taken out by their shutdown introspection.
	shutdowns int
	// operators are the operator commands decided, logged and counted once
	// the transaction commits.
	operators []operatorResult
}

// decodeInput decodes one reducer-input record: the batch's and the
// restore's heartbeat replay's one way to read the input.
func decodeInput(headers []*sarama.RecordHeader, value []byte) (processor.Input, string, error) {
	return wire.DecodeRecord(headers, value)
}

// decideBatch decides a batch and returns what its transaction sends. A node
// whose decisions in the batch moved only its liveness writes no snapshot:
// the partition's tracker keeps the move, and once CheckpointInterval has
// passed the batch also rewrites the tracker's changed buckets.
func (h *handler) decideBatch(proc *processor.Processor, ps *partitionState, batch []*bus.Message) (batchOutput, error) {
	r := h.r
	out := batchOutput{counts: map[string]int{}, resent: map[decide.Trigger]int{}}
	touched := map[uuid.UUID]*decide.NodeState{}
	// livenessOnly is true for a touched node while every decision of the
	// batch that changed it moved only its liveness.
	livenessOnly := map[uuid.UUID]bool{}
	var order []uuid.UUID
	source := r.svc.Config.Environment
	for i, m := range batch {
		in, kind, err := decodeInput(m.Headers, m.Value)
		if err != nil {
			if out.rejected == nil {
				out.rejected = map[int]error{}
			}
			out.rejected[i] = err
			out.counts["dlq"]++
			out.inputs = append(out.inputs, [2]string{kind, "invalid"})
			r.svc.Log.Warn("unusable reducer input dead-lettered", "offset", m.Offset, "error", infraerr.SanitizeError(err))
			continue
		}
		start := time.Now()
		res := proc.Apply(in)
		if in.Kind == processor.KindTick {
			r.metrics.tickDuration.Observe(time.Since(start).Seconds())
		}
		outcome := "no_op"
		for _, d := range res.Decisions {
			if d.Emit {
				outcome = "emit"
				if d.Reason == decide.ReasonShutDown {
					out.shutdowns++
				}
				if d.State != nil {
					id := d.State.NodeID
					only, seen := livenessOnly[id]
					livenessOnly[id] = d.LivenessOnly && (only || !seen)
				}
			}
			for _, e := range d.Events {
				if e.ResentBy != "" {
					out.resent[e.ResentBy]++
				}
			}
			recs, err := wire.Decision(d, in.Now)
			if err != nil {
				return out, err
			}
			for _, rec := range recs {
				out.msgs = append(out.msgs, rec.ProducerMessage(source))
				out.counts[rec.Kind]++
			}
		}
		out.inputs = append(out.inputs, [2]string{kind, outcome})
		if in.Kind == processor.KindOperator {
			out.operators = append(out.operators, operatorOutcome(in.Operator, res))
		}
		for _, st := range res.Touched {
			if _, seen := touched[st.NodeID]; !seen {
				order = append(order, st.NodeID)
			}
			touched[st.NodeID] = st
		}
	}
	now := time.Now()
	for _, id := range order {
		if livenessOnly[id] {
			ps.live.Moved(touched[id])
			continue
		}
		ps.live.Snapshotted(id)
		rec, err := wire.Snapshot(touched[id], now)
		if err != nil {
			return out, err
		}
		rec.Topic = r.settings.SnapshotsTopic
		out.msgs = append(out.msgs, rec.ProducerMessage(source))
		out.counts["snapshot"]++
	}
	if next := batch[len(batch)-1].Offset + 1; ps.live.Due(now, r.settings.CheckpointInterval, next) {
		recs, err := ps.live.Checkpoint(next, now)
		if err != nil {
			return out, err
		}
		for _, lr := range recs {
			out.msgs = append(out.msgs, h.livenessMessage(ps.live.Partition(), lr))
			out.counts["liveness"]++
		}
	}
	return out, nil
}

// livenessContentType marks the checkpoint's records (docs/architecture.md,
// "Two wires").
var livenessContentType = pipeline.ProtobufContentType(string((&fleetv1.LivenessCheckpoint{}).ProtoReflect().Descriptor().FullName()))

// livenessMessage keys a liveness checkpoint record so that it lands on
// partition p of the liveness topic: "<p>/head" for the head,
// "<p>/<buckets>/<bucket>" for a bucket, with partitionKey's suffix.
func (h *handler) livenessMessage(p int32, lr liveness.Record) *sarama.ProducerMessage {
	topic := h.r.settings.LivenessTopic
	base := fmt.Sprintf("%d/%d/%d", p, lr.Buckets, lr.Bucket)
	if lr.Head {
		base = fmt.Sprintf("%d/head", p)
	}
	m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(partitionKey(topic, base, p, h.partitions))}
	if lr.Value != nil {
		m.Value = sarama.ByteEncoder(lr.Value)
		m.Headers = []sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(livenessContentType)}}
	}
	return m
}
