package registration

import "github.com/omninode/onex-fleet/pkg/envelope/pyjson"

// MarshalJSON and UnmarshalJSON of every model, and Decode<Name> of the
// top-level ones (the nested models are decoded as part of their parent, or
// with UnmarshalJSON). They all delegate to decodeAs / marshal (codec.go),
// so the guarantees of the package doc hold uniformly: Decode<Name> parses
// strictly, normalizes, validates, and reports *envelope.FieldError with
// the model's Python name; MarshalJSON writes Python field order without
// validating; UnmarshalJSON decodes as Decode<Name> would and leaves the
// receiver unchanged on error.

// DecodeIntrospectionEvent decodes data as an IntrospectionEvent and validates it;
// errors are as described in the package doc.
func DecodeIntrospectionEvent(data []byte) (*IntrospectionEvent, error) {
	return decodeAs[IntrospectionEvent](data)
}

// DecodeIntrospectionEventTolerant is DecodeIntrospectionEvent for an
// introspection from a node that may be newer than this code: unknown keys,
// at every level, are returned with their paths relative to data instead
// of failing, and kept in the event's Extras; every other error is
// DecodeIntrospectionEvent's (pyjson.Tolerant).
func DecodeIntrospectionEventTolerant(data []byte) (*IntrospectionEvent, []pyjson.Unknown, error) {
	ev, unknown, err := decodeTolerantAs[IntrospectionEvent](data)
	if err != nil {
		return nil, nil, err
	}
	ev.Extras = pyjson.UnknownMembers(unknown)
	return ev, unknown, nil
}

// MarshalJSON writes the IntrospectionEvent in Python field order.
func (m IntrospectionEvent) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *IntrospectionEvent) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the NodeCapabilities in Python field order.
func (m NodeCapabilities) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *NodeCapabilities) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the FeatureFlags in Python field order.
func (m FeatureFlags) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *FeatureFlags) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the FeatureFlagMetadata in Python field order.
func (m FeatureFlagMetadata) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *FeatureFlagMetadata) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the MCPContractConfig in Python field order.
func (m MCPContractConfig) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *MCPContractConfig) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the NodeMetadata in Python field order.
func (m NodeMetadata) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *NodeMetadata) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the DiscoveredCapabilities in Python field order.
func (m DiscoveredCapabilities) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *DiscoveredCapabilities) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the ContractCapabilities in Python field order.
func (m ContractCapabilities) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *ContractCapabilities) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the IntrospectionPerformanceMetrics in Python field order.
func (m IntrospectionPerformanceMetrics) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *IntrospectionPerformanceMetrics) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the NodeEventBusConfig in Python field order.
func (m NodeEventBusConfig) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *NodeEventBusConfig) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the EventBusTopicEntry in Python field order.
func (m EventBusTopicEntry) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *EventBusTopicEntry) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeHeartbeatEvent decodes data as a HeartbeatEvent and validates it;
// errors are as described in the package doc.
func DecodeHeartbeatEvent(data []byte) (*HeartbeatEvent, error) {
	return decodeAs[HeartbeatEvent](data)
}

// MarshalJSON writes the HeartbeatEvent in Python field order.
func (m HeartbeatEvent) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *HeartbeatEvent) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeHeartbeatEventTolerant is DecodeHeartbeatEvent for a heartbeat from a
// node that may be newer than this code: unknown keys, at every level, are
// returned with their paths relative to data instead of failing; every
// other error is DecodeHeartbeatEvent's (pyjson.Tolerant).
func DecodeHeartbeatEventTolerant(data []byte) (*HeartbeatEvent, []pyjson.Unknown, error) {
	return decodeTolerantAs[HeartbeatEvent](data)
}

// MarshalJSON writes the NodeFlowWindow in Python field order.
func (m NodeFlowWindow) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *NodeFlowWindow) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the ConsumerFlowDelta in Python field order.
func (m ConsumerFlowDelta) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *ConsumerFlowDelta) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the TopicProduceDelta in Python field order.
func (m TopicProduceDelta) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *TopicProduceDelta) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeRegistrationAckedTolerant is DecodeRegistrationAcked for an ack from
// a node that may be newer than this code (see
// DecodeHeartbeatEventTolerant).
func DecodeRegistrationAckedTolerant(data []byte) (*RegistrationAcked, []pyjson.Unknown, error) {
	return decodeTolerantAs[RegistrationAcked](data)
}

// DecodeRegistrationAcked decodes data as a RegistrationAcked and validates it;
// errors are as described in the package doc.
func DecodeRegistrationAcked(data []byte) (*RegistrationAcked, error) {
	return decodeAs[RegistrationAcked](data)
}

// MarshalJSON writes the RegistrationAcked in Python field order.
func (m RegistrationAcked) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RegistrationAcked) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeRuntimeTick decodes data as a RuntimeTick and validates it;
// errors are as described in the package doc.
func DecodeRuntimeTick(data []byte) (*RuntimeTick, error) { return decodeAs[RuntimeTick](data) }

// MarshalJSON writes the RuntimeTick in Python field order.
func (m RuntimeTick) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RuntimeTick) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeTopicCatalogQuery decodes data as a TopicCatalogQuery and validates it;
// errors are as described in the package doc.
func DecodeTopicCatalogQuery(data []byte) (*TopicCatalogQuery, error) {
	return decodeAs[TopicCatalogQuery](data)
}

// MarshalJSON writes the TopicCatalogQuery in Python field order.
func (m TopicCatalogQuery) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *TopicCatalogQuery) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeTopicCatalogResponse decodes data as a TopicCatalogResponse and validates it;
// errors are as described in the package doc.
func DecodeTopicCatalogResponse(data []byte) (*TopicCatalogResponse, error) {
	return decodeAs[TopicCatalogResponse](data)
}

// MarshalJSON writes the TopicCatalogResponse in Python field order.
func (m TopicCatalogResponse) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *TopicCatalogResponse) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the TopicCatalogEntry in Python field order.
func (m TopicCatalogEntry) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *TopicCatalogEntry) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeTopicCatalogChanged decodes data as a TopicCatalogChanged and validates it;
// errors are as described in the package doc.
func DecodeTopicCatalogChanged(data []byte) (*TopicCatalogChanged, error) {
	return decodeAs[TopicCatalogChanged](data)
}

// MarshalJSON writes the TopicCatalogChanged in Python field order.
func (m TopicCatalogChanged) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *TopicCatalogChanged) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeRegistrationAccepted decodes data as a RegistrationAccepted and validates it;
// errors are as described in the package doc.
func DecodeRegistrationAccepted(data []byte) (*RegistrationAccepted, error) {
	return decodeAs[RegistrationAccepted](data)
}

// MarshalJSON writes the RegistrationAccepted in Python field order.
func (m RegistrationAccepted) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RegistrationAccepted) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeRegistrationRejected decodes data as a RegistrationRejected and validates it;
// errors are as described in the package doc.
func DecodeRegistrationRejected(data []byte) (*RegistrationRejected, error) {
	return decodeAs[RegistrationRejected](data)
}

// MarshalJSON writes the RegistrationRejected in Python field order.
func (m RegistrationRejected) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RegistrationRejected) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeRegistrationSnapshot decodes data as a RegistrationSnapshot and validates it;
// errors are as described in the package doc.
func DecodeRegistrationSnapshot(data []byte) (*RegistrationSnapshot, error) {
	return decodeAs[RegistrationSnapshot](data)
}

// MarshalJSON writes the RegistrationSnapshot in Python field order.
func (m RegistrationSnapshot) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RegistrationSnapshot) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}
