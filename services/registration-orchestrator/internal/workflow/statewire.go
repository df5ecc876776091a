package workflow

import (
	"encoding/json"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// The aggregation state record: an Aggregation as a protobuf
// onex.fleet.v1.Aggregation (proto/onex/fleet/v1/aggregation.proto) with
// the content type that says so, or, in the older form a compacted topic
// keeps until a node's next state record replaces it, the Aggregation's
// JSON without a content type. Restore reads both (DecodeAggregation).

// AggregationMessageType is the protobuf message of a state record.
var AggregationMessageType = string((&fleetv1.Aggregation{}).ProtoReflect().Descriptor().FullName())

// AggregationContentType is the content type of a state record in
// protobuf.
var AggregationContentType = pipeline.ProtobufContentType(AggregationMessageType)

// deterministic makes the same aggregation the same bytes (the intents map
// in key order), so a state record can be compared and a test can expect
// it.
var deterministic = proto.MarshalOptions{Deterministic: true}

// MarshalAggregation encodes a as the protobuf state record value. It fails
// for a string that is no valid UTF-8, which protobuf refuses; the writer
// then writes the JSON form, which restore reads too.
func MarshalAggregation(a *Aggregation) ([]byte, error) {
	m, err := a.Proto()
	if err != nil {
		return nil, err
	}
	b, err := deterministic.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("aggregation: %w", err)
	}
	return b, nil
}

// Proto returns a as the protobuf message. A tracked intent's record is
// kept with its content type (application/json for an envelope).
func (a *Aggregation) Proto() (*fleetv1.Aggregation, error) {
	m := &fleetv1.Aggregation{
		NodeId: a.NodeID.String(), RegistrationAttemptId: pipeline.UUIDText(a.AttemptID), CorrelationId: pipeline.UUIDText(a.CorrelationID),
		StartedAt: optionalTimestamp(&a.StartedAt), ExpectedBackends: a.Expected, ResultsPublished: int32(a.Published),
		Intents: make(map[string]*fleetv1.Tracked, len(a.Intents)),
	}
	for b, t := range a.Intents {
		if t == nil {
			return nil, fmt.Errorf("aggregation: intent of %q: missing", b)
		}
		ct, v := t.value()
		mt := &fleetv1.Tracked{
			IntentId: t.IntentID.String(), IntentType: t.IntentType, Sequence: t.Sequence, Record: v, ContentType: ct,
			Attempt: int32(t.Attempt), Retries: int32(t.Retries), State: t.State, NextRetryAt: optionalTimestamp(t.NextRetryAt),
			DeadLettered: t.DeadLettered, RoutedPartition: t.RoutedPartition, RoutedOffset: t.RoutedOffset,
			SentAt: optionalTimestamp(t.SentAt),
		}
		if t.Last != nil {
			r, err := pipeline.EffectResultProto(t.Last)
			if err != nil {
				return nil, fmt.Errorf("aggregation: intent of %q: %w", b, err)
			}
			mt.LastResult = r
		}
		m.Intents[b] = mt
	}
	return m, nil
}

// optionalTimestamp is a time on the wire: nil or the zero time is absent.
func optionalTimestamp(t *envelope.Time) *timestamppb.Timestamp {
	if t == nil || t.IsZero() {
		return nil
	}
	return timestamppb.New(t.Time)
}

// UnmarshalAggregation decodes a protobuf state record value and checks
// what the workflow relies on: a node id; for every backend an intent id
// and type, a known state, the intent record, counts that are not
// negative, and a last result the results topic would have accepted;
// well-formed ids and times.
func UnmarshalAggregation(b []byte) (*Aggregation, error) {
	var m fleetv1.Aggregation
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("aggregation: not a %s: %w", AggregationMessageType, err)
	}
	return AggregationFromProto(&m)
}

