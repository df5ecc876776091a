package node

import (
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Identity is what a node says about itself in its introspection events.
// NodeID, Type and at least a health endpoint are what the registry needs;
// the rest is carried to the projection verbatim.
type Identity struct {
	NodeID uuid.UUID
	// Name is the node's contract name (node_name); empty sends null, the
	// Python runtime's degraded fallback.
	Name    string
	Type    registration.NodeKind
	Version envelope.SemVer
	// Endpoints maps health, api, metrics... to absolute URLs.
	Endpoints            map[string]string
	Capabilities         registration.NodeCapabilities
	ContractCapabilities *registration.ContractCapabilities
	Role                 string
	Metadata             registration.NodeMetadata
	EventBus             *registration.NodeEventBusConfig
	// Customize, when set, edits every introspection event after the fields
	// above are filled, for the fields Identity does not name.
	Customize func(*registration.IntrospectionEvent)
}

// Validate reports what would make the registry reject the node's
// introspection: a zero id, an unknown node type, endpoints without scheme
// and host, an invalid version.
func (id *Identity) Validate() error {
	if id.NodeID == uuid.Nil {
		return fmt.Errorf("node: identity has no node id")
	}
	ev := id.Introspection(registration.ReasonStartup, uuid.New(), time.Now())
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("node %s: invalid introspection: %w", id.NodeID, err)
	}
	return nil
}

// Introspection builds the introspection event for reason, answering
// correlationID, as of now.
func (id *Identity) Introspection(reason registration.IntrospectionReason, correlationID uuid.UUID, now time.Time) *registration.IntrospectionEvent {
	ev := &registration.IntrospectionEvent{
		NodeID:               id.NodeID,
		NodeType:             id.Type,
		NodeVersion:          id.Version,
		DeclaredCapabilities: id.Capabilities,
		ContractCapabilities: id.ContractCapabilities,
		Endpoints:            id.Endpoints,
		Reason:               reason,
		CorrelationID:        correlationID,
		Timestamp:            envelope.Time{Time: now.UTC().Truncate(time.Microsecond)},
		Metadata:             id.Metadata,
		EventBus:             id.EventBus,
	}
	if zeroVersion(ev.NodeVersion) {
		ev.NodeVersion = envelope.Version100
	}
	if ev.Endpoints == nil {
		ev.Endpoints = map[string]string{}
	}
	if id.Name != "" {
		name := id.Name
		ev.NodeName = &name
	}
	if id.Role != "" {
		role := id.Role
		ev.NodeRole = &role
	}
	if id.Customize != nil {
		id.Customize(ev)
	}
	return ev
}

// Load is what a heartbeat reports about the node's work; nil fields are
// sent as null.
type Load struct {
	ActiveOperations int
	MemoryUsageMB    *float64
	CPUUsagePercent  *float64
}

// Record is one Kafka record a node publishes.
type Record struct {
	Topic string
	// Key is nil for an unkeyed record.
	Key     []byte
	Value   []byte
	Headers []sarama.RecordHeader
	// CorrelationID is the body's correlation id (the meaningful one; the
	// header's is random, as on the Python bus).
	CorrelationID uuid.UUID
}

// ProducerMessage converts r for sarama.
func (r Record) ProducerMessage() *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: r.Topic, Value: sarama.ByteEncoder(r.Value), Headers: r.Headers}
	if r.Key != nil {
		m.Key = sarama.ByteEncoder(r.Key)
	}
	return m
}

// Encoder turns node messages into records exactly as the Python bus writes
// them (envelope fields, header set and order). Its clock and id source are
// replaceable so the golden tests can reproduce a fixture byte for byte.
type Encoder struct {
	// Source is the bus environment written to the source header ("local"
	// unless set).
	Source string
	// Now defaults to time.Now.
	Now func() time.Time
	// NewID defaults to uuid.New; it supplies envelope ids, header ids and
	// fresh correlation/command ids.
	NewID func() uuid.UUID
}

