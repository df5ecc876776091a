package ingress

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

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
	now      func() time.Time
	m        *Metrics
	unknown  *unknownFields
}

// NewHandler returns the ingress handler. registry maps each consumed topic
// to its registry name; out is the reducer input topic; source is the bus
// environment written to the header source.
func NewHandler(registry map[string]string, out, source string, lim Limits, m *Metrics) *Handler {
	h := &Handler{registry: registry, out: out, source: source, limits: lim, now: time.Now, m: m}
	h.unknown = newUnknownFields(m.UnknownFields, func() time.Time { return h.now() })
	return h
}

// Handle checks consecutive node records of one partition in order and
// returns the valid ones as reducer inputs keyed by node_id, in their
// order, so a node's records keep theirs (bus.Handle). The runner sends
// them in one acknowledged send before it commits the batch, so a source
// offset is committed only after its reducer input exists (at-least-once).
// An invalid record is counted, logged and rejected with a content error
// naming the field (dead-lettered) and the rest of the batch goes on; a
// stale heartbeat is skipped: done, not forwarded.
//
// A record is counted accepted, and its unknown fields observed, when it is
// returned, before the runner sends it: a failed send hands the messages
// again, so after one the counts can include a record twice (as a crash
// between send and commit would forward it twice).
func (h *Handler) Handle(ctx context.Context, msgs []*bus.Message) (bus.Output, error) {
	var out bus.Output
	if len(msgs) == 0 {
		return out, nil
	}
	debug := observability.Logger(ctx).Enabled(ctx, slog.LevelDebug)
	for i, msg := range msgs {
		// The message's logger is built only for a line about it: on the
		// hot path (a valid heartbeat, debug off) nothing is logged.
		mctx := func() context.Context { return bus.MessageContext(ctx, msg) }
		topic := h.registryName(msg.Topic)
		now := h.now().UTC()
		if h.staleRecord(topic, msg, now) {
			h.skipped(mctx(), msg, uuid.Nil, msg.Timestamp, now)
			continue
		}
		acc, reason, err := Validate(topic, msg.Value, now, h.limits)
		if err != nil {
			h.m.Messages.WithLabelValues(topic, "rejected", reason).Inc()
			observability.Logger(mctx()).Warn("node message rejected", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset,
				"reason", reason, "error", infraerr.SanitizeError(err))
			if out.Outcomes == nil {
				out.Outcomes = bus.Outcomes(len(msgs))
			}
			out.Outcomes[i] = bus.Reject(err)
			continue
		}
		if h.stalePayload(topic, msg, acc, now) {
			h.skipped(mctx(), msg, acc.NodeID, acc.Timestamp, now)
			continue
		}
		out.Records = append(out.Records, wire.InputMessage(h.out, acc.NodeID.String(), acc.reducerInput(topic, now, msg.Value), h.source, acc.CorrelationID))
		if len(acc.Unknown) > 0 {
			h.unknown.observe(mctx(), topic, acc)
		}
		if debug {
			observability.Logger(mctx()).Debug("node message forwarded to the reducer", "topic", msg.Topic, "node_id", acc.NodeID.String())
		}
	}
	if len(out.Records) > 0 {
		// A batch is one partition of one topic.
		h.m.Messages.WithLabelValues(h.registryName(msgs[0].Topic), "accepted", "").Add(float64(len(out.Records)))
	}
	return out, nil
}

// registryName is the registry name of a consumed topic.
func (h *Handler) registryName(topic string) string {
	if r, ok := h.registry[topic]; ok {
		return r
	}
	return topic
}
