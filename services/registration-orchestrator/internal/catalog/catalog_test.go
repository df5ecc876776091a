package catalog

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

var specs = []topics.Spec{
	{Name: "onex.evt.platform.b-topic.v1", Kind: topics.KindEvent, Partitions: 6, Description: "b"},
	{Name: "onex.evt.platform.a-topic.v1", Kind: topics.KindEvent, Partitions: 1, Description: "a"},
	{Name: "onex.cmd.platform.c-topic.v1", Kind: topics.KindCommand, Description: "c"},
}

// The broker of the build tests: a-topic compacted with 3 partitions,
// b-topic, a topic outside the registry that nodes declare, and one nobody
// declares.
var states = []topics.TopicState{
	{Name: "onex.evt.platform.a-topic.v1", Partitions: 3, Configs: map[string]string{"cleanup.policy": "compact"}},
	{Name: "onex.evt.platform.b-topic.v1", Partitions: 6},
	{Name: "onex.evt.acme.orders.v1", Partitions: 12},
	{Name: "onex.evt.platform.not-in-registry.v1", Partitions: 1},
}

// contractSources are the contracts of the build tests.
func contractSources() sources {
	return sources{contractCount: 3,
		contracts: Usage{Pubs: map[string]int{"onex.evt.platform.a-topic.v1": 1, "onex.cmd.platform.c-topic.v1": 2},
			Subs: map[string]int{"onex.evt.platform.a-topic.v1": 2}}}
}

func withNodes(src sources, n int, pubs, subs map[string]int) sources {
	src.nodes, src.nodeCount = Usage{Pubs: pubs, Subs: subs}, n
	return src
}

