package observability

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health tracks liveness and named readiness conditions. A service is ready
// only when every registered condition has been marked ready; it starts not
// ready, so /readyz answers 503 until state restore and topic checks are done.
// Health is safe for concurrent use.
type Health struct {
	mu       sync.RWMutex
	conds    map[string]bool
	draining bool
	inflight func() int64
}

// NewHealth returns a Health with the named conditions, all not ready.
func NewHealth(conditions ...string) *Health {
	h := &Health{conds: map[string]bool{}}
	for _, c := range conditions {
		h.conds[c] = false
	}
	return h
}

// Set marks condition name ready or not ready, adding it if unknown.
func (h *Health) Set(name string, ready bool) {
	h.mu.Lock()
	h.conds[name] = ready
	h.mu.Unlock()
}

// SetDraining marks the service as draining: /readyz then answers 503 so a
// load balancer stops routing to it (graceful shutdown ADR).
func (h *Health) SetDraining(d bool) {
	h.mu.Lock()
	h.draining = d
	h.mu.Unlock()
}

// SetInFlight installs a function reporting the pending message count that
// /readyz exposes as pending_message_count.
func (h *Health) SetInFlight(f func() int64) {
	h.mu.Lock()
	h.inflight = f
	h.mu.Unlock()
}

// Ready reports whether every condition is ready and the service is not draining.
func (h *Health) Ready() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.draining {
		return false
	}
	for _, ok := range h.conds {
		if !ok {
			return false
		}
	}
	return true
}

type readyBody struct {
	Ready               bool            `json:"ready"`
	IsDraining          bool            `json:"is_draining"`
	PendingMessageCount int64           `json:"pending_message_count"`
	Conditions          map[string]bool `json:"conditions"`
	NotReady            []string        `json:"not_ready,omitempty"`
}

func (h *Health) body() readyBody {
	h.mu.RLock()
	defer h.mu.RUnlock()
	b := readyBody{IsDraining: h.draining, Conditions: map[string]bool{}}
	for k, v := range h.conds {
		b.Conditions[k] = v
		if !v {
			b.NotReady = append(b.NotReady, k)
		}
	}
	sort.Strings(b.NotReady)
	if h.inflight != nil {
		b.PendingMessageCount = h.inflight()
	}
	b.Ready = !h.draining && len(b.NotReady) == 0
	return b
}

// Collector returns the health series, read at scrape time:
// onex_ready (1 when /readyz answers 200), onex_draining (the payload's
// is_draining), onex_messages_in_flight (its pending_message_count) and
// onex_readiness_condition{condition} (1 when that condition holds).
func (h *Health) Collector() prometheus.Collector { return healthCollector{h} }

var (
	descReady     = prometheus.NewDesc("onex_ready", "1 when the service is ready (every readiness condition holds and it is not draining), else 0.", nil, nil)
	descDraining  = prometheus.NewDesc("onex_draining", "1 while the service drains on shutdown (is_draining), else 0.", nil, nil)
	descInFlight  = prometheus.NewDesc("onex_messages_in_flight", "Messages being handled right now (pending_message_count).", nil, nil)
	descCondition = prometheus.NewDesc("onex_readiness_condition", "1 when the named readiness condition holds, else 0.", []string{"condition"}, nil)
)

type healthCollector struct{ h *Health }

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descReady
	ch <- descDraining
	ch <- descInFlight
	ch <- descCondition
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.h.body()
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, boolValue(b.Ready))
	ch <- prometheus.MustNewConstMetric(descDraining, prometheus.GaugeValue, boolValue(b.IsDraining))
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(b.PendingMessageCount))
	for name, ok := range b.Conditions {
		ch <- prometheus.MustNewConstMetric(descCondition, prometheus.GaugeValue, boolValue(ok), name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry returns a Prometheus registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler returns the mux serving /healthz (process alive), /readyz (every
// condition ready, 503 otherwise, JSON body either way) and /metrics.
func Handler(h *Health, reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	ready := func(w http.ResponseWriter, _ *http.Request) {
		b := h.body()
		w.Header().Set("Content-Type", "application/json")
		if !b.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(b)
	}
	mux.HandleFunc("/readyz", ready)
	mux.HandleFunc("/health", ready) // the Python contracts' health_check endpoint
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// HandlePprof adds net/http/pprof's handlers under /debug/pprof/ to mux and
// turns on the runtime's mutex and block profiles (off by default): a
// service that is slow while its CPU is idle is waiting, and only these say
// on what. A wait of a millisecond or more is always recorded, shorter ones
// in proportion; one mutex contention in ten.
func HandlePprof(mux *http.ServeMux) {
	runtime.SetBlockProfileRate(int(time.Millisecond))
	runtime.SetMutexProfileFraction(10)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// ServeHandler listens on addr and serves handler until ctx is done.
func ServeHandler(ctx context.Context, addr string, handler http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, handler, log)
}

// Serve serves handler on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, handler http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if log != nil {
		log.Info("http server listening", "addr", ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
