package topics

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

// renamed returns s under producer segment producer, so that a test never
// touches the real platform topics.
func renamed(t *testing.T, name, producer string) Spec {
	t.Helper()
	s, ok := Lookup(name)
	if !ok {
		t.Fatalf("%s not in registry", name)
	}
	n, err := Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	s.Name = strings.Join([]string{Prefix, string(n.Kind), producer, n.EventName, n.Topic[strings.LastIndex(n.Topic, ".")+1:]}, ".")
	if err := Validate(s.Name); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProvisionRealBroker(t *testing.T) {
	brokers := testkit.KafkaBrokers(t) // skipped without a broker, failed when ONEX_REQUIRE_INFRA=1
	admin, err := sarama.NewClusterAdmin(brokers, NewAdminConfig("onex-topics-test"))
	if err != nil {
		t.Fatalf("connect to %v: %v", brokers, err)
	}
	t.Cleanup(func() { _ = admin.Close() }) // runs after the topic clean-up below

	producer := "test" + testkit.Unique()
	specs := []Spec{
		renamed(t, NodeHeartbeat, producer),
		renamed(t, RuntimeTick, producer),
		renamed(t, TopicCatalogQuery, producer),
		renamed(t, RegistrationSnapshots, producer),
	}
	drifted := Spec{Name: "onex.evt." + producer + ".drifted.v1", Kind: KindEvent, Partitions: 6, Configs: map[string]string{ConfigCleanupPolicy: "delete"}}
	t.Cleanup(func() {
		for _, s := range append(slices.Clone(specs), drifted) {
			if err := admin.DeleteTopic(s.Name); err != nil {
				t.Logf("cleanup %s: %v", s.Name, err)
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := Options{ReplicationFactor: 1}

	rep, err := Provision(ctx, admin, specs, opts)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if len(rep.Created) != len(specs) || len(rep.Drift) != 0 {
		t.Fatalf("first run report %+v", rep)
	}

	wantPartitions := map[string]int{specs[0].Name: 6, specs[1].Name: 1, specs[2].Name: 1, specs[3].Name: 6}
	mds := waitDescribed(t, admin, names(specs))
	for _, md := range mds {
		if got := len(md.Partitions); got != wantPartitions[md.Name] {
			t.Errorf("%s: %d partitions, want %d", md.Name, got, wantPartitions[md.Name])
		}
	}
	wantConfigs := map[string]map[string]string{
		specs[0].Name: {ConfigCleanupPolicy: "delete"}, // broker default
		specs[2].Name: {ConfigCleanupPolicy: "delete", ConfigRetentionMS: "3600000"},
		specs[3].Name: {
			ConfigCleanupPolicy: "compact", ConfigMinCompactionLagMS: "60000", ConfigMaxCompactionLagMS: "300000",
			ConfigSegmentBytes: "104857600", ConfigRetentionMS: "-1",
			ConfigMinInsyncReplicas: "1", // capped from 2 to RF 1
		},
	}
	for topic, want := range wantConfigs {
		got := describeConfigs(t, admin, topic, want)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", topic, k, got[k], v)
			}
		}
	}

	// Second run: nothing to create, everything in sync.
	rep, err = Provision(ctx, admin, specs, opts)
	if err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	if len(rep.Created) != 0 || len(rep.Drift) != 0 || !slices.Equal(rep.InSync, names(specs)) {
		t.Fatalf("second run report %+v", rep)
	}

	// A topic created by hand with the wrong shape: reported, never changed.
	compact := "compact"
	if err := admin.CreateTopic(drifted.Name, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{ConfigCleanupPolicy: &compact}}, false); err != nil {
		t.Fatalf("create drifted topic: %v", err)
	}
	waitDescribed(t, admin, []string{drifted.Name})
	rep, err = Provision(ctx, admin, []Spec{drifted}, opts)
	if err != nil {
		t.Fatalf("Provision drifted: %v", err)
	}
	wantDrift := []Drift{
		{Topic: drifted.Name, Field: "partitions", Want: "6", Got: "2"},
		{Topic: drifted.Name, Field: ConfigCleanupPolicy, Want: "delete", Got: "compact"},
	}
	if !slices.Equal(rep.Drift, wantDrift) || len(rep.Created) != 0 || len(rep.InSync) != 0 {
		t.Fatalf("drift report %+v, want drift %v", rep, wantDrift)
	}
	md := waitDescribed(t, admin, []string{drifted.Name})[0]
	if len(md.Partitions) != 2 {
		t.Errorf("drifted topic now has %d partitions; Provision must not change it", len(md.Partitions))
	}
	if got := describeConfigs(t, admin, drifted.Name, drifted.Configs)[ConfigCleanupPolicy]; got != "compact" {
		t.Errorf("drifted topic cleanup.policy now %q; Provision must not change it", got)
	}

	// Describe sees what we made.
	states, err := Describe(ctx, admin)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	found := map[string]TopicState{}
	for _, st := range states {
		if strings.Contains(st.Name, producer) {
			found[st.Name] = st
		}
	}
	if len(found) != len(specs)+1 {
		t.Errorf("Describe found %d test topics: %+v", len(found), found)
	}
	if st := found[specs[3].Name]; st.Partitions != 6 || st.ReplicationFactor != 1 || st.Configs[ConfigCleanupPolicy] != "compact" {
		t.Errorf("Describe snapshot topic = %+v", st)
	}
	if st := found[drifted.Name]; st.Partitions != 2 {
		t.Errorf("Describe drifted topic = %+v", st)
	}
}

func names(specs []Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// waitDescribed polls until every topic is visible in metadata (creation is
// asynchronous on the broker) and returns the metadata.
func waitDescribed(t *testing.T, admin sarama.ClusterAdmin, topics []string) []*sarama.TopicMetadata {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mds, err := admin.DescribeTopics(topics)
		ok := err == nil && len(mds) == len(topics)
		for _, md := range mds {
			ok = ok && md.Err == sarama.ErrNoError && len(md.Partitions) > 0
		}
		if ok {
			return mds
		}
		if time.Now().After(deadline) {
			t.Fatalf("topics %v not visible: %v %+v", topics, err, mds)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func describeConfigs(t *testing.T, admin sarama.ClusterAdmin, topic string, keys map[string]string) map[string]string {
	t.Helper()
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: names})
	if err != nil {
		t.Fatalf("DescribeConfig %s: %v", topic, err)
	}
	out := map[string]string{}
	for _, e := range entries {
		out[e.Name] = e.Value
	}
	return out
}
