package registration

import "github.com/omninode/onex-fleet/pkg/envelope/pyjson"

// Decode, MarshalJSON and UnmarshalJSON of every model. They all delegate to
// decodeAs / marshal (codec.go), so the guarantees of the package doc hold
// uniformly: Decode<Name> parses strictly, normalizes, validates, and
// reports *envelope.FieldError with the model's Python name; MarshalJSON
// writes Python field order without validating; UnmarshalJSON is
// Decode<Name> and leaves the receiver unchanged on error.

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

// DecodeNodeCapabilities decodes data as a NodeCapabilities and validates it;
// errors are as described in the package doc.
func DecodeNodeCapabilities(data []byte) (*NodeCapabilities, error) {
	return decodeAs[NodeCapabilities](data)
}

// MarshalJSON writes the NodeCapabilities in Python field order.
func (m NodeCapabilities) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *NodeCapabilities) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeFeatureFlags decodes data as a FeatureFlags and validates it;
// errors are as described in the package doc.
func DecodeFeatureFlags(data []byte) (*FeatureFlags, error) { return decodeAs[FeatureFlags](data) }

// MarshalJSON writes the FeatureFlags in Python field order.
func (m FeatureFlags) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *FeatureFlags) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeFeatureFlagMetadata decodes data as a FeatureFlagMetadata and validates it;
// errors are as described in the package doc.
func DecodeFeatureFlagMetadata(data []byte) (*FeatureFlagMetadata, error) {
	return decodeAs[FeatureFlagMetadata](data)
}

// MarshalJSON writes the FeatureFlagMetadata in Python field order.
func (m FeatureFlagMetadata) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *FeatureFlagMetadata) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeMCPContractConfig decodes data as a MCPContractConfig and validates it;
// errors are as described in the package doc.
func DecodeMCPContractConfig(data []byte) (*MCPContractConfig, error) {
	return decodeAs[MCPContractConfig](data)
}

// MarshalJSON writes the MCPContractConfig in Python field order.
func (m MCPContractConfig) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *MCPContractConfig) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeNodeMetadata decodes data as a NodeMetadata and validates it;
// errors are as described in the package doc.
func DecodeNodeMetadata(data []byte) (*NodeMetadata, error) { return decodeAs[NodeMetadata](data) }

// MarshalJSON writes the NodeMetadata in Python field order.
func (m NodeMetadata) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *NodeMetadata) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeDiscoveredCapabilities decodes data as a DiscoveredCapabilities and validates it;
// errors are as described in the package doc.
func DecodeDiscoveredCapabilities(data []byte) (*DiscoveredCapabilities, error) {
	return decodeAs[DiscoveredCapabilities](data)
}

// MarshalJSON writes the DiscoveredCapabilities in Python field order.
func (m DiscoveredCapabilities) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *DiscoveredCapabilities) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeContractCapabilities decodes data as a ContractCapabilities and validates it;
// errors are as described in the package doc.
func DecodeContractCapabilities(data []byte) (*ContractCapabilities, error) {
	return decodeAs[ContractCapabilities](data)
}

// MarshalJSON writes the ContractCapabilities in Python field order.
func (m ContractCapabilities) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *ContractCapabilities) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeIntrospectionPerformanceMetrics decodes data as an IntrospectionPerformanceMetrics and validates it;
// errors are as described in the package doc.
func DecodeIntrospectionPerformanceMetrics(data []byte) (*IntrospectionPerformanceMetrics, error) {
	return decodeAs[IntrospectionPerformanceMetrics](data)
}

// MarshalJSON writes the IntrospectionPerformanceMetrics in Python field order.
func (m IntrospectionPerformanceMetrics) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *IntrospectionPerformanceMetrics) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeNodeEventBusConfig decodes data as a NodeEventBusConfig and validates it;
// errors are as described in the package doc.
func DecodeNodeEventBusConfig(data []byte) (*NodeEventBusConfig, error) {
	return decodeAs[NodeEventBusConfig](data)
}

