package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/effect"
)

func healthServer(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(srv.Close)
	return srv.URL + "/health"
}

// TestIntents drives register and deregister intents through the real
// broker into the shared Consul agent, in both modes: the catalog shows the
// spec's service (in catalog mode on an external node of its own with the
// liveness check the intent's health asks for), re-sending an intent writes
// nothing, older intents are skipped as stale, a deregistration takes the
// node out of health queries at once, every intent gets exactly one result
// keyed by node with its correlation id, and an undecodable record goes to
// the DLQ without a result.
func TestIntents(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testIntents(t, mode)
		})
	}
}

func testIntents(t *testing.T, mode effect.Mode) {
	h := newHarness(t, testkit.ConsulAddr(t), mode)
	// Anti-entropy stays out of the way: one pass at start, none after.
	h.start(h.settings(time.Hour))
	a, b := uuid.New(), uuid.New()
	idA, idB := "onex-effect-"+a.String(), "onex-effect-"+b.String()
	t.Cleanup(func() { h.deregisterByHand(idA); h.deregisterByHand(idB) })
	url := healthServer(t)

	checkResult := func(s sent, node uuid.UUID, seq int64, wantOK, wantStale bool) pipeline.EffectResult {
		t.Helper()
		got := h.result(s.intentID, 1)
		r := got.res
		if r.Success != wantOK || r.Stale != wantStale || r.Backend != "consul" || r.NodeID != node || r.Sequence != seq ||
			r.CorrelationID != s.corr || got.corr != s.corr || got.key != node.String() {
			t.Fatalf("result %+v (key %s, header corr %s), want success=%v stale=%v node=%s seq=%d corr=%s",
				r, got.key, got.corr, wantOK, wantStale, node, seq, s.corr)
		}
		if wantOK && (r.Error != nil || r.ErrorCode != nil) {
			t.Fatalf("successful result carries an error: %+v", r)
		}
		return r
	}

	// Register A with a health check.
	s1 := h.sendIntent(a, 2, 0, pipeline.ConsulRegister, registerPayload(a, 8080, url), uuid.Nil)
	checkResult(s1, a, 2, true, false)
	cat := h.catalog(idA)
	if len(cat) != 1 {
		t.Fatalf("catalog has %d entries for %s", len(cat), idA)
	}
	c := cat[0]
	if c.ServiceName != "onex-effect" || c.ServiceAddress != "127.0.0.1" || c.ServicePort != 8080 ||
		!slices.Equal(c.ServiceTags, []string{"onex", "node-type:effect"}) ||
		c.ServiceMeta["onex-node-id"] != a.String() || c.ServiceMeta["onex-node-type"] != "effect" ||
		c.ServiceMeta["onex-sequence"] != "2" || c.ServiceMeta["onex-env"] != h.env {
		t.Fatalf("catalog entry: %+v", c)
	}
	if mode == effect.ModeCatalog {
		if c.Node != effect.CatalogNode(a) || c.NodeMeta["external-node"] != "true" || c.NodeMeta["external-probe"] != "false" ||
			c.NodeMeta["onex-env"] != h.env || c.Address != "127.0.0.1" {
			t.Fatalf("catalog node of the entry: %s %s %v", c.Node, c.Address, c.NodeMeta)
		}
		// No health in the payload (a reducer that predates it): passing,
		// at once, and the only check; no agent runs an HTTP check.
		if st, n := h.liveness(idA); st != api.HealthPassing || n != 1 || !h.passing(idA) {
			t.Fatalf("liveness %q with %d checks, passing query %v", st, n, h.passing(idA))
		}
	}
	h.eventually(15*time.Second, "health check passing", func() bool {
		checks, _, err := h.consul.Health().Checks("onex-effect", &api.QueryOptions{Filter: `ServiceID == "` + idA + `"`})
		return err == nil && len(checks) == 1 && checks[0].Status == api.HealthPassing
	})
	modIdx := c.ModifyIndex
	writes := h.metric("onex_consul_writes_total", map[string]string{"op": "register", "source": "intent"})

	// Redelivery of the same intent (and the orchestrator's re-send of it)
	// writes nothing.
	s2 := h.sendIntent(a, 2, 1, pipeline.ConsulRegister, registerPayload(a, 8080, url), s1.intentID)
	if r := h.result(s2.intentID, 2).res; !r.Success || r.Stale || r.Attempt != 1 {
		t.Fatalf("re-sent intent: %+v", r)
	}
	if w := h.metric("onex_consul_writes_total", map[string]string{"op": "register", "source": "intent"}); w != writes {
		t.Fatalf("identical re-register wrote to Consul (%v → %v writes)", writes, w)
	}
	if c := h.catalog(idA)[0]; c.ModifyIndex != modIdx {
		t.Fatalf("identical re-register changed ModifyIndex %d → %d", modIdx, c.ModifyIndex)
	}
	if n := h.metric("onex_consul_intents_total", map[string]string{"intent_type": "consul.register", "outcome": "unchanged"}); n != 1 {
		t.Fatalf("unchanged intents = %v", n)
	}

	// An older intent is stale and changes nothing.
	s3 := h.sendIntent(a, 1, 0, pipeline.ConsulRegister, registerPayload(a, 9999, url), uuid.Nil)
	checkResult(s3, a, 1, true, true)
	if c := h.catalog(idA)[0]; c.ServicePort != 8080 || c.ModifyIndex != modIdx {
		t.Fatalf("stale intent changed the service: %+v", c)
	}

	// A newer intent with a change is written.
	p := registerPayload(a, 8081, url)
	p.Tags = append(p.Tags, "extra")
	s4 := h.sendIntent(a, 3, 0, pipeline.ConsulRegister, p, uuid.Nil)
	checkResult(s4, a, 3, true, false)
	if c := h.catalog(idA)[0]; c.ServicePort != 8081 || !slices.Contains(c.ServiceTags, "extra") ||
		c.ServiceMeta["onex-sequence"] != "3" || c.ModifyIndex <= modIdx {
		t.Fatalf("newer intent not applied: %+v", c)
	}

	// The registry's view of the node decides its health in catalog mode:
	// awaiting its ack it is registered but not passing; its ack makes it
	// passing (the agent mode writes the same, and ignores the health).
	p = registerPayload(a, 8081, url)
	p.Tags = append(p.Tags, "extra")
	p.Health = pipeline.HealthWarning
	checkResult(h.sendIntent(a, 4, 0, pipeline.ConsulRegister, p, uuid.Nil), a, 4, true, false)
	if mode == effect.ModeCatalog {
		if st, _ := h.liveness(idA); st != api.HealthWarning || h.passing(idA) {
			t.Fatalf("awaiting its ack: liveness %q, in the passing query %v", st, h.passing(idA))
		}
	}
	p.Health = pipeline.HealthPassing
	checkResult(h.sendIntent(a, 5, 0, pipeline.ConsulRegister, p, uuid.Nil), a, 5, true, false)
	if mode == effect.ModeCatalog {
		if st, _ := h.liveness(idA); st != api.HealthPassing || !h.passing(idA) {
			t.Fatalf("ACTIVE: liveness %q, in the passing query %v", st, h.passing(idA))
		}
	}

	// B has no health endpoint: no check in agent mode, the liveness check
	// only in catalog mode.
	s5 := h.sendIntent(b, 2, 0, pipeline.ConsulRegister, registerPayload(b, 7070, ""), uuid.Nil)
	checkResult(s5, b, 2, true, false)
	if len(h.catalog(idB)) != 1 {
		t.Fatal("B not in catalog")
	}
	wantChecks := map[effect.Mode]int{effect.ModeAgent: 0, effect.ModeCatalog: 1}[mode]
	if checks, _, _ := h.consul.Health().Checks("onex-effect", &api.QueryOptions{Filter: `ServiceID == "` + idB + `"`}); len(checks) != wantChecks {
		t.Fatalf("B has checks %v, want %d", checks, wantChecks)
	}
	if !h.passing(idB) {
		t.Fatal("B not in the passing query")
	}

	// Deregister B (liveness expiry); again (redelivery); then an older
	// register arriving late is stale.
	s6 := h.sendIntent(b, 5, 0, pipeline.ConsulDeregister, deregisterPayload(b), uuid.Nil)
	checkResult(s6, b, 5, true, false)
	if len(h.catalog(idB)) != 0 || h.service(idB) != nil || h.passing(idB) {
		t.Fatal("B still registered after deregister")
	}
	if h.catalogNode(effect.CatalogNode(b)) {
		t.Fatal("B's catalog node is left after its only service was deregistered")
	}
	s7 := h.sendIntent(b, 5, 1, pipeline.ConsulDeregister, deregisterPayload(b), s6.intentID)
	if r := h.result(s7.intentID, 2).res; !r.Success {
		t.Fatalf("repeated deregister: %+v", r)
	}
	s8 := h.sendIntent(b, 4, 0, pipeline.ConsulRegister, registerPayload(b, 7070, ""), uuid.Nil)
	checkResult(s8, b, 4, true, true)
	if h.service(idB) != nil {
		t.Fatal("late older register brought B back")
	}

	// Poison: not an envelope → DLQ, no result.
	before := h.resultCount()
	h.produce(h.intents, a.String(), []byte(`{"payload": 1, "correlation_id": "not-a-uuid"`))
	recs := testkit.ReadAll(t, h.brokers, h.dlqTopic, 1, 30*time.Second, true)
	if len(recs) != 1 {
		t.Fatalf("DLQ has %d records", len(recs))
	}
	rec, err := dlq.Decode(recs[0].Value)
	if err != nil || rec.OriginalTopic != h.intents || rec.FailureType != dlq.FailureTypeContent {
		t.Fatalf("DLQ record %+v (%v)", rec, err)
	}
	// A valid intent after the poison is still handled (the partition moved on).
	s9 := h.sendIntent(a, 6, 0, pipeline.ConsulDeregister, deregisterPayload(a), uuid.Nil)
	checkResult(s9, a, 6, true, false)
	if h.passing(idA) || h.catalogNode(effect.CatalogNode(a)) {
		t.Fatal("A still answers health queries (or its catalog node is left) after its deregistration")
	}
	if n := h.resultCount(); n != before+1 {
		t.Fatalf("results after poison: %d, want %d (one per intent, none for the poison)", n, before+1)
	}
	// Exactly one result per delivered intent.
	h.mu.Lock()
	for id, rs := range h.res {
		want := 1
		if id == s1.intentID || id == s6.intentID {
			want = 2 // sent twice
		}
		if len(rs) != want {
			t.Errorf("intent %s has %d results, want %d", id, len(rs), want)
		}
	}
	h.mu.Unlock()
}

