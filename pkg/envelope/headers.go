package envelope

import (
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/topicns"
)

// HeaderPriority is the "priority" Kafka header: low, normal, high or
// critical. It is unrelated to the envelope's integer Priority.
type HeaderPriority string

// Header priorities.
const (
	PriorityLow      HeaderPriority = "low"
	PriorityNormal   HeaderPriority = "normal"
	PriorityHigh     HeaderPriority = "high"
	PriorityCritical HeaderPriority = "critical"
)

// Valid reports whether p is one of the four known priorities.
func (p HeaderPriority) Valid() bool {
	switch p {
	case PriorityLow, PriorityNormal, PriorityHigh, PriorityCritical:
		return true
	}
	return false
}

// Kafka header names (ModelEventHeaders), in the order the Python writer
// emits them.
const (
	HeaderKeyContentType   = "content_type"
	HeaderKeyCorrelationID = "correlation_id"
	HeaderKeyMessageID     = "message_id"
	HeaderKeyTimestamp     = "timestamp"
	HeaderKeySource        = "source"
	HeaderKeyEventType     = "event_type"
	HeaderKeySchemaVersion = "schema_version"
	HeaderKeyPriority      = "priority"
	HeaderKeyRetryCount    = "retry_count"
	HeaderKeyMaxRetries    = "max_retries"
	HeaderKeyDestination   = "destination"
	HeaderKeyTraceID       = "trace_id"
	HeaderKeySpanID        = "span_id"
	HeaderKeyParentSpanID  = "parent_span_id"
	HeaderKeyOperationName = "operation_name"
	HeaderKeyRoutingKey    = "routing_key"
	HeaderKeyPartitionKey  = "partition_key"
	HeaderKeyTTLSeconds    = "ttl_seconds"
)

// Headers is ModelEventHeaders, the Kafka record headers of an ONEX record.
// They are informational: registration handlers route and correlate on the
// body, never on headers (the Python bus puts a random correlation_id here).
//
// The first ten fields are always written. The optional string fields are
// written only when non-empty, TTLSeconds only when non-nil. Extra holds any
// other headers (for example the DLQ's original_topic, failure_reason...),
// in order; they are written after the known ones.
type Headers struct {
	ContentType   string
	CorrelationID uuid.UUID
	MessageID     uuid.UUID
	Timestamp     time.Time
	Source        string
	EventType     string
	SchemaVersion string
	Priority      HeaderPriority
	RetryCount    int
	MaxRetries    int

	Destination   string
	TraceID       string
	SpanID        string
	ParentSpanID  string
	OperationName string
	RoutingKey    string
	PartitionKey  string
	TTLSeconds    *int

	Extra []sarama.RecordHeader
}

// NewHeaders returns the headers the Python bus writes for an envelope
// published to topic: content_type application/json, random v4
// correlation_id and message_id, timestamp now (UTC, microseconds), the given
// source (the bus environment, e.g. "local"), event_type = the topic name,
// schema_version 1.0.0, priority normal, retry_count 0, max_retries 3.
func NewHeaders(topic, source string) Headers {
	return Headers{
		ContentType:   "application/json",
		CorrelationID: uuid.New(),
		MessageID:     uuid.New(),
		Timestamp:     time.Now().UTC().Truncate(time.Microsecond),
		Source:        source,
		// The canonical name, as the Python runtime writes it, whatever
		// namespace the record is sent under.
		EventType:     topicns.Strip(topic),
		SchemaVersion: "1.0.0",
		Priority:      PriorityNormal,
		RetryCount:    0,
		MaxRetries:    3,
	}
}

