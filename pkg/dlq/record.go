// Package dlq writes and reads dead-letter records, wire-compatible with the
// Python runtime's raw DLQ path (spec §8): the JSON body (§8.2), the Kafka
// headers (§8.3), DLQ topic routing (§3.5), and a Publisher that returns only
// once the broker has acknowledged the record — so a consumer may commit the
// original offset right after.
//
// The original record's value is preserved verbatim (as UTF-8 text; a
// protobuf original as protojson or base64, see HeaderValueEncoding), never
// sanitized: DLQ topics need ACLs. The failure reason is always sanitized with
// infraerr.SanitizeError.
package dlq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Failure types written to failure_type by the raw path.
const (
	FailureTypeContent = "content_error"
	FailureTypeInfra   = "infra_error"
)

// Failure classes (§8.2 failure_class).
const (
	ClassPublisherMalformed = "publisher_malformed"
	ClassNoDispatcher       = "no_dispatcher"
	ClassValidUnrouted      = "valid_unrouted"
	ClassConsumerError      = "consumer_error"
)

// OriginalMessage is the dead-lettered record as it was consumed.
type OriginalMessage struct {
	// Key is the record key as UTF-8 text (invalid bytes replaced by U+FFFD),
	// or nil for a record without a key.
	Key *string
	// Value is the record value as UTF-8 text (invalid bytes replaced),
	// verbatim otherwise; for a protobuf original it is the protojson or
	// base64 that the DLQ record's HeaderValueEncoding names (RestoreValue
	// gives the bytes back). A null value is stored as "".
	Value string
	// Offset is the record's offset. Decoding accepts a JSON number or a
	// decimal string (the Python processed path writes strings); encoding
	// always writes a number.
	Offset *int64
	// Partition is the record's partition.
	Partition *int32
}

// Record is the body of a DLQ record (§8.2). Its JSON form (MarshalJSON)
// has the Python raw path's field order and formatting.
type Record struct {
	// OriginalTopic is the topic the failed record was consumed from.
	OriginalTopic string
	// OriginalMessage is the failed record itself.
	OriginalMessage OriginalMessage
	// FailureReason is the sanitized reason, "{ErrorType}: {message}".
	FailureReason string
	// FailureType is "content_error" or "infra_error" on the raw path; empty
	// (and omitted) on records of the Python processed path.
	FailureType string
	// FailureTimestamp is Python isoformat with "+00:00"; see FormatTimestamp.
	FailureTimestamp string
	// CorrelationID is the failure's correlation id (canonical UUID text).
	CorrelationID string
	// RetryCount is the message-level retry count (0 on the raw path).
	RetryCount int
	// ErrorType is the Python exception class name (infraerr.TypeName).
	ErrorType string
	// FailureClass is one of the Class* constants, or "" (omitted).
	FailureClass string
	// ValidationDetail is an optional, sanitized validation summary ("" omitted).
	ValidationDetail string
	// SerializationFallback is true only when the Python writer could not
	// JSON-encode the record (omitted when false; never set by Build).
	SerializationFallback bool
	// RedactedFields are the dotted paths of credential-named fields the
	// Python DLQ writer removed from the original value before writing it
	// (its redacted_fields; names only). Non-empty means the original value
	// is deliberately incomplete and must not be replayed. Decoded only:
	// the fleet's writer redacts nothing (infraerr sanitizes the reason,
	// not the original record), so Build never sets it.
	RedactedFields []string
}

// FailedAt parses FailureTimestamp (isoformat with or without an offset, "Z"
// accepted; a timestamp without an offset is taken as UTC).
func (r *Record) FailedAt() (time.Time, error) { return ParseTimestamp(r.FailureTimestamp) }

// FormatTimestamp renders t like Python's datetime.isoformat() for an aware
// UTC datetime: "2026-03-02T14:08:00.513330+00:00", with the microseconds
// omitted when they are zero ("2026-03-02T14:08:00+00:00"). Sub-microsecond
// precision is truncated, as Python has none.
func FormatTimestamp(t time.Time) string {
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s + "+00:00"
}

