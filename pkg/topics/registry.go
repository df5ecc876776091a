package topics

import (
	"fmt"
	"maps"
	"strconv"

	"github.com/omninode/onex-fleet/pkg/topicns"
)

// Topic names of the platform registry (spec §3.3) that the fleet consumes,
// produces or provisions.
const (
	NodeIntrospection            = "onex.evt.platform.node-introspection.v1"
	NodeHeartbeat                = "onex.evt.platform.node-heartbeat.v1"
	RequestIntrospection         = "onex.cmd.platform.request-introspection.v1"
	RegistryRequestIntrospection = "onex.evt.platform.registry-request-introspection.v1"
	RuntimeTick                  = "onex.intent.platform.runtime-tick.v1"
	NodeRegistrationAcked        = "onex.cmd.platform.node-registration-acked.v1"
	NodeRegistrationAccepted     = "onex.evt.platform.node-registration-accepted.v1"
	NodeRegistrationInitiated    = "onex.evt.platform.node-registration-initiated.v1"
	NodeBecameActive             = "onex.evt.platform.node-became-active.v1"
	NodeRegistrationAckReceived  = "onex.evt.platform.node-registration-ack-received.v1"
	NodeRegistrationAckTimedOut  = "onex.evt.platform.node-registration-ack-timed-out.v1"
	NodeLivenessExpired          = "onex.evt.platform.node-liveness-expired.v1"
	NodeRegistrationRejected     = "onex.evt.platform.node-registration-rejected.v1"
	NodeRegistrationResult       = "onex.evt.platform.node-registration-result.v1"
	TopicCatalogQuery            = "onex.cmd.platform.topic-catalog-query.v1"
	TopicCatalogResponse         = "onex.evt.platform.topic-catalog-response.v1"
	TopicCatalogChanged          = "onex.evt.platform.topic-catalog-changed.v1"
	// RegistrationSnapshots is the taxonomy's snapshot topic; the project uses
	// it instead of the Python runtime's onex.evt.platform.registration-snapshots.v1.
	RegistrationSnapshots = "onex.snapshot.platform.registration-snapshots.v1"
	DLQMessage            = "onex.evt.platform.dlq-message.v1"
	ServiceHeartbeat      = "onex.evt.platform.service-heartbeat.v1"
	FSMStateTransitions   = "onex.evt.platform.fsm-state-transitions.v1"

	DLQEvents     = "onex.dlq.omnibase-infra.events.v1"
	DLQCommands   = "onex.dlq.omnibase-infra.commands.v1"
	DLQIntents    = "onex.dlq.omnibase-infra.intents.v1"
	DLQPlatform   = "onex.dlq.omnibase-infra.platform.v1"
	DLQQuarantine = "onex.dlq.omnibase-infra.quarantine.v1"
)

// Internal topics of the Go fleet. The Python runtime has no counterpart;
// names and kinds are this project's design. All are keyed by node_id.
const (
	// ReducerInput carries the canonical reducer input (validated node
	// messages and ticks) written by the orchestrator.
	ReducerInput = "onex.cmd.platform.reducer-input.v1"
	// RegistrationIntents carries reducer → orchestrator intents.
	RegistrationIntents = "onex.intent.platform.registration-intents.v1"
	// PostgresIntents carries orchestrator → projector-effect commands.
	PostgresIntents = "onex.cmd.platform.postgres-intents.v1"
	// ConsulIntents carries orchestrator → consul-effect commands.
	ConsulIntents = "onex.cmd.platform.consul-intents.v1"
	// EffectResults carries effects → orchestrator results.
	EffectResults = "onex.evt.platform.effect-results.v1"
	// RegistrationAggregations is the orchestrator's compacted in-flight
	// aggregation state.
	RegistrationAggregations = "onex.snapshot.platform.registration-aggregations.v1"
	// RegistrationMassExpiry carries the reducer's mass-expiry protection
	// notices (held / resumed), key "partition-<n>".
	RegistrationMassExpiry = "onex.evt.platform.registration-mass-expiry.v1"
	// NodeTopics is the reducer's compacted view of the topics ACTIVE
	// nodes declare (event_bus), one record per node (pipeline.NodeTopics),
	// a tombstone once the node is not ACTIVE or declares none; the
	// orchestrator's topic catalog reads it.
	NodeTopics = "onex.snapshot.platform.node-topics.v1"
	// RegistrationLiveness is the reducer's liveness checkpoint: per input
	// partition a head record and buckets of the nodes whose heartbeats
	// moved their liveness since their last snapshot (protobuf
	// onex.fleet.v1.LivenessCheckpoint), compacted, co-partitioned with
	// reducer-input.
	RegistrationLiveness = "onex.snapshot.platform.registration-liveness.v1"
	// RegistrationAdmin carries operator commands (pkg/operator): deregister
	// one node (key node_id) or evict the nodes of a state (unkeyed); the
	// orchestrator validates them and hands them to the reducer.
	RegistrationAdmin = "onex.cmd.platform.registration-admin.v1"
)

