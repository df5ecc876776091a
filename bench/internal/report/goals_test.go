package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestGoalJudge(t *testing.T) {
	at := Goal{Key: "p99_ms", Name: "p99", Unit: "ms", Op: "≤", Bound: 50, Unless: []string{"not_active"}}
	atLeast := Goal{Key: "ratio", Name: "ratio", Op: "≥", Bound: 0.5}
	report := Goal{Key: "rate", Name: "rate", Unit: "/s"}
	for _, tc := range []struct {
		name    string
		goal    Goal
		details map[string]float64
		value   string // "" when not measured
		met     string // "met", "NOT MET", "not judged" or "" (report only)
	}{
		{"below the bound", at, map[string]float64{"p99_ms": 42}, "42 ms", "met"},
		{"on the bound", at, map[string]float64{"p99_ms": 50}, "50 ms", "met"},
		{"above the bound", at, map[string]float64{"p99_ms": 51}, "51 ms", "NOT MET"},
		{"below, but nodes missing", at, map[string]float64{"p99_ms": 42, "not_active": 3}, "42 ms", "NOT MET"},
		{"below, none missing", at, map[string]float64{"p99_ms": 42, "not_active": 0}, "42 ms", "met"},
		{"not measured", at, map[string]float64{"other": 1}, "", "not judged"},
		{"no details", at, nil, "", "not judged"},
		{"at least", atLeast, map[string]float64{"ratio": 0.5}, "0.5", "met"},
		{"short of at least", atLeast, map[string]float64{"ratio": 0.149}, "0.149", "NOT MET"},
		{"report only", report, map[string]float64{"rate": 35}, "35 /s", ""},
		{"report only, not measured", report, nil, "", ""},
		{"thousands without an exponent", Goal{Key: "us", Unit: "µs", Op: "≤", Bound: 100}, map[string]float64{"us": 1233.4}, "1233 µs", "NOT MET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.goal.Judge(tc.details)
			value := ""
			if g.Value != nil {
				value = g.measured()
			}
			if value != tc.value || g.verdict() != tc.met {
				t.Fatalf("judged %q, %q; want %q, %q", value, g.verdict(), tc.value, tc.met)
			}
			if tc.value == "" && g.measured() != "not measured" {
				t.Fatalf("a goal not measured shows %q", g.measured())
			}
		})
	}
}

func TestGoalText(t *testing.T) {
	for _, tc := range []struct {
		goal Goal
		want string
	}{
		{Goal{Unit: "µs", Op: "≤", Bound: 100}, "≤ 100 µs"},
		{Goal{Unit: "ms", Op: "≤", Bound: 4}, "≤ 4 ms"},
		{Goal{Op: "≤", Bound: 3}, "≤ 3"},
		{Goal{Op: "≥", Bound: 0.5}, "≥ 0.5"},
		{Goal{Unit: "/s"}, "(report only)"},
	} {
		if got := tc.goal.Text(); got != tc.want {
			t.Errorf("Text() = %q, want %q", got, tc.want)
		}
	}
}

func goalSample() *Result {
	r := sample()
	r.GoalTables = []GoalTable{{Title: "Issue #17", Goals: []Goal{
		{Key: "fleet_cpu_us_per_heartbeat", Name: "Fleet CPU per heartbeat", Unit: "µs", Op: "≤", Bound: 100},
		{Key: "saturation_registrations_per_s", Name: "Saturation", Unit: "/s"},
		{Key: "p99_active_ms_at_half_saturation", Name: "p99 to ACTIVE at half saturation", Unit: "ms", Op: "≤", Bound: 300},
	}}}
	r.Detail("fleet_cpu_us_per_heartbeat", 87.5)
	r.Detail("saturation_registrations_per_s", 35)
	return r
}

func TestGoalTablesRendered(t *testing.T) {
	r := goalSample()
	var md, tbl, js bytes.Buffer
	r.WriteMarkdown(&md, "chart.png")
	r.WriteTable(&tbl)
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Issue #17:",
		"| figure | key (`details`) | goal | measured | status |",
		"| Fleet CPU per heartbeat | `fleet_cpu_us_per_heartbeat` | ≤ 100 µs | 87.5 µs | met |",
		"| Saturation | `saturation_registrations_per_s` | (report only) | 35 /s |  |",
		"| p99 to ACTIVE at half saturation | `p99_active_ms_at_half_saturation` | ≤ 300 ms | not measured | not judged |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md.String())
		}
	}
	for _, want := range []string{"Issue #17", "KEY", "fleet_cpu_us_per_heartbeat", "≤ 100 µs", "87.5 µs", "not measured"} {
		if !strings.Contains(tbl.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tbl.String())
		}
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	g := back.GoalTables[0].Goals
	if g[0].Value == nil || *g[0].Value != 87.5 || g[0].Met == nil || !*g[0].Met || g[1].Met != nil || g[2].Value != nil {
		t.Fatalf("results.json goals not judged: %+v", g)
	}
	if back.Details["fleet_cpu_us_per_heartbeat"] != 87.5 {
		t.Fatalf("the key is not in details: %v", back.Details)
	}
	if r.GoalTables[0].Goals[0].Value != nil {
		t.Fatal("writing the result changed its goals")
	}
}
