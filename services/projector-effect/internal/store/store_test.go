package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/pgtest"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/schema"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// newStore returns a store over a fresh, migrated database.
func newStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := schema.Up(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return store.New(pool), dsn
}

var t0 = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

func tp(d time.Duration) *time.Time { v := t0.Add(d); return &v }

func strp(s string) *string { return &s }

func upsert(node uuid.UUID, seq int64, attempt uuid.UUID, version string) store.Write {
	corr := uuid.New()
	return store.Write{Kind: store.Upsert, NodeID: node, Sequence: seq, State: "awaiting_ack",
		AckDeadline: tp(30 * time.Second), UpdatedAt: t0, NodeType: "effect", RegisteredAt: t0, AttemptID: attempt,
		NodeVersion: version, Capabilities: []byte(`{"postgres": true}`), Endpoints: map[string]string{"health": "http://h:1/health"},
		NodeName: strp("n1"), CorrelationID: &corr}
}

func update(node uuid.UUID, seq int64, attempt uuid.UUID, state string, hb time.Duration) store.Write {
	return store.Write{Kind: store.Update, NodeID: node, Sequence: seq, State: state,
		AckDeadline: tp(30 * time.Second), LivenessDeadline: tp(hb + 90*time.Second), LastHeartbeatAt: tp(hb),
		UpdatedAt: t0.Add(hb), NodeType: "effect", RegisteredAt: t0, AttemptID: attempt}
}

