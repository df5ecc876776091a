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
	"github.com/omninode/onex-fleet/pkg/registration"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// ReducerInputMessageType is the protobuf message of a reducer input record
// (proto/onex/fleet/v1/reducer_input.proto).
var ReducerInputMessageType = string((&fleetv1.ReducerInput{}).ProtoReflect().Descriptor().FullName())

// ReducerInputContentType is the content type of a reducer input record the
// orchestrator writes in protobuf.
var ReducerInputContentType = ProtobufContentType(ReducerInputMessageType)

// HeartbeatInput is a node heartbeat as the orchestrator's ingress decoded
// and validated it: what the reducer's decision needs of it, nothing more.
type HeartbeatInput struct {
	NodeID uuid.UUID
	// Timestamp is the payload's timestamp with the UTC offset the node
	// wrote (envelope.ParseTime's form: time.UTC for +00:00).
	Timestamp time.Time
	// CorrelationID is the payload's correlation_id; nil when it had none.
	CorrelationID *uuid.UUID
}

// NewHeartbeatInput is what the reducer input carries of a heartbeat ingress
// decoded: the one place that says which fields the decision takes.
func NewHeartbeatInput(h *registration.HeartbeatEvent) *HeartbeatInput {
	in := &HeartbeatInput{NodeID: h.NodeID, Timestamp: h.Timestamp.Time}
	if h.CorrelationID != nil {
		c := *h.CorrelationID
		in.CorrelationID = &c
	}
	return in
}

// maxUTCOffset bounds a UTC offset (envelope.ParseTime allows ±23:59).
const maxUTCOffset = 24 * 60 * 60

// MarshalReducerInput encodes a reducer input as the protobuf record value
// (fleetv1.ReducerInput): the heartbeat's fields when ri.Heartbeat is set,
// otherwise ri.Value byte for byte.
func MarshalReducerInput(ri ReducerInput) ([]byte, error) {
	b, err := proto.Marshal(ri.Proto())
	if err != nil {
		return nil, fmt.Errorf("reducer input: %w", err)
	}
	return b, nil
}

// Proto returns ri as the protobuf message, for MarshalReducerInput and for
// tools that print it (protojson).
func (ri ReducerInput) Proto() *fleetv1.ReducerInput {
	m := &fleetv1.ReducerInput{Topic: ri.Topic}
	if !ri.ReceivedAt.IsZero() {
		m.ReceivedAt = timestamppb.New(ri.ReceivedAt.Time)
	}
	if h := ri.Heartbeat; h != nil {
		_, off := h.Timestamp.Zone()
		hb := &fleetv1.Heartbeat{NodeId: h.NodeID.String(), Timestamp: timestamppb.New(h.Timestamp),
			TimestampUtcOffsetSeconds: int32(off)}
		if h.CorrelationID != nil {
			hb.CorrelationId = h.CorrelationID.String()
		}
		m.Body = &fleetv1.ReducerInput_Heartbeat{Heartbeat: hb}
		return m
	}
	m.Body = &fleetv1.ReducerInput_RecordValue{RecordValue: ri.Value}
	return m
}

// UnmarshalReducerInput decodes a protobuf reducer input record value and
// checks what the reducer relies on: a body, and for a heartbeat a node id
// other than the nil UUID, a timestamp in range and well-formed ids. The
// input itself (value, topic, received_at) is checked by the reducer, as for
// the JSON form.
func UnmarshalReducerInput(b []byte) (ReducerInput, error) {
	var m fleetv1.ReducerInput
	if err := proto.Unmarshal(b, &m); err != nil {
		return ReducerInput{}, fmt.Errorf("reducer input: not a %s: %w", ReducerInputMessageType, err)
	}
	return ReducerInputFromProto(&m)
}

// ReducerInputFromProto converts the protobuf message, with the checks of
// UnmarshalReducerInput.
func ReducerInputFromProto(m *fleetv1.ReducerInput) (ReducerInput, error) {
	ri := ReducerInput{Topic: m.GetTopic()}
	if at := m.GetReceivedAt(); at != nil {
		t, err := ProtoTime(at)
		if err != nil {
			return ReducerInput{}, fmt.Errorf("reducer input: field %q: %w", "received_at", err)
		}
		ri.ReceivedAt = envelope.Time{Time: t}
	}
	switch body := m.GetBody().(type) {
	case *fleetv1.ReducerInput_RecordValue:
		ri.Value = json.RawMessage(body.RecordValue)
	case *fleetv1.ReducerInput_Heartbeat:
		h, err := heartbeatInput(body.Heartbeat)
		if err != nil {
			return ReducerInput{}, fmt.Errorf("reducer input: %w", err)
		}
		ri.Heartbeat = h
	default:
		return ReducerInput{}, fmt.Errorf("reducer input: field %q: missing (neither record_value nor heartbeat)", "body")
	}
	return ri, nil
}

func heartbeatInput(m *fleetv1.Heartbeat) (*HeartbeatInput, error) {
	id, err := uuid.Parse(m.GetNodeId())
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", "heartbeat.node_id", err)
	}
	if id == uuid.Nil {
		return nil, fmt.Errorf("field %q: the nil UUID is not a node id", "heartbeat.node_id")
	}
	if m.GetTimestamp() == nil {
		return nil, fmt.Errorf("field %q: missing", "heartbeat.timestamp")
	}
	ts, err := ProtoTime(m.GetTimestamp())
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", "heartbeat.timestamp", err)
	}
	off := m.GetTimestampUtcOffsetSeconds()
	if off <= -maxUTCOffset || off >= maxUTCOffset {
		return nil, fmt.Errorf("field %q: %d is not a UTC offset", "heartbeat.timestamp_utc_offset_seconds", off)
	}
	if off != 0 {
		// As envelope.ParseTime builds it, so the state and snapshots
		// write the time as the JSON form's decoding would.
		ts = ts.In(time.FixedZone("", int(off)))
	}
	h := &HeartbeatInput{NodeID: id, Timestamp: ts}
	if c := m.GetCorrelationId(); c != "" {
		corr, err := uuid.Parse(c)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", "heartbeat.correlation_id", err)
		}
		h.CorrelationID = &corr
	}
	return h, nil
}

// DecodeReducerInput reads one record of the reducer input topic in either
// form, by its content type (HeaderContentType): protobuf
// (ReducerInputContentType), or JSON ({"topic", "received_at", "value"})
// when the header says application/json or is absent, as on every record
// written before the orchestrator wrote protobuf. A protobuf record of
// another message, or any other content type, is an error.
func DecodeReducerInput(headers []*sarama.RecordHeader, value []byte) (ReducerInput, error) {
	ct := ContentType(headers)
	if IsJSON(ct) {
		var ri ReducerInput
		if err := json.Unmarshal(value, &ri); err != nil {
			return ReducerInput{}, fmt.Errorf("reducer input is not valid JSON: %w", err)
		}
		return ri, nil
	}
	if err := CheckProtobuf(ct, ReducerInputMessageType); err != nil {
		return ReducerInput{}, fmt.Errorf("reducer input: %w", err)
	}
	return UnmarshalReducerInput(value)
}
