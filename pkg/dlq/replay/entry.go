package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
)

// Header is one Kafka record header, as text.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Entry is one record read from a DLQ or quarantine topic. Exactly one of
// Record, Quarantined and DecodeErr is set.
type Entry struct {
	// Topic, Partition and Offset locate the record.
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the Kafka record timestamp.
	Timestamp time.Time
	// Key, Value and Headers are the record as stored.
	Key     []byte
	Value   []byte
	Headers []Header
	// Record is the decoded DLQ body (spec 8.2).
	Record *dlq.Record
	// Quarantined is the decoded body of a record on the quarantine topic.
	Quarantined *Quarantined
	// DecodeErr says why the value is neither.
	DecodeErr error
}

// NewEntry decodes m. A value with a quarantine_correlation_id member is a
// quarantine record; anything else is decoded as a DLQ record (both Python
// writer paths, dlq.Decode). A value that is neither gives an Entry with
// DecodeErr set, never an error: one bad record must not hide the others.
func NewEntry(m *sarama.ConsumerMessage) *Entry {
	e := &Entry{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp, Key: m.Key, Value: m.Value}
	for _, h := range m.Headers {
		if h != nil {
			e.Headers = append(e.Headers, Header{Key: string(h.Key), Value: string(h.Value)})
		}
	}
	e.Record, e.Quarantined, e.DecodeErr = decodeBody(m.Value)
	return e
}

func decodeBody(value []byte) (*dlq.Record, *Quarantined, error) {
	if len(bytes.TrimSpace(value)) == 0 {
		return nil, nil, errors.New("empty record value")
	}
	if !utf8.Valid(value) {
		return nil, nil, errors.New("record value is not UTF-8")
	}
	var probe struct {
		QuarantineID *json.RawMessage `json:"quarantine_correlation_id"`
	}
	if err := json.Unmarshal(value, &probe); err != nil {
		return nil, nil, fmt.Errorf("record value is not a JSON object: %w", err)
	}
	if probe.QuarantineID != nil {
		q, err := DecodeQuarantined(value)
		return nil, q, err
	}
	r, err := dlq.Decode(value)
	return r, nil, err
}

// Header returns the value of the last header named key.
func (e *Entry) Header(key string) (string, bool) {
	v, ok := "", false
	for _, h := range e.Headers {
		if h.Key == key {
			v, ok = h.Value, true
		}
	}
	return v, ok
}

// Position is "topic/partition/offset", the address `onexctl dlq show` takes.
func (e *Entry) Position() string { return FormatPosition(e.Topic, e.Partition, e.Offset) }

// FormatPosition renders a record address as "topic/partition/offset".
func FormatPosition(topic string, partition int32, offset int64) string {
	return topic + "/" + strconv.FormatInt(int64(partition), 10) + "/" + strconv.FormatInt(offset, 10)
}

// ParsePosition parses "topic/partition/offset". Kafka topic names cannot
// contain '/', so the last two segments are the numbers.
func ParsePosition(s string) (topic string, partition int32, offset int64, err error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) != 3 || parts[0] == "" {
		return "", 0, 0, fmt.Errorf("%q is not topic/partition/offset", s)
	}
	p, err := strconv.ParseInt(parts[1], 10, 32)
	if err != nil || p < 0 {
		return "", 0, 0, fmt.Errorf("%q: partition %q is not a non-negative integer", s, parts[1])
	}
	o, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || o < 0 {
		return "", 0, 0, fmt.Errorf("%q: offset %q is not a non-negative integer", s, parts[2])
	}
	return parts[0], int32(p), o, nil
}

// idNamespace derives record ids for DLQ records without a usable message_id
// header. Fixed for ever: changing it would make tracking forget every such
// record it has seen.
var idNamespace = uuid.MustParse("6f1d2a8e-3c4b-5d6e-9f70-8a9b0c1d2e3f")

// ID is the record's identity in dlq_replay_history (column
// original_message_id): the message_id header that the DLQ writer gave this
// dead letter when it is a UUID (every record of the fleet and of the Python
// runtime has one), otherwise a name-based UUID of its position. It is the
// id of the dead letter, not of the original message: a message that fails
// again after a replay is a new dead letter with a new id, and is bounded by
// --max-replay-count instead.
func (e *Entry) ID() uuid.UUID {
	if v, ok := e.Header(dlq.HeaderMessageID); ok {
		if id, err := uuid.Parse(strings.TrimSpace(v)); err == nil && id != uuid.Nil {
			return id
		}
	}
	return uuid.NewSHA1(idNamespace, []byte(e.Position()))
}

// OriginalTopic is the topic the dead-lettered message came from.
func (e *Entry) OriginalTopic() string {
	switch {
	case e.Record != nil:
		return e.Record.OriginalTopic
	case e.Quarantined != nil:
		return e.Quarantined.OriginalTopic
	}
	return ""
}

// ErrorType is the record's error_type.
func (e *Entry) ErrorType() string {
	switch {
	case e.Record != nil:
		return e.Record.ErrorType
	case e.Quarantined != nil:
		return e.Quarantined.ErrorType
	}
	return ""
}

// CorrelationID is the correlation id of the failed message (a quarantine
// record's original_correlation_id).
func (e *Entry) CorrelationID() string {
	switch {
	case e.Record != nil:
		return e.Record.CorrelationID
	case e.Quarantined != nil:
		return e.Quarantined.OriginalCorrelationID
	}
	return ""
}

// FailureClass is the record's failure_class ("" when none).
func (e *Entry) FailureClass() string {
	if e.Record != nil {
		return e.Record.FailureClass
	}
	return ""
}

// RetryCount is the record's retry_count.
func (e *Entry) RetryCount() int {
	switch {
	case e.Record != nil:
		return e.Record.RetryCount
	case e.Quarantined != nil:
		return e.Quarantined.RetryCount
	}
	return 0
}

// FailedAt is when the message failed (failure_timestamp), or for a
// quarantine record when it was quarantined; ok is false when the record has
// no parseable timestamp.
func (e *Entry) FailedAt() (t time.Time, ok bool) {
	var s string
	switch {
	case e.Record != nil:
		s = e.Record.FailureTimestamp
	case e.Quarantined != nil:
		s = e.Quarantined.QuarantinedAt
	default:
		return time.Time{}, false
	}
	t, err := dlq.ParseTimestamp(s)
	return t, err == nil
}
