package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/grpcsec"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/breaker"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/effect"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/gen"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/pgtest"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/schema"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// TestShuffledDuplicatedStreamMatchesInOrder: 10,000 intents for 1,000
// nodes from the reducer's real decision code, delivered in order to one
// projector and shuffled with a quarter of them duplicated to another, leave
// exactly the same rows. Every intent gets a success result, and the batches
// are far fewer than the intents.
func TestShuffledDuplicatedStreamMatchesInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	stream, err := gen.Generate(42, 1000, 10000)
	if err != nil {
		t.Fatal(err)
	}
	inOrder := stream.InOrder(7)
	shuffled := stream.Shuffled(9, 0.25)
	ids := intentIDs(t, inOrder)
	if len(ids) != 10000 || len(stream.Nodes) != 1000 {
		t.Fatalf("generated %d intents for %d nodes", len(ids), len(stream.Nodes))
	}
	types := map[string]int{}
	for _, in := range inOrder {
		types[in.Type]++
	}
	t.Logf("intents by type: %v; shuffled stream has %d records", types, len(shuffled))

	a := newHarness(t, "in-order", pgtest.NewDatabase(t))
	b := newHarness(t, "shuffled", pgtest.NewDatabase(t))
	a.start(a.settings())
	b.start(b.settings())
	a.produce(inOrder)
	b.produce(shuffled)

	for _, h := range []*harness{a, b} {
		h.eventually(3*time.Minute, "a success result for every intent", func() bool {
			ok, _, _, _ := h.resultStats(ids)
			return ok == len(ids)
		})
	}
	_, failedA, staleA, codesA := a.resultStats(ids)
	_, failedB, staleB, codesB := b.resultStats(ids)
	// Every intent has a success (above). A failure before it may only be a
	// transient database error retried in place (a starved machine times
	// statements out); reordering and duplicates must never make an intent
	// fail.
	if failedA+failedB > 0 {
		t.Logf("transient failures, each followed by a success: in-order %d %v, shuffled %d %v", failedA, codesA, failedB, codesB)
	}
	for _, codes := range []map[string]int{codesA, codesB} {
		for code, n := range codes {
			if !strings.Contains(code, "TIMEOUT") && !strings.Contains(code, "CONNECTION") && !strings.Contains(code, "UNAVAILABLE") {
				t.Errorf("%d results failed with %s: not a transient database error", n, code)
			}
		}
	}
	if staleA != 0 {
		t.Errorf("in-order stream: %d stale results, want 0", staleA)
	}
	if staleB == 0 {
		t.Errorf("shuffled stream: no stale results although it reorders and duplicates")
	}

	rowsA, rowsB := dumpRows(t, a.dsn), dumpRows(t, b.dsn)
	if len(rowsA) != 1000 {
		t.Errorf("in-order: %d rows, want 1000", len(rowsA))
	}
	compareRows(t, "shuffled vs in-order", rowsB, rowsA)

	for _, h := range []*harness{a, b} {
		batches := h.gather("onex_projector_batch_size", nil)
		_, _, stale, _ := h.resultStats(ids)
		t.Logf("%s: %.0f batches for %d intents (%d answered stale)", h.name, batches, len(ids), stale)
		if batches <= 0 || batches > float64(len(ids))/5 {
			t.Errorf("%s: %.0f batches for %d intents: not batching", h.name, batches, len(ids))
		}
	}
}

