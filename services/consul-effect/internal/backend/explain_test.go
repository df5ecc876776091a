package backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
)

// TestExplain: every refusal an operator must act on is one line naming
// the variable, in a sanitized log line as it is, with the result's code;
// nothing of Consul's text but the permission and the resource it names.
func TestExplain(t *testing.T) {
	const accessor = "9e1c5f0a-3b6d-4c2e-8f7a-1d2b3c4d5e6f"
	denied := api.StatusError{Code: 403, Body: "Permission denied: token with AccessorID '" + accessor + "' lacks permission 'service:write' on \"onex-effect\""}
	urlErr := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://127.0.0.1:8501/v1/status/leader", Err: err}
	}
	tests := []struct {
		name  string
		err   error
		h     hints
		want  string
		code  string
		text  string // ResultError
		kind  infraerr.Kind
		nonce string // must not survive
	}{
		{name: "write refused", err: denied, h: hints{token: true}, kind: infraerr.KindAuthentication, code: CodeAuth,
			want: `Consul refused the ACL token (403 Permission denied: it lacks service:write on "onex-effect"): check CONSUL_HTTP_TOKEN and its policy (docs/consul-effect.md)`,
			text: "consul operation failed: permission denied", nonce: accessor},
		{name: "anonymous", err: denied, kind: infraerr.KindAuthentication, code: CodeAuth,
			want: `Consul refused the request without an ACL token (403 Permission denied: anonymous lacks service:write on "onex-effect"): set CONSUL_HTTP_TOKEN (docs/consul-effect.md)`,
			text: "consul operation failed: permission denied", nonce: accessor},
		{name: "unknown token", err: api.StatusError{Code: 403, Body: "ACL not found"}, h: hints{token: true}, kind: infraerr.KindAuthentication, code: CodeAuth,
			want: "Consul refused the ACL token (403 ACL not found: Consul does not know it): check CONSUL_HTTP_TOKEN (docs/consul-effect.md)",
			text: "consul operation failed: permission denied"},
		{name: "denied, odd resource", err: api.StatusError{Code: 403, Body: `Permission denied: token lacks permission 'node:write' on "a b s3cr3t"`},
			h: hints{token: true}, kind: infraerr.KindAuthentication, code: CodeAuth,
			want: "Consul refused the ACL token (403 Permission denied): check CONSUL_HTTP_TOKEN and its policy", nonce: "s3cr3t"},
		{name: "401", err: api.StatusError{Code: 401, Body: "token s3cr3t"}, h: hints{token: true}, kind: infraerr.KindAuthentication, code: CodeAuth,
			want: "Consul refused the ACL token (401 Unauthorized): check CONSUL_HTTP_TOKEN and its policy", nonce: "s3cr3t"},
		{name: "untrusted CA", err: urlErr(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), h: hints{caFile: true},
			kind: infraerr.KindAuthentication, code: CodeAuth, want: "Consul's certificate is not signed by CONSUL_CACERT",
			text: "consul operation failed: authentication failed"},
		{name: "system roots", err: urlErr(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
			kind: infraerr.KindAuthentication, code: CodeAuth, want: "Consul's certificate is not signed by a CA the system trusts: set CONSUL_CACERT"},
		{name: "another host", err: urlErr(&tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"localhost"}}, Host: "consul.example"}}),
			kind: infraerr.KindAuthentication, code: CodeAuth, want: "Consul's certificate is for another host (x509: certificate is valid for localhost, not consul.example): set CONSUL_TLS_SERVER_NAME"},
		{name: "http to https", err: api.StatusError{Code: 400, Body: "Client sent an HTTP request to an HTTPS server.\n"},
			kind: infraerr.KindConfiguration, code: CodeUnknown, want: "Consul's address speaks HTTPS: set CONSUL_HTTP_SSL=true or an https:// CONSUL_HTTP_ADDR"},
		{name: "https to http", err: urlErr(errors.New("http: server gave HTTP response to HTTPS client")),
			kind: infraerr.KindConfiguration, code: CodeUnknown, want: "Consul's address does not speak HTTPS: check CONSUL_HTTP_SSL and CONSUL_HTTP_ADDR"},
		{name: "client certificate wanted", err: urlErr(&net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}),
			kind: infraerr.KindAuthentication, code: CodeAuth, want: "Consul refused the TLS handshake (tls: certificate required): an agent that verifies clients needs CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify("register", tt.err, tt.h)
			if k, _ := infraerr.KindOf(err); k != tt.kind {
				t.Fatalf("kind %v, want %v", k, tt.kind)
			}
			got := infraerr.SanitizeError(err)
			if !strings.Contains(got, tt.want) || strings.Contains(got, "\n") {
				t.Fatalf("SanitizeError = %q, want one line with %q", got, tt.want)
			}
			if code, retriable := ResultCode(err); code != tt.code || retriable {
				t.Fatalf("ResultCode = %s,%v, want %s,false", code, retriable, tt.code)
			}
			text := ResultError(err)
			if tt.text != "" && text != tt.text {
				t.Fatalf("ResultError = %q, want %q", text, tt.text)
			}
			if tt.nonce != "" && (strings.Contains(got, tt.nonce) || strings.Contains(text, tt.nonce)) {
				t.Fatalf("%q of Consul's answer survived: %q / %q", tt.nonce, got, text)
			}
		})
	}
}

