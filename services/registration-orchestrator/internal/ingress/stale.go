package ingress

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// SkipStale is the reason label of a heartbeat skipped for its age.
const SkipStale = "stale"

// A heartbeat older than the liveness window cannot change a node's
// deadline: the reducer keeps the newest heartbeat it has seen and a
// deadline a window after it, so an older one is either superseded or
// already past. A fleet catching up on a backlog (after an outage, or on
// topics another run filled) would otherwise decode, forward and decide
// every one of them. They are skipped here, as early as possible: by the
// Kafka record timestamp, which the Python producer sets, before any
// decoding; by the payload timestamp, after decoding, only for a record
// without one.

// hasTimestamp reports whether a consumed record carries a timestamp:
// records without one come back as the zero time or at or before the
// epoch (Kafka's -1).
func hasTimestamp(t time.Time) bool { return !t.IsZero() && t.Unix() > 0 }

// staleRecord reports whether msg, consumed from topic (its registry name),
// is a heartbeat whose record timestamp is older than the window at now.
func (h *Handler) staleRecord(topic string, msg *bus.Message, now time.Time) bool {
	return topic == topics.NodeHeartbeat && h.limits.HeartbeatWindow > 0 &&
		hasTimestamp(msg.Timestamp) && now.Sub(msg.Timestamp) > h.limits.HeartbeatWindow
}

// stalePayload is staleRecord for a heartbeat without a record timestamp,
// by its decoded payload timestamp.
func (h *Handler) stalePayload(topic string, msg *bus.Message, acc Accepted, now time.Time) bool {
	return topic == topics.NodeHeartbeat && h.limits.HeartbeatWindow > 0 && !hasTimestamp(msg.Timestamp) &&
		!acc.Timestamp.IsZero() && now.Sub(acc.Timestamp) > h.limits.HeartbeatWindow
}

// skipped counts and logs one skipped heartbeat. ctx is the record's
// context, whose logger carries the correlation id the bus found; nodeID is
// known only when the record was decoded (uuid.Nil before).
func (h *Handler) skipped(ctx context.Context, msg *bus.Message, nodeID uuid.UUID, stamped, now time.Time) {
	h.m.HeartbeatsSkipped.WithLabelValues(SkipStale).Inc()
	log := observability.Logger(ctx)
	if !log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	args := []any{"topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset,
		"age", now.Sub(stamped).Round(time.Millisecond).String(), "window", h.limits.HeartbeatWindow.String()}
	if nodeID != uuid.Nil {
		args = append(args, "node_id", nodeID.String())
	}
	log.Debug("stale heartbeat skipped", args...)
}

// newHeartbeatsSkipped is onex_orchestrator_heartbeats_skipped_total{reason}.
func newHeartbeatsSkipped() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "onex_orchestrator_heartbeats_skipped_total",
		Help: "Heartbeats ingress committed without forwarding them to the reducer, by reason " +
			"(stale: older than the liveness window, by the record timestamp, else the payload's).",
	}, []string{"reason"})
	c.WithLabelValues(SkipStale)
	return c
}