// AggregationFromProto converts the protobuf message, with the checks of
// UnmarshalAggregation.
func AggregationFromProto(m *fleetv1.Aggregation) (*Aggregation, error) {
	a := &Aggregation{Expected: m.GetExpectedBackends(), Published: int(m.GetResultsPublished()),
		Intents: make(map[string]*Tracked, len(m.GetIntents()))}
	var err error
	for _, f := range []struct {
		name, text string
		dst        *uuid.UUID
	}{
		{"node_id", m.GetNodeId(), &a.NodeID},
		{"registration_attempt_id", m.GetRegistrationAttemptId(), &a.AttemptID},
		{"correlation_id", m.GetCorrelationId(), &a.CorrelationID},
	} {
		if *f.dst, err = pipeline.ParseUUIDText(f.text); err != nil {
			return nil, fmt.Errorf("aggregation: field %q: %w", f.name, err)
		}
	}
	if a.NodeID == uuid.Nil {
		return nil, fmt.Errorf("aggregation: field %q: missing", "node_id")
	}
	if a.Published < 0 {
		return nil, fmt.Errorf("aggregation: field %q: %d is negative", "results_published", a.Published)
	}
	at, err := timeOf(m.GetStartedAt())
	if err != nil {
		return nil, fmt.Errorf("aggregation: field %q: %w", "started_at", err)
	}
	if at != nil {
		a.StartedAt = *at
	}
	for b, mt := range m.GetIntents() {
		if b == "" {
			return nil, fmt.Errorf("aggregation: field %q: an intent without a backend", "intents")
		}
		t, err := trackedFromProto(mt)
		if err != nil {
			return nil, fmt.Errorf("aggregation: intent of %q: %w", b, err)
		}
		a.Intents[b] = t
	}
	return a, nil
}

func trackedFromProto(m *fleetv1.Tracked) (*Tracked, error) {
	t := &Tracked{IntentType: m.GetIntentType(), Sequence: m.GetSequence(), Attempt: int(m.GetAttempt()), Retries: int(m.GetRetries()),
		State: m.GetState(), DeadLettered: m.GetDeadLettered(), RoutedPartition: m.GetRoutedPartition(), RoutedOffset: m.GetRoutedOffset()}
	id, err := uuid.Parse(m.GetIntentId())
	switch {
	case m.GetIntentId() == "":
		return nil, fmt.Errorf("field %q: missing", "intent_id")
	case err != nil:
		return nil, fmt.Errorf("field %q: %w", "intent_id", err)
	case t.IntentType == "":
		return nil, fmt.Errorf("field %q: missing", "intent_type")
	case len(m.GetRecord()) == 0:
		return nil, fmt.Errorf("field %q: missing", "record")
	case t.Attempt < 0 || t.Retries < 0:
		return nil, fmt.Errorf("fields %q, %q: %d, %d: negative", "attempt", "retries", t.Attempt, t.Retries)
	}
	switch t.State {
	case StatePending, StateSucceeded, StateFailed, StateGivenUp:
	default:
		return nil, fmt.Errorf("field %q: %q is no state", "state", t.State)
	}
	t.IntentID = id
	t.setValue(m.GetContentType(), m.GetRecord())
	if r := m.GetLastResult(); r != nil {
		rec, err := pipeline.EffectResultRecordFromProto(r)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", "last_result", err)
		}
		t.Last = rec.Result
	}
	if t.NextRetryAt, err = timeOf(m.GetNextRetryAt()); err != nil {
		return nil, fmt.Errorf("field %q: %w", "next_retry_at", err)
	}
	if t.SentAt, err = timeOf(m.GetSentAt()); err != nil {
		return nil, fmt.Errorf("field %q: %w", "sent_at", err)
	}
	return t, nil
}

// timeOf is a protobuf timestamp as a UTC time (pipeline.ProtoTime), nil
// when absent.
func timeOf(ts *timestamppb.Timestamp) (*envelope.Time, error) {
	if ts == nil {
		return nil, nil
	}
	t, err := pipeline.ProtoTime(ts)
	if err != nil {
		return nil, err
	}
	return &envelope.Time{Time: t}, nil
}

// DecodeAggregation reads one state record value in either form, by its
// content type (pipeline.HeaderContentType): protobuf
// (AggregationContentType), or the JSON of an Aggregation when the header
// says application/json or is absent, as on every record written before
// the orchestrator wrote protobuf. A protobuf record of another message,
// or any other content type, is an error. A tombstone is not a value: the
// caller handles it.
func DecodeAggregation(headers []*sarama.RecordHeader, value []byte) (*Aggregation, error) {
	ct := pipeline.ContentType(headers)
	if pipeline.IsJSON(ct) {
		var a Aggregation
		if err := json.Unmarshal(value, &a); err != nil {
			return nil, fmt.Errorf("aggregation is not valid JSON: %w", err)
		}
		switch {
		case a.NodeID == uuid.Nil:
			return nil, fmt.Errorf("aggregation: field %q: missing", "node_id")
		case a.Intents == nil:
			return nil, fmt.Errorf("aggregation: field %q: missing", "intents")
		}
		return &a, nil
	}
	if err := pipeline.CheckProtobuf(ct, AggregationMessageType); err != nil {
		return nil, fmt.Errorf("aggregation: %w", err)
	}
	return UnmarshalAggregation(value)
}
