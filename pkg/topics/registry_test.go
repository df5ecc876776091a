package topics

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/topicns"
)

func TestRegistryNamesValid(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Platform() {
		t.Run(s.Name, func(t *testing.T) {
			n, err := Parse(s.Name)
			if err != nil {
				t.Fatalf("registry name invalid: %v", err)
			}
			if n.Kind != s.Kind {
				t.Errorf("kind %q, name says %q", s.Kind, n.Kind)
			}
			if seen[s.Name] {
				t.Error("duplicate entry")
			}
			seen[s.Name] = true
			if s.Partitions < 1 || s.ReplicationFactor != 0 || s.Description == "" {
				t.Errorf("bad entry %+v", s)
			}
		})
	}
}

func TestRegistryEntries(t *testing.T) {
	compact := map[string]string{
		"cleanup.policy": "compact", "min.compaction.lag.ms": "60000", "max.compaction.lag.ms": "300000",
		"segment.bytes": "104857600", "retention.ms": "-1", "min.insync.replicas": "2",
	}
	tests := []struct {
		name       string
		kind       Kind
		partitions int32
		configs    map[string]string
	}{
		{NodeIntrospection, KindEvent, 6, nil},
		{NodeHeartbeat, KindEvent, 6, nil},
		{RequestIntrospection, KindCommand, 6, nil},
		{RegistryRequestIntrospection, KindEvent, 6, nil},
		{RuntimeTick, KindIntent, 1, nil},
		{NodeRegistrationAcked, KindCommand, 6, nil},
		{NodeRegistrationAccepted, KindEvent, 6, nil},
		{NodeRegistrationInitiated, KindEvent, 6, nil},
		{NodeBecameActive, KindEvent, 6, nil},
		{NodeRegistrationAckReceived, KindEvent, 6, nil},
		{NodeRegistrationAckTimedOut, KindEvent, 6, nil},
		{NodeLivenessExpired, KindEvent, 6, nil},
		{NodeRegistrationRejected, KindEvent, 6, nil},
		{NodeRegistrationResult, KindEvent, 6, nil},
		{TopicCatalogQuery, KindCommand, 1, map[string]string{"retention.ms": "3600000", "cleanup.policy": "delete"}},
		{TopicCatalogResponse, KindEvent, 1, map[string]string{"retention.ms": "3600000", "cleanup.policy": "delete"}},
		{TopicCatalogChanged, KindEvent, 1, map[string]string{"retention.ms": "604800000", "cleanup.policy": "delete"}},
		{"onex.snapshot.platform.registration-snapshots.v1", KindSnapshot, 6, compact},
		{DLQMessage, KindEvent, 3, nil},
		{ServiceHeartbeat, KindEvent, 3, nil},
		{FSMStateTransitions, KindEvent, 6, nil},
		{"onex.dlq.omnibase-infra.events.v1", KindDLQ, 6, nil},
		{"onex.dlq.omnibase-infra.commands.v1", KindDLQ, 6, nil},
		{"onex.dlq.omnibase-infra.intents.v1", KindDLQ, 6, nil},
		{"onex.dlq.omnibase-infra.platform.v1", KindDLQ, 6, nil},
		{"onex.dlq.omnibase-infra.quarantine.v1", KindDLQ, 6, nil},
		{"onex.cmd.platform.reducer-input.v1", KindCommand, 6, nil},
		{"onex.intent.platform.registration-intents.v1", KindIntent, 6, nil},
		{"onex.cmd.platform.postgres-intents.v1", KindCommand, 6, nil},
		{"onex.cmd.platform.consul-intents.v1", KindCommand, 6, nil},
		{"onex.evt.platform.effect-results.v1", KindEvent, 6, nil},
		{"onex.snapshot.platform.registration-aggregations.v1", KindSnapshot, 6, compact},
		{"onex.evt.platform.registration-mass-expiry.v1", KindEvent, 1, nil},
		{"onex.snapshot.platform.node-topics.v1", KindSnapshot, 6, compact},
		{"onex.snapshot.platform.registration-liveness.v1", KindSnapshot, 6, compact},
		{"onex.cmd.platform.registration-admin.v1", KindCommand, 6, nil},
	}
	if got := len(Platform()); got != len(tests) {
		t.Errorf("registry has %d entries, test lists %d", got, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := Lookup(tt.name)
			if !ok {
				t.Fatal("not in registry")
			}
			if s.Kind != tt.kind || s.Partitions != tt.partitions {
				t.Errorf("got kind %q partitions %d", s.Kind, s.Partitions)
			}
			if len(s.Configs) != len(tt.configs) || (len(tt.configs) > 0 && !reflect.DeepEqual(s.Configs, tt.configs)) {
				t.Errorf("configs %v, want %v", s.Configs, tt.configs)
			}
		})
	}
	if _, ok := Lookup("onex.evt.platform.registration-snapshots.v1"); ok {
		t.Error("the Python snapshot topic name must not be in the registry (project decision)")
	}
}

