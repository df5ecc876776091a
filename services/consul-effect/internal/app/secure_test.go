package app

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/effect"
)

// secureConsul is the secured agent scripts/infra/consul-secure.sh runs
// (ACLs default deny, HTTPS only), as its client.env describes it.
type secureConsul struct {
	// addr is host:port of its HTTPS listener; caFile the CA that signed
	// its certificate.
	addr, caFile string
	// token has the policy onex-consul-effect (the least the effect
	// needs), readOnly the policy onex-consul-readonly, bootstrap is the
	// management token.
	token, readOnly, bootstrap string
}

// secureConsulAgent reads the client.env that ONEX_CONSUL_SECURE_ENV names
// (scripts/infra/env.sh sets it; `make test-infra-up` starts the agent).
// Like the other servers, it is skipped when absent unless
// ONEX_REQUIRE_INFRA=1.
func secureConsulAgent(t *testing.T) secureConsul {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (real secured Consul agent); skipped with -short")
	}
	unavailable := func(msg string) {
		t.Helper()
		msg += ": run `scripts/infra/consul-secure.sh start` with the test servers' environment (`make test-infra-up`)"
		if os.Getenv("ONEX_REQUIRE_INFRA") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	path := os.Getenv("ONEX_CONSUL_SECURE_ENV")
	if path == "" {
		unavailable("ONEX_CONSUL_SECURE_ENV not set: this test needs the secured Consul agent")
	}
	f, err := os.Open(path)
	if err != nil {
		unavailable("secured Consul agent not set up (" + err.Error() + ")")
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			kv[k] = strings.Trim(v, `'"`)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	s := secureConsul{addr: kv["CONSUL_HTTP_ADDR"], caFile: kv["CONSUL_CACERT"], token: kv["CONSUL_HTTP_TOKEN"],
		readOnly: kv["ONEX_CONSUL_SECURE_READONLY_TOKEN"], bootstrap: kv["ONEX_CONSUL_SECURE_BOOTSTRAP_TOKEN"]}
	if s.addr == "" || s.caFile == "" || s.token == "" || s.readOnly == "" || s.bootstrap == "" || kv["CONSUL_HTTP_SSL"] != "true" {
		t.Fatalf("%s is incomplete (address, CA, the three tokens, CONSUL_HTTP_SSL=true)", path)
	}
	return s
}

// settings are the effect's Consul settings for the agent: HTTPS, its CA,
// the given token.
func (s secureConsul) settings(token string) backend.Settings {
	return backend.Settings{Addr: s.addr, SSL: true, CACert: s.caFile, Token: config.Secret(token),
		Timeout: 2 * time.Second, BreakerThreshold: 5, BreakerReset: 60 * time.Second}
}

// admin is an API client of the agent as the bootstrap token: the test's
// own reads and writes by hand.
func (s secureConsul) admin(t *testing.T) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: s.addr, Scheme: "https", Token: s.bootstrap, TLSConfig: api.TLSConfig{CAFile: s.caFile}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSecureConsul runs the effect against the secured agent, in both
// modes. With the least-policy token over HTTPS it registers (liveness
// passing, then critical), deregisters, and anti-entropy repairs a service
// deleted by hand and removes a stray of its environment. With the
// read-only token every register fails CONSUL_AUTH_ERROR, not retriable,
// the log says in one line that Consul refused the token, the breaker
// opens and nothing is registered. With a CA that did not sign the agent's
// certificate the effect never gets ready, an intent fails, and the log
// says so in one line. None of the tokens is in any log line, result or
// metric.
func TestSecureConsul(t *testing.T) {
	t.Parallel()
	sc := secureConsulAgent(t)
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			for _, step := range []struct {
				name string
				run  func(*testing.T, secureConsul, effect.Mode) *harness
			}{
				{"least_policy", testSecureLeastPolicy},
				{"read_only_token", testSecureReadOnly},
				{"untrusted_ca", testSecureUntrustedCA},
			} {
				t.Run(step.name, func(t *testing.T) {
					h := step.run(t, sc, mode)
					h.stop()
					checkNoToken(t, sc, h)
				})
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		testSecureRefusals(t, sc)
	})
}

