package store_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// subscribe_topics and publish_topics hold what the node's latest
// registration upsert declared, as JSON arrays of names: [] on a row an
// update created and after a registration without topics; updates and a
// stale upsert leave them.
func TestTopicColumns(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	node, attempt := uuid.New(), uuid.New()
	apply := func(w store.Write, want store.Outcome) {
		t.Helper()
		out, err := s.Apply(ctx, []store.Write{w})
		if err != nil || len(out) != 1 || out[0] != want {
			t.Fatalf("apply %s seq %d: %v %v, want %s", w.Kind, w.Sequence, out, err, want)
		}
	}
	check := func(what string, sub, pub []string) {
		t.Helper()
		var rawSub, rawPub string
		if err := s.Pool().QueryRow(ctx, `SELECT subscribe_topics::text, publish_topics::text FROM registration_projections WHERE entity_id = $1`, node).
			Scan(&rawSub, &rawPub); err != nil {
			t.Fatal(err)
		}
		wantRaw := func(names []string) string {
			if len(names) == 0 {
				return "[]"
			}
			return `["` + strings.Join(names, `", "`) + `"]`
		}
		if rawSub != wantRaw(sub) || rawPub != wantRaw(pub) {
			t.Errorf("%s: columns %s / %s, want %s / %s", what, rawSub, rawPub, wantRaw(sub), wantRaw(pub))
		}
		r, err := s.Get(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.SubscribeTopics, sub) || !slices.Equal(r.PublishTopics, pub) {
			t.Errorf("%s: Row has %q / %q, want %q / %q", what, r.SubscribeTopics, r.PublishTopics, sub, pub)
		}
		rows, err := s.List(ctx, store.Filter{}, uuid.Nil, 10)
		if err != nil || len(rows) != 1 || !slices.Equal(rows[0].SubscribeTopics, sub) || !slices.Equal(rows[0].PublishTopics, pub) {
			t.Errorf("%s: List shows %v (%v)", what, rows, err)
		}
	}
	sub := []string{"onex.cmd.platform.work.v1", "onex.evt.platform.ticks.v1"}
	pub := []string{"onex.evt.platform.done.v1"}

	apply(update(node, 2, attempt, "awaiting_ack", 0), store.Inserted)
	check("row created by an update", nil, nil)
	up := upsert(node, 1, attempt, "1.0.0")
	up.SubscribeTopics, up.PublishTopics = sub, pub
	apply(up, store.Updated)
	check("after the upsert", sub, pub)
	apply(update(node, 3, attempt, "active", 10*time.Second), store.Updated)
	check("after an update", sub, pub)
	stale := upsert(node, 1, attempt, "1.0.0")
	stale.PublishTopics = []string{"onex.evt.platform.other.v1"}
	apply(stale, store.Stale)
	check("after a stale upsert", sub, pub)
	again := upsert(node, 5, uuid.New(), "1.1.0")
	again.PublishTopics = []string{"onex.evt.platform.other.v1"}
	apply(again, store.Updated)
	check("after a re-registration with other topics", nil, []string{"onex.evt.platform.other.v1"})
	apply(upsert(node, 6, uuid.New(), "1.1.0"), store.Updated)
	check("after a re-registration without topics", nil, nil)
}