func TestRegistryIsCopied(t *testing.T) {
	p := Platform()
	for i := range p {
		if p[i].Configs != nil {
			p[i].Configs["cleanup.policy"] = "mutated"
		}
		p[i].Partitions = 99
	}
	s, _ := Lookup(RegistrationSnapshots)
	if s.Configs["cleanup.policy"] != "compact" || s.Partitions != 6 {
		t.Error("Platform() shares state with the registry")
	}
	s.Configs["cleanup.policy"] = "x"
	if s2, _ := Lookup(RegistrationSnapshots); s2.Configs["cleanup.policy"] != "compact" {
		t.Error("Lookup() shares state with the registry")
	}
}

func TestResolve(t *testing.T) {
	snap, _ := Lookup(RegistrationSnapshots)
	tick, _ := Lookup(RuntimeTick)
	custom := Spec{Name: "onex.evt.a.b.v1", Kind: KindEvent, ReplicationFactor: 2, Configs: map[string]string{"min.insync.replicas": "3"}}
	tests := []struct {
		name     string
		opts     Options
		in       Spec
		wantP    int32
		wantRF   int16
		wantMISR string
	}{
		{"dev defaults cap min.insync to RF 1", Options{}, snap, 6, 1, "1"},
		{"RF 3 keeps 2", Options{ReplicationFactor: 3}, snap, 6, 3, "2"},
		{"RF 2 keeps 2", Options{ReplicationFactor: 2}, snap, 6, 2, "2"},
		{"max partitions caps", Options{MaxPartitions: 3}, snap, 3, 1, "1"},
		{"cap above count is no-op", Options{MaxPartitions: 12}, tick, 1, 1, ""},
		{"spec RF wins, zero partitions default", Options{ReplicationFactor: 5}, custom, 6, 2, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Resolve([]Spec{tt.in}, tt.opts)[0]
			if out.Partitions != tt.wantP || out.ReplicationFactor != tt.wantRF || out.Configs[ConfigMinInsyncReplicas] != tt.wantMISR {
				t.Errorf("got P=%d RF=%d misr=%q", out.Partitions, out.ReplicationFactor, out.Configs[ConfigMinInsyncReplicas])
			}
		})
	}
	if snap.Configs[ConfigMinInsyncReplicas] != "2" {
		t.Error("Resolve modified its input")
	}
	if got := Resolve([]Spec{snap}, Options{Namespace: "bench"})[0].Name; got != "bench."+RegistrationSnapshots {
		t.Errorf("namespaced name = %q", got)
	}
}

