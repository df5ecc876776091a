package topics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/kafkasec"
)

// Drift is one difference between a spec and an existing topic.
type Drift struct {
	// Topic is the topic name.
	Topic string
	// Field is "partitions", "replication_factor" or a config key such as
	// "cleanup.policy".
	Field string
	// Want is the resolved spec value.
	Want string
	// Got is the broker's value ("" when the broker does not report the config).
	Got string
}

// String renders the drift for humans, e.g.
// `onex.evt.x.y.v1: partitions want 6, got 3`.
func (d Drift) String() string {
	return fmt.Sprintf("%s: %s want %q, got %q", d.Topic, d.Field, d.Want, d.Got)
}

// Report is the outcome of Provision, in the order of the specs given.
type Report struct {
	// Created lists topics that did not exist and were created.
	Created []string
	// InSync lists existing topics that match their spec.
	InSync []string
	// Drift lists every difference found on existing topics, which were left
	// unchanged. A topic with drift is not in InSync.
	Drift []Drift
}

// HasDrift reports whether any existing topic differs from its spec.
func (r Report) HasDrift() bool { return len(r.Drift) > 0 }

// TopicState is what the broker reports about one topic.
type TopicState struct {
	// Name is the topic name.
	Name string
	// Partitions is the partition count.
	Partitions int32
	// ReplicationFactor is the replica count of the first partition.
	ReplicationFactor int16
	// Configs holds the topic's non-default, non-sensitive configs.
	Configs map[string]string
	// Internal is true for Kafka-internal topics (names starting "__").
	Internal bool
}

func kafkaErr(op, target string, err error) error {
	if errors.Is(err, sarama.ErrTopicAuthorizationFailed) || errors.Is(err, sarama.ErrClusterAuthorizationFailed) {
		return infraerr.New(infraerr.KindAuthentication, infraerr.Context{Transport: infraerr.TransportKafka, Operation: op, Target: target}, op+" not authorized", err)
	}
	if errors.Is(err, sarama.ErrInvalidConfig) || errors.Is(err, sarama.ErrInvalidReplicationFactor) ||
		errors.Is(err, sarama.ErrInvalidPartitions) || errors.Is(err, sarama.ErrPolicyViolation) || errors.Is(err, sarama.ErrInvalidTopic) {
		return infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportKafka, Operation: op, Target: target}, op+" rejected by the broker", err)
	}
	k, ok := infraerr.KindOf(err)
	if !ok {
		k = infraerr.KindConnection
	}
	return infraerr.New(k, infraerr.Context{Transport: infraerr.TransportKafka, Operation: op, Target: target}, op+" failed", err)
}

// Provision makes the cluster have every topic in specs, after adapting them
// with Resolve(specs, opts):
//   - a missing topic is created with the resolved partitions, replication
//     factor and configs (a concurrent creation by someone else —
//     TOPIC_ALREADY_EXISTS — is treated as "existing");
//   - an existing topic is compared with its spec — partition count,
//     replication factor, and every config key in Spec.Configs against the
//     broker's DescribeConfigs value (defaults included) — and every
//     difference is reported as Drift. Existing topics are NEVER modified.
//
// Names are canonical; opts.Namespace is put in front of each (Resolve).
// All names are validated before the broker is contacted; an invalid or
// duplicate name returns an error and changes nothing. Broker failures for
// one topic do not stop the others: the report covers the topics that
// succeeded and the error joins the failures (each an *infraerr.Error).
// Cancelling ctx stops before the next topic. The admin must speak Kafka
// protocol version 3.6 or newer (sarama.Config.Version).
func Provision(ctx context.Context, admin sarama.ClusterAdmin, specs []Spec, opts Options) (Report, error) {
	var rep Report
	resolved := Resolve(specs, opts)
	seen := make(map[string]bool, len(resolved))
	names := make([]string, 0, len(resolved))
	for _, s := range resolved {
		// The taxonomy rules apply to the canonical name; the namespace
		// is a deployment fact in front of it (topicns).
		n, err := Parse(opts.Namespace.Canonical(s.Name))
		if err != nil {
			return rep, err
		}
		if s.Kind != "" && s.Kind != n.Kind {
			return rep, fmt.Errorf("topic %q: spec kind %q does not match the name's kind %q", s.Name, s.Kind, n.Kind)
		}
		if seen[s.Name] {
			return rep, fmt.Errorf("topic %q: listed twice", s.Name)
		}
		seen[s.Name] = true
		names = append(names, s.Name)
	}
	if len(resolved) == 0 {
		return rep, nil
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	meta, err := describe(admin, names)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, s := range resolved {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		md, exists := meta[s.Name]
		if !exists {
			err := admin.CreateTopic(s.Name, topicDetail(s), false)
			if err == nil {
				rep.Created = append(rep.Created, s.Name)
				continue
			}
			if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				errs = append(errs, kafkaErr("create_topic", s.Name, err))
				continue
			}
			again, err := describe(admin, []string{s.Name})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if md, exists = again[s.Name]; !exists {
				errs = append(errs, kafkaErr("describe_topics", s.Name, fmt.Errorf("topic reported as existing but not described")))
				continue
			}
		}
		drift, err := compare(admin, s, md)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(drift) == 0 {
			rep.InSync = append(rep.InSync, s.Name)
		} else {
			rep.Drift = append(rep.Drift, drift...)
		}
	}
	return rep, errors.Join(errs...)
}