// TestBuild: the registry joined with the broker, counted from contracts
// and ACTIVE nodes; a topic only nodes declare is an entry of its own.
func TestBuild(t *testing.T) {
	type want struct {
		partitions int
		pub, sub   int
		active     bool
		tags       []string
	}
	registryOnly := map[string]want{
		"onex.cmd.platform.c-topic.v1": {6, 0, 0, false, []string{"kind:cmd", "not_provisioned"}}, // contracts publish it, but it does not exist; the registry default partitions
		"onex.evt.platform.a-topic.v1": {3, 1, 2, true, []string{"kind:evt", "provisioned", "compacted"}},
		"onex.evt.platform.b-topic.v1": {6, 0, 0, false, []string{"kind:evt", "provisioned"}},
	}
	cases := []struct {
		name      string
		src       sources
		entries   map[string]want // every entry, by topic_suffix
		present   []string
		nodeCount int
	}{
		{"registry only: nodes declare nothing", contractSources(), registryOnly,
			[]string{"onex.evt.platform.a-topic.v1", "onex.evt.platform.b-topic.v1"}, 3},
		{"nodes add to the contracts' counts of a registry topic",
			withNodes(contractSources(), 2, map[string]int{"onex.evt.platform.a-topic.v1": 2, "onex.evt.platform.b-topic.v1": 1},
				map[string]int{"onex.evt.platform.b-topic.v1": 2}),
			map[string]want{
				"onex.cmd.platform.c-topic.v1": registryOnly["onex.cmd.platform.c-topic.v1"],
				"onex.evt.platform.a-topic.v1": {3, 3, 2, true, []string{"kind:evt", "provisioned", "compacted"}},
				"onex.evt.platform.b-topic.v1": {6, 1, 2, true, []string{"kind:evt", "provisioned"}},
			},
			[]string{"onex.evt.platform.a-topic.v1", "onex.evt.platform.b-topic.v1"}, 5},
		{"a registry topic missing on the broker stays inactive whoever declares it",
			withNodes(contractSources(), 1, map[string]int{"onex.cmd.platform.c-topic.v1": 1}, nil), registryOnly,
			[]string{"onex.evt.platform.a-topic.v1", "onex.evt.platform.b-topic.v1"}, 4},
		{"topics only nodes declare: entries of their own, sorted in",
			withNodes(contractSources(), 3,
				map[string]int{"onex.evt.acme.orders.v1": 2, "legacy_topic": 1},
				map[string]int{"onex.evt.acme.orders.v1": 1, "onex.cmd.acme.ship.v1": 1}),
			map[string]want{
				"legacy_topic":                 {1, 1, 0, true, []string{TagNodeSource, "not_provisioned"}},
				"onex.cmd.acme.ship.v1":        {1, 0, 1, true, []string{"kind:cmd", TagNodeSource, "not_provisioned"}},
				"onex.cmd.platform.c-topic.v1": registryOnly["onex.cmd.platform.c-topic.v1"],
				"onex.evt.acme.orders.v1":      {12, 2, 1, true, []string{"kind:evt", TagNodeSource, "provisioned"}},
				"onex.evt.platform.a-topic.v1": registryOnly["onex.evt.platform.a-topic.v1"],
				"onex.evt.platform.b-topic.v1": registryOnly["onex.evt.platform.b-topic.v1"],
			},
			[]string{"legacy_topic", "onex.cmd.acme.ship.v1", "onex.evt.acme.orders.v1", "onex.evt.platform.a-topic.v1", "onex.evt.platform.b-topic.v1"}, 6},
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := build(specs, states, tc.src, now)
			var names []string
			for _, e := range c.Entries {
				names = append(names, e.TopicSuffix)
			}
			if !slices.IsSorted(names) || len(names) != len(tc.entries) {
				t.Fatalf("entries %v: want %d, sorted by topic_suffix", names, len(tc.entries))
			}
			for _, e := range c.Entries {
				w, ok := tc.entries[e.TopicSuffix]
				if !ok {
					t.Errorf("unexpected entry %s", e.TopicSuffix)
					continue
				}
				if e.TopicName != e.TopicSuffix || e.Partitions != w.partitions || e.PublisherCount != w.pub || e.SubscriberCount != w.sub ||
					e.IsActive != w.active || !slices.Equal(e.Tags, w.tags) {
					t.Errorf("entry %s = %+v, want %+v", e.TopicSuffix, e, w)
				}
				if slices.Contains(e.Tags, TagNodeSource) && e.Description != nodeTopicDescription {
					t.Errorf("entry %s description %q", e.TopicSuffix, e.Description)
				}
			}
			if !slices.Equal(c.Present, tc.present) || c.NodeCount != tc.nodeCount {
				t.Errorf("present %v node_count %d, want %v %d", c.Present, c.NodeCount, tc.present, tc.nodeCount)
			}
			// Every entry is valid for the Python response model: the
			// response validates, and decodes as the Python models do.
			r := &registration.TopicCatalogResponse{CorrelationID: uuid.New(), Topics: c.Entries, CatalogVersion: int(c.Version),
				NodeCount: c.NodeCount, GeneratedAt: pipeline.T(now), Warnings: []string{}, SchemaVersion: 1}
			if err := r.Validate(); err != nil {
				t.Fatalf("response invalid: %v", err)
			}
			b, err := r.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			back, err := registration.DecodeTopicCatalogResponse(b)
			if err != nil {
				t.Fatalf("response does not decode: %v", err)
			}
			if len(back.Topics) != len(c.Entries) {
				t.Fatalf("%d entries decoded, want %d", len(back.Topics), len(c.Entries))
			}
		})
	}
}

// TestVersion: the version is a function of content only (any replica, any
// time), covers the node-derived counts, and a catalog without nodes keeps
// the version the catalog had before nodes were counted.
func TestVersion(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	base := contractSources()
	base.warnings = []string{"parse_error:x/contract.yaml"}
	v := func(specs []topics.Spec, states []topics.TopicState, src sources) uint32 {
		return build(specs, states, src, now).Version
	}
	v0 := v(specs, states, base)
	// Computed by the catalog before it counted nodes (commit HEAD of this
	// change) for the same registry, broker and contracts: an upgrade
	// announces nothing while no node declares topics.
	if v0 != 1751177166 {
		t.Errorf("version %d, want 1751177166 (the node-less catalog's version changed)", v0)
	}
	moreBroker := slices.Clone(states)
	moreBroker[1].Partitions = 12
	changes := []struct {
		name    string
		version uint32
		same    bool
	}{
		{"same content later, registry in another order", build(slices.Clone(specs), states, base, now.Add(time.Hour)).Version, true},
		{"a topic nobody declares appears on the broker", v(specs, append(slices.Clone(states), topics.TopicState{Name: "onex.evt.x.y.v1", Partitions: 1}), base), true},
		{"partitions change", v(specs, moreBroker, base), false},
		{"a node publishes to a registry topic", v(specs, states, withNodes(base, 1, map[string]int{"onex.evt.platform.b-topic.v1": 1}, nil)), false},
		{"a node declares a topic of its own", v(specs, states, withNodes(base, 1, nil, map[string]int{"onex.evt.acme.orders.v1": 1})), false},
		{"the view is incomplete", v(specs, states, func() sources {
			s := base
			s.warnings = append(slices.Clone(s.warnings), WarnPartialNodeData)
			return s
		}()), false},
	}
	for _, c := range changes {
		if (c.version == v0) != c.same || c.version == 0 {
			t.Errorf("%s: version %d vs %d, want same=%v (and never 0)", c.name, c.version, v0, c.same)
		}
	}
	twoPubs := v(specs, states, withNodes(base, 2, map[string]int{"onex.evt.platform.b-topic.v1": 2}, nil))
	onePub := v(specs, states, withNodes(base, 2, map[string]int{"onex.evt.platform.b-topic.v1": 1}, nil))
	if twoPubs == onePub {
		t.Error("version unchanged after a node stopped publishing to a topic")
	}
}