// The list filters of the declared fields: each list matches the nodes
// that carry all of its values (in any order, repeats allowed), the
// filters combine with each other, with state and with the older
// capability filter, and paging visits each match once.
func TestListDeclaredFilters(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	type node struct {
		state                    string
		tags, protocols, intents []string
		contract                 string
	}
	nodes := map[string]node{
		"search": {"active", []string{"node-type:effect", "mcp-enabled", "mcp-tool:search"}, []string{"grpc", "http"}, []string{"a.x"}, "effect"},
		"mcp":    {"awaiting_ack", []string{"node-type:effect", "mcp-enabled"}, []string{"http"}, []string{"a.x", "b.y"}, "effect"},
		"calc":   {"active", []string{"node-type:compute"}, []string{"grpc"}, []string{"b.y"}, "compute"},
		"bare":   {"active", nil, nil, nil, ""},
	}
	ids := map[uuid.UUID]string{}
	var writes []store.Write
	for name, n := range nodes {
		id := uuid.New()
		ids[id] = name
		w := upsert(id, 1, uuid.New(), "1.0.0")
		w.CapabilityTags, w.Protocols, w.IntentTypes = n.tags, n.protocols, n.intents
		if n.contract != "" {
			w.ContractType, w.ContractVersion = strp(n.contract), strp("1.0.0")
		}
		writes = append(writes, w)
		if n.state != "awaiting_ack" {
			writes = append(writes, update(id, 2, w.AttemptID, n.state, time.Second))
		}
	}
	// A row an update created: the array columns have their defaults.
	orphan := uuid.New()
	ids[orphan] = "orphan"
	writes = append(writes, update(orphan, 1, uuid.New(), "active", 0))
	if _, err := s.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		f    store.Filter
		want []string
	}{
		{"none", store.Filter{}, []string{"bare", "calc", "mcp", "orphan", "search"}},
		{"one tag", store.Filter{CapabilityTags: []string{"mcp-enabled"}}, []string{"mcp", "search"}},
		{"two tags", store.Filter{CapabilityTags: []string{"mcp-enabled", "mcp-tool:search"}}, []string{"search"}},
		{"two tags reordered, repeated", store.Filter{CapabilityTags: []string{"mcp-tool:search", "mcp-enabled", "mcp-tool:search"}}, []string{"search"}},
		{"tags no node has together", store.Filter{CapabilityTags: []string{"mcp-enabled", "node-type:compute"}}, nil},
		{"unknown tag", store.Filter{CapabilityTags: []string{"mcp-tool:nothing"}}, nil},
		{"tag and state", store.Filter{CapabilityTags: []string{"mcp-enabled"}, State: "active"}, []string{"search"}},
		{"tag and other state", store.Filter{CapabilityTags: []string{"node-type:effect"}, State: "awaiting_ack"}, []string{"mcp"}},
		{"protocol", store.Filter{Protocols: []string{"grpc"}}, []string{"calc", "search"}},
		{"two protocols", store.Filter{Protocols: []string{"http", "grpc"}}, []string{"search"}},
		{"intent type", store.Filter{IntentTypes: []string{"b.y"}}, []string{"calc", "mcp"}},
		{"two intent types", store.Filter{IntentTypes: []string{"a.x", "b.y"}}, []string{"mcp"}},
		{"contract type", store.Filter{ContractType: "effect"}, []string{"mcp", "search"}},
		{"contract type and state", store.Filter{ContractType: "compute", State: "active"}, []string{"calc"}},
		{"everything at once", store.Filter{CapabilityTags: []string{"node-type:effect"}, Protocols: []string{"grpc"},
			IntentTypes: []string{"a.x"}, ContractType: "effect", State: "active", NodeType: "effect"}, []string{"search"}},
		{"everything, one not matching", store.Filter{CapabilityTags: []string{"node-type:effect"}, Protocols: []string{"grpc"},
			IntentTypes: []string{"b.y"}, ContractType: "effect", State: "active"}, nil},
		{"capability: a tag", store.Filter{Capability: "mcp-tool:search"}, []string{"search"}},
		{"capability: declared true", store.Filter{Capability: "postgres"}, []string{"bare", "calc", "mcp", "search"}},
		{"capability and tags", store.Filter{Capability: "mcp-enabled", CapabilityTags: []string{"mcp-tool:search"}}, []string{"search"}},
	}
	for _, tt := range tests {
		if err := tt.f.Validate(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []string
		after := uuid.Nil
		for {
			page, err := s.List(ctx, tt.f, after, 2)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			for _, r := range page {
				got = append(got, ids[r.NodeID])
			}
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].NodeID
		}
		slices.Sort(got)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The statement List runs for a list filter is a plain containment test
// that the column's GIN index serves. With the values known (the custom
// plans PostgreSQL makes for a prepared statement's first executions, and
// later whenever they are cheaper) the planner picks the index for a rare
// value on 20,000 rows. In a generic plan, which knows no value, whether
// the index is cheaper depends on the table's size, so there the test only
// checks that the index can serve the condition: with plain index and
// sequential scans off, a bitmap scan of it is what is left (a
// "$n = '{}' OR …" form would leave none).
func TestListFiltersUseGINIndexes(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	_, err := s.Pool().Exec(ctx, `INSERT INTO registration_projections (entity_id, domain, current_state, node_type,
  last_applied_event_id, registered_at, updated_at, capability_tags, protocols, intent_types)
SELECT gen_random_uuid(), 'registration', 'active', 'effect', gen_random_uuid(), now(), now(),
  ARRAY['node-type:effect', 'mcp-tool:tool-' || (i % 1000)], ARRAY['proto-' || (i % 1000)], ARRAY['intent-' || (i % 1000)]
FROM generate_series(1, 20000) i`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE registration_projections`); err != nil {
		t.Fatal(err)
	}
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for i, tt := range []struct {
		f     store.Filter
		value string
		index string
	}{
		{store.Filter{CapabilityTags: []string{"x"}}, "mcp-tool:tool-7", "idx_registration_capability_tags"},
		{store.Filter{Protocols: []string{"x"}}, "proto-7", "idx_registration_protocols"},
		{store.Filter{IntentTypes: []string{"x"}}, "intent-7", "idx_registration_intent_types"},
	} {
		q, args := store.ListQuery(tt.f, uuid.Nil, 101)
		if len(args) != 4 {
			t.Fatalf("%+v: %d arguments, want 4 (domain, after, the list, limit)", tt.f, len(args))
		}
		name := fmt.Sprintf("explain_list_%d", i)
		if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+q); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{
			"SET plan_cache_mode = force_custom_plan",
			"SET plan_cache_mode = force_generic_plan; SET enable_indexscan = off; SET enable_seqscan = off",
		} {
			if _, err := conn.Exec(ctx, mode); err != nil {
				t.Fatal(err)
			}
			rows, err := conn.Query(ctx, fmt.Sprintf("EXPLAIN EXECUTE %s('registration', '%s', '{%s}', 101)", name, uuid.Nil, tt.value))
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			rows.Close()
			if _, err := conn.Exec(ctx, "RESET ALL"); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(plan, "\n"), "Bitmap Index Scan on "+tt.index) {
				t.Errorf("%+v, %s: the plan does not use %s:\n%s", tt.f, mode, tt.index, strings.Join(plan, "\n"))
			}
		}
	}
}
