// Package ingress is the orchestrator's front door: it checks every record
// ONEX nodes publish on the node-facing topics (introspection, ack,
// heartbeat) and republishes the good ones, byte for byte, as canonical
// reducer input keyed by node_id. Bad records are returned as content errors
// that name what is wrong; the bus dead-letters them and the partition moves
// on.
//
// Nodes may run a newer Python package than the fleet knows, so records are
// read tolerantly (envelope.DecodeTolerant, registration.Decode*Tolerant):
// a field the fleet does not know, at any level of the envelope or the
// payload, is never a reason to reject a record. It is counted
// (onex_unknown_fields_total) and logged, and the record goes on unchanged.
//
// Operators' commands (deregister, evict) come in through the same door
// (OperatorHandler, operator.go): read strictly, since the fleet's own tools
// write them, and forwarded to the reducer input like node messages.
package ingress

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Rejection reasons: the fixed label set of the ingress metric. Each rejected
// record has exactly one.
const (
	ReasonOversized          = "oversized"
	ReasonEmpty              = "empty"
	ReasonMalformedJSON      = "malformed_json"
	ReasonInvalidEnvelope    = "invalid_envelope"
	ReasonUnsupportedVersion = "unsupported_version"
	ReasonWrongEventType     = "wrong_event_type"
	ReasonInvalidPayload     = "invalid_payload"
	ReasonNaiveTimestamp     = "naive_timestamp"
	ReasonFutureTimestamp    = "timestamp_in_future"
	ReasonStaleTimestamp     = "timestamp_too_old"
	ReasonNodeID             = "invalid_node_id"
	ReasonUnknownTopic       = "unknown_topic"
)

// Reasons lists every rejection reason.
var Reasons = []string{ReasonOversized, ReasonEmpty, ReasonMalformedJSON, ReasonInvalidEnvelope, ReasonUnsupportedVersion,
	ReasonWrongEventType, ReasonInvalidPayload, ReasonNaiveTimestamp, ReasonFutureTimestamp, ReasonStaleTimestamp,
	ReasonNodeID, ReasonUnknownTopic}

// Limits bound what ingress accepts.
type Limits struct {
	// MaxBytes is the largest record value accepted.
	MaxBytes int
	// MaxFutureSkew is how far a payload timestamp may be ahead of the
	// orchestrator's clock. A heartbeat timestamp sets the node's liveness
	// deadline (spec 4.5), so a timestamp from a node whose clock runs far
	// ahead would keep a dead node alive for that long.
	MaxFutureSkew time.Duration
	// MaxAge, when > 0, rejects payload timestamps older than that. Zero (the
	// default) accepts any age: see DefaultLimits.
	MaxAge time.Duration
	// HeartbeatWindow, when > 0, is the reducer's liveness window: a
	// heartbeat older than that is skipped, not forwarded (stale.go). Zero
	// forwards every heartbeat.
	HeartbeatWindow time.Duration
}

// DefaultLimits: 1 MiB values, timestamps at most 5 minutes ahead, no bound
// on age. Old timestamps are legitimate: a Python node re-sends its cached
// introspection (timestamp up to 300 s old, spec 1.7) on every request, the
// reducer decides on the orchestrator's receive time rather than the payload
// timestamp, it ignores a heartbeat older than the newest it has seen, and a
// record replayed from the DLQ keeps its original timestamp.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 1 << 20, MaxFutureSkew: 5 * time.Minute}
}

// Accepted is what ingress learned from a valid record.
type Accepted struct {
	// NodeID is the payload's node_id: the reducer input key.
	NodeID uuid.UUID
	// CorrelationID is the envelope's correlation_id, else the payload's.
	CorrelationID uuid.UUID
	// NodeType is the payload's node_type ("" for an ack, which has none).
	NodeType registration.NodeKind
	// Heartbeat is what the reducer decides on of a heartbeat (nil for the
	// other topics): the reducer input carries it instead of the value, so
	// the reducer does not decode the JSON again.
	Heartbeat *pipeline.HeartbeatInput
	// Unknown lists the members of the record the fleet does not know, with
	// their JSON paths in the record value ("payload.flow_window",
	// "payload.declared_capabilities.new_thing", "metadata.baggage"), in
	// the order met; nil for most records.
	Unknown []pyjson.Unknown
	// Timestamp is the payload's timestamp.
	Timestamp time.Time
}

