package envelope

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// Envelope is ModelEventEnvelope, the JSON object every ONEX event, command
// and intent travels in. Fields are declared in the Python serialization
// order, which is the order Encode writes them.
//
// Optional fields that Python allows to be null are pointers (nil = null).
type Envelope struct {
	// Payload is the wrapped model as raw JSON, kept byte for byte (required;
	// any JSON value, null included).
	Payload json.RawMessage
	// EnvelopeID identifies the envelope; the idempotency key of consumers
	// that deduplicate. Default: random v4.
	EnvelopeID uuid.UUID
	// EnvelopeTimestamp is the creation time. Default: the time of decoding
	// (see Decode).
	EnvelopeTimestamp Time
	// CorrelationID is the request/trace correlation id, or nil.
	CorrelationID *uuid.UUID
	// ParentEnvelopeID is the envelope_id of the envelope whose consumption
	// caused this one, or nil for a chain head (envelope version 2.2.0).
	// It must differ from EnvelopeID.
	ParentEnvelopeID *uuid.UUID
	// SourceTool is a free-form producer identifier, or nil.
	SourceTool *string
	// TargetTool is the intended recipient, or nil (unused by registration).
	TargetTool *string
	// Metadata holds tracing ids and string headers and tags.
	Metadata Metadata
	// SecurityContext is the ModelSecurityContext object as raw JSON, or nil
	// for null. Registration never sets it.
	SecurityContext json.RawMessage
	// EventType is the dot-path routing key "{producer}.{event-name}"
	// (see EventTypeFromTopic), or nil. Any other value makes a Python
	// consumer dead-letter the record.
	EventType *string
	// PayloadType is an informational model class name, or nil.
	PayloadType *string
	// PayloadSchemaVersion is the optional payload schema version.
	PayloadSchemaVersion *SemVer
	// Priority is 1..10 (10 highest). Default 5.
	Priority int
	// TimeoutSeconds is nil or > 0.
	TimeoutSeconds *int
	// RetryCount is >= 0. Default 0.
	RetryCount int
	// RequestID, TraceID and SpanID are UUID-typed tracing ids, or nil.
	RequestID *uuid.UUID
	TraceID   *uuid.UUID
	SpanID    *uuid.UUID
	// TenantID is the tenant the event belongs to (attribution only), or
	// nil; never blank (envelope version 2.2.0).
	TenantID *string
	// Producer is the identity of the node that produced the event, or nil;
	// never blank (envelope version 2.3.0).
	Producer *string
	// OnexVersion is the ONEX standard version. Default 1.0.0.
	OnexVersion SemVer
	// EnvelopeVersion is the envelope schema version. Default 2.3.0.
	EnvelopeVersion SemVer

	// Extra holds top-level keys that are not envelope fields, in input
	// order; Encode writes them after the 22 fields. Keys must not repeat a
	// field name.
	//
	// Envelopes before version 2.2.0 were extra="ignore" in Python, and the
	// fleet still writes one such key: the accepted event's entity_id, which
	// a Python listener of that era read from the JSON top level (spec §0).
	// Since 2.2.0 the Python envelope is extra="forbid": a current Python
	// consumer rejects an envelope with any key in Extra. Decode still
	// accepts and keeps them — it reads the fleet's own accepted events and
	// the envelopes of nodes newer than this code — where Python would
	// refuse; DecodeTolerant reports them as well.
	Extra pyjson.Members
}

// Metadata is ModelEnvelopeMetadata. Unknown keys are ignored on decode
// and not written back. Nil maps encode as {}; Decode always returns
// non-nil maps. Map keys are written in sorted order.
type Metadata struct {
	TraceID      *string
	SpanID       *string
	ParentSpanID *string
	RequestID    *string
	Headers      map[string]string
	Tags         map[string]string
}

