package registration

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"

	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// IntrospectionEvent is ModelNodeIntrospectionEvent, the payload a node
// publishes on onex.evt.platform.node-introspection.v1 to announce itself.
type IntrospectionEvent struct {
	// NodeID is the registration entity id (required).
	NodeID uuid.UUID
	// NodeName is the contract name; nil is a degraded fallback.
	NodeName *string
	// NodeType is required.
	NodeType NodeKind
	// NodeVersion defaults to 1.0.0; only the object form is accepted.
	NodeVersion            envelope.SemVer
	DeclaredCapabilities   NodeCapabilities
	DiscoveredCapabilities DiscoveredCapabilities
	ContractCapabilities   *ContractCapabilities
	// Endpoints maps a name (health, api, metrics, ...) to a URL that has a
	// scheme and a host.
	Endpoints    map[string]string
	CurrentState *string
	// Reason defaults to startup.
	Reason IntrospectionReason
	// CorrelationID is required; it becomes the causation_id of the
	// resulting registration events.
	CorrelationID uuid.UUID
	// Timestamp is required and timezone-aware.
	Timestamp          envelope.Time
	NodeRole           *string
	Metadata           NodeMetadata
	NetworkID          *string
	DeploymentID       *string
	Epoch              *int
	PerformanceMetrics *IntrospectionPerformanceMetrics
	// EventBus nil excludes the node from dynamic topic routing.
	EventBus             *NodeEventBusConfig
	ResolvedFeatureFlags FeatureFlags

	// Extras holds the members of the payload that this code does not know
	// (written by a node newer than it), kept so that a later stage can
	// store them with the node (projection, snapshot): the key is the JSON
	// path relative to the payload ("flow_x",
	// "declared_capabilities.new_thing", "event_bus.publish_topics[0].qos"),
	// the value the member's exact JSON, in the order met. Only
	// DecodeIntrospectionEventTolerant fills it (a strict decode rejects
	// such members, except under extra="allow" models, which keep theirs in
	// their own Extra too: NodeCapabilities, NodeMetadata). It is not
	// encoded: ModelNodeIntrospectionEvent forbids unknown keys, so
	// MarshalJSON writes the declared fields only.
	Extras pyjson.Members
}

func (e *IntrospectionEvent) pyName() string { return "ModelNodeIntrospectionEvent" }

func (e *IntrospectionEvent) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("node_id", &e.NodeID, pyjson.UUID),
		pyjson.Prop("node_name", &e.NodeName, nullString),
		pyjson.Req("node_type", &e.NodeType, nodeKindC),
		pyjson.Def("node_version", &e.NodeVersion, semverC, envelope.Version100),
		pyjson.Prop("declared_capabilities", &e.DeclaredCapabilities, capabilitiesC),
		pyjson.Prop("discovered_capabilities", &e.DiscoveredCapabilities, discoveredC),
		pyjson.Prop("contract_capabilities", &e.ContractCapabilities, nullContractC),
		pyjson.Prop("endpoints", &e.Endpoints, stringMapC),
		pyjson.Prop("current_state", &e.CurrentState, nullString),
		pyjson.Def("reason", &e.Reason, reasonC, ReasonStartup),
		pyjson.Req("correlation_id", &e.CorrelationID, pyjson.UUID),
		pyjson.Req("timestamp", &e.Timestamp, timeC),
		pyjson.Prop("node_role", &e.NodeRole, nullString),
		pyjson.Prop("metadata", &e.Metadata, nodeMetadataC),
		pyjson.Prop("network_id", &e.NetworkID, nullString),
		pyjson.Prop("deployment_id", &e.DeploymentID, nullString),
		pyjson.Prop("epoch", &e.Epoch, nullInt),
		pyjson.Prop("performance_metrics", &e.PerformanceMetrics, nullPerfC),
		pyjson.Prop("event_bus", &e.EventBus, nullEventBusC),
		pyjson.Prop("resolved_feature_flags", &e.ResolvedFeatureFlags, featureFlagsC),
	}}
}

