package stats

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{Missing: 2}},
		{"one", []time.Duration{3 * time.Millisecond}, Summary{N: 1, P50: 3, P90: 3, P99: 3, Max: 3, Mean: 3, Missing: 2}},
		{"1..100 ms", ds, Summary{N: 100, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5, Missing: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.in, 2); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("Summarize sorted its input in place")
	}
}