// MarshalJSON writes the NodeEventBusConfig in Python field order.
func (m NodeEventBusConfig) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *NodeEventBusConfig) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeEventBusTopicEntry decodes data as an EventBusTopicEntry and validates it;
// errors are as described in the package doc.
func DecodeEventBusTopicEntry(data []byte) (*EventBusTopicEntry, error) {
	return decodeAs[EventBusTopicEntry](data)
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

// DecodeNodeFlowWindow decodes data as a NodeFlowWindow and validates it;
// errors are as described in the package doc.
func DecodeNodeFlowWindow(data []byte) (*NodeFlowWindow, error) {
	return decodeAs[NodeFlowWindow](data)
}

// MarshalJSON writes the NodeFlowWindow in Python field order.
func (m NodeFlowWindow) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *NodeFlowWindow) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeConsumerFlowDelta decodes data as a ConsumerFlowDelta and validates it;
// errors are as described in the package doc.
func DecodeConsumerFlowDelta(data []byte) (*ConsumerFlowDelta, error) {
	return decodeAs[ConsumerFlowDelta](data)
}

// MarshalJSON writes the ConsumerFlowDelta in Python field order.
func (m ConsumerFlowDelta) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *ConsumerFlowDelta) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeTopicProduceDelta decodes data as a TopicProduceDelta and validates it;
// errors are as described in the package doc.
func DecodeTopicProduceDelta(data []byte) (*TopicProduceDelta, error) {
	return decodeAs[TopicProduceDelta](data)
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

// DecodeTopicCatalogRequest decodes data as a TopicCatalogRequest and validates it;
// errors are as described in the package doc.
func DecodeTopicCatalogRequest(data []byte) (*TopicCatalogRequest, error) {
	return decodeAs[TopicCatalogRequest](data)
}

// MarshalJSON writes the TopicCatalogRequest in Python field order.
func (m TopicCatalogRequest) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *TopicCatalogRequest) UnmarshalJSON(data []byte) error {
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

// DecodeTopicCatalogEntry decodes data as a TopicCatalogEntry and validates it;
// errors are as described in the package doc.
func DecodeTopicCatalogEntry(data []byte) (*TopicCatalogEntry, error) {
	return decodeAs[TopicCatalogEntry](data)
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

// DecodeRegistrationInitiated decodes data as a RegistrationInitiated and validates it;
// errors are as described in the package doc.
func DecodeRegistrationInitiated(data []byte) (*RegistrationInitiated, error) {
	return decodeAs[RegistrationInitiated](data)
}

// MarshalJSON writes the RegistrationInitiated in Python field order.
func (m RegistrationInitiated) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RegistrationInitiated) UnmarshalJSON(data []byte) error {
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

// DecodeRegistrationAckReceived decodes data as a RegistrationAckReceived and validates it;
// errors are as described in the package doc.
func DecodeRegistrationAckReceived(data []byte) (*RegistrationAckReceived, error) {
	return decodeAs[RegistrationAckReceived](data)
}

// MarshalJSON writes the RegistrationAckReceived in Python field order.
func (m RegistrationAckReceived) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RegistrationAckReceived) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeBecameActive decodes data as a BecameActive and validates it;
// errors are as described in the package doc.
func DecodeBecameActive(data []byte) (*BecameActive, error) { return decodeAs[BecameActive](data) }

// MarshalJSON writes the BecameActive in Python field order.
func (m BecameActive) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *BecameActive) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeRegistrationAckTimedOut decodes data as a RegistrationAckTimedOut and validates it;
// errors are as described in the package doc.
func DecodeRegistrationAckTimedOut(data []byte) (*RegistrationAckTimedOut, error) {
	return decodeAs[RegistrationAckTimedOut](data)
}

// MarshalJSON writes the RegistrationAckTimedOut in Python field order.
func (m RegistrationAckTimedOut) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RegistrationAckTimedOut) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// MarshalJSON writes the LivenessExpired in Python field order.
func (m LivenessExpired) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value (either liveness-expired shape).
func (m *LivenessExpired) UnmarshalJSON(data []byte) error {
	v, err := DecodeLivenessExpired(data)
	if err != nil {
		return err
	}
	*m = *v
	return nil
}

// DecodeLivenessExpiredCoordinator decodes data as a LivenessExpiredCoordinator and validates it;
// errors are as described in the package doc.
func DecodeLivenessExpiredCoordinator(data []byte) (*LivenessExpiredCoordinator, error) {
	return decodeAs[LivenessExpiredCoordinator](data)
}