func TestApplyGuards(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	attempt1, attempt2 := uuid.New(), uuid.New()

	type step struct {
		writes []store.Write
		want   []store.Outcome
	}
	tests := []struct {
		name  string
		steps func(node uuid.UUID) []step
		check func(t *testing.T, r *store.Row)
	}{
		{
			name: "in order: upsert then newer update",
			steps: func(n uuid.UUID) []step {
				return []step{
					{[]store.Write{upsert(n, 1, attempt1, "1.0.0")}, []store.Outcome{store.Inserted}},
					{[]store.Write{update(n, 3, attempt1, "active", 10*time.Second)}, []store.Outcome{store.Updated}},
				}
			},
			check: func(t *testing.T, r *store.Row) {
				if r.State != "active" || r.Sequence != 3 || r.RegistrationSequence != 1 || r.NodeVersion != "1.0.0" || *r.NodeName != "n1" {
					t.Errorf("row = %+v", r)
				}
			},
		},
		{
			name: "update before its upsert creates the row; the late upsert fills static columns only",
			steps: func(n uuid.UUID) []step {
				return []step{
					{[]store.Write{update(n, 3, attempt1, "active", 10*time.Second)}, []store.Outcome{store.Inserted}},
					{[]store.Write{upsert(n, 1, attempt1, "1.2.3")}, []store.Outcome{store.Updated}},
				}
			},
			check: func(t *testing.T, r *store.Row) {
				if r.State != "active" || r.Sequence != 3 || r.RegistrationSequence != 1 || r.NodeVersion != "1.2.3" ||
					r.LastHeartbeatAt == nil || !r.LastHeartbeatAt.Equal(t0.Add(10*time.Second)) || r.Endpoints["health"] == "" {
					t.Errorf("row = %+v", r)
				}
			},
		},
		{
			name: "duplicates and older intents are stale",
			steps: func(n uuid.UUID) []step {
				return []step{
					{[]store.Write{upsert(n, 1, attempt1, "1.0.0"), update(n, 5, attempt1, "active", 20*time.Second)}, []store.Outcome{store.Inserted, store.Updated}},
					{[]store.Write{upsert(n, 1, attempt1, "1.0.0"), update(n, 3, attempt1, "active", 10*time.Second), update(n, 5, attempt1, "active", 20*time.Second)},
						[]store.Outcome{store.Stale, store.Stale, store.Stale}},
				}
			},
			check: func(t *testing.T, r *store.Row) {
				if r.Sequence != 5 || !r.UpdatedAt.Equal(t0.Add(20*time.Second)) {
					t.Errorf("row = %+v", r)
				}
			},
		},
		{
			name: "re-registration upsert overtakes an older update",
			steps: func(n uuid.UUID) []step {
				up2 := upsert(n, 10, attempt2, "2.0.0")
				return []step{
					{[]store.Write{upsert(n, 1, attempt1, "1.0.0")}, []store.Outcome{store.Inserted}},
					{[]store.Write{up2}, []store.Outcome{store.Updated}},
					{[]store.Write{update(n, 3, attempt1, "active", 10*time.Second)}, []store.Outcome{store.Stale}},
				}
			},
			check: func(t *testing.T, r *store.Row) {
				if r.State != "awaiting_ack" || r.AttemptID != attempt2 || r.NodeVersion != "2.0.0" || r.Sequence != 10 || r.RegistrationSequence != 10 {
					t.Errorf("row = %+v", r)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := uuid.New()
			for i, st := range tt.steps(node) {
				got, err := s.Apply(ctx, st.writes)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				for j := range st.want {
					if got[j] != st.want[j] {
						t.Errorf("step %d write %d: outcome %v, want %v", i, j, got[j], st.want[j])
					}
				}
			}
			r, err := s.Get(ctx, node)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

// TestApplyPoisonRollsBack: a write the table refuses fails the whole
// batch, names its index, and is classified as content (poison).
func TestApplyPoisonRollsBack(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	good, bad := uuid.New(), uuid.New()
	w := upsert(bad, 1, uuid.New(), "1.0.0")
	w.NodeType = "runtime_host" // violates valid_node_type
	_, err := s.Apply(ctx, []store.Write{upsert(good, 1, uuid.New(), "1.0.0"), w})
	var be *store.BatchError
	if !errors.As(err, &be) || be.Index != 1 || !store.IsDataError(be.Err) {
		t.Fatalf("err = %v, want a data error at index 1", err)
	}
	if code := store.ResultCode(be.Err); code != store.CodeUpsert {
		t.Errorf("code = %s", code)
	}
	if _, err := s.Get(ctx, good); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the good write of the failed batch was committed: %v", err)
	}
}

// A batch of many nodes' updates goes to PostgreSQL as multi-row
// statements, one per round of a node's writes: each write must get the
// outcome it gets applied alone, in order, and the rows must end as they
// would.
func TestApplyBatchedUpdatesMatchOneByOne(t *testing.T) {
	batched, _ := newStore(t)
	single, _ := newStore(t)
	ctx := context.Background()
	attempt := uuid.New()
	a, b, c, d := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	// d exists with sequence 9 before the batch, so its older updates are stale.
	for _, s := range []*store.Store{batched, single} {
		if _, err := s.Apply(ctx, []store.Write{upsert(d, 9, attempt, "1.0.0")}); err != nil {
			t.Fatal(err)
		}
	}
	batch := []store.Write{
		update(a, 2, attempt, "active", 1*time.Second), // creates a
		upsert(b, 1, attempt, "1.0.0"),
		update(b, 3, attempt, "active", 2*time.Second),
		update(a, 4, attempt, "active", 3*time.Second),
		update(a, 3, attempt, "active", 2*time.Second), // older than a's 4: stale
		update(c, 5, attempt, "active", 4*time.Second),
		update(d, 7, attempt, "active", 5*time.Second), // stale
		update(d, 10, attempt, "active", 6*time.Second),
		update(b, 6, attempt, "active", 7*time.Second),
	}
	want := []store.Outcome{store.Inserted, store.Inserted, store.Updated, store.Updated, store.Stale, store.Inserted, store.Stale, store.Updated, store.Updated}
	got, err := batched.Apply(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	var one []store.Outcome
	for _, w := range batch {
		o, err := single.Apply(ctx, []store.Write{w})
		if err != nil {
			t.Fatal(err)
		}
		one = append(one, o[0])
	}
	for i := range batch {
		if got[i] != want[i] || one[i] != want[i] {
			t.Errorf("write %d: batched %v, one by one %v, want %v", i, got[i], one[i], want[i])
		}
	}
	for _, n := range []uuid.UUID{a, b, c, d} {
		x, err := batched.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		y, err := single.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if x.Sequence != y.Sequence || x.State != y.State || !x.UpdatedAt.Equal(y.UpdatedAt) || x.NodeVersion != y.NodeVersion ||
			!x.LastHeartbeatAt.Equal(*y.LastHeartbeatAt) || !x.LivenessDeadline.Equal(*y.LivenessDeadline) {
			t.Errorf("node %s: batched row %+v, one by one %+v", n, x, y)
		}
	}
}

// A multi-row update PostgreSQL refuses cannot name the write at fault;
// the batch is applied again one statement per write, which does.
func TestApplyBatchedPoisonNamesItsWrite(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	good, bad := uuid.New(), uuid.New()
	w := update(bad, 2, uuid.New(), "active", time.Second)
	w.NodeType = "runtime_host" // violates valid_node_type when it creates the row
	_, err := s.Apply(ctx, []store.Write{update(good, 2, uuid.New(), "active", time.Second), w, update(uuid.New(), 2, uuid.New(), "active", time.Second)})
	var be *store.BatchError
	if !errors.As(err, &be) || be.Index != 1 || !store.IsDataError(be.Err) {
		t.Fatalf("err = %v, want a data error at index 1", err)
	}
	if _, err := s.Get(ctx, good); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the good write of the failed batch was committed: %v", err)
	}
}

func TestListAndFilters(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	var writes []store.Write
	for i := range 25 {
		n := uuid.New()
		w := upsert(n, 1, uuid.New(), "1.0.0")
		if i%2 == 0 {
			w.NodeType = "compute"
			w.Capabilities = []byte(`{"postgres": false}`)
			w.CapabilityTags = []string{"mcp-enabled"}
		}
		writes = append(writes, w)
		if i%5 == 0 {
			writes = append(writes, update(n, 2, w.AttemptID, "active", time.Second))
		}
	}
	if _, err := s.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		f    store.Filter
		want int
	}{
		{store.Filter{}, 25},
		{store.Filter{State: "active"}, 5},
		{store.Filter{NodeType: "compute"}, 13},
		{store.Filter{Capability: "postgres"}, 12},
		{store.Filter{Capability: "mcp-enabled"}, 13},
		{store.Filter{State: "active", NodeType: "compute"}, 3},
		{store.Filter{Capability: "nothing"}, 0},
	}
	for _, tt := range tests {
		var got []*store.Row
		after := uuid.Nil
		for {
			page, err := s.List(ctx, tt.f, after, 4)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < 4 {
				break
			}
			after = page[len(page)-1].NodeID
		}
		if len(got) != tt.want {
			t.Errorf("%+v: %d rows, want %d", tt.f, len(got), tt.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i].NodeID.String() <= got[i-1].NodeID.String() {
				t.Errorf("%+v: not ordered by node id", tt.f)
			}
		}
	}
}

func TestChangesFeed(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	h0, err := s.Horizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, b := uuid.New(), uuid.New()
	if _, err := s.Apply(ctx, []store.Write{upsert(a, 1, uuid.New(), "1.0.0"), upsert(b, 1, uuid.New(), "1.0.0")}); err != nil {
		t.Fatal(err)
	}
	rows, h1, err := s.Changes(ctx, store.Position{XID: h0}, 100)
	if err != nil || len(rows) != 2 || h1 < h0 {
		t.Fatalf("changes: %d rows, horizon %d -> %d, err %v", len(rows), h0, h1, err)
	}
	xids := map[uuid.UUID]uint64{}
	for _, r := range rows {
		xids[r.NodeID] = r.ChangeXID
	}
	// Paging by position within one transaction's rows.
	page, _, err := s.Changes(ctx, store.Position{XID: rows[0].ChangeXID, NodeID: rows[0].NodeID}, 100)
	if err != nil || len(page) != 1 || page[0].NodeID != rows[1].NodeID {
		t.Fatalf("page after first row: %v %v", page, err)
	}
	// A stale write changes nothing, so the feed has no new version of a
	// row. (Rows at or above the horizon may be read again: other tests'
	// transactions on the shared server can hold the horizon back.)
	if _, err := s.Apply(ctx, []store.Write{upsert(a, 1, uuid.New(), "1.0.0")}); err != nil {
		t.Fatal(err)
	}
	rows, _, err = s.Changes(ctx, store.Position{XID: h1}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ChangeXID != xids[r.NodeID] {
			t.Fatalf("after stale write: row %s has a new version", r.NodeID)
		}
	}
	if _, err := s.Apply(ctx, []store.Write{update(b, 2, uuid.New(), "active", time.Second)}); err != nil {
		t.Fatal(err)
	}
	rows, _, err = s.Changes(ctx, store.Position{XID: h1}, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		switch {
		case r.NodeID == b && r.State == "active" && r.ChangeXID > xids[b]:
			found = true
		case r.NodeID == a && r.ChangeXID != xids[a]:
			t.Errorf("row a changed")
		}
	}
	if !found {
		t.Fatalf("after update: the new version of b is not in the feed: %v", rows)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		kind infraerr.Kind
		code string
	}{
		{context.DeadlineExceeded, infraerr.KindTimeout, store.CodeTimeout},
		{errors.New("conn closed"), infraerr.KindConnection, store.CodeConnection},
		{errors.New("something odd"), infraerr.KindRuntime, store.CodeUnknown},
		{&pgconn.PgError{Code: "57P01"}, infraerr.KindConnection, store.CodeConnection}, // admin shutdown
		{&pgconn.PgError{Code: "08006"}, infraerr.KindConnection, store.CodeConnection},
		{&pgconn.PgError{Code: "40P01"}, infraerr.KindConnection, store.CodeConnection},  // deadlock
		{&pgconn.PgError{Code: "40001"}, infraerr.KindConnection, store.CodeConnection},  // serialization
		{&pgconn.PgError{Code: "57014"}, infraerr.KindTimeout, store.CodeTimeout},        // statement timeout
		{&pgconn.PgError{Code: "53300"}, infraerr.KindUnavailable, store.CodeConnection}, // too many connections
		{&pgconn.PgError{Code: "28P01"}, infraerr.KindAuthentication, store.CodeAuth},
		{&pgconn.PgError{Code: "23514"}, infraerr.KindContent, store.CodeUpsert}, // check violation
		{&pgconn.PgError{Code: "22001"}, infraerr.KindContent, store.CodeUpsert}, // value too long
		{&pgconn.PgError{Code: "42P01"}, infraerr.KindRuntime, store.CodeUnknown},
	}
	for _, tt := range tests {
		err := store.Classify("apply", tt.err)
		if k, _ := infraerr.KindOf(err); k != tt.kind {
			t.Errorf("%v: kind %v, want %v", tt.err, k, tt.kind)
		}
		if c := store.ResultCode(err); c != tt.code {
			t.Errorf("%v: code %s, want %s", tt.err, c, tt.code)
		}
		if got := store.ResultError(err); got != "postgres operation failed" && !strings.HasPrefix(got, "postgres operation failed: ") {
			t.Errorf("%v: result error %q", tt.err, got)
		}
	}
}
