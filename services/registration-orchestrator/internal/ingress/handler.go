package ingress

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// Sender publishes records and returns once the broker acknowledged them
// (bus.Producer).
type Sender interface {
	Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error
}

// Metrics are the ingress series.
type Metrics struct {
	// Messages is onex_orchestrator_ingress_messages_total{topic,outcome,reason}:
	// topic is the registry name, outcome accepted or rejected, reason one of
	// Reasons ("" when accepted).
	Messages *prometheus.CounterVec
	// UnknownFields is onex_unknown_fields_total{topic,field}: the fields
	// of accepted node records the fleet does not know, one count per
	// occurrence. topic is the registry name, field the member's JSON path
	// in the record value without array indices (FieldLabel); at most
	// MaxUnknownFieldsPerTopic fields per topic, later ones are "other".
	UnknownFields *prometheus.CounterVec
	// OperatorCommands is
	// onex_orchestrator_operator_commands_total{command,outcome}: command
	// deregister, evict or unknown (a record that does not say which),
	// outcome accepted or invalid.
	OperatorCommands *prometheus.CounterVec
	// HeartbeatsSkipped is
	// onex_orchestrator_heartbeats_skipped_total{reason}: heartbeats
	// committed without being forwarded (reason stale, stale.go).
	HeartbeatsSkipped *prometheus.CounterVec
}

// NewMetrics registers the ingress series on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onex_orchestrator_ingress_messages_total",
			Help: "Node messages checked by ingress, by topic, outcome (accepted, rejected) and rejection reason.",
		}, []string{"topic", "outcome", "reason"}),
		UnknownFields: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onex_unknown_fields_total",
			Help: "Fields of accepted node messages the fleet does not know (a node newer than the fleet), by topic and JSON path " +
				"(array indices dropped; at most 200 fields per topic, then \"other\").",
		}, []string{"topic", "field"}),
		OperatorCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onex_orchestrator_operator_commands_total",
			Help: "Operator commands checked by ingress, by command (deregister, evict, unknown) and outcome (accepted: forwarded to the reducer; invalid: dead-lettered).",
		}, []string{"command", "outcome"}),
		HeartbeatsSkipped: newHeartbeatsSkipped(),
	}
	if reg != nil {
		reg.MustRegister(m.Messages, m.UnknownFields, m.OperatorCommands, m.HeartbeatsSkipped)
	}
	return m
}

// Handler is the bus handler of the node-facing topics.
type Handler struct {
	// registry maps each consumed topic to its registry name (they differ
	// only when topics are renamed, as tests do); the registry name is what
	// the reducer input carries.
	registry map[string]string
	out      string
	source   string
	limits   Limits
	send     Sender
	now      func() time.Time
	m        *Metrics
	unknown  *unknownFields
}

// NewHandler returns the ingress handler. registry maps each consumed topic
// to its registry name; out is the reducer input topic; source is the bus
// environment written to the header source.
func NewHandler(registry map[string]string, out, source string, lim Limits, s Sender, m *Metrics) *Handler {
	h := &Handler{registry: registry, out: out, source: source, limits: lim, send: s, now: time.Now, m: m}
	h.unknown = newUnknownFields(m.UnknownFields, func() time.Time { return h.now() })
	return h
}

