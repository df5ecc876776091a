package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
)

// TestReadinessAndMetrics: /readyz stays 503 while a topic the contract
// names is missing and turns 200 once it exists and the aggregation state is
// restored; /metrics serves the bus series and the orchestrator's own.
func TestReadinessAndMetrics(t *testing.T) {
	h := newHarness(t, topics.RegistrationAggregations)
	in := h.launch(h.settings())
	srv := httptest.NewServer(observability.Handler(in.svc.Health, in.svc.Registry))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	time.Sleep(2 * time.Second)
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, CondTopics) {
		t.Fatalf("/readyz with a topic missing: %d %s", code, body)
	}
	compact := "compact"
	testkit.CreateTopic(t, h.brokers, h.topic(topics.RegistrationAggregations), 3, map[string]*string{"cleanup.policy": &compact})
	h.eventually(60*time.Second, "/readyz 200", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })

	raw, err := fixtures.Load("heartbeat.json")
	if err != nil {
		t.Fatal(err)
	}
	h.produce(h.topic(topics.NodeHeartbeat), "", raw)
	// The ingress counter moves inside the handler; the bus counts the record
	// as consumed and its output as produced only after the handler returns
	// and the output is sent, so wait for all three.
	h.eventually(20*time.Second, "heartbeat accepted, consumed and forwarded", func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, `onex_orchestrator_ingress_messages_total{outcome="accepted",reason="",service="registration-orchestrator",topic="onex.evt.platform.node-heartbeat.v1"} 1`) &&
			strings.Contains(body, "onex_messages_consumed_total{") && strings.Contains(body, "onex_messages_produced_total{")
	})
	_, body := get("/metrics")
	for _, series := range []string{
		`onex_orchestrator_tick_leader{service="registration-orchestrator"} 1`,
		`onex_orchestrator_aggregations_in_flight{service="registration-orchestrator"} 0`, "onex_orchestrator_catalog_version"} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