// ParseTimestamp parses an ISO-8601 timestamp as Python writes it; one
// without an offset is taken as UTC (§1.5 reader rule).
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse("2006-01-02T15:04:05.999999999Z07:00", s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("dlq: timestamp %q is not ISO-8601", s)
	}
	return t, nil
}

// MarshalJSON encodes the record the way Python's json.dumps does for the raw
// path: keys in §8.2 order, ", " and ": " separators, non-ASCII characters as
// \uXXXX escapes. Optional fields (failure_type when empty, failure_class,
// validation_detail, serialization_fallback) are omitted when unset.
func (r Record) MarshalJSON() ([]byte, error) {
	var w pyWriter
	w.b.WriteByte('{')
	w.key("original_topic", true)
	w.str(r.OriginalTopic)
	w.key("original_message", false)
	w.b.WriteByte('{')
	w.key("key", true)
	if r.OriginalMessage.Key == nil {
		w.b.WriteString("null")
	} else {
		w.str(*r.OriginalMessage.Key)
	}
	w.key("value", false)
	w.str(r.OriginalMessage.Value)
	w.key("offset", false)
	if r.OriginalMessage.Offset == nil {
		w.b.WriteString("null")
	} else {
		w.b.WriteString(strconv.FormatInt(*r.OriginalMessage.Offset, 10))
	}
	w.key("partition", false)
	if r.OriginalMessage.Partition == nil {
		w.b.WriteString("null")
	} else {
		w.b.WriteString(strconv.FormatInt(int64(*r.OriginalMessage.Partition), 10))
	}
	w.b.WriteByte('}')
	w.key("failure_reason", false)
	w.str(r.FailureReason)
	if r.FailureType != "" {
		w.key("failure_type", false)
		w.str(r.FailureType)
	}
	w.key("failure_timestamp", false)
	w.str(r.FailureTimestamp)
	w.key("correlation_id", false)
	w.str(r.CorrelationID)
	w.key("retry_count", false)
	w.b.WriteString(strconv.Itoa(r.RetryCount))
	w.key("error_type", false)
	w.str(r.ErrorType)
	if r.FailureClass != "" {
		w.key("failure_class", false)
		w.str(r.FailureClass)
	}
	if r.ValidationDetail != "" {
		w.key("validation_detail", false)
		w.str(r.ValidationDetail)
	}
	if r.SerializationFallback {
		w.key("serialization_fallback", false)
		w.b.WriteString("true")
	}
	w.b.WriteByte('}')
	return w.b.Bytes(), nil
}

// pyWriter writes JSON like Python's json.dumps with default arguments.
type pyWriter struct{ b bytes.Buffer }

func (w *pyWriter) key(k string, first bool) {
	if !first {
		w.b.WriteString(", ")
	}
	w.str(k)
	w.b.WriteString(": ")
}

// str writes s as a JSON string with ensure_ascii=True escaping: \" \\ \n \r
// \t \b \f, every other character outside 0x20..0x7e as \uXXXX (lowercase
// hex, UTF-16 surrogate pairs above U+FFFF). Invalid UTF-8 becomes U+FFFD.
func (w *pyWriter) str(s string) {
	const hex = "0123456789abcdef"
	u4 := func(r rune) {
		w.b.WriteString(`\u`)
		w.b.WriteByte(hex[r>>12&0xf])
		w.b.WriteByte(hex[r>>8&0xf])
		w.b.WriteByte(hex[r>>4&0xf])
		w.b.WriteByte(hex[r&0xf])
	}
	w.b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			w.b.WriteString(`\"`)
		case r == '\\':
			w.b.WriteString(`\\`)
		case r == '\n':
			w.b.WriteString(`\n`)
		case r == '\r':
			w.b.WriteString(`\r`)
		case r == '\t':
			w.b.WriteString(`\t`)
		case r == '\b':
			w.b.WriteString(`\b`)
		case r == '\f':
			w.b.WriteString(`\f`)
		case r >= 0x20 && r <= 0x7e:
			w.b.WriteByte(byte(r))
		case r > 0xffff:
			r -= 0x10000
			u4(0xd800 + (r>>10)&0x3ff)
			u4(0xdc00 + r&0x3ff)
		default:
			u4(r)
		}
	}
	w.b.WriteByte('"')
}