func TestProvisionNamespace(t *testing.T) {
	hb, _ := Lookup(NodeHeartbeat)
	dlq, _ := Lookup(DLQEvents)
	admin := &fakeAdmin{topics: map[string]*fakeTopic{NodeHeartbeat: {partitions: 6, rf: 1}}}
	rep, err := Provision(context.Background(), admin, []Spec{hb, dlq}, Options{Namespace: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bench." + NodeHeartbeat, "bench." + DLQEvents}
	if !slices.Equal(rep.Created, want) || admin.topics["bench."+NodeHeartbeat] == nil {
		t.Errorf("Created = %v, want %v (the canonical topic exists and must not count)", rep.Created, want)
	}
	bad := Spec{Name: "bench.onex.evt.x.v1", Kind: KindEvent}
	if _, err := Provision(context.Background(), admin, []Spec{bad}, Options{Namespace: "bench"}); err == nil {
		t.Error("a name that is not a valid canonical name under the namespace was accepted")
	}
}

func TestOptionsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Options
		wantErr bool
	}{
		{"unset", nil, Options{}, false},
		{"empty", map[string]string{EnvMaxPartitions: ""}, Options{}, false},
		{"both", map[string]string{EnvMaxPartitions: "3", EnvReplicationFactor: "3"}, Options{ReplicationFactor: 3, MaxPartitions: 3}, false},
		{"zero", map[string]string{EnvMaxPartitions: "0"}, Options{}, true},
		{"garbage", map[string]string{EnvReplicationFactor: "three"}, Options{}, true},
		{"rf overflow", map[string]string{EnvReplicationFactor: "40000"}, Options{}, true},
		{"namespace", map[string]string{"KAFKA_TOPIC_NAMESPACE": "bench-1."}, Options{Namespace: "bench-1"}, false},
		{"blank namespace", map[string]string{"KAFKA_TOPIC_NAMESPACE": " "}, Options{}, false},
		{"bad namespace", map[string]string{"KAFKA_TOPIC_NAMESPACE": "Bench"}, Options{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OptionsFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %+v, %v", got, err)
			}
		})
	}
}

// fakeAdmin is an in-memory ClusterAdmin. Methods it does not implement
// panic through the nil embedded interface — which also proves Provision
// never calls AlterConfig, CreatePartitions, DeleteTopic and the like.
type fakeAdmin struct {
	sarama.ClusterAdmin
	topics      map[string]*fakeTopic
	created     []string
	createErr   map[string]error
	describeErr error
}

type fakeTopic struct {
	partitions, rf int
	configs        map[string]string
}

var brokerDefaults = map[string]string{"cleanup.policy": "delete", "retention.ms": "604800000", "min.insync.replicas": "1", "segment.bytes": "1073741824"}

func (f *fakeAdmin) DescribeTopics(names []string) ([]*sarama.TopicMetadata, error) {
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	var out []*sarama.TopicMetadata
	for _, n := range names {
		t, ok := f.topics[n]
		if !ok {
			out = append(out, &sarama.TopicMetadata{Name: n, Err: sarama.ErrUnknownTopicOrPartition})
			continue
		}
		md := &sarama.TopicMetadata{Name: n}
		for p := 0; p < t.partitions; p++ {
			md.Partitions = append(md.Partitions, &sarama.PartitionMetadata{ID: int32(p), Replicas: make([]int32, t.rf)})
		}
		out = append(out, md)
	}
	return out, nil
}

func (f *fakeAdmin) CreateTopic(name string, d *sarama.TopicDetail, validateOnly bool) error {
	if err := f.createErr[name]; err != nil {
		return err
	}
	if _, ok := f.topics[name]; ok {
		return &sarama.TopicError{Err: sarama.ErrTopicAlreadyExists}
	}
	cfg := map[string]string{}
	for k, v := range d.ConfigEntries {
		cfg[k] = *v
	}
	f.topics[name] = &fakeTopic{partitions: int(d.NumPartitions), rf: int(d.ReplicationFactor), configs: cfg}
	f.created = append(f.created, name)
	return nil
}

func (f *fakeAdmin) DescribeConfig(r sarama.ConfigResource) ([]sarama.ConfigEntry, error) {
	t := f.topics[r.Name]
	var out []sarama.ConfigEntry
	for _, k := range r.ConfigNames {
		if v, ok := t.configs[k]; ok {
			out = append(out, sarama.ConfigEntry{Name: k, Value: v})
		} else if v, ok := brokerDefaults[k]; ok {
			out = append(out, sarama.ConfigEntry{Name: k, Value: v, Default: true})
		}
	}
	return out, nil
}

func (f *fakeAdmin) ListTopics() (map[string]sarama.TopicDetail, error) {
	out := map[string]sarama.TopicDetail{}
	for n, t := range f.topics {
		d := sarama.TopicDetail{NumPartitions: int32(t.partitions), ReplicationFactor: int16(t.rf), ConfigEntries: map[string]*string{}}
		for k, v := range t.configs {
			d.ConfigEntries[k] = &v
		}
		out[n] = d
	}
	return out, nil
}