func TestFilter(t *testing.T) {
	c := &Catalog{Entries: []registration.TopicCatalogEntry{
		{TopicSuffix: "onex.cmd.platform.x.v1", PublisherCount: 1, IsActive: true},
		{TopicSuffix: "onex.evt.platform.node-heartbeat.v1", SubscriberCount: 1, IsActive: true},
		{TopicSuffix: "onex.evt.platform.node-introspection.v1"},
	}}
	pattern := func(s string) *string { return &s }
	cases := []struct {
		name string
		q    registration.TopicCatalogQuery
		want []string
	}{
		{"active only by default", registration.TopicCatalogQuery{}, []string{"onex.cmd.platform.x.v1", "onex.evt.platform.node-heartbeat.v1"}},
		{"include inactive", registration.TopicCatalogQuery{IncludeInactive: true}, []string{"onex.cmd.platform.x.v1", "onex.evt.platform.node-heartbeat.v1", "onex.evt.platform.node-introspection.v1"}},
		{"star crosses dots", registration.TopicCatalogQuery{IncludeInactive: true, TopicPattern: pattern("onex.evt.*")}, []string{"onex.evt.platform.node-heartbeat.v1", "onex.evt.platform.node-introspection.v1"}},
		{"question mark", registration.TopicCatalogQuery{TopicPattern: pattern("onex.cmd.platform.?.v1")}, []string{"onex.cmd.platform.x.v1"}},
		{"no match", registration.TopicCatalogQuery{TopicPattern: pattern("onex.dlq.*")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range Filter(c, &tc.q) {
				got = append(got, e.TopicSuffix)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	cases := []struct {
		prev, cur, added, removed []string
	}{
		{[]string{"a", "b", "c"}, []string{"b", "c", "d"}, []string{"d"}, []string{"a"}},
		{nil, []string{"a", "b"}, []string{"a", "b"}, []string{}},
		{[]string{"a"}, nil, []string{}, []string{"a"}},
		{[]string{"a", "b"}, []string{"a", "b"}, []string{}, []string{}},
	}
	for _, tc := range cases {
		added, removed := diff(tc.prev, tc.cur)
		if !slices.Equal(added, tc.added) || !slices.Equal(removed, tc.removed) {
			t.Errorf("diff(%v, %v) = %v, %v; want %v, %v", tc.prev, tc.cur, added, removed, tc.added, tc.removed)
		}
	}
}

func TestScanContracts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		os.WriteFile(filepath.Join(dir, name, "contract.yaml"), []byte(body), 0o644)
	}
	write("one", "name: one\nevent_bus:\n  publish_topics:\n    - topic: t1\n    - topic: t1\n  subscribe_topics:\n    - topic: t2\n")
	write("two", "event_bus:\n  subscribe_topics:\n    - topic: t2\n")
	write("bad", ": : :\n\t- [")
	pubs, subs, n, warnings := scanContracts(dir)
	if pubs["t1"] != 1 || subs["t2"] != 2 || n != 2 || !slices.Equal(warnings, []string{"parse_error:bad/contract.yaml"}) {
		t.Fatalf("pubs %v subs %v n %d warnings %v", pubs, subs, n, warnings)
	}
}
