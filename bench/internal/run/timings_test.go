package run

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/omninode/onex-fleet/bench/internal/procs"
)

func scrape(t *testing.T, text string) procs.Metrics {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return procs.Metrics(mfs)
}

// The batch histograms become means per batch over the phase: the
// difference of two scrapes, in each histogram's own unit.
func TestTimingsBatches(t *testing.T) {
	histogram := func(name string, sum float64, count int) string {
		return "# TYPE " + name + " histogram\n" +
			name + `_bucket{le="+Inf"} ` + itoa(count) + "\n" +
			name + "_sum " + ftoa(sum) + "\n" +
			name + "_count " + itoa(count) + "\n"
	}
	before := map[string]procs.Metrics{
		ConsulEffect: scrape(t, histogram("onex_consul_txn_writes", 10, 5)),
		Projector:    scrape(t, histogram("onex_projector_batch_size", 4, 4)),
	}
	after := map[string]procs.Metrics{
		ConsulEffect: scrape(t, histogram("onex_consul_txn_writes", 10+110, 5+10)),
		Projector:    scrape(t, histogram("onex_projector_batch_size", 4, 4)),
	}
	got := map[string]string{}
	for _, tm := range timings(before, after) {
		got[tm.Service+" "+tm.What] = ftoa(tm.Count) + " × " + ftoa(tm.Mean) + " " + tm.Unit
	}
	want := map[string]string{ConsulEffect + " Consul transaction": "10 × 11 writes"}
	if len(got) != len(want) || got[ConsulEffect+" Consul transaction"] != want[ConsulEffect+" Consul transaction"] {
		t.Fatalf("timings %v, want %v (a histogram that did not move is left out)", got, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
