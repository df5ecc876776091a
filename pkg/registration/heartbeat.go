package registration

import (
	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// HeartbeatEvent is ModelNodeHeartbeatEvent, published by nodes on
// onex.evt.platform.node-heartbeat.v1 (every 30 s by default).
type HeartbeatEvent struct {
	// NodeID is required.
	NodeID uuid.UUID
	// NodeType is required.
	NodeType NodeKind
	// NodeVersion accepts the object form or a "1.2.3" string (parsed with
	// envelope.ParseSemVer); it is always encoded as an object. Default
	// 1.0.0.
	NodeVersion envelope.SemVer
	// UptimeSeconds is required, >= 0.
	UptimeSeconds float64
	// ActiveOperationsCount is >= 0, default 0.
	ActiveOperationsCount int
	// MemoryUsageMB is nil or >= 0.
	MemoryUsageMB *float64
	// CPUUsagePercent is nil or 0..100.
	CPUUsagePercent *float64
	CorrelationID   *uuid.UUID
	// Timestamp is required and timezone-aware; it drives the new liveness
	// deadline (producer clock).
	Timestamp envelope.Time
}

func (h *HeartbeatEvent) pyName() string { return "ModelNodeHeartbeatEvent" }

func (h *HeartbeatEvent) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("node_id", &h.NodeID, pyjson.UUID),
		pyjson.Req("node_type", &h.NodeType, nodeKindC),
		pyjson.Def("node_version", &h.NodeVersion, semverOrStr, envelope.Version100),
		pyjson.Req("uptime_seconds", &h.UptimeSeconds, pyjson.Float),
		pyjson.Def("active_operations_count", &h.ActiveOperationsCount, pyjson.Int, 0),
		pyjson.Prop("memory_usage_mb", &h.MemoryUsageMB, nullFloat),
		pyjson.Prop("cpu_usage_percent", &h.CPUUsagePercent, nullFloat),
		pyjson.Prop("correlation_id", &h.CorrelationID, nullUUID),
		pyjson.Req("timestamp", &h.Timestamp, timeC),
	}}
}

// Validate checks node_type, node_version and the numeric ranges.
func (h *HeartbeatEvent) Validate() error {
	var mem, cpu error
	if h.MemoryUsageMB != nil {
		mem = floatMin0("memory_usage_mb", *h.MemoryUsageMB)
	}
	if h.CPUUsagePercent != nil && (*h.CPUUsagePercent < 0 || *h.CPUUsagePercent > 100) {
		cpu = fieldf("cpu_usage_percent", "must be between 0 and 100, got %v", *h.CPUUsagePercent)
	}
	return firstErr(
		enumField("node_type", h.NodeType),
		nested("node_version", h.NodeVersion.Validate()),
		floatMin0("uptime_seconds", h.UptimeSeconds),
		intMin("active_operations_count", h.ActiveOperationsCount, 0),
		mem,
		cpu,
	)
}

// RegistrationAcked is ModelNodeRegistrationAcked, the command a node sends
// on onex.cmd.platform.node-registration-acked.v1 (keyed by node_id).
type RegistrationAcked struct {
	// CommandID defaults to a random v4; it becomes the causation_id of
	// AckReceived/BecameActive.
	CommandID uuid.UUID
	// NodeID is required.
	NodeID uuid.UUID
	// CorrelationID is required.
	CorrelationID uuid.UUID
	// Timestamp is required.
	Timestamp envelope.Time
}

func (a *RegistrationAcked) pyName() string { return "ModelNodeRegistrationAcked" }

func (a *RegistrationAcked) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.DefFunc("command_id", &a.CommandID, pyjson.UUID, newUUID),
		pyjson.Req("node_id", &a.NodeID, pyjson.UUID),
		pyjson.Req("correlation_id", &a.CorrelationID, pyjson.UUID),
		pyjson.Req("timestamp", &a.Timestamp, timeC),
	}}
}

// Validate has nothing to check beyond JSON types.
func (a *RegistrationAcked) Validate() error { return nil }
