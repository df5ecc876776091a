package replay

import "sort"

// Undecodable is the error type under which Stats counts records that do not
// decode.
const Undecodable = "(undecodable)"

// StatsKey is one cell of the DLQ statistics.
type StatsKey struct {
	DLQTopic      string `json:"dlq_topic"`
	OriginalTopic string `json:"original_topic"`
	ErrorType     string `json:"error_type"`
	FailureClass  string `json:"failure_class"`
}

// StatsRow is a StatsKey with its count.
type StatsRow struct {
	StatsKey
	Count int `json:"count"`
}

// Stats counts records per DLQ topic × original topic × error type ×
// failure class.
type Stats map[StatsKey]int

// Add counts e.
func (s Stats) Add(e *Entry) {
	k := StatsKey{DLQTopic: e.Topic, OriginalTopic: e.OriginalTopic(), ErrorType: e.ErrorType(), FailureClass: e.FailureClass()}
	if e.Record == nil && e.Quarantined == nil {
		k.ErrorType = Undecodable
	}
	s[k]++
}

// Rows returns the cells ordered by DLQ topic, then count (largest first),
// then original topic, error type and failure class.
func (s Stats) Rows() []StatsRow {
	rows := make([]StatsRow, 0, len(s))
	for k, n := range s {
		rows = append(rows, StatsRow{k, n})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		switch {
		case a.DLQTopic != b.DLQTopic:
			return a.DLQTopic < b.DLQTopic
		case a.Count != b.Count:
			return a.Count > b.Count
		case a.OriginalTopic != b.OriginalTopic:
			return a.OriginalTopic < b.OriginalTopic
		case a.ErrorType != b.ErrorType:
			return a.ErrorType < b.ErrorType
		}
		return a.FailureClass < b.FailureClass
	})
	return rows
}

// Total is the number of records counted.
func (s Stats) Total() int {
	n := 0
	for _, c := range s {
		n += c
	}
	return n
}
