package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// Quarantine header names (spec 8.4).
const (
	HeaderQuarantineReason        = "x-quarantine-reason"
	HeaderQuarantineCorrelationID = "x-quarantine-correlation-id"
)

// Quarantined is the body of a quarantine record (spec 8.4).
type Quarantined struct {
	QuarantineCorrelationID string          `json:"quarantine_correlation_id"`
	QuarantinedAt           string          `json:"quarantined_at"`
	QuarantinedBy           string          `json:"quarantined_by"`
	Reason                  string          `json:"reason"`
	OriginalTopic           string          `json:"original_topic"`
	OriginalCorrelationID   string          `json:"original_correlation_id"`
	ErrorType               string          `json:"error_type"`
	RetryCount              int             `json:"retry_count"`
	SourceDLQTopic          string          `json:"source_dlq_topic"`
	SourceDLQOffset         int64           `json:"source_dlq_offset"`
	SourceDLQPartition      int32           `json:"source_dlq_partition"`
	OriginalPayload         json.RawMessage `json:"original_payload"`
}

// DecodeQuarantined parses a quarantine record body. Unknown members are
// ignored (the Python node adds quarantine_class); quarantine_correlation_id
// is required.
func DecodeQuarantined(value []byte) (*Quarantined, error) {
	var q Quarantined
	if err := json.Unmarshal(value, &q); err != nil {
		return nil, fmt.Errorf("quarantine record: %w", err)
	}
	if q.QuarantineCorrelationID == "" {
		return nil, errors.New("quarantine record: quarantine_correlation_id is missing")
	}
	return &q, nil
}

// QuarantineMessage builds the quarantine record for the DLQ record e
// (spec 8.4): on topic, keyed by the original correlation id, with body
//
//	{quarantine_correlation_id, quarantined_at, quarantined_by:
//	 "node_dlq_replay_effect", reason, original_topic,
//	 original_correlation_id, error_type, retry_count, source_dlq_topic,
//	 source_dlq_offset, source_dlq_partition, original_payload}
//
// in that order, written like Python's json.dumps, where original_payload is
// the whole DLQ record body as stored, and headers x-quarantine-reason,
// x-quarantine-correlation-id and correlation_id (the original one), then
// the DLQ record's headers that say how its original value is held
// (dlq.HeaderOriginalContentType, dlq.HeaderValueEncoding,
// dlq.HeaderValueTruncated) when it has them. The original message is
// carried unchanged inside original_payload: a quarantine owner can still
// re-enter it, a protobuf original with dlq.RestoreValue.
func QuarantineMessage(e *Entry, reason string, id uuid.UUID, topic string, now time.Time) (*sarama.ProducerMessage, error) {
	if e.Record == nil {
		return nil, errors.New("replay: only a decoded DLQ record can be quarantined")
	}
	if !validKafkaName(topic) {
		return nil, fmt.Errorf("replay: quarantine topic %q is not a valid Kafka topic name", topic)
	}
	r := e.Record
	var w pyjson.Writer
	member := func(first bool, k string) {
		if !first {
			w.Raw([]byte(", "))
		}
		w.String(k)
		w.Raw([]byte(": "))
	}
	w.Raw([]byte("{"))
	member(true, "quarantine_correlation_id")
	w.String(id.String())
	member(false, "quarantined_at")
	w.String(dlq.FormatTimestamp(now))
	member(false, "quarantined_by")
	w.String(ReplayedBy)
	member(false, "reason")
	w.String(reason)
	member(false, "original_topic")
	w.String(r.OriginalTopic)
	member(false, "original_correlation_id")
	w.String(r.CorrelationID)
	member(false, "error_type")
	w.String(r.ErrorType)
	member(false, "retry_count")
	w.Int(int64(r.RetryCount))
	member(false, "source_dlq_topic")
	w.String(e.Topic)
	member(false, "source_dlq_offset")
	w.Int(e.Offset)
	member(false, "source_dlq_partition")
	w.Int(int64(e.Partition))
	member(false, "original_payload")
	if err := w.Reformat(e.Value); err != nil {
		return nil, fmt.Errorf("replay: DLQ record body: %w", err)
	}
	w.Raw([]byte("}"))
	h := func(k, v string) sarama.RecordHeader { return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	headers := []sarama.RecordHeader{
		h(HeaderQuarantineReason, reason),
		h(HeaderQuarantineCorrelationID, id.String()),
		h(dlq.HeaderCorrelationID, r.CorrelationID),
	}
	for _, k := range valueHeaders {
		if v, ok := e.Header(k); ok {
			headers = append(headers, h(k, v))
		}
	}
	return &sarama.ProducerMessage{
		Topic:   topic,
		Key:     sarama.StringEncoder(r.CorrelationID),
		Value:   sarama.ByteEncoder(append([]byte(nil), w.Bytes()...)),
		Headers: headers,
	}, nil
}

// valueHeaders are the DLQ record headers without which original_payload's
// original value cannot be read back.
var valueHeaders = []string{dlq.HeaderOriginalContentType, dlq.HeaderValueEncoding, dlq.HeaderValueTruncated}

// quarantineReasonRetry and quarantineReasonType are the spec's reasons.
func quarantineReasonRetry(count, limit int) string {
	return "Exceeded max replay count: " + strconv.Itoa(count) + " >= " + strconv.Itoa(limit)
}

func quarantineReasonType(errorType string) string {
	return "Non-retryable error type: " + errorType
}
