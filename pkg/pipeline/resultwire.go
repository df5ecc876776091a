package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/topics"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// EffectResultMessageType is the protobuf message of an effect result record
// (proto/onex/fleet/v1/effect_result.proto).
var EffectResultMessageType = string((&fleetv1.EffectResult{}).ProtoReflect().Descriptor().FullName())

// EffectResultContentType is the content type of an effect result record in
// protobuf.
var EffectResultContentType = ProtobufContentType(EffectResultMessageType)

// effectResultEventType is the JSON form's default envelope event_type, as
// the effects wrote it on the results topic.
var effectResultEventType = envelope.EventTypeFromTopic(topics.EffectResults)

// EffectResultRecord is one record of the effect-results topic in either
// form: the result and the envelope fields its consumers read. The
// result's CorrelationID is the record's correlation id too (the JSON form
// wrote it in the payload and in the envelope).
type EffectResultRecord struct {
	Result *EffectResult
	// EnvelopeID is the id the effect derived from the intent and its
	// delivery attempt (the record's message_id header), so a redelivered
	// intent yields the same id.
	EnvelopeID uuid.UUID
	// CreatedAt is when the effect wrote the result (the JSON form's
	// envelope_timestamp); the zero time when the record has none.
	CreatedAt time.Time
}

// MarshalEffectResult encodes an effect result record as the protobuf
// record value (fleetv1.EffectResult). It fails for a string that is no
// valid UTF-8, which protobuf refuses; the writer then falls back to
// MarshalEffectResultJSON, which every reader takes.
func MarshalEffectResult(r EffectResultRecord) ([]byte, error) {
	m, err := r.Proto()
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("effect result: %w", err)
	}
	return b, nil
}

// Proto returns r as the protobuf message, for MarshalEffectResult and for
// tools that print it (protojson).
func (r EffectResultRecord) Proto() (*fleetv1.EffectResult, error) {
	m, err := EffectResultProto(r.Result)
	if err != nil {
		return nil, err
	}
	m.EnvelopeId = UUIDText(r.EnvelopeID)
	if !r.CreatedAt.IsZero() {
		m.CreatedAt = timestamppb.New(r.CreatedAt)
	}
	return m, nil
}

// EffectResultProto returns res as the protobuf message without the
// envelope fields: the form the orchestrator's aggregation state keeps an
// intent's last result in.
func EffectResultProto(res *EffectResult) (*fleetv1.EffectResult, error) {
	if res == nil {
		return nil, fmt.Errorf("effect result: no result")
	}
	return &fleetv1.EffectResult{
		IntentId: UUIDText(res.IntentID), IntentType: res.IntentType, Backend: res.Backend, NodeId: UUIDText(res.NodeID),
		CorrelationId: UUIDText(res.CorrelationID), RegistrationAttemptId: UUIDText(res.RegistrationAttemptID),
		Sequence: res.Sequence, Attempt: int32(res.Attempt), Success: res.Success, Stale: res.Stale,
		Error: res.Error, ErrorCode: res.ErrorCode, Retriable: res.Retriable, DurationMs: res.DurationMS,
		BackendId: res.BackendID, CompletedAt: requiredTime(res.Completed),
	}, nil
}

// UnmarshalEffectResult decodes a protobuf effect result record value and
// checks what the orchestrator relies on, as the JSON form's decoding
// does: an intent id, node id and intent type; well-formed ids and times;
// a finite duration (the registration result carries it in JSON, which has
// no NaN). An empty backend is the intent type's (Backend).
func UnmarshalEffectResult(b []byte) (EffectResultRecord, error) {
	var m fleetv1.EffectResult
	if err := proto.Unmarshal(b, &m); err != nil {
		return EffectResultRecord{}, fmt.Errorf("effect result: not a %s: %w", EffectResultMessageType, err)
	}
	return EffectResultRecordFromProto(&m)
}