// Validate checks node_type, reason, every endpoint URL, epoch >= 0, the
// node version and the nested models.
func (e *IntrospectionEvent) Validate() error {
	var perf, bus, contract error
	if e.PerformanceMetrics != nil {
		perf = nested("performance_metrics", e.PerformanceMetrics.Validate())
	}
	if e.EventBus != nil {
		bus = nested("event_bus", e.EventBus.Validate())
	}
	if e.ContractCapabilities != nil {
		contract = nested("contract_capabilities", e.ContractCapabilities.Validate())
	}
	return firstErr(
		enumField("node_type", e.NodeType),
		nested("node_version", e.NodeVersion.Validate()),
		nested("declared_capabilities", e.DeclaredCapabilities.Validate()),
		contract,
		validateEndpoints(e.Endpoints),
		enumField("reason", e.Reason),
		optIntMin("epoch", e.Epoch, 0),
		perf,
		bus,
		nested("resolved_feature_flags", e.ResolvedFeatureFlags.Validate()),
	)
}

func validateEndpoints(m map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		raw := m[name]
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			return nested("endpoints", fieldf(name, "not a URL: %v", err))
		case u.Scheme == "" || u.Host == "":
			return nested("endpoints", fieldf(name, "URL %q must have a scheme and a host", raw))
		}
	}
	return nil
}

// DiscoveredCapabilities is ModelDiscoveredCapabilities (extra="forbid").
type DiscoveredCapabilities struct {
	Operations       []string
	HasFSM           bool
	MethodSignatures map[string]string
	// Attributes is a JSON object of arbitrary values (nil encodes as {}).
	Attributes json.RawMessage
}

func (d *DiscoveredCapabilities) pyName() string { return "ModelDiscoveredCapabilities" }

func (d *DiscoveredCapabilities) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Prop("operations", &d.Operations, stringList),
		pyjson.Prop("has_fsm", &d.HasFSM, pyjson.Bool),
		pyjson.Prop("method_signatures", &d.MethodSignatures, stringMapC),
		pyjson.Prop("attributes", &d.Attributes, pyjson.RawObject),
	}}
}

// Validate has nothing to check beyond JSON types.
func (d *DiscoveredCapabilities) Validate() error { return nil }

// ContractCapabilities is ModelContractCapabilities (extra="forbid").
type ContractCapabilities struct {
	// ContractType is required (e.g. "effect").
	ContractType string
	// ContractVersion is required (object form).
	ContractVersion envelope.SemVer
	IntentTypes     []string
	Protocols       []string
	// CapabilityTags is kept in the order received (Python sends it sorted).
	CapabilityTags []string
	// ServiceMetadata is a JSON object or nil (null).
	ServiceMetadata json.RawMessage
}

func (c *ContractCapabilities) pyName() string { return "ModelContractCapabilities" }

func (c *ContractCapabilities) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("contract_type", &c.ContractType, pyjson.String),
		pyjson.Req("contract_version", &c.ContractVersion, semverC),
		pyjson.Prop("intent_types", &c.IntentTypes, stringList),
		pyjson.Prop("protocols", &c.Protocols, stringList),
		pyjson.Prop("capability_tags", &c.CapabilityTags, stringList),
		pyjson.Prop("service_metadata", &c.ServiceMetadata, pyjson.RawObjectOrNull),
	}}
}

// Validate checks the contract version.
func (c *ContractCapabilities) Validate() error {
	return nested("contract_version", c.ContractVersion.Validate())
}

// IntrospectionPerformanceMetrics is ModelIntrospectionPerformanceMetrics
// (extra="forbid").
type IntrospectionPerformanceMetrics struct {
	GetCapabilitiesMs      float64
	DiscoverCapabilitiesMs float64
	GetEndpointsMs         float64
	GetCurrentStateMs      float64
	TotalIntrospectionMs   float64
	CacheHit               bool
	MethodCount            int
	ThresholdExceeded      bool
	SlowOperations         []string
	// CapturedAt defaults to the decode time when absent (Python's
	// default_factory).
	CapturedAt envelope.Time
}

