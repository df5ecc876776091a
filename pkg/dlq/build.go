package dlq

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/topicns"
)

// Header names and fixed values of a raw-path DLQ record (§1.5, §8.3).
const (
	HeaderContentType      = "content_type"
	HeaderCorrelationID    = "correlation_id"
	HeaderMessageID        = "message_id"
	HeaderTimestamp        = "timestamp"
	HeaderSource           = "source"
	HeaderEventType        = "event_type"
	HeaderSchemaVersion    = "schema_version"
	HeaderPriority         = "priority"
	HeaderRetryCount       = "retry_count"
	HeaderMaxRetries       = "max_retries"
	HeaderOriginalTopic    = "original_topic"
	HeaderDLQTopic         = "dlq_topic"
	HeaderFailureType      = "failure_type"
	HeaderFailureReason    = "failure_reason"
	HeaderFailureTimestamp = "failure_timestamp"
	HeaderFailureClass     = "failure_class"
	// HeaderValueTruncated is set on a record whose original value had to
	// be cut to fit MaxValueBytes; its value is the original length in
	// bytes. Not in the Python header set: the body keeps its shape, and a
	// reader that knows the header can tell the value is not the original.
	HeaderValueTruncated = "x-onex-dlq-value-truncated"

	// EventTypeRaw is the event_type header of raw-path records.
	EventTypeRaw = "dlq_raw_message"
	// DefaultSource is the header source when none is configured (the
	// Python bus environment default).
	DefaultSource = "local"
)

// Failure describes why a consumed record is dead-lettered.
type Failure struct {
	// Err is the failure; required. The record's failure_reason is
	// infraerr.SanitizeError(Err) and its error_type infraerr.TypeName(Err).
	Err error
	// Type is "content" or "infra" (or already "content_error"/"infra_error",
	// or another lowercase "<category>" / "<category>_error"). Empty means
	// "content" when infraerr.IsContent(Err), else "infra".
	Type string
	// Class is an optional failure class (Class* constants).
	Class string
	// ValidationDetail is an optional validation summary; it is sanitized
	// with infraerr.SanitizeString before it is written.
	ValidationDetail string
	// CorrelationID is the failure's correlation id; uuid.Nil means a new v4.
	CorrelationID uuid.UUID
	// RetryCount is the message-level retry count (the Python raw path
	// always writes 0). It must not be negative. Build raises it to the
	// consumed record's x-replay-count header when that is larger (see
	// ReplayCount).
	RetryCount int
	// DLQTopic overrides the destination; empty means TopicFor(original topic).
	DLQTopic string
}

// newMessageID makes the message_id header; a variable so tests can pin it.
var newMessageID = uuid.New

var validClasses = map[string]bool{ClassPublisherMalformed: true, ClassNoDispatcher: true, ClassValidUnrouted: true, ClassConsumerError: true}

// failureType normalizes f.Type to "<category>_error".
func failureType(f Failure) (string, error) {
	t := strings.TrimSpace(f.Type)
	if t == "" {
		if infraerr.IsContent(f.Err) {
			return FailureTypeContent, nil
		}
		return FailureTypeInfra, nil
	}
	if !strings.HasSuffix(t, "_error") {
		t += "_error"
	}
	for i, r := range t {
		if !(r >= 'a' && r <= 'z' || r == '_' || (i > 0 && r >= '0' && r <= '9')) {
			return "", fmt.Errorf("dlq: failure type %q must be lowercase letters, digits and underscores", f.Type)
		}
	}
	return t, nil
}

// utf8Replace decodes b as UTF-8, replacing each invalid byte with U+FFFD
// (Python's errors="replace").
func utf8Replace(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		sb.WriteRune(r) // RuneError for an invalid byte
		b = b[n:]
	}
	return sb.String()
}

