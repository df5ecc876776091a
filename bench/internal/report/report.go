// Package report holds the benchmark's results and writes them as the
// printed table, JSON, Markdown and the latency-against-load chart.
package report

import (
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/omninode/onex-fleet/bench/internal/procs"
	"github.com/omninode/onex-fleet/bench/internal/profiles"
	"github.com/omninode/onex-fleet/bench/internal/stats"
)

// Figure is one row of the results table.
type Figure struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Value  float64 `json:"value"`
	Target string  `json:"target"`
	// Met is nil when the figure has no target.
	Met *bool `json:"met,omitempty"`
	// Ceiling is the raw server rate this figure is compared with.
	CeilingID string   `json:"ceiling_id,omitempty"`
	Ceiling   float64  `json:"ceiling,omitempty"`
	Ratio     *float64 `json:"ratio,omitempty"`
	Note      string   `json:"note,omitempty"`
}

// CurvePoint is one offered load of the latency curve.
type CurvePoint struct {
	Offered  float64       `json:"offered_per_s"`
	Achieved float64       `json:"achieved_per_s"`
	Accepted stats.Summary `json:"to_accepted"`
	Active   stats.Summary `json:"to_active"`
}

// Hop is one stretch of a registration's way (from one record or
// observation to the next), summarised over the fixed-load registrations.
type Hop struct {
	What string        `json:"what"`
	From string        `json:"from"`
	To   string        `json:"to"`
	Time stats.Summary `json:"time"`
}

// Phase is what the machine did during one phase.
type Phase struct {
	Name     string                      `json:"name"`
	Seconds  float64                     `json:"seconds"`
	CPU      procs.CPUUse                `json:"cpu"`
	Profiles map[string]profiles.Summary `json:"profiles,omitempty"`
	// Timings are the services' own time per message or call during the
	// phase (from their histograms), next to which the CPU per unit shows
	// whether a service was working or waiting.
	Timings []Timing `json:"timings,omitempty"`
	// Unit and PerUnit: for a phase with a throughput, the CPU time each
	// process spent per unit of work (µs per heartbeat, per registration).
	Unit    string             `json:"unit,omitempty"`
	PerUnit map[string]float64 `json:"cpu_us_per_unit,omitempty"`
}

// Timing is what one service spent per message or call on one thing.
type Timing struct {
	Service string  `json:"service"`
	What    string  `json:"what"`
	Count   float64 `json:"count"`
	Mean    float64 `json:"mean"`
	Unit    string  `json:"unit"` // of Mean
}

// SetRate records the CPU time per unit of work of a phase that moved
// perSecond units per second.
func (p *Phase) SetRate(unit string, perSecond float64) {
	if perSecond <= 0 {
		return
	}
	p.Unit = unit
	p.PerUnit = map[string]float64{}
	for name, cores := range p.CPU.Groups {
		p.PerUnit[name] = cores / perSecond * 1e6
	}
	p.PerUnit["machine (all processes)"] = p.CPU.Busy / perSecond * 1e6
}

// Result is everything one run measured.
type Result struct {
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Machine  Machine   `json:"machine"`
	Settings any       `json:"settings"`
	Figures  []Figure  `json:"figures"`
	// Latency holds the full latency summaries at the fixed load, by
	// segment (to_accepted, to_node_active, to_pg_active, to_consul,
	// to_active).
	Latency map[string]stats.Summary `json:"latency_at_fixed_load"`
	Curve   []CurvePoint             `json:"latency_curve"`
	// Hops split the fixed-load registrations' latency along their way.
	Hops []Hop `json:"hops_at_fixed_load,omitempty"`
	// HalfSaturation is the run at half the saturation rate (the highest
	// offered registration rate the curve and its search sustained).
	HalfSaturation *CurvePoint `json:"latency_at_half_saturation,omitempty"`
	// RecordsPerHeartbeat are the Kafka records written per heartbeat
	// offered during the heartbeat phase, by topic (transaction markers
	// counted out).
	RecordsPerHeartbeat map[string]float64 `json:"kafka_records_per_heartbeat_by_topic,omitempty"`
	// RecordsPerRegistration are the Kafka records written per
	// registration that became ACTIVE in the registration run's window, by
	// topic (transaction markers counted out).
	RecordsPerRegistration map[string]float64 `json:"kafka_records_per_registration_by_topic,omitempty"`
	// GoalTables are goals on the details (an issue's), judged when the
	// result is written.
	GoalTables []GoalTable `json:"goal_tables,omitempty"`
	// Details are secondary measurements, by name.
	Details map[string]float64 `json:"details"`
	Phases  []Phase            `json:"phases"`
	Notes   []string           `json:"notes"`
}

