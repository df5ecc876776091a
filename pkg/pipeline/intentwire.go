package pipeline

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/topics"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// IntentMessageType is the protobuf message of an intent record
// (proto/onex/fleet/v1/intent.proto).
var IntentMessageType = string((&fleetv1.Intent{}).ProtoReflect().Descriptor().FullName())

// IntentContentType is the content type of an intent record in protobuf.
var IntentContentType = ProtobufContentType(IntentMessageType)

// intentEventType is the JSON form's envelope event_type, as the reducer
// wrote it on the intents topic (routed records keep it: the orchestrator
// forwards the value unchanged).
var intentEventType = envelope.EventTypeFromTopic(topics.RegistrationIntents)

// IntentRecord is one record of an intent topic (registration-intents,
// postgres-intents, consul-intents) in either form: the intent and the
// envelope fields its consumers read.
type IntentRecord struct {
	Intent *Intent
	// EnvelopeID is the intent id on the reducer's record, an id of its own
	// on each of the orchestrator's re-sends.
	EnvelopeID uuid.UUID
	// CreatedAt is when the record's intent was decided or re-sent (the
	// JSON form's envelope_timestamp).
	CreatedAt time.Time
	// CorrelationID is the registration's correlation id; uuid.Nil when the
	// record has none.
	CorrelationID uuid.UUID
}

// MarshalIntent encodes an intent record as the protobuf record value
// (fleetv1.Intent). A postgres.update_registration whose Update is set is
// written as fields; any other intent carries its JSON Payload.
func MarshalIntent(r IntentRecord) ([]byte, error) {
	m, err := r.Proto()
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("intent: %w", err)
	}
	return b, nil
}

// Proto returns r as the protobuf message.
func (r IntentRecord) Proto() (*fleetv1.Intent, error) {
	in := r.Intent
	if in == nil {
		return nil, fmt.Errorf("intent: no intent")
	}
	m := &fleetv1.Intent{
		IntentId: in.IntentID.String(), IntentType: in.IntentType, NodeId: in.NodeID.String(), Sequence: in.Sequence,
		RegistrationAttemptId: UUIDText(in.RegistrationAttemptID), Attempt: int32(in.Attempt), Refresh: in.Refresh,
		Target: in.Target, Priority: int32(in.Priority), Epoch: in.Epoch,
		EnvelopeId: UUIDText(r.EnvelopeID), CorrelationId: UUIDText(r.CorrelationID),
	}
	if in.LeaseID != nil {
		m.LeaseId = in.LeaseID.String()
	}
	if !r.CreatedAt.IsZero() {
		m.CreatedAt = timestamppb.New(r.CreatedAt)
	}
	switch {
	case in.Update != nil:
		if in.IntentType != PostgresUpdate {
			return nil, fmt.Errorf("intent: a typed update payload on a %q intent", in.IntentType)
		}
		m.Payload = &fleetv1.Intent_PostgresUpdate{PostgresUpdate: postgresUpdateProto(in.Update)}
	default:
		m.Payload = &fleetv1.Intent_PayloadJson{PayloadJson: in.Payload}
	}
	return m, nil
}

func postgresUpdateProto(p *PostgresUpdatePayload) *fleetv1.PostgresUpdate {
	u := &p.Updates
	return &fleetv1.PostgresUpdate{
		CorrelationId: UUIDText(p.CorrelationID), EntityId: UUIDText(p.EntityID), Domain: p.Domain,
		CurrentState: u.CurrentState, AckDeadline: optionalTime(u.AckDeadline), LivenessDeadline: optionalTime(u.LivenessDeadline),
		LastHeartbeatAt: optionalTime(u.LastHeartbeatAt), AckTimeoutEmittedAt: optionalTime(u.AckTimeoutEmittedAt),
		LivenessTimeoutEmittedAt: optionalTime(u.LivenessTimeoutEmittedAt), UpdatedAt: requiredTime(u.UpdatedAt),
		NodeType: u.NodeType, RegisteredAt: requiredTime(u.RegisteredAt), LastAppliedEventId: UUIDText(u.LastAppliedEventID),
	}
}

