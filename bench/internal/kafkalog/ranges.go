package kafkalog

import "sort"

// Range is the stretch one partition's log grew by between two readings
// of the ends: offsets From (included) to To (excluded), each a record or
// a transaction marker.
type Range struct {
	Topic     string
	Partition int32
	From, To  int64
}

// Offsets is the number of offsets in the range.
func (r Range) Offsets() int64 { return r.To - r.From }

// Grown returns the ranges of the partitions that grew from one reading
// to the next, ordered by topic and partition, Kafka's own topics left
// out. A partition missing from the first reading (its topic created
// since), or whose end went back (its topic deleted and created again),
// counts from offset 0; one missing from the second (its topic deleted
// since) is left out, its records gone with it.
func Grown(from, to Ends) []Range {
	var out []Range
	for t, parts := range to {
		if Internal(t) {
			continue
		}
		for p, end := range parts {
			start, ok := from[t][p]
			if !ok || start > end {
				start = 0
			}
			if end > start {
				out = append(out, Range{Topic: t, Partition: p, From: start, To: end})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}