// Machine describes where the run happened.
type Machine struct {
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	Load1     float64 `json:"load1_at_start"`
	GoVersion string  `json:"go_version"`
	Commit    string  `json:"commit"`
}

// Phase returns the phase named name (nil if none).
func (r *Result) Phase(name string) *Phase {
	for i := range r.Phases {
		if r.Phases[i].Name == name {
			return &r.Phases[i]
		}
	}
	return nil
}

// Add appends a figure; met and ratio are computed by the caller. A ratio
// to a ceiling that was not measured is dropped, and a value that is not a
// number is recorded as 0 with a note, so the JSON stays valid.
func (r *Result) Add(f Figure) {
	if f.Ratio != nil && (f.Ceiling <= 0 || math.IsNaN(*f.Ratio) || math.IsInf(*f.Ratio, 0)) {
		f.Ratio = nil
		f.Note += " (no ceiling was measured)"
	}
	if math.IsNaN(f.Value) || math.IsInf(f.Value, 0) {
		f.Value = 0
		f.Note += " (not measured)"
	}
	r.Figures = append(r.Figures, f)
}

// Detail records a secondary measurement.
func (r *Result) Detail(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if r.Details == nil {
		r.Details = map[string]float64{}
	}
	r.Details[name] = v
}

// Note records a remark printed under the table.
func (r *Result) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Ptr helpers for optional fields.
func Bool(b bool) *bool        { return &b }
func Float(f float64) *float64 { return &f }

func fmtValue(v float64, unit string) string {
	var s string
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.Abs(v) >= 1000:
		s = fmt.Sprintf("%.0f", v)
	case unit == "ms" || unit == "s" || unit == "µs":
		s = fmt.Sprintf("%.3g", v)
	case v >= 100:
		s = fmt.Sprintf("%.0f", v)
	default:
		s = fmt.Sprintf("%.3g", v)
	}
	if unit == "" {
		return s
	}
	return s + " " + unit
}

func status(f Figure) string {
	if f.Met == nil {
		return ""
	}
	if *f.Met {
		return "met"
	}
	return "NOT MET"
}

func ratio(f Figure) string {
	if f.Ratio == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f of %s", *f.Ratio, f.CeilingID)
}

// WriteTable prints the results table for a terminal.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tTARGET\tMEASURED\tRATIO TO CEILING\tSTATUS")
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Name, f.Target, fmtValue(f.Value, f.Unit), ratio(f), status(f))
	}
	tw.Flush()
	r.writeGoalsTable(w)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// WriteJSON writes the whole result, its goals judged.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	c := *r
	c.GoalTables = r.judged()
	return enc.Encode(&c)
}