// TestAntiEntropy: Consul follows the snapshot topic, in both modes. Nodes
// the registry holds as active or awaiting_ack are registered, a service
// deleted or changed by hand is restored within one interval, strays and
// the services of nodes that expire or are deleted are removed, and another
// environment's services are left alone. In catalog mode also: a catalog
// node deleted by hand comes back, a check status set by hand is restored,
// a copy the agent mode left on the agent and an empty node of this
// environment are removed.
func TestAntiEntropy(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testAntiEntropy(t, mode)
		})
	}
}

func testAntiEntropy(t *testing.T, mode effect.Mode) {
	h := newHarness(t, testkit.ConsulAddr(t), mode)
	catalog := mode == effect.ModeCatalog
	active, awaiting, expired, noConsul, orphanNode := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	id := func(n uuid.UUID) string { return "onex-effect-" + n.String() }
	u := testkit.Unique()
	stray, foreign := "stray-"+u, "foreign-"+u
	strayNode, foreignNode, emptyNode := "stray-node-"+u, "foreign-node-"+u, "onex-node-empty-"+u
	t.Cleanup(func() {
		for _, s := range []string{id(active), id(awaiting), id(expired), id(orphanNode), stray, foreign} {
			h.deregisterByHand(s)
		}
		for _, n := range []string{strayNode, foreignNode, emptyNode} {
			_, _ = h.consul.Catalog().Deregister(&api.CatalogDeregistration{Node: n}, nil)
		}
	})
	url := healthServer(t)

	activeP := h.sendSnapshot(active, "active", 4, 8080, url)
	awaitingP := h.sendSnapshot(awaiting, "awaiting_ack", 2, 8081, "")
	h.sendSnapshot(expired, "liveness_expired", 9, 8082, "")
	h.sendSnapshot(noConsul, "active", 3, 0, "")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// register puts a service by hand where the mode keeps services: the
	// agent, or an external catalog node.
	register := func(node string, svc *api.AgentServiceRegistration) {
		t.Helper()
		if !catalog {
			must(h.consul.Agent().ServiceRegister(svc))
			return
		}
		_, err := h.consul.Catalog().Register(&api.CatalogRegistration{Node: node, Address: "127.0.0.1",
			NodeMeta: map[string]string{"external-node": "true", "onex-env": svc.Meta["onex-env"]},
			Service:  &api.AgentService{ID: svc.ID, Service: svc.Name, Tags: svc.Tags, Port: svc.Port, Meta: svc.Meta}}, nil)
		must(err)
	}
	// Strays by hand: one without any meta, one of this environment whose
	// node the registry does not know, one of another environment.
	register(strayNode, &api.AgentServiceRegistration{ID: stray, Name: "onex-effect", Tags: []string{"onex"}})
	register(effect.CatalogNode(orphanNode), &api.AgentServiceRegistration{ID: id(orphanNode), Name: "onex-effect", Tags: []string{"onex"},
		Meta: map[string]string{"onex-env": h.env, "onex-node-id": orphanNode.String(), "onex-sequence": "3"}})
	register(foreignNode, &api.AgentServiceRegistration{ID: foreign, Name: "onex-effect", Tags: []string{"onex"},
		Meta: map[string]string{"onex-env": "another-" + h.env}})
	if catalog {
		// What the agent mode left behind when the fleet switched to the
		// catalog: the active node's service on the agent, and an empty
		// external node of this environment.
		must(h.consul.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id(active), Name: "onex-effect", Tags: []string{"onex"},
			Meta: map[string]string{"onex-env": h.env, "onex-node-id": active.String(), "onex-sequence": "1"}}))
		_, err := h.consul.Catalog().Register(&api.CatalogRegistration{Node: emptyNode, Address: "127.0.0.1",
			NodeMeta: map[string]string{"external-node": "true", "onex-env": h.env}}, nil)
		must(err)
	}

	const interval = time.Second
	h.start(h.settings(interval))

	h.eventually(5*interval, "desired nodes registered, strays removed", func() bool {
		return h.service(id(active)) != nil && h.service(id(awaiting)) != nil &&
			len(h.catalog(stray)) == 0 && len(h.catalog(id(orphanNode))) == 0 &&
			(!catalog || (len(h.catalog(id(active))) == 1 && !h.catalogNode(emptyNode) && !h.catalogNode(effect.CatalogNode(orphanNode))))
	})
	if h.service(id(expired)) != nil {
		t.Fatal("expired node registered")
	}
	if len(h.catalog(foreign)) != 1 {
		t.Fatal("another environment's service was removed")
	}
	if s := h.service(id(active)); s.Port != snapshotPort(t, 8080, url) || s.Meta["onex-sequence"] != "4" || s.Meta["onex-node-id"] != active.String() {
		t.Fatalf("anti-entropy registration: %+v", s)
	}
	if catalog {
		if h.agentService(id(active)) != nil {
			t.Fatal("the agent mode's copy on the agent was not removed")
		}
		// The liveness check says what the snapshot's derivation says.
		for n, p := range map[uuid.UUID]*pipeline.ConsulRegisterPayload{active: activeP, awaiting: awaitingP} {
			if st, checks := h.liveness(id(n)); st != wantHealth(p) || checks != 1 {
				t.Fatalf("node %s: liveness %q (%d checks), want %q", n, st, checks, wantHealth(p))
			}
		}
	}
	if got := h.metric("onex_consul_drift_total", map[string]string{"kind": "missing"}); got < 2 {
		t.Fatalf("missing drift = %v", got)
	}
	// The meta-less stray may be removed by another test's effect running
	// in parallel on the shared agent; the orphan of this environment is ours.
	if got := h.metric("onex_consul_drift_total", map[string]string{"kind": "orphan"}); got < 1 {
		t.Fatalf("orphan drift = %v", got)
	}

	// Deleted by hand: back within one interval (plus the pass itself). In
	// catalog mode the whole node goes (deregisterByHand), then only the
	// service.
	h.deregisterByHand(id(active))
	start := time.Now()
	h.eventually(3*interval, "deleted service restored", func() bool { return h.service(id(active)) != nil })
	t.Logf("restored after %v", time.Since(start))
	if len(h.catalog(id(active))) != 1 {
		t.Fatal("restored service not in the catalog exactly once")
	}
	if catalog {
		_, err := h.consul.Catalog().Deregister(&api.CatalogDeregistration{Node: effect.CatalogNode(active), ServiceID: id(active)}, nil)
		must(err)
		h.eventually(3*interval, "service deleted from its node restored", func() bool { return h.service(id(active)) != nil })
		// A check status written by hand is the fleet's to set.
		_, err = h.consul.Catalog().Register(&api.CatalogRegistration{Node: effect.CatalogNode(active), Address: "127.0.0.1", SkipNodeUpdate: true,
			Check: &api.AgentCheck{Node: effect.CatalogNode(active), CheckID: effect.LivenessCheckID(id(active)), Name: "by hand",
				Status: api.HealthCritical, ServiceID: id(active)}}, nil)
		must(err)
		if st, _ := h.liveness(id(active)); st != api.HealthCritical {
			t.Fatalf("check by hand not written: %q", st)
		}
		h.eventually(3*interval, "check status restored", func() bool {
			st, n := h.liveness(id(active))
			return st == wantHealth(activeP) && n == 1
		})
	}

	// Changed by hand: restored.
	register(effect.CatalogNode(awaiting), &api.AgentServiceRegistration{ID: id(awaiting), Name: "onex-effect", Tags: []string{"onex"}, Port: 1,
		Meta: map[string]string{"onex-env": h.env, "onex-node-id": awaiting.String(), "onex-sequence": "2"}})
	h.eventually(3*interval, "changed service restored", func() bool {
		s := h.service(id(awaiting))
		return s != nil && s.Port == 8081 && slices.Equal(s.Tags, []string{"onex", "node-type:effect"})
	})
	if got := h.metric("onex_consul_drift_total", map[string]string{"kind": "changed"}); got < 1 {
		t.Fatalf("changed drift = %v", got)
	}

	// The active node expires; the awaiting one is deleted (tombstone).
	h.sendSnapshot(active, "liveness_expired", 7, 8080, url)
	h.tombstone(awaiting)
	h.eventually(3*interval, "expired and deleted nodes removed", func() bool {
		return h.service(id(active)) == nil && h.service(id(awaiting)) == nil &&
			!h.catalogNode(effect.CatalogNode(active)) && !h.catalogNode(effect.CatalogNode(awaiting))
	})
	// ...and a node that comes back (re-introspection) is registered again.
	h.sendSnapshot(expired, "awaiting_ack", 10, 8082, "")
	h.eventually(3*interval, "re-registered node added", func() bool { return h.service(id(expired)) != nil })
	if len(h.catalog(foreign)) != 1 {
		t.Fatal("another environment's service was removed")
	}
}