func TestProvisionFake(t *testing.T) {
	q, _ := Lookup(TopicCatalogQuery)
	snap, _ := Lookup(RegistrationSnapshots)
	hb, _ := Lookup(NodeHeartbeat)
	tick, _ := Lookup(RuntimeTick)
	resp, _ := Lookup(TopicCatalogResponse)
	admin := &fakeAdmin{topics: map[string]*fakeTopic{
		NodeHeartbeat:        {partitions: 6, rf: 1},                                                                  // in sync
		RuntimeTick:          {partitions: 3, rf: 1},                                                                  // drift: partitions
		TopicCatalogResponse: {partitions: 1, rf: 1, configs: map[string]string{"retention.ms": "3600000"}},           // cleanup.policy delete by default → in sync
		TopicCatalogQuery:    {partitions: 1, rf: 1, configs: map[string]string{"cleanup.policy": "compact, delete"}}, // drift: cleanup + retention
	}}
	rep, err := Provision(context.Background(), admin, []Spec{hb, tick, snap, resp, q}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Created, []string{RegistrationSnapshots}) {
		t.Errorf("Created = %v", rep.Created)
	}
	if !slices.Equal(rep.InSync, []string{NodeHeartbeat, TopicCatalogResponse}) {
		t.Errorf("InSync = %v", rep.InSync)
	}
	wantDrift := []Drift{
		{RuntimeTick, "partitions", "1", "3"},
		{TopicCatalogQuery, "cleanup.policy", "delete", "compact, delete"},
		{TopicCatalogQuery, "retention.ms", "3600000", "604800000"},
	}
	if !reflect.DeepEqual(rep.Drift, wantDrift) || !rep.HasDrift() {
		t.Errorf("Drift = %v", rep.Drift)
	}
	created := admin.topics[RegistrationSnapshots]
	if created.partitions != 6 || created.rf != 1 || created.configs["min.insync.replicas"] != "1" || created.configs["cleanup.policy"] != "compact" {
		t.Errorf("snapshot created as %+v", created)
	}
	if admin.topics[RuntimeTick].partitions != 3 {
		t.Error("existing topic changed")
	}

	// Second run: everything exists; nothing is created, drift unchanged.
	rep2, err := Provision(context.Background(), admin, []Spec{hb, tick, snap, resp, q}, Options{})
	if err != nil || len(rep2.Created) != 0 || len(rep2.Drift) != 3 || len(rep2.InSync) != 3 {
		t.Errorf("second run %+v %v", rep2, err)
	}
	// With RF 3 the just-created snapshot topic has replication drift and a
	// min.insync.replicas drift (2 wanted, 1 set).
	rep3, _ := Provision(context.Background(), admin, []Spec{snap}, Options{ReplicationFactor: 3})
	if len(rep3.Drift) != 2 || rep3.Drift[0].Field != "replication_factor" || rep3.Drift[1].Field != "min.insync.replicas" {
		t.Errorf("rf drift %v", rep3.Drift)
	}
	if d := rep3.Drift[0].String(); !strings.Contains(d, `replication_factor want "3", got "1"`) {
		t.Errorf("Drift.String = %s", d)
	}
}