// Handle checks one node record and, when it is valid, publishes it to the
// reducer input keyed by node_id, returning only after the broker
// acknowledged it, so the source offset is committed after the reducer input
// exists (at-least-once). An invalid record yields a content error naming the
// field (the bus dead-letters it); a failed publish yields a retriable error.
func (h *Handler) Handle(ctx context.Context, msg *bus.Message) error {
	log := observability.Logger(ctx)
	topic := h.registryName(msg.Topic)
	now := h.now().UTC()
	if h.staleRecord(topic, msg, now) {
		h.skipped(ctx, msg, uuid.Nil, msg.Timestamp, now)
		return nil
	}
	acc, reason, err := Validate(topic, msg.Value, now, h.limits)
	if err != nil {
		h.m.Messages.WithLabelValues(topic, "rejected", reason).Inc()
		log.Warn("node message rejected", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset,
			"reason", reason, "error", infraerr.SanitizeError(err))
		return err
	}
	if h.stalePayload(topic, msg, acc, now) {
		h.skipped(ctx, msg, acc.NodeID, acc.Timestamp, now)
		return nil
	}
	out := wire.InputMessage(h.out, acc.NodeID.String(), acc.reducerInput(topic, now, msg.Value), h.source, acc.CorrelationID)
	if err := h.send.Send(ctx, out); err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish", Target: h.out,
			CorrelationID: msg.CorrelationID}, "reducer input")
	}
	h.m.Messages.WithLabelValues(topic, "accepted", "").Inc()
	h.unknown.observe(ctx, topic, acc)
	log.Debug("node message forwarded to the reducer", "topic", msg.Topic, "node_id", acc.NodeID.String())
	return nil
}

// HandleBatch checks consecutive records of one partition in order and
// publishes the valid ones to the reducer input in one acknowledged send
// (bus.BatchHandler), in their order, so a node's records keep theirs. At
// the first invalid record it publishes the valid ones before it and
// returns a *bus.BatchError naming it: the runner hands that record to
// Handle, which counts, logs and rejects it (dead letter), and resumes with
// the rest. A failed publish is a plain error: the runner then handles the
// batch one record at a time through Handle and its retries.
func (h *Handler) HandleBatch(ctx context.Context, msgs []*bus.Message) error {
	out := make([]*sarama.ProducerMessage, 0, len(msgs))
	// sent and nodes are the records in out and their nodes: skipped
	// heartbeats are in msgs but not in out.
	sent := make([]*bus.Message, 0, len(msgs))
	nodes := make([]uuid.UUID, 0, len(msgs))
	var withUnknown []int // indices of published records with unknown fields
	var accepted []Accepted
	publish := func() error {
		if len(out) == 0 {
			return nil
		}
		if err := h.send.Send(ctx, out...); err != nil {
			return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish", Target: h.out},
				fmt.Sprintf("reducer input (%d records)", len(out)))
		}
		// A batch is one partition of one topic.
		topic := h.registryName(msgs[0].Topic)
		h.m.Messages.WithLabelValues(topic, "accepted", "").Add(float64(len(out)))
		for j, i := range withUnknown {
			h.unknown.observe(bus.MessageContext(ctx, msgs[i]), topic, accepted[j])
		}
		if observability.Logger(ctx).Enabled(ctx, slog.LevelDebug) {
			for i, msg := range sent {
				observability.Logger(bus.MessageContext(ctx, msg)).Debug("node message forwarded to the reducer",
					"topic", msg.Topic, "node_id", nodes[i].String())
			}
		}
		return nil
	}
	for i, msg := range msgs {
		topic := h.registryName(msg.Topic)
		now := h.now().UTC()
		if h.staleRecord(topic, msg, now) {
			h.skipped(bus.MessageContext(ctx, msg), msg, uuid.Nil, msg.Timestamp, now)
			continue
		}
		acc, _, err := Validate(topic, msg.Value, now, h.limits)
		if err != nil {
			if perr := publish(); perr != nil {
				return perr
			}
			return &bus.BatchError{Done: i, Err: err}
		}
		if h.stalePayload(topic, msg, acc, now) {
			h.skipped(bus.MessageContext(ctx, msg), msg, acc.NodeID, acc.Timestamp, now)
			continue
		}
		sent = append(sent, msg)
		out = append(out, wire.InputMessage(h.out, acc.NodeID.String(), acc.reducerInput(topic, now, msg.Value), h.source, acc.CorrelationID))
		nodes = append(nodes, acc.NodeID)
		if len(acc.Unknown) > 0 {
			withUnknown = append(withUnknown, i)
			accepted = append(accepted, acc)
		}
	}
	return publish()
}

// registryName is the registry name of a consumed topic.
func (h *Handler) registryName(topic string) string {
	if r, ok := h.registry[topic]; ok {
		return r
	}
	return topic
}
