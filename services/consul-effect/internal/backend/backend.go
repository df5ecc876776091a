// Package backend is the consul effect's only door to Consul: a client of
// the agent and catalog APIs built from the service's settings (address,
// ACL token, TLS), a per-backend circuit breaker in front of every call
// (spec 6.3), and the classification of Consul failures into ONEX error
// kinds and the effect result's CONSUL_* error codes (spec 6.1, 6.5).
//
// Every call is single-shot: the client never retries (spec 6.4, "effects are
// single-shot; orchestrators own retries"). A call made while the breaker is
// open fails at once with an InfraUnavailableError and never reaches Consul.
//
// A token Consul accepts for reads but refuses for writes opens the breaker
// like an outage: Consul filters what a token may not read instead of
// refusing it, so while the last write was refused for the token a read
// that succeeds counts neither as a success nor as a failure, and the
// refused writes in a row reach the threshold (see do).
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// Name is the backend name used in effect results, metrics and sanitized
// error texts.
const Name = "consul"

// Settings configure the Consul client and its breaker. Token is a
// config.Secret and is handed to the API client only; it never reaches a log
// line, metric or error.
type Settings struct {
	// Addr is host:port of the agent's HTTP API (CONSUL_HTTP_ADDR); an
	// http:// or https:// prefix selects the scheme.
	Addr string
	// Token is the ACL token (CONSUL_HTTP_TOKEN).
	Token config.Secret
	// SSL selects https (CONSUL_HTTP_SSL).
	SSL bool
	// CACert, ClientCert, ClientKey are PEM file paths (CONSUL_CACERT,
	// CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY).
	CACert, ClientCert, ClientKey string
	// TLSServerName is the name Consul's certificate must hold when it is
	// not the host of Addr (CONSUL_TLS_SERVER_NAME).
	TLSServerName string
	// InsecureSkipVerify disables server certificate checks
	// (CONSUL_HTTP_SSL_VERIFY=false); for development only.
	InsecureSkipVerify bool
	// Timeout bounds one HTTP call (ONEX_CONSUL_TIMEOUT_SECONDS, default 5 s).
	Timeout time.Duration
	// Parallel is how many calls the service makes at once at most
	// (ONEX_CONSUL_PARALLELISM): the connections kept open for reuse.
	Parallel int
	// BreakerThreshold is the number of consecutive failures that open the
	// breaker (spec 6.3: 5).
	BreakerThreshold uint32
	// BreakerReset is how long the breaker stays open before one trial call
	// is let through (spec 6.3: 60 s).
	BreakerReset time.Duration
	// Log gets one line per breaker state change, the opening one with the
	// failure that tripped it (nil: none).
	Log *slog.Logger
}

// DefaultSettings returns the spec's breaker numbers and a 5 s call timeout.
func DefaultSettings() Settings {
	return Settings{Addr: "127.0.0.1:8500", Timeout: 5 * time.Second, BreakerThreshold: 5, BreakerReset: 60 * time.Second}
}

// Breaker states as exported by onex_circuit_breaker_state, the same
// encoding as the projector effect's: 0 closed, 1 half-open, 2 open.
const (
	StateClosed   = 0
	StateHalfOpen = 1
	StateOpen     = 2
)

// Metrics are the backend's Prometheus series.
type Metrics struct {
	Requests *prometheus.CounterVec   // onex_consul_requests_total{op,outcome}
	Duration *prometheus.HistogramVec // onex_consul_request_duration_seconds{op}
	Breaker  *prometheus.GaugeVec     // onex_circuit_breaker_state{backend}
}

// NewMetrics creates the series and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_consul_requests_total",
			Help: "Consul API calls by operation and outcome (ok, error, rejected = not made because the breaker is open)."},
			[]string{"op", "outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "onex_consul_request_duration_seconds",
			Help: "Duration of Consul API calls.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, []string{"op"}),
		Breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "onex_circuit_breaker_state",
			Help: "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open."}, []string{"backend"}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Duration, m.Breaker)
	}
	return m
}

// Client is a Consul client behind a circuit breaker. It is safe for
// concurrent use.
type Client struct {
	api     *api.Client
	cb      *gobreaker.CircuitBreaker[struct{}]
	timeout time.Duration
	reset   time.Duration
	m       *Metrics

	hints hints
	log   *slog.Logger

	// writesRefused is set while the last write Consul answered was
	// refused for the token (401/403); see do.
	writesRefused atomic.Bool

	mu       sync.Mutex
	openedAt time.Time
	lastErr  error // the last failure, for the line that says the breaker opened
}