// TestConsulOutage runs against a Consul agent of its own and kills it, in
// both modes: intents fail with a Consul error code, the breaker opens and
// then rejects calls without making them; when Consul comes back (empty:
// -dev keeps its state in memory) anti-entropy and the re-sent intents
// register every node exactly once.
func TestConsulOutage(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testConsulOutage(t, mode)
		})
	}
}

func testConsulOutage(t *testing.T, mode effect.Mode) {
	tc := newTestConsul(t)
	h := newHarness(t, tc.addr(), mode)
	s := h.settings(time.Second)
	s.Consul.Timeout = time.Second
	s.Consul.BreakerReset = 4 * time.Second
	nodes := make([]uuid.UUID, 11)
	for i := range nodes {
		nodes[i] = uuid.New()
	}
	id := func(n uuid.UUID) string { return "onex-effect-" + n.String() }
	for _, n := range nodes[:3] {
		h.sendSnapshot(n, "active", 4, 8000, "")
	}
	h.start(s)
	h.eventually(10*time.Second, "first nodes registered", func() bool {
		return len(h.envServices()) == 3
	})

	tc.stop(t)
	// The reducer registers new nodes while Consul is down: their snapshots
	// and intents arrive, the intents fail.
	var failed []sent
	for i, n := range nodes[3:8] {
		h.sendSnapshot(n, "awaiting_ack", int64(2+i), 8000+i, "")
		failed = append(failed, h.sendIntent(n, int64(2+i), 0, pipeline.ConsulRegister, registerPayload(n, 8000+i, ""), uuid.Nil))
	}
	for _, s := range failed {
		r := h.result(s.intentID, 1).res
		if r.Success || r.ErrorCode == nil || *r.ErrorCode != backend.CodeConnection || !r.Retriable || r.Error == nil ||
			!strings.HasPrefix(*r.Error, "consul operation failed") {
			t.Fatalf("result during outage: %+v", r)
		}
	}
	h.eventually(10*time.Second, "breaker open", func() bool { return h.app.Consul().State() == backend.StateOpen })
	if v := h.metric("onex_circuit_breaker_state", map[string]string{"backend": "consul"}); v != backend.StateOpen {
		t.Fatalf("onex_circuit_breaker_state = %v, want open", v)
	}
	// Open breaker: fail fast, no call.
	rejectedBefore := h.metric("onex_consul_requests_total", map[string]string{"op": "get_service", "outcome": "rejected"})
	errorsBefore := h.metric("onex_consul_requests_total", map[string]string{"op": "get_service", "outcome": "error"})
	for i, n := range nodes[8:] {
		h.sendSnapshot(n, "active", int64(3+i), 9000+i, "")
		s := h.sendIntent(n, int64(3+i), 0, pipeline.ConsulRegister, registerPayload(n, 9000+i, ""), uuid.Nil)
		failed = append(failed, s)
		r := h.result(s.intentID, 1).res
		if r.Success || *r.ErrorCode != backend.CodeConnection || !r.Retriable || *r.Error != "consul operation failed: service unavailable" || r.DurationMS > 50 {
			t.Fatalf("result with an open breaker: %+v (error %q)", r, *r.Error)
		}
	}
	if got := h.metric("onex_consul_requests_total", map[string]string{"op": "get_service", "outcome": "rejected"}) - rejectedBefore; got != 3 {
		t.Fatalf("%v intents rejected by the breaker, want 3", got)
	}
	if got := h.metric("onex_consul_requests_total", map[string]string{"op": "get_service", "outcome": "error"}) - errorsBefore; got != 0 {
		t.Fatalf("%v calls reached Consul while the breaker was open", got)
	}

	// Consul comes back empty. After the reset timeout the next call is the
	// trial; anti-entropy restores everything the registry wants.
	tc.start(t)
	h.eventually(20*time.Second, "all nodes registered after the outage", func() bool { return len(h.envServices()) == len(nodes) })
	if st := h.app.Consul().State(); st != backend.StateClosed {
		t.Fatalf("breaker state %d after recovery", st)
	}
	// The orchestrator re-sends the failed intents: they succeed without
	// creating anything new.
	for i, n := range nodes[3:] {
		seq, port := int64(2+i), 8000+i
		if i >= 5 {
			seq, port = int64(3+i-5), 9000+i-5
		}
		s := h.sendIntent(n, seq, 1, pipeline.ConsulRegister, registerPayload(n, port, ""), failed[i].intentID)
		r := h.result(s.intentID, 2).res
		if !r.Success {
			t.Fatalf("re-sent intent failed: %+v", r)
		}
	}
	svcs := h.envServices()
	if len(svcs) != len(nodes) {
		t.Fatalf("%d services after recovery, want %d", len(svcs), len(nodes))
	}
	for _, n := range nodes {
		if svcs[id(n)] == nil {
			t.Fatalf("node %s missing", n)
		}
		if len(h.catalog(id(n))) != 1 {
			t.Fatalf("node %s not exactly once in the catalog", n)
		}
	}
	all, _, err := h.consul.Catalog().Service("onex-effect", "", &api.QueryOptions{Filter: `ServiceMeta["onex-env"] == "` + h.env + `"`})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(nodes) {
		t.Fatalf("catalog has %d services for the environment, want %d (duplicates?)", len(all), len(nodes))
	}
	seen := map[string]bool{}
	for _, c := range all {
		if seen[c.ServiceID] {
			t.Fatalf("duplicate %s", c.ServiceID)
		}
		seen[c.ServiceID] = true
		if _, err := strconv.ParseInt(c.ServiceMeta["onex-sequence"], 10, 64); err != nil {
			t.Fatalf("service without sequence: %+v", c)
		}
	}
}

