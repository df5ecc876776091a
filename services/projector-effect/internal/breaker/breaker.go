// Package breaker is the per-backend circuit breaker of spec 6.3, on
// github.com/sony/gobreaker/v2, with the fleet's metrics:
//
//   - closed: calls pass; consecutive failures are counted and any success
//     resets the count; Threshold consecutive failures open the breaker;
//   - open: calls fail at once with an InfraUnavailableError (retry_after =
//     whole seconds left) and never reach the backend, for Reset;
//   - half-open: one trial call passes (others are refused as if open); its
//     success closes the breaker, its failure re-opens it for a full Reset.
//
// Only failures that say something about the backend's health count: a
// refused write of bad data is a healthy answer (it counts as a success),
// and a call abandoned by its caller (context cancelled) counts as nothing.
package breaker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// States as exported by onex_circuit_breaker_state.
const (
	Closed   = 0
	HalfOpen = 1
	Open     = 2
)

// Settings configure a breaker.
type Settings struct {
	// Backend names the backend in metrics and errors ("postgres").
	Backend string
	// Transport is the infraerr transport of errors the breaker raises.
	Transport string
	// Threshold is the number of consecutive failures that open it (spec: 5).
	Threshold uint32
	// Reset is how long it stays open before a trial call (spec: 60 s).
	Reset time.Duration
	// Healthy reports errors that are answers of a healthy backend (bad
	// data): they count as successes. Nil: none.
	Healthy func(error) bool
}

// Breaker is safe for concurrent use.
type Breaker struct {
	s        Settings
	cb       *gobreaker.CircuitBreaker[struct{}]
	failures prometheus.Counter
	rejected prometheus.Counter
	changes  *prometheus.CounterVec

	mu       sync.Mutex
	openedAt time.Time
}

// New builds a breaker and registers its series on reg (nil: not registered):
// onex_circuit_breaker_state{backend} (0 closed, 1 half-open, 2 open, read at
// scrape time), onex_circuit_breaker_failures_total{backend},
// onex_circuit_breaker_rejected_total{backend} and
// onex_circuit_breaker_transitions_total{backend,to}.
func New(s Settings, reg prometheus.Registerer) *Breaker {
	if s.Threshold == 0 {
		s.Threshold = 5
	}
	if s.Reset <= 0 {
		s.Reset = 60 * time.Second
	}
	labels := prometheus.Labels{"backend": s.Backend}
	b := &Breaker{s: s,
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_circuit_breaker_failures_total", ConstLabels: labels,
			Help: "Backend failures recorded by the circuit breaker."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_circuit_breaker_rejected_total", ConstLabels: labels,
			Help: "Calls refused without reaching the backend because the breaker was open."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_circuit_breaker_transitions_total", ConstLabels: labels,
			Help: "Circuit breaker state changes, by new state."}, []string{"to"}),
	}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        s.Backend,
		MaxRequests: 1, // one trial in half-open; its success closes (half_open_successes=1)
		Interval:    0, // closed-state counts reset only on success
		Timeout:     s.Reset,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.Threshold },
		IsSuccessful: func(err error) bool {
			return err == nil || (s.Healthy != nil && s.Healthy(err))
		},
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			b.mu.Lock()
			if to == gobreaker.StateOpen {
				b.openedAt = time.Now()
			}
			b.mu.Unlock()
			b.changes.WithLabelValues(to.String()).Inc()
		},
	})
	if reg != nil {
		state := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "onex_circuit_breaker_state", ConstLabels: labels,
			Help: "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open."}, func() float64 { return float64(b.State()) })
		reg.MustRegister(state, b.failures, b.rejected, b.changes)
	}
	return b
}

// State returns Closed, HalfOpen or Open. An open breaker whose reset time
// has passed reads as half-open (it would let the next call through).
func (b *Breaker) State() int {
	switch b.cb.State() {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	}
	return Closed
}

// RetryAfter returns how long the breaker stays open; zero when it is not open.
func (b *Breaker) RetryAfter() time.Duration {
	if b.cb.State() != gobreaker.StateOpen {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.s.Reset-time.Since(b.openedAt), 0)
}

// Do runs fn through the breaker. While the breaker is open (or its single
// half-open trial is taken) fn is not called and Do returns an
// InfraUnavailableError for operation op; otherwise it returns fn's error.
func (b *Breaker) Do(op string, fn func() error) error {
	_, err := b.cb.Execute(func() (struct{}, error) { return struct{}{}, fn() })
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		b.rejected.Inc()
		left := b.RetryAfter()
		return infraerr.CircuitOpen(infraerr.Context{Transport: b.s.Transport, Operation: op, Target: b.s.Backend},
			float64(int64(left.Seconds()+0.999)))
	case err != nil && !errors.Is(err, context.Canceled) && (b.s.Healthy == nil || !b.s.Healthy(err)):
		b.failures.Inc()
	}
	return err
}