func testSecureLeastPolicy(t *testing.T, sc secureConsul, mode effect.Mode) *harness {
	h := newHarness(t, sc.addr, mode)
	h.consul = sc.admin(t)
	catalog := mode == effect.ModeCatalog
	ae, a, strayNode := uuid.New(), uuid.New(), uuid.New()
	id := func(n uuid.UUID) string { return "onex-effect-" + n.String() }
	t.Cleanup(func() {
		for _, n := range []uuid.UUID{ae, a, strayNode} {
			h.deregisterByHand(id(n))
		}
	})
	// A stray of this environment (a node the registry does not know)
	// where the mode keeps services, written by hand.
	stray := &api.AgentServiceRegistration{ID: id(strayNode), Name: "onex-effect", Tags: []string{"onex"},
		Meta: map[string]string{"onex-env": h.env, "onex-node-id": strayNode.String(), "onex-sequence": "3"}}
	if catalog {
		_, err := h.consul.Catalog().Register(&api.CatalogRegistration{Node: effect.CatalogNode(strayNode), Address: "127.0.0.1",
			NodeMeta: map[string]string{"external-node": "true", "onex-env": h.env},
			Service:  &api.AgentService{ID: stray.ID, Service: stray.Name, Tags: stray.Tags, Meta: stray.Meta}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	} else if err := h.consul.Agent().ServiceRegister(stray); err != nil {
		t.Fatal(err)
	}
	h.sendSnapshot(ae, "active", 4, 8080, "")

	const interval = time.Second
	s := h.settings(interval)
	s.Consul = sc.settings(sc.token)
	h.start(s)
	h.eventually(10*interval, "the snapshot's node registered and the stray removed", func() bool {
		return h.service(id(ae)) != nil && len(h.catalog(id(strayNode))) == 0
	})

	ok := func(s sent) {
		t.Helper()
		if r := h.result(s.intentID, 1).res; !r.Success || r.Stale || r.ErrorCode != nil {
			t.Fatalf("result %+v", r)
		}
	}
	checkStatus := func() string {
		checks, _, err := h.consul.Health().Checks("onex-effect", &api.QueryOptions{Filter: `ServiceID == "` + id(a) + `"`})
		if err != nil || len(checks) != 1 {
			return ""
		}
		return checks[0].Status
	}
	// Registered with its liveness passing: catalog mode writes the
	// payload's health, agent mode's agent runs the HTTP check (and syncs
	// it to the catalog with the effect's token).
	p := registerPayload(a, 8080, "")
	if catalog {
		p.Health = pipeline.HealthPassing
	} else {
		p = registerPayload(a, 8080, healthServer(t))
	}
	ok(h.sendIntent(a, 2, 0, pipeline.ConsulRegister, p, uuid.Nil))
	h.eventually(15*time.Second, "liveness passing, in the passing query", func() bool {
		return checkStatus() == api.HealthPassing && h.passing(id(a))
	})
	// Critical: the registry's liveness expired (catalog), the health
	// endpoint fails (agent).
	if catalog {
		p.Health = pipeline.HealthCritical
	} else {
		failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
		t.Cleanup(failing.Close)
		p = registerPayload(a, 8080, failing.URL+"/health")
	}
	ok(h.sendIntent(a, 3, 0, pipeline.ConsulRegister, p, uuid.Nil))
	h.eventually(15*time.Second, "liveness critical, out of the passing query", func() bool {
		return checkStatus() == api.HealthCritical && !h.passing(id(a))
	})
	ok(h.sendIntent(a, 4, 0, pipeline.ConsulDeregister, deregisterPayload(a), uuid.Nil))
	if h.service(id(a)) != nil || len(h.catalog(id(a))) != 0 || (catalog && h.catalogNode(effect.CatalogNode(a))) {
		t.Fatal("still registered after the deregister intent")
	}

	// Deleted by hand: anti-entropy puts it back.
	h.deregisterByHand(id(ae))
	h.eventually(5*interval, "the service deleted by hand restored", func() bool { return h.service(id(ae)) != nil })
	if st := h.app.Consul().State(); st != backend.StateClosed {
		t.Fatalf("breaker state %d with the least-policy token", st)
	}
	if got := h.metric("onex_consul_requests_total", map[string]string{"outcome": "error"}); got != 0 {
		t.Fatalf("%v Consul calls failed with the least-policy token", got)
	}
	return h
}

func testSecureReadOnly(t *testing.T, sc secureConsul, mode effect.Mode) *harness {
	h := newHarness(t, sc.addr, mode)
	h.consul = sc.admin(t)
	s := h.settings(time.Hour) // anti-entropy: one pass at start, nothing to do
	s.Consul = sc.settings(sc.readOnly)
	h.start(s)
	// One intent at a time: each one's read succeeds (the token may read)
	// and its write is refused. Five refused writes in a row open the
	// breaker (threshold 5), whatever the reads in between; then it
	// answers. (Anti-entropy's first pass may have had a write refused too,
	// removing a meta-less stray another run left: it counts.)
	refused := 0
	for i := range 7 {
		n := uuid.New()
		t.Cleanup(func() { h.deregisterByHand("onex-effect-" + n.String()) })
		r := h.result(h.sendIntent(n, 2, 0, pipeline.ConsulRegister, registerPayload(n, 8000+i, ""), uuid.Nil).intentID, 1).res
		if r.Success || r.ErrorCode == nil || r.Error == nil {
			t.Fatalf("intent %d with the read-only token: %+v", i, r)
		}
		want, retriable, text := backend.CodeAuth, false, "consul operation failed: permission denied"
		if i > refused || i >= 5 {
			want, retriable, text = backend.CodeConnection, true, "consul operation failed: service unavailable"
		}
		if *r.ErrorCode == backend.CodeAuth && i == refused {
			refused++
			continue
		}
		if *r.ErrorCode != want || r.Retriable != retriable || *r.Error != text {
			t.Fatalf("intent %d: %s retriable=%v %q, want %s retriable=%v %q", i, *r.ErrorCode, r.Retriable, *r.Error, want, retriable, text)
		}
	}
	if st := h.app.Consul().State(); refused == 0 || refused == 7 || st != backend.StateOpen {
		t.Fatalf("%d intents refused, then breaker state %d: want 1..5, then open", refused, st)
	}
	writesRefused := h.metric("onex_consul_requests_total", map[string]string{"op": "register", "outcome": "error"}) +
		h.metric("onex_consul_requests_total", map[string]string{"op": "deregister", "outcome": "error"}) +
		h.metric("onex_consul_requests_total", map[string]string{"op": "txn", "outcome": "error"})
	if writesRefused != 5 {
		t.Fatalf("%v writes refused before the breaker opened, want the threshold, 5", writesRefused)
	}
	if n := len(h.envServices()); n != 0 {
		t.Fatalf("%d services registered with a read-only token", n)
	}
	// The agent API refuses the call (403); a catalog transaction is
	// rolled back (409) with the first operation refused, the node's.
	refusal, what := `Consul refused the ACL token (403 Permission denied`, `: it lacks service:write on \"onex-effect\"): check CONSUL_HTTP_TOKEN and its policy (docs/consul-effect.md)`
	if mode == effect.ModeCatalog {
		refusal, what = `Consul refused the ACL token (409 Permission denied`, `: it lacks node:write on \"onex-node-`
	}
	if n := countLines(t, h.logPath, `"msg":"consul intent failed"`, refusal+what); n != refused {
		t.Fatalf("%d log lines say %s, want one per refused intent (%d)", n, refusal+what, refused)
	}
	if n := countLines(t, h.logPath, `"msg":"consul circuit breaker open"`, refusal); n != 1 {
		t.Fatalf("%d log lines say the breaker opened because of the token, want 1", n)
	}
	return h
}

func testSecureUntrustedCA(t *testing.T, sc secureConsul, mode effect.Mode) *harness {
	h := newHarness(t, sc.addr, mode)
	h.consul = sc.admin(t)
	s := h.settings(time.Hour)
	s.Consul = sc.settings(sc.token)
	s.Consul.CACert = testca.New(t, "not the agent's CA").CertFile
	h.launch(s, nil)
	h.eventually(60*time.Second, "intents partitions assigned", func() bool {
		r := h.app.runner.Load()
		return r != nil && r.Assigned()
	})
	n := uuid.New()
	t.Cleanup(func() { h.deregisterByHand("onex-effect-" + n.String()) })
	r := h.result(h.sendIntent(n, 2, 0, pipeline.ConsulRegister, registerPayload(n, 8000, ""), uuid.Nil).intentID, 1).res
	if r.Success || r.ErrorCode == nil || *r.ErrorCode != backend.CodeAuth || r.Retriable || *r.Error != "consul operation failed: authentication failed" {
		t.Fatalf("result with an untrusted CA: %+v", r)
	}
	if h.svc.Health.Ready() {
		t.Fatal("ready although Consul's certificate is not trusted")
	}
	const line = "Consul's certificate is not signed by CONSUL_CACERT"
	h.eventually(10*time.Second, "a log line saying "+line, func() bool {
		return countLines(t, h.logPath, `"msg":"consul agent not reachable yet"`, line) > 0 &&
			countLines(t, h.logPath, `"msg":"consul intent failed"`, line) == 1
	})
	if h.service("onex-effect-"+n.String()) != nil {
		t.Fatal("registered through an untrusted connection")
	}
	return h
}

// checkNoToken: no token of the agent is in what the harness's effect
// wrote (log), published (results) or exported (metrics).
func checkNoToken(t *testing.T, sc secureConsul, h *harness) {
	t.Helper()
	out, err := os.ReadFile(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(observability.Handler(h.svc.Health, h.svc.Registry))
	_, metrics := httpGet(t, srv.URL+"/metrics")
	srv.Close()
	var results strings.Builder
	h.mu.Lock()
	for _, rs := range h.res {
		for _, r := range rs {
			if r.res.Error != nil {
				results.WriteString(*r.res.Error + "\n")
			}
			results.WriteString(r.key + "\n")
		}
	}
	h.mu.Unlock()
	for what, text := range map[string]string{"log": string(out), "metrics": metrics, "results": results.String()} {
		if text == "" {
			t.Fatalf("%s of %s is empty", what, h.env)
		}
		for name, tok := range map[string]string{"effect": sc.token, "read-only": sc.readOnly, "bootstrap": sc.bootstrap} {
			if strings.Contains(text, tok) {
				t.Errorf("the %s token is in the %s of %s", name, what, h.env)
			}
		}
	}
}

// testSecureRefusals: each way a client can be refused by the secured
// agent gives one clear error naming what to fix, and the right settings
// work (the control row).
func testSecureRefusals(t *testing.T, sc secureConsul) {
	other := testca.New(t, "another CA")
	// The catalog mode's write, a transaction.
	loopback := "127.0.0.1"
	register := func(ctx context.Context, c *backend.Client, n uuid.UUID) error {
		d, err := effect.Build(n, 1, "", &pipeline.ConsulRegisterPayload{ServiceID: "onex-effect-" + n.String(), ServiceName: "onex-effect",
			Tags: []string{"onex"}, Address: &loopback})
		if err != nil {
			t.Fatal(err)
		}
		return effect.NewCatalogStore(c, "", nil).Put(ctx, nil, d)
	}
	admin := sc.admin(t)
	tests := []struct {
		name   string
		change func(s *backend.Settings)
		write  bool   // a catalog registration, else a ping
		want   string // in SanitizeError; "" = success
		code   string
	}{
		{name: "least policy writes", change: func(*backend.Settings) {}, write: true},
		{name: "server name checked", change: func(s *backend.Settings) { s.TLSServerName = "localhost" }},
		{name: "untrusted CA", change: func(s *backend.Settings) { s.CACert = other.CertFile },
			want: "Consul's certificate is not signed by CONSUL_CACERT", code: backend.CodeAuth},
		{name: "system roots", change: func(s *backend.Settings) { s.CACert = "" },
			want: "Consul's certificate is not signed by a CA the system trusts: set CONSUL_CACERT", code: backend.CodeAuth},
		{name: "another host", change: func(s *backend.Settings) { s.TLSServerName = "consul.invalid" },
			want: "Consul's certificate is for another host", code: backend.CodeAuth},
		{name: "plain http", change: func(s *backend.Settings) { s.SSL = false },
			want: "Consul's address speaks HTTPS: set CONSUL_HTTP_SSL=true or an https:// CONSUL_HTTP_ADDR", code: backend.CodeUnknown},
		{name: "no token", change: func(s *backend.Settings) { s.Token = "" }, write: true,
			want: `Consul refused the request without an ACL token (409 Permission denied: anonymous lacks node:write on "onex-node-`, code: backend.CodeAuth},
		{name: "unknown token", change: func(s *backend.Settings) { s.Token = config.Secret(uuid.NewString()) }, write: true,
			want: "Consul refused the ACL token (403 ACL not found: Consul does not know it): check CONSUL_HTTP_TOKEN", code: backend.CodeAuth},
		{name: "read-only token", change: func(s *backend.Settings) { s.Token = config.Secret(sc.readOnly) }, write: true,
			want: `Consul refused the ACL token (409 Permission denied: it lacks node:write on "onex-node-`, code: backend.CodeAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sc.settings(sc.token)
			tt.change(&s)
			c, err := backend.New(s, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n := uuid.New()
			if tt.write {
				t.Cleanup(func() {
					_, _ = admin.Catalog().Deregister(&api.CatalogDeregistration{Node: effect.CatalogNode(n)}, nil)
				})
				err = register(ctx, c, n)
			} else {
				err = c.Ping(ctx)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("error %s", infraerr.SanitizeError(err))
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			got := infraerr.SanitizeError(err)
			if !strings.Contains(got, tt.want) || strings.Contains(got, "\n") {
				t.Fatalf("error %q, want one line with %q", got, tt.want)
			}
			if code, retriable := backend.ResultCode(err); code != tt.code || retriable {
				t.Fatalf("result code %s retriable=%v, want %s not retriable", code, retriable, tt.code)
			}
			for _, tok := range []string{sc.token, sc.readOnly, sc.bootstrap, s.Token.Reveal()} {
				if tok != "" && (strings.Contains(got, tok) || strings.Contains(backend.ResultError(err), tok)) {
					t.Fatal("a token is in the error")
				}
			}
		})
	}
}

// countLines counts the lines of a file that contain every one of ss.
func countLines(t *testing.T, path string, ss ...string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
next:
	for _, l := range strings.Split(string(b), "\n") {
		for _, s := range ss {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		n++
	}
	return n
}