// newRecord builds the body of the DLQ record for msg and f at now (see
// Build), and says in what form it holds the original value; Build has
// validated f.
func newRecord(msg *sarama.ConsumerMessage, f Failure, ftype string, now time.Time) (Record, valueForm) {
	rec := Record{
		OriginalTopic:    topicns.Strip(msg.Topic),
		FailureReason:    infraerr.SanitizeError(f.Err),
		FailureType:      ftype,
		FailureTimestamp: FormatTimestamp(now),
		CorrelationID:    f.CorrelationID.String(),
		RetryCount:       f.RetryCount,
		ErrorType:        infraerr.TypeName(f.Err),
		FailureClass:     f.Class,
		ValidationDetail: infraerr.SanitizeString(f.ValidationDetail),
	}
	if msg.Key != nil {
		k := utf8Replace(msg.Key)
		rec.OriginalMessage.Key = &k
	}
	var form valueForm
	rec.OriginalMessage.Value, form = encodeValue(msg)
	off, part := msg.Offset, msg.Partition
	rec.OriginalMessage.Offset = &off
	rec.OriginalMessage.Partition = &part
	return rec, form
}

// MaxValueBytes bounds a DLQ record's value and key together. A consumed record can be as
// large as the broker allows (about 1 MB), and its DLQ record holds it as a
// JSON string — up to six bytes per byte for control characters — plus the
// failure fields: such a record would be refused by the producer (and the
// broker), the publish would fail on every retry, and the consumer that
// cannot commit without it would stall its partition for good. Above this
// size the original value is cut (at a UTF-8 boundary) until the record
// fits, and HeaderValueTruncated says so.
const MaxValueBytes = 960_000

// truncate cuts rec's original value until its JSON, now total bytes, fits
// limit, and returns that JSON. Each pass cuts the excess divided by
// the value's average expansion in JSON (at least one byte, back to a rune
// boundary), so the record ends close to the bound, and a tail that
// expands more than the average only takes another pass.
func truncate(rec *Record, total, limit int) ([]byte, error) {
	v := rec.OriginalMessage.Value
	for {
		excess := total - limit
		if excess <= 0 || v == "" {
			b, err := rec.MarshalJSON()
			return b, err
		}
		cut := max(excess*len(v)/total, 1)
		n := max(len(v)-cut, 0)
		for n > 0 && !utf8.RuneStart(v[n]) {
			n--
		}
		v = v[:n]
		rec.OriginalMessage.Value = v
		b, err := rec.MarshalJSON()
		if err != nil {
			return nil, err
		}
		if len(b) <= limit {
			return b, nil
		}
		total = len(b)
	}
}