// flexInt decodes a JSON number, a decimal string or null.
type flexInt struct {
	v   int64
	set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if s == "null" {
		*f = flexInt{}
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = strings.TrimSpace(str)
		if s == "" || s == "None" {
			*f = flexInt{}
			return nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*f = flexInt{v: n, set: true}
	return nil
}

type wireOriginal struct {
	Key       *string `json:"key"`
	Value     *string `json:"value"`
	Offset    flexInt `json:"offset"`
	Partition flexInt `json:"partition"`
}

type wireRecord struct {
	OriginalTopic         string       `json:"original_topic"`
	OriginalMessage       wireOriginal `json:"original_message"`
	FailureReason         string       `json:"failure_reason"`
	FailureType           string       `json:"failure_type"`
	FailureTimestamp      string       `json:"failure_timestamp"`
	CorrelationID         string       `json:"correlation_id"`
	RetryCount            flexInt      `json:"retry_count"`
	ErrorType             string       `json:"error_type"`
	FailureClass          *string      `json:"failure_class"`
	ValidationDetail      *string      `json:"validation_detail"`
	SerializationFallback bool         `json:"serialization_fallback"`
	RedactedFields        any          `json:"redacted_fields"`
}

// UnmarshalJSON decodes a record of either Python writer path (§8.2):
// offsets, partitions and retry counts may be numbers, decimal strings or
// null; unknown fields are ignored; original_topic is required.
func (r *Record) UnmarshalJSON(b []byte) error {
	var w wireRecord
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("dlq: decode record: %w", err)
	}
	if w.OriginalTopic == "" {
		return fmt.Errorf("dlq: decode record: original_topic is missing")
	}
	out := Record{
		OriginalTopic:         w.OriginalTopic,
		FailureReason:         w.FailureReason,
		FailureType:           w.FailureType,
		FailureTimestamp:      w.FailureTimestamp,
		CorrelationID:         w.CorrelationID,
		ErrorType:             w.ErrorType,
		SerializationFallback: w.SerializationFallback,
	}
	out.OriginalMessage.Key = w.OriginalMessage.Key
	if w.OriginalMessage.Value != nil {
		out.OriginalMessage.Value = *w.OriginalMessage.Value
	}
	if w.OriginalMessage.Offset.set {
		v := w.OriginalMessage.Offset.v
		out.OriginalMessage.Offset = &v
	}
	if w.OriginalMessage.Partition.set {
		p := w.OriginalMessage.Partition.v
		if p < -1<<31 || p > 1<<31-1 {
			return fmt.Errorf("dlq: decode record: partition %d out of range", p)
		}
		p32 := int32(p)
		out.OriginalMessage.Partition = &p32
	}
	if w.RetryCount.set {
		out.RetryCount = int(w.RetryCount.v)
	}
	if w.FailureClass != nil {
		out.FailureClass = *w.FailureClass
	}
	if w.ValidationDetail != nil {
		out.ValidationDetail = *w.ValidationDetail
	}
	// As the Python replay reads it: a list names the redacted fields,
	// anything else is no redaction record.
	if list, ok := w.RedactedFields.([]any); ok {
		for _, f := range list {
			if s := fmt.Sprint(f); s != "" {
				out.RedactedFields = append(out.RedactedFields, s)
			}
		}
	}
	*r = out
	return nil
}

// Decode parses a DLQ record value (for operator tooling: list, stats,
// replay). It accepts both Python writer paths; see Record.UnmarshalJSON.
func Decode(value []byte) (*Record, error) {
	if !utf8.Valid(value) {
		return nil, fmt.Errorf("dlq: decode record: value is not UTF-8")
	}
	var r Record
	if err := json.Unmarshal(value, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