// Validate checks one record value consumed from the node-facing topic
// (its registry name, not a test's renamed topic). It returns what it learned,
// or a rejection reason (one of Reasons) and an error that names the offending
// field. Every error is a content error (infraerr.IsContent): retrying
// the record cannot help. now is the orchestrator's clock.
//
// The envelope and the payload are decoded tolerantly: unknown fields, at
// any level, are accepted and returned in Accepted.Unknown; everything else
// the strict decoders check (types, required fields, UUIDs, timestamps,
// ranges, enumerations) still rejects the record, naming the field.
func Validate(topic string, value []byte, now time.Time, lim Limits) (Accepted, string, error) {
	return validate(topic, value, now, lim, true)
}

// validate is Validate; with tolerant false it decodes strictly, as ingress
// did before it accepted unknown fields (the tests' reference).
func validate(topic string, value []byte, now time.Time, lim Limits, tolerant bool) (Accepted, string, error) {
	switch topic {
	case topics.NodeIntrospection, topics.NodeRegistrationAcked, topics.NodeHeartbeat:
	default:
		return Accepted{}, ReasonUnknownTopic, infraerr.Content("topic", fmt.Sprintf("%q is not a node-facing topic ingress validates", topic))
	}
	if lim.MaxBytes > 0 && len(value) > lim.MaxBytes {
		return Accepted{}, ReasonOversized, infraerr.Content("value", fmt.Sprintf("record value is %d bytes, over the %d-byte limit", len(value), lim.MaxBytes))
	}
	if len(value) == 0 {
		return Accepted{}, ReasonEmpty, infraerr.Content("value", "empty record value (an ONEX envelope is required)")
	}
	var (
		env     *envelope.Envelope
		unknown []pyjson.Unknown
		err     error
	)
	if tolerant {
		env, unknown, err = envelope.DecodeTolerant(value)
	} else {
		env, err = envelope.Decode(value)
	}
	if err != nil {
		if errors.Is(err, envelope.ErrSyntax) {
			// Not wrapped in an *infraerr.Error so that the DLQ error_type
			// stays JSONDecodeError, as in Python; infraerr classifies the
			// wrapped *json.SyntaxError as a content error.
			return Accepted{}, ReasonMalformedJSON, fmt.Errorf("record value is not valid JSON: %w", err)
		}
		return Accepted{}, ReasonInvalidEnvelope, infraerr.ContentWrap("invalid envelope", err)
	}
	if v := env.EnvelopeVersion; v.Major != envelope.EnvelopeVersion.Major {
		return Accepted{}, ReasonUnsupportedVersion, infraerr.Content("envelope_version",
			fmt.Sprintf("%s is not supported (this orchestrator reads envelope version %d.x)", v, envelope.EnvelopeVersion.Major))
	}
	if v := env.OnexVersion; v.Major != envelope.Version100.Major {
		return Accepted{}, ReasonUnsupportedVersion, infraerr.Content("onex_version",
			fmt.Sprintf("%s is not supported (this orchestrator reads ONEX version %d.x)", v, envelope.Version100.Major))
	}
	// A Python consumer routes by a non-empty event_type before the topic
	// (spec 1.6): a record whose event_type names another topic would be
	// handled as that other message type, so it is refused here.
	if et := env.EventType; et != nil && *et != "" && *et != envelope.EventTypeFromTopic(topic) {
		return Accepted{}, ReasonWrongEventType, infraerr.Content("event_type",
			fmt.Sprintf("%q does not match topic %s (want %q or null)", *et, topic, envelope.EventTypeFromTopic(topic)))
	}

	// Every node type of EnumNodeKind is valid here, runtime_host
	// included: a node type the registry does not register is not a
	// malformed record. The reducer answers it (an introspection with the
	// rejected event, docs/reducer.md); only malformed records are
	// dead-lettered.
	var (
		acc     Accepted
		ts      time.Time
		payload []pyjson.Unknown
	)
	switch topic {
	case topics.NodeIntrospection:
		ev, u, err := envelope.DecodePayloadTolerant(env, pick(tolerant, registration.DecodeIntrospectionEventTolerant, registration.DecodeIntrospectionEvent))
		if err != nil {
			return Accepted{}, payloadReason(err), infraerr.ContentWrap("invalid introspection payload", err)
		}
		acc = Accepted{NodeID: ev.NodeID, CorrelationID: ev.CorrelationID, NodeType: ev.NodeType}
		ts, payload = ev.Timestamp.Time, u
	case topics.NodeHeartbeat:
		hb, u, err := envelope.DecodePayloadTolerant(env, pick(tolerant, registration.DecodeHeartbeatEventTolerant, registration.DecodeHeartbeatEvent))
		if err != nil {
			return Accepted{}, payloadReason(err), infraerr.ContentWrap("invalid heartbeat payload", err)
		}
		acc = Accepted{NodeID: hb.NodeID, NodeType: hb.NodeType, Heartbeat: pipeline.NewHeartbeatInput(hb)}
		if hb.CorrelationID != nil {
			acc.CorrelationID = *hb.CorrelationID
		}
		ts, payload = hb.Timestamp.Time, u
	case topics.NodeRegistrationAcked:
		ack, u, err := envelope.DecodePayloadTolerant(env, pick(tolerant, registration.DecodeRegistrationAckedTolerant, registration.DecodeRegistrationAcked))
		if err != nil {
			return Accepted{}, payloadReason(err), infraerr.ContentWrap("invalid ack payload", err)
		}
		acc = Accepted{NodeID: ack.NodeID, CorrelationID: ack.CorrelationID}
		ts, payload = ack.Timestamp.Time, u
	}
	if len(unknown)+len(payload) > 0 {
		acc.Unknown = append(unknown, payload...)
	}
	if env.CorrelationID != nil && *env.CorrelationID != uuid.Nil {
		acc.CorrelationID = *env.CorrelationID
	}
	// The nil UUID parses but names no node; the fleet's internal messages
	// treat it as "missing", so it must not get that far.
	if acc.NodeID == uuid.Nil {
		return Accepted{}, ReasonNodeID, infraerr.Content("payload.node_id", "the nil UUID is not a node id")
	}
	if lim.MaxFutureSkew > 0 && ts.After(now.Add(lim.MaxFutureSkew)) {
		return Accepted{}, ReasonFutureTimestamp, infraerr.Content("payload.timestamp",
			fmt.Sprintf("%s is %s ahead of the orchestrator clock (limit %s)", envelope.FormatTime(ts), ts.Sub(now).Round(time.Second), lim.MaxFutureSkew))
	}
	if lim.MaxAge > 0 && ts.Before(now.Add(-lim.MaxAge)) {
		return Accepted{}, ReasonStaleTimestamp, infraerr.Content("payload.timestamp",
			fmt.Sprintf("%s is %s old (limit %s)", envelope.FormatTime(ts), now.Sub(ts).Round(time.Second), lim.MaxAge))
	}
	acc.Timestamp = ts
	return acc, "", nil
}

// pick returns the tolerant payload decoder, or the strict one in its form.
func pick[T any](tolerant bool, t func([]byte) (*T, []pyjson.Unknown, error), strict func([]byte) (*T, error)) func([]byte) (*T, []pyjson.Unknown, error) {
	if tolerant {
		return t
	}
	return func(b []byte) (*T, []pyjson.Unknown, error) { v, err := strict(b); return v, nil, err }
}

func payloadReason(err error) string {
	if errors.Is(err, envelope.ErrNaiveTime) {
		return ReasonNaiveTimestamp
	}
	return ReasonInvalidPayload
}
