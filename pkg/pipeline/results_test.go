package pipeline

import (
	"testing"

	"github.com/IBM/sarama"
)

func TestFailuresOnly(t *testing.T) {
	h := func(k, v string) *sarama.RecordHeader { return &sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	own := FailuresOnlyHeader()
	for _, tt := range []struct {
		name    string
		headers []*sarama.RecordHeader
		want    bool
	}{
		{"no headers (an older orchestrator)", nil, false},
		{"other headers", []*sarama.RecordHeader{nil, h("correlation_id", "x")}, false},
		{"the routed header", []*sarama.RecordHeader{h("source", "dev"), &own}, true},
		{"by name", []*sarama.RecordHeader{h("x-onex-results", "failures")}, true},
		{"another value", []*sarama.RecordHeader{h(HeaderResults, "all")}, false},
		{"empty value", []*sarama.RecordHeader{h(HeaderResults, "")}, false},
		{"the last one decides", []*sarama.RecordHeader{h(HeaderResults, ResultsFailures), h(HeaderResults, "all")}, false},
	} {
		if got := FailuresOnly(tt.headers); got != tt.want {
			t.Errorf("%s: FailuresOnly = %v, want %v", tt.name, got, tt.want)
		}
	}
}