// MarshalJSON writes the LivenessExpiredCoordinator in Python field order.
func (m LivenessExpiredCoordinator) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *LivenessExpiredCoordinator) UnmarshalJSON(data []byte) error {
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

// DecodeIntent decodes data as an Intent and validates it;
// errors are as described in the package doc.
func DecodeIntent(data []byte) (*Intent, error) { return decodeAs[Intent](data) }

// MarshalJSON writes the Intent in Python field order.
func (m Intent) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *Intent) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodePostgresUpsertRegistration decodes data as a PostgresUpsertRegistration and validates it;
// errors are as described in the package doc.
func DecodePostgresUpsertRegistration(data []byte) (*PostgresUpsertRegistration, error) {
	return decodeAs[PostgresUpsertRegistration](data)
}

// MarshalJSON writes the PostgresUpsertRegistration in Python field order.
func (m PostgresUpsertRegistration) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *PostgresUpsertRegistration) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeProjectionRecord decodes data as a ProjectionRecord and validates it;
// errors are as described in the package doc.
func DecodeProjectionRecord(data []byte) (*ProjectionRecord, error) {
	return decodeAs[ProjectionRecord](data)
}

// MarshalJSON writes the ProjectionRecord in Python field order.
func (m ProjectionRecord) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *ProjectionRecord) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodePostgresUpdateRegistration decodes data as a PostgresUpdateRegistration and validates it;
// errors are as described in the package doc.
func DecodePostgresUpdateRegistration(data []byte) (*PostgresUpdateRegistration, error) {
	return decodeAs[PostgresUpdateRegistration](data)
}

// MarshalJSON writes the PostgresUpdateRegistration in Python field order.
func (m PostgresUpdateRegistration) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *PostgresUpdateRegistration) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeRegistrationAckUpdate decodes data as a RegistrationAckUpdate and validates it;
// errors are as described in the package doc.
func DecodeRegistrationAckUpdate(data []byte) (*RegistrationAckUpdate, error) {
	return decodeAs[RegistrationAckUpdate](data)
}

// MarshalJSON writes the RegistrationAckUpdate in Python field order.
func (m RegistrationAckUpdate) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RegistrationAckUpdate) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeRegistrationHeartbeatUpdate decodes data as a RegistrationHeartbeatUpdate and validates it;
// errors are as described in the package doc.
func DecodeRegistrationHeartbeatUpdate(data []byte) (*RegistrationHeartbeatUpdate, error) {
	return decodeAs[RegistrationHeartbeatUpdate](data)
}

// MarshalJSON writes the RegistrationHeartbeatUpdate in Python field order.
func (m RegistrationHeartbeatUpdate) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *RegistrationHeartbeatUpdate) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeConsulRegister decodes data as a ConsulRegister and validates it;
// errors are as described in the package doc.
func DecodeConsulRegister(data []byte) (*ConsulRegister, error) {
	return decodeAs[ConsulRegister](data)
}

// MarshalJSON writes the ConsulRegister in Python field order.
func (m ConsulRegister) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *ConsulRegister) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeConsulDeregister decodes data as a ConsulDeregister and validates it;
// errors are as described in the package doc.
func DecodeConsulDeregister(data []byte) (*ConsulDeregister, error) {
	return decodeAs[ConsulDeregister](data)
}

// MarshalJSON writes the ConsulDeregister in Python field order.
func (m ConsulDeregister) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *ConsulDeregister) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeOrchestratorOutput decodes data as an OrchestratorOutput and validates it;
// errors are as described in the package doc.
func DecodeOrchestratorOutput(data []byte) (*OrchestratorOutput, error) {
	return decodeAs[OrchestratorOutput](data)
}

// MarshalJSON writes the OrchestratorOutput in Python field order.
func (m OrchestratorOutput) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *OrchestratorOutput) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}

// DecodeIntentResult decodes data as an IntentResult and validates it;
// errors are as described in the package doc.
func DecodeIntentResult(data []byte) (*IntentResult, error) { return decodeAs[IntentResult](data) }

// MarshalJSON writes the IntentResult in Python field order.
func (m IntentResult) MarshalJSON() ([]byte, error) { return marshal(&m) }

// UnmarshalJSON replaces m with the decoded value.
func (m *IntentResult) UnmarshalJSON(data []byte) error {
	return unmarshalInto(m, data)
}
