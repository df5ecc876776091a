package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/observability"
)

func TestRunDrainsComponentsThenStopsHTTP(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
	t.Setenv("ONEX_HTTP_ADDR", fmt.Sprintf("127.0.0.1:%d", port))
	svc, err := New("test", "ready")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan bool, 1)
	comp := func(ctx context.Context) error {
		svc.Health.Set("ready", true)
		<-ctx.Done()
		// While the component drains, /readyz reports draining.
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		ok := err == nil && resp.StatusCode == 503
		if resp != nil {
			resp.Body.Close()
		}
		// ... and so does /metrics.
		v, found := gaugeValue(svc.Registry, "onex_draining")
		ok = ok && found && v == 1
		drained <- ok
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- svc.RunContext(ctx, comp) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !<-drained {
		t.Fatal("/readyz was not 503 while draining")
	}
}

// gaugeValue returns the value of gauge name's single series in reg.
func gaugeValue(reg *prometheus.Registry, name string) (float64, bool) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// Series registered through Registerer carry the service label, and the
// health series are there from the first call, also for a Service literal.
func TestRegistererLabelsSeries(t *testing.T) {
	svc := &Service{Name: "reducer", Registry: prometheus.NewRegistry(), Health: observability.NewHealth("topics")}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_x_total", Help: "x"}, []string{"topic"})
	svc.Registerer().MustRegister(c)
	c.WithLabelValues("t").Add(3)
	svc.Health.Set("topics", true)
	err := testutil.GatherAndCompare(svc.Registry, strings.NewReader(`
# HELP onex_x_total x
# TYPE onex_x_total counter
onex_x_total{service="reducer",topic="t"} 3
# HELP onex_ready 1 when the service is ready (every readiness condition holds and it is not draining), else 0.
# TYPE onex_ready gauge
onex_ready{service="reducer"} 1
`), "onex_x_total", "onex_ready")
	if err != nil {
		t.Fatal(err)
	}
	if svc.Registerer() != svc.Registerer() {
		t.Fatal("Registerer must return the same wrapper (the health series are registered once)")
	}
}

func TestFailingComponentStopsService(t *testing.T) {
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
	t.Setenv("ONEX_HTTP_ADDR", "127.0.0.1:0")
	svc, err := New("test")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	other := func(ctx context.Context) error { <-ctx.Done(); return nil }
	err = svc.RunContext(context.Background(), func(context.Context) error { return boom }, other)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
	}{{"", http.StatusNotFound}, {"false", http.StatusNotFound}, {"true", http.StatusOK}} {
		t.Run("ONEX_PPROF="+tc.env, func(t *testing.T) {
			l, _ := net.Listen("tcp", "127.0.0.1:0")
			addr := l.Addr().String()
			l.Close()
			t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
			t.Setenv("ONEX_HTTP_ADDR", addr)
			t.Setenv("ONEX_PPROF", tc.env)
			svc, err := New("test")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- svc.RunContext(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil }) }()
			defer func() { cancel(); <-done }()
			got := 0
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				resp, err := http.Get("http://" + addr + "/debug/pprof/")
				if err == nil {
					got = resp.StatusCode
					resp.Body.Close()
					break
				}
			}
			if got != tc.want {
				t.Fatalf("/debug/pprof/ answered %d, want %d", got, tc.want)
			}
			if tc.want != http.StatusOK {
				return
			}
			// The mutex profile is on, with its sampling period.
			resp, err := http.Get("http://" + addr + "/debug/pprof/mutex?debug=1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "sampling period=10") {
				t.Fatalf("mutex profile is not sampling:\n%s", body)
			}
		})
	}
}
