// Package wire turns the reducer's inputs into decisions' inputs and its
// decisions into Kafka records: lifecycle events on the Python topics (ONEX
// envelopes, except the accepted event, a bare model), intents as protobuf
// onex.fleet.v1.Intent on the intents topic, and snapshots on the compacted snapshot topic. Every
// id and timestamp in an output comes from the decision, so the same input
// stream yields the same record values.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/snapshot"
)

// Record is one output message before it becomes a sarama.ProducerMessage.
type Record struct {
	// Kind is "event", "intent", "snapshot" or "topics" (the node-topics
	// view).
	Kind       string
	IntentType string
	Topic      string
	Key        string
	// Value is nil for a tombstone.
	Value         []byte
	CorrelationID uuid.UUID
	// ContentType is the record's content_type header
	// (pipeline.HeaderContentType); "" is the ONEX default,
	// application/json.
	ContentType string
	// MessageID is the envelope id of an envelope record: its message_id
	// header, as the Python bus writes it (so a retried transaction's
	// records carry the same header too). Nil for a bare record.
	MessageID uuid.UUID
	// Headers are the record's own headers: a snapshot's reducer state
	// (pipeline.HeaderReducerState).
	Headers []sarama.RecordHeader
}

// ProducerMessage converts r, with its own headers and, but for a snapshot,
// the standard ONEX headers (spec 1.5) whose source is source.
func (r Record) ProducerMessage(source string) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: r.Topic, Key: sarama.StringEncoder(r.Key), Headers: r.Headers}
	if r.Value != nil {
		m.Value = sarama.ByteEncoder(r.Value)
	}
	if r.Kind != "snapshot" && r.Kind != "topics" { // state records carry no ONEX headers (spec 9.1)
		h := envelope.NewHeaders(r.Topic, source)
		if r.CorrelationID != uuid.Nil {
			h.CorrelationID = r.CorrelationID
		}
		if r.MessageID != uuid.Nil {
			h.MessageID = r.MessageID
		}
		if r.ContentType != "" {
			h.ContentType = r.ContentType
		}
		for _, rh := range h.Records() {
			m.Headers = append(m.Headers, rh)
		}
	}
	return m
}

var eventTopics = map[decide.EventKind]string{
	decide.EventInitiated:       topics.NodeRegistrationInitiated,
	decide.EventAccepted:        topics.NodeRegistrationAccepted,
	decide.EventAckReceived:     topics.NodeRegistrationAckReceived,
	decide.EventBecameActive:    topics.NodeBecameActive,
	decide.EventAckTimedOut:     topics.NodeRegistrationAckTimedOut,
	decide.EventLivenessExpired: topics.NodeLivenessExpired,
	decide.EventRejected:        topics.NodeRegistrationRejected,
	decide.EventMassExpiry:      topics.RegistrationMassExpiry,
}

// EventTopic returns the topic of an event kind.
func EventTopic(k decide.EventKind) string { return eventTopics[k] }

