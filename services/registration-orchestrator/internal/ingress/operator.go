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
	// Keyed publishes a deregister: its producer hashes the key, as the one
	// node messages go through does, so the command lands in the node's
	// partition, behind the node's own messages.
	Keyed Sender
	// Partitioned publishes an evict's copies: its producer must use a
	// manual partitioner (every record names its partition), like the
	// ticker's.
	Partitioned Sender
	// Partitions lists the reducer input's partitions for an evict.
	Partitions PartitionLister
	Metrics    *Metrics
}

// OperatorHandler is the bus handler of the operator command topic
// (topics.RegistrationAdmin). The reducer decides operator commands like
// any other input, so they are forwarded to the reducer input unchanged: a
// deregister keyed by its node, ordered with that node's own messages; an
// evict, which is about every node of a state, to every partition, where
// each reducer instance applies it to the nodes it owns.
type OperatorHandler struct {
	cfg OperatorConfig
	now func() time.Time
}

// NewOperatorHandler returns the operator command handler.
func NewOperatorHandler(cfg OperatorConfig) *OperatorHandler {
	return &OperatorHandler{cfg: cfg, now: time.Now}
}

// Handle checks one operator command strictly (operator.Decode: the envelope
// and a payload without unknown fields, validated) and forwards it to the
// reducer input as a pipeline.ReducerInput whose value is the record value
// byte for byte. It returns only once the broker acknowledged every copy, so
// the source offset is committed after the reducer input exists
// (at-least-once, as for node messages). An invalid command is a content
// error (dead-lettered); a failed publish is retriable.
//
// Unlike node records, commands are read strictly: they come from the
// fleet's own tools (onexctl, the admin gRPC service), never from a node
// newer than the fleet, and a field the orchestrator does not know could
// change what the reducer would do.
func (h *OperatorHandler) Handle(ctx context.Context, msg *bus.Message) error {
	log := observability.Logger(ctx)
	m := h.cfg.Metrics.OperatorCommands
	envCorr, cmd, err := h.decode(msg.Value)
	if err != nil {
		label := commandLabel(msg.Value)
		m.WithLabelValues(label, "invalid").Inc()
		// The bus logger already names the topic, partition and offset.
		log.Warn("operator command rejected", "command", label, "error", infraerr.SanitizeError(err))
		return err
	}
	// The bus took msg.CorrelationID, which the logger carries, from the
	// body's top-level correlation_id: the envelope's whenever it has one.
	corr := msg.CorrelationID
	if envCorr != uuid.Nil {
		corr = envCorr
	}
	now := h.now().UTC()
	ri := pipeline.ReducerInput{Topic: topics.RegistrationAdmin, ReceivedAt: pipeline.T(now), Value: msg.Value}
	ictx := infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish", Target: h.cfg.ReducerInput, CorrelationID: corr}
	var (
		out  []*sarama.ProducerMessage
		send Sender
	)
	switch cmd.Command {
	case operator.Deregister:
		out, send = []*sarama.ProducerMessage{wire.InputMessage(h.cfg.ReducerInput, cmd.Key(), ri, h.cfg.Source, corr)}, h.cfg.Keyed
	case operator.Evict:
		parts, err := h.cfg.Partitions.Partitions(h.cfg.ReducerInput)
		if err != nil {
			return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "metadata", Target: h.cfg.ReducerInput,
				CorrelationID: corr}, "reducer input partitions")
		}
		if len(parts) == 0 {
			return infraerr.New(infraerr.KindUnavailable, ictx, "reducer input has no partitions", nil)
		}
		for _, p := range parts {
			rec := wire.InputMessage(h.cfg.ReducerInput, cmd.Key(), ri, h.cfg.Source, corr)
			rec.Partition = p
			out = append(out, rec)
		}
		send = h.cfg.Partitioned
	default:
		// operator.Decode knows a command this code does not forward: the
		// packages are out of step, and dead-lettering the command is the
		// only safe outcome.
		m.WithLabelValues("unknown", "invalid").Inc()
		return infraerr.Content("payload.command", fmt.Sprintf("%q is not a command the orchestrator forwards", cmd.Command))
	}
	if err := send.Send(ctx, out...); err != nil {
		return infraerr.Wrap(err, ictx, fmt.Sprintf("reducer input (%s, %d records)", cmd.Command, len(out)))
	}
	m.WithLabelValues(string(cmd.Command), "accepted").Inc()
	attrs := []any{"command", string(cmd.Command), "command_id", cmd.CommandID.String(),
		"requested_by", infraerr.SanitizeString(cmd.RequestedBy), "reason", infraerr.SanitizeString(cmd.Reason),
		"requested_at", cmd.RequestedAt.Time, "reducer_input_records", len(out)}
	if cmd.NodeID != nil {
		attrs = append(attrs, "node_id", cmd.NodeID.String())
	}
	if cmd.State != nil {
		attrs = append(attrs, "state", *cmd.State, "older_than_seconds", *cmd.OlderThanSeconds)
	}
	log.Info("operator command forwarded to the reducer", attrs...)
	return nil
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