// A backlog of intents for many nodes (sent before the effect starts, so the
// partitions are read in batches applied in parallel): every node ends at
// its newest sequence in the real agent — a node's intents applied in
// record order, its older register never overtaking the newer one — with
// one successful result per intent, and a record that is no intent between
// them goes to the DLQ without holding up the rest.
func TestBacklogAppliedInParallelPerNodeInOrder(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testBacklog(t, mode)
		})
	}
}

func testBacklog(t *testing.T, mode effect.Mode) {
	h := newHarness(t, testkit.ConsulAddr(t), mode)
	nodes := make([]uuid.UUID, 24)
	var sends []sent
	for i := range nodes {
		nodes[i] = uuid.New()
		id := "onex-effect-" + nodes[i].String()
		t.Cleanup(func() { h.deregisterByHand(id) })
	}
	for seq := int64(1); seq <= 2; seq++ {
		for _, n := range nodes {
			sends = append(sends, h.sendIntent(n, seq, 0, pipeline.ConsulRegister, registerPayload(n, 8000+int(seq), ""), uuid.Nil))
		}
		if seq == 1 {
			h.produce(h.intents, nodes[0].String(), []byte(`{"not":"an intent"`))
		}
	}
	s := h.settings(time.Hour)
	s.Consul.Parallel = 4
	h.start(s)

	for _, snt := range sends {
		if r := h.result(snt.intentID, 1).res; !r.Success || r.Stale {
			t.Fatalf("result %+v, want applied", r)
		}
	}
	for _, n := range nodes {
		svc := h.service("onex-effect-" + n.String())
		if svc == nil || svc.Port != 8002 || svc.Meta["onex-sequence"] != "2" {
			t.Fatalf("node %s in Consul: %+v, want port 8002 at sequence 2", n, svc)
		}
	}
	if got := h.metric("onex_consul_intents_total", map[string]string{"intent_type": "consul.register", "outcome": "applied"}); got != float64(len(sends)) {
		t.Fatalf("applied intents = %v, want %d", got, len(sends))
	}
	h.eventually(30*time.Second, "the record that is no intent dead-lettered", func() bool {
		return h.metric("onex_dlq_messages_total", map[string]string{"original_topic": h.intents, "failure_type": "content_error"}) == 1
	})
}