// Build makes the raw-path DLQ record (§8.2, §8.3) for the consumed record
// msg that failed with f, as seen at now:
//   - Topic: f.DLQTopic, or TopicFor(msg.Topic) (on msg's namespace);
//   - Key: msg.Key unchanged (none when nil);
//   - Value: the Record JSON (MarshalJSON), with failure_reason =
//     infraerr.SanitizeError(f.Err), error_type = infraerr.TypeName(f.Err),
//     failure_timestamp = FormatTimestamp(now), the original key as UTF-8
//     text, the original value as UTF-8 text or, for a protobuf original
//     (its content_type header), as protojson or base64 (see
//     HeaderValueEncoding), and the original offset/partition;
//   - Headers, in this order: content_type=application/json,
//     correlation_id, message_id (new v4), timestamp (= failure_timestamp),
//     source (DefaultSource when empty), event_type=dlq_raw_message,
//     schema_version=1.0.0, priority=normal, retry_count, max_retries=3,
//     then original_topic (canonical: a namespace, KAFKA_TOPIC_NAMESPACE,
//     is taken off, so a replay routes the record by what it is), dlq_topic,
//     failure_type, failure_reason,
//     failure_timestamp, failure_class when set, HeaderOriginalContentType
//     and HeaderValueEncoding for a protobuf original, and
//     HeaderValueTruncated when the original value was cut to fit
//     MaxValueBytes (a cut protojson or base64 value restores nothing: the
//     replay quarantines it like any cut value).
//
// A nil f.CorrelationID is replaced by a new v4, used in body and header.
// retry_count (body and header) is max(f.RetryCount, ReplayCount(msg.Headers)).
// Build fails (and builds nothing) when msg is nil or has no topic, f.Err is
// nil, f.Type, f.Class or the DLQ topic is invalid, or f.RetryCount < 0.
func Build(msg *sarama.ConsumerMessage, f Failure, source string, now time.Time) (*sarama.ProducerMessage, error) {
	if msg == nil || strings.TrimSpace(msg.Topic) == "" {
		return nil, errors.New("dlq: original message without a topic")
	}
	if f.Err == nil {
		return nil, errors.New("dlq: failure without an error")
	}
	if f.RetryCount < 0 {
		return nil, fmt.Errorf("dlq: negative retry count %d", f.RetryCount)
	}
	if f.Class != "" && !validClasses[f.Class] {
		return nil, fmt.Errorf("dlq: unknown failure class %q", f.Class)
	}
	ftype, err := failureType(f)
	if err != nil {
		return nil, err
	}
	dlqTopic := strings.TrimSpace(f.DLQTopic)
	if dlqTopic == "" {
		dlqTopic = TopicFor(msg.Topic)
	}
	if !validKafkaName(dlqTopic) {
		return nil, fmt.Errorf("dlq: %q is not a valid Kafka topic name", dlqTopic)
	}
	if f.CorrelationID == uuid.Nil {
		f.CorrelationID = uuid.New()
	}
	if source == "" {
		source = DefaultSource
	}
	// A record that failed again after a replay keeps its replay count, so
	// the replay tool's max-replay-count stops a message that keeps failing
	// from going round for ever (the Python raw path writes 0 and loses it).
	if n, ok := ReplayCount(msg.Headers); ok && n > f.RetryCount {
		f.RetryCount = n
	}
	rec, form := newRecord(msg, f, ftype, now)
	value, err := rec.MarshalJSON()
	if err != nil {
		return nil, err
	}
	// The Kafka record also carries the original key.
	truncated, limit := 0, MaxValueBytes-len(msg.Key)
	if len(value) > limit {
		if value, err = truncate(&rec, len(value), limit); err != nil {
			return nil, err
		}
		if len(value) > limit {
			return nil, fmt.Errorf("dlq: the record is %d bytes without its original value (a key of %d bytes), over %d", len(value), len(msg.Key), limit)
		}
		truncated = len(msg.Value)
	}
	h := func(k, v string) sarama.RecordHeader { return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	headers := []sarama.RecordHeader{
		h(HeaderContentType, "application/json"),
		h(HeaderCorrelationID, rec.CorrelationID),
		h(HeaderMessageID, newMessageID().String()),
		h(HeaderTimestamp, rec.FailureTimestamp),
		h(HeaderSource, source),
		h(HeaderEventType, EventTypeRaw),
		h(HeaderSchemaVersion, "1.0.0"),
		h(HeaderPriority, "normal"),
		h(HeaderRetryCount, strconv.Itoa(f.RetryCount)),
		h(HeaderMaxRetries, "3"),
		h(HeaderOriginalTopic, topicns.Strip(msg.Topic)),
		h(HeaderDLQTopic, dlqTopic),
		h(HeaderFailureType, ftype),
		h(HeaderFailureReason, rec.FailureReason),
		h(HeaderFailureTimestamp, rec.FailureTimestamp),
	}
	if f.Class != "" {
		headers = append(headers, h(HeaderFailureClass, f.Class))
	}
	if form.encoding != "" {
		headers = append(headers, h(HeaderOriginalContentType, form.contentType), h(HeaderValueEncoding, form.encoding))
	}
	if truncated > 0 {
		headers = append(headers, h(HeaderValueTruncated, strconv.Itoa(truncated)))
	}
	pm := &sarama.ProducerMessage{Topic: dlqTopic, Value: sarama.ByteEncoder(value), Headers: headers}
	if msg.Key != nil {
		pm.Key = sarama.ByteEncoder(msg.Key)
	}
	return pm, nil
}