func (m *Metadata) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraIgnore, Fields: []pyjson.Field{
		pyjson.Prop("trace_id", &m.TraceID, nullString),
		pyjson.Prop("span_id", &m.SpanID, nullString),
		pyjson.Prop("parent_span_id", &m.ParentSpanID, nullString),
		pyjson.Prop("request_id", &m.RequestID, nullString),
		pyjson.DefFunc("headers", &m.Headers, stringMap, emptyMap),
		pyjson.DefFunc("tags", &m.Tags, stringMap, emptyMap),
	}}
}

func emptyMap() map[string]string { return map[string]string{} }

func emptyMetadata() Metadata { return Metadata{Headers: emptyMap(), Tags: emptyMap()} }

var (
	nullString    = pyjson.Nullable(pyjson.String)
	nullUUID      = pyjson.Nullable(pyjson.UUID)
	nullInt       = pyjson.Nullable(pyjson.Int)
	stringMap     = pyjson.Map(pyjson.String)
	metadataCodec = pyjson.Object((*Metadata).spec).Named("ModelEnvelopeMetadata")
	// securityContextCodec keeps ModelSecurityContext as raw JSON: the fleet
	// neither reads nor writes one.
	securityContextCodec = pyjson.RawObjectOrNull.WithType(&pyjson.Type{Kind: pyjson.KindObject, Nullable: true, Name: "ModelSecurityContext"})
)

// TimeCodec is the pyjson codec of a timezone-aware datetime field (Time).
var TimeCodec = pyjson.JSON[Time]().WithType(&pyjson.Type{Kind: pyjson.KindString, Format: "date-time"})

func (e *Envelope) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraAllow, Extras: &e.Extra, Fields: []pyjson.Field{
		pyjson.Req("payload", &e.Payload, pyjson.RawJSON),
		pyjson.DefFunc("envelope_id", &e.EnvelopeID, pyjson.UUID, uuid.New),
		pyjson.DefFunc("envelope_timestamp", &e.EnvelopeTimestamp, TimeCodec, Now),
		pyjson.Prop("correlation_id", &e.CorrelationID, nullUUID),
		pyjson.Prop("parent_envelope_id", &e.ParentEnvelopeID, nullUUID),
		pyjson.Prop("source_tool", &e.SourceTool, nullString),
		pyjson.Prop("target_tool", &e.TargetTool, nullString),
		pyjson.DefFunc("metadata", &e.Metadata, metadataCodec, emptyMetadata),
		pyjson.Prop("security_context", &e.SecurityContext, securityContextCodec),
		pyjson.Prop("event_type", &e.EventType, nullString),
		pyjson.Prop("payload_type", &e.PayloadType, nullString),
		pyjson.Prop("payload_schema_version", &e.PayloadSchemaVersion, semverNullCodec),
		pyjson.Def("priority", &e.Priority, pyjson.Int, 5),
		pyjson.Prop("timeout_seconds", &e.TimeoutSeconds, nullInt),
		pyjson.Def("retry_count", &e.RetryCount, pyjson.Int, 0),
		pyjson.Prop("request_id", &e.RequestID, nullUUID),
		pyjson.Prop("trace_id", &e.TraceID, nullUUID),
		pyjson.Prop("span_id", &e.SpanID, nullUUID),
		pyjson.Prop("tenant_id", &e.TenantID, nullString),
		pyjson.Prop("producer", &e.Producer, nullString),
		pyjson.Def("onex_version", &e.OnexVersion, semverCodec, Version100),
		pyjson.Def("envelope_version", &e.EnvelopeVersion, semverCodec, EnvelopeVersion),
	}}
}

// fieldNames is the set of the 22 envelope keys.
var fieldNames = func() map[string]bool {
	var e Envelope
	m := map[string]bool{}
	for _, f := range e.spec().Fields {
		m[f.Name()] = true
	}
	return m
}()