// New builds the client. It does not contact Consul (see Ping).
func New(s Settings, m *Metrics) (*Client, error) {
	if m == nil {
		m = NewMetrics(nil)
	}
	if s.Timeout <= 0 {
		s.Timeout = 5 * time.Second
	}
	if s.BreakerThreshold == 0 {
		s.BreakerThreshold = 5
	}
	if s.BreakerReset <= 0 {
		s.BreakerReset = 60 * time.Second
	}
	// Pooled: the non-pooled transport opens a connection per request (no
	// keep-alive), which cost the effect a dial per Consul call (16 % of its
	// CPU in make bench) and the agent an accept. The effect calls Consul
	// from up to its parallelism at once (ONEX_CONSUL_PARALLELISM); idle
	// connections are kept for that many.
	cfg := api.DefaultConfig()
	cfg.Transport.MaxIdleConnsPerHost = max(s.Parallel, 2)
	cfg.Scheme = s.Scheme()
	cfg.Address = strings.TrimPrefix(strings.TrimPrefix(s.Addr, "https://"), "http://")
	cfg.Token = s.Token.Reveal()
	cfg.TLSConfig = api.TLSConfig{Address: s.TLSServerName, CAFile: s.CACert, CertFile: s.ClientCert, KeyFile: s.ClientKey,
		InsecureSkipVerify: s.InsecureSkipVerify}
	// DefaultConfig read the process environment too; what this
	// service uses is exactly what its settings say, nothing picked up on the side.
	cfg.Namespace, cfg.Partition, cfg.TokenFile, cfg.HttpAuth = "", "", "", nil
	client, err := api.NewClient(cfg)
	if err != nil {
		// The error may name a certificate path; it never holds the token.
		return nil, infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportConsul, Operation: "configure"},
			"consul client", errors.New(infraerr.SanitizeString(err.Error())))
	}
	c := &Client{api: client, timeout: s.Timeout, reset: s.BreakerReset, m: m, log: s.Log,
		hints: hints{token: s.Token.Reveal() != "", caFile: s.CACert != ""}}
	c.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name: Name,
		// One trial call in half-open; its success closes the breaker
		// (spec 6.3: half_open_successes=1).
		MaxRequests: 1,
		// Interval 0: the closed-state count only resets on success, which is
		// the spec's "any success resets it to 0".
		Interval: 0,
		Timeout:  s.BreakerReset,
		ReadyToTrip: func(cn gobreaker.Counts) bool {
			return cn.ConsecutiveFailures >= s.BreakerThreshold
		},
		IsExcluded:    excluded,
		OnStateChange: func(_ string, _, to gobreaker.State) { c.stateChanged(to) },
	})
	m.Breaker.WithLabelValues(Name).Set(StateClosed)
	return c, nil
}

func (c *Client) stateChanged(to gobreaker.State) {
	c.mu.Lock()
	if to == gobreaker.StateOpen {
		c.openedAt = time.Now()
	}
	last := c.lastErr
	c.mu.Unlock()
	c.m.Breaker.WithLabelValues(Name).Set(stateValue(to))
	if c.log == nil {
		return
	}
	switch to {
	case gobreaker.StateOpen:
		c.log.Warn("consul circuit breaker open", "reset_after", c.reset.String(), "last_error", infraerr.SanitizeError(last))
	case gobreaker.StateHalfOpen:
		c.log.Info("consul circuit breaker half-open: the next call is a trial")
	case gobreaker.StateClosed:
		c.log.Info("consul circuit breaker closed")
	}
}

func stateValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateOpen:
		return StateOpen
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	}
	return StateClosed
}

// State returns the breaker state (StateClosed, StateOpen, StateHalfOpen).
// Reading it moves an open breaker whose reset time has passed to half-open,
// so the exported gauge does not show "open" after the breaker would let a
// trial call through.
func (c *Client) State() int {
	v := stateValue(c.cb.State())
	c.m.Breaker.WithLabelValues(Name).Set(v)
	return int(v)
}

func (c *Client) retryAfter() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	left := c.reset - time.Since(c.openedAt)
	if left < 0 {
		return 0
	}
	return float64(int64(left.Seconds() + 0.999))
}

// errNeutral marks a successful read made while writes are refused for the
// token: excluded from the breaker's counts, nil to the caller.
var errNeutral = errors.New("consul read while writes are refused: neither a success nor a failure")

// excluded reports outcomes that say nothing about whether the effect can
// use Consul: the caller giving up (shutdown), requests Consul rejected as
// invalid (4xx other than 401, 403 and 429), and reads while writes are
// refused (errNeutral). They neither open nor close the breaker.
func excluded(err error) bool {
	if errors.Is(err, errNeutral) || errors.Is(err, context.Canceled) {
		return true
	}
	k, _ := infraerr.KindOf(err)
	return k == infraerr.KindRequestRejected
}