// optionalTime is a nullable time on the wire: nil (null) is absent.
func optionalTime(t *envelope.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(t.Time)
}

// requiredTime is a time the JSON form always has: the zero time, which
// the projector refuses as missing, is absent.
func requiredTime(t envelope.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t.Time)
}

// UnmarshalIntent decodes a protobuf intent record value and checks what
// every consumer relies on, as DecodeIntent does for the JSON form: an
// intent id, type and node id, and a payload; and the ids and times are
// well-formed. A typed update payload is accepted only on a
// postgres.update_registration.
func UnmarshalIntent(b []byte) (IntentRecord, error) {
	var m fleetv1.Intent
	if err := proto.Unmarshal(b, &m); err != nil {
		return IntentRecord{}, fmt.Errorf("intent: not a %s: %w", IntentMessageType, err)
	}
	return IntentFromProto(&m)
}

// IntentFromProto converts the protobuf message, with the checks of
// UnmarshalIntent.
func IntentFromProto(m *fleetv1.Intent) (IntentRecord, error) {
	in := &Intent{IntentType: m.GetIntentType(), Target: m.GetTarget(), Priority: int(m.GetPriority()),
		Sequence: m.GetSequence(), Attempt: int(m.GetAttempt()), Refresh: m.GetRefresh()}
	if m.Epoch != nil {
		e := m.GetEpoch()
		in.Epoch = &e
	}
	r := IntentRecord{Intent: in}
	var err error
	for _, f := range []struct {
		name, text string
		dst        *uuid.UUID
	}{
		{"intent_id", m.GetIntentId(), &in.IntentID},
		{"node_id", m.GetNodeId(), &in.NodeID},
		{"registration_attempt_id", m.GetRegistrationAttemptId(), &in.RegistrationAttemptID},
		{"envelope_id", m.GetEnvelopeId(), &r.EnvelopeID},
		{"correlation_id", m.GetCorrelationId(), &r.CorrelationID},
	} {
		if *f.dst, err = ParseUUIDText(f.text); err != nil {
			return IntentRecord{}, fmt.Errorf("intent: field %q: %w", f.name, err)
		}
	}
	if l := m.GetLeaseId(); l != "" {
		id, err := uuid.Parse(l)
		if err != nil {
			return IntentRecord{}, fmt.Errorf("intent: field %q: %w", "lease_id", err)
		}
		in.LeaseID = &id
	}
	if at := m.GetCreatedAt(); at != nil {
		if r.CreatedAt, err = ProtoTime(at); err != nil {
			return IntentRecord{}, fmt.Errorf("intent: field %q: %w", "created_at", err)
		}
	}
	switch p := m.GetPayload().(type) {
	case *fleetv1.Intent_PayloadJson:
		if !json.Valid(p.PayloadJson) {
			return IntentRecord{}, fmt.Errorf("intent: field %q: not valid JSON", "payload_json")
		}
		in.Payload = json.RawMessage(p.PayloadJson)
	case *fleetv1.Intent_PostgresUpdate:
		if in.IntentType != PostgresUpdate {
			return IntentRecord{}, fmt.Errorf("intent: field %q: only a %s carries it, not %q", "postgres_update", PostgresUpdate, in.IntentType)
		}
		if in.Update, err = postgresUpdate(p.PostgresUpdate); err != nil {
			return IntentRecord{}, fmt.Errorf("intent: field %q: %w", "postgres_update", err)
		}
	}
	if err := checkIntent(in); err != nil {
		return IntentRecord{}, err
	}
	return r, nil
}