// Decode parses and validates a Kafka record value as an envelope.
//
// Guarantees:
//   - input that is not one well-formed JSON value (truncated, empty, ...)
//     fails with an error wrapping ErrSyntax and *json.SyntaxError;
//   - every other failure is a *FieldError naming the JSON path: missing
//     "payload"; a UUID field that is not a UUID; priority outside 1..10;
//     timeout_seconds <= 0; retry_count < 0; a version that is not a SemVer
//     object (a string is rejected); a naive envelope_timestamp; a value of
//     the wrong JSON type (no string/number coercion); metadata header or tag
//     values that are not strings; a blank tenant_id or producer; a
//     parent_envelope_id equal to envelope_id;
//   - unknown top-level keys are accepted and kept in Extra (see Extra for
//     why, though Python's envelope forbids them since version 2.2.0);
//     unknown keys of metadata and of the version objects are ignored, as
//     Python does;
//   - envelopes of every 2.x version decode: the fields added since 2.1.0
//     (parent_envelope_id, tenant_id, producer) are optional;
//   - absent fields take the Python defaults: envelope_id a random v4,
//     envelope_timestamp the decode time (UTC, microseconds) — as Python's
//     default_factory does, so a decoded envelope always has a usable
//     timestamp —, priority 5, retry_count 0, onex_version 1.0.0,
//     envelope_version 2.3.0, empty metadata;
//   - Payload holds the exact bytes of the "payload" value; it is not
//     validated beyond being JSON.
func Decode(data []byte) (*Envelope, error) {
	return decode(nil, data)
}

// DecodeTolerant is Decode for envelopes written by producers that may be
// newer than this code (ONEX nodes): it accepts what Decode accepts, plus
// unknown keys at every level (metadata, version objects), and returns
// every unknown member with its path ("x-new-field",
// "metadata.baggage", "envelope_version.label"), in input order. Unknown
// top-level keys are also kept in Extra, as Decode keeps them. Every other
// failure is Decode's, with the same *FieldError. The payload is not
// looked into: decode it with DecodePayloadTolerant.
func DecodeTolerant(data []byte) (*Envelope, []pyjson.Unknown, error) {
	var t pyjson.Tolerant
	e, err := decode(&t, data)
	if err != nil {
		return nil, nil, err
	}
	return e, t.Unknown, nil
}