// Topic config keys used by the registry.
const (
	ConfigCleanupPolicy      = "cleanup.policy"
	ConfigRetentionMS        = "retention.ms"
	ConfigMinCompactionLagMS = "min.compaction.lag.ms"
	ConfigMaxCompactionLagMS = "max.compaction.lag.ms"
	ConfigSegmentBytes       = "segment.bytes"
	ConfigMinInsyncReplicas  = "min.insync.replicas"
)

// DefaultPartitions is the partition count the Python provisioner gives a
// topic without a spec, and the count of every node-keyed topic here.
const DefaultPartitions int32 = 6

// Spec is the intended shape of one topic.
type Spec struct {
	// Name is the full topic name; it passes Validate.
	Name string
	// Kind is the name's kind segment.
	Kind Kind
	// Partitions is the intended partition count (before the
	// Options.MaxPartitions cap). 0 means DefaultPartitions.
	Partitions int32
	// ReplicationFactor is the intended replication factor; 0 (the registry's
	// value) means "the cluster's", i.e. Options.ReplicationFactor.
	ReplicationFactor int16
	// Configs are topic configs set at creation and checked for drift. A key
	// that is absent is left to the broker default and never checked.
	Configs map[string]string
	// Description says who produces and consumes the topic and how it is keyed.
	Description string
}

// clone returns a deep copy of s (Configs is never shared).
func (s Spec) clone() Spec {
	s.Configs = maps.Clone(s.Configs)
	return s
}

// snapshotConfigs are the §9.1 compaction settings (min.insync.replicas is
// capped to the replication factor by Resolve).
func snapshotConfigs() map[string]string {
	return map[string]string{
		ConfigCleanupPolicy:      "compact",
		ConfigMinCompactionLagMS: "60000",
		ConfigMaxCompactionLagMS: "300000",
		ConfigSegmentBytes:       "104857600",
		ConfigRetentionMS:        "-1",
		ConfigMinInsyncReplicas:  "2",
	}
}

func deleteRetention(ms string) map[string]string {
	return map[string]string{ConfigCleanupPolicy: "delete", ConfigRetentionMS: ms}
}

func spec(name string, kind Kind, partitions int32, configs map[string]string, desc string) Spec {
	return Spec{Name: name, Kind: kind, Partitions: partitions, Configs: configs, Description: desc}
}