// writeOp reports the operations that change Consul (the others read).
func writeOp(op string) bool { return op == "register" || op == "deregister" || op == "txn" }

// do runs one Consul call through the breaker with the call timeout. The
// returned error is an *infraerr.Error (see Classify).
//
// A write Consul refuses for the token (401/403) marks writes refused, and
// the next write it accepts clears the mark. While the mark is set, a read
// that succeeds is neutral for the breaker: with a token that may read but
// not write, every intent's read before its write would otherwise reset
// the count of failures and the breaker would never open, however many
// writes Consul refuses.
func (c *Client) do(ctx context.Context, op string, fn func(q *api.QueryOptions) error) error {
	start := time.Now()
	write := writeOp(op)
	_, err := c.cb.Execute(func() (struct{}, error) {
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		err := fn((&api.QueryOptions{}).WithContext(cctx))
		switch {
		case err != nil:
			ce := c.classify(op, err)
			if k, _ := infraerr.KindOf(ce); write && k == infraerr.KindAuthentication {
				c.writesRefused.Store(true)
			}
			c.mu.Lock()
			c.lastErr = ce
			c.mu.Unlock()
			return struct{}{}, ce
		case write:
			c.writesRefused.Store(false)
		case c.writesRefused.Load():
			return struct{}{}, errNeutral
		}
		return struct{}{}, nil
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		c.m.Requests.WithLabelValues(op, "rejected").Inc()
		return infraerr.CircuitOpen(infraerr.Context{Transport: infraerr.TransportConsul, Operation: op, Target: Name}, c.retryAfter())
	case err != nil && !errors.Is(err, errNeutral):
		c.m.Requests.WithLabelValues(op, "error").Inc()
		c.m.Duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		return err
	}
	c.m.Requests.WithLabelValues(op, "ok").Inc()
	c.m.Duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	return nil
}

// classify is Classify with the client's settings at hand for the
// explanation of a refusal.
func (c *Client) classify(op string, err error) *infraerr.Error {
	return classify(op, err, c.hints)
}

// Classify turns a Consul API failure into an *infraerr.Error: 401/403 →
// authentication, 429 → rate limited, other 4xx → request rejected, 5xx →
// unavailable, a rolled-back transaction → authentication when an
// operation was refused for the token, request rejected otherwise,
// deadlines → timeout, network errors → connection, anything
// else keeps infraerr's classification (unknown → runtime). A refused ACL
// token, an untrusted or wrong server certificate and a scheme the
// listener does not speak are explained in one line naming the variable to
// check (explain): authentication, or configuration for the scheme.
func Classify(op string, err error) *infraerr.Error {
	return classify(op, err, hints{token: true, caFile: true})
}

func classify(op string, err error, h hints) *infraerr.Error {
	ictx := infraerr.Context{Transport: infraerr.TransportConsul, Operation: op, Target: Name}
	var ie *infraerr.Error
	if errors.As(err, &ie) {
		return infraerr.Wrap(err, ictx, "")
	}
	if e := explain(op, err, h); e != nil {
		return e
	}
	if errors.As(err, new(*TxnRolledBack)) {
		// One refused for the token was explained above.
		return infraerr.New(infraerr.KindRequestRejected, ictx, fmt.Sprintf("consul %s: transaction rolled back", op), err)
	}
	var se api.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden:
			return infraerr.New(infraerr.KindAuthentication, ictx, fmt.Sprintf("consul %s: HTTP %d", op, se.Code), err)
		case se.Code == http.StatusTooManyRequests:
			return infraerr.New(infraerr.KindRateLimited, ictx, fmt.Sprintf("consul %s: HTTP %d", op, se.Code), err)
		case se.Code >= 500:
			return infraerr.New(infraerr.KindUnavailable, ictx, fmt.Sprintf("consul %s: HTTP %d", op, se.Code), err)
		default:
			return infraerr.New(infraerr.KindRequestRejected, ictx, fmt.Sprintf("consul %s: HTTP %d", op, se.Code), err)
		}
	}
	if k, ok := infraerr.KindOf(err); ok {
		return infraerr.New(k, ictx, "consul "+op, err)
	}
	// The HTTP client reports some transport failures (e.g. a refused TLS
	// handshake, EOF from a dying agent) without a typed error; they are
	// still failures to talk to Consul.
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "eof") || strings.Contains(msg, "connection") || strings.Contains(msg, "tls") {
		return infraerr.New(infraerr.KindConnection, ictx, "consul "+op, err)
	}
	return infraerr.New(infraerr.KindRuntime, ictx, "consul "+op, err)
}