// TestPostgresOutage: with the database stopped under load the effect
// reports failed results, its breaker opens (metric), no database call is
// made while open, and once the database is back the backlog is applied
// with nothing lost: every intent ends with a success result and the rows
// are those of the same stream applied in order to a reference database.
func TestPostgresOutage(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	dsn := pgtest.NewDatabaseOn(t, cluster.DSN)

	stream, err := gen.Generate(11, 60, 600)
	if err != nil {
		t.Fatal(err)
	}
	all := stream.InOrder(3)
	before, during := all[:200], all[200:]
	idsBefore, idsDuring := intentIDs(t, before), intentIDs(t, during)

	h := newHarness(t, "outage", dsn)
	s := h.settings()
	s.BreakerReset = 2 * time.Second
	s.Retry.Max = time.Second
	s.ConnectTimeout = time.Second
	s.QueryTimeout = 3 * time.Second
	h.start(s)

	h.produce(before)
	h.eventually(time.Minute, "results of the intents before the outage", func() bool {
		ok, _, _, _ := h.resultStats(idsBefore)
		return ok == len(idsBefore)
	})
	if st := h.gather("onex_circuit_breaker_state", map[string]string{"backend": "postgres"}); st != breaker.Closed {
		t.Fatalf("breaker state %v before the outage", st)
	}

	cluster.Stop()
	h.produce(during)
	h.eventually(time.Minute, "failed results while the database is down", func() bool {
		_, failed, _, codes := h.resultStats(idsDuring)
		return failed > 0 && codes[store.CodeConnection] > 0
	})
	h.eventually(time.Minute, "breaker open (metric)", func() bool {
		return h.gather("onex_circuit_breaker_state", map[string]string{"backend": "postgres"}) == breaker.Open
	})
	if f := h.gather("onex_circuit_breaker_failures_total", map[string]string{"backend": "postgres"}); f < 5 {
		t.Errorf("breaker failures = %v, want >= 5", f)
	}
	h.eventually(30*time.Second, "calls refused by the open breaker", func() bool {
		return h.gather("onex_circuit_breaker_rejected_total", map[string]string{"backend": "postgres"}) > 0
	})
	_, failed, _, codes := h.resultStats(idsDuring)
	t.Logf("during the outage: %d intents answered with failed results, codes %v", failed, codes)
	if !h.svc.Health.Ready() {
		t.Log("readiness follows the database: not ready while it is down")
	}

	cluster.Start()
	h.eventually(2*time.Minute, "a success result for every intent after the database returned", func() bool {
		ok, _, _, _ := h.resultStats(idsDuring)
		return ok == len(idsDuring)
	})
	h.eventually(30*time.Second, "breaker closed again", func() bool {
		return h.gather("onex_circuit_breaker_state", map[string]string{"backend": "postgres"}) == breaker.Closed
	})

	// Reference: the same stream applied in order, straight into a database.
	ref := pgtest.NewDatabase(t)
	applyInOrder(t, ref, all)
	compareRows(t, "after outage vs in-order reference", dumpRows(t, dsn), dumpRows(t, ref))
}

// TestStopWhileDatabaseDown: a projector stopped while its batches wait for
// the database leaves them uncommitted and dead-letters nothing, not even
// the poison record among them; the next owner of the group applies every
// intent once the database is back and dead-letters the poison once.
func TestStopWhileDatabaseDown(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	dsn := pgtest.NewDatabaseOn(t, cluster.DSN)
	stream, err := gen.Generate(13, 40, 300)
	if err != nil {
		t.Fatal(err)
	}
	all := stream.InOrder(2)
	before, during := all[:50], all[50:]
	idsBefore, idsDuring := intentIDs(t, before), intentIDs(t, during)
	poison := gen.Intent{NodeID: during[0].NodeID, Value: []byte(`{"not": "an envelope"}`)}

	h := newHarness(t, "stop-while-down", dsn)
	s := h.settings()
	s.BreakerReset = 2 * time.Second
	s.Retry.Max = time.Second
	s.ConnectTimeout = time.Second
	s.QueryTimeout = 3 * time.Second
	h.start(s)
	h.produce(before)
	h.eventually(time.Minute, "results of the intents before the outage", func() bool {
		ok, _, _, _ := h.resultStats(idsBefore)
		return ok == len(idsBefore)
	})

	cluster.Stop()
	// Same key as the first intent of the outage and right after it: the
	// poison's batch is that intent's batch or a later one of the same
	// partition, so it waits with it whatever the batch boundaries. (Put
	// first, it could make a batch of its own, rejected at once without the
	// database, as it should be.)
	h.produce(append([]gen.Intent{during[0], poison}, during[1:]...))
	// Intents queued behind a waiting batch get no result yet: once some
	// have a failed one and the breaker is open, the batches wait.
	h.eventually(time.Minute, "batches waiting for the database", func() bool {
		_, failed, _, _ := h.resultStats(idsDuring)
		return failed > 0 && h.gather("onex_circuit_breaker_state", map[string]string{"backend": "postgres"}) == breaker.Open
	})
	h.stop()
	if dl := testkit.ReadAll(t, h.brokers, h.dlqTopic, 1, 3*time.Second, false); len(dl) != 0 {
		t.Fatalf("%d records dead-lettered by a projector stopped while waiting, want none", len(dl))
	}
	if ok, _, _, _ := h.resultStats(idsDuring); ok != 0 {
		t.Fatalf("%d intents answered applied while the database was down", ok)
	}

	cluster.Start()
	h.start(s)
	h.eventually(2*time.Minute, "a success result for every intent after the restart", func() bool {
		ok, _, _, _ := h.resultStats(idsDuring)
		return ok == len(idsDuring)
	})
	// The poison is dead-lettered right after its batch's results are sent;
	// a second record would come as soon.
	if dl := testkit.ReadAll(t, h.brokers, h.dlqTopic, 2, 5*time.Second, false); len(dl) != 1 {
		t.Errorf("%d DLQ records after the restart, want the poison's one", len(dl))
	}
	ref := pgtest.NewDatabase(t)
	applyInOrder(t, ref, all)
	compareRows(t, "after a stop while down vs in-order reference", dumpRows(t, dsn), dumpRows(t, ref))
}

