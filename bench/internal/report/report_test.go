package report

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/bench/internal/stats"
)

func sample() *Result {
	r := &Result{Started: time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC), Seconds: 600}
	r.Add(Figure{ID: "registration", Name: "Registration", Unit: "nodes/s", Value: 640, Target: "≥ 0.7 of Consul",
		Met: Bool(true), CeilingID: "consul", Ceiling: 800, Ratio: Float(0.8), Note: "closed loop"})
	r.Add(Figure{ID: "reducer_tick", Name: "Tick", Unit: "ms", Value: 0.004, Target: "≤ 1 ms", Met: Bool(false)})
	r.Latency = map[string]stats.Summary{"accepted": {N: 3000, P50: 4, P99: 12, Max: 30}}
	r.Curve = []CurvePoint{
		{Offered: 100, Achieved: 100, Accepted: stats.Summary{P99: 12}, Active: stats.Summary{P50: 40, P99: 80}},
		{Offered: 400, Achieved: 390, Accepted: stats.Summary{P99: 30}, Active: stats.Summary{P50: 90, P99: 400}},
		{Offered: 800, Achieved: 500, Accepted: stats.Summary{P99: 900}, Active: stats.Summary{P50: 2000, P99: 9000}},
	}
	r.Detail("ceiling_kafka_msgs_per_s", 90000)
	r.Note("a remark")
	return r
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	if err := sample().WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "latency-curve.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 900 || b.Dy() != 560 {
		t.Fatalf("chart is %v, want 900x560", b)
	}
	// Some pixels carry the series colours (the chart is not blank).
	red := 0
	for x := 0; x < 900; x++ {
		for y := 0; y < 560; y++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r>>8 == 214 && g>>8 == 39 && bl>>8 == 40 {
				red++
			}
		}
	}
	if red < 100 {
		t.Fatalf("only %d pixels of the p99 series drawn", red)
	}
	var back Result
	b, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Figures) != 2 || len(back.Curve) != 3 {
		t.Fatalf("results.json does not round-trip: %v %+v", err, back)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	for _, want := range []string{
		"| Registration | ≥ 0.7 of Consul | 640 nodes/s | consul: 800/s | 0.80 | met |",
		"| Tick | ≤ 1 ms | 0.004 ms | — | — | NOT MET |",
		"| 800 | 500 | ", "latency-curve.png", "a remark", "`ceiling_kafka_msgs_per_s`: 9e+04",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	sample().WriteTable(&b)
	for _, want := range []string{"FIGURE", "0.80 of consul", "NOT MET", "note: a remark"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0, 1}, {1, 1}, {1.2, 2}, {2100, 2500}, {2600, 5000}, {9000, 10000}} {
		if got := niceCeil(tc.in); got != tc.want {
			t.Errorf("niceCeil(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestRecordsByTopicRendered: the records per heartbeat and per
// registration by topic appear in results.md, largest first, only when
// measured.
func TestRecordsByTopicRendered(t *testing.T) {
	tests := []struct {
		name      string
		set       func(r *Result)
		want, not []string
	}{
		{name: "neither measured", not: []string{"Kafka records per heartbeat", "Kafka records per registration"}},
		{name: "per registration", set: func(r *Result) {
			r.RecordsPerRegistration = map[string]float64{"onex.cmd.platform.reducer-input.v1": 2.08, "onex.intent.platform.registration-intents.v1": 4.3}
		}, want: []string{"Kafka records per registration ACTIVE",
			"- `onex.intent.platform.registration-intents.v1`: 4.300\n- `onex.cmd.platform.reducer-input.v1`: 2.080"},
			not: []string{"Kafka records per heartbeat"}},
		{name: "per heartbeat", set: func(r *Result) {
			r.RecordsPerHeartbeat = map[string]float64{"onex.evt.platform.node-heartbeat.v1": 1}
		}, want: []string{"Kafka records per heartbeat offered", "- `onex.evt.platform.node-heartbeat.v1`: 1.000"},
			not: []string{"Kafka records per registration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sample()
			if tt.set != nil {
				tt.set(r)
			}
			var b bytes.Buffer
			r.WriteMarkdown(&b, "")
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("results.md lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("results.md has %q:\n%s", n, b.String())
				}
			}
		})
	}
}
