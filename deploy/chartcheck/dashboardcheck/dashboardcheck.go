// Package dashboardcheck reads the Grafana dashboard under deploy/grafana
// and the metric catalogues the services generate from their registries
// (services/<svc>/metrics.txt, written and checked by each service's
// TestMetricsMove), so that tests can check that every series a panel
// queries is one some service registers, with the labels it uses.
package dashboardcheck

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Dashboard is the part of a Grafana dashboard model the checks read.
type Dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is one dashboard panel (rows included).
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	GridPos    struct {
		H int `json:"h"`
		W int `json:"w"`
		X int `json:"x"`
		Y int `json:"y"`
	} `json:"gridPos"`
	Targets []Target `json:"targets"`
	// Panels holds the panels of a collapsed row.
	Panels []Panel `json:"panels"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *Datasource `json:"datasource"`
}

// Datasource names a data source, usually through the ${datasource} variable.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Variable is one templating variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *Datasource     `json:"datasource"`
}

// QueryExpr returns the PromQL of a query variable (Grafana stores either a
// string or an object with a query field).
func (v Variable) QueryExpr() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

// Load reads a dashboard JSON file.
func Load(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// AllPanels returns the panels with the panels of collapsed rows.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// Catalogue maps each metric name some service registers to its label
// names, and records which services register it.
type Catalogue struct {
	Labels   map[string][]string
	Services map[string][]string
}

// LoadCatalogues reads services/<svc>/metrics.txt for every directory
// under servicesDir; a service without one is an error.
func LoadCatalogues(servicesDir string) (*Catalogue, error) {
	entries, err := os.ReadDir(servicesDir)
	if err != nil {
		return nil, err
	}
	c := &Catalogue{Labels: map[string][]string{}, Services: map[string][]string{}}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(servicesDir, e.Name(), "metrics.txt")
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("service %s has no metric catalogue: %w", e.Name(), err)
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, labels, ok := parseCatalogueLine(line)
			if !ok {
				f.Close()
				return nil, fmt.Errorf("%s: line %q is not name{label,...}", path, line)
			}
			if old, seen := c.Labels[name]; seen && !slices.Equal(old, labels) {
				f.Close()
				return nil, fmt.Errorf("%s: %s has labels %v here and %v in another service", path, name, labels, old)
			}
			c.Labels[name] = labels
			c.Services[name] = append(c.Services[name], e.Name())
			n++
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%s lists no metric", path)
		}
	}
	return c, nil
}

var catalogueLine = regexp.MustCompile(`^(onex_[a-z0-9_]+)\{([a-z0-9_,]*)\}$`)

func parseCatalogueLine(line string) (string, []string, bool) {
	m := catalogueLine.FindStringSubmatch(line)
	if m == nil {
		return "", nil, false
	}
	var labels []string
	if m[2] != "" {
		labels = strings.Split(m[2], ",")
	}
	return m[1], labels, true
}

// Ref is one use of a metric in a PromQL expression: its name as written
// and the labels of its selector.
type Ref struct {
	Name   string
	Labels []string
}

var (
	quoted   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	metricRe = regexp.MustCompile(`\b(onex_[a-zA-Z0-9_:]*)\s*(\{[^}]*\})?`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	grouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
)

// MetricRefs returns every onex_ metric an expression selects, with the
// label names of its selector. String literals are blanked first, so a
// label value never reads as a metric.
func MetricRefs(expr string) []Ref {
	e := blankStrings(expr)
	var out []Ref
	for _, m := range metricRe.FindAllStringSubmatch(e, -1) {
		r := Ref{Name: m[1]}
		for _, lm := range matcher.FindAllStringSubmatch(m[2], -1) {
			r.Labels = append(r.Labels, lm[1])
		}
		out = append(out, r)
	}
	return out
}

// GroupingLabels returns the labels of every by/without/on/ignoring clause.
func GroupingLabels(expr string) []string {
	var out []string
	for _, m := range grouping.FindAllStringSubmatch(blankStrings(expr), -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

func blankStrings(s string) string {
	return quoted.ReplaceAllStringFunc(s, func(q string) string { return `""` })
}

// Resolve maps a metric name as written in PromQL to the catalogue metric
// it reads: the name itself, or a histogram's base name for its _bucket,
// _sum and _count series. ok is false for a name no service registers.
func (c *Catalogue) Resolve(name string) (base string, labels []string, ok bool) {
	if l, found := c.Labels[name]; found {
		return name, l, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if b, cut := strings.CutSuffix(name, suffix); cut {
			if l, found := c.Labels[b]; found {
				if suffix == "_bucket" {
					l = append(slices.Clone(l), "le")
				}
				return b, l, true
			}
		}
	}
	return "", nil, false
}