// platform is the registry, in catalogue order. Never handed out directly.
var platform = []Spec{
	spec(NodeIntrospection, KindEvent, 6, nil, "Node introspection events from every ONEX node (unkeyed from Python nodes; Go nodes key by node_id); consumed by the orchestrator."),
	spec(NodeHeartbeat, KindEvent, 6, nil, "Node heartbeats (every 30 s); consumed by the orchestrator."),
	spec(RequestIntrospection, KindCommand, 6, nil, "Re-introspection requests (raw) and topic-catalog requests; consumed by every node and the orchestrator."),
	spec(RegistryRequestIntrospection, KindEvent, 6, nil, "Subscribed by the Python orchestrator with no route and no producer; provisioned for parity."),
	spec(RuntimeTick, KindIntent, 1, nil, "Runtime ticks (bare model, key scheduler_id), one partition for a total order of ticks."),
	spec(NodeRegistrationAcked, KindCommand, 6, nil, "Node acks of an accepted registration, key node_id; consumed by the orchestrator."),
	spec(NodeRegistrationAccepted, KindEvent, 6, nil, "Registration accepted (awaiting ack); consumed by the node's ack listener. Key entity_id."),
	spec(NodeRegistrationInitiated, KindEvent, 6, nil, "Registration initiated lifecycle event. Key entity_id."),
	spec(NodeBecameActive, KindEvent, 6, nil, "Node became ACTIVE lifecycle event. Key entity_id."),
	spec(NodeRegistrationAckReceived, KindEvent, 6, nil, "Ack received lifecycle event. Key entity_id."),
	spec(NodeRegistrationAckTimedOut, KindEvent, 6, nil, "Ack timed out lifecycle event. Key entity_id."),
	spec(NodeLivenessExpired, KindEvent, 6, nil, "Liveness expired lifecycle event (two payload shapes). Key entity_id."),
	spec(NodeRegistrationRejected, KindEvent, 6, nil, "Registration rejected lifecycle event. Key entity_id."),
	spec(NodeRegistrationResult, KindEvent, 6, nil, "Registration result event. Key entity_id."),
	spec(TopicCatalogQuery, KindCommand, 1, deleteRetention("3600000"), "Topic catalog queries; answered by the orchestrator."),
	spec(TopicCatalogResponse, KindEvent, 1, deleteRetention("3600000"), "Topic catalog responses, key = response correlation_id."),
	spec(TopicCatalogChanged, KindEvent, 1, deleteRetention("604800000"), "Topic catalog change notifications."),
	spec(RegistrationSnapshots, KindSnapshot, 6, snapshotConfigs(), "Latest registration state per node (key node_id/entity_id, tombstone on delete), compacted. Reducer state store; 6 partitions so it is co-partitioned with reducer-input."),
	spec(DLQMessage, KindEvent, 3, nil, "Aggregated DLQ copy for dashboards."),
	spec(ServiceHeartbeat, KindEvent, 3, nil, "Runtime service heartbeats for monitoring."),
	spec(FSMStateTransitions, KindEvent, 6, nil, "FSM state transition notifications for observers."),
	spec(DLQEvents, KindDLQ, 6, nil, "Dead letters of event topics."),
	spec(DLQCommands, KindDLQ, 6, nil, "Dead letters of command topics."),
	spec(DLQIntents, KindDLQ, 6, nil, "Dead letters of intent topics and the fallback DLQ."),
	spec(DLQPlatform, KindDLQ, 6, nil, "Dead letters of unroutable platform.* messages (no dispatcher)."),
	spec(DLQQuarantine, KindDLQ, 6, nil, "Non-replayable DLQ records quarantined by the replay tool."),

	spec(ReducerInput, KindCommand, 6, nil, "Go fleet: canonical reducer input written by the orchestrator (node messages and ticks), key node_id."),
	spec(RegistrationIntents, KindIntent, 6, nil, "Go fleet: reducer → orchestrator intents, key node_id."),
	spec(PostgresIntents, KindCommand, 6, nil, "Go fleet: orchestrator → projector-effect commands, key node_id."),
	spec(ConsulIntents, KindCommand, 6, nil, "Go fleet: orchestrator → consul-effect commands, key node_id."),
	spec(EffectResults, KindEvent, 6, nil, "Go fleet: effects → orchestrator results, key node_id."),
	spec(RegistrationAggregations, KindSnapshot, 6, snapshotConfigs(), "Go fleet: orchestrator's in-flight aggregation state per node, key node_id, compacted."),
	spec(RegistrationMassExpiry, KindEvent, 1, nil, "Go fleet: reducer mass-expiry protection notices (held/resumed), key partition-<n>."),
	spec(RegistrationLiveness, KindSnapshot, 6, snapshotConfigs(), "Go fleet: the reducer's liveness checkpoint (protobuf onex.fleet.v1.LivenessCheckpoint), a head and buckets per reducer-input partition, compacted, co-partitioned with reducer-input."),
	spec(NodeTopics, KindSnapshot, 6, snapshotConfigs(), "Go fleet: topics each ACTIVE node declares (event_bus), key node_id, tombstone when not ACTIVE; read by the topic catalog, compacted."),
	spec(RegistrationAdmin, KindCommand, 6, nil, "Go fleet: operator commands (deregister a node, key node_id; evict by state, unkeyed); consumed by the orchestrator."),
}

