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
