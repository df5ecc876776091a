package ingress

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// PartitionLister returns a topic's partitions (sarama.Client).
type PartitionLister interface {
	Partitions(topic string) ([]int32, error)
}

// OperatorConfig wires an OperatorHandler.
type OperatorConfig struct {
	// ReducerInput is the reducer input topic.
	ReducerInput string
	// Source is the bus environment written to the header source.
	Source string
	// MaxBytes is the largest record value accepted (0: no bound).
	MaxBytes int
	// Partitions lists the reducer input's partitions: an evict goes to
	// each, a deregister to its node's.
	Partitions PartitionLister
	Metrics    *Metrics
}

// OperatorHandler is the bus handler of the operator command topic
// (topics.RegistrationAdmin). The reducer decides operator commands like
// any other input, so they are forwarded to the reducer input unchanged: a
// deregister keyed by its node, in the node's partition, ordered with that
// node's own messages; an evict, which is about every node of a state, to
// every partition, where each reducer instance applies it to the nodes it
// owns.
//
// Every record it returns names its partition, so the runner's sender must
// use a manual partitioner (like the ticker's): one sender serves both
// commands.
type OperatorHandler struct {
	cfg OperatorConfig
	now func() time.Time
}

// NewOperatorHandler returns the operator command handler.
func NewOperatorHandler(cfg OperatorConfig) *OperatorHandler {
	return &OperatorHandler{cfg: cfg, now: time.Now}
}

// Handle checks operator commands strictly (operator.Decode: the envelope
// and a payload without unknown fields, validated) and returns, for each,
// the reducer input records that forward it: pipeline.ReducerInputs whose
// value is the record value byte for byte (bus.Handle). The runner sends
// them before it commits the commands, so a command's offset is committed
// after its reducer input exists (at-least-once, as for node messages). An
// invalid command is rejected with a content error (dead-lettered) and the
// batch goes on; when the reducer input's partitions are unknown the
// command is retried (with the ones after it).
//
// Unlike node records, commands are read strictly: they come from the
// fleet's own tools (onexctl, the admin gRPC service), never from a node
// newer than the fleet, and a field the orchestrator does not know could
// change what the reducer would do.
//
// A command is counted and logged as forwarded when its records are
// returned, before the runner sends them: after a failed send, which hands
// the commands again, it can be counted and logged twice.
func (h *OperatorHandler) Handle(ctx context.Context, msgs []*bus.Message) (bus.Output, error) {
	var out bus.Output
	outcome := func(i int, o bus.Outcome) {
		if out.Outcomes == nil {
			out.Outcomes = bus.Outcomes(len(msgs))
		}
		out.Outcomes[i] = o
	}
	var parts []int32 // the reducer input's partitions, read once per batch
	for i, msg := range msgs {
		mctx := bus.MessageContext(ctx, msg)
		cmd, corr, err := h.check(mctx, msg)
		if err != nil {
			outcome(i, bus.Reject(err))
			continue
		}
		if parts == nil {
			if parts, err = h.partitions(corr); err != nil {
				// The commands before this one are done; this one and the
				// rest come again after the retry policy's delay.
				outcome(i, bus.RetryLater(err))
				return out, nil
			}
		}
		recs, err := h.forward(msg, cmd, corr, parts)
		if err != nil {
			outcome(i, bus.Reject(err))
			continue
		}
		out.Records = append(out.Records, recs...)
		h.cfg.Metrics.OperatorCommands.WithLabelValues(string(cmd.Command), "accepted").Inc()
		attrs := []any{"command", string(cmd.Command), "command_id", cmd.CommandID.String(),
			"requested_by", infraerr.SanitizeString(cmd.RequestedBy), "reason", infraerr.SanitizeString(cmd.Reason),
			"requested_at", cmd.RequestedAt.Time, "reducer_input_records", len(recs)}
		if cmd.NodeID != nil {
			attrs = append(attrs, "node_id", cmd.NodeID.String())
		}
		if cmd.State != nil {
			attrs = append(attrs, "state", *cmd.State, "older_than_seconds", *cmd.OlderThanSeconds)
		}
		observability.Logger(mctx).Info("operator command forwarded to the reducer", attrs...)
	}
	return out, nil
}

// check decodes one command, counting and logging it when it is invalid.
// It returns the correlation id its records carry: the envelope's, else
// the one the bus found.
func (h *OperatorHandler) check(ctx context.Context, msg *bus.Message) (*operator.Command, uuid.UUID, error) {
	envCorr, cmd, err := h.decode(msg.Value)
	if err != nil {
		label := commandLabel(msg.Value)
		h.cfg.Metrics.OperatorCommands.WithLabelValues(label, "invalid").Inc()
		// The bus logger already names the topic, partition and offset.
		observability.Logger(ctx).Warn("operator command rejected", "command", label, "error", infraerr.SanitizeError(err))
		return nil, uuid.Nil, err
	}
	// The bus took msg.CorrelationID, which the logger carries, from the
	// body's top-level correlation_id: the envelope's whenever it has one.
	if envCorr != uuid.Nil {
		return cmd, envCorr, nil
	}
	return cmd, msg.CorrelationID, nil
}

