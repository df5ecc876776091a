package catalog

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

var specs = []topics.Spec{
	{Name: "onex.evt.platform.b-topic.v1", Kind: topics.KindEvent, Partitions: 6, Description: "b"},
	{Name: "onex.evt.platform.a-topic.v1", Kind: topics.KindEvent, Partitions: 1, Description: "a"},
	{Name: "onex.cmd.platform.c-topic.v1", Kind: topics.KindCommand, Description: "c"},
}

func TestBuild(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	states := []topics.TopicState{
		{Name: "onex.evt.platform.a-topic.v1", Partitions: 3, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: "onex.evt.platform.b-topic.v1", Partitions: 6},
		{Name: "onex.evt.platform.not-in-registry.v1", Partitions: 1},
	}
	pubs := map[string]int{"onex.evt.platform.a-topic.v1": 1, "onex.cmd.platform.c-topic.v1": 2}
	subs := map[string]int{"onex.evt.platform.a-topic.v1": 2}
	c := build(specs, states, pubs, subs, 3, nil, now)

	var names []string
	for _, e := range c.Entries {
		names = append(names, e.TopicSuffix)
	}
	if !slices.Equal(names, []string{"onex.cmd.platform.c-topic.v1", "onex.evt.platform.a-topic.v1", "onex.evt.platform.b-topic.v1"}) {
		t.Fatalf("entries %v (sorted by suffix, registry only)", names)
	}
	cases := []struct {
		i          int
		partitions int
		pub, sub   int
		active     bool
		tags       []string
	}{
		{0, 6, 0, 0, false, []string{"kind:cmd", "not_provisioned"}}, // contracts publish it, but it does not exist
		{1, 3, 1, 2, true, []string{"kind:evt", "provisioned", "compacted"}},
		{2, 6, 0, 0, false, []string{"kind:evt", "provisioned"}},
	}
	for _, tc := range cases {
		e := c.Entries[tc.i]
		if e.Partitions != tc.partitions || e.PublisherCount != tc.pub || e.SubscriberCount != tc.sub || e.IsActive != tc.active || !slices.Equal(e.Tags, tc.tags) {
			t.Errorf("entry %s = %+v", e.TopicSuffix, e)
		}
	}
	if !slices.Equal(c.Present, []string{"onex.evt.platform.a-topic.v1", "onex.evt.platform.b-topic.v1"}) || c.NodeCount != 3 {
		t.Errorf("present %v node_count %d", c.Present, c.NodeCount)
	}

	// The version is a function of content only: same catalog, same version
	// (any replica, any time); a change in partitions changes it.
	again := build(slices.Clone(specs), states, pubs, subs, 3, nil, now.Add(time.Hour))
	if c.Version == 0 || again.Version != c.Version {
		t.Errorf("versions %d / %d", c.Version, again.Version)
	}
	states[1].Partitions = 12
	if build(specs, states, pubs, subs, 3, nil, now).Version == c.Version {
		t.Error("version unchanged after a partition change")
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
	added, removed := diff([]string{"a", "b", "c"}, []string{"b", "c", "d"})
	if !slices.Equal(added, []string{"d"}) || !slices.Equal(removed, []string{"a"}) {
		t.Fatalf("added %v removed %v", added, removed)
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