func applyInOrder(t *testing.T, dsn string, ins []gen.Intent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := schema.Up(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := store.New(pool)
	var writes []store.Write
	for _, in := range ins {
		it := effect.Decode(consumedMessage(in))
		if it.Err != nil {
			t.Fatalf("generated intent does not decode: %v", it.Err)
		}
		writes = append(writes, it.Write)
	}
	if _, err := st.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
}

// TestPoisonIntents: an intent the table refuses, a payload that does not
// decode and a record that is no envelope go to the DLQ; the intents among
// them get a failed POSTGRES_UPSERT_ERROR result; the good intents of the
// same batch are applied.
func TestPoisonIntents(t *testing.T) {
	h := newHarness(t, "poison", pgtest.NewDatabase(t))
	h.start(h.settings())

	stream, err := gen.Generate(5, 3, 9)
	if err != nil {
		t.Fatal(err)
	}
	good := stream.InOrder(1)
	bad := badIntent(t, good[0], func(p *pipeline.PostgresUpsertPayload) {
		p.Record.Data.NodeVersion = "1.0.0-" + string(make([]byte, 40))
	})
	refused := badIntent(t, good[0], func(p *pipeline.PostgresUpsertPayload) {
		// Valid JSON and a valid-looking version, but the database refuses
		// the NUL byte: the poison is found by the database, not the decoder.
		p.Record.Data.NodeVersion = "1.0\x00"
	})
	notEnvelope := gen.Intent{NodeID: uuid.New(), Value: []byte(`{"not": "an envelope"}`)}
	all := append([]gen.Intent{bad.Intent, refused.Intent, notEnvelope}, good...)
	h.produce(all)

	ids := intentIDs(t, good)
	h.eventually(time.Minute, "good intents applied", func() bool {
		ok, _, _, _ := h.resultStats(ids)
		return ok == len(ids)
	})
	h.eventually(time.Minute, "failed results for the two bad intents", func() bool {
		_, failed, _, codes := h.resultStats(map[uuid.UUID]bool{bad.ID: true, refused.ID: true})
		return failed == 2 && codes[store.CodeUpsert] == 2
	})
	dl := readDLQ(t, h, 3)
	if len(dl) != 3 {
		t.Fatalf("%d DLQ records, want 3", len(dl))
	}
	// The runner writes the dead letters the projector always wrote: the
	// content error's failure class and, for an intent, its correlation id.
	corrs := map[string]bool{}
	for _, m := range dl {
		hd := map[string]string{}
		for _, rh := range m.Headers {
			hd[string(rh.Key)] = string(rh.Value)
		}
		corrs[hd[dlq.HeaderCorrelationID]] = true
		if hd[dlq.HeaderFailureClass] != dlq.ClassPublisherMalformed || hd[dlq.HeaderOriginalTopic] != h.intents {
			t.Errorf("DLQ record of %q: failure class %q, original topic %q; want %s, %s", m.Value, hd[dlq.HeaderFailureClass],
				hd[dlq.HeaderOriginalTopic], dlq.ClassPublisherMalformed, h.intents)
		}
	}
	for _, c := range []crafted{bad, refused} {
		if !corrs[c.Corr.String()] {
			t.Errorf("no DLQ record with the correlation id %s of intent %s (have %v)", c.Corr, c.ID, corrs)
		}
	}
	if got := len(dumpRows(t, h.dsn)); got != 3 {
		t.Errorf("%d rows, want 3", got)
	}
}

type crafted struct {
	gen.Intent
	ID, Corr uuid.UUID
}

// badIntent re-encodes an upsert intent with a new id after mutate, in the
// JSON form (the generated one is protobuf: the test takes both).
func badIntent(t *testing.T, in gen.Intent, mutate func(*pipeline.PostgresUpsertPayload)) crafted {
	t.Helper()
	r, err := pipeline.DecodeIntentRecord(headerPointers(in.Headers()), in.Value)
	if err != nil {
		t.Fatal(err)
	}
	pi := r.Intent
	if pi.IntentType != pipeline.PostgresUpsert {
		t.Fatalf("want an upsert first: %v", pi)
	}
	var p pipeline.PostgresUpsertPayload
	if err := jsonUnmarshal(pi.Payload, &p); err != nil {
		t.Fatal(err)
	}
	mutate(&p)
	pi.IntentID = uuid.New()
	if pi.Payload, err = jsonMarshal(p); err != nil {
		t.Fatal(err)
	}
	corr := uuid.New()
	ne, err := envelope.New(pi, envelope.WithCorrelationID(corr))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ne.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return crafted{Intent: gen.Intent{NodeID: in.NodeID, Sequence: in.Sequence, Type: in.Type, Value: b}, ID: pi.IntentID, Corr: corr}
}

// TestServiceSurface: once ready, the gRPC health service says SERVING, the
// registry API and the admin API answer over the same port (a deregister is
// published on the admin topic with the results producer), and /metrics has
// the bus, effect, breaker and admin series. Admin calls need credentials:
// here the admin token, sent in plaintext to the loopback address.
func TestServiceSurface(t *testing.T) {
	h := newHarness(t, "surface", pgtest.NewDatabase(t))
	testkit.CreateTopic(t, h.brokers, h.admin, 1, nil)
	s := h.settings()
	s.GRPC.AdminToken = "surface-test-admin-token"
	h.start(s)
	stream, err := gen.Generate(8, 4, 12)
	if err != nil {
		t.Fatal(err)
	}
	ins := stream.InOrder(1)
	h.produce(ins)
	ids := intentIDs(t, ins)
	h.eventually(time.Minute, "results", func() bool { ok, _, _, _ := h.resultStats(ids); return ok == len(ids) })

	opts, err := grpcsec.ClientSettings{Token: s.GRPC.AdminToken}.DialOptions(h.app.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(h.app.GRPCAddr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, svc := range []string{"", "onex.registry.v1.RegistryService"} {
		var st healthpb.HealthCheckResponse_ServingStatus
		h.eventually(5*time.Second, "health SERVING", func() bool {
			r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err == nil {
				st = r.GetStatus()
			}
			return st == healthpb.HealthCheckResponse_SERVING
		})
	}
	resp, err := registryv1.NewRegistryServiceClient(conn).ListNodes(ctx, &registryv1.ListNodesRequest{})
	if err != nil || len(resp.GetNodes()) != 4 {
		t.Fatalf("ListNodes: %v, %v", resp, err)
	}
	adminc := registryv1.NewAdminServiceClient(conn)
	node := resp.GetNodes()[0].GetNodeId()
	cmd, err := adminc.DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: node, Reason: "surface test"})
	if err != nil || cmd.GetTopic() != h.admin {
		t.Fatalf("DeregisterNode: %v, %v", cmd, err)
	}
	if _, err := adminc.EvictNodes(ctx, &registryv1.EvictNodesRequest{State: registryv1.RegistrationState_REGISTRATION_STATE_REJECTED}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("EvictNodes of rejected nodes: %v, want INVALID_ARGUMENT", err)
	}
	recs := testkit.ReadAll(t, h.brokers, h.admin, 1, 30*time.Second, false)
	env, c, err := operator.Decode(recs[0].Value)
	if err != nil || string(recs[0].Key) != node || c.Command != operator.Deregister || c.NodeID.String() != node ||
		c.CommandID.String() != cmd.GetCommandId() || env.CorrelationID.String() != cmd.GetCorrelationId() ||
		!strings.HasPrefix(c.RequestedBy, "grpc:127.0.0.1:") || c.Reason != "surface test" {
		t.Errorf("admin record key %q: %+v, %v", recs[0].Key, c, err)
	}
	for _, m := range []struct {
		name   string
		labels map[string]string
	}{
		{"onex_messages_consumed_total", map[string]string{"topic": h.intents, "outcome": "handled"}},
		{"onex_projector_intents_total", map[string]string{"intent_type": pipeline.PostgresUpsert}},
		{"onex_projector_results_total", map[string]string{"success": "true"}},
		{"onex_projector_batch_size", nil},
		{"onex_projector_batch_apply_seconds", nil},
		{"onex_circuit_breaker_state", map[string]string{"backend": "postgres"}},
		{"onex_messages_produced_total", map[string]string{"topic": h.results}},
		{"onex_messages_produced_total", map[string]string{"topic": h.admin}},
		{"onex_projector_admin_commands_total", map[string]string{"command": "deregister", "outcome": "published"}},
		{"onex_projector_admin_commands_total", map[string]string{"command": "evict", "outcome": "invalid"}},
	} {
		if v := h.gather(m.name, m.labels); v < 0 {
			t.Errorf("metric %s%v missing", m.name, m.labels)
		}
	}
	if v := h.gather("onex_messages_consumed_total", map[string]string{"topic": h.intents, "outcome": "handled"}); v != float64(len(ins)) {
		t.Errorf("consumed %v, want %d", v, len(ins))
	}
}

// TestUntrackedUpdatesSendNoResult: through the service's consumer, an
// update routed untracked (the header pipeline.HeaderResults, as the
// orchestrator routes every heartbeat's update) is applied like any other
// but answered with no result; the upserts, which carry no header, are
// answered as before.
func TestUntrackedUpdatesSendNoResult(t *testing.T) {
	h := newHarness(t, "untracked", pgtest.NewDatabase(t))
	h.start(h.settings())

	stream, err := gen.Generate(17, 20, 200)
	if err != nil {
		t.Fatal(err)
	}
	ins := stream.InOrder(1)
	untracked := func(in gen.Intent) bool { return in.Type == pipeline.PostgresUpdate }
	var upserts, updates []gen.Intent
	for _, in := range ins {
		if untracked(in) {
			updates = append(updates, in)
		} else {
			upserts = append(upserts, in)
		}
	}
	if len(upserts) == 0 || len(updates) == 0 {
		t.Fatalf("stream of %d upserts and %d updates, want both", len(upserts), len(updates))
	}
	h.produceMarked(ins, untracked)

	upsertIDs := intentIDs(t, upserts)
	h.eventually(time.Minute, "every upsert answered", func() bool {
		ok, _, _, _ := h.resultStats(upsertIDs)
		return ok == len(upsertIDs)
	})
	h.eventually(time.Minute, "every update applied and counted not sent", func() bool {
		return h.gather("onex_projector_results_not_sent_total", nil) == float64(len(updates))
	})
	// A result would have been published before the count moved; give the
	// results consumer a moment to see one anyway.
	time.Sleep(time.Second)
	ok, failed, _, _ := h.resultStats(intentIDs(t, updates))
	if ok != 0 || failed != 0 {
		t.Errorf("updates routed untracked: %d success and %d failed results, want none", ok, failed)
	}
	ref := pgtest.NewDatabase(t)
	applyInOrder(t, ref, ins)
	compareRows(t, "updates routed untracked vs in-order reference", dumpRows(t, h.dsn), dumpRows(t, ref))
}
