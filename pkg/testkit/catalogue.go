package testkit

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/observability"
)

// CatalogueHeader starts every metric catalogue file.
const CatalogueHeader = "# The fleet series this service registers, one `name{labels}` a line.\n" +
	"# Generated and checked by the service's TestMetricsMove; regenerate with ONEX_UPDATE_GOLDEN=1.\n"

// CheckMetricCatalogue compares the onex_ metrics reg describes (every
// registered metric, series or not) with the catalogue file at path, and
// fails for a metric without the service label (registered on the
// registry instead of through service.Service.Registerer). With
// ONEX_UPDATE_GOLDEN=1 it rewrites the file instead of comparing. The
// catalogues are what the Grafana dashboard and docs/observability.md are
// checked against, so a metric renamed or dropped in code fails there.
func CheckMetricCatalogue(t testing.TB, reg prometheus.Collector, path string) {
	t.Helper()
	descs, err := observability.Describe(reg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(CatalogueHeader)
	for _, d := range descs {
		if !strings.HasPrefix(d.Name, "onex_") {
			continue
		}
		labelled := false
		for _, l := range d.Labels {
			labelled = labelled || l == observability.ServiceLabel
		}
		if !labelled {
			t.Errorf("%s has no %s label: register it through service.Service.Registerer", d.Name, observability.ServiceLabel)
		}
		b.WriteString(d.String() + "\n")
	}
	if os.Getenv("ONEX_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("metric catalogue: %v (create it with ONEX_UPDATE_GOLDEN=1)", err)
	}
	if string(want) != b.String() {
		t.Errorf("the registered metrics differ from %s (update it with ONEX_UPDATE_GOLDEN=1, then the dashboard and docs/observability.md):\ngot:\n%s\nwant:\n%s", path, b.String(), want)
	}
}
