package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/catalog"
)

// TestTopicCatalog: queries are answered on the response topic, keyed by
// the query envelope's correlation id, with the registry joined with the
// broker (partitions) and the contracts (counts), filtered by pattern and
// activity; an invalid query gets an empty response with a warning and is
// dead-lettered; the leader announces the catalog, then a topic that
// appears.
func TestTopicCatalog(t *testing.T) {
	h := newHarness(t)
	resp, changed := h.topic(topics.TopicCatalogResponse), h.topic(topics.TopicCatalogChanged)
	h.watch(resp)
	h.watch(changed)
	h.watch(h.dlqTopic)

	// A registry of three topics: two provisioned, one not yet.
	base := "onex.evt.c" + h.u
	busy, quiet, later := base+".busy.v1", base+".quiet.v1", base+".later.v1"
	specs := []topics.Spec{
		{Name: busy, Kind: topics.KindEvent, Partitions: 2, Description: "a topic with a publisher and a subscriber"},
		{Name: quiet, Kind: topics.KindEvent, Partitions: 1, Description: "provisioned, no contract uses it"},
		{Name: later, Kind: topics.KindEvent, Partitions: 1, Description: "provisioned during the test"},
	}
	testkit.CreateTopic(t, h.brokers, busy, 2, nil)
	testkit.CreateTopic(t, h.brokers, quiet, 1, nil)
	s := h.settings()
	s.CatalogSpecs = specs
	writeContract(t, s.ContractsDir, "producer", "event_bus:\n  publish_topics:\n    - topic: "+busy+"\n    - topic: "+later+"\n")
	writeContract(t, s.ContractsDir, "consumer", "event_bus:\n  subscribe_topics:\n    - topic: "+busy+"\n")
	writeContract(t, s.ContractsDir, "broken", "event_bus: [unclosed\n")
	h.start(s)

	query := func(corr uuid.UUID, payload string) *registration.TopicCatalogResponse {
		t.Helper()
		env, err := envelope.New(json.RawMessage(payload), envelope.WithCorrelationID(corr))
		if err != nil {
			t.Fatal(err)
		}
		b, err := env.Encode()
		if err != nil {
			t.Fatal(err)
		}
		h.produce(h.topic(topics.TopicCatalogQuery), "", b)
		got := h.waitRecords(resp, 1, 20*time.Second, "catalog response", keyIs(corr.String()))
		e, err := envelope.Decode(got[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		r, err := envelope.DecodePayload(e, registration.DecodeTopicCatalogResponse)
		if err != nil {
			t.Fatal(err)
		}
		if r.CorrelationID != corr || e.CorrelationID == nil || *e.CorrelationID != corr {
			t.Errorf("response correlation %s / %v, want %s", r.CorrelationID, e.CorrelationID, corr)
		}
		return r
	}
	names := func(r *registration.TopicCatalogResponse) []string {
		var out []string
		for _, e := range r.Topics {
			out = append(out, e.TopicSuffix)
		}
		return out
	}

	t.Run("all topics, pattern on the suffix", func(t *testing.T) {
		corr := uuid.New()
		// The payload's correlation_id differs on purpose: the envelope's wins.
		r := query(corr, `{"correlation_id": "`+uuid.NewString()+`", "client_id": "test", "include_inactive": true, "topic_pattern": "onex.evt.c`+h.u+`.*", "schema_version": 1}`)
		if got := names(r); !slices.Equal(got, []string{busy, later, quiet}) {
			t.Fatalf("topics %v", got)
		}
		if r.CatalogVersion == 0 || r.NodeCount != 2 || !slices.Contains(r.Warnings, catalog.WarnParseError+"broken/contract.yaml") {
			t.Errorf("version %d, node_count %d, warnings %v", r.CatalogVersion, r.NodeCount, r.Warnings)
		}
		b := r.Topics[0]
		if b.Partitions != 2 || b.PublisherCount != 1 || b.SubscriberCount != 1 || !b.IsActive || !slices.Contains(b.Tags, "provisioned") {
			t.Errorf("busy entry %+v", b)
		}
		if l := r.Topics[1]; l.PublisherCount != 0 || l.IsActive || !slices.Contains(l.Tags, "not_provisioned") {
			t.Errorf("unprovisioned entry %+v", l)
		}
	})

	t.Run("active only, single-character wildcard", func(t *testing.T) {
		r := query(uuid.New(), `{"correlation_id": "`+uuid.NewString()+`", "client_id": "test", "topic_pattern": "onex.evt.c`+h.u+`.bus?.v1"}`)
		if got := names(r); !slices.Equal(got, []string{busy}) {
			t.Fatalf("topics %v", got)
		}
	})

	t.Run("invalid query: empty response with a warning, then DLQ", func(t *testing.T) {
		corr := uuid.New()
		r := query(corr, `{"correlation_id": "`+corr.String()+`", "include_inactive": true}`)
		if r.CatalogVersion != 0 || len(r.Topics) != 0 || !slices.Equal(r.Warnings, []string{catalog.WarnInvalidQuery}) {
			t.Fatalf("response %+v", r)
		}
		got := h.waitRecords(h.dlqTopic, 1, 20*time.Second, "invalid query dead-lettered", nil)
		rec, err := dlq.Decode(got[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		if rec.CorrelationID != corr.String() || rec.FailureType != dlq.FailureTypeContent {
			t.Errorf("DLQ record %+v", rec)
		}
	})

	t.Run("leader announces the catalog and the topic that appears", func(t *testing.T) {
		first := h.waitRecords(changed, 1, 20*time.Second, "initial announcement", nil)
		c0 := decodeChanged(t, first[0])
		if !slices.Equal(c0.TopicsAdded, []string{busy, quiet}) || len(c0.TopicsRemoved) != 0 || c0.CatalogVersion == 0 {
			t.Fatalf("initial announcement %+v", c0)
		}
		testkit.CreateTopic(t, h.brokers, later, 1, nil)
		got := h.waitRecords(changed, 2, 20*time.Second, "change announcement", nil)
		c1 := decodeChanged(t, got[1])
		if !slices.Equal(c1.TopicsAdded, []string{later}) || len(c1.TopicsRemoved) != 0 || c1.CatalogVersion == c0.CatalogVersion ||
			c1.TriggerReason != "topics_changed" || string(got[1].Key) != c1.CorrelationID.String() {
			t.Fatalf("change announcement %+v", c1)
		}
		// A query now reports the same version.
		r := query(uuid.New(), `{"correlation_id": "`+uuid.NewString()+`", "client_id": "test", "include_inactive": true, "topic_pattern": "onex.evt.c`+h.u+`.*"}`)
		if r.CatalogVersion != c1.CatalogVersion {
			t.Errorf("query version %d, announced %d", r.CatalogVersion, c1.CatalogVersion)
		}
	})
}

func decodeChanged(t *testing.T, m *sarama.ConsumerMessage) *registration.TopicCatalogChanged {
	t.Helper()
	e, err := envelope.Decode(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	c, err := envelope.DecodePayload(e, registration.DecodeTopicCatalogChanged)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeContract(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name, "contract.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTopicCatalogNodeTopics: the catalog counts the topics ACTIVE nodes
// declare (the reducer's node-topics table, restored before the first
// catalog): a registry topic's counts add the nodes to the contracts, a
// topic only nodes declare is an entry of its own; when a node's topics
// appear or go, the leader announces it within seconds, although the
// refresh period is a minute.
func TestTopicCatalogNodeTopics(t *testing.T) {
	h := newHarness(t)
	resp, changed, nodeTopics := h.topic(topics.TopicCatalogResponse), h.topic(topics.TopicCatalogChanged), h.topic(topics.NodeTopics)
	h.watch(resp)
	h.watch(changed)

	base := "c" + h.u
	busy := "onex.evt." + base + ".busy.v1"       // in the registry, provisioned
	orders := "onex.evt." + base + ".orders.v1"   // only nodes declare it, provisioned
	ship := "onex.cmd." + base + ".ship.v1"       // only nodes declare it, not provisioned
	returns := "onex.evt." + base + ".returns.v1" // declared by a node arriving later
	testkit.CreateTopic(t, h.brokers, busy, 2, nil)
	testkit.CreateTopic(t, h.brokers, orders, 4, nil)
	s := h.settings()
	s.CatalogSpecs = []topics.Spec{{Name: busy, Kind: topics.KindEvent, Partitions: 2, Description: "registry topic"}}
	s.CatalogRefresh = time.Minute
	s.RequestIntrospection = false
	writeContract(t, s.ContractsDir, "producer", "event_bus:\n  publish_topics:\n    - topic: "+busy+"\n")

	declare := func(node uuid.UUID, pubs, subs []string) {
		t.Helper()
		if pubs == nil && subs == nil {
			h.produce(nodeTopics, node.String(), nil)
			return
		}
		b, err := pipeline.EncodeNodeTopics(pipeline.NodeTopics{NodeID: node, NodeType: "effect", PublishTopics: pubs, SubscribeTopics: subs, Sequence: 3})
		if err != nil {
			t.Fatal(err)
		}
		h.produce(nodeTopics, node.String(), b)
	}
	a, b := uuid.New(), uuid.New()
	declare(a, []string{busy, orders}, []string{ship})
	in := h.start(s)
	if cond := testkit.Metric(t, in.svc.Registry, "onex_readiness_condition",
		map[string]string{"service": "registration-orchestrator", "condition": CondNodeTopics}); cond != 1 {
		t.Errorf("%s condition %v, want 1", CondNodeTopics, cond)
	}

	query := func() *registration.TopicCatalogResponse {
		t.Helper()
		corr := uuid.New()
		env, err := envelope.New(json.RawMessage(`{"correlation_id": "`+corr.String()+`", "client_id": "test", "include_inactive": true, "topic_pattern": "onex.*.`+base+`.*"}`),
			envelope.WithCorrelationID(corr))
		if err != nil {
			t.Fatal(err)
		}
		v, err := env.Encode()
		if err != nil {
			t.Fatal(err)
		}
		h.produce(h.topic(topics.TopicCatalogQuery), "", v)
		got := h.waitRecords(resp, 1, 20*time.Second, "catalog response", keyIs(corr.String()))
		e, err := envelope.Decode(got[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		r, err := envelope.DecodePayload(e, registration.DecodeTopicCatalogResponse)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	entries := func(r *registration.TopicCatalogResponse) map[string]registration.TopicCatalogEntry {
		out := map[string]registration.TopicCatalogEntry{}
		for _, e := range r.Topics {
			out[e.TopicSuffix] = e
		}
		return out
	}

	first := h.waitRecords(changed, 1, 20*time.Second, "initial announcement", nil)
	c0 := decodeChanged(t, first[0])
	if want := []string{ship, busy, orders}; !slices.Equal(c0.TopicsAdded, want) {
		t.Fatalf("initial announcement added %v, want %v (the view restored before the first catalog)", c0.TopicsAdded, want)
	}
	r := query()
	got := entries(r)
	if e := got[busy]; e.PublisherCount != 2 || !e.IsActive || slices.Contains(e.Tags, catalog.TagNodeSource) {
		t.Errorf("registry entry %+v: want the contract's and the node's publisher", e)
	}
	if e := got[orders]; e.Partitions != 4 || e.PublisherCount != 1 || !slices.Contains(e.Tags, catalog.TagNodeSource) ||
		!slices.Contains(e.Tags, "provisioned") {
		t.Errorf("node topic entry %+v", e)
	}
	if e := got[ship]; e.Partitions != 1 || e.SubscriberCount != 1 || !e.IsActive || !slices.Contains(e.Tags, "not_provisioned") {
		t.Errorf("unprovisioned node topic entry %+v", e)
	}
	if r.NodeCount < 2 || r.CatalogVersion != c0.CatalogVersion || slices.Contains(r.Warnings, catalog.WarnPartialNodeData) {
		t.Errorf("node_count %d, version %d (announced %d), warnings %v", r.NodeCount, r.CatalogVersion, c0.CatalogVersion, r.Warnings)
	}

	start := time.Now()
	declare(b, []string{returns}, nil)
	got2 := h.waitRecords(changed, 2, 15*time.Second, "a node's topic announced", nil)
	c1 := decodeChanged(t, got2[1])
	if !slices.Equal(c1.TopicsAdded, []string{returns}) || len(c1.TopicsRemoved) != 0 || c1.TriggerReason != "topics_changed" {
		t.Fatalf("announcement %+v, want %s added", c1, returns)
	}
	t.Logf("announced %v after the record", time.Since(start).Round(time.Millisecond))

	declare(a, nil, nil) // a leaves ACTIVE: its tombstone
	got3 := h.waitRecords(changed, 3, 15*time.Second, "a node's topics withdrawn", nil)
	c2 := decodeChanged(t, got3[2])
	if !slices.Equal(c2.TopicsRemoved, []string{ship, orders}) || len(c2.TopicsAdded) != 0 {
		t.Fatalf("announcement %+v, want %s and %s removed (%s stays: it is in the registry)", c2, orders, ship, busy)
	}
	r = query()
	got = entries(r)
	if _, ok := got[orders]; ok || got[busy].PublisherCount != 1 || got[returns].PublisherCount != 1 || r.CatalogVersion != c2.CatalogVersion {
		t.Errorf("catalog after the tombstone: %+v, version %d (announced %d)", r.Topics, r.CatalogVersion, c2.CatalogVersion)
	}
}