func (e *Encoder) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Encoder) id() uuid.UUID {
	if e.NewID != nil {
		return e.NewID()
	}
	return uuid.New()
}

// envelopeRecord wraps payload in an envelope whose correlation_id is the
// body's (what Python nodes do for these three messages) and adds the
// Python bus headers. Go nodes key their records by node id: per-node
// order then holds from the first broker hop, and Python consumers ignore
// the key.
func (e *Encoder) envelopeRecord(topic string, nodeID, correlationID uuid.UUID, payload any) (Record, error) {
	envID := e.id()
	env, err := envelope.New(payload,
		envelope.WithEnvelopeID(envID),
		envelope.WithTimestamp(e.now()),
		envelope.WithCorrelationID(correlationID))
	if err != nil {
		return Record{}, fmt.Errorf("node: envelope for %s: %w", topic, err)
	}
	value, err := env.Encode()
	if err != nil {
		return Record{}, fmt.Errorf("node: encode %s: %w", topic, err)
	}
	source := e.Source
	if source == "" {
		source = "local"
	}
	h := envelope.NewHeaders(topic, source)
	h.CorrelationID = e.id()
	h.MessageID = e.id()
	h.Timestamp = e.now().Truncate(time.Microsecond)
	return Record{
		Topic:         topic,
		Key:           []byte(nodeID.String()),
		Value:         value,
		Headers:       h.Records(),
		CorrelationID: correlationID,
	}, nil
}

// Introspection encodes ev for onex.evt.platform.node-introspection.v1.
func (e *Encoder) Introspection(ev *registration.IntrospectionEvent) (Record, error) {
	if err := ev.Validate(); err != nil {
		return Record{}, fmt.Errorf("node: introspection: %w", err)
	}
	return e.envelopeRecord(topics.NodeIntrospection, ev.NodeID, ev.CorrelationID, ev)
}

// Heartbeat encodes the node's heartbeat for
// onex.evt.platform.node-heartbeat.v1 with a fresh correlation id, as the
// Python mixin does.
func (e *Encoder) Heartbeat(id *Identity, uptime time.Duration, load Load) (Record, error) {
	corr := e.id()
	version := id.Version
	if zeroVersion(version) {
		version = envelope.Version100
	}
	hb := &registration.HeartbeatEvent{
		NodeID:                id.NodeID,
		NodeType:              id.Type,
		NodeVersion:           version,
		UptimeSeconds:         uptime.Seconds(),
		ActiveOperationsCount: load.ActiveOperations,
		MemoryUsageMB:         load.MemoryUsageMB,
		CPUUsagePercent:       load.CPUUsagePercent,
		CorrelationID:         &corr,
		Timestamp:             envelope.Time{Time: e.now().Truncate(time.Microsecond)},
	}
	if err := hb.Validate(); err != nil {
		return Record{}, fmt.Errorf("node: heartbeat: %w", err)
	}
	return e.envelopeRecord(topics.NodeHeartbeat, id.NodeID, corr, hb)
}

// Ack encodes the node's ack of an accepted registration for
// onex.cmd.platform.node-registration-acked.v1. correlationID is the
// accepted event's: the registry pairs the two by it.
func (e *Encoder) Ack(nodeID, correlationID uuid.UUID) (Record, error) {
	ack := &registration.RegistrationAcked{
		CommandID:     e.id(),
		NodeID:        nodeID,
		CorrelationID: correlationID,
		Timestamp:     envelope.Time{Time: e.now().Truncate(time.Microsecond)},
	}
	return e.envelopeRecord(topics.NodeRegistrationAcked, nodeID, correlationID, ack)
}

// zeroVersion reports an unset version (the zero value), which is sent as
// the Python default 1.0.0.
func zeroVersion(v envelope.SemVer) bool {
	return v.Major == 0 && v.Minor == 0 && v.Patch == 0 && v.Prerelease == nil && v.Build == nil
}
