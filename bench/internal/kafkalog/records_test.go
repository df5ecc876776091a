package kafkalog

import "testing"

func TestEstimate(t *testing.T) {
	r := Range{Topic: "t", From: 100, To: 1100} // 1,000 offsets
	for _, tc := range []struct {
		name          string
		read, records int64
		want          float64
	}{
		{"read whole: the records read", 1000, 900, 900},
		{"read whole, no marker", 1000, 1000, 1000},
		{"read a fifth: scaled", 200, 150, 750},
		{"read beyond the range: the records read", 1200, 900, 900},
		{"nothing read: every offset a record", 0, 0, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Count{Range: r, Read: tc.read, Records: tc.records}).Estimate(); got != tc.want {
				t.Fatalf("Estimate = %v, want %v", got, tc.want)
			}
		})
	}
}