// TestRefreshSendsNoResult: through the service's runner, a register routed
// untracked (the header pipeline.HeaderResults, as the orchestrator routes
// the refresh at a node's ack) is written to Consul like any other but
// answered with no result; the register of a registration attempt, without
// the header, is answered as before.
func TestRefreshSendsNoResult(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testkit.ConsulAddr(t), effect.ModeCatalog)
	h.start(h.settings(time.Hour))
	node := uuid.New()
	id := "onex-effect-" + node.String()
	t.Cleanup(func() { h.deregisterByHand(id) })

	tracked := h.sendIntent(node, 2, 0, pipeline.ConsulRegister, registerPayload(node, 8080, ""), uuid.Nil)
	if r := h.result(tracked.intentID, 1).res; !r.Success || r.Stale {
		t.Fatalf("result of the tracked register %+v, want applied", r)
	}
	untracked := []sarama.RecordHeader{pipeline.FailuresOnlyHeader()}
	refresh := h.sendIntentWith(untracked, node, 3, 0, pipeline.ConsulRegister, registerPayload(node, 8081, ""), uuid.Nil)
	h.eventually(30*time.Second, "the refresh written and counted not sent", func() bool {
		svc := h.service(id)
		return svc != nil && svc.Port == 8081 && h.metric("onex_consul_results_not_sent_total", nil) == 1
	})
	// The node's next intent shares the refresh's partition: once its
	// result is in, a result of the refresh would have been too.
	next := h.sendIntent(node, 4, 0, pipeline.ConsulRegister, registerPayload(node, 8082, ""), uuid.Nil)
	if r := h.result(next.intentID, 1).res; !r.Success {
		t.Fatalf("result of the register after the refresh %+v, want success", r)
	}
	h.mu.Lock()
	got := len(h.res[refresh.intentID])
	h.mu.Unlock()
	if got != 0 {
		t.Fatalf("%d results of the refresh, want none", got)
	}
	if n := h.metric("onex_consul_intents_total", map[string]string{"intent_type": "consul.register", "outcome": "applied"}); n != 3 {
		t.Fatalf("applied registers = %v, want 3", n)
	}
}