// OutputTopics returns every topic the encoder writes to (events, intents,
// snapshots, liveness checkpoints), sorted: the reducer's contract must
// list each one.
func OutputTopics() []string {
	out := []string{topics.RegistrationIntents, topics.RegistrationSnapshots, topics.RegistrationLiveness, topics.NodeTopics}
	for _, t := range eventTopics {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// The lifecycle event payloads of spec 2.7, fields in Python order.
type eventHeader struct {
	EntityID      uuid.UUID     `json:"entity_id"`
	NodeID        uuid.UUID     `json:"node_id"`
	CorrelationID uuid.UUID     `json:"correlation_id"`
	CausationID   uuid.UUID     `json:"causation_id"`
	EmittedAt     envelope.Time `json:"emitted_at"`
}

type initiated struct {
	eventHeader
	RegistrationAttemptID uuid.UUID `json:"registration_attempt_id"`
}
type accepted struct {
	eventHeader
	AckDeadline envelope.Time `json:"ack_deadline"`
}
type ackReceived struct {
	eventHeader
	LivenessDeadline envelope.Time `json:"liveness_deadline"`
}
type becameActive struct {
	eventHeader
	Capabilities json.RawMessage `json:"capabilities"`
}
type ackTimedOut struct {
	eventHeader
	DeadlineAt    envelope.Time `json:"deadline_at"`
	PreviousState *string       `json:"previous_state"`
}
type livenessExpired struct {
	eventHeader
	LastHeartbeatAt *envelope.Time `json:"last_heartbeat_at"`
}
type rejected struct {
	eventHeader
	RejectionReason string `json:"rejection_reason"`
}
type massExpiry struct {
	CorrelationID uuid.UUID     `json:"correlation_id"`
	CausationID   uuid.UUID     `json:"causation_id"`
	EmittedAt     envelope.Time `json:"emitted_at"`
	*decide.MassExpiry
}

func eventPayload(e decide.Event) any {
	h := eventHeader{EntityID: e.NodeID, NodeID: e.NodeID, CorrelationID: e.CorrelationID, CausationID: e.CausationID, EmittedAt: pipeline.T(e.EmittedAt)}
	switch e.Kind {
	case decide.EventInitiated:
		return initiated{h, e.AttemptID}
	case decide.EventAccepted:
		return accepted{h, pipeline.T(e.AckDeadline)}
	case decide.EventAckReceived:
		return ackReceived{h, pipeline.T(e.LivenessDeadline)}
	case decide.EventBecameActive:
		caps := e.Capabilities
		if len(caps) == 0 {
			caps = json.RawMessage(`{}`)
		}
		return becameActive{h, caps}
	case decide.EventAckTimedOut:
		var prev *string
		if e.PreviousState != "" {
			s := string(e.PreviousState)
			prev = &s
		}
		return ackTimedOut{h, pipeline.T(e.DeadlineAt), prev}
	case decide.EventLivenessExpired:
		return livenessExpired{h, pipeline.TP(e.LastHeartbeatAt)}
	case decide.EventRejected:
		return rejected{h, e.RejectionReason}
	case decide.EventMassExpiry:
		return massExpiry{e.CorrelationID, e.CausationID, pipeline.T(e.EmittedAt), e.MassExpiry}
	}
	return nil
}

// Event encodes a lifecycle event. Every kind but the accepted event is an
// envelope; index is the event's position in its decision's output, which
// with the correlation id makes the deterministic envelope id of spec 1.2.
// The accepted event is the bare model (AcceptedValue).
func Event(e decide.Event, index int) (Record, error) {
	topic, ok := eventTopics[e.Kind]
	if !ok {
		return Record{}, fmt.Errorf("wire: no topic for event %s", e.Kind)
	}
	key := e.NodeID.String()
	if e.Kind == decide.EventAccepted {
		b, err := AcceptedValue(e)
		if err != nil {
			return Record{}, err
		}
		return Record{Kind: "event", Topic: topic, Key: key, Value: b, CorrelationID: e.CorrelationID}, nil
	}
	opts := []envelope.Option{
		envelope.WithEnvelopeID(envelope.DeterministicID(e.CorrelationID, "Model"+string(e.Kind), index)),
		envelope.WithCorrelationID(e.CorrelationID),
		envelope.WithTimestamp(e.EmittedAt),
		envelope.WithEventType(envelope.EventTypeFromTopic(topic)),
		envelope.WithTag("causation_id", e.CausationID.String()),
		envelope.WithTag("message_category", "event"),
	}
	if e.Kind == decide.EventMassExpiry {
		key = fmt.Sprintf("partition-%d", e.MassExpiry.Partition)
	}
	env, err := envelope.New(eventPayload(e), opts...)
	if err != nil {
		return Record{}, fmt.Errorf("wire: encode %s: %w", e.Kind, err)
	}
	b, err := env.Encode()
	if err != nil {
		return Record{}, fmt.Errorf("wire: encode %s: %w", e.Kind, err)
	}
	return Record{Kind: "event", Topic: topic, Key: key, Value: b, CorrelationID: e.CorrelationID, MessageID: env.EnvelopeID}, nil
}

// AcceptedValue is the record value of an accepted event: the bare
// ModelNodeRegistrationAccepted, not an envelope, written as Python's
// json.dumps writes the model (fields in model order, ", " and ": "
// separators, pydantic timestamps):
//
//	{"entity_id": "…", "node_id": "…", "correlation_id": "…", "causation_id": "…", "emitted_at": "…", "ack_deadline": "…"}
//
// Both of its Python readers take it as it is: the package's model
// (extra="forbid", so no envelope around it) and a node's ack listener
// (MixinNodeIntrospection._on_registration_accepted), which reads entity_id
// or node_id and correlation_id from the JSON top level and ignores a
// record without them. No envelope can satisfy both.
func AcceptedValue(e decide.Event) ([]byte, error) {
	b, err := json.Marshal(eventPayload(e))
	if err == nil {
		b, err = pyjson.Reformat(b)
	}
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", e.Kind, err)
	}
	return b, nil
}

// Intent encodes an intent as a protobuf onex.fleet.v1.Intent
// (pipeline.MarshalIntent) with the content type that says so; a
// heartbeat's or ack's projection update travels as fields, the other
// payloads as their JSON. The record keeps the envelope's identity: the
// intent id as envelope id (and message_id header), the correlation id,
// now as its time. st is the node's state after the decision: updates carry
// its complete mutable state so that intents commute (see
// pipeline.ProjectionUpdate).
func Intent(in decide.Intent, st *decide.NodeState, now time.Time) (Record, error) {
	pi := &pipeline.Intent{
		IntentID: in.ID, IntentType: string(in.Type), Target: in.Target, Priority: 1,
		NodeID: in.NodeID, Sequence: in.Sequence, RegistrationAttemptID: in.AttemptID, Refresh: in.Refresh,
	}
	if in.Type == decide.IntentPostgresUpdate {
		pi.Update = &pipeline.PostgresUpdatePayload{
			IntentType: pipeline.PostgresUpdate, CorrelationID: in.CorrelationID,
			EntityID: in.NodeID, Domain: decide.Domain, Updates: mutable(st, in.Update.UpdatedAt),
		}
	} else {
		payload, err := intentPayload(in)
		if err != nil {
			return Record{}, err
		}
		if pi.Payload, err = json.Marshal(payload); err != nil {
			return Record{}, fmt.Errorf("wire: encode intent payload: %w", err)
		}
	}
	r := pipeline.IntentRecord{Intent: pi, EnvelopeID: in.ID, CreatedAt: now.UTC().Truncate(time.Microsecond), CorrelationID: in.CorrelationID}
	rec := Record{Kind: "intent", IntentType: string(in.Type), Topic: topics.RegistrationIntents, Key: in.NodeID.String(),
		CorrelationID: in.CorrelationID, MessageID: in.ID, ContentType: pipeline.IntentContentType}
	b, err := []byte(nil), errWritesJSON
	if !pipeline.WritesJSON() {
		b, err = pipeline.MarshalIntent(r)
	}
	if err != nil {
		// Asked to write JSON (ONEX_INTERNAL_WIRE=json), or a string that is
		// no valid UTF-8 (protobuf refuses it), which can only come from a
		// node's data: write the JSON form, which every reader takes, rather
		// than lose the intent.
		if b, err = pipeline.MarshalIntentJSON(r); err != nil {
			return Record{}, fmt.Errorf("wire: encode intent: %w", err)
		}
		rec.ContentType = pipeline.ContentTypeJSON
	}
	rec.Value = b
	return rec, nil
}

// errWritesJSON stands for the protobuf encoding not tried: the process
// writes its internal records as JSON (pipeline.WritesJSON).
var errWritesJSON = errors.New("wire: internal records are written as JSON")

func mutable(st *decide.NodeState, updatedAt time.Time) pipeline.ProjectionUpdate {
	return pipeline.ProjectionUpdate{
		CurrentState:             string(st.State),
		AckDeadline:              pipeline.TP(st.AckDeadline),
		LivenessDeadline:         pipeline.TP(st.LivenessDeadline),
		LastHeartbeatAt:          pipeline.TP(st.LastHeartbeatAt),
		AckTimeoutEmittedAt:      pipeline.TP(st.AckTimeoutEmittedAt),
		LivenessTimeoutEmittedAt: pipeline.TP(st.LivenessTimeoutEmittedAt),
		UpdatedAt:                pipeline.T(updatedAt),
		NodeType:                 st.NodeType,
		RegisteredAt:             pipeline.T(st.RegisteredAt),
		LastAppliedEventID:       st.AttemptID,
	}
}

// intentPayload is the JSON payload of an intent other than an update.
func intentPayload(in decide.Intent) (any, error) {
	switch in.Type {
	case decide.IntentPostgresUpsert:
		r := in.Upsert
		caps := r.Capabilities
		if len(caps) == 0 {
			caps = json.RawMessage(`{}`)
		}
		p := pipeline.PostgresUpsertPayload{
			IntentType: pipeline.PostgresUpsert, CorrelationID: in.CorrelationID,
			Record: pipeline.ProjectionRecord{
				EntityID: r.EntityID, CurrentState: string(r.CurrentState), Domain: r.Domain, NodeType: r.NodeType,
				Data: pipeline.ProjectionData{
					NodeVersion: r.NodeVersion, Capabilities: caps,
					IntentTypes: []string{}, Protocols: []string{}, CapabilityTags: nonNilSlice(r.CapabilityTags),
					AckDeadline: pipeline.TP(r.AckDeadline), LivenessDeadline: pipeline.TP(r.LivenessDeadline),
					LastHeartbeatAt: pipeline.TP(r.LastHeartbeatAt), LastAppliedEventID: r.LastAppliedEventID,
					RegisteredAt: pipeline.T(r.RegisteredAt), UpdatedAt: pipeline.T(r.UpdatedAt),
					CorrelationID: r.CorrelationID, NodeName: r.NodeName, Endpoints: nonNilMap(r.Endpoints),
					IntrospectionExtras: r.Extras,
				},
			},
		}
		if d := r.Declared; d != nil {
			data := &p.Record.Data
			data.ContractType, data.ContractVersion = d.ContractType, d.ContractVersion
			data.IntentTypes, data.Protocols = nonNilSlice(d.IntentTypes), nonNilSlice(d.Protocols)
			data.SubscribeTopics, data.PublishTopics = d.SubscribeTopics, d.PublishTopics
		}
		return p, nil
	case decide.IntentConsulRegister:
		return snapshot.ConsulPayload(in.Register, in.NodeID, in.CorrelationID), nil
	case decide.IntentConsulDeregister:
		return pipeline.ConsulDeregisterPayload{
			IntentType: pipeline.ConsulDeregister, CorrelationID: in.CorrelationID,
			NodeID: in.NodeID.String(), ServiceID: in.Deregister.ServiceID,
		}, nil
	}
	return nil, fmt.Errorf("wire: unknown intent type %q", in.Type)
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Topics encodes a change of a node's entry in the topic catalog's view: a
// record on the compacted node-topics topic (pipeline.NodeTopics), or a
// tombstone when the node no longer has an entry.
func Topics(c *decide.TopicsChange) (Record, error) {
	r := Record{Kind: "topics", Topic: topics.NodeTopics, Key: c.NodeID.String()}
	if t := c.Topics; t != nil {
		b, err := pipeline.EncodeNodeTopics(pipeline.NodeTopics{NodeID: t.NodeID, NodeType: t.NodeType,
			SubscribeTopics: t.SubscribeTopics, PublishTopics: t.PublishTopics, Sequence: t.Sequence})
		if err != nil {
			return Record{}, fmt.Errorf("wire: encode node topics: %w", err)
		}
		r.Value = b
	}
	return r, nil
}

// Snapshot encodes the node's snapshot record (package snapshot).
// Its value is the bare ModelRegistrationSnapshot, its only header the
// reducer state.
func Snapshot(st *decide.NodeState, createdAt time.Time) (Record, error) {
	rec, err := snapshot.Encode(st, createdAt)
	if err != nil {
		return Record{}, fmt.Errorf("wire: %w", err)
	}
	return Record{Kind: "snapshot", Topic: topics.RegistrationSnapshots, Key: st.NodeID.String(), Value: rec.Value, Headers: rec.Headers()}, nil
}

// RestoreState decodes the reducer state carried by a snapshot record: its
// value and its pipeline.HeaderReducerState header (nil for a record written
// before the state moved into the header, whose value carries it). A
// tombstone returns (nil, nil).
func RestoreState(value, state []byte) (*decide.NodeState, error) {
	st, err := snapshot.Decode(value, state)
	if err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}
	return st, nil
}