func TestProvisionErrors(t *testing.T) {
	hb, _ := Lookup(NodeHeartbeat)
	ack, _ := Lookup(NodeRegistrationAcked)
	t.Run("invalid name touches nothing", func(t *testing.T) {
		admin := &fakeAdmin{topics: map[string]*fakeTopic{}, describeErr: errors.New("must not be called")}
		_, err := Provision(context.Background(), admin, []Spec{hb, {Name: "dev.onex.evt.a.b.v1"}}, Options{})
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("kind mismatch", func(t *testing.T) {
		_, err := Provision(context.Background(), &fakeAdmin{}, []Spec{{Name: "onex.evt.a.b.v1", Kind: KindCommand}}, Options{})
		if err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		_, err := Provision(context.Background(), &fakeAdmin{}, []Spec{hb, hb}, Options{})
		if err == nil || !strings.Contains(err.Error(), "listed twice") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Provision(ctx, &fakeAdmin{}, []Spec{hb}, Options{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("describe failure is a retriable connection error", func(t *testing.T) {
		_, err := Provision(context.Background(), &fakeAdmin{describeErr: sarama.ErrOutOfBrokers}, []Spec{hb}, Options{})
		if !infraerr.Retriable(err) || !errors.Is(err, sarama.ErrOutOfBrokers) {
			t.Errorf("err = %v (retriable %v)", err, infraerr.Retriable(err))
		}
	})
	t.Run("one create failure does not stop the others", func(t *testing.T) {
		admin := &fakeAdmin{topics: map[string]*fakeTopic{}, createErr: map[string]error{
			NodeHeartbeat: &sarama.TopicError{Err: sarama.ErrInvalidReplicationFactor},
		}}
		rep, err := Provision(context.Background(), admin, []Spec{hb, ack}, Options{ReplicationFactor: 3})
		if !slices.Equal(rep.Created, []string{NodeRegistrationAcked}) {
			t.Errorf("Created = %v", rep.Created)
		}
		var ie *infraerr.Error
		if !errors.As(err, &ie) || ie.Kind != infraerr.KindConfiguration || ie.Context.Target != NodeHeartbeat {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("concurrent creation counts as existing", func(t *testing.T) {
		// Missing at the first describe; someone else creates it before our
		// CreateTopic, which then fails with TOPIC_ALREADY_EXISTS.
		admin := &raceAdmin{fakeAdmin: &fakeAdmin{topics: map[string]*fakeTopic{},
			createErr: map[string]error{NodeHeartbeat: &sarama.TopicError{Err: sarama.ErrTopicAlreadyExists}}}}
		rep, err := Provision(context.Background(), admin, []Spec{hb}, Options{})
		if err != nil || !slices.Equal(rep.InSync, []string{NodeHeartbeat}) || len(rep.Created) != 0 {
			t.Errorf("rep %+v err %v", rep, err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		rep, err := Provision(context.Background(), nil, nil, Options{})
		if err != nil || len(rep.Created)+len(rep.InSync)+len(rep.Drift) != 0 {
			t.Errorf("rep %+v err %v", rep, err)
		}
	})
}

// raceAdmin reports a topic as missing on the first DescribeTopics and as
// existing afterwards.
type raceAdmin struct {
	*fakeAdmin
	calls int
}

func (r *raceAdmin) DescribeTopics(names []string) ([]*sarama.TopicMetadata, error) {
	r.calls++
	if r.calls == 2 {
		r.fakeAdmin.topics[NodeHeartbeat] = &fakeTopic{partitions: 6, rf: 1}
	}
	return r.fakeAdmin.DescribeTopics(names)
}

func TestDescribeFake(t *testing.T) {
	admin := &fakeAdmin{topics: map[string]*fakeTopic{
		"b":                  {partitions: 1, rf: 1, configs: map[string]string{"cleanup.policy": "compact"}},
		"__consumer_offsets": {partitions: 50, rf: 1},
		"a":                  {partitions: 6, rf: 1},
	}}
	got, err := Describe(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	want := []TopicState{
		{Name: "__consumer_offsets", Partitions: 50, ReplicationFactor: 1, Internal: true},
		{Name: "a", Partitions: 6, ReplicationFactor: 1},
		{Name: "b", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
}

func TestOnNamespace(t *testing.T) {
	states := []TopicState{{Name: NodeHeartbeat}, {Name: "bench." + NodeHeartbeat}, {Name: "other." + NodeHeartbeat}}
	for _, tc := range []struct {
		ns   topicns.Namespace
		want []string
	}{
		{topicns.None, []string{NodeHeartbeat, "bench." + NodeHeartbeat, "other." + NodeHeartbeat}},
		{"bench", []string{NodeHeartbeat}},
		{"none-here", []string{}},
	} {
		var got []string
		for _, st := range OnNamespace(tc.ns, states) {
			got = append(got, st.Name)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, tc.want)) {
			t.Errorf("OnNamespace(%q) = %v, want %v", tc.ns, got, tc.want)
		}
	}
}
