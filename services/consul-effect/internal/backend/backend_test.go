package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

func TestResultCode(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name      string
		err       error
		code      string
		retriable bool
		text      string
	}{
		{name: "refused", err: Classify("register", refused), code: CodeConnection, retriable: true, text: "consul operation failed: connection refused"},
		{name: "deadline", err: Classify("register", fmt.Errorf("put: %w", context.DeadlineExceeded)), code: CodeTimeout, retriable: true},
		{name: "403 with a token in the body", err: Classify("register", api.StatusError{Code: 403, Body: "ACL not found: token=s3cr3t"}), code: CodeAuth, retriable: false},
		{name: "401", err: Classify("register", api.StatusError{Code: 401, Body: "no"}), code: CodeAuth},
		{name: "500 no leader", err: Classify("register", api.StatusError{Code: 500, Body: "No cluster leader"}), code: CodeConnection, retriable: true,
			text: "consul operation failed: service unavailable"},
		{name: "429", err: Classify("register", api.StatusError{Code: 429, Body: "slow down"}), code: CodeConnection, retriable: true},
		{name: "400 invalid", err: Classify("register", api.StatusError{Code: 400, Body: "Invalid check"}), code: CodeUnknown},
		{name: "unknown", err: Classify("register", errors.New("weird")), code: CodeUnknown},
		{name: "breaker open", err: infraerr.CircuitOpen(infraerr.Context{Transport: infraerr.TransportConsul}, 12), code: CodeConnection, retriable: true,
			text: "consul operation failed: service unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, retriable := ResultCode(tt.err)
			if code != tt.code || retriable != tt.retriable {
				t.Fatalf("ResultCode = %s,%v want %s,%v", code, retriable, tt.code, tt.retriable)
			}
			text := ResultError(tt.err)
			if !strings.HasPrefix(text, "consul operation failed") || strings.Contains(text, "s3cr3t") {
				t.Fatalf("ResultError = %q", text)
			}
			if tt.text != "" && text != tt.text {
				t.Fatalf("ResultError = %q, want %q", text, tt.text)
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestBreakerOpensAndFailsFast drives the breaker with real refused
// connections: after the threshold it rejects calls without making them,
// and after the reset timeout one trial call is let through.
func TestBreakerOpensAndFailsFast(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	c, err := New(Settings{Addr: closedPort(t), Token: config.Secret("tok"), Timeout: time.Second, BreakerThreshold: 5, BreakerReset: 300 * time.Millisecond}, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		err := c.Deregister(ctx, "x")
		if k, _ := infraerr.KindOf(err); k != infraerr.KindConnection {
			t.Fatalf("call %d: %v (kind %v), want connection error", i, err, k)
		}
	}
	if got := c.State(); got != StateOpen {
		t.Fatalf("state after 5 failures = %d, want open", got)
	}
	start := time.Now()
	err = c.Deregister(ctx, "x")
	if k, _ := infraerr.KindOf(err); k != infraerr.KindUnavailable || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("open breaker: %v after %v, want immediate unavailable", err, time.Since(start))
	}
	if n := testutil.ToFloat64(m.Requests.WithLabelValues("deregister", "rejected")); n != 1 {
		t.Fatalf("rejected = %v", n)
	}
	if n := testutil.ToFloat64(m.Requests.WithLabelValues("deregister", "error")); n != 5 {
		t.Fatalf("errors = %v, want 5 real calls", n)
	}
	if v := testutil.ToFloat64(m.Breaker.WithLabelValues(Name)); v != StateOpen {
		t.Fatalf("gauge = %v", v)
	}
	time.Sleep(350 * time.Millisecond)
	if got := c.State(); got != StateHalfOpen {
		t.Fatalf("state after reset timeout = %d, want half-open", got)
	}
	// The trial call fails (still refused) and re-opens the breaker.
	_ = c.Deregister(ctx, "x")
	if got := c.State(); got != StateOpen {
		t.Fatalf("state after failed trial = %d, want open", got)
	}
}

// TestExcluded: requests Consul refuses as invalid say nothing about its
// health and must not open the breaker; neither do calls cancelled by
// shutdown or reads while writes are refused. A 400 that says the
// address speaks HTTPS is a misconfiguration and counts.
func TestExcluded(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{Classify("register", api.StatusError{Code: 400}), true},
		{Classify("get_service", api.StatusError{Code: 404}), true},
		{Classify("register", api.StatusError{Code: 400, Body: "Client sent an HTTP request to an HTTPS server.\n"}), false},
		{Classify("register", api.StatusError{Code: 403}), false},
		{Classify("register", api.StatusError{Code: 429}), false},
		{Classify("register", api.StatusError{Code: 500}), false},
		{Classify("register", context.Canceled), true},
		{Classify("register", context.DeadlineExceeded), false},
		{errNeutral, true},
	}
	for _, tt := range tests {
		if got := excluded(tt.err); got != tt.want {
			t.Errorf("excluded(%v) = %v", tt.err, got)
		}
	}
}