// partitions returns the reducer input's partitions; an error is
// retriable.
func (h *OperatorHandler) partitions(corr uuid.UUID) ([]int32, error) {
	ictx := infraerr.Context{Transport: infraerr.TransportKafka, Operation: "metadata", Target: h.cfg.ReducerInput, CorrelationID: corr}
	parts, err := h.cfg.Partitions.Partitions(h.cfg.ReducerInput)
	if err != nil {
		return nil, infraerr.Wrap(err, ictx, "reducer input partitions")
	}
	if len(parts) == 0 {
		return nil, infraerr.New(infraerr.KindUnavailable, ictx, "reducer input has no partitions", nil)
	}
	return parts, nil
}

// forward builds the reducer input records of a valid command: a
// deregister in its node's partition, an evict once in each of parts.
func (h *OperatorHandler) forward(msg *bus.Message, cmd *operator.Command, corr uuid.UUID, parts []int32) ([]*sarama.ProducerMessage, error) {
	ri := pipeline.ReducerInput{Topic: topics.RegistrationAdmin, ReceivedAt: pipeline.T(h.now().UTC()), Value: msg.Value}
	switch cmd.Command {
	case operator.Deregister:
		rec := wire.InputMessage(h.cfg.ReducerInput, cmd.Key(), ri, h.cfg.Source, corr)
		p, err := keyPartition(rec, parts)
		if err != nil {
			return nil, infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportKafka, Operation: "partition",
				Target: h.cfg.ReducerInput, CorrelationID: corr}, "deregister partition", err)
		}
		rec.Partition = p
		return []*sarama.ProducerMessage{rec}, nil
	case operator.Evict:
		out := make([]*sarama.ProducerMessage, 0, len(parts))
		for _, p := range parts {
			rec := wire.InputMessage(h.cfg.ReducerInput, cmd.Key(), ri, h.cfg.Source, corr)
			rec.Partition = p
			out = append(out, rec)
		}
		return out, nil
	}
	// operator.Decode knows a command this code does not forward: the
	// packages are out of step, and dead-lettering the command is the only
	// safe outcome.
	h.cfg.Metrics.OperatorCommands.WithLabelValues("unknown", "invalid").Inc()
	return nil, infraerr.Content("payload.command", fmt.Sprintf("%q is not a command the orchestrator forwards", cmd.Command))
}

// keyPartition is the partition of parts (the topic's partitions, as the
// producer's client lists them) that the fleet's keyed producers would
// choose for rec: bus.NewConfig's partitioner, sarama's hash of the key. A
// record that names it lands, through a manual-partition producer, where
// the node's own records do.
func keyPartition(rec *sarama.ProducerMessage, parts []int32) (int32, error) {
	if len(parts) == 0 {
		return -1, fmt.Errorf("topic %s has no partitions", rec.Topic)
	}
	choice, err := sarama.NewHashPartitioner(rec.Topic).Partition(rec, int32(len(parts)))
	if err != nil {
		return -1, fmt.Errorf("partition of key: %w", err)
	}
	// As sarama's producer does: the partitioner picks an index into the
	// client's partition list.
	return parts[choice], nil
}

// decode checks a command record: its size, then operator.Decode. It
// returns the envelope's correlation id (Nil when it has none) and the
// command; every error is a content error naming the problem.
func (h *OperatorHandler) decode(value []byte) (uuid.UUID, *operator.Command, error) {
	if h.cfg.MaxBytes > 0 && len(value) > h.cfg.MaxBytes {
		return uuid.Nil, nil, infraerr.Content("value", fmt.Sprintf("record value is %d bytes, over the %d-byte limit", len(value), h.cfg.MaxBytes))
	}
	if len(value) == 0 {
		return uuid.Nil, nil, infraerr.Content("value", "empty record value (an ONEX envelope is required)")
	}
	env, cmd, err := operator.Decode(value)
	if err != nil {
		return uuid.Nil, nil, infraerr.ContentWrap("invalid operator command", err)
	}
	if env.CorrelationID == nil {
		return uuid.Nil, cmd, nil
	}
	return *env.CorrelationID, cmd, nil
}

// commandLabel is the metric label of a rejected record: the command it
// names when that is a known one, else "unknown" (the label set stays
// bounded whatever the record holds).
func commandLabel(value []byte) string {
	var rec struct {
		Payload struct {
			Command string `json:"command"`
		} `json:"payload"`
	}
	if json.Unmarshal(value, &rec) == nil {
		switch k := operator.Kind(rec.Payload.Command); k {
		case operator.Deregister, operator.Evict:
			return string(k)
		}
	}
	return "unknown"
}