// Error codes of a failed consul effect result (spec 6.1 historical codes).
const (
	CodeConnection = "CONSUL_CONNECTION_ERROR"
	CodeTimeout    = "CONSUL_TIMEOUT_ERROR"
	CodeAuth       = "CONSUL_AUTH_ERROR"
	CodeUnknown    = "CONSUL_UNKNOWN_ERROR"
)

// ResultCode maps a classified failure to the effect result's error_code and
// retriable flag. Connection, unavailable (5xx, open breaker) and rate limited
// are CONSUL_CONNECTION_ERROR and timeouts CONSUL_TIMEOUT_ERROR, all
// retriable; 401/403 are CONSUL_AUTH_ERROR and anything else
// CONSUL_UNKNOWN_ERROR, neither retriable.
func ResultCode(err error) (code string, retriable bool) {
	k, _ := infraerr.KindOf(err)
	switch k {
	case infraerr.KindTimeout:
		return CodeTimeout, true
	case infraerr.KindConnection, infraerr.KindUnavailable, infraerr.KindRateLimited:
		return CodeConnection, true
	case infraerr.KindAuthentication:
		return CodeAuth, false
	}
	return CodeUnknown, false
}

// ResultError is the sanitized error text of a failed result: the spec's
// allowlist summary ("consul operation failed: connection refused"). An open
// breaker and Consul's 5xx answers read "consul operation failed: service
// unavailable"; a refused ACL token "consul operation failed: permission
// denied"; a server certificate the client does not accept "consul
// operation failed: authentication failed".
func ResultError(err error) string {
	k, _ := infraerr.KindOf(err)
	var se api.StatusError
	switch {
	case k == infraerr.KindUnavailable:
		return infraerr.SanitizeBackendError(Name, "service unavailable")
	case k == infraerr.KindAuthentication && (errors.As(err, &se) || errors.As(err, new(*TxnRolledBack))):
		return infraerr.SanitizeBackendError(Name, "permission denied")
	case k == infraerr.KindAuthentication:
		return infraerr.SanitizeBackendError(Name, "authentication failed")
	}
	return infraerr.SanitizeBackendError(Name, err.Error())
}

// Ping checks that the agent answers (GET /v1/agent/self is not used because
// it needs agent:read; the leader endpoint needs no ACL). It bypasses the
// breaker: readiness probes must not open or close it.
func (c *Client) Ping(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.api.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(cctx))
	if err != nil {
		return c.classify("ping", err)
	}
	return nil
}

// Service returns the agent's service with id and its checks, or (nil, nil,
// nil) when the agent has no such service.
func (c *Client) Service(ctx context.Context, id string) (*api.AgentService, []*api.AgentCheck, error) {
	var svc *api.AgentService
	err := c.do(ctx, "get_service", func(q *api.QueryOptions) error {
		s, _, err := c.api.Agent().Service(id, q)
		var se api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil
		}
		svc = s
		return err
	})
	if err != nil || svc == nil {
		return nil, nil, err
	}
	var checks []*api.AgentCheck
	err = c.do(ctx, "list_checks", func(q *api.QueryOptions) error {
		m, err := c.api.Agent().ChecksWithFilterOpts(fmt.Sprintf("ServiceID == %q", id), q)
		for _, ch := range m {
			checks = append(checks, ch)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return svc, checks, nil
}

// Services lists the agent's services carrying tag and all the agent's
// checks grouped by service id.
func (c *Client) Services(ctx context.Context, tag string) (map[string]*api.AgentService, map[string][]*api.AgentCheck, error) {
	var svcs map[string]*api.AgentService
	err := c.do(ctx, "list_services", func(q *api.QueryOptions) error {
		var err error
		svcs, err = c.api.Agent().ServicesWithFilterOpts(fmt.Sprintf("%q in Tags", tag), q)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	checks := map[string][]*api.AgentCheck{}
	err = c.do(ctx, "list_checks", func(q *api.QueryOptions) error {
		m, err := c.api.Agent().ChecksWithFilterOpts("", q)
		for _, ch := range m {
			checks[ch.ServiceID] = append(checks[ch.ServiceID], ch)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return svcs, checks, nil
}

// Register registers (or replaces) a service and its checks in the agent;
// checks of the service that reg does not name are removed.
func (c *Client) Register(ctx context.Context, reg *api.AgentServiceRegistration) error {
	return c.do(ctx, "register", func(q *api.QueryOptions) error {
		return c.api.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(q.Context()))
	})
}

// Deregister removes a service from the agent. A service the agent does not
// have counts as removed.
func (c *Client) Deregister(ctx context.Context, id string) error {
	return c.do(ctx, "deregister", func(q *api.QueryOptions) error {
		err := c.api.Agent().ServiceDeregisterOpts(id, q)
		var se api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil
		}
		return err
	})
}