func (m *IntrospectionPerformanceMetrics) pyName() string {
	return "ModelIntrospectionPerformanceMetrics"
}

func (m *IntrospectionPerformanceMetrics) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Prop("get_capabilities_ms", &m.GetCapabilitiesMs, pyjson.Float),
		pyjson.Prop("discover_capabilities_ms", &m.DiscoverCapabilitiesMs, pyjson.Float),
		pyjson.Prop("get_endpoints_ms", &m.GetEndpointsMs, pyjson.Float),
		pyjson.Prop("get_current_state_ms", &m.GetCurrentStateMs, pyjson.Float),
		pyjson.Prop("total_introspection_ms", &m.TotalIntrospectionMs, pyjson.Float),
		pyjson.Prop("cache_hit", &m.CacheHit, pyjson.Bool),
		pyjson.Prop("method_count", &m.MethodCount, pyjson.Int),
		pyjson.Prop("threshold_exceeded", &m.ThresholdExceeded, pyjson.Bool),
		pyjson.Prop("slow_operations", &m.SlowOperations, stringList),
		pyjson.DefFunc("captured_at", &m.CapturedAt, timeC, envelope.Now),
	}}
}

// Validate checks that timings and method_count are >= 0.
func (m *IntrospectionPerformanceMetrics) Validate() error {
	return firstErr(
		floatMin0("get_capabilities_ms", m.GetCapabilitiesMs),
		floatMin0("discover_capabilities_ms", m.DiscoverCapabilitiesMs),
		floatMin0("get_endpoints_ms", m.GetEndpointsMs),
		floatMin0("get_current_state_ms", m.GetCurrentStateMs),
		floatMin0("total_introspection_ms", m.TotalIntrospectionMs),
		intMin("method_count", m.MethodCount, 0),
	)
}

// NodeEventBusConfig is ModelNodeEventBusConfig (extra="forbid").
type NodeEventBusConfig struct {
	SubscribeTopics []EventBusTopicEntry
	PublishTopics   []EventBusTopicEntry
}

func (c *NodeEventBusConfig) pyName() string { return "ModelNodeEventBusConfig" }

func (c *NodeEventBusConfig) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Prop("subscribe_topics", &c.SubscribeTopics, topicEntriesC),
		pyjson.Prop("publish_topics", &c.PublishTopics, topicEntriesC),
	}}
}

// Validate has nothing to check beyond JSON types.
func (c *NodeEventBusConfig) Validate() error { return nil }

// EventBusTopicEntry is ModelEventBusTopicEntry (extra="forbid"). Only
// Topic is used for routing.
type EventBusTopicEntry struct {
	// Topic is required.
	Topic     string
	EventType *string
	// MessageCategory defaults to "EVENT".
	MessageCategory string
	Description     *string
}

func (t *EventBusTopicEntry) pyName() string { return "ModelEventBusTopicEntry" }

func (t *EventBusTopicEntry) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("topic", &t.Topic, pyjson.String),
		pyjson.Prop("event_type", &t.EventType, nullString),
		pyjson.Def("message_category", &t.MessageCategory, pyjson.String, "EVENT"),
		pyjson.Prop("description", &t.Description, nullString),
	}}
}

// Validate has nothing to check beyond JSON types.
func (t *EventBusTopicEntry) Validate() error { return nil }

var (
	discoveredC = object[DiscoveredCapabilities]()
	contractC   = object[ContractCapabilities]()
	perfC       = object[IntrospectionPerformanceMetrics]()
	eventBusC   = object[NodeEventBusConfig]()
	topicEntryC = object[EventBusTopicEntry]()
)
