package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The conversions every codec of a proto/onex/fleet/v1 record shares (the
// reducer input, intents, effect results, the orchestrator's state), so
// that a UUID, a time or a content type is read the same on every topic.

// UUIDText is id's text form on the protobuf wire, "" for the nil UUID
// (absent, as the JSON form's missing ids decode to the nil UUID).
func UUIDText(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// ParseUUIDText reads a UUID field of the protobuf wire: "" is the nil
// UUID, anything else must be a UUID.
func ParseUUIDText(s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, nil
	}
	return uuid.Parse(s)
}

// The bounds of a timestamp on the protobuf wire: the years
// envelope.ParseTime accepts (1 to 9999) and a day either side for the UTC
// offset. Outside them the record is not one the fleet writes.
var (
	minTimestamp = time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC).Unix()
	maxTimestamp = time.Date(10000, 1, 2, 0, 0, 0, 0, time.UTC).Unix()
)

// ProtoTime is a protobuf timestamp as a UTC time, refusing values no
// fleet service writes (nanos out of range, years beyond ParseTime's).
func ProtoTime(ts *timestamppb.Timestamp) (time.Time, error) {
	s, n := ts.GetSeconds(), ts.GetNanos()
	if n < 0 || n >= 1e9 {
		return time.Time{}, fmt.Errorf("nanos %d out of range", n)
	}
	if s < minTimestamp || s > maxTimestamp {
		return time.Time{}, fmt.Errorf("seconds %d out of range", s)
	}
	return time.Unix(s, int64(n)).UTC(), nil
}

// ErrContentType is returned (wrapped) for a record of a content type no
// reader of this version takes on its topic.
var ErrContentType = errors.New("unsupported content type")

// CheckProtobuf returns nil when contentType is the protobuf content type
// of messageType, else ErrContentType naming both accepted types. Readers
// call it after ruling out JSON (IsJSON), the topics' older form.
func CheckProtobuf(contentType, messageType string) error {
	if name, ok := ProtobufMessageType(contentType); ok && name == messageType {
		return nil
	}
	return fmt.Errorf("%w %q (want %s or %s)", ErrContentType, contentType, ProtobufContentType(messageType), ContentTypeJSON)
}
