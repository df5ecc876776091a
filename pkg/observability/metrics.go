package observability

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// ServiceLabel is the label every fleet series carries, naming the
// deployable that exposes it. The services set it themselves (rather than
// leaving it to the scrape configuration) so that dashboards and alerts work
// the same under any Prometheus setup, and so that the reducer's
// transactional counters and the bus's counters of the other services share
// one name and one label set.
const ServiceLabel = "service"

// WithService returns a Registerer that adds service=name to every series
// of the collectors registered through it. Registering the same collector
// twice through two such wrappers of one registry is detected as usual.
func WithService(reg prometheus.Registerer, name string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{ServiceLabel: name}, reg)
}

// MetricDesc names one metric a collector can expose and all its label
// names (constant and variable), sorted.
type MetricDesc struct {
	Name   string
	Labels []string
}

// String renders d as name{label,label}.
func (d MetricDesc) String() string { return d.Name + "{" + strings.Join(d.Labels, ",") + "}" }

// Describe lists every metric c describes (for a Registry: every metric of
// every registered collector, including vectors that have no series yet),
// sorted by name and deduplicated. It reads the descriptors' String form,
// the only public view of a prometheus.Desc; TestDescribe pins that form so
// a client_golang upgrade that changes it fails loudly.
func Describe(c prometheus.Collector) ([]MetricDesc, error) {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	seen := map[string]bool{}
	var out []MetricDesc
	var firstErr error
	for d := range ch {
		md, err := parseDesc(d.String())
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if k := md.String(); !seen[k] {
			seen[k] = true
			out = append(out, md)
		}
	}
	slices.SortFunc(out, func(a, b MetricDesc) int { return strings.Compare(a.String(), b.String()) })
	return out, firstErr
}

// parseDesc reads `Desc{fqName: "n", help: "h", unit: "u", constLabels:
// {a="x",b="y"}, variableLabels: {c,c(d)}}`.
func parseDesc(s string) (MetricDesc, error) {
	bad := func(why string) (MetricDesc, error) {
		return MetricDesc{}, fmt.Errorf("observability: unexpected descriptor form (%s): %.200s", why, s)
	}
	rest, ok := strings.CutPrefix(s, "Desc{fqName: ")
	if !ok {
		return bad("no fqName")
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return bad("fqName not quoted")
	}
	name, _ := strconv.Unquote(q)
	if name == "" {
		return bad("empty fqName")
	}
	i := strings.LastIndex(s, ", constLabels: {")
	j := strings.LastIndex(s, "}, variableLabels: {")
	if i < 0 || j < i || !strings.HasSuffix(s, "}}") {
		return bad("no label sets")
	}
	var labels []string
	consts := s[i+len(", constLabels: {") : j]
	for consts != "" {
		eq := strings.IndexByte(consts, '=')
		if eq <= 0 {
			return bad("constant label without value")
		}
		labels = append(labels, consts[:eq])
		v, err := strconv.QuotedPrefix(consts[eq+1:])
		if err != nil {
			return bad("constant label value not quoted")
		}
		consts = strings.TrimPrefix(consts[eq+1+len(v):], ",")
	}
	if vars := s[j+len("}, variableLabels: {") : len(s)-2]; vars != "" {
		for _, v := range strings.Split(vars, ",") {
			if strings.HasPrefix(v, "c(") && strings.HasSuffix(v, ")") {
				v = v[2 : len(v)-1] // a constrained label
			}
			labels = append(labels, v)
		}
	}
	slices.Sort(labels)
	return MetricDesc{Name: name, Labels: labels}, nil
}