// WriteMarkdown writes the result for docs/performance.md and the results
// directory: the table, the latency summaries, the curve, the CPU use per
// phase and the profile summaries.
func (r *Result) WriteMarkdown(w io.Writer, chartFile string) {
	fmt.Fprintf(w, "Run of %s UTC, %.0f s, on %d cores / %.0f GiB (load %.2f at start), %s, commit %s.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04"), r.Seconds, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.Load1, r.Machine.GoVersion, r.Machine.Commit)
	fmt.Fprintln(w, "| figure | target | measured | ceiling (same run) | ratio | status |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|")
	for _, f := range r.Figures {
		ceil := "—"
		if f.CeilingID != "" {
			ceil = fmt.Sprintf("%s: %.0f/s", f.CeilingID, f.Ceiling)
		}
		rat := "—"
		if f.Ratio != nil {
			rat = fmt.Sprintf("%.2f", *f.Ratio)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", f.Name, f.Target, fmtValue(f.Value, f.Unit), ceil, rat, status(f))
	}
	fmt.Fprintln(w)
	for _, f := range r.Figures {
		if f.Note != "" {
			fmt.Fprintf(w, "- **%s**: %s\n", f.Name, f.Note)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	r.writeGoalsMarkdown(w)
	if len(r.Latency) > 0 {
		fmt.Fprintln(w, "\nLatency at the fixed offered load, from the introspection handed to the node client:")
		fmt.Fprintln(w, "\n| to | n | p50 ms | p90 ms | p99 ms | max ms | not reached |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
		for _, k := range sortedKeys(r.Latency) {
			s := r.Latency[k]
			fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %d |\n", k, s.N, s.P50, s.P90, s.P99, s.Max, s.Missing)
		}
	}
	if len(r.Hops) > 0 {
		fmt.Fprintln(w, "\nWhere the fixed-load latency goes, hop by hop (Kafka record creation times and the observers' times):")
		fmt.Fprintln(w, "\n| hop | from → to | n | p50 ms | p99 ms | max ms |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
		for _, h := range r.Hops {
			fmt.Fprintf(w, "| %s | %s → %s | %d | %.1f | %.1f | %.1f |\n", h.What, h.From, h.To, h.Time.N, h.Time.P50, h.Time.P99, h.Time.Max)
		}
	}
	if len(r.Curve) > 0 {
		fmt.Fprintf(w, "\nLatency against offered load (![curve](%s)):\n\n", chartFile)
		fmt.Fprintln(w, "| offered /s | achieved /s | accepted p50 | accepted p99 | ACTIVE p50 | ACTIVE p99 | ACTIVE max | not ACTIVE |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, p := range r.Curve {
			fmt.Fprintf(w, "| %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %d |\n", p.Offered, p.Achieved,
				p.Accepted.P50, p.Accepted.P99, p.Active.P50, p.Active.P99, p.Active.Max, p.Active.Missing)
		}
	}
	if h := r.HalfSaturation; h != nil {
		fmt.Fprintf(w, "\nAt half the saturation rate: %.1f/s offered, %.1f/s achieved; to accepted p50 %.1f ms, p99 %.1f ms (%d of %d not accepted); "+
			"to ACTIVE p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d not ACTIVE).\n", h.Offered, h.Achieved, h.Accepted.P50, h.Accepted.P99,
			h.Accepted.Missing, h.Accepted.N+h.Accepted.Missing, h.Active.P50, h.Active.P99, h.Active.Max, h.Active.Missing)
	}
	if len(r.RecordsPerHeartbeat) > 0 {
		fmt.Fprintln(w, "\nKafka records per heartbeat offered in the heartbeat phase, by topic (transaction markers counted out):")
		fmt.Fprintln(w)
		for _, k := range sortedByValue(r.RecordsPerHeartbeat) {
			fmt.Fprintf(w, "- `%s`: %.3f\n", k, r.RecordsPerHeartbeat[k])
		}
	}
	if len(r.RecordsPerRegistration) > 0 {
		fmt.Fprintln(w, "\nKafka records per registration ACTIVE in the registration run's window, by topic (transaction markers counted out):")
		fmt.Fprintln(w)
		for _, k := range sortedByValue(r.RecordsPerRegistration) {
			fmt.Fprintf(w, "- `%s`: %.3f\n", k, r.RecordsPerRegistration[k])
		}
	}
	if len(r.Details) > 0 {
		fmt.Fprintln(w, "\nOther measurements:")
		fmt.Fprintln(w)
		for _, k := range sortedKeys(r.Details) {
			fmt.Fprintf(w, "- `%s`: %.4g\n", k, r.Details[k])
		}
	}
	for _, ph := range r.Phases {
		fmt.Fprintf(w, "\n#### Phase `%s` (%.0f s)\n\n", ph.Name, ph.Seconds)
		fmt.Fprintf(w, "CPU (cores of %d; machine busy %.2f):", ph.CPU.Cores, ph.CPU.Busy)
		for _, n := range ph.CPU.Names() {
			fmt.Fprintf(w, " %s %.2f,", n, ph.CPU.Groups[n])
		}
		fmt.Fprintf(w, " not accounted (other processes) %.2f.\n", ph.CPU.Other)
		if len(ph.PerUnit) > 0 {
			fmt.Fprintf(w, "\nCPU per %s (µs):", ph.Unit)
			for _, n := range sortedByValue(ph.PerUnit) {
				fmt.Fprintf(w, " %s %.0f,", n, ph.PerUnit[n])
			}
			fmt.Fprintln(w)
		}
		if len(ph.Timings) > 0 {
			fmt.Fprintln(w, "\n| service | per | count | mean |\n|---|---|---:|---:|")
			for _, t := range ph.Timings {
				fmt.Fprintf(w, "| %s | %s | %.0f | %.3g %s |\n", t.Service, t.What, t.Count, t.Mean, t.Unit)
			}
		}
		for _, svc := range sortedKeys(ph.Profiles) {
			p := ph.Profiles[svc]
			if strings.HasSuffix(svc, "(waits)") {
				fmt.Fprintf(w, "\n`%s` block profile (on average %.1f goroutines waiting); where the fleet's code waited:\n", svc, p.Cores)
				fmt.Fprintln(w, "\n| function | share of all waiting |\n|---|---:|")
				for _, f := range p.Cum {
					fmt.Fprintf(w, "| `%s` | %.1f %% |\n", f.Name, f.Cum)
				}
				continue
			}
			fmt.Fprintf(w, "\n`%s` profile (%.2f cores): ", svc, p.Cores)
			for _, g := range sortedByValue(p.Groups) {
				fmt.Fprintf(w, "%s %.0f%%, ", g, p.Groups[g])
			}
			fmt.Fprintln(w)
			fmt.Fprintln(w, "\n| top flat | flat % | cum % |\n|---|---:|---:|")
			for _, f := range p.Flat {
				fmt.Fprintf(w, "| `%s` | %.1f | %.1f |\n", f.Name, f.Flat, f.Cum)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedByValue(m map[string]float64) []string {
	out := sortedKeys(m)
	sort.SliceStable(out, func(i, j int) bool { return m[out[i]] > m[out[j]] })
	return out
}

// CurveChart draws p50/p99 to ACTIVE and p99 to accepted against offered
// load, with the targets as dashed lines.
func (r *Result) CurveChart() Chart {
	var x, accP99, actP50, actP99, t25, t100 []float64
	for _, p := range r.Curve {
		x = append(x, p.Offered)
		accP99 = append(accP99, p.Accepted.P99)
		actP50 = append(actP50, p.Active.P50)
		actP99 = append(actP99, p.Active.P99)
		t25 = append(t25, 25)
		t100 = append(t100, 100)
	}
	return Chart{
		Title:  "Registration latency against offered load (" + r.Started.UTC().Format("2006-01-02") + ")",
		XLabel: "offered registrations per second", YLabel: "latency (ms, log)",
		Series: []Series{
			{Name: "p99 to accepted", Color: color.RGBA{31, 119, 180, 255}, X: x, Y: accP99},
			{Name: "p50 to ACTIVE", Color: color.RGBA{44, 160, 44, 255}, X: x, Y: actP50},
			{Name: "p99 to ACTIVE", Color: color.RGBA{214, 39, 40, 255}, X: x, Y: actP99},
			{Name: "targets 25/100 ms", Color: color.RGBA{120, 120, 120, 255}, X: x, Y: t25, Dashed: true},
			{Name: "", Color: color.RGBA{120, 120, 120, 255}, X: x, Y: t100, Dashed: true},
		},
	}
}

// WriteFiles writes results.json, results.md and latency-curve.png into dir.
func (r *Result) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, fn func(io.Writer) error) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	const chart = "latency-curve.png"
	if err := write("results.json", r.WriteJSON); err != nil {
		return err
	}
	if err := write("results.md", func(w io.Writer) error {
		fmt.Fprintln(w, "# `make bench` results")
		fmt.Fprintln(w)
		r.WriteMarkdown(w, chart)
		return nil
	}); err != nil {
		return err
	}
	return write(chart, r.CurveChart().WritePNG)
}

// Indent returns s with every line prefixed (for logs).
func Indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
