package breaker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/breaker"
)

var (
	down    = infraerr.New(infraerr.KindConnection, infraerr.Context{}, "connection refused", nil)
	badData = infraerr.Content("node_type", "refused")
)

// TestSpecCycle walks spec 6.3: five consecutive failures open the breaker;
// open calls are refused without running; after the reset one trial runs;
// its failure re-opens, its success closes. A success resets the count, and
// bad-data errors and cancellations do not count as failures.
func TestSpecCycle(t *testing.T) {
	b := breaker.New(breaker.Settings{Backend: "postgres", Transport: infraerr.TransportDB, Threshold: 5, Reset: 200 * time.Millisecond,
		Healthy: func(err error) bool { return infraerr.IsContent(err) }}, prometheus.NewRegistry())
	calls := 0
	do := func(err error) error {
		return b.Do("apply", func() error { calls++; return err })
	}
	for range 4 {
		_ = do(down)
	}
	_ = do(nil) // resets the count
	for range 4 {
		_ = do(down)
	}
	_ = do(badData)          // a healthy answer: resets too
	_ = do(context.Canceled) // neither
	if b.State() != breaker.Closed {
		t.Fatalf("state %d after interleaved successes, want closed", b.State())
	}
	for range 5 {
		_ = do(down)
	}
	if b.State() != breaker.Open || b.RetryAfter() <= 0 {
		t.Fatalf("state %d, retry after %v: want open", b.State(), b.RetryAfter())
	}
	before := calls
	err := do(nil)
	if calls != before || !errors.Is(err, &infraerr.Error{Kind: infraerr.KindUnavailable}) || !infraerr.Retriable(err) {
		t.Fatalf("open breaker ran the call or returned %v", err)
	}
	time.Sleep(250 * time.Millisecond)
	if b.State() != breaker.HalfOpen {
		t.Fatalf("state %d after reset, want half-open", b.State())
	}
	_ = do(down) // the trial fails: open again for a full reset
	if b.State() != breaker.Open {
		t.Fatalf("state %d after failed trial, want open", b.State())
	}
	time.Sleep(250 * time.Millisecond)
	if err := do(nil); err != nil || b.State() != breaker.Closed {
		t.Fatalf("successful trial: %v, state %d", err, b.State())
	}
}
