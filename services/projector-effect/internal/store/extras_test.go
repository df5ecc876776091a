package store_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("column is not JSON: %q (%v)", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

// introspection_extras (migration 000006) holds what the node's latest
// registration upsert carried: every upsert replaces it, {} when it carried
// none (the node re-registered with an introspection the fleet fully
// knows); updates never touch it, and a stale upsert does not either.
func TestIntrospectionExtrasColumn(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	node, attempt := uuid.New(), uuid.New()
	const extras = `{"flow_window":{"max_in_flight":8},"declared_capabilities.new_thing":[1,2]}`
	get := func() *store.Row {
		t.Helper()
		r, err := s.Get(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	apply := func(w store.Write, want store.Outcome) {
		t.Helper()
		out, err := s.Apply(ctx, []store.Write{w})
		if err != nil || len(out) != 1 || out[0] != want {
			t.Fatalf("apply %s seq %d: %v %v, want %s", w.Kind, w.Sequence, out, err, want)
		}
	}

	// An update that creates the row, before any upsert: the default.
	apply(update(node, 2, attempt, "awaiting_ack", 0), store.Inserted)
	if r := get(); !jsonEqual(t, r.IntrospectionExtras, `{}`) {
		t.Errorf("row created by an update: extras %s, want {}", r.IntrospectionExtras)
	}
	up := upsert(node, 1, attempt, "1.0.0")
	up.IntrospectionExtras = []byte(extras)
	apply(up, store.Updated)
	if r := get(); !jsonEqual(t, r.IntrospectionExtras, extras) {
		t.Errorf("after the upsert: extras %s, want %s", r.IntrospectionExtras, extras)
	}
	// Updates (ack, heartbeats), one by one and batched, keep them.
	apply(update(node, 3, attempt, "active", 10*time.Second), store.Updated)
	other := uuid.New()
	if _, err := s.Apply(ctx, []store.Write{update(node, 4, attempt, "active", 20*time.Second), update(other, 1, attempt, "active", 0)}); err != nil {
		t.Fatal(err)
	}
	if r := get(); !jsonEqual(t, r.IntrospectionExtras, extras) || r.Sequence != 4 {
		t.Errorf("after updates: extras %s (sequence %d), want %s", r.IntrospectionExtras, r.Sequence, extras)
	}
	// A stale upsert (a replay of an older registration) changes nothing.
	old := upsert(node, 1, attempt, "1.0.0")
	apply(old, store.Stale)
	if r := get(); !jsonEqual(t, r.IntrospectionExtras, extras) {
		t.Errorf("after a stale upsert without extras: %s, want %s", r.IntrospectionExtras, extras)
	}
	// A re-registration whose introspection had none clears them.
	again := upsert(node, 5, uuid.New(), "1.1.0")
	apply(again, store.Updated)
	if r := get(); !jsonEqual(t, r.IntrospectionExtras, `{}`) || r.NodeVersion != "1.1.0" {
		t.Errorf("after an upsert without extras: %s, want {}", r.IntrospectionExtras)
	}
	// null is none too.
	again = upsert(node, 6, uuid.New(), "1.1.0")
	again.IntrospectionExtras = []byte(`null`)
	apply(again, store.Updated)
	if r := get(); !jsonEqual(t, r.IntrospectionExtras, `{}`) {
		t.Errorf("after an upsert with null extras: %s, want {}", r.IntrospectionExtras)
	}
	// The list reads the column too.
	rows, err := s.List(ctx, store.Filter{}, uuid.Nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.IntrospectionExtras == nil {
			t.Errorf("listed row %s without extras", r.NodeID)
		}
	}
}
