package report

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
)

// GoalTable is a set of goals judged together, an issue's, say: each reads
// one of the run's details, so the goals are judged on the same figures
// results.json holds.
type GoalTable struct {
	Title string `json:"title"`
	Goals []Goal `json:"goals"`
}

// Goal is a bound on one detail of the run.
type Goal struct {
	// Key is the detail the goal reads.
	Key  string `json:"key"`
	Name string `json:"name"`
	Unit string `json:"unit,omitempty"`
	// Op is "≤" or "≥"; empty for a figure reported without a goal.
	Op    string  `json:"op,omitempty"`
	Bound float64 `json:"bound,omitempty"`
	// Unless names details that must be zero (or absent) for the goal to
	// count as met: a latency percentile says nothing of the nodes that
	// never got there.
	Unless []string `json:"unless,omitempty"`
	// Value and Met are the judgement, filled in from the details when the
	// result is written; nil when the detail was not measured.
	Value *float64 `json:"value,omitempty"`
	Met   *bool    `json:"met,omitempty"`
}

// Text is the goal as the table shows it.
func (g Goal) Text() string {
	if g.Op == "" {
		return "(report only)"
	}
	return g.Op + " " + fmtValue(g.Bound, g.Unit)
}

// Judge returns g with its value and verdict taken from details.
func (g Goal) Judge(details map[string]float64) Goal {
	g.Value, g.Met = nil, nil
	v, ok := details[g.Key]
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return g
	}
	g.Value = Float(v)
	var met bool
	switch g.Op {
	case "≤":
		met = v <= g.Bound
	case "≥":
		met = v >= g.Bound
	default:
		return g
	}
	for _, k := range g.Unless {
		if details[k] != 0 {
			met = false
		}
	}
	g.Met = Bool(met)
	return g
}

// measured is the goal's value as the table shows it.
func (g Goal) measured() string {
	if g.Value == nil {
		return "not measured"
	}
	return fmtValue(*g.Value, g.Unit)
}

// verdict is the goal's status column.
func (g Goal) verdict() string {
	switch {
	case g.Op == "":
		return ""
	case g.Met == nil:
		return "not judged"
	case *g.Met:
		return "met"
	}
	return "NOT MET"
}

// judged returns the goal tables judged on the result's details.
func (r *Result) judged() []GoalTable {
	out := make([]GoalTable, len(r.GoalTables))
	for i, t := range r.GoalTables {
		out[i] = GoalTable{Title: t.Title, Goals: make([]Goal, len(t.Goals))}
		for j, g := range t.Goals {
			out[i].Goals[j] = g.Judge(r.Details)
		}
	}
	return out
}

// writeGoalsTable prints the goal tables for a terminal.
func (r *Result) writeGoalsTable(w io.Writer) {
	for _, t := range r.judged() {
		fmt.Fprintf(w, "\n%s\n", t.Title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FIGURE\tKEY\tGOAL\tMEASURED\tSTATUS")
		for _, g := range t.Goals {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Name, g.Key, g.Text(), g.measured(), g.verdict())
		}
		tw.Flush()
	}
}

// writeGoalsMarkdown writes the goal tables for results.md.
func (r *Result) writeGoalsMarkdown(w io.Writer) {
	for _, t := range r.judged() {
		fmt.Fprintf(w, "\n%s:\n\n", t.Title)
		fmt.Fprintln(w, "| figure | key (`details`) | goal | measured | status |")
		fmt.Fprintln(w, "|---|---|---|---:|---|")
		for _, g := range t.Goals {
			fmt.Fprintf(w, "| %s | `%s` | %s | %s | %s |\n", g.Name, g.Key, g.Text(), g.measured(), g.verdict())
		}
	}
}