// Records returns the headers as Kafka record headers, UTF-8 strings, in
// the Python writer's order: content_type, correlation_id, message_id,
// timestamp (isoformat, "+00:00"), source, event_type, schema_version,
// priority, retry_count, max_retries; then destination, trace_id, span_id,
// parent_span_id, operation_name, routing_key, partition_key, ttl_seconds
// when set; then Extra. Values are written as held (an empty Priority is
// written as "normal").
func (h Headers) Records() []sarama.RecordHeader {
	prio := h.Priority
	if prio == "" {
		prio = PriorityNormal
	}
	out := make([]sarama.RecordHeader, 0, 10+len(h.Extra))
	add := func(k, v string) {
		out = append(out, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	add(HeaderKeyContentType, h.ContentType)
	add(HeaderKeyCorrelationID, h.CorrelationID.String())
	add(HeaderKeyMessageID, h.MessageID.String())
	add(HeaderKeyTimestamp, FormatHeaderTime(h.Timestamp))
	add(HeaderKeySource, h.Source)
	add(HeaderKeyEventType, h.EventType)
	add(HeaderKeySchemaVersion, h.SchemaVersion)
	add(HeaderKeyPriority, string(prio))
	add(HeaderKeyRetryCount, strconv.Itoa(h.RetryCount))
	add(HeaderKeyMaxRetries, strconv.Itoa(h.MaxRetries))
	for _, o := range []struct{ k, v string }{
		{HeaderKeyDestination, h.Destination},
		{HeaderKeyTraceID, h.TraceID},
		{HeaderKeySpanID, h.SpanID},
		{HeaderKeyParentSpanID, h.ParentSpanID},
		{HeaderKeyOperationName, h.OperationName},
		{HeaderKeyRoutingKey, h.RoutingKey},
		{HeaderKeyPartitionKey, h.PartitionKey},
	} {
		if o.v != "" {
			add(o.k, o.v)
		}
	}
	if h.TTLSeconds != nil {
		add(HeaderKeyTTLSeconds, strconv.Itoa(*h.TTLSeconds))
	}
	for _, x := range h.Extra {
		out = append(out, sarama.RecordHeader{Key: append([]byte(nil), x.Key...), Value: append([]byte(nil), x.Value...)})
	}
	return out
}

// HeadersFromRecords reads Kafka record headers with the Python reader's
// tolerance; it never fails. Missing or unparsable correlation_id or
// message_id → a fresh v4; missing or unparsable timestamp → now (a timestamp
// without offset is UTC); unknown priority → normal; unparsable retry_count
// / max_retries → 0 / 3, unparsable ttl_seconds → nil; missing source or
// event_type → "unknown"; missing schema_version → "1.0.0"; missing
// content_type → "application/json". A repeated header: the last one wins.
// Unknown headers are kept in Extra in order. Nil entries are skipped.
func HeadersFromRecords(records []*sarama.RecordHeader) Headers {
	vals := map[string]string{}
	var extra []sarama.RecordHeader
	for _, r := range records {
		if r == nil {
			continue
		}
		k := string(r.Key)
		if isKnownHeader(k) {
			vals[k] = string(r.Value)
			continue
		}
		extra = append(extra, sarama.RecordHeader{Key: append([]byte(nil), r.Key...), Value: append([]byte(nil), r.Value...)})
	}
	get := func(k, def string) string {
		if v, ok := vals[k]; ok {
			return v
		}
		return def
	}
	parseID := func(k string) uuid.UUID {
		if u, err := uuid.Parse(vals[k]); err == nil {
			return u
		}
		return uuid.New()
	}
	parseInt := func(k string, def int) int {
		if n, err := strconv.Atoi(vals[k]); err == nil {
			return n
		}
		return def
	}
	h := Headers{
		ContentType:   get(HeaderKeyContentType, "application/json"),
		CorrelationID: parseID(HeaderKeyCorrelationID),
		MessageID:     parseID(HeaderKeyMessageID),
		Source:        get(HeaderKeySource, "unknown"),
		EventType:     get(HeaderKeyEventType, "unknown"),
		SchemaVersion: get(HeaderKeySchemaVersion, "1.0.0"),
		Priority:      HeaderPriority(vals[HeaderKeyPriority]),
		RetryCount:    parseInt(HeaderKeyRetryCount, 0),
		MaxRetries:    parseInt(HeaderKeyMaxRetries, 3),
		Destination:   vals[HeaderKeyDestination],
		TraceID:       vals[HeaderKeyTraceID],
		SpanID:        vals[HeaderKeySpanID],
		ParentSpanID:  vals[HeaderKeyParentSpanID],
		OperationName: vals[HeaderKeyOperationName],
		RoutingKey:    vals[HeaderKeyRoutingKey],
		PartitionKey:  vals[HeaderKeyPartitionKey],
		Extra:         extra,
	}
	if !h.Priority.Valid() {
		h.Priority = PriorityNormal
	}
	if t, err := ParseHeaderTime(vals[HeaderKeyTimestamp]); err == nil {
		h.Timestamp = t
	} else {
		h.Timestamp = time.Now().UTC().Truncate(time.Microsecond)
	}
	if v, ok := vals[HeaderKeyTTLSeconds]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			h.TTLSeconds = &n
		}
	}
	return h
}

func isKnownHeader(k string) bool {
	switch k {
	case HeaderKeyContentType, HeaderKeyCorrelationID, HeaderKeyMessageID, HeaderKeyTimestamp,
		HeaderKeySource, HeaderKeyEventType, HeaderKeySchemaVersion, HeaderKeyPriority,
		HeaderKeyRetryCount, HeaderKeyMaxRetries, HeaderKeyDestination, HeaderKeyTraceID,
		HeaderKeySpanID, HeaderKeyParentSpanID, HeaderKeyOperationName, HeaderKeyRoutingKey,
		HeaderKeyPartitionKey, HeaderKeyTTLSeconds:
		return true
	}
	return false
}
