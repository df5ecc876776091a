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
	// FlowWindow is the node's per-consumer throughput counters for the
	// heartbeat window just closed, or nil (the first heartbeat of a
	// process, and nodes that do not count).
	FlowWindow    *NodeFlowWindow
	CorrelationID *uuid.UUID
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
		pyjson.Prop("flow_window", &h.FlowWindow, nullFlowWindowC),
		pyjson.Prop("correlation_id", &h.CorrelationID, nullUUID),
		pyjson.Req("timestamp", &h.Timestamp, timeC),
	}}
}

// Validate checks node_type, node_version, the numeric ranges and the flow
// window.
func (h *HeartbeatEvent) Validate() error {
	var mem, cpu, flow error
	if h.FlowWindow != nil {
		flow = nested("flow_window", h.FlowWindow.Validate())
	}
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
		flow,
	)
}

// NodeFlowWindow is ModelNodeFlowWindow (extra="forbid"): one heartbeat
// window's flow report for one node process.
type NodeFlowWindow struct {
	// NodeID is the reporting node (required).
	NodeID uuid.UUID
	// WindowStart and WindowEnd are the window's event-time bounds
	// (required, timezone-aware).
	WindowStart envelope.Time
	WindowEnd   envelope.Time
	// WindowSequence is >= 0, monotonic per process; a gap is a dropped
	// window.
	WindowSequence int
	// ConsumerDeltas has one entry per registered (consumer_group, topic).
	ConsumerDeltas []ConsumerFlowDelta
	// ProduceDeltas has one entry per topic published to in the window.
	ProduceDeltas []TopicProduceDelta
}

func (w *NodeFlowWindow) pyName() string { return "ModelNodeFlowWindow" }

func (w *NodeFlowWindow) spec() pyjson.Spec {
	return forbid([]pyjson.Field{
		pyjson.Req("node_id", &w.NodeID, pyjson.UUID),
		pyjson.Req("window_start", &w.WindowStart, timeC),
		pyjson.Req("window_end", &w.WindowEnd, timeC),
		pyjson.Req("window_sequence", &w.WindowSequence, pyjson.Int),
		pyjson.Prop("consumer_deltas", &w.ConsumerDeltas, consumerDeltasC),
		pyjson.Prop("produce_deltas", &w.ProduceDeltas, produceDeltasC),
	})
}

// Validate checks window_sequence >= 0 and every delta.
func (w *NodeFlowWindow) Validate() error {
	if err := intMin("window_sequence", w.WindowSequence, 0); err != nil {
		return err
	}
	for i := range w.ConsumerDeltas {
		if err := w.ConsumerDeltas[i].Validate(); err != nil {
			return nested("consumer_deltas", pyjson.AtIndex(i, err))
		}
	}
	for i := range w.ProduceDeltas {
		if err := w.ProduceDeltas[i].Validate(); err != nil {
			return nested("produce_deltas", pyjson.AtIndex(i, err))
		}
	}
	return nil
}

// ConsumerFlowDelta is ModelConsumerFlowDelta (extra="forbid"): one
// (consumer_group, topic) throughput delta over one heartbeat window.
type ConsumerFlowDelta struct {
	// ConsumerGroup and Topic are required, non-empty.
	ConsumerGroup string
	Topic         string
	// NodeID is required.
	NodeID uuid.UUID
	// WindowStart <= WindowEnd, both required and timezone-aware.
	WindowStart envelope.Time
	WindowEnd   envelope.Time
	// WindowSequence is required, >= 0.
	WindowSequence int
	// The counters are >= 0, default 0.
	MessagesIn    int
	MessagesOut   int
	MessagesDLQ   int
	HandlerErrors int
	// DeclaresOutput is nil when not known.
	DeclaresOutput *bool
}

func (d *ConsumerFlowDelta) pyName() string { return "ModelConsumerFlowDelta" }

func (d *ConsumerFlowDelta) spec() pyjson.Spec {
	return forbid([]pyjson.Field{
		pyjson.Req("consumer_group", &d.ConsumerGroup, pyjson.String),
		pyjson.Req("topic", &d.Topic, pyjson.String),
		pyjson.Req("node_id", &d.NodeID, pyjson.UUID),
		pyjson.Req("window_start", &d.WindowStart, timeC),
		pyjson.Req("window_end", &d.WindowEnd, timeC),
		pyjson.Req("window_sequence", &d.WindowSequence, pyjson.Int),
		pyjson.Def("messages_in", &d.MessagesIn, pyjson.Int, 0),
		pyjson.Def("messages_out", &d.MessagesOut, pyjson.Int, 0),
		pyjson.Def("messages_dlq", &d.MessagesDLQ, pyjson.Int, 0),
		pyjson.Def("handler_errors", &d.HandlerErrors, pyjson.Int, 0),
		pyjson.Prop("declares_output", &d.DeclaresOutput, nullBoolC),
	})
}

// Validate checks the non-empty strings, the non-negative counters and
// that the window does not end before it starts.
func (d *ConsumerFlowDelta) Validate() error {
	var order error
	if d.WindowEnd.Before(d.WindowStart.Time) {
		order = fieldf("window_end", "%s precedes window_start %s", d.WindowEnd, d.WindowStart)
	}
	return firstErr(
		strLen("consumer_group", d.ConsumerGroup, 1, -1),
		strLen("topic", d.Topic, 1, -1),
		intMin("window_sequence", d.WindowSequence, 0),
		intMin("messages_in", d.MessagesIn, 0),
		intMin("messages_out", d.MessagesOut, 0),
		intMin("messages_dlq", d.MessagesDLQ, 0),
		intMin("handler_errors", d.HandlerErrors, 0),
		order,
	)
}

// TopicProduceDelta is ModelTopicProduceDelta (extra="forbid"): the
// envelopes a process published to one topic in one window.
type TopicProduceDelta struct {
	// Topic is required, non-empty.
	Topic string
	// NodeID is required.
	NodeID uuid.UUID
	// WindowStart and WindowEnd are required and timezone-aware.
	WindowStart envelope.Time
	WindowEnd   envelope.Time
	// WindowSequence is required, >= 0.
	WindowSequence int
	// MessagesProduced is >= 0, default 0.
	MessagesProduced int
}

func (d *TopicProduceDelta) pyName() string { return "ModelTopicProduceDelta" }

func (d *TopicProduceDelta) spec() pyjson.Spec {
	return forbid([]pyjson.Field{
		pyjson.Req("topic", &d.Topic, pyjson.String),
		pyjson.Req("node_id", &d.NodeID, pyjson.UUID),
		pyjson.Req("window_start", &d.WindowStart, timeC),
		pyjson.Req("window_end", &d.WindowEnd, timeC),
		pyjson.Req("window_sequence", &d.WindowSequence, pyjson.Int),
		pyjson.Def("messages_produced", &d.MessagesProduced, pyjson.Int, 0),
	})
}

// Validate checks the topic and the non-negative counters.
func (d *TopicProduceDelta) Validate() error {
	return firstErr(
		strLen("topic", d.Topic, 1, -1),
		intMin("window_sequence", d.WindowSequence, 0),
		intMin("messages_produced", d.MessagesProduced, 0),
	)
}

var (
	flowWindowC    = object[NodeFlowWindow]()
	consumerDeltaC = object[ConsumerFlowDelta]()
	produceDeltaC  = object[TopicProduceDelta]()
)

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