func postgresUpdate(m *fleetv1.PostgresUpdate) (*PostgresUpdatePayload, error) {
	p := &PostgresUpdatePayload{IntentType: PostgresUpdate, Domain: m.GetDomain()}
	u := &p.Updates
	u.CurrentState, u.NodeType = m.GetCurrentState(), m.GetNodeType()
	var err error
	for _, f := range []struct {
		name, text string
		dst        *uuid.UUID
	}{
		{"correlation_id", m.GetCorrelationId(), &p.CorrelationID},
		{"entity_id", m.GetEntityId(), &p.EntityID},
		{"last_applied_event_id", m.GetLastAppliedEventId(), &u.LastAppliedEventID},
	} {
		if *f.dst, err = ParseUUIDText(f.text); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	for _, f := range []struct {
		name string
		ts   *timestamppb.Timestamp
		dst  **envelope.Time
	}{
		{"ack_deadline", m.GetAckDeadline(), &u.AckDeadline},
		{"liveness_deadline", m.GetLivenessDeadline(), &u.LivenessDeadline},
		{"last_heartbeat_at", m.GetLastHeartbeatAt(), &u.LastHeartbeatAt},
		{"ack_timeout_emitted_at", m.GetAckTimeoutEmittedAt(), &u.AckTimeoutEmittedAt},
		{"liveness_timeout_emitted_at", m.GetLivenessTimeoutEmittedAt(), &u.LivenessTimeoutEmittedAt},
	} {
		if f.ts == nil {
			continue
		}
		t, err := ProtoTime(f.ts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = &envelope.Time{Time: t}
	}
	for _, f := range []struct {
		name string
		ts   *timestamppb.Timestamp
		dst  *envelope.Time
	}{
		{"updated_at", m.GetUpdatedAt(), &u.UpdatedAt},
		{"registered_at", m.GetRegisteredAt(), &u.RegisteredAt},
	} {
		if f.ts == nil {
			continue // the zero time, which the projector refuses as missing
		}
		t, err := ProtoTime(f.ts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = envelope.Time{Time: t}
	}
	return p, nil
}

// checkIntent checks the fields every consumer relies on.
func checkIntent(in *Intent) error {
	switch {
	case in.IntentID == uuid.Nil:
		return fmt.Errorf("intent: field %q: missing", "intent_id")
	case in.IntentType == "":
		return fmt.Errorf("intent: field %q: missing", "intent_type")
	case in.NodeID == uuid.Nil:
		return fmt.Errorf("intent: field %q: missing", "node_id")
	case in.Update == nil && (len(in.Payload) == 0 || string(in.Payload) == "null"):
		return fmt.Errorf("intent: field %q: missing", "payload")
	}
	return nil
}

// DecodeIntentRecord reads one record of an intent topic in either form, by
// its content type (HeaderContentType): protobuf (IntentContentType), or
// the JSON envelope around a pipeline.Intent when the header says
// application/json or is absent, as on every record written before the
// reducer wrote protobuf. A protobuf record of another message, or any
// other content type, is an error.
func DecodeIntentRecord(headers []*sarama.RecordHeader, value []byte) (IntentRecord, error) {
	ct := ContentType(headers)
	if IsJSON(ct) {
		return decodeIntentJSON(value)
	}
	if err := CheckProtobuf(ct, IntentMessageType); err != nil {
		return IntentRecord{}, fmt.Errorf("intent: %w", err)
	}
	return UnmarshalIntent(value)
}

func decodeIntentJSON(value []byte) (IntentRecord, error) {
	env, err := envelope.Decode(value)
	if err != nil {
		return IntentRecord{}, fmt.Errorf("intent envelope: %w", err)
	}
	in, err := DecodeIntent(env.Payload)
	if err != nil {
		return IntentRecord{}, err
	}
	r := IntentRecord{Intent: in, EnvelopeID: env.EnvelopeID, CreatedAt: env.EnvelopeTimestamp.Time}
	if env.CorrelationID != nil {
		r.CorrelationID = *env.CorrelationID
	}
	return r, nil
}

// MarshalIntentJSON encodes an intent record in the older JSON form: an
// ONEX envelope (envelope_id, envelope_timestamp, correlation_id, the
// intents topic's event_type, tag message_category=intent) whose payload is
// the pipeline.Intent, a typed update written as its JSON payload. It is
// what the reducer wrote before protobuf, byte for byte, and what tools
// print an intent as.
func MarshalIntentJSON(r IntentRecord) ([]byte, error) {
	if r.Intent == nil {
		return nil, fmt.Errorf("intent: no intent")
	}
	in := *r.Intent
	if in.Update != nil {
		b, err := json.Marshal(in.Update)
		if err != nil {
			return nil, fmt.Errorf("intent: update payload: %w", err)
		}
		in.Payload, in.Update = b, nil
	}
	opts := []envelope.Option{envelope.WithEnvelopeID(r.EnvelopeID), envelope.WithEventType(intentEventType),
		envelope.WithTag("message_category", "intent")}
	if r.CorrelationID != uuid.Nil {
		opts = append(opts, envelope.WithCorrelationID(r.CorrelationID))
	}
	if !r.CreatedAt.IsZero() {
		opts = append(opts, envelope.WithTimestamp(r.CreatedAt))
	}
	env, err := envelope.New(in, opts...)
	if err != nil {
		return nil, fmt.Errorf("intent: %w", err)
	}
	b, err := env.Encode()
	if err != nil {
		return nil, fmt.Errorf("intent: %w", err)
	}
	return b, nil
}

// PostgresUpdatePayload returns the payload of a postgres.update_registration:
// the typed form the protobuf record carries, else its JSON payload decoded.
func (in *Intent) PostgresUpdatePayload() (*PostgresUpdatePayload, error) {
	if in.Update != nil {
		return in.Update, nil
	}
	var p PostgresUpdatePayload
	if err := json.Unmarshal(in.Payload, &p); err != nil {
		return nil, fmt.Errorf("intent payload: %w", err)
	}
	return &p, nil
}

// ReattemptIntent re-encodes an intent record value for the orchestrator's
// delivery attempt n, in the form it was in (contentType, as
// DecodeIntentRecord reads it): attempt set, envelope id and time the
// re-send's own. The protobuf form is changed field by field, so fields
// this version does not know survive; the JSON form is re-encoded from its
// envelope.
func ReattemptIntent(contentType string, value []byte, n int, envelopeID uuid.UUID, now time.Time) ([]byte, error) {
	now = now.UTC().Truncate(time.Microsecond)
	if !IsJSON(contentType) {
		if err := CheckProtobuf(contentType, IntentMessageType); err != nil {
			return nil, fmt.Errorf("intent: %w", err)
		}
		var m fleetv1.Intent
		if err := proto.Unmarshal(value, &m); err != nil {
			return nil, fmt.Errorf("intent: not a %s: %w", IntentMessageType, err)
		}
		m.Attempt, m.EnvelopeId, m.CreatedAt = int32(n), envelopeID.String(), timestamppb.New(now)
		b, err := proto.Marshal(&m)
		if err != nil {
			return nil, fmt.Errorf("intent: %w", err)
		}
		return b, nil
	}
	env, err := envelope.Decode(value)
	if err != nil {
		return nil, fmt.Errorf("intent envelope: %w", err)
	}
	var in Intent
	if err := json.Unmarshal(env.Payload, &in); err != nil {
		return nil, fmt.Errorf("intent payload: %w", err)
	}
	in.Attempt = n
	p, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("intent payload: %w", err)
	}
	env.Payload = p
	env.EnvelopeID = envelopeID
	env.EnvelopeTimestamp = envelope.Time{Time: now}
	b, err := env.Encode()
	if err != nil {
		return nil, fmt.Errorf("intent envelope: %w", err)
	}
	return b, nil
}