// TestRefusedWritesOpenTheBreaker: against a Consul that lets the token
// read but refuses its writes, the reads before each write do not reset
// the count: five refused writes open the breaker, its line says why, and
// after the reset timeout a read is no trial: the next write is, and once
// Consul accepts it the breaker closes.
func TestRefusedWritesOpenTheBreaker(t *testing.T) {
	var accept atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet:
			http.NotFound(w, r) // the service is not there (a read the token may make)
		case accept.Load():
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, "Permission denied: token with AccessorID 'a' lacks permission 'service:write' on \"onex-effect\"")
		}
	}))
	defer srv.Close()
	var logs strings.Builder
	c, err := New(Settings{Addr: srv.URL, Token: config.Secret("tok"), Timeout: time.Second, BreakerThreshold: 5,
		BreakerReset: 300 * time.Millisecond, Log: observability.NewLogger(&logs, "consul-effect", "debug")}, NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := &api.AgentServiceRegistration{ID: "onex-effect-1", Name: "onex-effect"}
	for i := range 5 {
		if svc, _, err := c.Service(ctx, reg.ID); err != nil || svc != nil {
			t.Fatalf("read %d: %v %v", i, svc, err)
		}
		if err := c.Register(ctx, reg); err == nil {
			t.Fatalf("write %d accepted", i)
		} else if code, _ := ResultCode(err); code != CodeAuth {
			t.Fatalf("write %d: %s", i, code)
		}
	}
	if st := c.State(); st != StateOpen {
		t.Fatalf("state after five refused writes = %d, want open", st)
	}
	if !strings.Contains(logs.String(), `"msg":"consul circuit breaker open"`) ||
		!strings.Contains(logs.String(), `Consul refused the ACL token (403 Permission denied: it lacks service:write on \"onex-effect\")`) {
		t.Fatalf("no line says the breaker opened and why:\n%s", logs.String())
	}
	time.Sleep(350 * time.Millisecond)
	if _, _, err := c.Service(ctx, reg.ID); err != nil {
		t.Fatalf("read in half-open: %v", err)
	}
	if st := c.State(); st != StateHalfOpen {
		t.Fatalf("state after a read in half-open = %d, want still half-open", st)
	}
	accept.Store(true)
	if err := c.Register(ctx, reg); err != nil {
		t.Fatalf("trial write: %v", err)
	}
	if st := c.State(); st != StateClosed {
		t.Fatalf("state after an accepted write = %d, want closed", st)
	}
	// Writes accepted again: reads count as successes again.
	if _, _, err := c.Service(ctx, reg.ID); err != nil {
		t.Fatal(err)
	}
	if n := c.cb.Counts().ConsecutiveSuccesses; n != 1 {
		t.Fatalf("consecutive successes %d since the breaker closed, want 1 (the read)", n)
	}
}