func topicDetail(s Spec) *sarama.TopicDetail {
	d := &sarama.TopicDetail{NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
	if len(s.Configs) > 0 {
		d.ConfigEntries = make(map[string]*string, len(s.Configs))
		for k, v := range s.Configs {
			d.ConfigEntries[k] = &v
		}
	}
	return d
}

// describe returns metadata of the named topics that exist. It never asks the
// broker to auto-create anything.
func describe(admin sarama.ClusterAdmin, names []string) (map[string]*sarama.TopicMetadata, error) {
	mds, err := admin.DescribeTopics(names)
	if err != nil {
		return nil, kafkaErr("describe_topics", strings.Join(names, ","), err)
	}
	out := make(map[string]*sarama.TopicMetadata, len(mds))
	for _, md := range mds {
		switch {
		case md == nil:
		case md.Err == sarama.ErrNoError:
			out[md.Name] = md
		case md.Err == sarama.ErrUnknownTopicOrPartition:
			// missing
		default:
			return nil, kafkaErr("describe_topics", md.Name, md.Err)
		}
	}
	return out, nil
}

// normalizeConfig makes list-valued configs comparable ("compact, delete" ==
// "delete,compact").
func normalizeConfig(v string) string {
	if !strings.Contains(v, ",") {
		return strings.TrimSpace(v)
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func compare(admin sarama.ClusterAdmin, s Spec, md *sarama.TopicMetadata) ([]Drift, error) {
	var drift []Drift
	if got := int32(len(md.Partitions)); got != s.Partitions {
		drift = append(drift, Drift{Topic: s.Name, Field: "partitions", Want: strconv.Itoa(int(s.Partitions)), Got: strconv.Itoa(int(got))})
	}
	if len(md.Partitions) > 0 {
		if got := int16(len(md.Partitions[0].Replicas)); got != s.ReplicationFactor {
			drift = append(drift, Drift{Topic: s.Name, Field: "replication_factor", Want: strconv.Itoa(int(s.ReplicationFactor)), Got: strconv.Itoa(int(got))})
		}
	}
	if len(s.Configs) == 0 {
		return drift, nil
	}
	keys := slices.Sorted(maps.Keys(s.Configs))
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: s.Name, ConfigNames: keys})
	if err != nil {
		return nil, kafkaErr("describe_configs", s.Name, err)
	}
	got := make(map[string]string, len(entries))
	for _, e := range entries {
		got[e.Name] = e.Value
	}
	for _, k := range keys {
		if normalizeConfig(got[k]) != normalizeConfig(s.Configs[k]) {
			drift = append(drift, Drift{Topic: s.Name, Field: k, Want: s.Configs[k], Got: got[k]})
		}
	}
	return drift, nil
}

// Describe lists every topic the broker has, sorted by name, with partition
// count, replication factor and non-default configs (for `onexctl topics
// list` and the topic catalog). It reads only; ctx is checked before the
// request (sarama's admin calls are bounded by its own Admin.Timeout).
func Describe(ctx context.Context, admin sarama.ClusterAdmin) ([]TopicState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all, err := admin.ListTopics()
	if err != nil {
		return nil, kafkaErr("list_topics", "", err)
	}
	out := make([]TopicState, 0, len(all))
	for name, d := range all {
		st := TopicState{Name: name, Partitions: d.NumPartitions, ReplicationFactor: d.ReplicationFactor, Internal: strings.HasPrefix(name, "__")}
		if len(d.ConfigEntries) > 0 {
			st.Configs = make(map[string]string, len(d.ConfigEntries))
			for k, v := range d.ConfigEntries {
				if v != nil {
					st.Configs[k] = *v
				}
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// NewAdminConfig returns a sarama config suitable for Provision and Describe:
// protocol version 3.6 (Kafka 4.x rejects the older protocol versions
// sarama defaults to), the given client id, and the process's Kafka
// security settings (kafkasec.ApplyEnvOrRefuse: settings that do not apply
// make every connection fail, never go unsecured).
func NewAdminConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	if clientID != "" {
		cfg.ClientID = clientID
	}
	kafkasec.ApplyEnvOrRefuse(cfg)
	return cfg
}
