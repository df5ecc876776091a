package dashboardcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	dashboardPath = "../../grafana/onex-fleet-dashboard.json"
	servicesDir   = "../../../services"
	docPath       = "../../../docs/observability.md"
)

func load(t *testing.T) (*Dashboard, *Catalogue) {
	t.Helper()
	d, err := Load(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadCatalogues(servicesDir)
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

// The dashboard imports into any Grafana with a Prometheus data source:
// the data source is a variable, every query panel uses it, ids are
// unique and the panels tile the 24-column grid without overlapping.
func TestDashboardIsImportable(t *testing.T) {
	d, _ := load(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 {
		t.Fatalf("uid %q title %q schemaVersion %d", d.UID, d.Title, d.SchemaVersion)
	}
	dsVar := false
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" && v.QueryExpr() == "prometheus" {
			dsVar = true
		}
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %s does not query the ${datasource} variable", v.Name)
		}
	}
	if !dsVar {
		t.Fatal("no Prometheus datasource variable named datasource")
	}
	ids := map[int]string{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var placed []rect
	for _, p := range d.AllPanels() {
		if p.ID <= 0 || ids[p.ID] != "" {
			t.Errorf("panel %q: id %d missing or used twice", p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if p.Title == "" || g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %d %q: title or grid position %+v invalid", p.ID, p.Title, g)
		}
		r := rect{p.Title, g.X, g.Y, g.W, g.H}
		for _, o := range placed {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				t.Errorf("panels %q and %q overlap", r.title, o.title)
			}
		}
		placed = append(placed, r)
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refIDs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: query %q with refId %q (empty or repeated)", p.Title, tg.Expr, tg.RefID)
			}
			refIDs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: datasource %+v", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
}

// Every metric a panel or variable queries is registered by some service
// (per the catalogues the services generate from their registries), every
// label a selector matches on is one of that metric's labels, and every
// label a query aggregates by belongs to a metric of the query.
func TestDashboardMetricsExist(t *testing.T) {
	d, c := load(t)
	type query struct{ where, expr string }
	var queries []query
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			queries = append(queries, query{fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			queries = append(queries, query{"variable " + v.Name, v.QueryExpr()})
		}
	}
	for _, q := range queries {
		refs := MetricRefs(q.expr)
		if len(refs) == 0 {
			t.Errorf("%s: %q selects no onex_ metric", q.where, q.expr)
		}
		known := map[string]bool{}
		for _, r := range refs {
			base, labels, ok := c.Resolve(r.Name)
			if !ok {
				t.Errorf("%s: %s is registered by no service", q.where, r.Name)
				continue
			}
			for _, l := range labels {
				known[l] = true
			}
			for _, l := range r.Labels {
				if !slices.Contains(labels, l) {
					t.Errorf("%s: %s has no label %q (it has %v)", q.where, base, l, labels)
				}
			}
		}
		for _, l := range GroupingLabels(q.expr) {
			if len(known) > 0 && !known[l] {
				t.Errorf("%s: aggregates by %q, a label none of its metrics has", q.where, l)
			}
		}
	}
}

// The dashboard shows what issue #7 asks of it: throughput, handler
// latency, lag, dead letters by error type, breakers, nodes per state,
// registration results by status and readiness.
func TestDashboardCoversTheFleet(t *testing.T) {
	d, _ := load(t)
	used := map[string]bool{}
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			for _, r := range MetricRefs(tg.Expr) {
				used[r.Name] = true
			}
		}
	}
	for _, m := range []string{"onex_messages_consumed_total", "onex_messages_produced_total", "onex_handler_duration_seconds_bucket",
		"onex_consumer_lag", "onex_dlq_messages_total", "onex_circuit_breaker_state", "onex_reducer_nodes", "onex_projector_nodes",
		"onex_orchestrator_registration_results_total", "onex_ready", "onex_readiness_condition", "onex_draining", "onex_messages_in_flight"} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

// docs/observability.md lists every metric some service registers, and
// names no metric that none registers.
func TestObservabilityDocListsEveryMetric(t *testing.T) {
	_, c := load(t)
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name := range c.Labels {
		if !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, "`"+name+"{") {
			t.Errorf("docs/observability.md does not list %s", name)
		}
	}
	for _, m := range regexp.MustCompile("`(onex_[a-z0-9_]+)").FindAllStringSubmatch(doc, -1) {
		if _, _, ok := c.Resolve(m[1]); !ok {
			t.Errorf("docs/observability.md names %s, which no service registers", m[1])
		}
	}
}

func TestMetricRefs(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string
		by   string
	}{
		{`sum by (service, topic) (rate(onex_messages_consumed_total{service=~"$service", outcome!="x"}[5m]))`,
			"onex_messages_consumed_total[service outcome]", "service topic"},
		{`histogram_quantile(0.99, sum by (le) (rate(onex_handler_duration_seconds_bucket[1m])))`, "onex_handler_duration_seconds_bucket[]", "le"},
		{`onex_ready{service="onex_fake_total"} == 0 and on (service) onex_draining`, "onex_ready[service] onex_draining[]", "service"},
		{`label_values(onex_ready, service)`, "onex_ready[]", ""},
		{`sum(rate(other_metric[5m]))`, "", ""},
	} {
		var got []string
		for _, r := range MetricRefs(tc.expr) {
			got = append(got, fmt.Sprintf("%s%v", r.Name, r.Labels))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("MetricRefs(%q) = %v, want %s", tc.expr, got, tc.want)
		}
		if by := strings.Join(GroupingLabels(tc.expr), " "); by != tc.by {
			t.Errorf("GroupingLabels(%q) = %q, want %q", tc.expr, by, tc.by)
		}
	}
}

// Catalogues that disagree, are empty or are missing fail loudly rather
// than letting every dashboard query pass.
func TestLoadCataloguesRejectsBadInput(t *testing.T) {
	write := func(dir, svc, body string) {
		if err := os.MkdirAll(filepath.Join(dir, svc), 0o755); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			if err := os.WriteFile(filepath.Join(dir, svc, "metrics.txt"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, files := range map[string][][2]string{
		"missing":     {{"a", "onex_x{service}\n"}, {"b", ""}},
		"empty":       {{"a", "# only a comment\n"}},
		"malformed":   {{"a", "onex_x service\n"}},
		"conflicting": {{"a", "onex_x{service}\n"}, {"b", "onex_x{service,topic}\n"}},
	} {
		dir := t.TempDir()
		for _, f := range files {
			write(dir, f[0], f[1])
		}
		if _, err := LoadCatalogues(dir); err == nil {
			t.Errorf("%s catalogue accepted", name)
		}
	}
	dir := t.TempDir()
	write(dir, "a", "# header\nonex_x_seconds{service}\n")
	write(dir, "b", "onex_x_seconds{service}\n")
	c, err := LoadCatalogues(dir)
	if err != nil {
		t.Fatal(err)
	}
	if base, labels, ok := c.Resolve("onex_x_seconds_bucket"); !ok || base != "onex_x_seconds" || !slices.Contains(labels, "le") {
		t.Errorf("Resolve(bucket) = %s %v %v", base, labels, ok)
	}
	if _, _, ok := c.Resolve("onex_y"); ok {
		t.Error("an unknown metric resolved")
	}
	if got := c.Services["onex_x_seconds"]; len(got) != 2 {
		t.Errorf("services %v", got)
	}
}
