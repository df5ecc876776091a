package replay

import (
	"fmt"
	"strings"
	"time"

	"github.com/omninode/onex-fleet/pkg/dlq"
)

// Filter selects records (spec 8.4 filters). Empty fields select all; a
// record must pass every field that is set. Several values in one field are
// alternatives.
type Filter struct {
	// OriginalTopics are original topics (--filter-topic).
	OriginalTopics []string
	// ErrorTypes are error_type values (--filter-error-type), compared exactly.
	ErrorTypes []string
	// CorrelationIDs are correlation ids (--filter-correlation-id), compared
	// as UUIDs when they parse, so case and braces do not matter.
	CorrelationIDs []string
	// Start and End bound failure_timestamp, both inclusive; the zero time
	// leaves that side open.
	Start, End time.Time
}

// Empty reports whether f selects every record.
func (f Filter) Empty() bool {
	return len(f.OriginalTopics) == 0 && len(f.ErrorTypes) == 0 && len(f.CorrelationIDs) == 0 && f.Start.IsZero() && f.End.IsZero()
}

// Validate rejects a window whose end is before its start.
func (f Filter) Validate() error {
	if !f.Start.IsZero() && !f.End.IsZero() && f.End.Before(f.Start) {
		return fmt.Errorf("end time %s is before start time %s", f.End.Format(time.RFC3339Nano), f.Start.Format(time.RFC3339Nano))
	}
	return nil
}

// Match reports whether e is selected, and if not, why. A record that does
// not decode is selected only by the empty filter (so that list shows it).
// A record whose failure_timestamp does not parse is outside every time
// window: the operator asked for a window, and nothing shows it is in it.
func (f Filter) Match(e *Entry) (bool, string) {
	if e.Record == nil && e.Quarantined == nil {
		if f.Empty() {
			return true, ""
		}
		return false, "undecodable record"
	}
	if len(f.OriginalTopics) > 0 && !contains(f.OriginalTopics, e.OriginalTopic()) {
		return false, "original topic not in filter: " + e.OriginalTopic()
	}
	if len(f.ErrorTypes) > 0 && !contains(f.ErrorTypes, e.ErrorType()) {
		return false, "error type not in filter: " + e.ErrorType()
	}
	if len(f.CorrelationIDs) > 0 && !containsID(f.CorrelationIDs, e.CorrelationID()) {
		return false, "correlation id not in filter: " + e.CorrelationID()
	}
	if !f.Start.IsZero() || !f.End.IsZero() {
		at, ok := e.FailedAt()
		switch {
		case !ok:
			return false, "failure_timestamp does not parse"
		case !f.Start.IsZero() && at.Before(f.Start):
			return false, "before start time " + dlq.FormatTimestamp(f.Start)
		case !f.End.IsZero() && at.After(f.End):
			return false, "after end time " + dlq.FormatTimestamp(f.End)
		}
	}
	return true, ""
}

func contains(set []string, v string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

func containsID(set []string, v string) bool {
	n := normalizeID(v)
	for _, s := range set {
		if normalizeID(s) == n {
			return true
		}
	}
	return false
}

// normalizeID is the canonical text of a UUID, or the trimmed input when it
// is not one (correlation ids of foreign writers are compared as written).
func normalizeID(s string) string {
	s = strings.TrimSpace(s)
	if id, err := parseUUID(s); err == nil {
		return id
	}
	return s
}

// ParseTime parses a --start-time/--end-time value: ISO-8601 with or without
// an offset ("Z" accepted), 'T' or a space between date and time, optional
// fractional seconds, or a bare date (midnight). Without an offset it is UTC
// (spec 8.4).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	if t, err := dlq.ParseTimestamp(s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO-8601 time (e.g. 2026-03-02T14:00:00Z; UTC when no offset is given)", s)
}