func decode(t *pyjson.Tolerant, data []byte) (*Envelope, error) {
	if err := pyjson.CheckSyntax(data); err != nil {
		return nil, fmt.Errorf("%s: %w", model, err)
	}
	e := &Envelope{}
	var err error
	if t != nil {
		err = pyjson.DecodeObjectTolerant(data, e.spec(), t)
	} else {
		err = pyjson.DecodeObject(data, e.spec())
	}
	if err != nil {
		return nil, pyjson.WithModel(model, err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// Validate checks the constraints Decode enforces, so that an envelope
// built in Go fails here rather than on a Python consumer: Payload present
// and valid JSON, Priority 1..10, TimeoutSeconds nil or > 0, RetryCount >= 0,
// non-negative version numbers, SecurityContext nil or a JSON object,
// TenantID and Producer nil or not blank, ParentEnvelopeID not EnvelopeID,
// Extra keys distinct from the envelope fields. Errors are *FieldError.
func (e *Envelope) Validate() error {
	fe := func(field, format string, args ...any) error {
		err := pyjson.Errorf(field, format, args...)
		err.Model = model
		return err
	}
	switch {
	case len(e.Payload) == 0:
		return fe("payload", "field required")
	case !pyjson.Valid(e.Payload):
		return fe("payload", "not valid JSON")
	case e.Priority < 1 || e.Priority > 10:
		return fe("priority", "must be between 1 and 10, got %d", e.Priority)
	case e.TimeoutSeconds != nil && *e.TimeoutSeconds <= 0:
		return fe("timeout_seconds", "must be > 0 when set, got %d", *e.TimeoutSeconds)
	case e.RetryCount < 0:
		return fe("retry_count", "must be >= 0, got %d", e.RetryCount)
	case len(e.SecurityContext) > 0 && string(e.SecurityContext) != "null" &&
		(!pyjson.Valid(e.SecurityContext) || trimmedFirst(e.SecurityContext) != '{'):
		return fe("security_context", "must be a JSON object or null")
	case e.TenantID != nil && blank(*e.TenantID):
		return fe("tenant_id", "must be a real tenant identifier or omitted entirely, not blank")
	case e.Producer != nil && blank(*e.Producer):
		return fe("producer", "must be a real node identity or omitted entirely, not blank")
	case e.ParentEnvelopeID != nil && *e.ParentEnvelopeID == e.EnvelopeID:
		return fe("parent_envelope_id", "cannot equal envelope_id (an envelope cannot be its own cause)")
	}
	versions := []struct {
		name string
		v    *SemVer
	}{{"payload_schema_version", e.PayloadSchemaVersion}, {"onex_version", &e.OnexVersion}, {"envelope_version", &e.EnvelopeVersion}}
	for _, v := range versions {
		if v.v == nil {
			continue
		}
		if err := v.v.Validate(); err != nil {
			return pyjson.WithModel(model, pyjson.At(v.name, err))
		}
	}
	for _, m := range e.Extra {
		if fieldNames[m.Key] {
			return fe(m.Key, "extra member duplicates an envelope field")
		}
		if !pyjson.Valid(m.Value) {
			return fe(m.Key, "not valid JSON")
		}
	}
	return nil
}

// blank reports whether s is empty or only whitespace as Python's
// str.strip() sees it (unicode.IsSpace plus the separators U+001C..U+001F).
func blank(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }) == ""
}

func trimmedFirst(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

// Encode validates e and serializes it exactly as the Python bus does
// (json.dumps of model_dump(mode="json")): the 22 fields in declaration
// order, all present, null for nil, separators ", " and ": ", non-ASCII
// escaped. Payload is written verbatim; SecurityContext and Extra values are
// re-formatted Python style. For any envelope Decode accepted,
// Decode(Encode(e)) succeeds and yields an equal envelope.
func (e *Envelope) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b, err := pyjson.Marshal(e.spec())
	if err != nil {
		return nil, pyjson.WithModel(model, err)
	}
	return b, nil
}

// MarshalJSON is Encode (encoding/json compacts the result).
func (e Envelope) MarshalJSON() ([]byte, error) { return e.Encode() }

// UnmarshalJSON is Decode.
func (e *Envelope) UnmarshalJSON(b []byte) error {
	d, err := Decode(b)
	if err != nil {
		return err
	}
	*e = *d
	return nil
}

// Canonicalize decodes in as an envelope and re-encodes it in the Python
// wire form (the `onexctl envelope decode` view): defaults filled in, keys in
// model order, Python separators. The payload bytes are unchanged.
func Canonicalize(in []byte) ([]byte, error) {
	e, err := Decode(in)
	if err != nil {
		return nil, err
	}
	return e.Encode()
}

// DecodePayloadTolerant is DecodePayload for a tolerant payload decoder
// (typically a registration.Decode<Model>Tolerant function): the unknown
// members it returns are located under "payload" ("payload.flow_window").
func DecodePayloadTolerant[T any](e *Envelope, decode func([]byte) (*T, []pyjson.Unknown, error)) (*T, []pyjson.Unknown, error) {
	v, unknown, err := decode(e.Payload)
	if err != nil {
		if fe, ok := err.(*FieldError); ok {
			return nil, nil, pyjson.At("payload", fe)
		}
		return nil, nil, fmt.Errorf("payload: %w", err)
	}
	return v, pyjson.RelocateUnknown("payload", unknown), nil
}

// DecodePayload decodes e.Payload with decode (typically a
// registration.Decode<Model> function) and relocates a *FieldError under
// "payload", so the error names the full path ("payload.node_type").
func DecodePayload[T any](e *Envelope, decode func([]byte) (*T, error)) (*T, error) {
	v, err := decode(e.Payload)
	if err != nil {
		if fe, ok := err.(*FieldError); ok {
			return nil, pyjson.At("payload", fe)
		}
		return nil, fmt.Errorf("payload: %w", err)
	}
	return v, nil
}

// Option customizes an envelope built by New.
type Option func(*Envelope)

// WithCorrelationID sets correlation_id.
func WithCorrelationID(id uuid.UUID) Option { return func(e *Envelope) { e.CorrelationID = &id } }

// WithEnvelopeID sets envelope_id (for example a DeterministicID).
func WithEnvelopeID(id uuid.UUID) Option { return func(e *Envelope) { e.EnvelopeID = id } }

// WithTimestamp sets envelope_timestamp (truncated to microseconds).
func WithTimestamp(t time.Time) Option {
	return func(e *Envelope) { e.EnvelopeTimestamp = Time{t.Truncate(time.Microsecond)} }
}

// WithEventType sets event_type; it must be "{producer}.{event-name}" of
// the destination topic (see EventTypeFromTopic) or Python consumers will
// dead-letter the record.
func WithEventType(eventType string) Option { return func(e *Envelope) { e.EventType = &eventType } }

// WithSourceTool sets source_tool.
func WithSourceTool(s string) Option { return func(e *Envelope) { e.SourceTool = &s } }

// WithPayloadType sets payload_type (informational class name).
func WithPayloadType(s string) Option { return func(e *Envelope) { e.PayloadType = &s } }

// WithPriority sets priority (1..10; New fails otherwise).
func WithPriority(p int) Option { return func(e *Envelope) { e.Priority = p } }

// WithParentEnvelopeID sets parent_envelope_id: the envelope_id of the
// envelope whose consumption caused this one (it must differ from this
// envelope's own id).
func WithParentEnvelopeID(id uuid.UUID) Option { return func(e *Envelope) { e.ParentEnvelopeID = &id } }

// WithTenantID sets tenant_id (attribution only; not blank).
func WithTenantID(s string) Option { return func(e *Envelope) { e.TenantID = &s } }

// WithProducer sets producer, the identity of the producing node (not
// blank).
func WithProducer(s string) Option { return func(e *Envelope) { e.Producer = &s } }

// WithTag sets metadata.tags[key] = value (e.g. "causation_id").
func WithTag(key, value string) Option { return func(e *Envelope) { e.Metadata.Tags[key] = value } }

// WithExtra adds a top-level key outside the envelope schema; value is
// marshalled with encoding/json. Used for keys Python listeners read from the
// JSON top level, such as entity_id on the accepted event.
func WithExtra(key string, value any) Option {
	return func(e *Envelope) {
		b, err := json.Marshal(value)
		if err != nil {
			b = nil // rejected by Validate
		}
		e.Extra.Set(key, b)
	}
}

// New builds an envelope for a Go producer: payload is marshalled with
// encoding/json and re-formatted Python style (a json.RawMessage is used as
// is), envelope_id is a random v4, envelope_timestamp is now (UTC,
// microseconds), and every other field has its Python default until an
// Option sets it. The result is validated; New never returns an envelope
// Encode would reject.
func New(payload any, opts ...Option) (*Envelope, error) {
	var raw json.RawMessage
	if r, ok := payload.(json.RawMessage); ok {
		raw = r
	} else {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("envelope: marshal payload: %w", err)
		}
		if raw, err = pyjson.Reformat(b); err != nil {
			return nil, fmt.Errorf("envelope: format payload: %w", err)
		}
	}
	e := &Envelope{
		Payload:           raw,
		EnvelopeID:        uuid.New(),
		EnvelopeTimestamp: Now(),
		Metadata:          emptyMetadata(),
		Priority:          5,
		OnexVersion:       Version100,
		EnvelopeVersion:   EnvelopeVersion,
	}
	for _, o := range opts {
		o(e)
	}
	for _, m := range e.Extra {
		if m.Value == nil {
			return nil, fmt.Errorf("envelope: extra key %q: value cannot be marshalled", m.Key)
		}
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}