// Platform returns every topic this fleet uses or provisions: the platform
// topics of spec §3.3 (registration ingress, lifecycle events, topic catalog,
// snapshots, DLQs, monitoring) and the Go fleet's internal topics. The
// result is a fresh deep copy in a stable order; callers may modify it.
// ReplicationFactor is 0 in every entry (use Resolve or Provision options).
func Platform() []Spec {
	out := make([]Spec, len(platform))
	for i, s := range platform {
		out[i] = s.clone()
	}
	return out
}

// Lookup returns a copy of the registry entry for name.
func Lookup(name string) (Spec, bool) {
	for _, s := range platform {
		if s.Name == name {
			return s.clone(), true
		}
	}
	return Spec{}, false
}

// Environment variables read by OptionsFromEnv.
const (
	// EnvMaxPartitions caps partition counts at creation (Python runtime name).
	EnvMaxPartitions = "ONEX_TOPIC_PROVISIONER_MAX_PARTITIONS"
	// EnvReplicationFactor sets the cluster replication factor (this fleet's
	// addition; the Python provisioner always uses 1).
	EnvReplicationFactor = "ONEX_TOPIC_PROVISIONER_REPLICATION_FACTOR"
)

// Options adapts specs to a cluster.
type Options struct {
	// ReplicationFactor replaces a spec's 0 replication factor; 0 means 1
	// (the Python provisioner's default, right for a single-broker cluster).
	ReplicationFactor int16
	// MaxPartitions caps every spec's partition count; 0 means no cap.
	MaxPartitions int32
	// Namespace (KAFKA_TOPIC_NAMESPACE) prefixes every resolved name, so
	// a namespaced fleet's topics are created beside the canonical ones,
	// DLQ topics included, as the Python provisioner does.
	Namespace topicns.Namespace
}

// OptionsFromEnv reads EnvMaxPartitions, EnvReplicationFactor and
// KAFKA_TOPIC_NAMESPACE through lookup (pass os.LookupEnv). Unset or empty
// variables leave the defaults; a value that is not a positive integer in
// range, or not a namespace token, is an error.
func OptionsFromEnv(lookup func(string) (string, bool)) (Options, error) {
	var o Options
	if v, ok := lookup(topicns.EnvVar); ok {
		ns, err := topicns.Parse(v)
		if err != nil {
			return Options{}, err
		}
		o.Namespace = ns
	}
	if v, ok := lookup(EnvMaxPartitions); ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 {
			return Options{}, fmt.Errorf("%s=%q: must be a positive integer", EnvMaxPartitions, v)
		}
		o.MaxPartitions = int32(n)
	}
	if v, ok := lookup(EnvReplicationFactor); ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 16)
		if err != nil || n < 1 {
			return Options{}, fmt.Errorf("%s=%q: must be a positive integer", EnvReplicationFactor, v)
		}
		o.ReplicationFactor = int16(n)
	}
	return o, nil
}

// Resolve returns deep copies of specs adapted to the cluster described by
// opts — the exact shape Provision creates and checks:
//   - Partitions 0 becomes DefaultPartitions, then is capped to
//     opts.MaxPartitions when that is set;
//   - ReplicationFactor 0 becomes opts.ReplicationFactor (or 1);
//   - a min.insync.replicas config larger than the replication factor is
//     lowered to it: with RF 1, min.insync.replicas=2 would make every
//     acks=all write fail with NOT_ENOUGH_REPLICAS;
//   - the name is put on opts.Namespace (topicns.Namespace.Physical).
func Resolve(specs []Spec, opts Options) []Spec {
	rf := opts.ReplicationFactor
	if rf <= 0 {
		rf = 1
	}
	out := make([]Spec, len(specs))
	for i, s := range specs {
		s = s.clone()
		s.Name = opts.Namespace.Physical(s.Name)
		if s.Partitions <= 0 {
			s.Partitions = DefaultPartitions
		}
		if opts.MaxPartitions > 0 && s.Partitions > opts.MaxPartitions {
			s.Partitions = opts.MaxPartitions
		}
		if s.ReplicationFactor <= 0 {
			s.ReplicationFactor = rf
		}
		if v, ok := s.Configs[ConfigMinInsyncReplicas]; ok {
			if n, err := strconv.Atoi(v); err == nil && n > int(s.ReplicationFactor) {
				s.Configs[ConfigMinInsyncReplicas] = strconv.Itoa(int(s.ReplicationFactor))
			}
		}
		out[i] = s
	}
	return out
}
