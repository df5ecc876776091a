package kafkalog

import (
	"reflect"
	"testing"
)

func TestGrown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to Ends
		want     []Range
	}{
		{"nothing read", nil, nil, nil},
		{"grown and idle partitions", Ends{"hb": {0: 10, 1: 20}}, Ends{"hb": {0: 15, 1: 20}},
			[]Range{{"hb", 0, 10, 15}}},
		{"ordered by topic and partition", Ends{"b": {1: 0, 0: 0}, "a": {0: 5}}, Ends{"b": {1: 3, 0: 2}, "a": {0: 9}},
			[]Range{{"a", 0, 5, 9}, {"b", 0, 0, 2}, {"b", 1, 0, 3}}},
		{"Kafka's own topics left out", Ends{"__consumer_offsets": {0: 1}, "__transaction_state": {3: 1}, "hb": {0: 1}},
			Ends{"__consumer_offsets": {0: 900}, "__transaction_state": {3: 70}, "hb": {0: 2}},
			[]Range{{"hb", 0, 1, 2}}},
		{"a topic created since counts from 0", Ends{}, Ends{"new": {0: 4}}, []Range{{"new", 0, 0, 4}}},
		{"a partition added since counts from 0", Ends{"t": {0: 4}}, Ends{"t": {0: 4, 1: 2}}, []Range{{"t", 1, 0, 2}}},
		{"a topic created again counts from 0", Ends{"t": {0: 400}}, Ends{"t": {0: 7}}, []Range{{"t", 0, 0, 7}}},
		{"a topic deleted since is left out", Ends{"gone": {0: 4}, "t": {0: 1}}, Ends{"t": {0: 3}}, []Range{{"t", 0, 1, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Grown(tc.from, tc.to); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Grown = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInternal(t *testing.T) {
	for topic, want := range map[string]bool{
		"__consumer_offsets": true, "__transaction_state": true,
		"onex.evt.platform.node-heartbeat.v1": false, "_confluent-metrics": false,
	} {
		if got := Internal(topic); got != want {
			t.Errorf("Internal(%q) = %v, want %v", topic, got, want)
		}
	}
}