// TestConsulRefusesWrites: a Consul with ACLs that does not know the
// effect's token refuses every call, in both modes. Intents fail with
// CONSUL_AUTH_ERROR, not retriable, the token in no result and no log line;
// the breaker opens. Once the operator creates the token, anti-entropy
// registers every node the registry holds within an interval of the
// breaker's reset: nothing is lost.
func TestConsulRefusesWrites(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testConsulRefusesWrites(t, mode)
		})
	}
}

func testConsulRefusesWrites(t *testing.T, mode effect.Mode) {
	tc := newTestConsul(t, "-hcl", `acl { enabled = true, default_policy = "deny", tokens { initial_management = "root" } }`)
	h := newHarness(t, tc.addr(), mode)
	root, err := api.NewClient(&api.Config{Address: tc.addr(), Token: "root"})
	if err != nil {
		t.Fatal(err)
	}
	h.consul = root
	token := uuid.NewString()
	s := h.settings(time.Second)
	s.Consul.Token = config.Secret(token)
	s.Consul.BreakerReset = 3 * time.Second
	nodes := make([]uuid.UUID, 6)
	for i := range nodes {
		nodes[i] = uuid.New()
	}
	var sends []sent
	for i, n := range nodes {
		h.sendSnapshot(n, "awaiting_ack", 2, 8000+i, "")
		sends = append(sends, h.sendIntent(n, 2, 0, pipeline.ConsulRegister, registerPayload(n, 8000+i, ""), uuid.Nil))
	}
	h.start(s)
	refused := 0
	for _, snt := range sends {
		r := h.result(snt.intentID, 1).res
		if r.Success || r.ErrorCode == nil || r.Error == nil {
			t.Fatalf("result with a refused token: %+v", r)
		}
		// Consul refuses the first calls (not retriable: only the operator
		// can fix a token); after five the breaker answers for it.
		switch {
		case *r.ErrorCode == backend.CodeAuth && !r.Retriable:
			refused++
		case *r.ErrorCode == backend.CodeConnection && r.Retriable && *r.Error == "consul operation failed: service unavailable":
		default:
			t.Fatalf("result %s retriable=%v (%s)", *r.ErrorCode, r.Retriable, *r.Error)
		}
		if strings.Contains(*r.Error, token) {
			t.Fatal("the token is in a result")
		}
	}
	if refused == 0 {
		t.Fatal("no result says CONSUL_AUTH_ERROR")
	}
	if got := h.metric("onex_consul_intents_total", map[string]string{"intent_type": "consul.register", "outcome": "failed"}); got != float64(len(nodes)) {
		t.Fatalf("failed intents = %v", got)
	}
	h.eventually(10*time.Second, "breaker open", func() bool { return h.app.Consul().State() == backend.StateOpen })

	// The operator gives the token its rights.
	rules := `node_prefix "" { policy = "write" } service_prefix "" { policy = "write" }`
	pol, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "onex-fleet-" + h.env, Rules: rules}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := root.ACL().TokenCreate(&api.ACLToken{SecretID: token, Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	h.eventually(s.Consul.BreakerReset+5*time.Second, "every node registered by anti-entropy", func() bool {
		return len(h.envServices()) == len(nodes)
	})
	if st := h.app.Consul().State(); st != backend.StateClosed {
		t.Fatalf("breaker state %d after the token was created", st)
	}
	if b, _ := os.ReadFile(h.logPath); strings.Contains(string(b), token) {
		t.Fatal("the token is in the log")
	}
}