// EffectResultRecordFromProto converts the protobuf message, with the
// checks of UnmarshalEffectResult.
func EffectResultRecordFromProto(m *fleetv1.EffectResult) (EffectResultRecord, error) {
	res := &EffectResult{
		IntentType: m.GetIntentType(), Backend: m.GetBackend(), Sequence: m.GetSequence(), Attempt: int(m.GetAttempt()),
		Success: m.GetSuccess(), Stale: m.GetStale(), Retriable: m.GetRetriable(), DurationMS: m.GetDurationMs(),
		BackendID: m.GetBackendId(),
	}
	if m.Error != nil {
		s := m.GetError()
		res.Error = &s
	}
	if m.ErrorCode != nil {
		s := m.GetErrorCode()
		res.ErrorCode = &s
	}
	r := EffectResultRecord{Result: res}
	var err error
	for _, f := range []struct {
		name, text string
		dst        *uuid.UUID
	}{
		{"intent_id", m.GetIntentId(), &res.IntentID},
		{"node_id", m.GetNodeId(), &res.NodeID},
		{"correlation_id", m.GetCorrelationId(), &res.CorrelationID},
		{"registration_attempt_id", m.GetRegistrationAttemptId(), &res.RegistrationAttemptID},
		{"envelope_id", m.GetEnvelopeId(), &r.EnvelopeID},
	} {
		if *f.dst, err = ParseUUIDText(f.text); err != nil {
			return EffectResultRecord{}, fmt.Errorf("effect result: field %q: %w", f.name, err)
		}
	}
	if at := m.GetCompletedAt(); at != nil {
		t, err := ProtoTime(at)
		if err != nil {
			return EffectResultRecord{}, fmt.Errorf("effect result: field %q: %w", "completed_at", err)
		}
		res.Completed = envelope.Time{Time: t}
	}
	if at := m.GetCreatedAt(); at != nil {
		if r.CreatedAt, err = ProtoTime(at); err != nil {
			return EffectResultRecord{}, fmt.Errorf("effect result: field %q: %w", "created_at", err)
		}
	}
	if err := checkEffectResult(res); err != nil {
		return EffectResultRecord{}, err
	}
	return r, nil
}

// checkEffectResult checks the fields the orchestrator relies on, in
// either form, and gives a result without a backend its intent type's.
func checkEffectResult(res *EffectResult) error {
	switch {
	case res.IntentID == uuid.Nil:
		return fmt.Errorf("effect result: field %q: missing", "intent_id")
	case res.NodeID == uuid.Nil:
		return fmt.Errorf("effect result: field %q: missing", "node_id")
	case res.IntentType == "":
		return fmt.Errorf("effect result: field %q: missing", "intent_type")
	case math.IsNaN(res.DurationMS) || math.IsInf(res.DurationMS, 0):
		return fmt.Errorf("effect result: field %q: %v is not a duration", "duration_ms", res.DurationMS)
	}
	if res.Backend == "" {
		res.Backend = Backend(res.IntentType)
	}
	return nil
}

// DecodeEffectResultRecord reads one record of the effect-results topic in
// either form, by its content type (HeaderContentType): protobuf
// (EffectResultContentType), or the JSON envelope around a
// pipeline.EffectResult when the header says application/json or is
// absent, as on every record written before the effects wrote protobuf.
// Unknown fields are accepted in both (a newer effect may add some). A
// protobuf record of another message, or any other content type, is an
// error.
func DecodeEffectResultRecord(headers []*sarama.RecordHeader, value []byte) (EffectResultRecord, error) {
	ct := ContentType(headers)
	if IsJSON(ct) {
		return decodeEffectResultJSON(value)
	}
	if err := CheckProtobuf(ct, EffectResultMessageType); err != nil {
		return EffectResultRecord{}, fmt.Errorf("effect result: %w", err)
	}
	return UnmarshalEffectResult(value)
}

func decodeEffectResultJSON(value []byte) (EffectResultRecord, error) {
	env, err := envelope.Decode(value)
	if err != nil {
		return EffectResultRecord{}, fmt.Errorf("effect result envelope: %w", err)
	}
	var res EffectResult
	if err := json.Unmarshal(env.Payload, &res); err != nil {
		return EffectResultRecord{}, fmt.Errorf("effect result payload: %w", err)
	}
	if err := checkEffectResult(&res); err != nil {
		return EffectResultRecord{}, err
	}
	return EffectResultRecord{Result: &res, EnvelopeID: env.EnvelopeID, CreatedAt: env.EnvelopeTimestamp.Time}, nil
}

// MarshalEffectResultJSON encodes an effect result record in the older
// JSON form: an ONEX envelope (envelope_id, envelope_timestamp, the
// result's correlation_id, the results topic's event_type, payload_type
// EffectResult, tag message_category=event) whose payload is the
// pipeline.EffectResult. opts follow those and override them: an effect
// adds its source_tool, and the event_type of the topic it writes when
// that is not the registry's name. It is what the effects wrote before
// protobuf, and their fallback for a result protobuf refuses.
func MarshalEffectResultJSON(r EffectResultRecord, opts ...envelope.Option) ([]byte, error) {
	if r.Result == nil {
		return nil, fmt.Errorf("effect result: no result")
	}
	all := []envelope.Option{envelope.WithEnvelopeID(r.EnvelopeID), envelope.WithCorrelationID(r.Result.CorrelationID),
		envelope.WithEventType(effectResultEventType), envelope.WithPayloadType("EffectResult"),
		envelope.WithTag("message_category", "event")}
	if !r.CreatedAt.IsZero() {
		all = append(all, envelope.WithTimestamp(r.CreatedAt))
	}
	env, err := envelope.New(r.Result, append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("effect result: %w", err)
	}
	b, err := env.Encode()
	if err != nil {
		return nil, fmt.Errorf("effect result: %w", err)
	}
	return b, nil
}
