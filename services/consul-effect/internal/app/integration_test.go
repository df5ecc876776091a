package app

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

func healthServer(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(srv.Close)
	return srv.URL + "/health"
}

// TestIntents drives register and deregister intents through the real
// broker into the shared Consul agent: the catalog shows the spec's service,
// re-sending an intent writes nothing, older intents are skipped as stale,
// every intent gets exactly one result keyed by node with its correlation id,
// and an undecodable record goes to the DLQ without a result.
func TestIntents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testkit.ConsulAddr(t))
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
			t.Fatalf("result %+v (key %s, envelope corr %s), want success=%v stale=%v node=%s seq=%d corr=%s",
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

	// B has no health endpoint: no check.
	s5 := h.sendIntent(b, 2, 0, pipeline.ConsulRegister, registerPayload(b, 7070, ""), uuid.Nil)
	checkResult(s5, b, 2, true, false)
	if len(h.catalog(idB)) != 1 {
		t.Fatal("B not in catalog")
	}
	if checks, _ := h.consul.Agent().ChecksWithFilter(`ServiceID == "` + idB + `"`); len(checks) != 0 {
		t.Fatalf("B has checks: %v", checks)
	}

	// Deregister B (liveness expiry); again (redelivery); then an older
	// register arriving late is stale.
	s6 := h.sendIntent(b, 5, 0, pipeline.ConsulDeregister, deregisterPayload(b), uuid.Nil)
	checkResult(s6, b, 5, true, false)
	if len(h.catalog(idB)) != 0 || h.agentService(idB) != nil {
		t.Fatal("B still registered after deregister")
	}
	s7 := h.sendIntent(b, 5, 1, pipeline.ConsulDeregister, deregisterPayload(b), s6.intentID)
	if r := h.result(s7.intentID, 2).res; !r.Success {
		t.Fatalf("repeated deregister: %+v", r)
	}
	s8 := h.sendIntent(b, 4, 0, pipeline.ConsulRegister, registerPayload(b, 7070, ""), uuid.Nil)
	checkResult(s8, b, 4, true, true)
	if h.agentService(idB) != nil {
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

// TestAntiEntropy: the Consul agent follows the snapshot topic. Nodes the
// registry holds as active or awaiting_ack are registered, a service deleted
// or changed by hand is restored within one interval, strays and the
// services of nodes that expire or are deleted are removed, and another
// environment's services are left alone.
func TestAntiEntropy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testkit.ConsulAddr(t))
	active, awaiting, expired, noConsul, orphanNode := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	id := func(n uuid.UUID) string { return "onex-effect-" + n.String() }
	stray, foreign := "stray-"+testkit.Unique(), "foreign-"+testkit.Unique()
	t.Cleanup(func() {
		for _, s := range []string{id(active), id(awaiting), id(expired), id(orphanNode), stray, foreign} {
			h.deregisterByHand(s)
		}
	})
	url := healthServer(t)

	h.sendSnapshot(active, "active", 4, 8080, url)
	h.sendSnapshot(awaiting, "awaiting_ack", 2, 8081, "")
	h.sendSnapshot(expired, "liveness_expired", 9, 8082, "")
	h.sendSnapshot(noConsul, "active", 3, 0, "")
	// Strays by hand: one without any meta, one of this environment whose
	// node the registry does not know, one of another environment.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.consul.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: stray, Name: "onex-effect", Tags: []string{"onex"}}))
	must(h.consul.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id(orphanNode), Name: "onex-effect", Tags: []string{"onex"},
		Meta: map[string]string{"onex-env": h.env, "onex-node-id": orphanNode.String(), "onex-sequence": "3"}}))
	must(h.consul.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: foreign, Name: "onex-effect", Tags: []string{"onex"},
		Meta: map[string]string{"onex-env": "another-" + h.env}}))

	const interval = time.Second
	h.start(h.settings(interval))

	h.eventually(5*interval, "desired nodes registered, strays removed", func() bool {
		return h.agentService(id(active)) != nil && h.agentService(id(awaiting)) != nil &&
			h.agentService(stray) == nil && h.agentService(id(orphanNode)) == nil
	})
	if h.agentService(id(expired)) != nil {
		t.Fatal("expired node registered")
	}
	if h.agentService(foreign) == nil {
		t.Fatal("another environment's service was removed")
	}
	if s := h.agentService(id(active)); s.Port != snapshotPort(t, 8080, url) || s.Meta["onex-sequence"] != "4" || s.Meta["onex-node-id"] != active.String() {
		t.Fatalf("anti-entropy registration: %+v", s)
	}
	if got := h.metric("onex_consul_drift_total", map[string]string{"kind": "missing"}); got < 2 {
		t.Fatalf("missing drift = %v", got)
	}
	// The meta-less stray may be removed by another test's effect running
	// in parallel on the shared agent; the orphan of this environment is ours.
	if got := h.metric("onex_consul_drift_total", map[string]string{"kind": "orphan"}); got < 1 {
		t.Fatalf("orphan drift = %v", got)
	}

	// Deleted by hand: back within one interval (plus the pass itself).
	h.deregisterByHand(id(active))
	start := time.Now()
	h.eventually(3*interval, "deleted service restored", func() bool { return h.agentService(id(active)) != nil })
	t.Logf("restored after %v", time.Since(start))
	if len(h.catalog(id(active))) != 1 {
		t.Fatal("restored service not in the catalog exactly once")
	}

	// Changed by hand: restored.
	must(h.consul.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id(awaiting), Name: "onex-effect", Tags: []string{"onex"}, Port: 1,
		Meta: map[string]string{"onex-env": h.env, "onex-node-id": awaiting.String(), "onex-sequence": "2"}}))
	h.eventually(3*interval, "changed service restored", func() bool {
		s := h.agentService(id(awaiting))
		return s != nil && s.Port == 8081 && slices.Equal(s.Tags, []string{"onex", "node-type:effect"})
	})
	if got := h.metric("onex_consul_drift_total", map[string]string{"kind": "changed"}); got < 1 {
		t.Fatalf("changed drift = %v", got)
	}

	// The active node expires; the awaiting one is deleted (tombstone).
	h.sendSnapshot(active, "liveness_expired", 7, 8080, url)
	h.tombstone(awaiting)
	h.eventually(3*interval, "expired and deleted nodes removed", func() bool {
		return h.agentService(id(active)) == nil && h.agentService(id(awaiting)) == nil
	})
	// ...and a node that comes back (re-introspection) is registered again.
	h.sendSnapshot(expired, "awaiting_ack", 10, 8082, "")
	h.eventually(3*interval, "re-registered node added", func() bool { return h.agentService(id(expired)) != nil })
	if h.agentService(foreign) == nil {
		t.Fatal("another environment's service was removed")
	}
}

// TestConsulOutage runs against a Consul agent of its own and kills it:
// intents fail with a Consul error code, the breaker opens and then rejects
// calls without making them; when Consul comes back (empty: -dev keeps its
// state in memory) anti-entropy and the re-sent intents register every node
// exactly once.
func TestConsulOutage(t *testing.T) {
	t.Parallel()
	tc := newTestConsul(t)
	h := newHarness(t, tc.addr())
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
	h := newHarness(t, testkit.ConsulAddr(t))
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
		svc := h.agentService("onex-effect-" + n.String())
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
