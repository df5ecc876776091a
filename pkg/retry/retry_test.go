package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayFormula(t *testing.T) {
	p := Policy{MaxAttempts: 5, Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.25}
	tests := []struct {
		n    int
		u    float64
		want time.Duration
	}{
		{0, 0.5, 100 * time.Millisecond}, // no jitter at the midpoint
		{1, 0.5, 200 * time.Millisecond}, // doubles
		{2, 0.5, 400 * time.Millisecond}, // spec: 100 -> 200 -> 400 ms
		{0, 0, 75 * time.Millisecond},    // -25%
		{0, 1, 125 * time.Millisecond},   // +25%
		{10, 0.5, 5 * time.Second},       // capped before jitter
		{10, 1, 6250 * time.Millisecond}, // jitter applies to the capped value
		{2000, 0.5, 5 * time.Second},     // overflow to +Inf is capped
	}
	for _, tt := range tests {
		if got := p.Delay(tt.n, tt.u); got != tt.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.n, tt.u, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Default()
	if err := good.Validate(); err != nil {
		t.Fatalf("default policy invalid: %v", err)
	}
	bad := []Policy{
		{MaxAttempts: 0, Initial: time.Second, Max: time.Second, Multiplier: 2},
		{MaxAttempts: 11, Initial: time.Second, Max: time.Second, Multiplier: 2},
		{MaxAttempts: 3, Initial: 0, Max: time.Second, Multiplier: 2},
		{MaxAttempts: 3, Initial: 2 * time.Second, Max: time.Second, Multiplier: 2},
		{MaxAttempts: 3, Initial: time.Second, Max: time.Second, Multiplier: 0.5},
		{MaxAttempts: 3, Initial: time.Second, Max: time.Second, Multiplier: 2, Jitter: 0.6},
	}
	for i, p := range bad {
		if p.Validate() == nil {
			t.Errorf("case %d: invalid policy %+v accepted", i, p)
		}
	}
}

func fast(n int) Policy {
	return Policy{MaxAttempts: n, Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 2}
}

func TestDo(t *testing.T) {
	errT := errors.New("transient")
	errP := errors.New("permanent")
	tests := []struct {
		name      string
		policy    Policy
		fails     int // attempts that fail before success
		failWith  error
		retriable func(error) bool
		wantCalls int
		wantErr   error
	}{
		{"success first try", fast(3), 0, errT, nil, 1, nil},
		{"success after retries", fast(3), 2, errT, nil, 3, nil},
		{"exhausted", fast(3), 10, errT, nil, 3, errT},
		{"non-retriable stops at once", fast(3), 10, errP, func(err error) bool { return !errors.Is(err, errP) }, 1, errP},
		{"permanent marker stops at once", fast(3), 10, Permanent(errT), nil, 1, errT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			retries := 0
			err := Do(context.Background(), tt.policy, nil, tt.retriable,
				func(int, error, time.Duration) { retries++ },
				func(context.Context, int) error {
					calls++
					if calls <= tt.fails {
						return tt.failWith
					}
					return nil
				})
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if retries != calls-1 {
				t.Errorf("onRetry called %d times for %d calls", retries, calls)
			}
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDoStops(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	p := Policy{MaxAttempts: 5, Initial: time.Hour, Max: time.Hour, Multiplier: 2}
	calls := 0
	err := Do(context.Background(), p, stop, nil, nil, func(context.Context, int) error {
		calls++
		return errors.New("boom")
	})
	if !errors.Is(err, ErrStopped) || calls != 1 {
		t.Fatalf("err = %v, calls = %d; want ErrStopped after one call", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Do(ctx, p, nil, nil, nil, func(context.Context, int) error { return errors.New("boom") })
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("cancelled ctx: err = %v, want ErrStopped", err)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("a full wait must report true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("a cancelled wait must report false")
	}
}

// TestBackOffFollowsDelay pins the library strategy Do waits with to the
// spec's formula: every delay lies within Delay's jitter bounds for its
// attempt, including past the cap.
func TestBackOffFollowsDelay(t *testing.T) {
	for _, p := range []Policy{
		Default(),
		{MaxAttempts: 10, Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 4, Jitter: 0.5},
		{MaxAttempts: 10, Initial: time.Second, Max: time.Second, Multiplier: 1.5, Jitter: 0},
	} {
		for trial := 0; trial < 20; trial++ {
			b := BackOff(p)
			for n := 0; n < 10; n++ {
				got := b.NextBackOff()
				lo, hi := p.Delay(n, 0), p.Delay(n, 1)
				// The library rounds its random pick up by at most a nanosecond.
				if got < lo || got > hi+time.Nanosecond {
					t.Fatalf("policy %+v attempt %d: delay %v outside [%v, %v]", p, n, got, lo, hi)
				}
			}
		}
	}
}
