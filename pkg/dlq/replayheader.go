package dlq

import (
	"strconv"
	"strings"

	"github.com/IBM/sarama"
)

// HeaderReplayCount is the header the replay tool puts on a record it
// republishes from a DLQ (spec 8.4): the DLQ record's retry_count + 1.
const HeaderReplayCount = "x-replay-count"

// ReplayCount returns the value of the x-replay-count header among headers
// (the last one when repeated), and whether there is one holding a
// non-negative decimal integer. Anything else is ignored: a header is outside
// input, and a garbled one must not stop a record from being dead-lettered.
func ReplayCount(headers []*sarama.RecordHeader) (int, bool) {
	n, ok := 0, false
	for _, h := range headers {
		if h == nil || string(h.Key) != HeaderReplayCount {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(h.Value)))
		if err != nil || v < 0 {
			continue
		}
		n, ok = v, true
	}
	return n, ok
}
