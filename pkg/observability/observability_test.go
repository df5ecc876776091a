package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReadiness(t *testing.T) {
	h := NewHealth("topics", "state_restored")
	reg := NewRegistry()
	srv := httptest.NewServer(Handler(h, reg))
	defer srv.Close()
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	code, body := get("/readyz")
	if code != 503 || body["ready"] != false {
		t.Fatalf("readyz before restore = %d %v, want 503", code, body)
	}
	h.Set("topics", true)
	h.Set("state_restored", true)
	h.SetInFlight(func() int64 { return 3 })
	code, body = get("/readyz")
	if code != 200 || body["pending_message_count"] != float64(3) {
		t.Fatalf("readyz when ready = %d %v", code, body)
	}
	h.SetDraining(true)
	if code, body = get("/readyz"); code != 503 || body["is_draining"] != true {
		t.Fatalf("readyz while draining = %d %v, want 503 with is_draining", code, body)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(b.String(), "go_goroutines") {
		t.Fatal("/metrics does not serve the registry")
	}
}

func TestCorrelationLogger(t *testing.T) {
	var buf bytes.Buffer
	base := NewLogger(&buf, "svc", "debug")
	id := uuid.New()
	ctx := WithCorrelation(context.Background(), base, id)
	Logger(ctx).Info("handled")
	if CorrelationID(ctx) != id {
		t.Fatal("correlation id not carried")
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line is not JSON: %s", buf.String())
	}
	if line["correlation_id"] != id.String() || line["service"] != "svc" {
		t.Fatalf("log line %v", line)
	}
	if WithCorrelation(context.Background(), base, uuid.Nil) != context.Background() {
		t.Fatal("a nil correlation id must leave the context unchanged")
	}
}

func TestDescribe(t *testing.T) {
	reg := prometheus.NewRegistry()
	svc := WithService(reg, "svc")
	svc.MustRegister(
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_a_total", Help: `help with "quotes", constLabels: {x} and braces}}`},
			[]string{"topic", "outcome"}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "onex_b", Help: "b", ConstLabels: prometheus.Labels{"backend": `pg,"x"=y`}},
			func() float64 { return 1 }),
		prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onex_c_seconds", Help: "c"}),
	)
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_d_total", Help: "d"}, []string{"kind"})
	reg.MustRegister(cv) // not through the wrapper: no service label
	got, err := Describe(reg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range got {
		names = append(names, d.String())
	}
	want := []string{"onex_a_total{outcome,service,topic}", "onex_b{backend,service}", "onex_c_seconds{service}", "onex_d_total{kind}"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("Describe = %v, want %v", names, want)
	}
	for _, bad := range []string{"", "Desc{}", `Desc{fqName: "x", help: "h"}`, `Desc{fqName: "", help: "", unit: "", constLabels: {}, variableLabels: {}}`,
		`Desc{fqName: "x", help: "", unit: "", constLabels: {a=b}, variableLabels: {}}`} {
		if _, err := parseDesc(bad); err == nil {
			t.Errorf("parseDesc(%q) accepted a malformed descriptor", bad)
		}
	}
}

func TestHealthCollector(t *testing.T) {
	h := NewHealth("topics", "state_restored")
	reg := prometheus.NewRegistry()
	WithService(reg, "reducer").MustRegister(h.Collector())
	expect := func(text string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(text), "onex_ready", "onex_draining", "onex_messages_in_flight", "onex_readiness_condition"); err != nil {
			t.Fatal(err)
		}
	}
	const head = `
# HELP onex_draining 1 while the service drains on shutdown (is_draining), else 0.
# TYPE onex_draining gauge
# HELP onex_messages_in_flight Messages being handled right now (pending_message_count).
# TYPE onex_messages_in_flight gauge
# HELP onex_readiness_condition 1 when the named readiness condition holds, else 0.
# TYPE onex_readiness_condition gauge
# HELP onex_ready 1 when the service is ready (every readiness condition holds and it is not draining), else 0.
# TYPE onex_ready gauge
`
	expect(head + `
onex_draining{service="reducer"} 0
onex_messages_in_flight{service="reducer"} 0
onex_readiness_condition{condition="state_restored",service="reducer"} 0
onex_readiness_condition{condition="topics",service="reducer"} 0
onex_ready{service="reducer"} 0
`)
	h.Set("topics", true)
	h.Set("state_restored", true)
	h.SetInFlight(func() int64 { return 7 })
	expect(head + `
onex_draining{service="reducer"} 0
onex_messages_in_flight{service="reducer"} 7
onex_readiness_condition{condition="state_restored",service="reducer"} 1
onex_readiness_condition{condition="topics",service="reducer"} 1
onex_ready{service="reducer"} 1
`)
	h.SetDraining(true)
	expect(head + `
onex_draining{service="reducer"} 1
onex_messages_in_flight{service="reducer"} 7
onex_readiness_condition{condition="state_restored",service="reducer"} 1
onex_readiness_condition{condition="topics",service="reducer"} 1
onex_ready{service="reducer"} 0
`)
}
