package schema_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omninode/onex-fleet/services/projector-effect/internal/pgtest"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/schema"
)

func tableColumns(t *testing.T, ctx context.Context, pool *pgxpool.Pool) map[string]bool {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_name = 'registration_projections'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols[c] = true
	}
	return cols
}

// TestConcurrentUpDownUp: replicas starting at once all migrate the same
// fresh database; each succeeds, the schema ends at head exactly once, and
// the rollback and a second forward pass work.
func TestConcurrentUpDownUp(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	head, err := schema.Head()
	if err != nil {
		t.Fatal(err)
	}
	if head < 6 {
		t.Fatalf("head = %d, want at least 6", head)
	}

	const replicas = 6
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = schema.Up(ctx, dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}

	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	check := func(stage string, want uint) {
		t.Helper()
		v, dirty, err := schema.Version(ctx, pool)
		if err != nil || dirty || v != want {
			t.Fatalf("%s: version = %d dirty=%v err=%v, want %d clean", stage, v, dirty, err, want)
		}
	}
	check("after concurrent up", head)
	cols := tableColumns(t, ctx, pool)
	for _, c := range []string{"entity_id", "registration_sequence", "change_xid", "node_name", "endpoints", "introspection_extras"} {
		if !cols[c] {
			t.Errorf("column %s missing after up", c)
		}
	}

	if err := schema.Steps(ctx, dsn, -1); err != nil {
		t.Fatalf("one step down: %v", err)
	}
	check("after one step down", head-1)
	if cols := tableColumns(t, ctx, pool); cols["introspection_extras"] || !cols["change_xid"] {
		t.Errorf("after one step down: introspection_extras=%v change_xid=%v", cols["introspection_extras"], cols["change_xid"])
	}

	if err := schema.Down(ctx, dsn); err != nil {
		t.Fatalf("down: %v", err)
	}
	check("after down", 0)
	if cols := tableColumns(t, ctx, pool); len(cols) != 0 {
		t.Errorf("table still has columns after down: %v", cols)
	}

	if err := schema.Up(ctx, dsn); err != nil {
		t.Fatalf("up again: %v", err)
	}
	check("after up again", head)
	// Up at head is a no-op, not an error.
	if err := schema.Up(ctx, dsn); err != nil {
		t.Fatalf("up at head: %v", err)
	}
}

func TestHead(t *testing.T) {
	h, err := schema.Head()
	if err != nil || h != 6 {
		t.Fatalf("Head() = %d, %v; want 6 (update this test with a new migration)", h, err)
	}
}
